-- When the external result arrived before the pause, pause_step returns ('SUCCESS', value) and keeps the lease.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');
create temp table t_worker as select pgqrs.register_worker('w1', 'host', null, 'wf') as worker_id;
create temp table t_run as select * from pgqrs.trigger('wf', '{}');
create temp table t_lease as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
create temp table t_upd as select * from pgqrs.update_step((select run_id from t_run), 'approval', 'SUCCESS', '"yes"');

select results_eq(
    $$select p.* from t_lease as l, lateral pgqrs.pause_step(l.run_id, 'approval', l.lease_token, '1 hour') as p$$,
    $$values ('SUCCESS'::text, '"yes"'::jsonb)$$,
    'pause_step returns SUCCESS with the recorded value'
);
select is(
    (select status from pgqrs.runs where run_id = (select run_id from t_run)), 'RUNNING', 'the run stays RUNNING'
);
select is(
    (select lease_token from pgqrs.messages where message_id = (select run_id from t_run)),
    (select lease_token from t_lease), 'the worker keeps its lease'
);
select is((select pgqrs.complete_run(run_id, lease_token, '1') from t_lease), 'SUCCESS', 'and can finish the run');

select * from finish();
rollback;
