-- Names with quotes, spaces, non-ASCII letters or over 128 characters are 22023 (not QR001); nothing is written.
begin;
select plan(8);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select throws_ok($$select pgqrs.create_workflow('zip''files')$$, '22023', null, 'a quote');
select throws_ok($$select pgqrs.create_workflow('zip"files')$$, '22023', null, 'a double quote');
select throws_ok($$select pgqrs.create_workflow('zip files')$$, '22023', null, 'a space');
select throws_ok($$select pgqrs.create_workflow('zíp_fïles')$$, '22023', null, 'non-ASCII letters');
select throws_ok(format('select pgqrs.create_workflow(%L)', repeat('a', 1000)), '22023', null, '1,000 characters');
select throws_ok(
    $$select * from pgqrs.trigger('zip files', '{}')$$, '22023', null, 'trigger with a space: 22023, not QR001'
);
select lives_ok(
    format('select pgqrs.create_workflow(%L)', 'a.b:c-d_' || repeat('e', 119)),
    'letters, digits and _ . : - up to 128 characters are fine'
);
select is((select count(*) from pgqrs.workflows), 1::bigint, 'only the valid one was written');

select * from finish();
rollback;
