"""procrastinate 3.10.0: a task queue, no step checkpoints -- the queue baseline.

One job per run; the three "steps" are computed in memory inside the job and nothing is checkpointed, and
procrastinate stores no return value: verify() can only check that each job 0..n-1 succeeded once.
"""

NAME = "procrastinate"
LABEL = "procrastinate 3.10.0 (no steps: a queue baseline)"
REQUIREMENTS = ["procrastinate==3.10.0", "psycopg[binary]==3.3.9"]
SETTINGS = ("stock run_worker(): concurrency 1, LISTEN/NOTIFY wake-up, 5 s fallback poll; NO step "
            "checkpoints and no stored result")


def dsn(host: str, port: str, user: str, db: str) -> str:
    return f"postgresql://{user}@/{db}?host={host}&port={port}"


DONE_ONE = "select 1 from procrastinate_jobs where id = %s and status = 'succeeded'"
DONE_COUNT = "select count(*) from procrastinate_jobs where status = 'succeeded'"
TOTAL = "select count(*) from procrastinate_jobs"
TIMES = """select extract(epoch from min(at) filter (where type = 'deferred'))::float8,
    extract(epoch from min(at) filter (where type = 'started'))::float8,
    extract(epoch from max(at) filter (where type = 'succeeded'))::float8
    from procrastinate_events group by job_id having count(*) filter (where type = 'succeeded') > 0"""


def verify(conn, n):
    return conn.execute("""select count(distinct (args->>'n')::int) from procrastinate_jobs
        where status = 'succeeded' and (args->>'n')::int between 0 and %s - 1""", (n,)).fetchone()[0]
