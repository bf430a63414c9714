-- Each delivery of a run carries a fencing token greater than the last one's, across retries and retry_run.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow('{"max_attempts": 1}') as worker_id;
create temp table t_run as select * from pgqrs.trigger('wf', '{}');

create temp table t_d1 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds');
select pgqrs.release_run((select run_id from t_d1), (select lease_token from t_d1));
create temp table t_d2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 5, '30 seconds');
select cmp_ok((select fencing_token from t_d2), '>', (select fencing_token from t_d1), 'a second delivery: greater');
select pgqrs.fail_run((select run_id from t_d2), (select lease_token from t_d2), '{}');
select pgqrs.retry_run((select run_id from t_run));
create temp table t_d3 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds');
select cmp_ok((select fencing_token from t_d3), '>', (select fencing_token from t_d2), 'after retry_run: greater');
select is((select fencing_token from t_d3), 3::bigint, 'it counts deliveries');

select * from finish();
rollback;
