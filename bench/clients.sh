#!/usr/bin/env bash
# Client overhead on a CPU-bound workload: native, dbirun with no client,
# -c null, -c inscount, -c bbcount; prints each mean and its ratio to native
# and to -c null.
#
# Environment: BENCH_RUNS (default 5), BENCH_OUT (see common.sh).
set -euo pipefail
BENCH_RUNS="${BENCH_RUNS:-5}"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ensure_hyperfine
build_dbirun

WORK="$PY -c \"sum(i*i for i in range(3_000_000))\""
names=(native "dbirun" "-c null" "-c inscount" "-c bbcount")
cmds=(
    "$WORK"
    "$DBIRUN -logdir $OUT -- $WORK"
    "$DBIRUN -logdir $OUT -c null -- $WORK"
    "$DBIRUN -logdir $OUT -c inscount -- $WORK"
    "$DBIRUN -logdir $OUT -c bbcount -- $WORK"
)
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$OUT/clients.json" "${cmds[@]}" >"$OUT/hyperfine.log" 2>&1
"$PY" - "$OUT/clients.json" "${names[@]}" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
names = sys.argv[2:]
means = [r["mean"] * 1000 for r in results]
native, null = means[0], means[2]
print(f"workload: python3 sum 3M; runs: {len(results[0]['times'])}")
print(f"{'config':<14}{'mean ms':>10}{'vs native':>12}{'vs -c null':>12}")
for name, m in zip(names, means):
    print(f"{name:<14}{m:>10.1f}{m / native:>11.2f}x{m / null:>11.2f}x")
PY
