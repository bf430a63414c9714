-- retry_run only takes an ERROR run: QUEUED, RUNNING and SUCCESS runs raise QR003 and stay as they are.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_runs as select * from pgqrs_tests.queued_running_succeeded_runs();

select throws_ok(format('select pgqrs.retry_run(%s)', (select queued from t_runs)), 'QR003', null, 'QUEUED');
select throws_ok(format('select pgqrs.retry_run(%s)', (select running from t_runs)), 'QR003', null, 'RUNNING');
select throws_ok(format('select pgqrs.retry_run(%s)', (select succeeded from t_runs)), 'QR003', null, 'SUCCESS');
select results_eq(
    $$select status from pgqrs.runs order by run_id$$,
    $$values ('QUEUED'::text), ('RUNNING'), ('SUCCESS')$$,
    'statuses unchanged'
);

select * from finish();
rollback;
