"""The `pgqrs` command's reads: only the ops views and the engine's read functions, which pgqrs_client and
pgqrs_worker may use (only pgqrs_admin may read the tables, see docs/security.md). Rows come as dicts: the
column names are the output's keys. Its writes are the engine calls of `pgqrs._sql`."""

RUNS = """
select * from pgqrs.run_overview
where (%(status)s::text is null or status = %(status)s)
  and (%(workflow)s::text is null or workflow = %(workflow)s)
  and (%(version)s::text is null or version = %(version)s)
order by run_id desc
limit %(limit)s
"""
RUN = "select * from pgqrs.run_status(p_run => %s::bigint)"
RUN_STEPS = "select * from pgqrs.run_steps(p_run => %s::bigint)"
RUN_CHILDREN = "select * from pgqrs.run_children(p_run => %s::bigint)"
WORKERS = "select * from pgqrs.worker_status order by worker_id"
QUEUE_STATS = "select * from pgqrs.queue_stats order by queue"
QUEUE_VERSION_STATS = "select * from pgqrs.queue_version_stats order by queue, version nulls first"
RUN_COUNTS = """
select workflow, status, count(*) as runs
from pgqrs.run_overview
group by workflow, status
order by workflow, status
"""
SCHEDULES = "select * from pgqrs.schedules order by name"
