/* Function pointer tables, indirect calls and a dense switch that GCC turns
 * into a jump table at -O2. Exit status 0 when the self-checks hold. */
#include <stdio.h>
#include <stdint.h>
#include <string.h>

typedef long (*binop)(long, long);

static long op_add(long a, long b) { return a + b; }
static long op_sub(long a, long b) { return a - b; }
static long op_mul(long a, long b) { return a * b; }
static long op_div(long a, long b) { return b ? a / b : 0; }
static long op_mod(long a, long b) { return b ? a % b : 0; }
static long op_and(long a, long b) { return a & b; }
static long op_or(long a, long b) { return a | b; }
static long op_xor(long a, long b) { return a ^ b; }
static long op_shl(long a, long b) { return (long)((unsigned long)a << (b & 15)); }
static long op_max(long a, long b) { return a > b ? a : b; }

static const binop table[] = { op_add, op_sub, op_mul, op_div, op_mod,
                               op_and, op_or, op_xor, op_shl, op_max };
static const char *const names[] = { "add", "sub", "mul", "div", "mod",
                                     "and", "or", "xor", "shl", "max" };
#define NOPS (sizeof table / sizeof table[0])

/* A dense switch with many cases: a jump table at -O2. */
static __attribute__((noinline)) long interpret(unsigned op, long acc, long x) {
    switch (op) {
    case 0: return acc + x;
    case 1: return acc - x;
    case 2: return acc * 3 + x;
    case 3: return acc ^ (x << 3);
    case 4: return acc + x * x;
    case 5: return (acc >> 1) + x;
    case 6: return acc | (x & 0xff);
    case 7: return acc & ~x;
    case 8: return acc * 7 - x;
    case 9: return acc + 1000003;
    case 10: return -acc + x;
    case 11: return acc % 99991 + x;
    case 12: return acc + (x ^ 0x5a5a);
    case 13: return acc * 5 + 1;
    case 14: return acc - (x >> 2);
    case 15: return acc + 42;
    default: return acc;
    }
}

/* A second switch on characters, the shape of a lexer. */
static __attribute__((noinline)) int classify(int c) {
    switch (c) {
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9': return 1;
    case '+': case '-': case '*': case '/': return 2;
    case '(': case ')': return 3;
    case ' ': case '\t': case '\n': return 4;
    case 'a': case 'b': case 'c': case 'd': case 'e': case 'f': return 5;
    default: return 0;
    }
}

struct vtable { const char *name; long (*area)(long, long); long (*perimeter)(long, long); };
static long rect_area(long w, long h) { return w * h; }
static long rect_perim(long w, long h) { return 2 * (w + h); }
static long tri_area(long b, long h) { return b * h / 2; }
static long tri_perim(long b, long h) { return b + h + (b > h ? b : h); }
static const struct vtable shapes[] = { { "rect", rect_area, rect_perim }, { "tri", tri_area, tri_perim } };

static binop pick(unsigned i) { return table[i % NOPS]; }

int main(void) {
    int ok = 1;
    for (unsigned i = 0; i < NOPS; i++)
        printf("%-3s(1234, 17) = %ld\n", names[i], table[i](1234, 17));

    long acc = 1;
    for (unsigned i = 0; i < 200000; i++) {
        binop f = pick(i * 2654435761u >> 7);
        acc = f(acc, (long)(i % 97) + 1) & 0xffffffffffL;
    }
    printf("table chain = %ld\n", acc);

    long v = 7;
    unsigned long hist[17] = { 0 };
    for (unsigned i = 0; i < 300000; i++) {
        unsigned op = (i * 7 + (unsigned)(v & 3)) % 17;
        hist[op]++;
        v = interpret(op, v, (long)i) & 0xffffffffL;
    }
    printf("switch chain = %ld\n", v);
    for (int i = 0; i < 17; i++) printf("%lu%c", hist[i], i == 16 ? '\n' : ' ');

    const char *src = "12 + (ab * 7) - f3 / 9\t?";
    int counts[6] = { 0 };
    for (const char *p = src; *p; p++) counts[classify((unsigned char)*p)]++;
    printf("classes: other=%d digit=%d op=%d paren=%d space=%d hex=%d\n",
           counts[0], counts[1], counts[2], counts[3], counts[4], counts[5]);
    if (counts[1] != 5 || counts[2] != 4) ok = 0;

    for (unsigned i = 0; i < 2; i++)
        printf("%s: area %ld perimeter %ld\n", shapes[i].name,
               shapes[i].area(6, 4), shapes[i].perimeter(6, 4));

    long (*volatile vp)(long, long) = op_mul;
    if (vp(6, 7) != 42) ok = 0;
    printf("%s\n", ok ? "func_pointers: ok" : "func_pointers: MISMATCH");
    return ok ? 0 : 1;
}
