-- lease_run refuses a run it cannot take, with a clear code, and changes nothing: held by another lease (QR003),
-- PAUSED (QR003), finished (QR003), cancelled (QR009), unknown (QR002), a workflow with flow limits (0A000),
-- an unknown worker (QR008), a bad visibility (22023).
begin;
select plan(10);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_runs as select * from pgqrs_tests.queued_running_succeeded_runs();
create temp table t_before as select pgqrs_tests.snapshot(r.running) as running from t_runs as r;

select throws_ok(
    format('select * from pgqrs.lease_run(%s)', (select running from t_runs)), 'QR003', null,
    'a run another lease holds'
);
select is(pgqrs_tests.snapshot((select running from t_runs)), (select running from t_before), 'which is unchanged');
select throws_ok(
    format('select * from pgqrs.lease_run(%s)', (select succeeded from t_runs)), 'QR003', null, 'a finished run'
);
select throws_ok(
    format('select * from pgqrs.lease_run(%s)', pgqrs_tests.paused_run('p')), 'QR003', null, 'a PAUSED run'
);
select pgqrs.cancel_run((select queued from t_runs), 'test');
select throws_ok(
    format('select * from pgqrs.lease_run(%s)', (select queued from t_runs)), 'QR009', null, 'a cancelled run'
);
select throws_ok('select * from pgqrs.lease_run(-1)', 'QR002', 'unknown run: -1', 'an unknown run');
select throws_ok(
    format('select * from pgqrs.lease_run(%s, -7)', (select t.run_id from pgqrs.trigger('wf', '{}') as t)), 'QR008',
    null, 'an unknown worker'
);
select throws_ok(
    format($$select * from pgqrs.lease_run(%s, null, '0 seconds')$$, (select max(run_id) from pgqrs.runs)), '22023',
    null, 'a visibility of 0'
);
select pgqrs.create_workflow('limited', p_max_concurrency => 1);
select throws_ok(
    format('select * from pgqrs.lease_run(%s)', (select t.run_id from pgqrs.trigger('limited', '{}') as t)), '0A000',
    null, 'a run of a workflow with flow limits'
);
select is(
    (select r.status from pgqrs.runs as r where r.run_id = (select max(m.run_id) from pgqrs.runs as m)), 'QUEUED',
    'the refused run stays QUEUED'
);

select * from finish();
rollback;
