"""Every SQL statement the package sends lives in this package (tests/test_sql_home.py holds it to that).

This module: the engine calls of the client, the worker and the result listener. Each calls one engine
function with named arguments. `_sql.ops` holds the `pgqrs` command's reads, `_sql.install` the installer's
statements.

Integer parameters carry an explicit cast: psycopg sends a Python int as int2/int4/int8/numeric by its
size, and an int8 or numeric argument matches no pgqrs function (42883); with the cast, a value out of
range is PostgreSQL's 22003.
"""

NOW = "select pgqrs.now()"
CREATE_WORKFLOW = (
    "select workflow_id, name, retry_policy, max_concurrency, max_concurrency_per_key, rate_limit"
    " from pgqrs.create_workflow(p_name => %s, p_retry_policy => %s::jsonb, p_max_concurrency => %s,"
    " p_max_concurrency_per_key => %s, p_rate_limit => %s::jsonb)"
)
SET_WORKFLOW_LIMITS = (
    "select workflow_id, name, retry_policy, max_concurrency, max_concurrency_per_key, rate_limit"
    " from pgqrs.set_workflow_limits(p_workflow => %s, p_max_concurrency => %s,"
    " p_max_concurrency_per_key => %s, p_rate_limit => %s::jsonb)"
)
TRIGGER = (
    "select run_id, message_id, created from pgqrs.trigger(p_workflow => %s, p_input => %s::jsonb,"
    " p_idempotency_key => %s, p_delay => %s * interval '1 second', p_run_at => %s, p_priority => %s,"
    " p_concurrency_key => %s, p_trace_context => %s::jsonb, p_version => %s)"
)
REGISTER_WORKER = (
    "select pgqrs.register_worker(p_name => %s, p_hostname => %s, p_port => %s::integer, p_queue => %s),"
    " pgqrs.queue_channel(p_queue => %s), pgqrs.schema_version()"
)
STOP_WORKER = "select pgqrs.stop_worker(p_worker => %s::bigint)"
DEQUEUE = (
    "select message_id, run_id, input, attempt, lease_token, steps, fencing_token, trace_context"
    " from pgqrs.dequeue(p_queue => %s,"
    " p_worker => %s::bigint, p_batch_size => %s::integer, p_visibility => %s * interval '1 second',"
    " p_version => %s)"
)
HEARTBEAT = (
    "select lease_token, held, visible_until"
    " from pgqrs.heartbeat(p_worker => %s::bigint, p_lease_tokens => %s::uuid[], p_steps => %s::jsonb)"
)
ARCHIVE = "select pgqrs.archive(p_message_id => %s::bigint, p_worker => %s::bigint)"
ACQUIRE_STEP = (
    "select status, value, attempt, retry_at from pgqrs.acquire_step(p_run => %s::bigint, p_step_id => %s,"
    " p_lease_token => %s, p_current_time => %s)"
)
COMPLETE_STEP = (
    "select pgqrs.complete_step(p_run => %s::bigint, p_step_id => %s, p_lease_token => %s,"
    " p_value => %s::jsonb, p_duration => %s * interval '1 second')"
)
FAIL_STEP = (
    "select run_status, attempt, retry_at from pgqrs.fail_step(p_run => %s::bigint, p_step_id => %s,"
    " p_lease_token => %s, p_error => %s::jsonb, p_transient => %s,"
    " p_retry_after => %s * interval '1 second', p_retry_policy => %s::jsonb,"
    " p_duration => %s * interval '1 second')"
)
PAUSE_STEP = (
    "select status, value from pgqrs.pause_step(p_run => %s::bigint, p_step_id => %s, p_lease_token => %s,"
    " p_timeout => %s * interval '1 second')"
)
# a sleep's wake-up on the engine clock: an absolute time, or now + seconds (the worker's clock plays no part)
SLEEP_STEP = (
    "select status, until from pgqrs.sleep_step(p_run => %s::bigint, p_step_id => %s, p_lease_token => %s,"
    " p_until => coalesce(%s::timestamptz, pgqrs.now() + %s * interval '1 second'))"
)
WAIT_EVENT = (
    "select status, payload from pgqrs.wait_event(p_run => %s::bigint, p_step_id => %s, p_lease_token => %s,"
    " p_key => %s, p_timeout => %s * interval '1 second')"
)
EMIT_EVENT = "select pgqrs.emit_event(p_key => %s, p_payload => %s::jsonb)"
RECV = (
    "select status, message from pgqrs.recv(p_run => %s::bigint, p_step_id => %s, p_lease_token => %s,"
    " p_topic => %s, p_timeout => %s * interval '1 second')"
)
START_CHILD = (
    "select pgqrs.start_child(p_run => %s::bigint, p_step_id => %s, p_lease_token => %s, p_workflow => %s,"
    " p_input => %s::jsonb, p_trace_context => %s::jsonb)"
)
WAIT_CHILDREN = (
    "select status, children from pgqrs.wait_children(p_run => %s::bigint, p_step_id => %s,"
    " p_lease_token => %s, p_children => %s::bigint[])"
)
SEND = (
    "select pgqrs.send(p_run => %s::bigint, p_topic => %s, p_message => %s::jsonb, p_idempotency_key => %s)"
)
UPDATE_STEP = (
    "select run_id, step_id, status, value, error, attempt"
    " from pgqrs.update_step(p_run => %s::bigint, p_step_id => %s, p_status => %s, p_value => %s::jsonb)"
)
RESUME_RUN = "select pgqrs.resume_run(p_run => %s::bigint)"
RETRY_RUN = "select pgqrs.retry_run(p_run => %s::bigint)"
FORK_RUN = "select pgqrs.fork_run(p_run => %s::bigint, p_from_step => %s)"
SET_RUN_VERSION = "select pgqrs.set_run_version(p_run => %s::bigint, p_version => %s)"
RELEASE_RUN = "select pgqrs.release_run(p_run => %s::bigint, p_lease_token => %s, p_error => %s::jsonb)"
CANCEL_RUN = "select pgqrs.cancel_run(p_run => %s::bigint, p_reason => %s)"
COMPLETE_RUN = "select pgqrs.complete_run(p_run => %s::bigint, p_lease_token => %s, p_output => %s::jsonb)"
# COMPLETE_RUN, then DEQUEUE, in one statement (one transaction, one round trip: pgqrs/_poller.py): a row per
# run leased, the completion's status first; one row with NULLs for the lease when none was. The WITH query
# holds a volatile call, so it runs once and first: a left join's nested loop reads its outer side (the
# completion) before the inner (the dequeue, which sees the completion's writes, as a volatile function's
# statements do; tests/test_poller.py checks it with a workflow of max_concurrency 1).
COMPLETE_RUN_AND_DEQUEUE = (
    f"with finished as ({COMPLETE_RUN} as status)"
    f" select finished.status, leased.* from finished left join ({DEQUEUE}) as leased on true"
)
FAIL_RUN = "select pgqrs.fail_run(p_run => %s::bigint, p_lease_token => %s, p_error => %s::jsonb)"
RUN_STATUS = (
    "select run_id, workflow, status, input, output, error, attempt, created_at, started_at, finished_at,"
    " updated_at, current_step, visible_at, current_step_status, current_step_since, parent_run_id,"
    " forked_from, version from pgqrs.run_status(p_run => %s::bigint)"
)
RUN_STEPS = (
    "select step_id, status, value, error, attempt, retry_at, started_at, completed_at"
    " from pgqrs.run_steps(p_run => %s::bigint)"
)
# The recorded time span of each step of a run (replay drift: which steps ran side by side); the end of a step
# not finished is its last update.
RUN_STEP_SPANS = (
    "select step_id, started_at, coalesce(completed_at, updated_at) from pgqrs.run_steps(p_run => %s::bigint)"
)
RUNS_CHANNEL = "pgqrs_runs"
# LISTEN on a channel: the queue's (pgqrs.queue_channel, a lowercase identifier) or RUNS_CHANNEL. Format it
# with the channel name: LISTEN takes no parameter.
LISTEN = "listen {channel}"
RUNS_CHANNEL_KEY = "select pgqrs.runs_channel_key()"
# result() waiters: the finished ones among many runs, in one query (run_status is all a client may call)
FINISHED_RUNS = (
    "select s.run_id, s.workflow, s.status, s.input, s.output, s.error, s.attempt, s.created_at,"
    " s.started_at, s.finished_at, s.updated_at, s.current_step, s.visible_at"
    " from unnest(%s::bigint[]) as u (id), lateral pgqrs.run_status(p_run => u.id) as s"
    " where s.status in ('SUCCESS', 'ERROR', 'CANCELLED')"
)

# schedules (docs/schedules.md)
CREATE_SCHEDULE = (
    "select next_fire_at from pgqrs.create_schedule(p_name => %s, p_workflow => %s, p_cron => %s,"
    " p_input => %s::jsonb, p_timezone => %s, p_catch_up => %s)"
)
DROP_SCHEDULE = "select pgqrs.drop_schedule(p_name => %s)"
SET_SCHEDULE_ENABLED = "select pgqrs.set_schedule_enabled(p_name => %s, p_enabled => %s)"
FIRE_SCHEDULES = "select schedule, tick, run_id from pgqrs.fire_schedules()"
PURGE_RUNS = (
    "select pgqrs.purge_runs(p_older_than => %s::interval, p_statuses => %s::text[], p_limit => %s,"
    " p_dry_run => %s)"
)
SET_WORKFLOW_RETENTION = "select pgqrs.set_workflow_retention(p_workflow => %s, p_retention => %s::interval)"
APPLY_RETENTION = "select pgqrs.apply_retention()"
MAINTAIN_HISTORY = "select pgqrs.maintain_history(p_width => %s)"
SCHEDULES = (
    "select name, workflow, cron, timezone, catch_up, enabled, input, next_fire_at, last_fire_at,"
    " last_run_id, last_run_status from pgqrs.schedules order by name"
)
LEASE_RUN = (
    "select message_id, run_id, input, attempt, lease_token, steps, fencing_token, trace_context"
    " from pgqrs.lease_run(p_run => %s::bigint, p_worker => %s::bigint,"
    " p_visibility => %s * interval '1 second', p_lease_token => %s)"
)
RELEASE_WORKER_LEASES = "select pgqrs.release_worker_leases(p_worker => %s::bigint)"
SCHEMA_VERSION = "select pgqrs.schema_version()"
