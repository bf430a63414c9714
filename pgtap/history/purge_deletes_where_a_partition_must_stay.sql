-- A partition is not dropped while a run of it must stay: one too young, a child whose parent (in an older
-- partition) has not finished, a parent whose child is in a later partition. Its other runs are deleted in
-- batches as before; a partition the batches emptied is dropped by a later purge.
begin;
select plan(10);

select pgqrs_tests.setup_workflow();
select pgqrs.create_workflow('kid');
create temp table t_kw as select pgqrs.register_worker('kw', 'h', null, 'kid') as worker_id;
set local "pgqrs.now" = '2030-01-01 00:00:00+00';
create temp table t_first as select pgqrs_tests.small_partitions(2) as first_id;

-- A: a parent, leased, and a finished run; B: the parent's child (finished) and a finished run
create temp table t_parent as select (pgqrs_tests.leased_run()).*;
create temp table t_done as select pgqrs_tests.finished_run() as run_id;
create temp table t_child as
select pgqrs.start_child((select run_id from t_parent), 'c', (select lease_token from t_parent), 'kid') as run_id;
create temp table t_kl as select * from pgqrs.dequeue('kid', (select worker_id from t_kw));
select pgqrs.complete_run((select run_id from t_kl), (select lease_token from t_kl), '{}');
insert into t_done select pgqrs_tests.finished_run();
select is(
    (
        select array_agg(r.tableoid::regclass::text order by r.run_id)
        from pgqrs.runs as r
        where r.run_id >= (select first_id from t_first)
    ),
    array[
        format('pgqrs.runs_from_%s', (select first_id from t_first)),
        format('pgqrs.runs_from_%s', (select first_id from t_first)),
        format('pgqrs.runs_from_%s', (select first_id + 2 from t_first)),
        format('pgqrs.runs_from_%s', (select first_id + 2 from t_first))
    ],
    'parent and a finished run in A, the child and a finished run in B'
);

-- too young: nothing goes
set local "pgqrs.now" = '2030-01-01 12:00:00+00';
select is(pgqrs.purge_runs('1 day'), 0::bigint, 'runs finished less than a day ago stay');

-- old enough, but the parent has not finished: B is not dropped (its child's parent may wait for it), nor A
set local "pgqrs.now" = '2030-01-10 00:00:00+00';
select is(pgqrs.purge_runs('1 day'), 2::bigint, 'the two other finished runs are deleted, not dropped');
select is(
    (select count(*)::integer from pgqrs._history_partitions() as p where p.first_id >= (select first_id from t_first)),
    2, 'both partitions stay'
);
select is(
    (select count(*) from pgqrs.runs where run_id in (select run_id from t_child)), 1::bigint,
    'the child of the running parent is kept'
);

-- the parent finishes (within its lease): its child in B still holds A (a parent goes after its children)
set local "pgqrs.now" = '2030-01-01 00:00:01+00';
select pgqrs.complete_run((select run_id from t_parent), (select lease_token from t_parent), '{}');
set local "pgqrs.now" = '2030-01-20 00:00:00+00';
select is(pgqrs.purge_runs('1 day'), 1::bigint, 'B is dropped: the child');
select is(
    to_regclass(format('pgqrs.runs_from_%s', (select first_id + 2 from t_first))), null, 'B is gone'
);
select is(pgqrs.purge_runs('1 day'), 1::bigint, 'then A is dropped: the parent');
select is(
    (select count(*)::integer from pgqrs._history_partitions() as p where p.first_id >= (select first_id from t_first)),
    0, 'both partitions are gone'
);
select is(pgqrs.purge_runs('1 day'), 0::bigint, 'nothing left');

select * from finish();
rollback;
