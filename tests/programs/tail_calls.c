/* Mutual recursion through tail calls. At -O2 GCC turns the tail calls into
 * jumps (direct and, through the table, indirect), so a depth of 1e6 runs in
 * constant stack; at -O0 the calls are real, so the depth is smaller.
 * The output does not depend on the depth: the results are checked against
 * a loop computing the same thing. */
#include <stdio.h>

#ifdef __OPTIMIZE__
#define DEPTH 1000000L
#else
#define DEPTH 20000L
#endif

typedef unsigned long (*step_fn)(long, unsigned long);

__attribute__((noinline)) unsigned long pong(long n, unsigned long acc);

__attribute__((noinline)) unsigned long ping(long n, unsigned long acc) {
    if (n <= 0) return acc;
    return pong(n - 1, acc * 31 + (unsigned long)n);
}

__attribute__((noinline)) unsigned long pong(long n, unsigned long acc) {
    if (n <= 0) return acc ^ 0x55;
    return ping(n - 1, (acc ^ (unsigned long)n) + 7);
}

/* Indirect tail calls through a table: jmp *mem at -O2. */
__attribute__((noinline)) unsigned long step_a(long n, unsigned long acc);
__attribute__((noinline)) unsigned long step_b(long n, unsigned long acc);
__attribute__((noinline)) unsigned long step_c(long n, unsigned long acc);
static step_fn volatile steps[3] = { step_a, step_b, step_c };

__attribute__((noinline)) unsigned long step_a(long n, unsigned long acc) {
    if (n <= 0) return acc;
    return steps[n % 3](n - 1, acc + 3);
}
__attribute__((noinline)) unsigned long step_b(long n, unsigned long acc) {
    if (n <= 0) return acc;
    return steps[(n * 7) % 3](n - 1, acc * 5);
}
__attribute__((noinline)) unsigned long step_c(long n, unsigned long acc) {
    if (n <= 0) return acc;
    return steps[(n + 1) % 3](n - 1, acc ^ (unsigned long)n);
}

static unsigned long ping_loop(long n, unsigned long acc) {
    int in_ping = 1;
    for (;;) {
        if (in_ping) {
            if (n <= 0) return acc;
            acc = acc * 31 + (unsigned long)n;
        } else {
            if (n <= 0) return acc ^ 0x55;
            acc = (acc ^ (unsigned long)n) + 7;
        }
        n--;
        in_ping = !in_ping;
    }
}

static unsigned long steps_loop(long n, unsigned long acc) {
    int which = 0;
    for (;;) {
        if (n <= 0) return acc;
        int next;
        switch (which) {
        case 0: acc += 3; next = (int)(n % 3); break;
        case 1: acc *= 5; next = (int)((n * 7) % 3); break;
        default: acc ^= (unsigned long)n; next = (int)((n + 1) % 3); break;
        }
        n--;
        which = next;
    }
}

int main(void) {
    int ok = 1;
    /* Fixed small depth: same numbers at every optimisation level. */
    unsigned long small = ping(1000, 1);
    printf("ping(1000) = %lu\n", small);
    if (small != ping_loop(1000, 1)) ok = 0;
    unsigned long small2 = step_a(999, 1);
    printf("step_a(999) = %lu\n", small2);
    if (small2 != steps_loop(999, 1)) ok = 0;

    /* Deep: only the comparison with the loop is printed. */
    int deep_ok = ping(DEPTH, 1) == ping_loop(DEPTH, 1) && ping(DEPTH - 1, 9) == ping_loop(DEPTH - 1, 9);
    printf("deep mutual recursion: %s\n", deep_ok ? "matches loop" : "MISMATCH");
    int deep_ind = step_a(DEPTH, 2) == steps_loop(DEPTH, 2);
    printf("deep indirect tail calls: %s\n", deep_ind ? "matches loop" : "MISMATCH");
    ok = ok && deep_ok && deep_ind;
    printf("%s\n", ok ? "tail_calls: ok" : "tail_calls: MISMATCH");
    return ok ? 0 : 1;
}
