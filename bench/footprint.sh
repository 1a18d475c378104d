#!/usr/bin/env bash
# What translated code costs as the code a program runs grows: C programs
# generated here make the same number of calls (600,000) through more and
# more distinct call sites, and one more runs branchy code without calls.
#   - distinct N: N small functions, each called from its own site, R rounds;
#   - shared N:   N call sites of one function (its `ret` returns to N places);
#   - inline N:   the same branches as distinct N's functions, no calls.
# Each row: native and warm (-persist, the cache filled by two runs first)
# means of R rounds, their ratio, the extra cost per call (or per
# snippet) in ns once start-up is taken out: ((warm - native) at R rounds
# minus the same at 1 round) / ((R - 1) * N), and the warm ratio with
# -predicted_returns (returns the CPU's return stack predicts,
# translate/returns.rs; its own cache).
# Natively a call costs about the same however many sites there are (the
# return stack predicts every `ret`); under dbirun each `ret` goes through
# a lookup and each block leaves through its own jump, and the cost per
# call grows with the sites (docs/design.md, "Known limits").
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
CACHE="$OUT/cache"
PREDICTED="$OUT/cache-predicted"
CALLS=600000

ensure_hyperfine
build_workspace

# gen KIND N: a C program of that kind and size, its rounds from argv[1].
gen() {
    local kind="$1" n="$2"
    "$PY" - "$kind" "$n" >"$OUT/$kind$n.c" <<'PY'
import sys
kind, n = sys.argv[1], int(sys.argv[2])
body = lambda i: f"if (x & {1 << (i % 7)}) x += {i}; else x ^= {i * 3 + 1}; if (x > {i * 7}) x -= 3;"
print("#include <stdio.h>\n#include <stdlib.h>")
if kind != "inline":
    for i in range(n if kind == "distinct" else 1):
        print(f"__attribute__((noinline)) long f{i}(long x) {{ {body(i)} return x; }}")
print("int main(int argc, char **argv) { long r = atol(argv[1]); volatile long v = 1; long x = v;")
print(" for (long k = 0; k < r; k++) {")
for i in range(n):
    if kind == "distinct":
        print(f"  x = f{i}(x);")
    elif kind == "shared":
        print("  x = f0(x);")
    else:
        print(f"  {body(i)} __asm__ volatile(\"\" : \"+r\"(x));")
print(' }\n v = x; printf("%ld\\n", (long)v); return 0; }')
PY
    # No if-conversion: the inline kind keeps its branches, as functions do.
    gcc -O1 -fno-if-conversion -fno-if-conversion2 -o "$OUT/$kind$n" "$OUT/$kind$n.c"
}

i=0
row() {
    local kind="$1" n="$2" rounds=$((CALLS / $2))
    local prog="$OUT/$kind$n"
    gen "$kind" "$n"
    for r in 1 "$rounds"; do
        for _ in 1 2; do
            "$DBIRUN" -persist -persist_dir "$CACHE" -- "$prog" "$r" >/dev/null
            "$DBIRUN" -persist -persist_dir "$PREDICTED" -predicted_returns -- "$prog" "$r" >/dev/null
        done
    done
    for dir in "$CACHE" "$PREDICTED"; do
        "$ROOT/target/release/cachetool" --persist-dir "$dir" server sync >/dev/null 2>&1 || true
    done
    i=$((i + 1))
    local n1 w1 nr wr pr
    n1="$(time_cmd "$OUT/$i-native1.json" --warmup 2 -- "$prog" 1)"
    w1="$(time_cmd "$OUT/$i-warm1.json" --warmup 2 -- "$DBIRUN" -persist -persist_dir "$CACHE" -- "$prog" 1)"
    nr="$(time_cmd "$OUT/$i-native.json" --warmup 2 -- "$prog" "$rounds")"
    wr="$(time_cmd "$OUT/$i-warm.json" --warmup 2 -- "$DBIRUN" -persist -persist_dir "$CACHE" -- "$prog" "$rounds")"
    pr="$(time_cmd "$OUT/$i-predicted.json" --warmup 2 -- "$DBIRUN" -persist -persist_dir "$PREDICTED" -predicted_returns -- "$prog" "$rounds")"
    local per
    per="$("$PY" -c 'import sys
n1, w1, nr, wr, calls = map(float, sys.argv[1:])
print("%.1f" % (((wr - nr) - (w1 - n1)) * 1e6 / calls))' "$n1" "$w1" "$nr" "$wr" "$((CALLS - n))" 2>/dev/null || echo -)"
    printf '%-16s %7s %10s %10s %8s %14s %10s\n' "$kind $n" "$rounds" "$nr" "$wr" "$(ratio "$nr" "$wr")" "$per" "$(ratio "$nr" "$pr")"
}

printf '%-16s %7s %10s %10s %8s %14s %10s\n' "program" "rounds" "native ms" "warm ms" "ratio" "extra ns/call" "predicted"
for n in 300 1500 6000; do row distinct "$n"; done
for n in 300 6000; do row shared "$n"; done
row inline 6000
