#!/usr/bin/env bash
# How a python3 loop's warm runs fare in a cache other python3 runs filled
# first, against a cache of its own: the indirect-branch lookups each run
# makes (`-stats`, file mode), which count the loop rounds that leave its
# traces. A file's traces entered through blocks (the eighteenth session's
# fix) or a loop start that short runs marked cold (a known limit,
# docs/design.md) shows as several times the own cache's lookups.
#
#   bench/shared_loop.sh [DIRECTORIES]   (default 5)
#
# For each of DIRECTORIES fresh caches: `python3 -c pass` twice, unittest
# twice, then the loop (2M squares) three times, printing each loop run's
# lookups; then the same loop in a cache of its own. Lookup counts do not
# depend on this VM's speed, so one run of the script is a measure.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
DIRS="${1:-5}"

build_workspace
make_unittest_inputs
echo 'sum(i * i for i in range(2_000_000))' >"$OUT/loop2M.py"

# lookups CACHE CMD...: one run's indirect-branch lookups.
lookups() {
    local cache="$1"
    shift
    "$DBIRUN" -persist -no_persist_server -stats -persist_dir "$cache" -- "$@" 2>&1 >/dev/null |
        awk '/indirect lookups:/ { print $3 }'
}

for d in $(seq 1 "$DIRS"); do
    cache="$OUT/shared-$d"
    rm -rf "$cache"
    for _ in 1 2; do lookups "$cache" "$PY" -c pass >/dev/null; done
    for _ in 1 2; do lookups "$cache" "$PY" -m unittest discover -q -s "$OUT/tests" >/dev/null; done
    echo "shared cache $d: loop runs $(lookups "$cache" "$PY" "$OUT/loop2M.py") $(lookups "$cache" "$PY" "$OUT/loop2M.py") $(lookups "$cache" "$PY" "$OUT/loop2M.py") lookups"
done
own="$OUT/own"
rm -rf "$own"
echo "own cache: loop runs $(lookups "$own" "$PY" "$OUT/loop2M.py") $(lookups "$own" "$PY" "$OUT/loop2M.py") $(lookups "$own" "$PY" "$OUT/loop2M.py") lookups"
