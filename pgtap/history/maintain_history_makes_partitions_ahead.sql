-- pgqrs.maintain_history keeps two ranged partitions of the history holding run ids not issued yet, on the same
-- bounds for runs, steps and messages_archive; a run id past the ranges lands in the default partition, and the
-- next partition starts above it; a bad width raises 22023 and changes nothing.
begin;
select plan(13);

select pgqrs_tests.setup_workflow();
create temp table t_first as select pgqrs_tests.small_partitions(3) as first_id;
create temp view v_ranges as
select string_agg(format('%s-%s', p.first_id - t.first_id, p.end_id - t.first_id), ' ' order by p.first_id) as r
from pgqrs._history_partitions() as p, t_first as t;
select is((select r from v_ranges), '0-3 3-6', 'two partitions of 3 run ids from the next run id on');
select is(pgqrs.maintain_history(3), 0, 'enough ahead: nothing made');

-- three runs fill the first partition: one more is made ahead
create temp table t_runs as
select (pgqrs.trigger('wf', jsonb_build_object('n', n))).run_id from generate_series(1, 3) as n;
select is(
    (
        select array_agg(distinct r.tableoid::regclass::text) from pgqrs.runs as r
        where r.run_id in (select t.run_id from t_runs as t)
    ),
    array[format('pgqrs.runs_from_%s', (select first_id from t_first))],
    'the runs are in the first partition'
);
select is(pgqrs.maintain_history(3), 1, 'the first partition full: one made');
select is((select r from v_ranges), '0-3 3-6 6-9', 'next to the last one');
select is(
    (
        select array_agg(c.relname::text order by c.relname) from pg_inherits as i
        inner join pg_class as c on i.inhrelid = c.oid
        where i.inhparent = 'pgqrs.steps'::regclass and c.relkind = 'r'
    ),
    array(
        select 'steps_' || coalesce('from_' || p.first_id, 'default') as n
        from (
            select p.first_id from pgqrs._history_partitions() as p
            union all
            select null
        ) as p
        order by n
    ),
    'steps has the same partitions as runs'
);

-- past the ranges (no maintenance meanwhile): the default partition catches the run
insert into t_runs
select (pgqrs.trigger('wf', jsonb_build_object('m', n))).run_id from generate_series(1, 7) as n;
select is(
    (select r.tableoid::regclass::text from pgqrs.runs as r where r.run_id = (select max(run_id) from t_runs)),
    'pgqrs.runs_default', 'a run id past the last ranged partition lands in the default partition'
);
-- and a row written there with an id the sequence has not issued yet (not the engine's doing, but possible)
insert into pgqrs.runs (run_id, workflow_id, status, input)
select
    pgqrs._next_run_id() + 1 as run_id, w.workflow_id, 'SUCCESS' as status, '{}'::jsonb as input
from pgqrs.workflows as w where w.name = 'wf';
create temp table t_late as select max(d.run_id) as run_id from pgqrs.runs_default as d;
select is(pgqrs.maintain_history(3), 2, 'two more made');
select ok(
    (select min(p.first_id) from pgqrs._history_partitions() as p where p.end_id > pgqrs._next_run_id())
    > (select run_id from t_late),
    'the new partitions start above the ids in the default partition (no row moves)'
);

-- bad widths: 22023, nothing made
create temp table t_before as select r from v_ranges;
select throws_ok($$select pgqrs.maintain_history(0)$$, '22023', null, 'a width of 0 raises 22023');
select throws_ok($$select pgqrs.maintain_history(-5)$$, '22023', null, 'a negative width raises 22023');
select throws_ok(
    $$select pgqrs.maintain_history(100000000000)$$, '22023', null, 'an absurd width raises 22023'
);
select is((select r from v_ranges), (select r from t_before), 'no partition made');

select * from finish();
rollback;
