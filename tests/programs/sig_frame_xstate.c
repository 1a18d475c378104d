/* The XSAVE image in a signal frame is the kernel's: its software-reserved
 * bytes (magic, sizes, features) and how much of an 8 KiB alternate stack
 * the frame takes are printed, and must match native. On a machine whose
 * XCR0 enables AMX, the kernel leaves the tile data out for a process that
 * never asked for it, so the frame is much smaller than CPUID's XSAVE size
 * and fits an 8 KiB alternate stack. XSTATE_BV must name only features the
 * frame holds. Exit 0 when it does. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

static char *alt;
static int bv_ok;

static void on_usr1(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    (void)si;
    ucontext_t *uc = ucv;
    const unsigned char *fp = (const unsigned char *)uc->uc_mcontext.fpregs;
    uint32_t magic, extended, size;
    uint64_t features, xstate_bv;
    memcpy(&magic, fp + 464, 4);
    memcpy(&extended, fp + 468, 4);
    memcpy(&features, fp + 472, 8);
    memcpy(&size, fp + 480, 4);
    memcpy(&xstate_bv, fp + 512, 8);
    bv_ok = (xstate_bv & ~features) == 0;
    printf("magic %#x extended size %u features %#lx xstate size %u\n", magic, extended, (unsigned long)features, size);
    /* The kernel's layout only (the stack is 64-byte aligned), whatever
     * the compiler does with the handler's own frame. */
    printf("ucontext %ld bytes below the alternate stack's top, XSAVE image %ld\n", (long)(alt + 8192 - (char *)ucv),
           (long)(alt + 8192 - (char *)fp));
}

int main(void) {
    alt = aligned_alloc(64, 8192);
    stack_t ss = { .ss_sp = alt, .ss_size = 8192 };
    if (sigaltstack(&ss, NULL) != 0)
        return 2;
    struct sigaction sa = { .sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO | SA_ONSTACK };
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    printf("xstate_bv within features: %s\n", bv_ok ? "yes" : "no");
    return bv_ok ? 0 : 1;
}
