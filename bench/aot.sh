#!/usr/bin/env bash
# Ahead-of-time cache files (docs/aot.md): for each workload, the programs
# it runs are translated with `cachetool aot` into an empty directory; then
# the workload runs natively, cold (an empty directory before every run),
# first after AOT (`cachetool aot` into an empty directory, its cache
# server stopped, before every run, so each timed run is a first run and
# starts the server), first from a copy of the AOT files (as in a
# container made from an image warmed with AOT: the files' identities are
# new, so the first run checks every zone hash), second (the runs after
# the first, which flagged the lookup targets it met) and warm (a
# directory filled by ordinary runs). Runs are timed as a user runs them,
# with the cache server (what a run learns is merged by the server, after
# the run); first-noserver is the first run with -no_persist_server,
# which merges what it learnt (the lookup targets) into the files itself
# before it ends. Prints the means with their ratios, the blocks each kind of run
# builds (from the index's run records), and per module: AOT blocks, file
# size, the module's code size and the ratio of the two, and the AOT time
# and rate per program.
#
# Environment: BENCH_RUNS, BENCH_OUT (see common.sh; BENCH_OUT also keeps
# the caches).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
CACHETOOL="$ROOT/target/release/cachetool"
uid=$(id -u)

ensure_hyperfine
build_workspace
make_build_inputs
make_unittest_inputs

GCC_LIB=$(dirname "$(gcc -print-prog-name=cc1)")
# name|programs to translate ahead of time|command
WORKLOADS=(
    "python3 -c pass|$PY|$PY -c pass"
    "python3 -m unittest (2 tests)|$PY|$PY -m unittest discover -q -s $OUT/tests"
    "gcc -c hello.c|$(command -v gcc) $GCC_LIB/cc1 $(command -v as) $GCC_LIB/collect2 $(command -v ld)|gcc -c -o $OUT/hello.o $OUT/hello.c"
    "ls -la /usr/bin|$(command -v ls)|ls -la /usr/bin"
)

# built DIR CMD...: blocks the run of CMD with the cache under DIR built.
built() {
    local dir="$1"
    shift
    "$DBIRUN" -persist -no_persist_server -persist_dir "$dir" -- "$@" >/dev/null 2>&1 || true
    "$CACHETOOL" --dir "$dir/$uid" --json runs | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["blocks_built"])'
}

# afresh DIR: a command that stops DIR's cache server and removes DIR.
# The server merges what it holds before it exits (a python3 run's
# lookup targets rewrite a 48 MB file): its socket goes when it has
# exited, and only then is the directory removed (retried all the same).
afresh() {
    echo "$CACHETOOL --persist-dir $1 server stop >/dev/null 2>&1; for t in \$(seq 300); do test -e $1/$uid/dbicached.sock || break; sleep 0.1; done; for t in 1 2 3 4 5 6 7 8 9 10; do rm -rf $1 2>/dev/null && break; sleep 0.2; done; ! test -e $1"
}

# code_bytes FILE: bytes of the ELF file's executable PT_LOAD segments.
code_bytes() {
    "$PY" - "$1" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
phoff, = struct.unpack_from("<Q", b, 32)
phnum, = struct.unpack_from("<H", b, 56)
total = 0
for i in range(phnum):
    p_type, p_flags = struct.unpack_from("<II", b, phoff + i * 56)
    filesz, = struct.unpack_from("<Q", b, phoff + i * 56 + 32)
    if p_type == 1 and p_flags & 1:
        total += filesz
print(total)
PY
}

results="$OUT/results.txt"
modules="$OUT/modules.txt"
: >"$results"
: >"$modules"
i=0
for entry in "${WORKLOADS[@]}"; do
    IFS='|' read -r name programs cmd <<<"$entry"
    i=$((i + 1))
    aot="$OUT/aot$i" cold="$OUT/cold$i" first="$OUT/first$i" copied="$OUT/copied$i" warm="$OUT/warm$i" second="$OUT/second$i"
    mkdir -p "$aot" "$cold" "$first" "$copied" "$warm"
    # shellcheck disable=SC2086
    "$CACHETOOL" --persist-dir "$aot" aot $programs >"$OUT/aot$i.log" 2>&1 || {
        cat "$OUT/aot$i.log" >&2
        echo "bench: cachetool aot failed for $name" >&2
        continue
    }
    "$CACHETOOL" --dir "$aot/$uid" --json list >"$OUT/aot$i.json"
    # Its server may still record the AOT run: copies of the directory
    # (copied, second) are taken once it has stopped.
    "$CACHETOOL" --persist-dir "$aot" server stop >/dev/null 2>&1 || true
    for _ in $(seq 20); do test -e "$aot/$uid/dbicached.sock" || break; sleep 0.1; done
    # shellcheck disable=SC2086
    for r in 1 2 3; do "$DBIRUN" -persist -no_persist_server -persist_dir "$warm" -- $cmd >/dev/null 2>&1 || true; done
    native=$(time_cmd "$OUT/a$i-native.json" --warmup 2 -- $cmd)
    cold_ms=$(time_cmd "$OUT/a$i-cold.json" --warmup 1 --prepare "rm -rf $cold" -- "$DBIRUN" -persist -no_persist_server -persist_dir "$cold" -- $cmd)
    first_ms=$(time_cmd "$OUT/a$i-first.json" --warmup 1 --prepare "bash -c '$(afresh "$first") && $CACHETOOL --persist-dir $first aot $programs >/dev/null'" -- "$DBIRUN" -persist -persist_dir "$first" -- $cmd)
    first_noserver_ms=$(time_cmd "$OUT/a$i-first-noserver.json" --warmup 1 --prepare "bash -c '$(afresh "$first") && $CACHETOOL --persist-dir $first aot $programs >/dev/null'" -- "$DBIRUN" -persist -no_persist_server -persist_dir "$first" -- $cmd)
    copied_ms=$(time_cmd "$OUT/a$i-copied.json" --warmup 1 --prepare "bash -c '$(afresh "$copied") && cp -a $aot $copied'" -- "$DBIRUN" -persist -persist_dir "$copied" -- $cmd)
    warm_ms=$(time_cmd "$OUT/a$i-warm.json" --warmup 2 -- "$DBIRUN" -persist -persist_dir "$warm" -- $cmd)
    # The runs after the first: the first flagged the lookup targets it met.
    rm -rf "$second" && cp -a "$aot" "$second"
    "$DBIRUN" -persist -persist_dir "$second" -- $cmd >/dev/null 2>&1 || true
    "$CACHETOOL" --persist-dir "$second" server sync >/dev/null 2>&1 || true
    second_ms=$(time_cmd "$OUT/a$i-second.json" --warmup 1 -- "$DBIRUN" -persist -persist_dir "$second" -- $cmd)
    for d in "$first" "$copied" "$second"; do bash -c "$(afresh "$d")"; done
    "$CACHETOOL" --persist-dir "$warm" server stop >/dev/null 2>&1 || true
    rm -rf "$cold"
    # shellcheck disable=SC2086
    cold_built=$(built "$cold" $cmd)
    cp -a "$aot" "$first"
    # shellcheck disable=SC2086
    first_built=$(built "$first" $cmd)
    # shellcheck disable=SC2086
    warm_built=$(built "$warm" $cmd)
    printf '%-30s %8sms %8sms %8sms %6s %8sms %6s %8sms %6s %8sms %6s %8sms %6s %8s %8s %6s %8s\n' "$name" "$native" "$cold_ms" \
        "$warm_ms" "$(ratio "$native" "$warm_ms")" "$first_ms" "$(ratio "$warm_ms" "$first_ms")" \
        "$first_noserver_ms" "$(ratio "$warm_ms" "$first_noserver_ms")" "$copied_ms" \
        "$(ratio "$warm_ms" "$copied_ms")" "$second_ms" "$(ratio "$warm_ms" "$second_ms")" "$cold_built" "$first_built" \
        "$("$PY" -c "import sys; print('%.1f%%' % (100 * int(sys.argv[2]) / max(1, int(sys.argv[1]))))" "$cold_built" "$first_built")" \
        "$warm_built" >>"$results"
    # Per program: AOT seconds (cachetool's own line) and, per module file,
    # blocks, bytes, code bytes.
    grep ': translated in ' "$OUT/aot$i.log" | sed "s|^|  [$name] |" >>"$modules"
    # The rate: every block the workload's files hold over the programs'
    # AOT seconds (one process translates, on one core).
    "$PY" - "$OUT/aot$i.json" "$OUT/aot$i.log" "$name" >>"$modules" <<'PY'
import json, re, sys
blocks = sum(row["file"]["blocks"] for row in json.load(open(sys.argv[1])))
seconds = sum(float(s) for s in re.findall(r": translated in ([0-9.]+) s", open(sys.argv[2]).read()))
print("  [%s] AOT: %d blocks in %.2f s, %d blocks per second" % (sys.argv[3], blocks, seconds, blocks / max(seconds, 1e-9)))
PY
    "$PY" - "$OUT/aot$i.json" "$name" <<'PY' | while IFS='|' read -r label module blocks size; do
import json, sys
for row in json.load(open(sys.argv[1])):
    f = row["file"]
    print("%s|%s|%s|%s" % (sys.argv[2], f["module_path"], f["blocks"], f["file_size"]))
PY
        code=$(code_bytes "$module" 2>/dev/null || echo 0)
        printf '  [%s] %-48s %8s blocks %10s bytes, code %9s bytes: %s\n' "$label" "$module" "$blocks" "$size" "$code" \
            "$(ratio "$code" "$size")" >>"$modules"
    done
done

echo
echo "== ahead of time ($RUNS runs each; first = the first run after cachetool aot into an empty directory)"
printf '%-30s %10s %10s %10s %6s %10s %6s %10s %6s %10s %6s %10s %6s %8s %8s %6s %8s\n' workload native cold warm "/nat" first "/warm" \
    "1st-nosrv" "/warm" copied "/warm" second "/warm" "built:cold" first "%" warm
echo "(with the cache server, as users run; first: the first run after AOT on this machine; 1st-nosrv: the same with -no_persist_server,"
echo " which rewrites the files with the lookup targets it learnt before it ends; copied: the first run from a copy of the AOT files,"
echo " which checks them whole; second: the runs after the first, which flagged the lookup targets it met in the files)"
cat "$results"
echo
echo "== AOT time per program, and files per module (file bytes / module code bytes)"
cat "$modules"
