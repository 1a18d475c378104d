/* The whole extended state survives what the runtime does between two
 * pieces of app code: distinctive values are put in the x87 stack and
 * control word, MXCSR, all of ymm0-15 and, where the CPU has AVX-512, all
 * of zmm0-31 and k1-k7; then, without touching them, the program runs
 * through 64 blocks never run before (each built by the translator on a
 * cache exit), two system calls and a signal whose handler does vector
 * work of its own; then it reads every register back. A cache exit saves
 * only xmm0-15 and MXCSR and leaves the rest in the CPU
 * (`ThreadContext::save_whole_xstate`): any runtime code that used AVX, or
 * a save or restore at the wrong place, shows here. Prints one line per
 * part and exits 0 when every part held. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint8_t zmm_in[32][64] __attribute__((aligned(64)));
static uint8_t zmm_out[32][64] __attribute__((aligned(64)));
static uint16_t k_in[8], k_out[8];
static double x87_in[8], x87_out[8];
static volatile double handler_sink;
/* Round toward zero, 64-bit precision, exceptions masked. */
static const unsigned short fcw_in = 0x0f7f;

static void on_usr1(int sig) {
    /* Vector and x87 work of the handler's own: the kernel restores the
     * interrupted state at sigreturn, so none of it may leak out. */
    double a[8];
    for (int i = 0; i < 8; i++) a[i] = sig * (i + 0.5);
    long double l = 1;
    for (int i = 0; i < 8; i++) l = l * a[i] + 1;
    handler_sink = (double)l + a[3];
}

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

static int has_avx(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_AVX)) return 0;
    return (xgetbv0() & 6) == 6;
}

static int has_avx512(void) {
    unsigned a, b, c, d;
    if (!has_avx() || !__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & bit_AVX512F)) return 0;
    return (xgetbv0() & 0xe6) == 0xe6;
}

/* 64 blocks, each ending in a jump to the next: the first run of each
 * leaves the cache for the translator. Then getppid, sched_yield and a
 * SIGUSR1 to this thread (raised by the kernel, delivered by the runtime
 * at the next block). */
#define FRESH_BLOCKS_AND_CALLS                                                   \
    ".rept 64\n jmp 1f\n 1:\n .endr\n"                                           \
    "mov $" "110" ", %%eax\n syscall\n"                                          \
    "mov $" "24" ", %%eax\n syscall\n"                                           \
    "mov %[pid], %%edi\n mov %[tid], %%esi\n mov $10, %%edx\n mov $234, %%eax\n syscall\n" \
    ".rept 64\n jmp 1f\n 1:\n .endr\n"

__attribute__((noinline, target("avx512f"))) static void round_trip_avx512(int pid, int tid) {
    __asm__ volatile(
        "fninit\n fldcw %[fcw]\n"
        "fldl 56(%[x]); fldl 48(%[x]); fldl 40(%[x]); fldl 32(%[x])\n"
        "fldl 24(%[x]); fldl 16(%[x]); fldl 8(%[x]); fldl 0(%[x])\n"
        "vmovdqa64 0*64(%[zi]), %%zmm0\n vmovdqa64 1*64(%[zi]), %%zmm1\n vmovdqa64 2*64(%[zi]), %%zmm2\n vmovdqa64 3*64(%[zi]), %%zmm3\n"
        "vmovdqa64 4*64(%[zi]), %%zmm4\n vmovdqa64 5*64(%[zi]), %%zmm5\n vmovdqa64 6*64(%[zi]), %%zmm6\n vmovdqa64 7*64(%[zi]), %%zmm7\n"
        "vmovdqa64 8*64(%[zi]), %%zmm8\n vmovdqa64 9*64(%[zi]), %%zmm9\n vmovdqa64 10*64(%[zi]), %%zmm10\n vmovdqa64 11*64(%[zi]), %%zmm11\n"
        "vmovdqa64 12*64(%[zi]), %%zmm12\n vmovdqa64 13*64(%[zi]), %%zmm13\n vmovdqa64 14*64(%[zi]), %%zmm14\n vmovdqa64 15*64(%[zi]), %%zmm15\n"
        "vmovdqa64 16*64(%[zi]), %%zmm16\n vmovdqa64 17*64(%[zi]), %%zmm17\n vmovdqa64 18*64(%[zi]), %%zmm18\n vmovdqa64 19*64(%[zi]), %%zmm19\n"
        "vmovdqa64 20*64(%[zi]), %%zmm20\n vmovdqa64 21*64(%[zi]), %%zmm21\n vmovdqa64 22*64(%[zi]), %%zmm22\n vmovdqa64 23*64(%[zi]), %%zmm23\n"
        "vmovdqa64 24*64(%[zi]), %%zmm24\n vmovdqa64 25*64(%[zi]), %%zmm25\n vmovdqa64 26*64(%[zi]), %%zmm26\n vmovdqa64 27*64(%[zi]), %%zmm27\n"
        "vmovdqa64 28*64(%[zi]), %%zmm28\n vmovdqa64 29*64(%[zi]), %%zmm29\n vmovdqa64 30*64(%[zi]), %%zmm30\n vmovdqa64 31*64(%[zi]), %%zmm31\n"
        "kmovw 2(%[ki]), %%k1\n kmovw 4(%[ki]), %%k2\n kmovw 6(%[ki]), %%k3\n kmovw 8(%[ki]), %%k4\n"
        "kmovw 10(%[ki]), %%k5\n kmovw 12(%[ki]), %%k6\n kmovw 14(%[ki]), %%k7\n"
        FRESH_BLOCKS_AND_CALLS
        "vmovdqa64 %%zmm0, 0*64(%[zo])\n vmovdqa64 %%zmm1, 1*64(%[zo])\n vmovdqa64 %%zmm2, 2*64(%[zo])\n vmovdqa64 %%zmm3, 3*64(%[zo])\n"
        "vmovdqa64 %%zmm4, 4*64(%[zo])\n vmovdqa64 %%zmm5, 5*64(%[zo])\n vmovdqa64 %%zmm6, 6*64(%[zo])\n vmovdqa64 %%zmm7, 7*64(%[zo])\n"
        "vmovdqa64 %%zmm8, 8*64(%[zo])\n vmovdqa64 %%zmm9, 9*64(%[zo])\n vmovdqa64 %%zmm10, 10*64(%[zo])\n vmovdqa64 %%zmm11, 11*64(%[zo])\n"
        "vmovdqa64 %%zmm12, 12*64(%[zo])\n vmovdqa64 %%zmm13, 13*64(%[zo])\n vmovdqa64 %%zmm14, 14*64(%[zo])\n vmovdqa64 %%zmm15, 15*64(%[zo])\n"
        "vmovdqa64 %%zmm16, 16*64(%[zo])\n vmovdqa64 %%zmm17, 17*64(%[zo])\n vmovdqa64 %%zmm18, 18*64(%[zo])\n vmovdqa64 %%zmm19, 19*64(%[zo])\n"
        "vmovdqa64 %%zmm20, 20*64(%[zo])\n vmovdqa64 %%zmm21, 21*64(%[zo])\n vmovdqa64 %%zmm22, 22*64(%[zo])\n vmovdqa64 %%zmm23, 23*64(%[zo])\n"
        "vmovdqa64 %%zmm24, 24*64(%[zo])\n vmovdqa64 %%zmm25, 25*64(%[zo])\n vmovdqa64 %%zmm26, 26*64(%[zo])\n vmovdqa64 %%zmm27, 27*64(%[zo])\n"
        "vmovdqa64 %%zmm28, 28*64(%[zo])\n vmovdqa64 %%zmm29, 29*64(%[zo])\n vmovdqa64 %%zmm30, 30*64(%[zo])\n vmovdqa64 %%zmm31, 31*64(%[zo])\n"
        "kmovw %%k1, 2(%[ko])\n kmovw %%k2, 4(%[ko])\n kmovw %%k3, 6(%[ko])\n kmovw %%k4, 8(%[ko])\n"
        "kmovw %%k5, 10(%[ko])\n kmovw %%k6, 12(%[ko])\n kmovw %%k7, 14(%[ko])\n"
        "fstpl 0(%[xo]); fstpl 8(%[xo]); fstpl 16(%[xo]); fstpl 24(%[xo])\n"
        "fstpl 32(%[xo]); fstpl 40(%[xo]); fstpl 48(%[xo]); fstpl 56(%[xo])\n"
        "vzeroupper\n"
        :
        : [x] "r"(x87_in), [xo] "r"(x87_out), [zi] "r"(zmm_in), [zo] "r"(zmm_out), [ki] "r"(k_in), [ko] "r"(k_out),
          [pid] "m"(pid), [tid] "m"(tid), [fcw] "m"(fcw_in)
        : "rax", "rcx", "rdx", "rsi", "rdi", "r11", "memory", "cc",
          "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
          "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22",
          "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31",
          "k1", "k2", "k3", "k4", "k5", "k6", "k7", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)");
}

__attribute__((noinline, target("avx"))) static void round_trip_avx(int pid, int tid) {
    __asm__ volatile(
        "fninit\n fldcw %[fcw]\n"
        "fldl 56(%[x]); fldl 48(%[x]); fldl 40(%[x]); fldl 32(%[x])\n"
        "fldl 24(%[x]); fldl 16(%[x]); fldl 8(%[x]); fldl 0(%[x])\n"
        "vmovdqa 0*64(%[zi]), %%ymm0\n vmovdqa 1*64(%[zi]), %%ymm1\n vmovdqa 2*64(%[zi]), %%ymm2\n vmovdqa 3*64(%[zi]), %%ymm3\n"
        "vmovdqa 4*64(%[zi]), %%ymm4\n vmovdqa 5*64(%[zi]), %%ymm5\n vmovdqa 6*64(%[zi]), %%ymm6\n vmovdqa 7*64(%[zi]), %%ymm7\n"
        "vmovdqa 8*64(%[zi]), %%ymm8\n vmovdqa 9*64(%[zi]), %%ymm9\n vmovdqa 10*64(%[zi]), %%ymm10\n vmovdqa 11*64(%[zi]), %%ymm11\n"
        "vmovdqa 12*64(%[zi]), %%ymm12\n vmovdqa 13*64(%[zi]), %%ymm13\n vmovdqa 14*64(%[zi]), %%ymm14\n vmovdqa 15*64(%[zi]), %%ymm15\n"
        FRESH_BLOCKS_AND_CALLS
        "vmovdqa %%ymm0, 0*64(%[zo])\n vmovdqa %%ymm1, 1*64(%[zo])\n vmovdqa %%ymm2, 2*64(%[zo])\n vmovdqa %%ymm3, 3*64(%[zo])\n"
        "vmovdqa %%ymm4, 4*64(%[zo])\n vmovdqa %%ymm5, 5*64(%[zo])\n vmovdqa %%ymm6, 6*64(%[zo])\n vmovdqa %%ymm7, 7*64(%[zo])\n"
        "vmovdqa %%ymm8, 8*64(%[zo])\n vmovdqa %%ymm9, 9*64(%[zo])\n vmovdqa %%ymm10, 10*64(%[zo])\n vmovdqa %%ymm11, 11*64(%[zo])\n"
        "vmovdqa %%ymm12, 12*64(%[zo])\n vmovdqa %%ymm13, 13*64(%[zo])\n vmovdqa %%ymm14, 14*64(%[zo])\n vmovdqa %%ymm15, 15*64(%[zo])\n"
        "fstpl 0(%[xo]); fstpl 8(%[xo]); fstpl 16(%[xo]); fstpl 24(%[xo])\n"
        "fstpl 32(%[xo]); fstpl 40(%[xo]); fstpl 48(%[xo]); fstpl 56(%[xo])\n"
        "vzeroupper\n"
        :
        : [x] "r"(x87_in), [xo] "r"(x87_out), [zi] "r"(zmm_in), [zo] "r"(zmm_out), [pid] "m"(pid), [tid] "m"(tid), [fcw] "m"(fcw_in)
        : "rax", "rcx", "rdx", "rsi", "rdi", "r11", "memory", "cc",
          "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
          "xmm12", "xmm13", "xmm14", "xmm15", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)");
}

int main(void) {
    signal(SIGUSR1, on_usr1);
    for (int r = 0; r < 32; r++)
        for (int b = 0; b < 64; b++) zmm_in[r][b] = (uint8_t)(r * 64 + b * 7 + 1);
    for (int i = 0; i < 8; i++) {
        k_in[i] = (uint16_t)(0x9c31 * (i + 1));
        x87_in[i] = 1.0 / (i + 3) - i * 1000.25;
    }
    int avx512 = has_avx512(), avx = has_avx();
    printf("vector state checked: %s\n", avx512 ? "zmm0-31, k1-k7" : avx ? "ymm0-15" : "none (no AVX)");
    int ok = 1;
    for (int round = 0; round < 3 && avx; round++) {
        /* A non-default rounding mode and flush-to-zero in MXCSR, and
         * round-to-zero in the x87 control word, kept through the run. */
        unsigned mxcsr_in = 0x1f80 | 0x6000 | 0x8000, mxcsr_out;
        unsigned short fcw_out;
        memset(zmm_out, 0, sizeof zmm_out);
        memset(k_out, 0, sizeof k_out);
        __asm__ volatile("ldmxcsr %0" : : "m"(mxcsr_in));
        if (avx512)
            round_trip_avx512(getpid(), (int)syscall(SYS_gettid));
        else
            round_trip_avx(getpid(), (int)syscall(SYS_gettid));
        __asm__ volatile("stmxcsr %0" : "=m"(mxcsr_out));
        __asm__ volatile("fnstcw %0" : "=m"(fcw_out));
        unsigned default_mxcsr = 0x1f80;
        unsigned short default_fcw = 0x037f;
        __asm__ volatile("ldmxcsr %0" : : "m"(default_mxcsr));
        __asm__ volatile("fldcw %0" : : "m"(default_fcw));
        int regs = avx512 ? 32 : 16, bytes = avx512 ? 64 : 32, bad_vec = -1, bad_k = -1;
        for (int r = 0; r < regs && bad_vec < 0; r++)
            if (memcmp(zmm_in[r], zmm_out[r], bytes)) bad_vec = r;
        for (int i = 1; i < 8 && avx512 && bad_k < 0; i++)
            if (k_in[i] != k_out[i]) bad_k = i;
        int x87 = memcmp(x87_in, x87_out, sizeof x87_in) == 0;
        printf("round %d: vectors %s", round, bad_vec < 0 ? "kept" : "CHANGED");
        if (bad_vec >= 0) printf(" (register %d)", bad_vec);
        printf(", masks %s, x87 %s, mxcsr %#x, fcw %#x\n", bad_k < 0 ? "kept" : "CHANGED", x87 ? "kept" : "CHANGED",
               mxcsr_out, fcw_out);
        ok &= bad_vec < 0 && bad_k < 0 && x87 && mxcsr_out == mxcsr_in && fcw_out == fcw_in;
    }
    return ok ? 0 : 1;
}
