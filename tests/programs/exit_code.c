/* exit(N) with N from argv[1]; prints a line first (flushed by exit). */
#include <stdio.h>
#include <stdlib.h>

static int atexit_ran;
static void on_exit_handler(void) { printf("atexit handler ran\n"); atexit_ran = 1; }

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: exit_code N\n"); return 2; }
    int n = atoi(argv[1]);
    atexit(on_exit_handler);
    printf("exiting with %d\n", n);
    exit(n);
}
