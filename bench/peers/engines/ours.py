"""pgqrs, this repository (PL/pgSQL engine + the Python package in the project's .venv)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import benchwf  # noqa: E402

NAME = "ours"
LABEL = "pgqrs (this repository)"
REQUIREMENTS = None
SETTINGS = ("stock consumer(...).handler(wf).poll_forever(): concurrency 1, visibility 30 s, LISTEN wake-up, "
            "2 s safety-net poll; @pgqrs.step coroutines")
DONE_ONE = "select 1 from pgqrs.runs where run_id = %s and status = 'SUCCESS'"
DONE_COUNT = benchwf.DONE_SQL
TOTAL = benchwf.TOTAL_SQL
TIMES = benchwf.TIMES_SQL
verify = benchwf.verify
