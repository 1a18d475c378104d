/* For the test programs that rewrite their own text (persist_smc.c,
 * persist_smc_loop.c): makes the two pages at fn writable (mprotect) and
 * turns the first byte of the first 0x11223344 immediate within `within`
 * bytes of fn into 0x99. Returns whether it found one; exits on a failed
 * mprotect. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int patch_own_code(void *fn, int within) {
    unsigned char *p = (unsigned char *)fn;
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t page = (uintptr_t)p & ~(uintptr_t)(pg - 1);
    if (mprotect((void *)page, 2 * pg, PROT_READ | PROT_WRITE | PROT_EXEC)) {
        perror("mprotect");
        exit(1);
    }
    static const unsigned char imm[4] = {0x44, 0x33, 0x22, 0x11};
    for (int i = 0; i < within; i++)
        if (memcmp(p + i, imm, 4) == 0) {
            p[i] = 0x99;
            return 1;
        }
    return 0;
}
