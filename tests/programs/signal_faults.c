/* Synchronous faults (SIGSEGV, SIGILL, SIGTRAP, SIGFPE) whose handlers
 * inspect and change the interrupted context: the pc must be the
 * application's faulting instruction and the registers the application's;
 * resuming at a changed pc with changed registers; recovery by siglongjmp;
 * a handler on a sigaltstack. stdout is line buffered so a crash still shows
 * how far the program got. Exit 0 when all checks hold. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

__asm__(".text\n"
        /* long fault_store(long *addr): stores through addr; a handler resumes at fault_store_resume. */
        ".globl fault_store\n.type fault_store,@function\n"
        "fault_store:\n"
        "  push %rbx\n  push %r12\n  push %r13\n  push %r14\n  push %r15\n"
        "  movabs $0x1111111111111111, %rbx\n"
        "  movabs $0x2222222222222222, %r12\n"
        "  movabs $0x3333333333333333, %r13\n"
        "  movabs $0x4444444444444444, %r14\n"
        "  movabs $0x5555555555555555, %r15\n"
        ".globl fault_store_insn\n"
        "fault_store_insn:\n"
        "  movl $1, (%rdi)\n"
        ".globl fault_store_resume\n"
        "fault_store_resume:\n"
        "  xor %eax, %eax\n"
        "  movabs $0x1111111111111111, %rcx\n  cmp %rcx, %rbx\n  jne 1f\n"
        "  movabs $0x2222222222222222, %rcx\n  cmp %rcx, %r12\n  jne 1f\n"
        "  movabs $0x3333333333333333, %rcx\n  cmp %rcx, %r13\n  jne 1f\n"
        "  movabs $0x4444444444444444, %rcx\n  cmp %rcx, %r14\n  jne 1f\n"
        "  movabs $0x5555555555555555, %rcx\n  cmp %rcx, %r15\n  jne 1f\n"
        "  mov $1, %eax\n"
        "1:\n  pop %r15\n  pop %r14\n  pop %r13\n  pop %r12\n  pop %rbx\n  ret\n"
        ".size fault_store, .-fault_store\n"
        /* int do_ud2(void): ud2, the handler skips it; returns 5. */
        ".globl do_ud2\n.type do_ud2,@function\n"
        "do_ud2:\n"
        ".globl ud2_insn\n"
        "ud2_insn:\n  ud2\n  mov $5, %eax\n  ret\n"
        ".size do_ud2, .-do_ud2\n"
        /* int do_int3(void): int3 traps with the pc after it; returns 6. */
        ".globl do_int3\n.type do_int3,@function\n"
        "do_int3:\n"
        ".globl int3_insn\n"
        "int3_insn:\n  int3\n  mov $6, %eax\n  ret\n"
        ".size do_int3, .-do_int3\n"
        /* long do_div(long a, long b): a / b; the handler resumes at div_resume with rax set. */
        ".globl do_div\n.type do_div,@function\n"
        "do_div:\n"
        "  mov %rdi, %rax\n  cqo\n"
        ".globl div_insn\n"
        "div_insn:\n  idiv %rsi\n"
        ".globl div_resume\n"
        "div_resume:\n  ret\n"
        ".size do_div, .-do_div\n");

extern long fault_store(long *addr);
extern char fault_store_insn[], fault_store_resume[], ud2_insn[], int3_insn[], div_insn[], div_resume[];
extern int do_ud2(void);
extern int do_int3(void);
extern long do_div(long a, long b);

static volatile sig_atomic_t segv_pc_ok, segv_addr_ok, segv_rdi_ok, ill_pc_ok, trap_pc_ok, fpe_pc_ok, fpe_code_ok;
static volatile sig_atomic_t altstack_ok;
static char *altstack_base;
static size_t altstack_size;
static sigjmp_buf recover;
static volatile sig_atomic_t jump_mode;

static void on_segv(int sig, siginfo_t *si, void *ctx) {
    ucontext_t *uc = ctx;
    char local;
    (void)sig;
    altstack_ok = (char *)&local >= altstack_base && (char *)&local < altstack_base + altstack_size;
    if (jump_mode) siglongjmp(recover, 1);
    segv_pc_ok = uc->uc_mcontext.gregs[REG_RIP] == (greg_t)(uintptr_t)fault_store_insn;
    segv_addr_ok = si->si_addr == (void *)16 && si->si_code == SEGV_MAPERR;
    segv_rdi_ok = uc->uc_mcontext.gregs[REG_RDI] == 16;
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)fault_store_resume;
}

static void on_ill(int sig, siginfo_t *si, void *ctx) {
    ucontext_t *uc = ctx;
    (void)sig;
    ill_pc_ok = uc->uc_mcontext.gregs[REG_RIP] == (greg_t)(uintptr_t)ud2_insn && si->si_addr == (void *)ud2_insn &&
                si->si_code == ILL_ILLOPN;
    uc->uc_mcontext.gregs[REG_RIP] += 2;
}

static void on_trap(int sig, siginfo_t *si, void *ctx) {
    ucontext_t *uc = ctx;
    (void)sig; (void)si;
    trap_pc_ok = uc->uc_mcontext.gregs[REG_RIP] == (greg_t)(uintptr_t)(int3_insn + 1);
}

static void on_fpe(int sig, siginfo_t *si, void *ctx) {
    ucontext_t *uc = ctx;
    (void)sig;
    fpe_pc_ok = uc->uc_mcontext.gregs[REG_RIP] == (greg_t)(uintptr_t)div_insn;
    fpe_code_ok = si->si_code == FPE_INTDIV;
    uc->uc_mcontext.gregs[REG_RAX] = -12345;
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)div_resume;
}

static void install(int sig, void (*fn)(int, siginfo_t *, void *), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL)) { perror("sigaction"); exit(2); }
}

int main(void) {
    int ok = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    altstack_size = 64 * 1024;
    altstack_base = malloc(altstack_size);
    stack_t ss = { .ss_sp = altstack_base, .ss_size = altstack_size, .ss_flags = 0 };
    if (sigaltstack(&ss, NULL)) { perror("sigaltstack"); return 2; }
    install(SIGSEGV, on_segv, SA_ONSTACK);
    install(SIGILL, on_ill, 0);
    install(SIGTRAP, on_trap, 0);
    install(SIGFPE, on_fpe, 0);

    long r = fault_store((long *)16);
    printf("SIGSEGV: pc is the faulting store: %s, si_addr/si_code: %s, rdi: %s, resumed with callee-saved registers intact: %s, on the alternate stack: %s\n",
           segv_pc_ok ? "yes" : "no", segv_addr_ok ? "yes" : "no", segv_rdi_ok ? "yes" : "no", r == 1 ? "yes" : "no",
           altstack_ok ? "yes" : "no");
    ok = ok && segv_pc_ok && segv_addr_ok && segv_rdi_ok && r == 1 && altstack_ok;

    /* Recovery by siglongjmp out of the handler, several times in a row. */
    int recovered = 0;
    jump_mode = 1;
    for (int i = 0; i < 5; i++) {
        if (sigsetjmp(recover, 1) == 0) {
            *(volatile int *)(uintptr_t)(64 + i * 8) = i;
            printf("store to a low address did not fault\n");
        } else {
            recovered++;
        }
    }
    jump_mode = 0;
    printf("SIGSEGV recovered by siglongjmp: %d of 5\n", recovered);
    if (recovered != 5) ok = 0;

    int u = do_ud2();
    printf("SIGILL: pc is the ud2: %s, resumed after it: %s\n", ill_pc_ok ? "yes" : "no", u == 5 ? "yes" : "no");
    int t = do_int3();
    printf("SIGTRAP: pc is after the int3: %s, returned %d\n", trap_pc_ok ? "yes" : "no", t);
    volatile long zero = 0;
    long q = do_div(100, zero);
    printf("SIGFPE: pc is the idiv: %s, FPE_INTDIV: %s, rax set by the handler: %ld\n", fpe_pc_ok ? "yes" : "no",
           fpe_code_ok ? "yes" : "no", q);
    printf("do_div(100, 7) = %ld\n", do_div(100, 7));
    ok = ok && ill_pc_ok && u == 5 && trap_pc_ok && t == 6 && fpe_pc_ok && fpe_code_ok && q == -12345;

    printf("%s\n", ok ? "signal_faults: ok" : "signal_faults: MISMATCH");
    return ok ? 0 : 1;
}
