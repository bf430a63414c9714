-- A worker of version v takes the runs of v and the never-delivered runs without a version, and gives those v;
-- an unversioned worker takes only runs without a version; a run of another version is passed by, not locked.
begin;
select plan(9);

select pgqrs_tests.setup_workflow();
create temp table t_runs as
select
    (select run_id from pgqrs.trigger('wf', '{"n": 1}', p_version => 'v1')) as pinned_v1,
    (select run_id from pgqrs.trigger('wf', '{"n": 2}', p_version => 'v2')) as pinned_v2,
    (select run_id from pgqrs.trigger('wf', '{"n": 3}')) as fresh;

select is(
    (select array_agg(run_id order by run_id) from pgqrs.dequeue('wf', pgqrs_tests.worker_id(), 10, p_version => 'v2')),
    array[(select pinned_v2 from t_runs), (select fresh from t_runs)],
    'a v2 worker gets the v2 run and the fresh one, not the v1 run ahead of them'
);
select is((select version from pgqrs.runs where run_id = (select fresh from t_runs)), 'v2', 'the fresh run is v2 now');
select is(
    (select version from pgqrs.messages where message_id = (select fresh from t_runs)), 'v2',
    'and so is its message'
);
select is(
    (select count(*)::integer from pgqrs.dequeue('wf', pgqrs_tests.worker_id(), 10)), 0,
    'an unversioned worker gets nothing: every run left has a version'
);
select is(
    (select array_agg(run_id) from pgqrs.dequeue('wf', pgqrs_tests.worker_id(), 10, p_version => 'v1')),
    array[(select pinned_v1 from t_runs)],
    'a v1 worker gets the v1 run'
);

-- a run without a version that was delivered once stays with unversioned workers
select pgqrs.trigger('wf', '{"n": 4}');
create temp table t_old as select * from pgqrs.dequeue('wf', pgqrs_tests.worker_id());
select is(
    (select version from pgqrs.runs where run_id = (select run_id from t_old)), null, 'an unversioned worker sets none'
);
select pgqrs.release_run((select run_id from t_old), (select lease_token from t_old));
select is(
    (select count(*)::integer from pgqrs.dequeue('wf', pgqrs_tests.worker_id(), 10, p_version => 'v2')), 0,
    'a v2 worker does not take a run that unversioned code started'
);
select is(
    (select array_agg(run_id) from pgqrs.dequeue('wf', pgqrs_tests.worker_id(), 10)),
    array[(select run_id from t_old)],
    'an unversioned worker does'
);
select is(
    (select array_agg(version order by version) from pgqrs.queue_version_stats where queue = 'wf'),
    array['v1', 'v2', null],
    'queue_version_stats has a row per version with live runs'
);

select * from finish();
rollback;
