-- The record views: workflow_records (with the queue id), run_records (input, output, error), step_records
-- (the journal in recorded order) and archived_messages (retired messages with their outcome).
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.run_at_step('b', array['a'], '"in"');
select pgqrs.complete_step((select run_id from t_lease), 'b', (select lease_token from t_lease), '2');
select pgqrs.complete_run((select run_id from t_lease), (select lease_token from t_lease), '"out"');

select results_eq(
    $$select w.name, w.queue_id = q.queue_id from pgqrs.workflow_records as w join pgqrs.queues as q using (name)$$,
    $$values ('wf'::text, true)$$,
    'a workflow with its queue'
);
select results_eq(
    $$select workflow, status, input, output, error from pgqrs.run_records$$,
    $$values ('wf'::text, 'SUCCESS'::text, '"in"'::jsonb, '"out"'::jsonb, null::jsonb)$$,
    'a run with input and output'
);
select results_eq(
    $$select step_id, status, value from pgqrs.step_records order by step_order$$,
    $$values ('a'::text, 'SUCCESS'::text, '"a"'::jsonb), ('b', 'SUCCESS', '2')$$,
    'its steps in recorded order'
);
select results_eq(
    $$select message_id, outcome from pgqrs.archived_messages$$,
    $$values ((select run_id from t_lease), 'SUCCESS'::text)$$,
    'its retired message'
);

select * from finish();
rollback;
