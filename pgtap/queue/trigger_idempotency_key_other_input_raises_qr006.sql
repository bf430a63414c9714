-- Reusing an idempotency key with a different input is refused; keys are per workflow.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');
create temp table t_wf2 as select * from pgqrs.create_workflow('wf2');
create temp table t_first as select * from pgqrs.trigger('wf', '{"order": 7}', p_idempotency_key => 'order-7');

select throws_ok(
    $$select * from pgqrs.trigger('wf', '{"order": 8}', p_idempotency_key => 'order-7')$$,
    'QR006', null, 'same key, different input raises QR006'
);
select results_eq(
    $$select (select count(*) from pgqrs.runs), (select count(*) from pgqrs.messages)$$,
    $$values (1::bigint, 1::bigint)$$,
    'nothing was written'
);
select is(
    (select input from pgqrs.runs where run_id = (select run_id from t_first)), '{"order": 7}'::jsonb,
    'the existing run keeps its input'
);
select is(
    (select created from pgqrs.trigger('wf2', '{"order": 8}', p_idempotency_key => 'order-7')), true,
    'the same key in another workflow starts a new run'
);

select * from finish();
rollback;
