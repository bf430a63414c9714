"""The dashboard's reads (`pgqrs dashboard`, docs/dashboard.md): the ops views and the engine's read functions
only, as the CLI's (`_sql.ops`), so a login with pgqrs_client or pgqrs_worker can run a read-only dashboard.
Its actions are the engine calls of `pgqrs._sql` (RETRY_RUN, RESUME_RUN, ...), the same the CLI sends."""

# A page of runs, newest first, by keyset (run_id < the last id shown), so a page deep in the history costs as
# much as the first: a backward scan of the runs' primary key that stops after `limit` matches. Every filter
# is optional; with a NULL parameter its condition folds away when the statement is planned.
RUNS_PAGE = """
select run_id, workflow, status, attempt, current_step, current_step_status, created_at, updated_at,
       finished_at, worker, error
from pgqrs.run_overview
where (%(before)s::bigint is null or run_id < %(before)s::bigint)
  and (%(workflow)s::text is null or workflow = %(workflow)s::text)
  and (%(status)s::text is null or status = %(status)s::text)
  and (%(since)s::timestamptz is null or created_at >= %(since)s::timestamptz)
  and (%(until)s::timestamptz is null or created_at < %(until)s::timestamptz)
order by run_id desc
limit %(limit)s::integer
"""
# the runs started with an idempotency key (the unique index per workflow: a few index lookups)
RUN_BY_KEY = """
select o.run_id, o.workflow, o.status, o.attempt, o.current_step, o.current_step_status, o.created_at,
       o.updated_at, o.finished_at, o.worker, o.error
from pgqrs.run_keys as k
join pgqrs.run_overview as o on o.run_id = k.run_id
where k.idempotency_key = %(key)s and (%(workflow)s::text is null or k.workflow = %(workflow)s::text)
order by o.run_id desc
"""
WORKFLOW_NAMES = "select distinct queue from pgqrs.queue_stats order by queue"
QUEUES = "select * from pgqrs.queue_stats order by queue"
WORKERS = "select * from pgqrs.worker_status order by status, heartbeat_at desc"
# a worker's /metrics (pgqrs.worker_metrics): its queue and itself
QUEUE = "select * from pgqrs.queue_stats where queue = %s"
WORKER = "select * from pgqrs.worker_status where worker_id = %s::bigint"
# runs finished per minute over the last `minutes`, by outcome: the overview's chart
FINISHED_PER_MINUTE = """
select date_trunc('minute', finished_at) as minute,
       count(*) filter (where status = 'SUCCESS') as succeeded,
       count(*) filter (where status = 'ERROR') as failed
from pgqrs.run_finishes
-- the bound as a subquery: computed once (an InitPlan), not pgqrs.now() once per row scanned
where finished_at >= (select pgqrs.now() - %(minutes)s::integer * interval '1 minute')
group by 1
order by 1
"""
NOW = "select pgqrs.now() as now"
RUN = (
    "select s.*, o.worker from pgqrs.run_status(p_run => %(run)s::bigint) as s"
    " left join pgqrs.run_overview as o on o.run_id = s.run_id"
)
RUN_STEPS = "select * from pgqrs.run_steps(p_run => %(run)s::bigint)"
RUN_CHILDREN = "select * from pgqrs.run_children(p_run => %(run)s::bigint)"
RUN_WAIT = "select * from pgqrs.waiting_runs where run_id = %(run)s::bigint"
# newest first, keyset on message_id (= run_id): the archive's primary key read backwards
DEAD_LETTERS = """
select * from pgqrs.dead_letters
where (%(before)s::bigint is null or message_id < %(before)s::bigint)
order by message_id desc
limit %(limit)s::integer
"""
PAUSED = "select * from pgqrs.paused_runs order by run_id desc limit %(limit)s::integer"
STUCK = "select * from pgqrs.stuck_runs order by lease_expired_at limit %(limit)s::integer"
WAITING = "select * from pgqrs.waiting_runs order by since limit %(limit)s::integer"
RETRYING = "select * from pgqrs.retrying_runs order by retry_at limit %(limit)s::integer"
SCHEDULES = "select * from pgqrs.schedules order by name"
DEAD_LETTER_COUNT = "select count(*) as dead_letters from pgqrs.dead_letters"
# which actions the connected role may take: the dashboard shows only those
CAN_EXECUTE = "select has_function_privilege(%s, 'execute') as allowed"
# whether the login may take a role (a member of it); each connection then takes it: SET ROLE takes no
# parameter, formatted with one of the dashboard's fixed role names (dashboard/safety.py)
HAS_ROLE = "select pg_has_role(current_user, %(role)s, 'MEMBER') as member"
SET_ROLE = "set role {role}"
