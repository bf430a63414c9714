-- fork_run only reads the original: its run, steps and message stay exactly as they were, whatever its status
-- (here RUNNING under a lease, which it keeps); p_from_step NULL is a plain re-run that copies no step.
begin;
select plan(5);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_l as select * from pgqrs_tests.run_at_step('s3', '{s1,s2}');
create temp table t_before as
select
    (select to_jsonb(r) from pgqrs.runs as r where r.run_id = l.run_id) as run,
    (select jsonb_agg(to_jsonb(s) order by s.step_order) from pgqrs.steps as s where s.run_id = l.run_id) as steps,
    (select to_jsonb(m) from pgqrs.messages as m where m.message_id = l.run_id) as message
from t_l as l;
set local "pgqrs.now" = '2030-01-01 00:00:10+00';

create temp table t_forks as
select pgqrs.fork_run((select run_id from t_l), 's2') as from_s2, pgqrs.fork_run((select run_id from t_l)) as plain;

select is(
    (select to_jsonb(r) from pgqrs.runs as r where r.run_id = (select run_id from t_l)),
    (select run from t_before), 'the original run row is unchanged (RUNNING)'
);
select is((
    select jsonb_agg(to_jsonb(s) order by s.step_order) from pgqrs.steps as s
    where s.run_id = (select run_id from t_l)
),
(select steps from t_before), 'its steps are unchanged');
select is(
    (select to_jsonb(m) from pgqrs.messages as m where m.message_id = (select run_id from t_l)),
    (select message from t_before), 'its message and lease are unchanged'
);
select lives_ok(
    format(
        'select pgqrs.complete_step(%s, ''s3'', %L, ''3'')', (select run_id from t_l), (select lease_token from t_l)
    ),
    'its worker goes on under its lease'
);
select is(
    (select count(*) from pgqrs.steps where run_id = (select plain from t_forks)), 0::bigint,
    'p_from_step NULL copies no step'
);

select * from finish();
rollback;
