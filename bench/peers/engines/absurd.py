"""Absurd 0.5.1: durable execution in PL/pgSQL (absurdctl 0.5.1 applies its bundled schema), Python SDK."""

NAME = "absurd"
LABEL = "Absurd 0.5.1 (PL/pgSQL)"
REQUIREMENTS = ["absurd-sdk==0.5.1", "absurdctl==0.5.1", "psycopg[binary]==3.3.9"]
SETTINGS = ("stock start_worker(): concurrency 1, batch 1, poll_interval 0.25 s, claim_timeout 120 s; "
            "ctx.step(name, fn) checkpoints; 1 run in flight per process")


def dsn(host: str, port: str, user: str, db: str) -> str:
    return f"postgresql://{user}@/{db}?host={host}&port={port}"


DONE_ONE = "select 1 from absurd.t_bench where task_id = %s and state = 'completed'"
DONE_COUNT = "select count(*) from absurd.t_bench where state = 'completed'"
TOTAL = "select count(*) from absurd.t_bench"
TIMES = """select extract(epoch from created_at)::float8, extract(epoch from started_at)::float8,
    extract(epoch from completed_at)::float8 from absurd.r_bench where state = 'completed'"""

VERIFY = """
select count(distinct (t.params->>'n')::int) from absurd.t_bench t
 where t.state = 'completed'
   and (t.params->>'n')::int between 0 and %(n)s - 1
   and t.completed_payload = jsonb_build_object('sum', 3 * (t.params->>'n')::int + 3)
   and (select count(*) from absurd.c_bench c where c.task_id = t.task_id and c.status = 'committed'
         and c.state = jsonb_build_object('i', (t.params->>'n')::int
             + case c.checkpoint_name when 'a' then 0 when 'b' then 1 when 'c' then 2 end)) = 3
"""


def verify(conn, n):
    return conn.execute(VERIFY, {"n": n}).fetchone()[0]
