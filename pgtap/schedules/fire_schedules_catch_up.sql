-- Missed ticks: catch_up latest starts one run for the newest; all starts each, at most 100 (the newest),
-- oldest first; either way the schedule then waits for the next tick after now.
begin;
select plan(6);
set local "pgqrs.now" = '2030-01-01 10:00:30+00';
select pgqrs.create_workflow('wf');
select pgqrs.create_schedule('latest', 'wf', '*/15 * * * *', '{}', 'UTC', 'latest');
select pgqrs.create_schedule('all', 'wf', '*/15 * * * *', '{}', 'UTC', 'all');
select pgqrs.create_schedule('all-many', 'wf', '* * * * *', '{}', 'UTC', 'all');

set local "pgqrs.now" = '2030-01-01 12:00:00+00';  -- 10:15 to 12:00 due: 8 quarter hours, 120 minutes
create temp table t_fired as select * from pgqrs.fire_schedules();
select results_eq(
    $$select tick from t_fired where schedule = 'latest'$$, $$values ('2030-01-01 12:00+00'::timestamptz)$$,
    'latest: one run, for the newest missed tick'
);
select results_eq(
    $$select tick from t_fired where schedule = 'all' order by run_id$$,
    $$select generate_series('2030-01-01 10:15+00'::timestamptz, '2030-01-01 12:00+00', '15 minutes')$$,
    'all: a run for each missed tick, oldest first'
);
select is(
    (select (count(*), min(tick), max(tick)) from t_fired where schedule = 'all-many'),
    (100::bigint, '2030-01-01 10:21+00'::timestamptz, '2030-01-01 12:00+00'::timestamptz),
    'all: at most 100 (of 120 due), the newest'
);
select results_eq(
    'select name, next_fire_at from pgqrs.schedules order by name',
    $$values ('all', '2030-01-01 12:15+00'::timestamptz), ('all-many', '2030-01-01 12:01+00'),
             ('latest', '2030-01-01 12:15+00')$$,
    'each schedule waits for its next tick after now'
);
set local "pgqrs.now" = '2030-01-02 12:00:00+00';  -- a day missed
select is(
    (select count(*) from pgqrs.fire_schedules() where schedule = 'all-many'), 100::bigint,
    'a day of minutes missed: the cap holds'
);
select is(
    (select count(*) from pgqrs.runs), (1 + 8 + 100 + 1 + 96 + 100)::bigint,
    'no tick started twice (the second call: 1 latest, 96 quarter hours, 100 minutes)'
);

select * from finish();
rollback;
