#!/usr/bin/env bash
# The speed and memory goals of issue 16, each measured against native in
# this run and marked met or NOT MET:
#   - warm -persist <= 1.3x native: /bin/true, ls -la /usr/bin, python3 -c
#     pass, gcc -c hello.c, make -B -j2 of 20 C files, python3 -m unittest;
#   - steady state: a python3 loop of 20M squares <= 1.3x, sha256sum and
#     xz <= 1.05x, -c bbcount <= 1.10x of -c null on sha256sum;
#   - -c drcov warm <= 1.5x native on make -j2 and unittest;
#   - cold <= 0.3x of DynamoRIO cold (only with DRRUN=path/to/drrun);
#   - peak RSS: cold <= native + 8 MiB, warm <= native + 4 MiB (python3 -c
#     pass, gcc -c).
# Warm runs use the default mode (the cache server); the caches live in a
# fresh directory, filled by a cold and two warm runs first.
#
# Environment: BENCH_RUNS, BENCH_OUT (see common.sh); LONG_RUNS (timed
# runs of the second-long workloads, default 3); DRRUN.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
LONG_RUNS="${LONG_RUNS:-3}"
CACHE="$OUT/cache"

ensure_hyperfine
build_workspace
make_build_inputs
make_proj20
make_unittest_inputs
make_data_inputs
echo 'sum(i * i for i in range(20_000_000))' >"$OUT/loop.py"
UNITTEST="$PY -m unittest discover -q -s $OUT/tests"
LOOP="$PY $OUT/loop.py"
rows=()
# goal NAME LIMIT VALUE: a row, met when VALUE (a ratio or MiB) <= LIMIT.
goal() {
    local met
    met="$("$PY" -c 'import sys
try: print("met" if float(sys.argv[2].rstrip("x")) <= float(sys.argv[1]) else "NOT MET")
except ValueError: print("not measured")' "$2" "$3")"
    rows+=("$1|<= $2|$3|$met")
    echo "  $1: $3 (goal <= $2): $met" >&2
}

# warm CMD...: fills the cache with a cold and two warm runs (output
# discarded), then syncs the server.
warm_up() {
    for _ in 1 2 3; do "$DBIRUN" -persist -persist_dir "$CACHE" "$@" >/dev/null 2>&1 || true; done
    "$ROOT/target/release/cachetool" --dir "$CACHE/$(id -u)" server sync >/dev/null 2>&1 || true
}

# outcome CMD...: "<exit status> <md5 of stdout>" of one run.
outcome() {
    local status=0
    "$@" >"$OUT/outcome.stdout" 2>/dev/null || status=$?
    echo "$status $(md5sum <"$OUT/outcome.stdout")"
}

# same_output [dbirun options] -- CMD...: whether a warm run under dbirun
# ends and prints as the program does natively (so a run that does
# nothing posts no time).
same_output() {
    local opts=()
    while [[ "$1" != "--" ]]; do opts+=("$1"); shift; done
    shift
    [[ "$(outcome "$@")" == "$(outcome "$DBIRUN" -persist -persist_dir "$CACHE" "${opts[@]}" -- "$@")" ]]
}

i=0
# ratio_goal NAME LIMIT RUNS [dbirun options] -- CMD: warm time / native time.
ratio_goal() {
    local name="$1" limit="$2" runs="$3"
    shift 3
    local opts=()
    while [[ "$1" != "--" ]]; do opts+=("$1"); shift; done
    shift
    i=$((i + 1))
    echo "[$i] $name" >&2
    warm_up "${opts[@]}" -- "$@"
    if ! same_output "${opts[@]}" -- "$@"; then
        rows+=("$name|<= $limit|output differs|NOT MET")
        return
    fi
    local native warm
    native="$(RUNS=$runs time_cmd "$OUT/$i-native.json" --warmup 1 -- "$@")"
    warm="$(RUNS=$runs time_cmd "$OUT/$i-warm.json" --warmup 1 -- "$DBIRUN" -persist -persist_dir "$CACHE" "${opts[@]}" -- "$@")"
    goal "$name (native $native ms, warm $warm ms)" "$limit" "$(ratio "$native" "$warm")"
}

ratio_goal "warm /bin/true" 1.3 "$RUNS" -- /bin/true
ratio_goal "warm ls -la /usr/bin" 1.3 "$RUNS" -- ls -la /usr/bin
ratio_goal "warm python3 -c pass" 1.3 "$RUNS" -- "$PY" -c pass
ratio_goal "warm gcc -c hello.c" 1.3 "$RUNS" -- gcc -c -o "$OUT/hello.o" "$OUT/hello.c"
ratio_goal "warm make -B -j2 (20 files)" 1.3 "$RUNS" -- make -s -B -j2 -C "$OUT/proj20"
ratio_goal "warm python3 -m unittest" 1.3 "$RUNS" -- $UNITTEST
ratio_goal "python3 sum of 20M squares" 1.3 "$LONG_RUNS" -- $LOOP
# Traces are the default; without them (-no_traces, files of their own)
# the loop and start-up rows again, for what traces give and cost.
ratio_goal "python3 sum of 20M squares, -no_traces" 1.3 "$LONG_RUNS" -no_traces -- $LOOP
ratio_goal "warm python3 -c pass, -no_traces" 1.3 "$RUNS" -no_traces -- "$PY" -c pass
ratio_goal "sha256sum 200 MB" 1.05 "$LONG_RUNS" -- sha256sum "$OUT/data200M"
ratio_goal "xz -T2 20 MB" 1.05 "$LONG_RUNS" -- xz -T2 -1 --block-size=4MiB -c "$OUT/data20M"
ratio_goal "-c drcov warm make -B -j2" 1.5 "$RUNS" -logdir "$OUT" -c drcov -- make -s -B -j2 -C "$OUT/proj20"
ratio_goal "-c drcov warm unittest" 1.5 "$RUNS" -logdir "$OUT" -c drcov -- $UNITTEST

# -c bbcount against -c null on sha256sum (both warm).
i=$((i + 1))
echo "[$i] bbcount vs null on sha256sum" >&2
warm_up -logdir "$OUT" -c null -- sha256sum "$OUT/data200M"
warm_up -logdir "$OUT" -c bbcount -- sha256sum "$OUT/data200M"
null_ms="$(RUNS=$LONG_RUNS time_cmd "$OUT/$i-null.json" -- "$DBIRUN" -persist -persist_dir "$CACHE" -logdir "$OUT" -c null -- sha256sum "$OUT/data200M")"
bb_ms="$(RUNS=$LONG_RUNS time_cmd "$OUT/$i-bb.json" -- "$DBIRUN" -persist -persist_dir "$CACHE" -logdir "$OUT" -c bbcount -- sha256sum "$OUT/data200M")"
goal "-c bbcount / -c null, sha256sum ($bb_ms / $null_ms ms)" 1.10 "$(ratio "$null_ms" "$bb_ms")"

# Cold against DynamoRIO cold, when a drrun is given.
for w in "/bin/true" "ls -la /usr/bin" "$PY -c pass" "gcc -c -o $OUT/hello.o $OUT/hello.c"; do
    read -r -a words <<<"$w"
    if [[ -z "${DRRUN:-}" ]]; then
        goal "cold / DynamoRIO cold: $w" 0.3 "-"
        continue
    fi
    i=$((i + 1))
    # The last run's cache server may still be merging into the directory
    # (gcc's processes hand over several files): stopped first, so the
    # directory can go.
    forget="sh -c '$ROOT/target/release/cachetool --persist-dir $OUT/cold-cache server stop >/dev/null 2>&1; rm -rf $OUT/cold-cache'"
    cold="$(time_cmd "$OUT/$i-cold.json" --prepare "$forget" -- "$DBIRUN" -persist -persist_dir "$OUT/cold-cache" -- "${words[@]}")"
    dr="$(time_cmd "$OUT/$i-dr.json" -- "$DRRUN" -- "${words[@]}")"
    goal "cold / DynamoRIO cold: $w ($cold / $dr ms)" 0.3 "$(ratio "$dr" "$cold")"
done

# peak_kib CMD...: the peak RSS of CMD's largest process, in KiB.
peak_kib() {
    "$PY" -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@"
}
# mib_over KIB NATIVE_KIB: how many MiB KIB is above NATIVE_KIB.
mib_over() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (a - b) / 1024 }'
}
for w in "$PY -c pass" "gcc -c -o $OUT/hello.o $OUT/hello.c"; do
    read -r -a words <<<"$w"
    native="$(peak_kib "${words[@]}")"
    rm -rf "$OUT/rss-cache"
    cold="$(peak_kib "$DBIRUN" -persist -persist_dir "$OUT/rss-cache" -- "${words[@]}")"
    warm_up -- "${words[@]}"
    warm="$(peak_kib "$DBIRUN" -persist -persist_dir "$CACHE" -- "${words[@]}")"
    # One decimal: whole MiB rounded down would call 4.7 MiB over "4".
    goal "cold peak RSS - native, MiB: $w ($cold / $native KiB)" 8 "$(mib_over "$cold" "$native")"
    goal "warm peak RSS - native, MiB: $w ($warm / $native KiB)" 4 "$(mib_over "$warm" "$native")"
done

echo
printf '%-78s %8s %10s %13s\n' "goal" "limit" "measured" ""
for row in "${rows[@]}"; do
    IFS='|' read -r name limit value met <<<"$row"
    printf '%-78s %8s %10s %13s\n' "$name" "$limit" "$value" "$met"
done
