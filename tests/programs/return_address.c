// dbi-cflags: -fno-toplevel-reorder
/* Return addresses seen by the program are application addresses (never code
 * cache addresses), and the program reads its own original code bytes.
 * Only relationships are printed. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* A function with known bytes: mov $42, %eax; ret. */
__asm__(".text\n"
        ".globl known_fn\n"
        ".type known_fn, @function\n"
        "known_fn:\n"
        "  movl $42, %eax\n"
        "  ret\n"
        ".size known_fn, .-known_fn\n"
        /* Returns the return address found at (%rsp). */
        ".globl read_ra\n"
        ".type read_ra, @function\n"
        "read_ra:\n"
        "  movq (%rsp), %rax\n"
        "  ret\n"
        ".size read_ra, .-read_ra\n");
extern int known_fn(void);
extern void *read_ra(void);

__attribute__((noinline, noipa)) void *callee(void) { return __builtin_return_address(0); }

/* caller, then a marker placed right after it in the same section
 * (-fno-toplevel-reorder keeps source order). */
__attribute__((noinline, noipa, section(".text.ra_test"))) void *caller(void **via_asm) {
    void *r = callee();
    *via_asm = read_ra();
    __asm__ volatile("" ::: "memory");
    return r;
}
__attribute__((noinline, noipa, section(".text.ra_test"))) void caller_end_marker(void) { __asm__ volatile(""); }

__attribute__((noinline, noipa)) static unsigned sum_bytes(const unsigned char *p, size_t n) {
    unsigned s = 0;
    for (size_t i = 0; i < n; i++) s = s * 33 + p[i];
    return s;
}

__attribute__((noinline, noipa)) int some_function(int x) { return x * 3 + 1; }

int main(void) {
    int ok = 1;
    void *via_asm = 0;
    void *ra = caller(&via_asm);
    uintptr_t lo = (uintptr_t)caller, hi = (uintptr_t)caller_end_marker;
    int order = lo < hi && hi - lo < 4096;
    printf("marker follows caller: %s\n", order ? "yes" : "no");
    int in1 = (uintptr_t)ra > lo && (uintptr_t)ra < hi;
    int in2 = (uintptr_t)via_asm > lo && (uintptr_t)via_asm < hi;
    printf("__builtin_return_address(0) of callee: %s\n", in1 ? "inside caller" : "OUTSIDE caller");
    printf("return address read from (%%rsp): %s\n", in2 ? "inside caller" : "OUTSIDE caller");
    printf("the two return addresses differ (two call sites): %s\n", ra != via_asm ? "yes" : "no");
    if (!order || !in1 || !in2 || ra == via_asm) ok = 0;

    /* call to the next instruction, pop: the pushed value is that instruction's address. */
    uintptr_t popped, expected;
    __asm__ volatile("call 1f\n"
                     "1: pop %0\n"
                     "lea 1b(%%rip), %1\n"
                     : "=r"(popped), "=r"(expected));
    printf("call/pop pc equals lea of the label: %s\n", popped == expected ? "yes" : "no");
    if (popped != expected) ok = 0;

    /* Known code bytes. */
    unsigned char known[6];
    memcpy(known, (const void *)known_fn, sizeof known);
    static const unsigned char want[6] = { 0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3 };
    printf("known_fn bytes as assembled: %s\n", memcmp(known, want, 6) == 0 ? "yes" : "no");
    printf("known_fn() = %d\n", known_fn());
    if (memcmp(known, want, 6) || known_fn() != 42) ok = 0;

    /* Bytes of a compiled function: read twice, checksums agree; a byte-wise
     * copy agrees with memcpy; the first byte is a plausible opcode. */
    unsigned char c1[16], c2[16];
    const volatile unsigned char *code = (const volatile unsigned char *)(uintptr_t)some_function;
    memcpy(c1, (const void *)some_function, 16);
    for (int i = 0; i < 16; i++) c2[i] = code[i];
    int same = memcmp(c1, c2, 16) == 0 && sum_bytes(c1, 16) == sum_bytes(c2, 16);
    printf("code bytes read twice agree: %s\n", same ? "yes" : "no");
    unsigned char b0 = c1[0];
    /* endbr64 (f3), push (50-57), REX (40-4f), lea/mov (8d, 89, 8b), xor/sub/imul ... never 00/cc/ff. */
    int plausible = b0 != 0x00 && b0 != 0xcc && b0 != 0xff;
    printf("first code byte plausible: %s\n", plausible ? "yes" : "no");
    printf("some_function(5) = %d\n", some_function(5));
    if (!same || !plausible) ok = 0;

    printf("%s\n", ok ? "return_address: ok" : "return_address: MISMATCH");
    return ok ? 0 : 1;
}
