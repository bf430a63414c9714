-- A delivery that recorded a step made progress: its lost lease starts the count again at 1, so a long run whose
-- worker is killed now and then (but moves on each time) is never failed for it.
begin;
select plan(2);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow('{"max_attempts": 2}') as worker_id;
create temp table t_run as select * from pgqrs.trigger('wf', '{}');

create temp table t_d1 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds');
set local "pgqrs.now" = '2030-01-01 00:00:30+00';
create temp table t_d2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds');
select pgqrs.complete_step((select run_id from t_d2), 'a', (select lease_token from t_d2), '1');
set local "pgqrs.now" = '2030-01-01 00:01:00+00';
create temp table t_d3 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds');
select is((select count(*) from t_d3), 1::bigint, 'delivered again: the lost delivery had recorded a step');
select is((select failed_deliveries from pgqrs.messages), 1, 'the count starts again at 1');

select * from finish();
rollback;
