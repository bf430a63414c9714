-- When the external result arrived before the pause, pause_step returns ('SUCCESS', value) and keeps the lease.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_lease as select * from pgqrs_tests.leased_run();
create temp table t_upd as
select * from pgqrs.update_step((select run_id from t_lease), 'approval', 'SUCCESS', '"yes"');

select results_eq(
    $$select p.* from t_lease as l, lateral pgqrs.pause_step(l.run_id, 'approval', l.lease_token, '1 hour') as p$$,
    $$values ('SUCCESS'::text, '"yes"'::jsonb)$$,
    'pause_step returns SUCCESS with the recorded value'
);
select is(
    (select status from pgqrs.runs where run_id = (select run_id from t_lease)), 'RUNNING', 'the run stays RUNNING'
);
select is(
    (select lease_token from pgqrs.messages where message_id = (select run_id from t_lease)),
    (select lease_token from t_lease), 'the worker keeps its lease'
);
select is((select pgqrs.complete_run(run_id, lease_token, '1') from t_lease), 'SUCCESS', 'and can finish the run');

select * from finish();
rollback;
