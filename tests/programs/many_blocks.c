/* Many distinct blocks, then a hot loop through the first ones: run as
 * `many_blocks N`, prints one sum (the same natively and translated).
 * Under -persist the translated code of the thousands of functions fills
 * a module's first persistable segment, so the loop's trace is built in
 * a later segment than its blocks (and their client data). */
#include <stdio.h>
#include <stdlib.h>

#define F(n) static __attribute__((noinline)) long f##n(long x) { \
    if (x & 1) x = x * 3 + n; else x = x / 2 + n; \
    if (x > 1000000) x -= 999983; \
    return x ^ (n * 7); }
#define F10(n) F(n##0) F(n##1) F(n##2) F(n##3) F(n##4) F(n##5) F(n##6) F(n##7) F(n##8) F(n##9)
#define F100(n) F10(n##0) F10(n##1) F10(n##2) F10(n##3) F10(n##4) F10(n##5) F10(n##6) F10(n##7) F10(n##8) F10(n##9)
#define F1000(n) F100(n##0) F100(n##1) F100(n##2) F100(n##3) F100(n##4) F100(n##5) F100(n##6) F100(n##7) F100(n##8) F100(n##9)
F1000(1) F1000(2) F1000(3)

#define C(n) x = f##n(x);
#define C10(n) C(n##0) C(n##1) C(n##2) C(n##3) C(n##4) C(n##5) C(n##6) C(n##7) C(n##8) C(n##9)
#define C100(n) C10(n##0) C10(n##1) C10(n##2) C10(n##3) C10(n##4) C10(n##5) C10(n##6) C10(n##7) C10(n##8) C10(n##9)

#define C1000(n) C100(n##0) C100(n##1) C100(n##2) C100(n##3) C100(n##4) C100(n##5) C100(n##6) C100(n##7) C100(n##8) C100(n##9)

static __attribute__((noinline)) long once(long x) {
    C1000(1) C1000(2) C1000(3)
    return x;
}

static __attribute__((noinline)) long hot(long x, long n) {
    for (long i = 0; i < n; i++)
        x = f1000(x) + f1001(i);
    return x;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 0;
    long x = hot(1, 1);
    x = once(x);
    x = hot(x, n);
    printf("many_blocks: %ld\n", x);
    return 0;
}
