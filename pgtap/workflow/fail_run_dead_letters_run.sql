-- fail_run: run ERROR with the error, message archived as DEAD_LETTER, in one call.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_lease as select * from pgqrs_tests.leased_run();

select is(
    (select pgqrs.fail_run(run_id, lease_token, '{"msg": "handler crashed"}') from t_lease), 'ERROR',
    'fail_run returns ERROR'
);
select results_eq(
    $$select status, error, output from pgqrs.runs where run_id = (select run_id from t_lease)$$,
    $$values ('ERROR'::text, '{"msg": "handler crashed"}'::jsonb, null::jsonb)$$,
    'the run is ERROR with the error'
);
select results_eq(
    $$select d.error, a.outcome from pgqrs.dead_letters as d join pgqrs.messages_archive as a using (message_id)
      where d.run_id = (select run_id from t_lease)$$,
    $$values ('{"msg": "handler crashed"}'::jsonb, 'DEAD_LETTER'::text)$$,
    'dead-lettered'
);

select * from finish();
rollback;
