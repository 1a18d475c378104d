/* Hot loops of the shapes traces are built from, each checked by what it
 * prints (the same natively and translated), run as `trace_paths MODE N`:
 * - calls: N rounds of direct calls, returns, indirect calls through a
 *   table whose target changes every 64 rounds, and a switch (a jump
 *   table) whose case follows a pattern that changes too: a trace's
 *   in-line target checks both hit and miss;
 * - fault: N rounds of a hot loop in which every 97th round loads from an
 *   unmapped address with a known value in r12; the SIGSEGV handler
 *   prints the fault's address, the pc's offset in the function and r12,
 *   then jumps back into the loop (siglongjmp);
 * - signal: a thread spins in a hot loop until another thread has sent it
 *   N signals with pthread_kill, each waited for: a spinning trace must
 *   let them in (or the run hangs);
 * - smc: code written to a writable and executable page, called N times
 *   per round from a hot loop, rewritten each round (a new constant): a
 *   trace through it must go with the old code.
 * - late: a loop of N rounds whose start is first reached by a forward
 *   branch: with N = 1 its block runs once and no backward branch is
 *   taken (a cache file holds it as a block, not as a loop's start).
 * Exit 0 when all hold. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

static __attribute__((noinline)) uint64_t mix(uint64_t x) { return x * 0x9e3779b97f4a7c15ull ^ (x >> 29); }
static __attribute__((noinline)) uint64_t add3(uint64_t x) { return x + 3; }
static __attribute__((noinline)) uint64_t rot(uint64_t x) { return x << 7 | x >> 57; }
static __attribute__((noinline)) uint64_t twice(uint64_t x) { return mix(x) + mix(x + 1); }

static uint64_t (*const table[])(uint64_t) = {mix, add3, rot, twice};

static __attribute__((noinline)) uint64_t step(uint64_t acc, unsigned op) {
    switch (op & 7) {
    case 0: return acc + 1;
    case 1: return acc * 3;
    case 2: return acc ^ 0x5555;
    case 3: return acc - 7;
    case 4: return rot(acc);
    case 5: return acc + (acc >> 3);
    case 6: return add3(acc);
    default: return ~acc;
    }
}

static int calls(long n) {
    uint64_t acc = 1;
    for (long i = 0; i < n; i++) {
        acc = table[(i >> 6) & 3](acc);
        acc = step(acc, (unsigned)(i % 3 + ((i >> 8) & 4)));
        acc = twice(acc) ^ add3(acc);
    }
    printf("calls: %ld rounds, %016llx\n", n, (unsigned long long)acc);
    return 0;
}

static sigjmp_buf back;
static volatile long faults;

/* Loads from `p` with 0x1234 + i in r12; the load is the labelled
 * instruction, so the handler can name its offset. */
extern char fault_load[];
static __attribute__((noipa)) long touch(long *p, long i) {
    long v;
    __asm__ volatile("mov %2, %%r12\n"
                     ".globl fault_load\n"
                     "fault_load: mov (%1), %0\n"
                     : "=r"(v)
                     : "r"(p), "r"(0x1234 + i)
                     : "r12", "memory");
    return v;
}

static void on_segv(int sig, siginfo_t *si, void *ctx) {
    ucontext_t *uc = ctx;
    (void)sig;
    printf("fault %ld: addr %p, pc at fault_load%+lld, r12 %#llx\n", faults, si->si_addr,
           (long long)(uc->uc_mcontext.gregs[REG_RIP] - (greg_t)(uintptr_t)fault_load),
           (unsigned long long)uc->uc_mcontext.gregs[REG_R12]);
    faults++;
    siglongjmp(back, 1);
}

static int fault(long n) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    long good = 7, sum = 0;
    for (volatile long i = 0; i < n; i++) {
        if (sigsetjmp(back, 1)) continue;
        long *p = i % 97 == 96 ? (long *)(uintptr_t)(0x1000 + i) : &good;
        sum += touch(p, i);
    }
    printf("fault: %ld rounds, %ld faults, sum %ld\n", n, faults, sum);
    return faults == n / 97 ? 0 : 1;
}

static volatile sig_atomic_t received;
static volatile long spins;
static pthread_t spinner;

static void on_usr1(int sig) {
    (void)sig;
    received++;
}

static void *sender(void *arg) {
    long n = (long)arg;
    for (long k = 0; k < n; k++) {
        pthread_kill(spinner, SIGUSR1);
        while (received <= k) usleep(100);
    }
    return NULL;
}

static int signal_spin(long n) {
    signal(SIGUSR1, on_usr1);
    spinner = pthread_self();
    pthread_t t;
    pthread_create(&t, NULL, sender, (void *)n);
    uint64_t acc = 1;
    while (received < n) {
        acc = mix(acc) + add3(acc);
        spins++;
    }
    pthread_join(t, NULL);
    printf("signal: %d signals received\n", (int)received);
    return received == n && acc != 0 ? 0 : 1;
}

static int smc(long n) {
    /* mov eax, imm32; ret */
    unsigned char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED) return 2;
    int (*fn)(void) = (int (*)(void))code;
    long total = 0;
    for (int round = 0; round < 20; round++) {
        int k = 1000 * round + 17;
        code[0] = 0xb8;
        memcpy(code + 1, &k, 4);
        code[5] = 0xc3;
        long sum = 0;
        for (long i = 0; i < n; i++) sum += fn() + (i & 1);
        if (sum != (long)k * n + n / 2) {
            printf("smc: round %d summed %ld, not %ld\n", round, sum, (long)k * n + n / 2);
            return 1;
        }
        total += sum;
    }
    printf("smc: %ld\n", total);
    return 0;
}

static __attribute__((noinline)) int late(long n) {
    volatile uint64_t sum = 0;
    long i = 0;
    if (n > 1000000000)
        sum = 1;
again:
    sum += mix(i);
    if (++i < n)
        goto again;
    printf("late: %llu\n", (unsigned long long)sum);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: trace_paths calls|fault|signal|smc|late N\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    long n = atol(argv[2]);
    if (!strcmp(argv[1], "calls")) return calls(n);
    if (!strcmp(argv[1], "fault")) return fault(n);
    if (!strcmp(argv[1], "signal")) return signal_spin(n);
    if (!strcmp(argv[1], "smc")) return smc(n);
    if (!strcmp(argv[1], "late")) return late(n);
    return 2;
}
