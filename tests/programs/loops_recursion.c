/* Loops and recursion: fib, ackermann, nested loops, a running checksum.
 * Exit status: 0 when every self-check holds, 1 otherwise. */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

static unsigned long fib_rec(unsigned n) { return n < 2 ? n : fib_rec(n - 1) + fib_rec(n - 2); }

static unsigned long fib_iter(unsigned n) {
    unsigned long a = 0, b = 1;
    for (unsigned i = 0; i < n; i++) { unsigned long t = a + b; a = b; b = t; }
    return a;
}

static unsigned long ackermann(unsigned long m, unsigned long n) {
    if (m == 0) return n + 1;
    if (n == 0) return ackermann(m - 1, 1);
    return ackermann(m - 1, ackermann(m, n - 1));
}

static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n) {
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

static unsigned long collatz_steps(unsigned long n) {
    unsigned long steps = 0;
    while (n != 1) { n = (n & 1) ? 3 * n + 1 : n / 2; steps++; }
    return steps;
}

int main(void) {
    int ok = 1;
    for (unsigned n = 0; n <= 25; n += 5) {
        unsigned long r = fib_rec(n), it = fib_iter(n);
        printf("fib(%u) = %lu (iter %lu)\n", n, r, it);
        if (r != it) ok = 0;
    }
    printf("fib_iter(90) = %lu\n", fib_iter(90));
    for (unsigned long m = 0; m <= 2; m++)
        for (unsigned long n = 0; n <= 3; n++)
            printf("ackermann(%lu,%lu) = %lu\n", m, n, ackermann(m, n));
    printf("ackermann(3,5) = %lu\n", ackermann(3, 5));
    if (ackermann(3, 5) != 253) ok = 0;

    /* Nested loops over a matrix product. */
    enum { N = 48 };
    static long a[N][N], b[N][N], c[N][N];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) { a[i][j] = (i * 7 + j * 3) % 11 - 5; b[i][j] = (i * 5 + j * 13) % 17 - 8; }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            long s = 0;
            for (int k = 0; k < N; k++) s += a[i][k] * b[k][j];
            c[i][j] = s;
        }
    long trace = 0;
    uint32_t crc = 0;
    for (int i = 0; i < N; i++) {
        trace += c[i][i];
        crc = crc32_update(crc, (const unsigned char *)c[i], sizeof c[i]);
    }
    printf("matrix trace = %ld, crc32 = %08x\n", trace, crc);

    unsigned long best = 0, best_n = 0, total = 0;
    for (unsigned long n = 1; n < 30000; n++) {
        unsigned long s = collatz_steps(n);
        total += s;
        if (s > best) { best = s; best_n = n; }
    }
    printf("collatz: longest below 30000 is %lu (%lu steps), total %lu\n", best_n, best, total);
    if (best_n != 26623) ok = 0;

    /* Loop with early exits, continue and a do-while. */
    unsigned long checksum = 1469598103934665603ul;
    int i = 0;
    do {
        if (i % 7 == 3) { i++; continue; }
        if (i > 100000) break;
        checksum = (checksum ^ (unsigned long)i) * 1099511628211ul;
        i++;
    } while (1);
    printf("fnv checksum = %016lx\n", checksum);
    printf("%s\n", ok ? "loops_recursion: ok" : "loops_recursion: MISMATCH");
    return ok ? 0 : 1;
}
