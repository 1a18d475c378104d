/* setjmp/longjmp across several frames, nested buffers, sigsetjmp with a
 * signal mask, longjmp(0) turning into 1. Exit status 0 when all checks hold. */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static jmp_buf outer, inner;
static int depth_reached;

static __attribute__((noinline)) void dive(int depth, int target, jmp_buf env, int value) {
    char pad[256];
    memset(pad, depth, sizeof pad);
    depth_reached = depth;
    if (depth == target) longjmp(env, value);
    dive(depth + 1, target, env, value);
    if (pad[17] != (char)depth) puts("stack clobbered");
}

static __attribute__((noinline)) int with_inner(int target) {
    volatile int local = 100;
    int r = setjmp(inner);
    if (r == 0) {
        local = 200;
        dive(0, target, inner, target + 1);
        return -1;
    }
    return r * 1000 + local;
}

int main(void) {
    int ok = 1;
    volatile int counter = 0;
    int r = setjmp(outer);
    printf("setjmp returned %d (counter %d)\n", r, counter);
    if (counter < 5) {
        counter++;
        dive(0, counter * 3, outer, counter);
    }
    if (r != 5 || counter != 5) ok = 0;
    printf("deepest frame reached: %d\n", depth_reached);

    for (int t = 1; t <= 4; t++) {
        int v = with_inner(t * 10);
        printf("with_inner(%d) = %d\n", t * 10, v);
        if (v != (t * 10 + 1) * 1000 + 200) ok = 0;
    }

    /* longjmp with value 0 makes setjmp return 1. */
    r = setjmp(outer);
    if (r == 0) dive(0, 3, outer, 0);
    printf("longjmp(0) -> setjmp returned %d\n", r);
    if (r != 1) ok = 0;

    /* sigsetjmp saves the mask; siglongjmp restores it. */
    sigjmp_buf sj;
    sigset_t set, cur;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    if (sigsetjmp(sj, 1) == 0) {
        sigprocmask(SIG_BLOCK, &set, NULL);
        sigprocmask(SIG_BLOCK, NULL, &cur);
        printf("SIGUSR1 blocked before siglongjmp: %d\n", sigismember(&cur, SIGUSR1));
        siglongjmp(sj, 7);
    }
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("SIGUSR1 blocked after siglongjmp: %d\n", sigismember(&cur, SIGUSR1));
    if (sigismember(&cur, SIGUSR1)) ok = 0;

    /* _setjmp/_longjmp do not touch the mask. */
    if (sigsetjmp(sj, 0) == 0) {
        sigprocmask(SIG_BLOCK, &set, NULL);
        siglongjmp(sj, 1);
    }
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("SIGUSR1 blocked after siglongjmp without mask: %d\n", sigismember(&cur, SIGUSR1));
    if (!sigismember(&cur, SIGUSR1)) ok = 0;

    printf("%s\n", ok ? "setjmp_longjmp: ok" : "setjmp_longjmp: MISMATCH");
    return ok ? 0 : 1;
}
