/* For the persisted code cache tests (tests/persist.rs): the program
 * patches the constant that f returns in f's own code, in the module's text
 * (mprotect, then a write), and calls f before and after. A later run starts
 * from the module file's bytes again: code built from the patched bytes
 * must not be what it runs first. */
#include "patch_own_code.h"

__attribute__((noinline)) int f(void) { return 0x11223344; }

int main(void) {
    int (*volatile fp)(void) = f; /* not folded: f's code runs each time */
    printf("before: %x\n", fp());
    printf("patched: %s\n", patch_own_code((void *)f, 64) ? "yes" : "no");
    printf("after: %x\n", fp());
    return 0;
}
