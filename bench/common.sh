# Shared by the benchmark scripts (sourced, not run): paths, the output
# directory, the workload inputs, hyperfine, and number formatting.
#
# Environment:
#   BENCH_RUNS   timed runs per command (default 10; warm-up runs come first)
#   BENCH_OUT    keep hyperfine's JSON and logs (and any caches) in this
#                directory (default: a temp dir, removed)

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

# hello.c and a small make project of four files.
make_build_inputs() {
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

# $OUT/proj20: a make project of 20 C files (19 parts and a main).
make_proj20() {
    mkdir -p "$OUT/proj20"
    for n in $(seq 1 19); do
        printf 'int part%d(int x) { int s = 0; for (int i = 0; i < x; i++) s += i * %d; return s; }\n' "$n" "$n" >"$OUT/proj20/part$n.c"
    done
    {
        for n in $(seq 1 19); do printf 'int part%d(int);\n' "$n"; done
        printf '#include <stdio.h>\nint main(void) { int s = 0;\n'
        for n in $(seq 1 19); do printf 's += part%d(%d);\n' "$n" "$n"; done
        printf 'printf("%%d\\n", s); return 0; }\n'
    } >"$OUT/proj20/main.c"
    printf 'OBJS := $(patsubst %%.c,%%.o,$(wildcard *.c))\nprog: $(OBJS)\n\t$(CC) -o $@ $^\n%%.o: %%.c\n\t$(CC) -O2 -c $<\n' >"$OUT/proj20/Makefile"
}

# $OUT/data20M (compressible words, the same every run) and $OUT/data200M.
make_data_inputs() {
    "$PY" -c 'import sys, random
r = random.Random(7)
words = [bytes(r.choice(b"abcdefghij") for _ in range(r.randint(2, 9))) for _ in range(5000)]
out = bytearray()
while len(out) < 20 << 20:
    out += b" ".join(r.choice(words) for _ in range(12)) + b"\n"
sys.stdout.buffer.write(out[:20 << 20])' >"$OUT/data20M"
    head -c $((200 << 20)) /dev/zero | tr '\0' 'x' >"$OUT/data200M"
}

# $OUT/tests: a unittest directory of two quick tests.
make_unittest_inputs() {
    mkdir -p "$OUT/tests"
    cat >"$OUT/tests/test_two.py" <<'PY'
import unittest
class Two(unittest.TestCase):
    def test_sum(self): self.assertEqual(sum([1, 2, 3]), 6)
    def test_upper(self): self.assertEqual("a".upper(), "A")
PY
}

as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

ensure_hyperfine() {
    command -v hyperfine >/dev/null 2>&1 && return
    echo "installing hyperfine..." >&2
    # The package lists may be stale or missing on a fresh machine: update only when needed.
    if ! as_root apt-get install -y hyperfine >"$OUT/apt.log" 2>&1; then
        as_root apt-get update >>"$OUT/apt.log" 2>&1
        as_root apt-get install -y hyperfine >>"$OUT/apt.log" 2>&1 || {
            cat "$OUT/apt.log" >&2
            echo "bench: cannot install hyperfine" >&2
            exit 1
        }
    fi
}

# Only the launcher's package: its build script builds the runtime too, and a
# half-finished crate elsewhere in the workspace should not block a benchmark.
build_dbirun() {
    echo "building (cargo build --release -p inject)..." >&2
    (cd "$ROOT" && cargo build --release -p inject) >"$OUT/build.log" 2>&1 || {
        tail -n 30 "$OUT/build.log" >&2
        echo "bench: build failed" >&2
        exit 1
    }
}

# The whole workspace: dbirun and its runtime, cachetool, dbicached.
build_workspace() {
    echo "building (cargo build --release)..." >&2
    (cd "$ROOT" && cargo build --release) >"$OUT/build.log" 2>&1 || {
        tail -n 30 "$OUT/build.log" >&2
        echo "bench: build failed" >&2
        exit 1
    }
}

# mean_ms FILE: the mean of the single command in a hyperfine JSON export, in ms.
mean_ms() {
    "$PY" -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["results"][0]["mean"] * 1000))' "$1"
}

# time_cmd JSON [hyperfine options] -- CMD: the mean of CMD in ms
# (hyperfine -N, $RUNS runs, its JSON and log beside JSON), or FAILED.
time_cmd() {
    local json="$1"
    shift
    local opts=()
    while [[ "$1" != "--" ]]; do opts+=("$1"); shift; done
    shift
    if hyperfine -N --runs "$RUNS" --export-json "$json" "${opts[@]}" "$*" >"${json%.json}.log" 2>&1; then
        mean_ms "$json"
    else
        echo "  failed, see ${json%.json}.log" >&2
        echo FAILED
    fi
}

# ratio A B: B / A, e.g. "3.10x"; "-" if either is not a number.
ratio() {
    "$PY" -c 'import sys
try: print("%.2fx" % (float(sys.argv[2]) / float(sys.argv[1])))
except ValueError: print("-")' "$1" "$2"
}
