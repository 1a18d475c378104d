#!/usr/bin/env bash
# The main job: set up, build, and run a real program under dbirun with
# -stats, next to its native run. Extra arguments replace the program.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release
if [ $# -eq 0 ]; then
    set -- /usr/bin/python3 -c 'import json; print(json.dumps({"a": [1, 2]}))'
fi
echo "== native"
"$@"
echo "== dbirun -stats"
target/release/dbirun -stats -- "$@"
