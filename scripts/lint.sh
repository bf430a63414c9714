#!/usr/bin/env bash
# Lint the Python: the generated sync twins are fresh (scripts/gen_sync.py), ruff, mypy --strict.
# Lint the SQL: sqlfluff (sql/ and pgtap/), no `when others` handlers, and plpgsql_check on every PL/pgSQL
# function of schema pgqrs in a scratch database. Needs scripts/deps.sh; starts the cluster if needed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
status=0

# 0. Python: pgqrs/sync/ holds exactly what the generator makes of the async modules today (regenerated into a
#    temporary directory and compared; sync/_compat.py is the one hand-written module), then ruff and mypy
#    (strict; files and settings in pyproject.toml)
echo "== sync twins fresh"
twins=$(mktemp -d)
trap 'rm -rf "$twins"' EXIT
if ! .venv/bin/python scripts/gen_sync.py --out "$twins" >/dev/null \
        || ! diff -ru --exclude=_compat.py --exclude=__pycache__ "$twins" pgqrs_py/pgqrs/sync; then
    echo "lint: pgqrs_py/pgqrs/sync/ is stale: run \`make sync\` and commit the result" >&2
    status=1
fi
echo "== ruff"
.venv/bin/ruff check pgqrs_py tests scripts/gen_sync.py || status=1
echo "== mypy --strict"
.venv/bin/mypy || status=1

# 1. sqlfluff
mapfile -t files < <(find sql pgtap -name '*.sql' -not -path 'sql/fixtures/*' 2>/dev/null | LC_ALL=C sort)
if ((${#files[@]})); then
    echo "== sqlfluff (${#files[@]} files)"
    # (PYTHONWARNINGS: the worker processes' resource_tracker warns about a semaphore at exit; noise)
    if ! PYTHONWARNINGS=ignore::UserWarning .venv/bin/sqlfluff lint --nocolor --processes 2 "${files[@]}"; then
        echo "lint: layout findings (LT..) are mostly fixed by: .venv/bin/sqlfluff fix FILE..." >&2
        status=1
    fi
fi

# 2. an unexpected error must surface as itself: no catch-all exception handlers (comments excepted)
echo "== no 'when others' handlers"
if grep -rniE --include='*.sql' 'when[[:space:]]+others' sql/ | grep -viE ':[0-9]+:[[:space:]]*--|--.*when[[:space:]]+others'; then
    echo "lint: 'exception when others' found in sql/" >&2
    status=1
fi

# 3. plpgsql_check on the installed schema, where the server has it (Debian's postgresql-15-plpgsql-check;
#    the embedded wheel's PostgreSQL 18 has none, and CI runs this on PostgreSQL 15 too)
echo "== plpgsql_check"
scripts/pg.sh start >/dev/null
eval "$(scripts/pg.sh env)"
if [[ -z $(psql -X -At -d postgres -c "select 1 from pg_available_extensions where name = 'plpgsql_check'") ]]; then
    echo "plpgsql_check: not available for PostgreSQL $(psql -X -At -d postgres -c 'show server_version'), skipped"
    exit $status
fi
scripts/pg.sh schema pgqrs_lint
report=$(psql -X -v ON_ERROR_STOP=1 -q -At -F ' | ' -d pgqrs_lint <<'SQL'
set client_min_messages = warning;
create extension if not exists plpgsql_check;
-- trigger functions are checked against a table that uses them; unused ones cannot be checked
select c.level, p.oid::regprocedure, 'line ' || coalesce(c.lineno::text, '?'), c.sqlstate, c.message,
       coalesce(c.detail, ''), coalesce(c.hint, '')
from pg_proc as p
join pg_language as l on l.oid = p.prolang and l.lanname = 'plpgsql'
left join lateral (select t.tgrelid from pg_trigger as t where t.tgfoid = p.oid limit 1) as trg on true
cross join lateral plpgsql_check_function_tb(p.oid, coalesce(trg.tgrelid, 0)) as c
where p.pronamespace = 'pgqrs'::regnamespace
  and p.prorettype <> 'event_trigger'::regtype
  and (p.prorettype <> 'trigger'::regtype or trg.tgrelid is not null)
order by c.level = 'error' desc, 2, c.lineno;
SQL
)
nfunc=$(psql -X -At -d pgqrs_lint -c "select count(*) from pg_proc as p join pg_language as l on l.oid = p.prolang
    where l.lanname = 'plpgsql' and p.pronamespace = 'pgqrs'::regnamespace")
[[ -n $report ]] && echo "$report"
nerr=$(grep -c '^error |' <<<"$report" || true)
echo "plpgsql_check: $nfunc functions, $nerr errors, $(grep -c . <<<"$report" || true) findings"
((nerr == 0)) || status=1

exit $status
