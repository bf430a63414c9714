-- Run input must be a JSON object: arrays, scalars, JSON null and SQL NULL are 22023; nothing is written.
begin;
select plan(6);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');

select throws_ok($$select * from pgqrs.trigger('wf', '[1, 2]')$$, '22023', null, 'an array');
select throws_ok($$select * from pgqrs.trigger('wf', '42')$$, '22023', null, 'a number');
select throws_ok($$select * from pgqrs.trigger('wf', '"text"')$$, '22023', null, 'a string');
select throws_ok($$select * from pgqrs.trigger('wf', 'null')$$, '22023', null, 'JSON null');
select throws_ok($$select * from pgqrs.trigger('wf', null)$$, '22023', null, 'SQL NULL');
select results_eq(
    $$select (select count(*) from pgqrs.runs), (select count(*) from pgqrs.messages)$$,
    $$values (0::bigint, 0::bigint)$$,
    'nothing written'
);

select * from finish();
rollback;
