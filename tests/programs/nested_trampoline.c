// dbi-cflags: -Wl,-z,execstack
/* GCC nested functions: taking the address of a nested function that uses
 * its parent's locals writes a trampoline on the (executable) stack. The
 * same stack slot gets a new trampoline, pointing at another frame's
 * variables, at each call of the parent: a translator must run the new
 * code each time, not its copy of the first one. */
#include <stdio.h>

static int apply(int (*f)(int), int x) { return f(x); }

static __attribute__((noinline)) int scaled(int factor, int x) {
    int add(int v) { return v * factor; }
    return apply(add, x);
}

static __attribute__((noinline)) int offset(int base, int x) {
    int add(int v) { return v + base; }
    return apply(add, x);
}

int main(void) {
    long sum = 0;
    for (int i = 1; i <= 50; i++) {
        int a = scaled(i, 3);
        int b = offset(i * 100, 7);
        if (i <= 3 || i == 50) printf("%d: %d %d\n", i, a, b);
        sum += a + b;
    }
    printf("sum %ld\n", sum);
    return 0;
}
