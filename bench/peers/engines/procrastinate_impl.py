"""procrastinate 3.10.0, agent side."""

import procrastinate


def _app(dsn, sync=False):
    connector = procrastinate.SyncPsycopgConnector(conninfo=dsn) if sync else \
        procrastinate.PsycopgConnector(conninfo=dsn)
    app = procrastinate.App(connector=connector)

    @app.task(name="bench_wf", queue="bench")
    async def bench_wf(n):
        a, b, c = {"i": n}, {"i": n + 1}, {"i": n + 2}  # the "steps": in memory, not checkpointed
        return {"sum": a["i"] + b["i"] + c["i"]}

    return app


def install(dsn):
    app = _app(dsn, sync=True)
    with app.open():
        app.schema_manager.apply_schema()


class Client:
    def __init__(self, dsn):
        self.app = _app(dsn, sync=True)
        self.app.open()
        self.task = self.app.tasks["bench_wf"]

    def trigger(self, n):
        return self.task.defer(n=n)

    def close(self):
        self.app.close()


def worker(dsn, idx, wait_go):
    app = _app(dsn)
    wait_go()
    app.run_worker(queues=["bench"], name=f"peer-{idx}", wait=True)
