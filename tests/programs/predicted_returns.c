/* Calls and returns in every way a predicted return (a translated `ret`
 * through a per-thread slot the call filled, chosen by the return
 * address's low 12 bits) could be led astray, each with a checked result:
 * more call sites than slots (collisions), recursion deeper than the
 * slots and than the CPU's return stack, longjmp out of deep recursion
 * (calls never returned from), a function that returns elsewhere than
 * its caller (its return address rewritten), a return address pushed by
 * hand and reached by `jmp` (no call filled its slot), `ret imm16`, and
 * a tight call/return loop a timer signal must interrupt (the signal is
 * delivered only when returns stop taking their slots). */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#define NOINLINE __attribute__((noinline, noipa))

NOINLINE static uint64_t leaf(uint64_t x) { return x * 2654435761u + 1; }

/* 512 call sites of `leaf`, each in its own function, spread over more
 * than 4 KiB of code: sites share slots and overwrite each other's. */
#define SITE(n) NOINLINE static uint64_t site_##n(uint64_t x) { return leaf(x) ^ n; }
#define SITES8(n) SITE(n##0) SITE(n##1) SITE(n##2) SITE(n##3) SITE(n##4) SITE(n##5) SITE(n##6) SITE(n##7)
#define SITES64(n) SITES8(n##0) SITES8(n##1) SITES8(n##2) SITES8(n##3) SITES8(n##4) SITES8(n##5) SITES8(n##6) SITES8(n##7)
#define SITES512(n) SITES64(n##0) SITES64(n##1) SITES64(n##2) SITES64(n##3) SITES64(n##4) SITES64(n##5) SITES64(n##6) SITES64(n##7)
SITES512(1)
#define REF(n) site_##n,
#define REFS8(n) REF(n##0) REF(n##1) REF(n##2) REF(n##3) REF(n##4) REF(n##5) REF(n##6) REF(n##7)
#define REFS64(n) REFS8(n##0) REFS8(n##1) REFS8(n##2) REFS8(n##3) REFS8(n##4) REFS8(n##5) REFS8(n##6) REFS8(n##7)
#define REFS512(n) REFS64(n##0) REFS64(n##1) REFS64(n##2) REFS64(n##3) REFS64(n##4) REFS64(n##5) REFS64(n##6) REFS64(n##7)
static uint64_t (*const sites[])(uint64_t) = { REFS512(1) };

NOINLINE static uint64_t many_sites(int rounds) {
    uint64_t x = 7, n = sizeof sites / sizeof sites[0];
    for (int r = 0; r < rounds; r++)
        for (uint64_t i = 0; i < n; i++) x += sites[(i * 37 + r) % n](x);
    return x;
}

NOINLINE static uint64_t deep(uint64_t n) { return n == 0 ? 1 : leaf(n) ^ deep(n - 1); }

static jmp_buf escape;
NOINLINE static uint64_t dive(uint64_t n) {
    if (n == 0) longjmp(escape, 1);
    return dive(n - 1) + leaf(n);
}

/* Returns to `rerouted_to` instead of its caller: the return address on
 * the stack is replaced before `ret`. */
extern uint64_t reroute(void);
extern void rerouted_to(void);
__asm__(".text\n"
        "reroute:\n"
        "  leaq rerouted_to(%rip), %rax\n"
        "  movq %rax, (%rsp)\n"
        "  movl $1, %eax\n"
        "  ret\n"
        /* Back in call_rerouted's frame with rax = 1: add 10, then return
         * from call_rerouted (the rerouted return skipped its epilogue). */
        "rerouted_to:\n"
        "  addq $10, %rax\n"
        "  ret\n"
        ".globl call_rerouted\n"
        "call_rerouted:\n"
        "  call reroute\n"
        "  movl $999, %eax\n" /* never runs */
        "  ret\n"
        /* A return address pushed by hand, reached by jmp. */
        ".globl pushed_by_hand\n"
        "pushed_by_hand:\n"
        "  leaq 1f(%rip), %rax\n"
        "  pushq %rax\n"
        "  jmp by_hand_callee\n"
        "1:\n"
        "  addq $100, %rax\n"
        "  ret\n"
        "by_hand_callee:\n"
        "  movl $5, %eax\n"
        "  ret\n"
        /* ret imm16 drops an argument the caller pushed. */
        ".globl ret_imm\n"
        "ret_imm:\n"
        "  pushq $0x77\n"
        "  call drop_arg\n"
        "  ret\n"
        "drop_arg:\n"
        "  movq 8(%rsp), %rax\n"
        "  ret $8\n");
extern uint64_t call_rerouted(void);
extern uint64_t pushed_by_hand(void);
extern uint64_t ret_imm(void);

static volatile sig_atomic_t alarmed;
static void on_alarm(int sig) { (void)sig; alarmed = 1; }

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("many call sites: %llx\n", (unsigned long long)many_sites(40));
    printf("deep recursion: %llx\n", (unsigned long long)deep(100000));
    uint64_t jumps = 0;
    for (int i = 0; i < 2000; i++) {
        if (setjmp(escape) == 0) dive(50 + i % 200);
        else jumps++;
    }
    printf("longjmps out of recursion: %llu\n", (unsigned long long)jumps);
    uint64_t sum = 0;
    for (int i = 0; i < 100000; i++) sum += call_rerouted() + pushed_by_hand() + ret_imm();
    printf("rerouted, by-hand and ret imm16 returns: %llu\n", (unsigned long long)sum);
    printf("after all that: %llx\n", (unsigned long long)many_sites(2));

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    /* Each signal must stop the loop: one the thread never sees hangs it
     * (the run then times out). A signal may also come before the loop
     * starts (a slow or busy machine): that round ends at once. */
    struct itimerval t = { .it_interval = { 0, 0 }, .it_value = { 0, 2000 } };
    uint64_t x = 1, ended = 0;
    for (int round = 0; round < 30; round++) {
        alarmed = 0;
        setitimer(ITIMER_REAL, &t, NULL);
        while (!alarmed) x = leaf(x);
        ended++;
    }
    printf("call loops a timer signal ended: %llu\n", (unsigned long long)ended);
    return 0;
}
