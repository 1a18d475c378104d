#!/usr/bin/env bash
# Caches shared across machines (docs/remote.md): a build machine fills a
# cache directory (from runs alone, then again with cachetool aot of each
# workload's programs first) and pushes it to an S3-compatible store on loopback (moto's server, with
# signatures checked: tests/servers/s3_server.py, installed by
# scripts/setup.sh); then, on a fresh machine state (an empty cache
# directory before every timed run), each workload runs natively, cold,
# and as `cachetool pull PROGRAMS && dbirun -persist CMD` (what a fleet's
# job pays: the pull over the network plus a warm run), and warm after a
# pull (the pull untimed). Prints the means with their ratios to native,
# the compressed bytes each pull fetches and the blocks the run after it builds
# against a cold run's, then how long the deep check of the pulled files
# takes (cachetool verify --deep).
#
# Environment: BENCH_RUNS, BENCH_OUT (see common.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
CACHETOOL="$ROOT/target/release/cachetool"

ensure_hyperfine
build_workspace
make_build_inputs
bash "$ROOT/scripts/setup.sh" >/dev/null

GCC_LIB=$(dirname "$(gcc -print-prog-name=cc1)")
# name|programs to pull (their libraries come with them)|command
WORKLOADS=(
    "python3 -c pass|$PY|$PY -c pass"
    "gcc -c hello.c|$(command -v gcc) $GCC_LIB/cc1 $(command -v as)|gcc -c -o $OUT/hello.o $OUT/hello.c"
    "ls -la /usr/bin|$(command -v ls)|ls -la /usr/bin"
)

# The store: moto's S3 server on a free port, stopped at exit.
exec 3> >("$ROOT/target/test-tools/moto/bin/python" "$ROOT/tests/servers/s3_server.py" bench >"$OUT/s3.json" 2>"$OUT/s3.log")
for _ in $(seq 100); do [ -s "$OUT/s3.json" ] && break; sleep 0.1; done
field() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$OUT/s3.json" "$1"; }
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL
AWS_ACCESS_KEY_ID=$(field key)
AWS_SECRET_ACCESS_KEY=$(field secret)
AWS_ENDPOINT_URL="http://127.0.0.1:$(field port)"
trap 'exec 3>&-' EXIT

# measure VARIANT: the build machine fills its directory (VARIANT aot:
# cachetool aot of each workload's programs, then a run; runs: the runs
# alone) and pushes it under s3://bench/VARIANT; then each workload is
# timed on fresh machine states pulling from there.
measure() {
    local variant=$1
    export DBIRUN_REMOTE=s3://bench/$variant
    local build="$OUT/build-$variant"
    rm -rf "$build"
    for entry in "${WORKLOADS[@]}"; do
        IFS='|' read -r name programs cmd <<<"$entry"
        if [ "$variant" = aot ]; then
            # shellcheck disable=SC2086
            "$CACHETOOL" --persist-dir "$build" aot $programs >/dev/null 2>&1
        fi
        # shellcheck disable=SC2086
        "$DBIRUN" -persist -no_persist_server -persist_dir "$build" -- $cmd >/dev/null 2>&1 || true
    done
    local pushed
    pushed=$("$CACHETOOL" --persist-dir "$build" --json push | "$PY" -c 'import json,sys; r=json.load(sys.stdin)["report"]; print(len(r["pushed"]), r["bytes"])')
    read -r npushed bpushed <<<"$pushed"
    echo "$variant: the build machine pushed $npushed files, $("$PY" -c "print('%.1f' % ($bpushed / 1048576))") MiB compressed" >>"$OUT/pushed.txt"
    local i=0
    for entry in "${WORKLOADS[@]}"; do
        IFS='|' read -r name programs cmd <<<"$entry"
        i=$((i + 1))
        local fresh="$OUT/fresh$i" cold="$OUT/cold$i" tag="$variant$i"
        local pull="$CACHETOOL --persist-dir $fresh pull $programs"
        native=$(time_cmd "$OUT/r$tag-native.json" --warmup 2 -- $cmd)
        cold_ms=$(time_cmd "$OUT/r$tag-cold.json" --warmup 1 --prepare "rm -rf $cold" -- "$DBIRUN" -persist -no_persist_server -persist_dir "$cold" -- $cmd)
        pull_run_ms=$(time_cmd "$OUT/r$tag-pull-run.json" --warmup 1 --prepare "rm -rf $fresh" -- \
            "bash -c '$pull >/dev/null && $DBIRUN -persist -no_persist_server -persist_dir $fresh -- $cmd >/dev/null'")
        pulled_ms=$(time_cmd "$OUT/r$tag-pulled.json" --warmup 1 --prepare "bash -c 'rm -rf $fresh && $pull >/dev/null'" -- \
            "$DBIRUN" -persist -no_persist_server -persist_dir "$fresh" -- $cmd)
        rm -rf "$fresh" "$cold"
        local fetched after_pull cold_built nfiles nbytes
        fetched=$($pull --json | "$PY" -c 'import json,sys; r=json.load(sys.stdin)["report"]; print(len(r["taken"]), r["bytes"])')
        # The deep check of what was pulled (each file translated again
        # and compared): seconds and the peak memory of its largest process.
        /usr/bin/time -f '%e %M' -o "$OUT/deep.time" "$CACHETOOL" --persist-dir "$fresh" verify --deep >"$OUT/deep.out" 2>&1 || true
        read -r deep_s deep_kb <"$OUT/deep.time"
        printf '%-26s %s, %s s, peak %s MiB\n' "$name [$variant]" "$(tail -1 "$OUT/deep.out")" "$deep_s" "$((deep_kb / 1024))" >>"$OUT/deep.txt"
        # shellcheck disable=SC2086
        "$DBIRUN" -persist -no_persist_server -persist_dir "$fresh" -- $cmd >/dev/null 2>&1 || true
        after_pull=$("$CACHETOOL" --persist-dir "$fresh" --json runs | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["blocks_built"])')
        # shellcheck disable=SC2086
        "$DBIRUN" -persist -no_persist_server -persist_dir "$cold" -- $cmd >/dev/null 2>&1 || true
        cold_built=$("$CACHETOOL" --persist-dir "$cold" --json runs | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["blocks_built"])')
        read -r nfiles nbytes <<<"$fetched"
        printf '%-26s %8sms %8sms %6s %9sms %6s %9sms %6s %5s files %8s MiB %8s %8s\n' "$name [$variant]" "$native" "$cold_ms" "$(ratio "$native" "$cold_ms")" \
            "$pull_run_ms" "$(ratio "$native" "$pull_run_ms")" "$pulled_ms" "$(ratio "$native" "$pulled_ms")" "$nfiles" \
            "$("$PY" -c "print('%.1f' % ($nbytes / 1048576))")" "$cold_built" "$after_pull" >>"$results"
    done
}

results="$OUT/results.txt"
: >"$results"
: >"$OUT/pushed.txt"
: >"$OUT/deep.txt"
measure runs
measure aot

echo
echo "== caches shared through a remote store (S3 on loopback; $RUNS runs each; a fresh cache directory before every run)"
echo "[runs]: the build machine's files come from runs alone; [aot]: from cachetool aot of the programs, then a run"
echo "pull+run: cachetool pull PROGRAMS, then the run; after-pull: the run alone; fetched: compressed bytes the pull fetched"
cat "$OUT/pushed.txt"
printf '%-26s %10s %10s %6s %11s %6s %11s %6s %11s %12s %8s %8s\n' workload native cold "/nat" "pull+run" "/nat" "after-pull" "/nat" "pulled" "fetched" "built:cold" "after"
cat "$results"
echo
echo "== cachetool verify --deep of the pulled files"
cat "$OUT/deep.txt"
