-- A change (upsert by name) recomputes the next fire from now; disable stops the ticks (next fire NULL) and
-- enable counts from now, without catching up; drop leaves the runs started and nothing fires after it.
begin;
select plan(9);
set local "pgqrs.now" = '2030-01-01 10:00:30+00';
select pgqrs.create_workflow('wf');
select pgqrs.create_workflow('wf2');
select is(
    (select created from pgqrs.create_schedule('s', 'wf', '0 * * * *')), true, 'a new schedule is created'
);
set local "pgqrs.now" = '2030-01-01 11:00:00+00';
select is((select count(*) from pgqrs.fire_schedules()), 1::bigint, 'it fires');
create temp table t_changed as select * from pgqrs.create_schedule(
    's', 'wf2', '30 * * * *', '{"v": 2}',
    'Europe/Berlin', 'all'
);
select is(
    (select row(created, next_fire_at) from t_changed), row(false, '2030-01-01 11:30+00'::timestamptz),
    'a change updates the row and computes the next fire from now'
);
select is(
    (select row(workflow, cron, timezone, catch_up, input, last_fire_at) from pgqrs.schedules),
    row(
        'wf2'::text, '30 * * * *'::text, 'Europe/Berlin'::text, 'all'::text, '{"v": 2}'::jsonb,
        '2030-01-01 11:00+00'::timestamptz
    ),
    'the change is in the view; the last fire stays'
);
select is(pgqrs.set_schedule_enabled('s', false), true, 'disable');
set local "pgqrs.now" = '2030-01-01 14:00:00+00';
select is(
    (select row(enabled, next_fire_at) from pgqrs.schedules), row(false, null::timestamptz),
    'a disabled schedule has no next fire'
);
select is((select count(*) from pgqrs.fire_schedules()), 0::bigint, 'and fires nothing');
select pgqrs.set_schedule_enabled('s', true);
select is(
    (select next_fire_at from pgqrs.schedules), '2030-01-01 14:30+00'::timestamptz,
    'enabled again, it counts from now: the ticks missed while disabled are not caught up'
);
select is(
    (select(pgqrs.drop_schedule('s'), pgqrs.drop_schedule('s'), (select count(*) from pgqrs.runs))),
    (true, false, 1::bigint),
    'drop: true, then false; the run it started stays'
);

select * from finish();
rollback;
