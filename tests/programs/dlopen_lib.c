/* Not a program: the shared library that dlopen_main loads. The test builds
 * it twice with gcc -shared -fPIC: as is (VARIANT 1) and with -DVARIANT=2,
 * which changes the code and the data so that a stale translation of the
 * first library, left in the code cache after dlclose, would give wrong
 * results when the second one is mapped at the same address. */
#ifndef VARIANT
#define VARIANT 1
#endif

long lib_data = 100 * VARIANT;
static int constructed;
#define STR2(x) #x
#define STR(x) STR2(x)
static const char name[] = "dlopen_lib variant " STR(VARIANT);

__attribute__((constructor)) static void lib_init(void) { constructed++; }

const char *lib_name(void) { return name; }

int lib_constructed(void) { return constructed; }

/* Sum of i * VARIANT + lib_data for i < n; bumps lib_data each call. */
long lib_compute(long n) {
    long s = 0;
    for (long i = 0; i < n; i++) s += i * VARIANT + lib_data;
    lib_data++;
    return s;
}

/* A callback through a function pointer from the main program. */
long lib_apply(long (*f)(long), long x) { return f(x) * VARIANT + 1; }
