-- retry_run only takes an ERROR run: QUEUED, RUNNING and SUCCESS runs raise QR003 and stay as they are.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');
create temp table t_worker as select pgqrs.register_worker('w1', 'host', null, 'wf') as worker_id;
create temp table t_queued as select * from pgqrs.trigger('wf', '{"n": 1}', p_delay => '1 hour');
create temp table t_running as select * from pgqrs.trigger('wf', '{"n": 2}');
create temp table t_done as select * from pgqrs.trigger('wf', '{"n": 3}');
create temp table t_leases as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 2);
create temp table t_complete as
select pgqrs.complete_run(run_id, lease_token, '1') from t_leases where run_id = (select run_id from t_done);

select throws_ok(format('select pgqrs.retry_run(%s)', (select run_id from t_queued)), 'QR003', null, 'QUEUED');
select throws_ok(format('select pgqrs.retry_run(%s)', (select run_id from t_running)), 'QR003', null, 'RUNNING');
select throws_ok(format('select pgqrs.retry_run(%s)', (select run_id from t_done)), 'QR003', null, 'SUCCESS');
select results_eq(
    $$select status from pgqrs.runs order by run_id$$,
    $$values ('QUEUED'::text), ('RUNNING'), ('SUCCESS')$$,
    'statuses unchanged'
);

select * from finish();
rollback;
