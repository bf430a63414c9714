-- complete_step with the value already recorded is a no-op that returns false.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_lease as select * from pgqrs_tests.leased_run();

select is((select pgqrs.complete_step(run_id, 's', lease_token, '{"v": 1}') from t_lease), true, 'first: true');
set local "pgqrs.now" = '2030-01-01 00:00:05+00';
select is((select pgqrs.complete_step(run_id, 's', lease_token, '{"v": 1}') from t_lease), false, 'again: false');
select results_eq(
    $$select status, value, attempt, completed_at from pgqrs.steps where run_id = (select run_id from t_lease)$$,
    $$values ('SUCCESS'::text, '{"v": 1}'::jsonb, 1, '2030-01-01 00:00:00+00'::timestamptz)$$,
    'the row is the first one, untouched'
);

select * from finish();
rollback;
