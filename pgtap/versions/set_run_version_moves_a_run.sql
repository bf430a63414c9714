-- set_run_version moves a live or failed run to another version: its next delivery goes to that version's
-- workers. Finished runs, unknown runs and bad versions are refused and change nothing.
begin;
select plan(10);

select pgqrs_tests.setup_workflow('{"max_attempts": 1}');
create temp table t_run as select run_id from pgqrs.trigger('wf', '{}', p_version => 'v1');

select is(pgqrs.set_run_version((select run_id from t_run), 'v2'), 'v1', 'returns the version the run had');
select is(
    (select count(*)::integer from pgqrs.dequeue('wf', pgqrs_tests.worker_id(), p_version => 'v1')), 0,
    'v1 workers no longer get it'
);
create temp table t_lease as select * from pgqrs.dequeue('wf', pgqrs_tests.worker_id(), p_version => 'v2');
select is((select run_id from t_lease), (select run_id from t_run), 'a v2 worker does');

-- a failed run can be moved, and retry_run brings it back on the new version
select pgqrs.fail_run((select run_id from t_lease), (select lease_token from t_lease), '{"message": "bug"}');
select is(pgqrs.set_run_version((select run_id from t_run), 'v3'), 'v2', 'a failed run can be moved');
select pgqrs.retry_run((select run_id from t_run));
select is(
    (select array_agg(run_id) from pgqrs.dequeue('wf', pgqrs_tests.worker_id(), p_version => 'v3')),
    array[(select run_id from t_run)],
    'retry_run puts it back on v3'
);

create temp table t_done as select (pgqrs_tests.leased_run()).*;
select pgqrs.complete_run((select run_id from t_done), (select lease_token from t_done), '{}');
select throws_ok(
    format('select pgqrs.set_run_version(%s, %L)', (select run_id from t_done), 'v9'),
    'QR003', null, 'a finished run cannot be moved'
);
select throws_ok('select pgqrs.set_run_version(-1, ''v9'')', 'QR002', null, 'an unknown run');
select throws_ok(
    format('select pgqrs.set_run_version(%s, %L)', (select run_id from t_run), ''),
    '22023', 'version must not be empty', 'an empty version'
);
select throws_ok(
    format('select pgqrs.set_run_version(%s, %L)', (select run_id from t_run), repeat('v', 129)),
    '22023', null, 'a version over 128 characters'
);
select is(
    (select version from pgqrs.runs where run_id = (select run_id from t_run)), 'v3', 'refused calls changed nothing'
);

select * from finish();
rollback;
