-- A bad cron expression raises 22023 with a message naming the field and the reason.
begin;
select plan(10);

select throws_ok(
    $$select pgqrs.cron_next('* * * *', 'UTC', '2030-01-01')$$, '22023',
    'invalid cron expression "* * * *": it has 4 fields, not 5', 'four fields'
);
select throws_ok(
    $$select pgqrs.cron_next('', 'UTC', '2030-01-01')$$, '22023',
    'invalid cron expression "": it has 0 fields, not 5', 'empty'
);
select throws_ok(
    $$select pgqrs.cron_next('60 * * * *', 'UTC', '2030-01-01')$$, '22023',
    'invalid cron expression "60 * * * *": minute field "60": 60 is out of range 0-59', 'minute 60'
);
select throws_ok(
    $$select pgqrs.cron_next('0 24 * * *', 'UTC', '2030-01-01')$$, '22023',
    'invalid cron expression "0 24 * * *": hour field "24": 24 is out of range 0-23', 'hour 24'
);
select throws_ok(
    $$select pgqrs.cron_next('0 0 0 * *', 'UTC', '2030-01-01')$$, '22023',
    'invalid cron expression "0 0 0 * *": day-of-month field "0": 0 is out of range 1-31', 'day 0'
);
select throws_ok(
    $$select pgqrs.cron_next('0 0 * Foo *', 'UTC', '2030-01-01')$$, '22023',
    'invalid cron expression "0 0 * Foo *": month field "Foo": "Foo" is not a value', 'an unknown month name'
);
select throws_ok(
    $$select pgqrs.cron_next('0 0 * * MON-SUNDAY', 'UTC', '2030-01-01')$$, '22023',
    'invalid cron expression "0 0 * * MON-SUNDAY": day-of-week field "MON-SUNDAY": "SUNDAY" is not a value',
    'only three-letter names'
);
select throws_ok(
    $$select pgqrs.cron_next('*/0 * * * *', 'UTC', '2030-01-01')$$, '22023',
    'invalid cron expression "*/0 * * * *": minute field "*/0": bad step in "*/0"', 'step 0'
);
select throws_ok(
    $$select pgqrs.cron_next('0 17-9 * * *', 'UTC', '2030-01-01')$$, '22023',
    'invalid cron expression "0 17-9 * * *": hour field "17-9": range "17-9" runs backwards',
    'a backwards range'
);
select throws_ok(
    $$select pgqrs.cron_next('1,,2 * * * *', 'UTC', '2030-01-01')$$, '22023',
    'invalid cron expression "1,,2 * * * *": minute field "1,,2": an empty item in the list', 'an empty list item'
);

select * from finish();
rollback;
