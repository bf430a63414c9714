-- pgqrs: the records of workflows, runs, steps and retired messages, one row each, for programs that list
-- them (the pgqrs 0.15 readers: store.get_workflows(), get_workflow_runs(), get_workflow_steps(),
-- get_messages(); pgqrs_py/pgqrs/compat_015/records.py). Read-only, like every view of the schema.

create or replace view pgqrs.workflow_records as
select w.workflow_id, w.name, q.queue_id, w.created_at
from pgqrs.workflows as w
join pgqrs.queues as q using (workflow_id);
comment on view pgqrs.workflow_records is 'Workflow definitions with the id of their queue.';

create or replace view pgqrs.run_records as
select
    r.run_id, r.workflow_id, w.name as workflow, r.status, r.input, r.output, r.error, r.attempt, r.created_at,
    r.updated_at
from pgqrs.runs as r
join pgqrs.workflows as w using (workflow_id);
comment on view pgqrs.run_records is
'Runs with their input, output and error (pgqrs.run_overview has the current step).';

create or replace view pgqrs.step_records as
select
    s.step_order, s.run_id, s.step_id, s.status, s.value, s.error, s.attempt, s.retry_at, s.started_at,
    s.updated_at
from pgqrs.steps as s;
comment on view pgqrs.step_records is
'The step journal, one row per step of a run: step_order increases with the first time a step is recorded.';

create or replace view pgqrs.archived_messages as
select a.message_id, a.queue_id, a.outcome, a.enqueued_at, a.archived_at, a.read_count, a.worker_id
from pgqrs.messages_archive as a;
comment on view pgqrs.archived_messages is
'Retired messages: outcome SUCCESS (the run succeeded), DEAD_LETTER (it failed for good) or CANCELLED.';
