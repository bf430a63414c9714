"""Absurd 0.5.1, agent side."""

import os
import subprocess
import sys

from absurd_sdk import Absurd

QUEUE = "bench"


def _app(dsn):
    app = Absurd(dsn, queue_name=QUEUE)

    @app.register_task(name="bench_wf")
    def bench_wf(params, ctx):
        n = params["n"]
        a = ctx.step("a", lambda: {"i": n})
        b = ctx.step("b", lambda: {"i": n + 1})
        c = ctx.step("c", lambda: {"i": n + 2})
        return {"sum": a["i"] + b["i"] + c["i"]}

    return app


def install(dsn):
    ctl = os.path.join(os.path.dirname(sys.executable), "absurdctl")
    subprocess.run([ctl, "init", "-d", dsn], check=True, capture_output=True)
    subprocess.run([ctl, "create-queue", QUEUE, "-d", dsn], check=True, capture_output=True)


class Client:
    def __init__(self, dsn):
        self.app = _app(dsn)

    def trigger(self, n):
        return str(self.app.spawn("bench_wf", {"n": n})["task_id"])

    def close(self):
        self.app.close()


def worker(dsn, idx, wait_go):
    app = _app(dsn)
    wait_go()
    app.start_worker(worker_id=f"peer-{idx}")
