"""DBOS 3.4.0, agent side."""

import os
import subprocess
import sys
import time

from dbos import DBOS, DBOSClient

QUEUE = "bench"
APP = "peers"
VERSION = "bench-1"


@DBOS.step()
def step_a(n):
    return {"i": n}


@DBOS.step()
def step_b(n):
    return {"i": n + 1}


@DBOS.step()
def step_c(n):
    return {"i": n + 2}


@DBOS.workflow(name="bench_wf")
def bench_wf(n):
    a = step_a(n)
    b = step_b(n)
    c = step_c(n)
    return {"sum": a["i"] + b["i"] + c["i"]}


def install(dsn):
    cli = os.path.join(os.path.dirname(sys.executable), "dbos")
    subprocess.run([cli, "migrate", "-s", dsn], check=True, capture_output=True)
    client = DBOSClient(system_database_url=dsn, application_name=APP)
    client.register_queue(QUEUE)
    client.destroy()


class Client:
    def __init__(self, dsn):
        self.client = DBOSClient(system_database_url=dsn, application_name=APP)

    def trigger(self, n):
        wid = f"run-{n}"
        self.client.enqueue({"queue_name": QUEUE, "workflow_name": "bench_wf", "workflow_id": wid,
                             "app_version": VERSION}, n)
        return wid

    def close(self):
        self.client.destroy()


def worker(dsn, idx, wait_go):
    # each process its own executor id: processes sharing one would recover each other's runs at launch
    DBOS(config={"name": APP, "system_database_url": dsn, "log_level": "WARNING",
                 "application_version": VERSION, "executor_id": f"peer-{idx}"})
    wait_go()
    DBOS.launch()
    while True:
        time.sleep(3600)
