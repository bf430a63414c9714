-- The same idempotency key with the same input returns the existing run with created = false.
begin;
select plan(5);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');
create temp table t_first as select * from pgqrs.trigger('wf', '{"order": 7}', p_idempotency_key => 'order-7');
set local "pgqrs.now" = '2030-01-01 00:01:00+00';
create temp table t_second as select * from pgqrs.trigger('wf', '{"order": 7}', p_idempotency_key => 'order-7');

select is((select created from t_first), true, 'the first call creates the run');
select is((select created from t_second), false, 'the second call reports created = false');
select is((select run_id from t_second), (select run_id from t_first), 'the second call returns the same run');
select is((select message_id from t_second), (select run_id from t_first), 'and the same message id');
select results_eq(
    $$select (select count(*) from pgqrs.runs), (select count(*) from pgqrs.messages)$$,
    $$values (1::bigint, 1::bigint)$$,
    'one run and one message exist'
);

select * from finish();
rollback;
