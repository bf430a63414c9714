-- Run input is any JSON value (since schema version 7): arrays, scalars and JSON null start runs that carry them;
-- SQL NULL is 22023 and writes nothing.
begin;
select plan(7);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');

select throws_ok(
    $$select * from pgqrs.trigger('wf', null)$$, '22023', 'run input must be a JSON value, got SQL NULL', 'SQL NULL'
);
select results_eq(
    $$select (select count(*) from pgqrs.runs), (select count(*) from pgqrs.messages)$$,
    $$values (0::bigint, 0::bigint)$$,
    'nothing written for SQL NULL'
);
select lives_ok($$select * from pgqrs.trigger('wf', '[1, 2]')$$, 'an array');
select lives_ok($$select * from pgqrs.trigger('wf', '42')$$, 'a number');
select lives_ok($$select * from pgqrs.trigger('wf', '"text"')$$, 'a string');
select lives_ok($$select * from pgqrs.trigger('wf', 'null')$$, 'JSON null');
select results_eq(
    $$select r.input from pgqrs.runs as r order by r.run_id$$,
    $$values ('[1, 2]'::jsonb), ('42'), ('"text"'), ('null')$$,
    'each run keeps its input as given'
);

select * from finish();
rollback;
