/* Large stack use: a 1 MiB local array, a deep recursion with 4 KiB frames,
 * alloca of varying sizes. Total peak below 4 MiB (the default limit is 8). */
#include <alloca.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static __attribute__((noinline)) uint64_t big_frame(int seed) {
    volatile unsigned char buf[1 << 20];
    for (size_t i = 0; i < sizeof buf; i += 64) buf[i] = (unsigned char)(i * 31 + (size_t)seed);
    uint64_t s = 0;
    for (size_t i = sizeof buf; i > 0; i -= 4096) s = s * 1099511628211ull + buf[i - 64];
    return s;
}

static __attribute__((noinline)) uint64_t deep(int depth, uint64_t acc) {
    volatile uint64_t frame[512]; /* 4 KiB */
    for (int i = 0; i < 512; i += 8) frame[i] = acc + (uint64_t)i + (uint64_t)depth;
    if (depth == 0) return acc;
    uint64_t r = deep(depth - 1, acc * 3 + (uint64_t)depth);
    /* The frame is intact after the callee returns. */
    for (int i = 0; i < 512; i += 8)
        if (frame[i] != acc + (uint64_t)i + (uint64_t)depth) return 0;
    return r ^ frame[256];
}

static __attribute__((noinline)) uint64_t with_alloca(size_t n) {
    unsigned char *p = alloca(n);
    memset(p, (int)(n & 0xff), n);
    for (size_t i = 0; i < n; i += 13) p[i] = (unsigned char)(i ^ n);
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) s = s * 131 + p[i];
    return s;
}

int main(void) {
    int ok = 1;
    uint64_t a = big_frame(1), b = big_frame(2);
    printf("big_frame: %016llx %016llx\n", (unsigned long long)a, (unsigned long long)b);
    uint64_t d = deep(600, 1);
    printf("deep(600) = %016llx\n", (unsigned long long)d);
    if (d == 0) ok = 0;
    uint64_t t = 0;
    for (size_t n = 1; n <= (256u << 10); n = n * 2 + 7) t ^= with_alloca(n);
    printf("alloca fold = %016llx\n", (unsigned long long)t);
    int local;
    char *near = alloca(100);
    printf("alloca is on the stack below the caller's locals: %s\n",
           ((uintptr_t)near < (uintptr_t)&local && (uintptr_t)&local - (uintptr_t)near < (1u << 20)) ? "yes" : "no");
    printf("%s\n", ok ? "big_stack: ok" : "big_stack: MISMATCH");
    return ok ? 0 : 1;
}
