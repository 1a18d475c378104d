/* For the persisted code cache tests (tests/persist.rs): each input takes
 * its own path through hundreds of blocks of this module, so runs with
 * different inputs add different blocks to the module's cache file.
 *
 *   persist_paths N          runs path N (0..7) and prints its result
 *   persist_paths all        runs every path
 *   persist_paths maps OUT   runs path 0, copies /proc/self/maps to the
 *                            file OUT (renamed into place when complete),
 *                            then waits (up to 60 s) until OUT.done exists,
 *                            so the test can read the files mapped while
 *                            they are still mapped; stdout stays as natively
 *
 * SALT (default 1; the tests rebuild with -DSALT=2 to change one constant
 * of the module) enters every result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SALT
#define SALT 1
#endif

/* A store on one side of each branch keeps gcc from turning it into a
 * conditional move at -O2: every step stays a few blocks. */
static volatile unsigned sink;

#define STEP(n)                                                                \
    if ((x >> ((n) % 23)) & 1) {                                               \
        x = x * 2654435761u + (unsigned)(n) * SALT;                            \
        sink = x;                                                              \
    } else {                                                                   \
        x = (x ^ ((unsigned)(n) * 40503u)) + 7;                                \
    }
#define STEP4(n) STEP(n) STEP((n) + 1) STEP((n) + 2) STEP((n) + 3)
#define STEP16(n) STEP4(n) STEP4((n) + 4) STEP4((n) + 8) STEP4((n) + 12)
#define STEP64(n) STEP16(n) STEP16((n) + 16) STEP16((n) + 32) STEP16((n) + 48)
#define PATH(k)                                                                \
    static __attribute__((noinline)) unsigned path##k(unsigned x) {           \
        STEP64((k) * 1000) STEP64((k) * 1000 + 64) return x;                   \
    }

PATH(0)
PATH(1)
PATH(2)
PATH(3)
PATH(4)
PATH(5)
PATH(6)
PATH(7)

static unsigned (*const paths[8])(unsigned) = {path0, path1, path2, path3,
                                                path4, path5, path6, path7};

static void run_path(int k) {
    /* Two seeds: both sides of many branches run. */
    unsigned a = paths[k](0x9e3779b9u * (unsigned)(k + 1));
    unsigned b = paths[k](~a);
    printf("path %d: %08x %08x\n", k, a, b);
}

static int copy_maps(const char *out) {
    char tmp[4096], done[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    snprintf(done, sizeof done, "%s.done", out);
    FILE *in = fopen("/proc/self/maps", "r");
    FILE *to = fopen(tmp, "w");
    if (!in || !to) {
        perror("persist_paths: maps");
        return 1;
    }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, to);
    fclose(in);
    if (fclose(to) != 0 || rename(tmp, out) != 0) {
        perror("persist_paths: maps");
        return 1;
    }
    for (int i = 0; i < 6000 && access(done, F_OK) != 0; i++)
        usleep(10000);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: persist_paths N|all|maps OUT\n");
        return 2;
    }
    if (strcmp(argv[1], "all") == 0) {
        for (int k = 0; k < 8; k++)
            run_path(k);
        return 0;
    }
    if (strcmp(argv[1], "maps") == 0) {
        if (argc < 3) {
            fprintf(stderr, "usage: persist_paths maps OUT\n");
            return 2;
        }
        run_path(0);
        fflush(stdout);
        return copy_maps(argv[2]);
    }
    /* "segv K" / "abort K": path K, then die of SIGSEGV or SIGABRT. */
    if ((strcmp(argv[1], "segv") == 0 || strcmp(argv[1], "abort") == 0) && argc > 2) {
        run_path(atoi(argv[2]) & 7);
        fflush(stdout);
        if (argv[1][0] == 'a')
            abort();
        *(volatile int *)(long)argc = 0;
    }
    int k = atoi(argv[1]);
    if (k < 0 || k > 7) {
        fprintf(stderr, "persist_paths: no path %d\n", k);
        return 2;
    }
    run_path(k);
    return 0;
}
