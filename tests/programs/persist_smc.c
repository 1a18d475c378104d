/* For the persisted code cache tests (tests/persist.rs): the program
 * patches the constant that f returns in f's own code, in the module's text
 * (mprotect, then a write), and calls f before and after. A later run starts
 * from the module file's bytes again: code built from the patched bytes
 * must not be what it runs first. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

__attribute__((noinline)) int f(void) { return 0x11223344; }

int main(void) {
    int (*volatile fp)(void) = f; /* not folded: f's code runs each time */
    printf("before: %x\n", fp());
    unsigned char *p = (unsigned char *)f;
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t page = (uintptr_t)p & ~(uintptr_t)(pg - 1);
    if (mprotect((void *)page, 2 * pg, PROT_READ | PROT_WRITE | PROT_EXEC)) {
        perror("mprotect");
        return 1;
    }
    static const unsigned char imm[4] = {0x44, 0x33, 0x22, 0x11};
    int patched = 0;
    for (int i = 0; i < 64 && !patched; i++)
        if (memcmp(p + i, imm, 4) == 0) {
            p[i] = 0x99;
            patched = 1;
        }
    printf("patched: %s\n", patched ? "yes" : "no");
    printf("after: %x\n", fp());
    return 0;
}
