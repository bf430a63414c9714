#!/usr/bin/env bash
# A throwaway primary and hot standby (streaming replication) on this machine, for failover tests and trials.
#
#   scripts/ha.sh start [--async]   a fresh pair: the primary, then the standby (pg_basebackup -R); synchronous by
#                                   default (synchronous_standby_names = '*', synchronous_commit = on: a commit
#                                   returns once the standby has it), --async: the standby may lag
#   scripts/ha.sh crash             the primary stops as if it crashed (pg_ctl stop -m immediate)
#   scripts/ha.sh promote           the standby becomes the primary
#   scripts/ha.sh stop              stops both (what is left running) and removes their directories
#   scripts/ha.sh dsn               the multi-host DSN of the pair: libpq tries the primary, then the standby, and
#                                   keeps the one that accepts writes (target_session_attrs=read-write)
#   scripts/ha.sh dirs              the two cluster directories
#
# The clusters are $PGQRS_HA_DIR-primary and $PGQRS_HA_DIR-standby (default PGQRS_HA_DIR=/tmp/pgqrs-ha), each a
# scripts/pg.sh cluster (same binaries: PGQRS_PGBIN; PGQRS_FSYNC as there). `start` removes a previous pair of the
# same PGQRS_HA_DIR first: after a failover the old primary is behind its former standby and cannot rejoin it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=${PGQRS_HA_DIR:-/tmp/pgqrs-ha}
PRIMARY=$PREFIX-primary
STANDBY=$PREFIX-standby

pg() {  # pg.sh on one of the two clusters: pg DIR COMMAND [ARGS...]
    local dir=$1
    shift
    PGQRS_PGDIR=$dir "$ROOT/scripts/pg.sh" "$@"
}

stop_pair() {
    local dir
    for dir in "$PRIMARY" "$STANDBY"; do
        if [[ -f $dir/PG_VERSION ]]; then pg "$dir" stop >/dev/null; fi
        rm -rf "$dir"
    done
}

start_pair() {
    local standbys='*'
    [[ ${1:-} == --async ]] && standbys=''
    [[ -z ${1:-} || ${1:-} == --async ]] || { echo "ha.sh: start [--async]" >&2; exit 1; }
    stop_pair
    # synchronous_commit on in both cases: with a synchronous standby a commit waits for it, without one it
    # waits for the primary's own WAL flush (what the asynchronous variant may lose is then only the standby lag)
    PGQRS_SYNC_COMMIT=on PGQRS_SYNC_STANDBYS=$standbys pg "$PRIMARY" start
    PGQRS_SYNC_COMMIT=on pg "$STANDBY" standby "$PRIMARY"
    echo "pair ready ($([[ -n $standbys ]] && echo synchronous || echo asynchronous)): $(dsn)"
}

dsn() {
    echo "host=$PRIMARY,$STANDBY port=5432,5432 user=postgres dbname=postgres target_session_attrs=read-write"
}

case ${1:-} in
    start) start_pair "${2:-}" ;;
    crash) pg "$PRIMARY" crash ;;
    promote) pg "$STANDBY" promote ;;
    stop) stop_pair ;;
    dsn) dsn ;;
    dirs) echo "$PRIMARY $STANDBY" ;;
    *) echo "usage: $0 start [--async]|crash|promote|stop|dsn|dirs" >&2; exit 1 ;;
esac
