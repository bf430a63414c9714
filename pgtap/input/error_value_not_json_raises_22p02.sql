-- An error (or value) that is not JSON never reaches the engine: PostgreSQL raises 22P02 and nothing changes.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_lease as select * from pgqrs_tests.leased_run();

select throws_ok(
    format(
        $$select * from pgqrs.fail_step(%s, 's', %L, 'not json')$$,
        (select run_id from t_lease), (select lease_token from t_lease)
    ),
    '22P02', null, 'fail_step with the text ''not json'' as error'
);
select throws_ok(
    format(
        $$select pgqrs.fail_run(%s, %L, 'not json')$$,
        (select run_id from t_lease), (select lease_token from t_lease)
    ),
    '22P02', null, 'fail_run with the text ''not json'''
);
select throws_ok(
    format(
        $$select pgqrs.complete_step(%s, 's', %L, '{oops')$$,
        (select run_id from t_lease), (select lease_token from t_lease)
    ),
    '22P02', null, 'complete_step with a broken JSON value'
);
select results_eq(
    $$select r.status, r.error, (select count(*) from pgqrs.steps) from pgqrs.runs as r$$,
    $$values ('RUNNING'::text, null::jsonb, 0::bigint)$$,
    'nothing changed'
);

select * from finish();
rollback;
