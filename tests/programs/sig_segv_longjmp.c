/* A SIGSEGV handler that recovers with siglongjmp, 100 times: stores and
 * loads through unmapped low addresses, a write to a read-only page, and a
 * jump through a null function pointer, in turn. sigsetjmp saves the mask,
 * so SIGSEGV is unblocked again after each recovery (checked with
 * sigprocmask). Prints counts only; exit 0 when all 100 faults recovered. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static sigjmp_buf env;
static volatile sig_atomic_t handled, maperr, accerr;

static void on_segv(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    if (sig == SIGSEGV) handled++;
    if (si->si_code == SEGV_MAPERR) maperr++;
    if (si->si_code == SEGV_ACCERR) accerr++;
    siglongjmp(env, 1);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL)) { perror("sigaction"); return 2; }
    long page = sysconf(_SC_PAGESIZE);
    volatile int *ro = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ro == MAP_FAILED) { perror("mmap"); return 2; }

    int recovered = 0, not_faulted = 0, still_blocked = 0;
    volatile long sink = 0;
    for (int i = 0; i < 100; i++) {
        if (sigsetjmp(env, 1) == 0) {
            switch (i % 4) {
            case 0: *(volatile long *)(uintptr_t)(8 * (i + 1)) = i; break;
            case 1: sink += *(volatile long *)(uintptr_t)(16 * i); break;
            case 2: ro[i] = i; break;
            case 3: ((void (*)(void))(uintptr_t)0)(); break;
            }
            not_faulted++;
        } else {
            recovered++;
            sigset_t cur;
            sigprocmask(SIG_SETMASK, NULL, &cur);
            if (sigismember(&cur, SIGSEGV)) still_blocked++;
        }
    }
    printf("faults handled: %d, recovered by siglongjmp: %d, did not fault: %d\n", (int)handled, recovered, not_faulted);
    printf("SEGV_MAPERR: %d, SEGV_ACCERR: %d\n", (int)maperr, (int)accerr);
    printf("SIGSEGV still blocked after a recovery: %d time(s)\n", still_blocked);
    int ok = handled == 100 && recovered == 100 && not_faulted == 0 && maperr == 75 && accerr == 25 && still_blocked == 0 && sink == 0;
    printf("%s\n", ok ? "sig_segv_longjmp: ok" : "sig_segv_longjmp: MISMATCH");
    return ok ? 0 : 1;
}
