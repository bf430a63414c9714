#!/usr/bin/env bash
# Freeze the engine SQL of a schema version as a test fixture: sql/fixtures/schema-v<VERSION>.sql.
#
#   scripts/freeze_schema.sh VERSION [COMMIT]
#
# Writes the concatenation of the schema files **as committed** at COMMIT (default HEAD), never the working
# tree: the fixture must be the SQL of the commit that first shipped VERSION, so that tests/test_upgrade.py
# upgrades exactly what users have installed. The schema files are those sql/install.sql lists (its `\ir`
# lines, in order); a commit from before that manifest existed had them as sql/*.sql (top level, name order).
# Run it once per version, when the version ships, and commit the result; never regenerate an old version's
# fixture.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
version=${1:?usage: scripts/freeze_schema.sh VERSION [COMMIT]}
commit=$(git rev-parse --verify "${2:-HEAD}^{commit}")
[[ $version =~ ^[0-9]+$ ]] || { echo "freeze_schema: VERSION must be an integer" >&2; exit 2; }
out=sql/fixtures/schema-v$version.sql
if git cat-file -e "$commit:sql/install.sql" 2>/dev/null; then
    # the same reading of the manifest as pgqrs.install's schema_files: `\ir <file>` lines, comments, blanks
    listed=$(git show "$commit:sql/install.sql" | awk '
        /^[[:space:]]*(--|$)/ { next }
        $1 == "\\ir" && NF == 2 { print "sql/" $2; next }
        { print "freeze_schema: unexpected line in sql/install.sql: " $0 > "/dev/stderr"; exit 1 }')
    mapfile -t files <<<"$listed"
else
    mapfile -t files < <(git ls-tree --name-only "$commit" sql/ | grep -E '^sql/[^/]+\.sql$' | LC_ALL=C sort)
fi
((${#files[@]})) || { echo "freeze_schema: no schema files at $commit" >&2; exit 1; }
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
