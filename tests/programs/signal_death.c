/* Death by signal with the default action, chosen by argv[1]: segv (store to
 * an unmapped address), fpe (integer division by zero), ill (ud2), term
 * (raise SIGTERM), kill (SIGKILL to itself). The parent must see the same
 * signal as natively. A line is printed and flushed first. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: signal_death segv|fpe|ill|term|kill\n"); return 2; }
    printf("dying by %s\n", argv[1]);
    fflush(stdout);
    if (!strcmp(argv[1], "segv")) {
        *(volatile int *)16 = 1;
    } else if (!strcmp(argv[1], "fpe")) {
        volatile int zero = 0;
        volatile int r = 10 / zero;
        (void)r;
    } else if (!strcmp(argv[1], "ill")) {
        __asm__ volatile("ud2");
    } else if (!strcmp(argv[1], "term")) {
        raise(SIGTERM);
    } else if (!strcmp(argv[1], "kill")) {
        kill(getpid(), SIGKILL);
    }
    printf("still alive\n");
    return 3;
}
