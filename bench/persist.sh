#!/usr/bin/env bash
# The persisted code cache: each workload natively, under dbirun -persist
# cold (a fresh empty cache directory before every run) and warm (a cache
# directory filled beforehand), timed with hyperfine; prints the means, the
# ratios warm/native, warm/cold and cold/native, then the size of each
# module's .dpc file after warming.
#
# Environment: BENCH_RUNS, BENCH_OUT (see common.sh; BENCH_OUT also keeps
# the caches).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# name|command; hyperfine splits the commands itself (-N: no shell).
workloads() {
    WORKLOADS=(
        "true|/bin/true"
        "ls -la /usr/bin|ls -la /usr/bin"
        "python3 -c pass|$PY -c pass"
        "gcc -c hello.c|gcc -c -o $OUT/hello.o $OUT/hello.c"
        "make -j2 (4 files)|make -s -B -j2 -C $OUT/proj"
    )
}

# outcome CMD...: "<exit status> <md5 of stdout>" of one run.
outcome() {
    local status=0
    "$@" >"$OUT/outcome.stdout" 2>/dev/null || status=$?
    echo "$status $(md5sum <"$OUT/outcome.stdout")"
}

# time_one LABEL JSON [hyperfine options...] -- CMD: prints the mean in ms,
# or FAILED (see the log).
time_one() {
    local label="$1" json="$2"
    shift 2
    local opts=()
    while [[ "$1" != "--" ]]; do
        opts+=("$1")
        shift
    done
    shift
    if hyperfine -N --runs "$RUNS" --export-json "$json" "${opts[@]}" "$*" >"${json%.json}.log" 2>&1; then
        mean_ms "$json"
    else
        echo "  $label failed, see ${json%.json}.log" >&2
        tail -n 5 "${json%.json}.log" | sed 's/^/    /' >&2
        echo FAILED
    fi
}

ensure_hyperfine
build_dbirun

make_build_inputs
workloads
rows=()
sizes=()
i=0
for entry in "${WORKLOADS[@]}"; do
    name="${entry%%|*}"
    cmd="${entry#*|}"
    i=$((i + 1))
    cold_dir="$OUT/$i-cold-cache"
    warm_dir="$OUT/$i-warm-cache"
    echo "[$i/${#WORKLOADS[@]}] $name" >&2
    read -r -a words <<<"$cmd"

    native_ms="$(time_one native "$OUT/$i-native.json" --warmup 2 -- "${words[@]}")"

    # A cold run and two warm ones must behave as natively (status, stdout),
    # so a run that does nothing cannot post a fast time.
    rm -rf "$warm_dir"
    want="$(outcome "${words[@]}")"
    problem=""
    for run in cold warm warm; do
        got="$(outcome "$DBIRUN" -persist -persist_dir "$warm_dir" -- "${words[@]}")"
        if [[ "$got" != "$want" ]]; then
            problem="$run run: status/stdout $got, natively $want"
        fi
    done
    if [[ -n "$problem" ]]; then
        echo "  under dbirun -persist: $problem" >&2
        cold_ms=MISMATCH
        warm_ms=MISMATCH
    else
        # Cold: the cache directory removed before every run (warm-up runs too).
        cold_ms="$(time_one cold "$OUT/$i-cold.json" --warmup 1 --prepare "rm -rf $cold_dir" -- \
            "$DBIRUN" -persist -persist_dir "$cold_dir" -- "${words[@]}")"
        # Warm: the directory the runs above filled; warm-up runs first.
        warm_ms="$(time_one warm "$OUT/$i-warm.json" --warmup 2 -- \
            "$DBIRUN" -persist -persist_dir "$warm_dir" -- "${words[@]}")"
    fi
    rows+=("$name|$native_ms|$cold_ms|$warm_ms|$(ratio "$native_ms" "$warm_ms")|$(ratio "$cold_ms" "$warm_ms")|$(ratio "$native_ms" "$cold_ms")")
    # The cache after warming: one file per module (the name without the
    # path and client hashes).
    total=0
    while IFS= read -r f; do
        bytes="$(stat -c %s "$f")"
        total=$((total + bytes))
        module="$(basename "$f" .dpc)"
        module="${module%-*}"
        module="${module%-*}"
        sizes+=("$name|$module|$bytes")
    done < <(find "$warm_dir" -name '*.dpc' 2>/dev/null | sort)
    sizes+=("$name|(total)|$total")
done

echo
echo "runs per command: $RUNS; cold: -persist with an empty cache directory before each run; warm: a filled one"
printf '%-20s %11s %11s %11s %12s %10s %12s\n' "workload" "native ms" "cold ms" "warm ms" "warm/native" "warm/cold" "cold/native"
for row in "${rows[@]}"; do
    IFS='|' read -r name native_ms cold_ms warm_ms wn wc cn <<<"$row"
    printf '%-20s %11s %11s %11s %12s %10s %12s\n' "$name" "$native_ms" "$cold_ms" "$warm_ms" "$wn" "$wc" "$cn"
done
echo
echo "cache files after warming (bytes per module):"
printf '%-20s %-36s %12s\n' "workload" "module" "bytes"
for row in "${sizes[@]}"; do
    IFS='|' read -r name module bytes <<<"$row"
    printf '%-20s %-36s %12s\n' "$name" "$module" "$bytes"
done
if [[ -n "${BENCH_OUT:-}" ]]; then
    echo "hyperfine JSON and logs, and the caches: $OUT"
fi
