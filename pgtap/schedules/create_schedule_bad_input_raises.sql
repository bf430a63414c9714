-- Bad input to the schedule functions raises a clear SQLSTATE and writes nothing.
begin;
select plan(11);
select pgqrs.create_workflow('wf');

select throws_ok(
    $$select pgqrs.create_schedule('s', 'nope', '* * * * *')$$, 'QR001', 'unknown workflow: nope',
    'an unknown workflow'
);
select throws_ok(
    $$select pgqrs.create_schedule('s', 'wf', '* * * * * *')$$, '22023',
    'invalid cron expression "* * * * * *": it has 6 fields, not 5', 'a bad cron expression'
);
select throws_ok(
    $$select pgqrs.create_schedule('s', 'wf', '0 0 31 2 *')$$, '22023',
    'cron expression "0 0 31 2 *" never fires', 'an expression that never fires'
);
select throws_ok(
    $$select pgqrs.create_schedule('s', 'wf', '* * * * *', '{}', 'Mars/Olympus')$$, '22023',
    'unknown time zone: Mars/Olympus', 'an unknown time zone'
);
select throws_ok(
    $$select pgqrs.create_schedule('s', 'wf', '* * * * *', '{}', 'UTC+3')$$, '22023',
    'unknown time zone: UTC+3', 'a POSIX offset is not an IANA zone'
);
select throws_ok(
    $$select pgqrs.create_schedule('s', 'wf', '* * * * *', '{}', 'UTC', 'some')$$, '22023',
    'catch_up must be latest or all, got some', 'a bad catch_up'
);
select throws_ok(
    $$select pgqrs.create_schedule('s', 'wf', '* * * * *', null)$$, '22023',
    'run input must be a JSON value, got SQL NULL', 'input SQL NULL'
);
select throws_ok(
    $$select pgqrs.create_schedule('bad name', 'wf', '* * * * *')$$, '22023',
    'invalid schedule name: bad name', 'a bad name'
);
select throws_ok(
    $$select pgqrs.set_schedule_enabled('s', null)$$, '22023',
    'enabled must be true or false, not NULL', 'enabled NULL'
);
select throws_ok(
    $$select pgqrs.cron_next('* * * * *', 'UTC', 'infinity')$$, '22023', null,
    'cron_next from infinity'
);
select is((select count(*) from pgqrs.schedule_defs), 0::bigint, 'nothing was written');

select * from finish();
rollback;
