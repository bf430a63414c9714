-- fork_run refuses an unknown run (QR002) and a step the run did not record or a malformed step id (22023),
-- and writes nothing.
begin;
select plan(6);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_l as select * from pgqrs_tests.run_at_step('s2', '{s1}');
create temp table t_counts as
select (select count(*) from pgqrs.runs) as runs, (select count(*) from pgqrs.steps) as steps;

select throws_ok('select pgqrs.fork_run(-1, ''s1'')', 'QR002', null, 'an unknown run: QR002');
select throws_ok('select pgqrs.fork_run(null, ''s1'')', 'QR002', null, 'a NULL run: QR002');
select throws_ok(
    format('select pgqrs.fork_run(%s, ''nope'')', (select run_id from t_l)), '22023',
    format('run %s has no step nope', (select run_id from t_l)), 'a step the run did not record: 22023'
);
select throws_ok(
    format('select pgqrs.fork_run(%s, '''')', (select run_id from t_l)), '22023', null, 'an empty step id: 22023'
);
select throws_ok(
    format('select pgqrs.fork_run(%s, repeat(''x'', 256))', (select run_id from t_l)), '22023', null,
    'a step id over 255 characters: 22023'
);
select is(
    (select (select count(*) from pgqrs.runs) = runs and (select count(*) from pgqrs.steps) = steps from t_counts),
    true, 'nothing was written'
);

select * from finish();
rollback;
