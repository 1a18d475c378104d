/* Prints a line, flushes, then abort(): the process must die of SIGABRT,
 * under translation exactly as natively. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    printf("about to abort\n");
    fflush(stdout);
    fprintf(stderr, "abort.c: calling abort()\n");
    abort();
    printf("not reached\n");
    return 0;
}
