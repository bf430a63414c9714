-- fire_schedules starts one run per due tick, with the schedule's input and a key of schedule and tick; a second
-- call, or a call before the next tick, starts nothing; the view shows the next and last fire.
begin;
select plan(8);
set local "pgqrs.now" = '2030-01-01 10:00:30+00';
select pgqrs.create_workflow('wf');
select is(
    (select next_fire_at from pgqrs.create_schedule('every-5', 'wf', '*/5 * * * *', '{"n": 1}')),
    '2030-01-01 10:05+00', 'create_schedule returns the next fire, computed in the engine'
);
select is((select count(*) from pgqrs.fire_schedules()), 0::bigint, 'nothing is due before the first tick');

set local "pgqrs.now" = '2030-01-01 10:05:00+00';
create temp table t_fired as select * from pgqrs.fire_schedules();
select results_eq(
    'select schedule, tick from t_fired', $$values ('every-5', '2030-01-01 10:05+00'::timestamptz)$$,
    'the due tick starts a run'
);
select is(
    (select row(r.status, r.input, r.idempotency_key) from pgqrs.runs as r join t_fired using (run_id)),
    row(
        'QUEUED'::text, '{"n": 1}'::jsonb,
        'pgqrs.schedule:' || (select schedule_id from pgqrs.schedule_defs) || ':1893492300'
    ),
    'a queued run with the schedule''s input and the key of schedule and tick'
);
select is((select count(*) from pgqrs.fire_schedules()), 0::bigint, 'a second call starts nothing');
set local "pgqrs.now" = '2030-01-01 10:09:59+00';
select is((select count(*) from pgqrs.fire_schedules()), 0::bigint, 'nor does one before the next tick');
select is(
    (select row(next_fire_at, last_fire_at, last_run_id, last_run_status) from pgqrs.schedules),
    row(
        '2030-01-01 10:10+00'::timestamptz, '2030-01-01 10:05+00'::timestamptz, (select run_id from t_fired),
        'QUEUED'::text
    ),
    'the view: next and last fire, last run and its status'
);
-- a re-fire of a tick that already has its run (as if the schedule row had not moved on) starts nothing new
update pgqrs.schedule_defs set next_fire_at = '2030-01-01 10:05+00';
select is(
    (select count(*) from pgqrs.fire_schedules()), 0::bigint,
    'the idempotency key: a tick whose run exists is not started again'
);

select * from finish();
rollback;
