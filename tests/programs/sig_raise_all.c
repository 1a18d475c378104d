/* A SA_SIGINFO handler for every catchable signal 1..64 (not SIGKILL and
 * SIGSTOP, which cannot be caught, nor 32 and 33, which glibc reserves for
 * itself), then raise() of each in turn. The handler records the signal
 * number, si_signo, si_code (SI_TKILL for raise) and whether si_pid is this
 * process. Prints the received list; exit 0 when every signal arrived once,
 * in order, with the right siginfo. sigaction on 9, 19, 32 and 33 must fail
 * with EINVAL. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int received[128], codes[128], info_ok[128];
static volatile int count;

static void handler(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    int i = count;
    if (i < 128) {
        received[i] = sig;
        codes[i] = si->si_code;
        info_ok[i] = si->si_signo == sig && si->si_pid == getpid() && si->si_uid == getuid();
    }
    count = i + 1;
}

static int skipped(int sig) { return sig == SIGKILL || sig == SIGSTOP || sig == 32 || sig == 33; }

int main(void) {
    int ok = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    int installed = 0;
    for (int sig = 1; sig <= 64; sig++) {
        if (skipped(sig)) continue;
        if (sigaction(sig, &sa, NULL)) {
            printf("sigaction(%d) failed: %s\n", sig, strerror(errno));
            ok = 0;
        } else {
            installed++;
        }
    }
    int refused[] = { SIGKILL, SIGSTOP };
    for (int i = 0; i < 2; i++) {
        errno = 0;
        int r = sigaction(refused[i], &sa, NULL);
        printf("sigaction(%d) refused with EINVAL: %s\n", refused[i], r == -1 && errno == EINVAL ? "yes" : "no");
        ok = ok && r == -1 && errno == EINVAL;
    }
    printf("handlers installed: %d\n", installed);
    int expect_n = 0;
    for (int sig = 1; sig <= 64; sig++) {
        if (skipped(sig)) continue;
        if (raise(sig)) { printf("raise(%d) failed\n", sig); ok = 0; }
        expect_n++;
    }
    printf("received %d signals:", count);
    for (int i = 0; i < count && i < 128; i++) printf(" %d", received[i]);
    printf("\nsi_code values:");
    for (int i = 0; i < count && i < 128; i++) printf(" %d", codes[i]);
    printf("\n");
    int expected_sig = 1, all_info = 1, in_order = 1;
    for (int i = 0; i < count && i < 128; i++) {
        while (skipped(expected_sig)) expected_sig++;
        if (received[i] != expected_sig) in_order = 0;
        if (!info_ok[i] || codes[i] != SI_TKILL) all_info = 0;
        expected_sig++;
    }
    printf("each once and in order: %s; si_signo, si_pid, si_uid and si_code == SI_TKILL right: %s\n",
           in_order && count == expect_n ? "yes" : "no", all_info ? "yes" : "no");
    ok = ok && installed == 60 && count == expect_n && in_order && all_info;
    printf("%s\n", ok ? "sig_raise_all: ok" : "sig_raise_all: MISMATCH");
    return ok ? 0 : 1;
}
