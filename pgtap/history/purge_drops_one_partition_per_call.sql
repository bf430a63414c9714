-- A purge drops one partition per call (the drop's lock lasts until the transaction ends), the oldest first, and
-- with it what other tables hold for its runs: here a wait row left for one of them.
begin;
select plan(6);

select pgqrs_tests.setup_workflow();
set local "pgqrs.now" = '2030-01-01 00:00:00+00';
create temp table t_first as select pgqrs_tests.small_partitions(2) as first_id;
create temp table t_runs as
select pgqrs_tests.finished_run(jsonb_build_object('n', n)) as run_id from generate_series(1, 4) as n;
insert into pgqrs.waits (run_id, step_id, kind, until, since)
values ((select min(run_id) from t_runs), 's', 'sleep', pgqrs.now(), pgqrs.now());

set local "pgqrs.now" = '2030-01-10 00:00:00+00';
select is(pgqrs.purge_runs('1 day'), 2::bigint, 'the first call drops the oldest partition: two runs');
select is(to_regclass(format('pgqrs.runs_from_%s', (select first_id from t_first))), null, 'it is gone');
select isnt(
    to_regclass(format('pgqrs.runs_from_%s', (select first_id + 2 from t_first))), null, 'the next one is not'
);
select is(
    (select count(*) from pgqrs.waits where run_id in (select run_id from t_runs)), 0::bigint,
    'the wait row of a dropped run is gone'
);
select is(pgqrs.purge_runs('1 day'), 2::bigint, 'the next call drops the next one');
select is(pgqrs.purge_runs('1 day'), 0::bigint, 'nothing left');

select * from finish();
rollback;
