// dbi-cflags: -ldl
/* Loads argv[1], a build of split_text_lib.c (code in three executable
 * segments, one 4 GiB above the others), calls into each segment, prints
 * the results, unloads it. Prints results only. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc < 2) { printf("usage: split_text_main LIB\n"); return 2; }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) { printf("dlopen failed\n"); return 1; }
    long (*early_walk)(long) = (long (*)(long))dlsym(h, "early_walk");
    long (*late_mix)(long) = (long (*)(long))dlsym(h, "late_mix");
    long (*far_mix)(long) = (long (*)(long))dlsym(h, "far_mix");
    long *data = (long *)dlsym(h, "lib_data");
    if (!early_walk || !late_mix || !far_mix || !data) { printf("dlsym failed\n"); return 1; }
    for (long n = 0; n < 12; n++)
        printf("n=%ld early_walk %ld late_mix %ld far_mix %ld\n", n, early_walk(n * 3), late_mix(n), far_mix(n));
    printf("lib_data %ld\n", *data);
    dlclose(h);
    return 0;
}
