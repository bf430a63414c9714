#!/usr/bin/env bash
# Throwaway PostgreSQL 15 cluster for development and tests.
#
#   scripts/pg.sh start|stop|status|env|createdb NAME|schema NAME
#
# The cluster lives in $PGQRS_PGDIR (default /tmp/pgqrs-pg): data directory, unix socket and server.log all in
# that one directory, no TCP. Several clusters can run side by side, one per directory (each has its own socket).
#   PGQRS_FSYNC=off|on        fsync (off for tests, on for benchmarks); default off
#   PGQRS_SYNC_COMMIT=on|off  synchronous_commit; defaults to the fsync value
#   PGQRS_PGBIN               server binaries; default /usr/lib/postgresql/15/bin
# Settings are rewritten on every start, so a restart picks up a changed PGQRS_FSYNC.
set -euo pipefail

PGDIR=${PGQRS_PGDIR:-/tmp/pgqrs-pg}
PGBIN=${PGQRS_PGBIN:-/usr/lib/postgresql/15/bin}
PGPORT=5432
FSYNC=${PGQRS_FSYNC:-off}
SYNC_COMMIT=${PGQRS_SYNC_COMMIT:-$FSYNC}
export PATH="$PGBIN:$PATH:/usr/sbin:/sbin" LC_ALL=C   # runuser is in sbin

die() { echo "pg.sh: $*" >&2; exit 1; }

[[ $PGDIR == /* ]] || PGDIR="$(pwd)/$PGDIR"
PGDIR=${PGDIR%/}
# a unix socket path is limited to ~107 bytes (sun_path)
(( ${#PGDIR} + ${#PGPORT} + 10 < 100 )) || die "PGQRS_PGDIR too long for a unix socket path: $PGDIR"

# The server refuses to run as root: run it as postgres then; otherwise as the invoking user.
as_server() {
    if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

is_running() { [[ -f $PGDIR/PG_VERSION ]] && as_server pg_ctl -D "$PGDIR" status >/dev/null 2>&1; }

psql_admin() { psql -X -v ON_ERROR_STOP=1 -q -h "$PGDIR" -p "$PGPORT" -U postgres -d postgres "$@"; }

init_cluster() {
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
full_page_writes = $fpw
max_connections = 200
shared_buffers = 256MB
shared_preload_libraries = '$preload'
log_min_messages = warning
logging_collector = off
EOF
}

start() {
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
    local name=${1:?usage: pg.sh schema NAME} root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    createdb "$name"
    psql -X -v ON_ERROR_STOP=1 -q -h "$PGDIR" -p "$PGPORT" -U postgres -d "$name" -f "$root/sql/install.sql" \
        || die "applying sql/install.sql failed"
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) echo "export PGHOST=$PGDIR PGUSER=postgres PGDATABASE=postgres PGPORT=$PGPORT" ;;
    createdb) createdb "${2:-}" ;;
    schema) schema "${2:-}" ;;
    *) die "usage: $0 start|stop|status|env|createdb NAME|schema NAME" ;;
esac
