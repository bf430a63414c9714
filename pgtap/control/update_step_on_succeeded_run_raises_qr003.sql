-- A finished (SUCCESS) run takes no step results from outside.
begin;
select plan(2);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');
create temp table t_worker as select pgqrs.register_worker('w1', 'host', null, 'wf') as worker_id;
create temp table t_run as select * from pgqrs.trigger('wf', '{}');
create temp table t_lease as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
create temp table t_done as select pgqrs.complete_run(run_id, lease_token, '1') from t_lease;

select throws_ok(
    format($$select pgqrs.update_step(%s, 'late', 'SUCCESS', '1')$$, (select run_id from t_run)),
    'QR003', null, 'update_step on a SUCCESS run raises QR003'
);
select is((select count(*) from pgqrs.steps), 0::bigint, 'no step written');

select * from finish();
rollback;
