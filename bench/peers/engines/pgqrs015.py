"""pgqrs 0.15.3 from PyPI: the unrelated Rust-core project of the same name (async Python bindings).

Installed only into its own venv: in the project's .venv `import pgqrs` is this repository's package.
"""

from urllib.parse import quote

NAME = "pgqrs015"
LABEL = "pgqrs 0.15.3 (PyPI, Rust core)"
REQUIREMENTS = ["pgqrs==0.15.3", "psycopg[binary]==3.3.9"]
SETTINGS = ("stock dequeue().worker(c).batch(1).handle_workflow(wf).poll(store) loop, default poll interval; "
            "@workflow / @step decorators (each step acquire_step + success); 1 run in flight per process")


def dsn(host: str, port: str, user: str, db: str) -> str:
    # its driver (sqlx) takes a unix-socket directory only as a percent-encoded URL host
    return f"postgresql://{user}@{quote(host, safe='')}:{port}/{db}"


# The worker creates the run row when it first takes the message; it archives the message after success.
DONE_ONE = "select 1 from pgqrs_workflow_runs where message_id = %s and status = 'SUCCESS'"
DONE_COUNT = "select count(*) from pgqrs_messages where archived_at is not null"
TOTAL = "select count(*) from pgqrs_messages"
TIMES = """select extract(epoch from enqueued_at)::float8, extract(epoch from dequeued_at)::float8,
    extract(epoch from archived_at)::float8 from pgqrs_messages where archived_at is not null"""

VERIFY = """
select count(distinct (r.input->'input'->>'n')::int) from pgqrs_workflow_runs r
 join pgqrs_messages m on m.id = r.message_id and m.archived_at is not null
 where r.status = 'SUCCESS'
   and (r.input->'input'->>'n')::int between 0 and %(n)s - 1
   and r.output = jsonb_build_object('sum', 3 * (r.input->'input'->>'n')::int + 3)
   and (select count(*) from pgqrs_workflow_steps s where s.run_id = r.id and s.status = 'SUCCESS'
         and s.output = jsonb_build_object('i', (r.input->'input'->>'n')::int
             + case s.step_name when 'step_a' then 0 when 'step_b' then 1 when 'step_c' then 2 end)) = 3
"""


def verify(conn, n):
    return conn.execute(VERIFY, {"n": n}).fetchone()[0]
