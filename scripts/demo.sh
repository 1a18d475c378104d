#!/usr/bin/env bash
# The main job: set up, build, and run a real program natively, then under
# `dbirun -persist` twice with -stats: the cold run translates and writes
# the persisted caches (in a fresh directory), the warm run maps them.
# Extra arguments replace the program.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release
if [ $# -eq 0 ]; then
    set -- /usr/bin/python3 -c 'import json; print(json.dumps({"a": [1, 2]}))'
fi
cache=$(mktemp -d "${TMPDIR:-/tmp}/dbirun-demo-cache.XXXXXX")
trap 'rm -rf "$cache"' EXIT
time_it() { local t0 t1; t0=$(date +%s%N); "$@"; t1=$(date +%s%N); echo "   ($(( (t1 - t0) / 1000000 )) ms)" >&2; }
echo "== native"
time_it "$@"
echo "== dbirun -persist -stats (cold: translate, write the caches to $cache)"
time_it target/release/dbirun -persist -persist_dir "$cache" -stats -- "$@"
echo "== dbirun -persist -stats (warm: map the caches)"
time_it target/release/dbirun -persist -persist_dir "$cache" -stats -- "$@"
echo "== the cache files"
ls -l "$cache"/*/
