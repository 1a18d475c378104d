/* Handlers that resume after the faulting instruction by advancing
 * uc_mcontext.gregs[REG_RIP] by its known length:
 * - SIGILL from `ud2` (0f 0b: 2 bytes);
 * - SIGSEGV from `mov (%rax), %ecx` (8b 08: 2 bytes) with rax = 0; the
 *   handler also sets rcx in the context, as if the load had returned it;
 * - SIGFPE from `idiv %ecx` with ecx = 0 (f7 f9: 2 bytes); the handler sets
 *   rax (the quotient) to -1.
 * The instruction bytes are written with .byte, so their length is fixed.
 * Each is done 1,000 times in a loop; registers the handler did not touch
 * must survive (checked with a value in rsi, and in rdx). Exit 0 when all hold. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>

static volatile sig_atomic_t ills, segvs, fpes, bad_pc;
static unsigned char *ill_at, *segv_at, *fpe_at;

static void on_ill(int sig, siginfo_t *si, void *ctx) {
    ucontext_t *uc = ctx;
    (void)sig;
    unsigned char *pc = (unsigned char *)uc->uc_mcontext.gregs[REG_RIP];
    if (pc[0] != 0x0f || pc[1] != 0x0b || si->si_addr != pc) bad_pc++;
    ills++;
    uc->uc_mcontext.gregs[REG_RIP] += 2;
}

static void on_segv(int sig, siginfo_t *si, void *ctx) {
    ucontext_t *uc = ctx;
    (void)sig;
    unsigned char *pc = (unsigned char *)uc->uc_mcontext.gregs[REG_RIP];
    if (pc[0] != 0x8b || pc[1] != 0x08 || si->si_addr != NULL || uc->uc_mcontext.gregs[REG_RAX] != 0) bad_pc++;
    segvs++;
    uc->uc_mcontext.gregs[REG_RCX] = 1000 + segvs;
    uc->uc_mcontext.gregs[REG_RIP] += 2;
}

static void on_fpe(int sig, siginfo_t *si, void *ctx) {
    ucontext_t *uc = ctx;
    (void)sig;
    unsigned char *pc = (unsigned char *)uc->uc_mcontext.gregs[REG_RIP];
    if (pc[0] != 0xf7 || pc[1] != 0xf9 || si->si_code != FPE_INTDIV) bad_pc++;
    fpes++;
    uc->uc_mcontext.gregs[REG_RAX] = -1;
    uc->uc_mcontext.gregs[REG_RIP] += 2;
}

static void install(int sig, void (*fn)(int, siginfo_t *, void *)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    install(SIGILL, on_ill);
    install(SIGSEGV, on_segv);
    install(SIGFPE, on_fpe);
    long kept_ok = 0, loaded_sum = 0, quotient_sum = 0;
    for (long i = 0; i < 1000; i++) {
        long keep = i * 7 + 3, out;
        /* ud2 with a live value in rsi. */
        __asm__ volatile(".byte 0x0f, 0x0b\n\t" "mov %%rsi, %0" : "=r"(out) : "S"(keep) : "memory");
        kept_ok += out == keep;
        /* mov (%rax), %ecx with rax = 0: the handler supplies ecx. */
        long loaded, keep2 = keep;
        __asm__ volatile("xor %%ecx, %%ecx\n\t" ".byte 0x8b, 0x08\n\t"
                         : "=c"(loaded), "+d"(keep2) : "a"(0L) : "memory");
        loaded_sum += loaded;
        kept_ok += keep2 == keep;
        /* idiv %ecx with ecx = 0: the handler supplies eax = -1. */
        int q;
        __asm__ volatile("cltd\n\t" ".byte 0xf7, 0xf9\n\t" : "=a"(q) : "a"((int)i), "c"(0) : "rdx", "memory");
        quotient_sum += q;
    }
    printf("SIGILL handled %d times, SIGSEGV %d times, SIGFPE %d times\n", (int)ills, (int)segvs, (int)fpes);
    printf("faulting instruction at the reported pc every time: %s\n", bad_pc == 0 ? "yes" : "no");
    printf("registers kept across the skipped ud2 and load: %ld of 2000\n", kept_ok);
    printf("sum of values the SIGSEGV handler loaded: %ld\n", loaded_sum);
    printf("sum of quotients the SIGFPE handler set: %ld\n", quotient_sum);
    int ok = ills == 1000 && segvs == 1000 && fpes == 1000 && bad_pc == 0 && kept_ok == 2000 &&
             loaded_sum == 1000L * 1000 + 1000L * 1001 / 2 && quotient_sum == -1000;
    printf("%s\n", ok ? "sig_ucontext_rip: ok" : "sig_ucontext_rip: MISMATCH");
    return ok ? 0 : 1;
}
