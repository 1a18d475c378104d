/* sigaltstack: a SA_ONSTACK handler runs on the alternate stack (the address
 * of one of its locals lies inside it, and sigaltstack reports SS_ONSTACK
 * while it runs); a handler without SA_ONSTACK runs on the normal stack;
 * a stack overflow from unbounded recursion is caught by a SA_ONSTACK
 * SIGSEGV handler (the only place it can run) and recovered with
 * siglongjmp; SS_DISABLE turns the alternate stack off. Prints "on
 * altstack" and the other facts; exit 0 when all hold. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static char *alt;
static size_t alt_size;
static volatile sig_atomic_t on_alt, reported_onstack, usr2_on_alt = -1, overflow_on_alt;
static sigjmp_buf env;

static int inside_alt(void *p) { return (char *)p >= alt && (char *)p < alt + alt_size; }

static void on_usr1(int sig) {
    char local;
    (void)sig;
    on_alt = inside_alt(&local);
    stack_t cur;
    sigaltstack(NULL, &cur);
    reported_onstack = (cur.ss_flags & SS_ONSTACK) != 0;
}

static void on_usr2(int sig) {
    char local;
    (void)sig;
    usr2_on_alt = inside_alt(&local);
}

static void on_segv(int sig) {
    char local;
    (void)sig;
    overflow_on_alt = inside_alt(&local);
    siglongjmp(env, 1);
}

static volatile long depth_sink;

static long recurse(long n) {
    volatile char pad[1024];
    pad[0] = (char)n;
    pad[1023] = (char)n;
    return recurse(n + 1) + pad[0] + pad[1023];
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Bound the stack (8 MiB at most) so the overflow comes quickly even
     * where the stack limit is unlimited. */
    struct rlimit rl;
    getrlimit(RLIMIT_STACK, &rl);
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (8u << 20)) {
        rl.rlim_cur = 8u << 20;
        setrlimit(RLIMIT_STACK, &rl);
    }
    alt_size = 256 * 1024;
    alt = malloc(alt_size);
    stack_t ss = { .ss_sp = alt, .ss_size = alt_size, .ss_flags = 0 };
    if (sigaltstack(&ss, NULL)) { perror("sigaltstack"); return 2; }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_usr2;
    sa.sa_flags = 0;
    sigaction(SIGUSR2, &sa, NULL);
    sa.sa_handler = on_segv;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGSEGV, &sa, NULL);

    raise(SIGUSR1);
    int first_on_alt = on_alt;
    printf("%s\n", first_on_alt ? "on altstack" : "NOT on altstack");
    int first_reported = reported_onstack;
    printf("sigaltstack reports SS_ONSTACK inside the handler: %s\n", first_reported ? "yes" : "no");
    stack_t cur;
    sigaltstack(NULL, &cur);
    printf("and not outside it: %s\n", (cur.ss_flags & SS_ONSTACK) == 0 ? "yes" : "no");
    raise(SIGUSR2);
    printf("handler without SA_ONSTACK on the normal stack: %s\n", usr2_on_alt == 0 ? "yes" : "no");

    int recovered = 0;
    if (sigsetjmp(env, 1) == 0) {
        depth_sink = recurse(0);
        printf("recursion returned?\n");
    } else {
        recovered = 1;
    }
    printf("stack overflow caught on the alternate stack and recovered: %s\n", recovered && overflow_on_alt ? "yes" : "no");

    stack_t off = { .ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE };
    sigaltstack(&off, NULL);
    on_alt = -1;
    raise(SIGUSR1);
    printf("after SS_DISABLE the SA_ONSTACK handler runs on the normal stack: %s\n", on_alt == 0 ? "yes" : "no");
    sigaltstack(NULL, &cur);
    printf("sigaltstack reports SS_DISABLE: %s\n", (cur.ss_flags & SS_DISABLE) ? "yes" : "no");
    int ok = first_on_alt && first_reported && usr2_on_alt == 0 && recovered && overflow_on_alt && on_alt == 0 && (cur.ss_flags & SS_DISABLE);
    printf("%s\n", ok ? "sig_altstack: ok" : "sig_altstack: MISMATCH");
    return ok ? 0 : 1;
}
