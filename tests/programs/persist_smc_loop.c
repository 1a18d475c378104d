/* For the persisted code cache tests (tests/persist.rs): f's loop is
 * counted as a trace head (from its file's exits, in the first run after
 * -aot) but not yet hot when the program patches the constant the loop
 * adds, in f's own code (mprotect, then a write). The calls after the
 * patch must run the patched code, not the file's: the loop's counting
 * stub, which led to the file's code, goes with the file. */
#include "patch_own_code.h"

__attribute__((noinline)) unsigned f(unsigned n) {
    unsigned s = 0;
    for (unsigned i = 0; i < n; i++) {
        s += i ^ 0x11223344u;
        __asm__ volatile("" : "+r"(s)); /* one add a round: not vectorised */
    }
    return s;
}

/* 20 calls of 10 rounds: 200 entries to the loop's head, under the 1,000
 * that make it hot. */
static unsigned rounds(unsigned (*fp)(unsigned)) {
    unsigned t = 0;
    for (int k = 0; k < 20; k++)
        t += fp(10);
    return t;
}

int main(void) {
    unsigned (*volatile fp)(unsigned) = f; /* not folded: f's code runs each time */
    printf("before: %x\n", rounds(fp));
    printf("patched: %s\n", patch_own_code((void *)f, 128) ? "yes" : "no");
    printf("after: %x\n", rounds(fp));
    return 0;
}
