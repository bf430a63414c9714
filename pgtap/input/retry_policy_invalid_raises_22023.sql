-- A bad retry policy is 22023, in create_workflow and in fail_step; nothing is written or changed.
begin;
select plan(8);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select throws_ok($$select pgqrs.create_workflow('wf', '{"max_attempts": 0}')$$, '22023', null, 'max_attempts 0');
select throws_ok($$select pgqrs.create_workflow('wf', '{"max_attempts": 2.5}')$$, '22023', null, 'max_attempts 2.5');
select throws_ok(
    $$select pgqrs.create_workflow('wf', '{"base_seconds": -1}')$$, '22023', null, 'negative base_seconds'
);
select throws_ok($$select pgqrs.create_workflow('wf', '{"retries": 3}')$$, '22023', null, 'an unknown key');
select throws_ok($$select pgqrs.create_workflow('wf', '{"backoff": "linear"}')$$, '22023', null, 'an unknown backoff');
select throws_ok($$select pgqrs.create_workflow('wf', '[3]')$$, '22023', null, 'not an object');
select is((select count(*) from pgqrs.workflows), 0::bigint, 'no workflow written');

select pgqrs_tests.setup_workflow();
create temp table t_lease as select * from pgqrs_tests.leased_run();
select throws_ok(
    format(
        $$select * from pgqrs.fail_step(%s, 's', %L, '{}', p_retry_policy => '{"max_attempts": -1}')$$,
        (select run_id from t_lease), (select lease_token from t_lease)
    ),
    '22023', null, 'fail_step with a bad step policy'
);

select * from finish();
rollback;
