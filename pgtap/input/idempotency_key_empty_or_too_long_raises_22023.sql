-- An idempotency key must be 1-255 characters; nothing is written otherwise.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');

select throws_ok($$select * from pgqrs.trigger('wf', '{}', p_idempotency_key => '')$$, '22023', null, 'empty key');
select throws_ok(
    format($$select * from pgqrs.trigger('wf', '{}', p_idempotency_key => %L)$$, repeat('k', 256)),
    '22023', null, '256-character key'
);
select is((select count(*) from pgqrs.runs), 0::bigint, 'nothing written');

select * from finish();
rollback;
