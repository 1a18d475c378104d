#!/usr/bin/env bash
# The cache server (docs/server.md) against file mode (-no_persist_server):
#
# 1. Cold -persist against cold without -persist, one run at a time, on
#    python3 -c pass, gcc -c hello.c and make -B -j2 of a 20-file project:
#    before every timed run hyperfine's --prepare empties the cache (after
#    `cachetool server sync`, so no earlier run's hand-over is still being
#    merged). Then warm runs, server against file mode.
# 2. 64 runs of python3 -c pass, 16 at a time, cold (empty directory)
#    then warm, with the server and in file mode: wall time of the batch,
#    each dbirun's own time (median and max: the app's end to dbirun's
#    exit is inside it), bytes written (the processes' write() total, and
#    the server's), the files' sizes after, `cachetool verify`, and the
#    server's peak memory (VmHWM).
#
# Environment: BENCH_RUNS, BENCH_OUT (see common.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
CACHETOOL="$ROOT/target/release/cachetool"

ensure_hyperfine
build_workspace
make_build_inputs
make_proj20

uid=$(id -u)
SRV="$OUT/server-cache"
FILE="$OUT/file-cache"
mkdir -p "$SRV" "$FILE"
# The server's directory gets its server from the first run; the file-mode
# runs never start one.
empty_cache() { # DIR
    "$CACHETOOL" --dir "$1/$uid" server sync >/dev/null 2>&1 || true
    rm -f "$1/$uid"/*.dpc "$1/$uid"/*.dpc.lock
}
export -f empty_cache
export CACHETOOL uid

WORKLOADS=(
    "python3 -c pass|$PY -c pass"
    "gcc -c hello.c|gcc -c -o $OUT/hello.o $OUT/hello.c"
    "make -B -j2 (20 files)|make -s -B -j2 -C $OUT/proj20"
)

echo
echo "== one run at a time ($RUNS runs each; ratios in the same run)"
printf '%-24s %9s %9s %13s %13s %12s %12s\n' workload native cold "cold+server" "cold+file" "warm+server" "warm+file"
i=0
for entry in "${WORKLOADS[@]}"; do
    name="${entry%%|*}"
    cmd="${entry#*|}"
    i=$((i + 1))
    native=$(time_cmd "$OUT/s$i-native.json" --warmup 2 -- $cmd)
    cold=$(time_cmd "$OUT/s$i-cold.json" --warmup 1 -- "$DBIRUN" -- $cmd)
    cold_srv=$(time_cmd "$OUT/s$i-cold-srv.json" --warmup 1 --prepare "bash -c 'empty_cache $SRV'" -- "$DBIRUN" -persist -persist_dir "$SRV" -- $cmd)
    cold_file=$(time_cmd "$OUT/s$i-cold-file.json" --warmup 1 --prepare "bash -c 'empty_cache $FILE'" -- "$DBIRUN" -persist -no_persist_server -persist_dir "$FILE" -- $cmd)
    "$CACHETOOL" --dir "$SRV/$uid" server sync >/dev/null 2>&1 || true
    warm_srv=$(time_cmd "$OUT/s$i-warm-srv.json" --warmup 3 -- "$DBIRUN" -persist -persist_dir "$SRV" -- $cmd)
    warm_file=$(time_cmd "$OUT/s$i-warm-file.json" --warmup 3 -- "$DBIRUN" -persist -no_persist_server -persist_dir "$FILE" -- $cmd)
    printf '%-24s %7sms %7sms %6sms %5s %6sms %5s %6sms %5s %6sms\n' "$name" "$native" "$cold" \
        "$cold_srv" "$(ratio "$cold" "$cold_srv")" "$cold_file" "$(ratio "$cold" "$cold_file")" \
        "$warm_srv" "$(ratio "$native" "$warm_srv")" "$warm_file"
done
echo "(cold+server and cold+file: ratio to cold without -persist; warm+server: ratio to native)"

# batch MODE DIR LABEL: 64 runs, 16 at a time; prints one line.
batch() {
    local mode="$1" dir="$2" label="$3"
    local opts=(-persist -persist_dir "$dir")
    [[ "$mode" == file ]] && opts+=(-no_persist_server)
    local times="$OUT/times-${label// /-}"
    : >"$times"
    local before after t0 t1
    before=$(awk '/^wchar/ {print $2}' /proc/$$/io)
    t0=$(date +%s%N)
    seq 64 | xargs -P16 -I{} bash -c 's=$(date +%s%N); "$0" "$@" >/dev/null 2>&1; echo $(( ($(date +%s%N) - s) / 1000000 )) >>'"$times" \
        "$DBIRUN" "${opts[@]}" -- "$PY" -c pass
    t1=$(date +%s%N)
    [[ "$mode" == server ]] && "$CACHETOOL" --dir "$dir/$uid" server sync >/dev/null
    after=$(awk '/^wchar/ {print $2}' /proc/$$/io)
    local sorted median max
    sorted=$(sort -n "$times")
    median=$(echo "$sorted" | sed -n 32p)
    max=$(echo "$sorted" | tail -n 1)
    local server_bytes="-"
    if [[ "$mode" == server ]]; then
        server_bytes=$("$CACHETOOL" --json --dir "$dir/$uid" server status | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["bytes_written"])')
    fi
    local size files verify
    size=$(cat "$dir/$uid"/*.dpc 2>/dev/null | wc -c)
    files=$(ls "$dir/$uid"/*.dpc 2>/dev/null | wc -l)
    if "$CACHETOOL" --dir "$dir/$uid" verify >/dev/null 2>&1; then verify=clean; else verify=PROBLEMS; fi
    printf '%-14s %8sms %8sms %8sms %12s %12s %5s %10s %8s\n' "$label" "$(( (t1 - t0) / 1000000 ))" "$median" "$max" \
        "$((after - before))" "$server_bytes" "$files" "$size" "$verify"
}

echo
echo "== 64 runs of python3 -c pass, 16 at a time"
printf '%-14s %10s %10s %10s %12s %12s %5s %10s %8s\n' run wall median max "wchar" "server wrote" files "bytes" verify
SRV64="$OUT/server64"
FILE64="$OUT/file64"
mkdir -p "$SRV64" "$FILE64"
batch server "$SRV64" "server cold"
batch server "$SRV64" "server warm"
batch file "$FILE64" "file cold"
batch file "$FILE64" "file warm"
pid=$("$CACHETOOL" --json --dir "$SRV64/$uid" server status | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
echo "server peak memory (VmHWM): $(awk '/^VmHWM/ {print $2, $3}' /proc/"$pid"/status)"
"$CACHETOOL" --dir "$SRV64/$uid" server status
for d in "$SRV" "$SRV64"; do "$CACHETOOL" --dir "$d/$uid" server stop >/dev/null 2>&1 || true; done
