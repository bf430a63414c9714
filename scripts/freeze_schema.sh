#!/usr/bin/env bash
# Freeze the engine SQL of a schema version as a test fixture: sql/fixtures/schema-v<VERSION>.sql.
#
#   scripts/freeze_schema.sh VERSION [COMMIT]
#
# Writes the concatenation of sql/*.sql (top level, name order) **as committed** at COMMIT (default HEAD),
# never the working tree: the fixture must be the SQL of the commit that first shipped VERSION, so that
# tests/test_upgrade.py upgrades exactly what users have installed. Run it once per version, when the
# version ships, and commit the result; never regenerate an old version's fixture.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
version=${1:?usage: scripts/freeze_schema.sh VERSION [COMMIT]}
commit=$(git rev-parse --verify "${2:-HEAD}^{commit}")
[[ $version =~ ^[0-9]+$ ]] || { echo "freeze_schema: VERSION must be an integer" >&2; exit 2; }
out=sql/fixtures/schema-v$version.sql
mapfile -t files < <(git ls-tree --name-only "$commit" sql/ | grep -E '^sql/[^/]+\.sql$' | LC_ALL=C sort)
((${#files[@]})) || { echo "freeze_schema: no sql/*.sql at $commit" >&2; exit 1; }
mkdir -p sql/fixtures
{
    echo "-- pgqrs schema version $version, frozen by scripts/freeze_schema.sh from commit $commit."
    echo "-- Test fixture (tests/test_upgrade.py): the SQL that first shipped this version. Do not edit."
    for f in "${files[@]}"; do
        echo
        echo "-- ==== $f"
        git show "$commit:$f"
    done
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out (${#files[@]} files from ${commit:0:12})"
