/* Nested signals. Events are recorded in order and printed at the end.
 * 1. A SIGUSR1 handler raises SIGUSR2 (not blocked): the SIGUSR2 handler
 *    runs nested, before the SIGUSR1 handler continues.
 * 2. The same with SIGUSR2 in the SIGUSR1 handler's sa_mask: SIGUSR2 waits
 *    until the SIGUSR1 handler returns.
 * 3. A handler raising its own signal: deferred (the signal is blocked while
 *    its handler runs) unless SA_NODEFER, where it nests (depth-limited).
 * 4. Three levels: SIGHUP -> SIGUSR1 -> SIGUSR2, each nested. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>

static char events[512];
static volatile sig_atomic_t depth;

static void record(const char *s) {
    strcat(events, s);
    strcat(events, " ");
}

static void on_usr2(int sig) {
    (void)sig;
    record("usr2");
}

static void on_usr1(int sig) {
    (void)sig;
    record("usr1-begin");
    raise(SIGUSR2);
    record("usr1-end");
}

static void on_hup(int sig) {
    (void)sig;
    record("hup-begin");
    raise(SIGUSR1);
    record("hup-end");
}

static void on_self(int sig) {
    (void)sig;
    int d = ++depth;
    char buf[32];
    snprintf(buf, sizeof buf, "self%d-begin", d);
    record(buf);
    if (d < 3) raise(SIGWINCH);
    snprintf(buf, sizeof buf, "self%d-end", d);
    record(buf);
}

static void install(int sig, void (*fn)(int), int flags, int masked) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    if (masked) sigaddset(&sa.sa_mask, masked);
    sigaction(sig, &sa, NULL);
}

static int all_ok = 1;

static void show(const char *what, const char *expected) {
    size_t n = strlen(events);
    if (n && events[n - 1] == ' ') events[n - 1] = 0;
    printf("%s: %s\n", what, events);
    if (strcmp(events, expected)) all_ok = 0;
    events[0] = 0;
}

int main(void) {
    install(SIGUSR2, on_usr2, 0, 0);
    install(SIGUSR1, on_usr1, 0, 0);
    raise(SIGUSR1);
    record("main");
    show("SIGUSR2 raised in the SIGUSR1 handler", "usr1-begin usr2 usr1-end main");

    install(SIGUSR1, on_usr1, 0, SIGUSR2);
    raise(SIGUSR1);
    record("main");
    show("same, SIGUSR2 in sa_mask", "usr1-begin usr1-end usr2 main");

    install(SIGWINCH, on_self, 0, 0);
    depth = 0;
    raise(SIGWINCH);
    record("main");
    show("handler raising its own signal", "self1-begin self1-end self2-begin self2-end self3-begin self3-end main");

    install(SIGWINCH, on_self, SA_NODEFER, 0);
    depth = 0;
    raise(SIGWINCH);
    record("main");
    show("same with SA_NODEFER", "self1-begin self2-begin self3-begin self3-end self2-end self1-end main");

    install(SIGUSR1, on_usr1, 0, 0);
    install(SIGHUP, on_hup, 0, 0);
    raise(SIGHUP);
    record("main");
    show("three levels", "hup-begin usr1-begin usr2 usr1-end hup-end main");

    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    int restored = !sigismember(&cur, SIGUSR1) && !sigismember(&cur, SIGUSR2) && !sigismember(&cur, SIGHUP) &&
                   !sigismember(&cur, SIGWINCH);
    printf("mask restored after the handlers: %s\n", restored ? "yes" : "no");
    int ok = all_ok && restored;
    printf("%s\n", ok ? "sig_nested: ok" : "sig_nested: MISMATCH");
    return ok ? 0 : 1;
}
