-- The next tick: steps, month ends (the 31st, 29 February), the day-of-month / day-of-week rule, and a
-- search that skips whole months (no minute-by-minute walk).
begin;
select plan(11);

select is(
    pgqrs.cron_next('*/15 * * * *', 'UTC', '2030-01-01 10:07:30+00'), '2030-01-01 10:15+00',
    'the next quarter hour'
);
select is(
    pgqrs.cron_next('*/15 * * * *', 'UTC', '2030-01-01 10:15+00'), '2030-01-01 10:30+00',
    'strictly after the given time'
);
select is(
    pgqrs.cron_next('59 23 31 12 *', 'UTC', '2030-12-31 23:59+00'), '2031-12-31 23:59+00',
    'the last minute of a year, a year on'
);
select is(
    pgqrs.cron_next('0 0 31 * *', 'UTC', '2030-01-31 12:00+00'), '2030-03-31 00:00+00',
    'the 31st skips February'
);
select is(
    pgqrs.cron_next('0 0 31 * *', 'UTC', '2030-04-01 00:00+00'), '2030-05-31 00:00+00',
    'the 31st skips April'
);
select is(
    pgqrs.cron_next('0 0 29 2 *', 'UTC', '2030-03-01 00:00+00'), '2032-02-29 00:00+00',
    '29 February: the next leap year'
);
select is(
    pgqrs.cron_next('0 0 29 2 *', 'UTC', '2097-01-01 00:00+00'), '2104-02-29 00:00+00',
    '29 February: 2100 is not a leap year'
);
select is(
    pgqrs.cron_next('0 0 30 2 *', 'UTC', '2030-01-01 00:00+00'), null,
    'an expression that never fires has no next tick'
);
select is(
    pgqrs.cron_next('0 0 13 * FRI', 'UTC', '2030-12-01 00:00+00'), '2030-12-06 00:00+00',
    'both day fields restricted: either one matches (Friday 6th before the 13th)'
);
select is(
    pgqrs.cron_next('0 0 */10 * FRI', 'UTC', '2030-12-01 00:00+00'), '2031-01-31 00:00+00',
    'a day field starting with *: both must match (a Friday that is the 1st, 11th, 21st or 31st)'
);
select is(
    pgqrs.cron_next('30 9 * * MON-FRI', 'Europe/Berlin', '2030-12-06 09:00+00'),
    '2030-12-09 08:30+00', 'weekdays only, in the schedule''s time zone (Friday evening to Monday 09:30 CET)'
);

select * from finish();
rollback;
