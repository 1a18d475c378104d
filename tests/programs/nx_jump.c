/* Jumps into memory the program cannot execute: a readable, writable but
 * non-executable page holding valid code, an unmapped page, and an
 * instruction straddling from an executable page into a non-executable
 * one. Natively each faults at the jump's target (the straddling one at the
 * instruction's start, with si_addr the next page) with SIGSEGV: the
 * handler prints si_code, whether si_addr and the interrupted rip are what
 * the kernel gives, and recovers with siglongjmp. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

static sigjmp_buf env;
static volatile unsigned long want_addr, want_rip;

static void on_segv(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    unsigned long rip = uc->uc_mcontext.gregs[REG_RIP];
    printf("signal %d code %d addr ok %d rip ok %d\n", sig, si->si_code,
           (unsigned long)si->si_addr == want_addr, rip == want_rip);
    siglongjmp(env, 1);
}

static void try_call(const char *what, void *target, unsigned long addr, unsigned long rip) {
    want_addr = addr;
    want_rip = rip;
    printf("%s: ", what);
    fflush(stdout);
    if (sigsetjmp(env, 1) == 0) {
        ((void (*)(void))target)();
        printf("returned\n");
    }
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);

    unsigned char *p = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    /* A function that just returns, on a page that is not executable. */
    p[0] = 0xc3;
    try_call("data page", p, (unsigned long)p, (unsigned long)p);

    /* The same page made executable: the call works. */
    mprotect(p, 4096, PROT_READ | PROT_EXEC);
    try_call("made executable", p, 0, 0);

    /* And not executable again. */
    mprotect(p, 4096, PROT_READ);
    try_call("made data again", p, (unsigned long)p, (unsigned long)p);

    /* An unmapped page. */
    munmap(p + 2 * 4096, 4096);
    try_call("unmapped", p + 2 * 4096, (unsigned long)(p + 2 * 4096), (unsigned long)(p + 2 * 4096));

    /* nop; nop; then `mov eax, imm32` straddling into a data page. */
    unsigned char *q = p + 4096;
    mprotect(p, 2 * 4096, PROT_READ | PROT_WRITE);
    unsigned char *s = q - 4;
    s[0] = 0x90;
    s[1] = 0x90;
    s[2] = 0xb8; /* mov eax, imm32: 5 bytes, 3 of them on the next page */
    memset(q, 0, 8);
    q[3] = 0xc3;
    mprotect(p, 4096, PROT_READ | PROT_EXEC);
    try_call("straddling", s, (unsigned long)q, (unsigned long)(s + 2));
    printf("done\n");
    return 0;
}
