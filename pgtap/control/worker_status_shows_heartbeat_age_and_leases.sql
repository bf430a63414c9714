-- pgqrs.worker_status: workers with their queue, heartbeat age and the leases they hold now.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');
create temp table t_worker as select pgqrs.register_worker('w1', 'host-a', 8000, 'wf') as worker_id;
create temp table t_runs as select * from pgqrs.trigger_batch('wf', '[{}, {}]');
create temp table t_leases as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 2, '30 seconds');
set local "pgqrs.now" = '2030-01-01 00:00:20+00';

select results_eq(
    $$select name, hostname, port, queue, status, heartbeat_age, leases from pgqrs.worker_status$$,
    $$values ('w1'::text, 'host-a'::text, 8000, 'wf'::text, 'ACTIVE'::text, interval '20 seconds', 2::bigint)$$,
    'heartbeat 20 s ago, two leases'
);
create temp table t_beat as select * from pgqrs.heartbeat((select worker_id from t_worker), '{}');
select is((select heartbeat_age from pgqrs.worker_status), interval '0', 'a heartbeat resets the age');
set local "pgqrs.now" = '2030-01-01 00:01:00+00';
select is((select leases from pgqrs.worker_status), 0::bigint, 'expired leases are not counted');

select * from finish();
rollback;
