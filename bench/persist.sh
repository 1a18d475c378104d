#!/usr/bin/env bash
# The persisted code cache: each workload natively, under dbirun -persist
# cold (a fresh empty cache directory before every run) and warm (a cache
# directory filled beforehand), timed with hyperfine; prints the means, the
# ratios warm/native, warm/cold and cold/native, then the size of each
# module's .dpc file after warming.
#
# Environment:
#   BENCH_RUNS   timed runs per command (default 10; warm-up runs come first)
#   BENCH_OUT    keep hyperfine's JSON and logs, and the caches, in this
#                directory (default: a temp dir, removed)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${BENCH_RUNS:-10}"
PY=/usr/bin/python3
DBIRUN="$ROOT/target/release/dbirun"

if [[ -n "${BENCH_OUT:-}" ]]; then
    OUT="$BENCH_OUT"
    mkdir -p "$OUT"
else
    OUT="$(mktemp -d)"
    trap 'rm -rf "$OUT"' EXIT
fi

# The inputs of bench/run.sh's gcc and make workloads.
make_inputs() {
    cat >"$OUT/hello.c" <<'C'
#include <stdio.h>
int main(void) { printf("hello\n"); return 0; }
C
    mkdir -p "$OUT/proj"
    for n in 1 2 3; do
        cat >"$OUT/proj/part$n.c" <<C
#include <stdio.h>
int part$n(int x) { int s = 0; for (int i = 0; i < x; i++) s += i * $n; return s; }
C
    done
    cat >"$OUT/proj/main.c" <<'C'
#include <stdio.h>
int part1(int), part2(int), part3(int);
int main(void) { printf("%d\n", part1(10) + part2(20) + part3(30)); return 0; }
C
    printf 'prog: main.o part1.o part2.o part3.o\n\t$(CC) -o $@ $^\n%%.o: %%.c\n\t$(CC) -O2 -c $<\n' \
        >"$OUT/proj/Makefile"
}

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

as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

ensure_hyperfine() {
    command -v hyperfine >/dev/null 2>&1 && return
    echo "installing hyperfine..." >&2
    if ! as_root apt-get install -y hyperfine >"$OUT/apt.log" 2>&1; then
        as_root apt-get update >>"$OUT/apt.log" 2>&1
        as_root apt-get install -y hyperfine >>"$OUT/apt.log" 2>&1 || {
            cat "$OUT/apt.log" >&2
            echo "bench: cannot install hyperfine" >&2
            exit 1
        }
    fi
}

# mean_ms FILE: the mean of the single command in a hyperfine JSON export, in ms.
mean_ms() {
    "$PY" -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["results"][0]["mean"] * 1000))' "$1"
}

# ratio A B: B / A, e.g. "3.10x"; "-" if either is not a number.
ratio() {
    "$PY" -c 'import sys
try: print("%.2fx" % (float(sys.argv[2]) / float(sys.argv[1])))
except ValueError: print("-")' "$1" "$2"
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
echo "building (cargo build --release -p inject)..." >&2
(cd "$ROOT" && cargo build --release -p inject) >"$OUT/build.log" 2>&1 || {
    tail -n 30 "$OUT/build.log" >&2
    echo "bench: build failed" >&2
    exit 1
}

make_inputs
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
