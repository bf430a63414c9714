"""DBOS Transact 3.4.0 (Python): @DBOS.workflow / @DBOS.step over a Postgres system database, DB queue."""

import base64
import pickle

NAME = "dbos"
LABEL = "DBOS 3.4.0"
REQUIREMENTS = ["dbos==3.4.0", "psycopg[binary]==3.3.9"]
SETTINGS = ("stock queue 'bench' (polling_interval_sec 1.0, no worker_concurrency limit), runs on DBOS's "
            "thread pool; DBOS.launch() after go; an executor_id per process; default pickle serializer")


def dsn(host: str, port: str, user: str, db: str) -> str:
    return f"postgresql://{user}@/{db}?host={host}&port={port}"


DONE_ONE = "select 1 from dbos.workflow_status where workflow_uuid = %s and status = 'SUCCESS'"
DONE_COUNT = "select count(*) from dbos.workflow_status where status = 'SUCCESS' and queue_name = 'bench'"
TOTAL = "select count(*) from dbos.workflow_status where queue_name = 'bench'"
TIMES = """select created_at / 1000.0, started_at_epoch_ms / 1000.0, completed_at / 1000.0
    from dbos.workflow_status where status = 'SUCCESS' and queue_name = 'bench'"""


def _unpickle(text):
    # outputs are base64 pickles of plain dicts of ints (our own runs in our own database)
    return pickle.loads(base64.b64decode(text))


def verify(conn, n):
    outputs = conn.execute("""select s.workflow_uuid, o.output from dbos.workflow_status s
        join dbos.workflow_output o using (workflow_uuid)
        where s.status = 'SUCCESS' and s.queue_name = 'bench'""").fetchall()
    steps = {}
    for wid, fn, out in conn.execute("""select workflow_uuid, function_name, output
            from dbos.operation_outputs where error is null"""):
        steps.setdefault(wid, {})[fn] = _unpickle(out)
    good = set()
    for wid, out in outputs:
        k = int(wid.rsplit("-", 1)[1])
        if (0 <= k < n and out is not None and _unpickle(out) == {"sum": 3 * k + 3}
                and steps.get(wid) == {"step_a": {"i": k}, "step_b": {"i": k + 1}, "step_c": {"i": k + 2}}):
            good.add(k)
    return len(good)
