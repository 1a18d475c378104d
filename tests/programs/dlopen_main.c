// dbi-cflags: -ldl
/* dlopen/dlclose/dlopen: argv[1] and argv[2] are two builds of
 * dlopen_lib.c (variants 1 and 2, same symbols, different code and data).
 * Loads variant 1, calls into it, reads and writes its global data, unloads
 * it; loads it again (fresh data: the constructor ran again, lib_data is
 * back to its initial value); unloads it and loads variant 2 (likely at the
 * same address), whose different code must run. Prints results only. */
#include <dlfcn.h>
#include <stdio.h>

static long twice(long x) { return 2 * x; }

static long expect_compute(long variant, long data, long n) { return variant * n * (n - 1) / 2 + n * data; }

static int use(const char *path, int round, long variant) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) { printf("round %d: dlopen failed\n", round); return 0; }
    const char *(*name)(void) = (const char *(*)(void))dlsym(h, "lib_name");
    int (*constructed)(void) = (int (*)(void))dlsym(h, "lib_constructed");
    long (*compute)(long) = (long (*)(long))dlsym(h, "lib_compute");
    long (*apply)(long (*)(long), long) = (long (*)(long (*)(long), long))dlsym(h, "lib_apply");
    long *data = (long *)dlsym(h, "lib_data");
    if (!name || !constructed || !compute || !apply || !data) { printf("round %d: dlsym failed\n", round); return 0; }
    long initial = *data;
    long a = compute(1000);
    long b = compute(1000);
    *data += 1000;
    long c = compute(10);
    long d = apply(twice, 21);
    printf("round %d: %s, constructor ran %d time(s), lib_data initially %ld, compute %ld %ld %ld, apply %ld, lib_data now %ld\n",
           round, name(), constructed(), initial, a, b, c, d, *data);
    long d0 = 100 * variant;
    int right = initial == d0 && a == expect_compute(variant, d0, 1000) && b == expect_compute(variant, d0 + 1, 1000) &&
                c == expect_compute(variant, d0 + 1002, 10) && d == 42 * variant + 1 && *data == d0 + 1003 &&
                constructed() == 1;
    printf("round %d: results are variant %ld's: %s\n", round, variant, right ? "yes" : "no");
    if (dlclose(h)) { printf("round %d: dlclose failed\n", round); return 0; }
    return right;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: dlopen_main LIB1 LIB2\n"); return 2; }
    int ok = use(argv[1], 1, 1);
    ok &= use(argv[1], 2, 1);
    ok &= use(argv[2], 3, 2);
    ok &= use(argv[1], 4, 1);
    void *h = dlopen("./dbi-no-such-library.so", RTLD_NOW);
    printf("dlopen of a missing library fails: %s\n", h ? "no" : "yes");
    printf("%s\n", ok && !h ? "dlopen_main: ok" : "dlopen_main: MISMATCH");
    return ok && !h ? 0 : 1;
}
