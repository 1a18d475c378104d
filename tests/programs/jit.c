/* JIT-style code: machine code written into an mmap at run time and called.
 * 1. W^X: map RW, write `mov eax, 42; ret`, mprotect RX, call; mprotect RW,
 *    rewrite it to return 43, mprotect RX, call again.
 * 2. RWX: one mapping written and executed twice with different code (no
 *    mprotect in between), then a longer function at the same address.
 * 3. Code at a new address in the same page, and the first function again.
 * Each function is called several times so a translator links it. Prints
 * the results; exit 0 when every call returned what the code says. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef int (*fn)(void);
typedef int (*fn1)(int);

static int call_n(void *code, int times) {
    int r = 0;
    for (int i = 0; i < times; i++) r = ((fn)code)();
    return r;
}

static void put_ret_const(unsigned char *p, int value) {
    /* mov eax, imm32; ret */
    p[0] = 0xb8;
    memcpy(p + 1, &value, 4);
    p[5] = 0xc3;
}

int main(void) {
    int ok = 1;
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *wx = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (wx == MAP_FAILED) { perror("mmap"); return 2; }
    put_ret_const(wx, 42);
    if (mprotect(wx, page, PROT_READ | PROT_EXEC)) { perror("mprotect"); return 2; }
    int r1 = call_n(wx, 3);
    mprotect(wx, page, PROT_READ | PROT_WRITE);
    put_ret_const(wx, 43);
    mprotect(wx, page, PROT_READ | PROT_EXEC);
    int r2 = call_n(wx, 3);
    printf("W^X: first code returned %d, rewritten code returned %d\n", r1, r2);
    ok = ok && r1 == 42 && r2 == 43;

    unsigned char *rwx = mmap(NULL, page, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (rwx == MAP_FAILED) { perror("mmap rwx"); return 2; }
    put_ret_const(rwx, 7);
    int r3 = call_n(rwx, 3);
    put_ret_const(rwx, 8);
    int r4 = call_n(rwx, 3);
    /* lea eax, [rdi + rdi*2]; add eax, 5; ret  -> 3x + 5 */
    static const unsigned char triple_plus_5[] = { 0x8d, 0x04, 0x7f, 0x83, 0xc0, 0x05, 0xc3 };
    memcpy(rwx, triple_plus_5, sizeof triple_plus_5);
    int r5 = 0;
    for (int i = 0; i < 3; i++) r5 = ((fn1)rwx)(10);
    printf("RWX: code returned %d, then %d after an in-place rewrite, then %d from a new function\n", r3, r4, r5);
    ok = ok && r3 == 7 && r4 == 8 && r5 == 35;

    /* A second function further into the page, then the first one rewritten again. */
    put_ret_const(rwx + 64, 99);
    int r6 = call_n(rwx + 64, 3);
    put_ret_const(rwx, 11);
    int r7 = call_n(rwx, 3);
    printf("RWX: second function returned %d, first rewritten again returned %d\n", r6, r7);
    ok = ok && r6 == 99 && r7 == 11;

    /* Unmap and map again (likely the same address) with new code. */
    munmap(wx, page);
    unsigned char *again = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    put_ret_const(again, 1234);
    mprotect(again, page, PROT_READ | PROT_EXEC);
    int r8 = call_n(again, 3);
    printf("after munmap and a new mapping: code returned %d\n", r8);
    ok = ok && r8 == 1234;
    printf("%s\n", ok ? "jit: ok" : "jit: MISMATCH");
    return ok ? 0 : 1;
}
