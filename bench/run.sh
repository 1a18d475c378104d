#!/usr/bin/env bash
# Times each workload natively and under dbirun with hyperfine, then prints
# one table: native mean, dbirun mean, and the slowdown ratio.
#
# Environment (and BENCH_RUNS, BENCH_OUT: see common.sh):
#   DBIRUN_OPTS  extra dbirun options, word-split, e.g. "-persist -persist_dir /tmp/c"
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
DBIRUN_OPTS="${DBIRUN_OPTS:-}"

# Inputs: the build inputs, and data for xz and sha256sum.
make_inputs() {
    make_build_inputs
    make_data_inputs
}

# name|command; commands are split by hyperfine itself (-N: no shell in the timing).
workloads() {
    WORKLOADS=(
        "true|/bin/true"
        "ls -la /usr/bin|ls -la /usr/bin"
        "python3 -c pass|$PY -c pass"
        "python3 sum 3M|$PY -c \"sum(i*i for i in range(3_000_000))\""
        "sha256sum 200MB|sha256sum $OUT/data200M"
        "gcc -O2 hello.c|gcc -O2 -o $OUT/hello $OUT/hello.c"
        "make -j2 (4 files)|make -s -B -j2 -C $OUT/proj"
        "xz -T2 20MB|xz -T2 -1 --block-size=4MiB -c $OUT/data20M"
    )
}

# check_behaviour CMD: one run natively and one under dbirun must agree, so a
# launcher that runs nothing cannot post a fast time. Prints "ok", "FAILED"
# (exit status differs) or "MISMATCH" (same status, different stdout).
check_behaviour() {
    local cmd="$1" native_sum under_sum native_status under_status
    native_sum="$(eval "$cmd" 2>/dev/null | md5sum)"
    native_status="$(eval "$cmd" >/dev/null 2>&1; echo $?)"
    # DBIRUN_OPTS is deliberately unquoted: it is a list of options.
    under_sum="$(eval "\"\$DBIRUN\" $DBIRUN_OPTS -- $cmd" 2>/dev/null | md5sum)"
    under_status="$(eval "\"\$DBIRUN\" $DBIRUN_OPTS -- $cmd" >/dev/null 2>"$OUT/check.stderr"; echo $?)"
    if [[ "$native_status" != "$under_status" ]]; then
        echo FAILED
    elif [[ "$native_sum" != "$under_sum" ]]; then
        echo MISMATCH
    else
        echo ok
    fi
}

ensure_hyperfine
build_dbirun

make_inputs
workloads
rows=()
i=0
for entry in "${WORKLOADS[@]}"; do
    name="${entry%%|*}"
    cmd="${entry#*|}"
    i=$((i + 1))
    echo "[$i/${#WORKLOADS[@]}] $name" >&2

    native_ms="FAILED"
    if hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$OUT/$i-native.json" "$cmd" \
        >"$OUT/$i-native.log" 2>&1; then
        native_ms="$(mean_ms "$OUT/$i-native.json")"
    else
        echo "  native run failed, see $OUT/$i-native.log" >&2
    fi

    dbirun_ms="$(check_behaviour "$cmd")"
    if [[ "$dbirun_ms" == FAILED ]]; then
        echo "  under dbirun the exit status differs from native:" >&2
        tail -n 5 "$OUT/check.stderr" | sed 's/^/    /' >&2
    elif [[ "$dbirun_ms" == MISMATCH ]]; then
        echo "  under dbirun stdout differs from native" >&2
    elif hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$OUT/$i-dbirun.json" \
        "$DBIRUN $DBIRUN_OPTS -- $cmd" >"$OUT/$i-dbirun.log" 2>&1; then
        dbirun_ms="$(mean_ms "$OUT/$i-dbirun.json")"
    else
        dbirun_ms="FAILED"
        echo "  dbirun run failed, see $OUT/$i-dbirun.log" >&2
        tail -n 5 "$OUT/$i-dbirun.log" | sed 's/^/    /' >&2
    fi

    r="-"
    if [[ "$native_ms" != FAILED && "$dbirun_ms" =~ ^[0-9] ]]; then
        r="$(ratio "$native_ms" "$dbirun_ms")"
    fi
    rows+=("$name|$native_ms|$dbirun_ms|$r")
done

echo
echo "runs per command: $RUNS (after 2 warm-up runs); dbirun options: ${DBIRUN_OPTS:-(none)}"
printf '%-20s %14s %14s %10s\n' "workload" "native ms" "dbirun ms" "ratio"
for row in "${rows[@]}"; do
    IFS='|' read -r name native_ms dbirun_ms r <<<"$row"
    printf '%-20s %14s %14s %10s\n' "$name" "$native_ms" "$dbirun_ms" "$r"
done
if [[ -n "${BENCH_OUT:-}" ]]; then
    echo "hyperfine JSON and logs: $OUT"
fi
