#!/usr/bin/env bash
# Install what the project needs, skipping what is already there:
#  - Debian packages: pgTAP + pg_prove, plpgsql_check, pg_cron (for tests/test_schedules_pg_cron.py)
#    and Debian's chromium + chromium-driver (the dashboard's browser tests, make screenshots)
#    (apt-get update only when something is missing)
#  - .venv with `pip install -e '.[dev,embedded,dashboard]'`, redone only when pyproject.toml or setup.py changed (stamp file)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

APT_PACKAGES=(postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl postgresql-15-plpgsql-check postgresql-15-cron
    chromium chromium-driver)
PYTHON=${PYTHON:-python3}

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "deps: installing ${missing[*]}"
    sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stamp=.venv/.pgqrs-deps-stamp
want=$(cat pyproject.toml setup.py | sha256sum | cut -d' ' -f1)
if [[ -x .venv/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
    exit 0
fi
echo "deps: setting up .venv"
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,embedded,dashboard]'
echo "$want" >"$stamp"
