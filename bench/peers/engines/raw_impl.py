"""The raw-SQL bound, agent side."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import psycopg  # noqa: E402
import rawbound  # noqa: E402

install = rawbound.install


class Client:
    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=0)

    def trigger(self, n: int) -> int:
        return self.conn.execute(rawbound.TRIGGER, (json.dumps({"n": n}),)).fetchone()[0]

    def close(self) -> None:
        self.conn.close()


def worker(dsn: str, idx: int, wait_go) -> None:
    rawbound.worker(dsn, idx, wait_go)
