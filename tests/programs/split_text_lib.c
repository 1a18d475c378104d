/* A shared library whose code is in three executable segments
 * (split_text.ld): early_* in `.text`, late_* after the writable segments
 * 2 MiB-aligned, far_mix 4 GiB above late_mix, at the same low 32 bits of
 * module offset. Built by the tests with -Wl,-z,separate-code and without
 * unwind tables (an .eh_frame entry cannot reach 4 GiB). Code in
 * `.text.far` calls nothing and reads no data: nothing is within rel32
 * reach of it. */

#define LATE __attribute__((section(".text.late"), noinline))
#define FAR __attribute__((section(".text.far"), noinline))

long lib_data = 11;

LATE long late_mix(long x) {
    long r = 1;
    for (long i = 0; i < x; i++)
        r = r * 3 + (i & 1 ? i : -i);
    return r;
}

FAR long far_mix(long x) {
    long r = 7;
    for (long i = 0; i < x; i++)
        r = r * 5 - (i % 3 == 0 ? i : 2 * i);
    return r;
}

/* Calls from the late segment back into the early one and to data. */
long early_step(long x);

LATE long late_walk(long n) {
    long s = lib_data;
    for (long i = 0; i < n; i++)
        s += early_step(i) ^ late_mix(i % 7);
    return s;
}

long early_step(long x) {
    switch (x % 4) {
    case 0: return x * 2 + lib_data;
    case 1: return x - 3;
    case 2: return x * x;
    default: return -x;
    }
}

long early_walk(long n) {
    lib_data++;
    return late_walk(n) + late_mix(n % 5);
}
