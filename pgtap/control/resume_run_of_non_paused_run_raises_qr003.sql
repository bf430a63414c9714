-- resume_run only takes a PAUSED run; anything else raises QR003 and changes nothing.
begin;
select plan(5);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_runs as select * from pgqrs_tests.queued_running_succeeded_runs();

select throws_ok(format('select pgqrs.resume_run(%s)', (select queued from t_runs)), 'QR003', null, 'QUEUED');
select throws_ok(format('select pgqrs.resume_run(%s)', (select running from t_runs)), 'QR003', null, 'RUNNING');
select throws_ok(format('select pgqrs.resume_run(%s)', (select succeeded from t_runs)), 'QR003', null, 'SUCCESS');
select is(
    (select visible_at from pgqrs.messages where message_id = (select queued from t_runs)),
    '2030-01-01 01:00:00+00'::timestamptz, 'the delayed run is not made visible early'
);
select results_eq(
    $$select status from pgqrs.runs order by run_id$$,
    $$values ('QUEUED'::text), ('RUNNING'), ('SUCCESS')$$,
    'statuses unchanged'
);

select * from finish();
rollback;
