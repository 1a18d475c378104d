/* The AC (alignment check) flag set by the app, as the JVM does to probe
 * the CPU: while it is set, the code takes block exits (a loop, calls and
 * returns through a pointer, a system call), which run the runtime's own
 * code; natively nothing faults since the app itself makes no unaligned
 * access, and the flag is still set when read back. Prints what it saw;
 * exit 0 when AC survived and the work was done. */
#include <stdint.h>
#include <stdio.h>

static uint64_t step(uint64_t x) { return x * 6364136223846793005ull + 1442695040888963407ull; }

int main(void) {
    uint64_t (*volatile fn)(uint64_t) = step;
    uint64_t flags_in_window, acc, pid;
    const uint64_t AC = 0x40000;
    /* No C code between setting and clearing AC: the compiler's code (and
     * libc) may access memory unaligned. The red zone is skipped and the
     * stack aligned for the calls; memory operands are used only while
     * rsp is the compiler's. */
    __asm__ volatile(
        "mov %[fn], %%r14\n\t"
        "mov %%rsp, %%rbx\n\t"
        "sub $128, %%rsp\n\t"
        "and $-16, %%rsp\n\t"
        "pushfq\n\t"
        "orq $0x40000, (%%rsp)\n\t"
        "popfq\n\t"
        "xor %%r13d, %%r13d\n\t"
        "mov $200, %%r12d\n"
        "1:\n\t"
        "mov %%r13, %%rdi\n\t"
        "call *%%r14\n\t"
        "mov %%rax, %%r13\n\t"
        "dec %%r12d\n\t"
        "jnz 1b\n\t"
        "mov $39, %%eax\n\t" /* getpid */
        "syscall\n\t"
        "mov %%rax, %%r15\n\t"
        "pushfq\n\t"
        "pop %%rdx\n\t"
        "pushfq\n\t"
        "andq $~0x40000, (%%rsp)\n\t"
        "popfq\n\t"
        "mov %%rbx, %%rsp\n\t"
        "mov %%rdx, %[flags]\n\t"
        "mov %%r13, %[acc]\n\t"
        "mov %%r15, %[pid]\n\t"
        : [flags] "=m"(flags_in_window), [acc] "=m"(acc), [pid] "=m"(pid)
        : [fn] "m"(fn)
        : "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
          "memory", "cc");
    int kept = (flags_in_window & AC) != 0;
    printf("AC set in the window: %s\n", kept ? "yes" : "no");
    printf("accumulated: %016llx, getpid > 0: %s\n", (unsigned long long)acc, pid > 0 ? "yes" : "no");
    return kept && pid > 0 ? 0 : 1;
}
