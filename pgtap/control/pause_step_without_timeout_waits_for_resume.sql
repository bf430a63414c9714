-- pause_step without a timeout: the run waits for resume_run however long it takes.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_run as select pgqrs_tests.paused_run('approval') as run_id;

select is(
    (select paused_until from pgqrs.paused_runs where run_id = (select run_id from t_run)), null::timestamptz,
    'paused with no deadline'
);
set local "pgqrs.now" = '2030-12-31 00:00:00+00';
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker))), 0::bigint,
    'not delivered a year later'
);
select is(pgqrs.resume_run((select run_id from t_run)), 'QUEUED', 'resume_run returns QUEUED');
select is(
    (select run_id from pgqrs.dequeue('wf', (select worker_id from t_worker))), (select run_id from t_run),
    'delivered after resume_run'
);

select * from finish();
rollback;
