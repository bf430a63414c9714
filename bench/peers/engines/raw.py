"""The raw-SQL bound (bench/rawbound.py): plain psycopg, 1 commit to trigger, 5 per run in the worker."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import rawbound  # noqa: E402

NAME = "raw"
LABEL = "raw-SQL bound (plain psycopg)"
REQUIREMENTS = None
SETTINGS = "1 run in flight per process; LISTEN wake-up, 1 s fallback poll; prepared statements, autocommit"
DONE_ONE = "select 1 from runs where id = %s and status = 'SUCCESS'"
DONE_COUNT = rawbound.DONE_SQL
TOTAL = rawbound.TOTAL_SQL
TIMES = rawbound.TIMES_SQL
verify = rawbound.verify
