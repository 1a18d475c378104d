// dbi-cflags: -ldl
/* Loads the shared libraries named on the command line after the mode
 * (libs built from many_libs_lib.c, each with its own -DID) and calls each
 * one's `step(mode)`, whose path depends on the mode: a run in another
 * mode than the run that persisted the libraries' blocks leaves every
 * library's persisted code through exits that must be linked. Prints the
 * number of libraries and a checksum. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int mode = atoi(argv[1]);
    long sum = 0;
    int loaded = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 2; i < argc; i++) {
            void *h = dlopen(argv[i], RTLD_NOW);
            if (!h) {
                fprintf(stderr, "%s\n", dlerror());
                return 1;
            }
            long (*step)(int) = (long (*)(int))dlsym(h, "step");
            if (!step) return 1;
            sum += step(mode);
            loaded += round == 0;
        }
    }
    printf("%d libraries, checksum %ld\n", loaded, sum);
    return 0;
}
