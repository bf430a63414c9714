-- A purge of all finished statuses drops a partition whose runs all finished before the cut-off, with what other
-- tables hold for them (idempotency keys, messages sent to them; a fork outlives its origin), and deletes in
-- batches where a partition holds a live run. The idempotency key of a dropped run is free again.
begin;
select plan(14);

select pgqrs_tests.setup_workflow();
set local "pgqrs.now" = '2030-01-01 00:00:00+00';
create temp table t_first as select pgqrs_tests.small_partitions(3) as first_id;

-- partition A: three finished runs, one with an idempotency key, a step and a message sent to it
create temp table t_a as select pgqrs_tests.finished_run('{"a": 1}') as run_id;
create temp table t_keyed as
select d.run_id, d.lease_token from pgqrs.trigger('wf', '{"a": 2}', 'order-1'),
    lateral pgqrs.dequeue('wf', pgqrs_tests.worker_id()) as d;
select pgqrs.send((select run_id from t_keyed), 'topic', '{"hello": 1}');
select pgqrs.acquire_step((select run_id from t_keyed), 's', (select lease_token from t_keyed));
select pgqrs.complete_step((select run_id from t_keyed), 's', (select lease_token from t_keyed), '1');
select pgqrs.complete_run((select run_id from t_keyed), (select lease_token from t_keyed), '{}');
insert into t_a select run_id from t_keyed;
insert into t_a select pgqrs_tests.finished_run('{"a": 3}');
-- partition B: two finished runs and a fork of the first run of A, queued (a live run)
create temp table t_b as select pgqrs_tests.finished_run(jsonb_build_object('b', n)) as run_id
from generate_series(1, 2) as n;
create temp table t_fork as select pgqrs.fork_run((select min(run_id) from t_a), null) as run_id;
select is(
    (
        select count(*)::integer
        from pgqrs.runs as r
        where r.tableoid = format('pgqrs.runs_from_%s', (select first_id from t_first))::regclass
    ),
    3, 'partition A holds the three runs'
);

set local "pgqrs.now" = '2030-01-10 00:00:00+00';
select is(pgqrs.purge_runs('1 day'), 3::bigint, 'the first call drops partition A: its three runs');
select is(
    (
        select
            array[
                to_regclass(format('pgqrs.runs_from_%s', f.first_id)),
                to_regclass(format('pgqrs.steps_from_%s', f.first_id)),
                to_regclass(format('pgqrs.messages_archive_from_%s', f.first_id))
            ]
        from t_first as f
    ),
    array[null, null, null]::regclass[],
    'its partitions of runs, steps and messages_archive are gone'
);
select is((select count(*) from pgqrs.runs where run_id in (select run_id from t_a)), 0::bigint, 'its runs are gone');
select is((select count(*) from pgqrs.steps where run_id in (select run_id from t_a)), 0::bigint, 'their steps');
select is(
    (select count(*) from pgqrs.messages_archive where message_id in (select run_id from t_a)), 0::bigint,
    'their archived messages'
);
select is(
    (select count(*) from pgqrs.run_messages where run_id in (select run_id from t_a)), 0::bigint,
    'the messages sent to them'
);
select is(
    (select count(*) from pgqrs.idempotency_keys where run_id in (select run_id from t_a)), 0::bigint,
    'their idempotency keys'
);
select is(
    (select forked_from from pgqrs.runs where run_id = (select run_id from t_fork)), null,
    'the fork is kept, no longer pointing at its origin'
);

-- B holds a live run (the fork): its finished runs are deleted, the partition stays
select is(pgqrs.purge_runs('1 day'), 2::bigint, 'the next call deletes the two finished runs of B');
select isnt(
    to_regclass(format('pgqrs.runs_from_%s', (select first_id + 3 from t_first))), null, 'B is not dropped'
);
select is(
    (select array_agg(run_id) from pgqrs.runs where run_id >= (select first_id from t_first)),
    array[(select run_id from t_fork)], 'only the fork is left'
);
select is(pgqrs.purge_runs('1 day'), 0::bigint, 'nothing more to purge');

-- the key of a dropped run starts a new run
select is(
    (select created from pgqrs.trigger('wf', '{"a": 2}', 'order-1')), true,
    'the idempotency key of a dropped run starts a new run'
);

select * from finish();
rollback;
