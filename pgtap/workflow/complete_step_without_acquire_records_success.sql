-- complete_step of a step that was never acquired records it (attempt 1); the journal keeps recording order.
begin;
select plan(2);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_lease as select * from pgqrs_tests.leased_run();
create temp table t_done as
select pgqrs.complete_step(run_id, 'b', lease_token, '1') as b, pgqrs.complete_step(run_id, 'a', lease_token, '2') as a
from t_lease;

select results_eq(
    $$select step_id, status, value, attempt from pgqrs.run_steps((select run_id from t_lease))$$,
    $$values ('b'::text, 'SUCCESS'::text, '1'::jsonb, 1), ('a', 'SUCCESS', '2', 1)$$,
    'both recorded as SUCCESS, attempt 1, in recording order'
);
select is(
    (select current_step from pgqrs.run_status((select run_id from t_lease))), 'a',
    'the current step is the one recorded last'
);

select * from finish();
rollback;
