-- fail_step retry_after must be 0-30 days: negative or 31 days is 22023; the lease and run are untouched.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_lease as select * from pgqrs_tests.leased_run();

select throws_ok(
    format(
        $$select * from pgqrs.fail_step(%s, 's', %L, '{}', true, '-5 seconds')$$,
        (select run_id from t_lease), (select lease_token from t_lease)
    ),
    '22023', null, 'negative retry_after'
);
select throws_ok(
    format(
        $$select * from pgqrs.fail_step(%s, 's', %L, '{}', true, '31 days')$$,
        (select run_id from t_lease), (select lease_token from t_lease)
    ),
    '22023', null, '31 days'
);
select results_eq(
    $$select r.status, m.lease_token, (select count(*) from pgqrs.steps)
      from pgqrs.runs as r join pgqrs.messages as m on m.message_id = r.run_id$$,
    $$select 'RUNNING'::text, (select lease_token from t_lease), 0::bigint$$,
    'run still RUNNING under the same lease, no step written'
);
select lives_ok(
    format(
        $$select * from pgqrs.fail_step(%s, 's', %L, '{}', true, '30 days')$$,
        (select run_id from t_lease), (select lease_token from t_lease)
    ),
    '30 days is allowed'
);

select * from finish();
rollback;
