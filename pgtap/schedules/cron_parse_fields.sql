-- Cron fields: lists, ranges, steps, `*/n`, `a/n`, month and weekday names (any case), 7 = Sunday, shorthands.
begin;
select plan(10);

select is((pgqrs._cron_parse('*/15 * * * *')).minutes, '{0,15,30,45}', '*/15 minutes');
select is((pgqrs._cron_parse('0 9-17/4 * * *')).hours, '{9,13,17}', 'a range with a step');
select is((pgqrs._cron_parse('5,1,3-4 * * * *')).minutes, '{1,3,4,5}', 'a list of values and ranges, sorted');
select is((pgqrs._cron_parse('50/5 * * * *')).minutes, '{50,55}', 'a/n runs from a to the end');
select is((pgqrs._cron_parse('0 0 * jan,Mar-may *')).months, '{1,3,4,5}', 'month names, any case');
select is((pgqrs._cron_parse('0 0 * * MON-FRI')).weekdays, '{1,2,3,4,5}', 'weekday names as a range');
select is((pgqrs._cron_parse('0 0 * * 5-7')).weekdays, '{0,5,6}', '7 is Sunday, folded into 0');
select is(
    (select (p.days_any, p.weekdays_any) from pgqrs._cron_parse('0 0 */2 * 1') as p), (true, false),
    'a day field starting with * counts as unrestricted for the day rule'
);
select is(
    (select row(p.minutes, p.hours, p.days, p.months) from pgqrs._cron_parse('@daily') as p),
    row(
        '{0}'::integer[], '{0}'::integer[], (select array_agg(d) from generate_series(1, 31) as d),
        (select array_agg(m) from generate_series(1, 12) as m)
    ),
    '@daily is 0 0 * * *'
);
select is((pgqrs._cron_parse('  0   12 * * SUN ')).weekdays, '{0}', 'extra blanks are fine');

select * from finish();
rollback;
