-- Daylight saving (docs/schedules.md): a local time in the spring-forward gap fires once, an hour later by the
-- clock (read with the offset before the change); a local time of the fall-back hour fires once, at its second
-- occurrence (standard time).
begin;
select plan(9);

-- America/New_York: 2030-03-10 02:00 EST -> 03:00 EDT; 2030-11-03 02:00 EDT -> 01:00 EST
select is(
    pgqrs.cron_next('30 2 * * *', 'America/New_York', '2030-03-09 07:30+00'), '2030-03-10 07:30+00',
    'spring forward: 02:30 does not exist; it fires at 03:30 EDT (07:30 UTC)'
);
select is(
    pgqrs.cron_next('30 2 * * *', 'America/New_York', '2030-03-10 07:30+00'), '2030-03-11 06:30+00',
    '... once: the next tick is 02:30 EDT the day after'
);
select is(
    pgqrs.cron_next('30 1 * * *', 'America/New_York', '2030-11-02 05:30+00'), '2030-11-03 06:30+00',
    'fall back: 01:30 occurs twice; it fires at the second, 01:30 EST (06:30 UTC)'
);
select is(
    pgqrs.cron_next('30 1 * * *', 'America/New_York', '2030-11-03 06:30+00'), '2030-11-04 06:30+00',
    '... once: the next tick is the day after'
);
select is(
    pgqrs.cron_next('30 1 * * *', 'America/New_York', '2030-11-03 05:40+00'), '2030-11-03 06:30+00',
    'during the first pass through 01:xx the tick is still ahead'
);
select is(
    array(
        select t from (
            select
                pgqrs.cron_next(
                    '0 * * * *', 'America/New_York', '2030-11-03 03:30+00'::timestamptz
                    + make_interval(hours => h)
                ) as t
            from generate_series(0, 4) as h
        ) as x
    ),
    array[
        '2030-11-03 04:00+00', '2030-11-03 06:00+00', '2030-11-03 06:00+00', '2030-11-03 07:00+00',
        '2030-11-03 08:00+00'
    ]::timestamptz[],
    'hourly on the fall-back night: 00:00 EDT, then 01:00 EST (the 01:00 EDT tick is not repeated)'
);
select is(
    pgqrs.cron_next('0 2 * * *', 'Europe/Berlin', '2030-03-30 01:00+00'), '2030-03-31 01:00+00',
    'Europe/Berlin spring forward: 02:00 fires at 03:00 CEST'
);
select is(
    pgqrs._cron_tick('30 2 * * *', 'America/New_York', '2030-03-10 08:00+00', false), '2030-03-10 07:30+00',
    'the previous tick agrees with the next one across the gap'
);
select is(
    pgqrs._cron_tick('30 1 * * *', 'America/New_York', '2030-11-03 06:00+00', false), '2030-11-02 05:30+00',
    'the previous tick skips the first pass through the fall-back hour'
);

select * from finish();
rollback;
