-- create_workflow with the same name twice yields the same row and one queue.
begin;
select plan(5);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_first as select * from pgqrs.create_workflow('wf');
set local "pgqrs.now" = '2030-01-01 00:05:00+00';
create temp table t_second as select * from pgqrs.create_workflow('wf');

select results_eq(
    'select * from t_second', 'select * from t_first',
    'the second call returns the same row (id, policy, created_at)'
);
select is((select count(*) from pgqrs.workflows where name = 'wf'), 1::bigint, 'one definition row');
select is((select count(*) from pgqrs.queues where name = 'wf'), 1::bigint, 'one queue with the same name');
select is(
    (select workflow_id from pgqrs.queues where name = 'wf'), (select workflow_id from t_first),
    'the queue belongs to the definition'
);
select is(
    (select created_at from t_second), '2030-01-01 00:00:00+00'::timestamptz,
    'created_at is the first call''s time'
);

select * from finish();
rollback;
