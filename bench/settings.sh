#!/usr/bin/env bash
# Warm runs under several dbirun settings against native, interleaved
# (bench/interleaved.py), each setting in a cache directory of its own
# filled first by six rounds of every workload (so a cache shared by
# several programs, as a CI machine's is):
#
#   bench/settings.sh "-no_traces" ""                  # without traces, with
#   bench/settings.sh "" "-c drcov -logdir /tmp"       # a client's cost
#
# Each argument is one setting's dbirun options ("" for the defaults).
# Workloads: /bin/true, python3 -c pass, gcc -c hello.c, ls -la /usr/bin,
# python3 -m unittest, make -B -j2 of 20 C files, and a python3 loop of
# 5M squares. Environment: BENCH_ROUNDS (rounds of short workloads,
# default 25; make and the loop take a third), BENCH_OUT (see common.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ROUNDS="${BENCH_ROUNDS:-25}"
[[ $# -ge 1 ]] || { echo "usage: bench/settings.sh OPTIONS [OPTIONS]..." >&2; exit 2; }

build_workspace
make_build_inputs
make_proj20
make_unittest_inputs
echo 'sum(i * i for i in range(5_000_000))' >"$OUT/loop5M.py"
workloads=(
    "/bin/true"
    "$PY -c pass"
    "gcc -c -o $OUT/hello.o $OUT/hello.c"
    "ls -la /usr/bin"
    "$PY -m unittest discover -q -s $OUT/tests"
    "make -s -B -j2 -C $OUT/proj20"
    "$PY $OUT/loop5M.py"
)
settings=("$@")
# under N CMD: CMD under setting N, in its own cache.
under() { echo "$DBIRUN -persist -persist_dir $OUT/cache-$1 ${settings[$1]} -- $2"; }

echo "filling the caches..." >&2
for _ in 1 2 3 4 5 6; do
    for w in "${workloads[@]}"; do
        for n in "${!settings[@]}"; do
            # shellcheck disable=SC2046
            $(under "$n" "$w") >/dev/null 2>&1 || true
        done
    done
done
for n in "${!settings[@]}"; do
    "$ROOT/target/release/cachetool" --persist-dir "$OUT/cache-$n" server sync >/dev/null 2>&1 || true
done
for w in "${workloads[@]}"; do
    rounds=$ROUNDS
    [[ "$w" == make* || "$w" == *loop5M* ]] && rounds=$(((ROUNDS + 2) / 3))
    args=(native "$w")
    for n in "${!settings[@]}"; do args+=("[${settings[$n]:-default}]" "$(under "$n" "$w")"); done
    printf '%s\n  ' "$w"
    "$PY" "$ROOT/bench/interleaved.py" "$rounds" "${args[@]}"
done
for n in "${!settings[@]}"; do
    "$ROOT/target/release/cachetool" --persist-dir "$OUT/cache-$n" server stop >/dev/null 2>&1 || true
done
