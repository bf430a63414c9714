"""The reads of the pgqrs 0.15 record listings (`store.get_workflows()`, `get_workflow_runs()`,
`get_workflow_steps()`, `get_messages()`): the record views of sql/ops/records.sql, which pgqrs_client and
pgqrs_worker may read. Each returns rows in the field order of its record class (pgqrs/_pgqrs015.py)."""

WORKFLOW_BY_NAME = (
    "select workflow_id, name, queue_id, created_at from pgqrs.workflow_records where name = %s"
)
RUNS = (
    "select run_id, workflow_id, status, input, output, error, created_at, updated_at"
    " from pgqrs.run_records order by run_id"
)
STEPS = (
    "select step_order, run_id, step_id, status, value, error, retry_at, started_at, updated_at"
    " from pgqrs.step_records order by step_order"
)
MESSAGE_COUNT = "select coalesce(sum(depth), 0)::bigint from pgqrs.queue_stats"
ARCHIVED_BY_QUEUE = (
    "select a.message_id, a.queue_id, r.input, a.enqueued_at, a.archived_at, a.read_count, a.worker_id"
    " from pgqrs.archived_messages as a join pgqrs.run_records as r on r.run_id = a.message_id"
    " where a.queue_id = %s::bigint order by a.message_id"
)
QUEUE_ID = "select queue_id from pgqrs.workflow_records where name = %s"
