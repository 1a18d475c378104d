#!/usr/bin/env bash
# What a signal costs under dbirun, against native in this run:
#   - 200,000 signals a C program sends itself (an empty handler): the
#     runtime's share of one delivery and its sigreturn;
#   - the signal suite's storm (tests/programs/sig_storm.c): a hot loop
#     under a 20 kHz interval timer;
#   - a python3 loop of 10M additions under a 2 kHz and a 10 kHz timer
#     (its handler runs Python code; until the twenty-second session a
#     warm run livelocked at 5 kHz and more).
# Each row is the mean of BENCH_RUNS runs (default 10) and its ratio to
# native; warm (-persist, the cache filled by two runs first).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
CACHE="$OUT/cache"

ensure_hyperfine
build_workspace
cat >"$OUT/self_signals.c" <<'C'
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static volatile long taken;
static void on_usr1(int sig) { (void)sig; taken++; }
int main(int argc, char **argv) {
    long count = argc > 1 ? atol(argv[1]) : 200000;
    struct sigaction sa = { 0 };
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, 0);
    for (long i = 0; i < count; i++) kill(getpid(), SIGUSR1);
    printf("%ld\n", taken);
    return 0;
}
C
cat >"$OUT/storm.py" <<'PY'
import signal, sys
taken = 0
def on_alarm(sig, frame):
    global taken
    taken += 1
signal.signal(signal.SIGALRM, on_alarm)
period = 1 / int(sys.argv[1])
signal.setitimer(signal.ITIMER_REAL, period, period)
total = 0
for i in range(10_000_000):
    total += i
signal.setitimer(signal.ITIMER_REAL, 0, 0)
print(total, taken > 0)
PY
gcc -O2 -o "$OUT/self_signals" "$OUT/self_signals.c"
gcc -O2 -o "$OUT/sig_storm" "$ROOT/tests/programs/sig_storm.c"

i=0
row() {
    local name="$1"
    shift
    i=$((i + 1))
    for _ in 1 2; do "$DBIRUN" -persist -persist_dir "$CACHE" -- "$@" >/dev/null; done
    "$ROOT/target/release/cachetool" --persist-dir "$CACHE" server sync >/dev/null 2>&1 || true
    local native warm
    native="$(time_cmd "$OUT/$i-native.json" --warmup 1 -- "$@")"
    warm="$(time_cmd "$OUT/$i-warm.json" --warmup 1 -- "$DBIRUN" -persist -persist_dir "$CACHE" -- "$@")"
    printf '%-52s %10s %10s %8s\n' "$name" "$native" "$warm" "$(ratio "$native" "$warm")"
}

printf '%-52s %10s %10s %8s\n' "workload" "native ms" "warm ms" "ratio"
row "200,000 self-sent signals (C, empty handler)" "$OUT/self_signals" 200000
row "sig_storm: C loop under a 20 kHz timer" "$OUT/sig_storm"
row "python3 10M additions under a 2 kHz timer" "$PY" "$OUT/storm.py" 2000
row "python3 10M additions under a 10 kHz timer" "$PY" "$OUT/storm.py" 10000
