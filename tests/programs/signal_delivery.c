/* Signal delivery: raise with SA_SIGINFO (siginfo contents), a blocked
 * signal staying pending until unblocked, an ignored signal, SIG_DFL for a
 * signal ignored by default, an asynchronous SIGALRM interrupting a busy
 * loop, a handler interrupted by another signal (nesting), SA_RESETHAND,
 * and sigsuspend. stdout is line buffered. Exit 0 when all checks hold. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t usr1_count, usr1_info_ok, usr2_count, alarm_count, nested_inner, nested_outer_done,
    nested_order_ok, reset_count;

static void on_usr1(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    usr1_count++;
    usr1_info_ok = sig == SIGUSR1 && si->si_signo == SIGUSR1 && si->si_pid == getpid() && si->si_code == SI_TKILL;
}
static void on_usr2(int sig) { (void)sig; usr2_count++; }
static void on_alarm(int sig) { (void)sig; alarm_count++; }

static void on_inner(int sig) { (void)sig; nested_inner++; }
static void on_outer(int sig) {
    (void)sig;
    /* SIGCONT is not blocked while this handler runs: its handler runs nested. */
    raise(SIGCONT);
    nested_order_ok = nested_inner == 1;
    nested_outer_done = 1;
}
static void on_reset(int sig) { (void)sig; reset_count++; }

int main(void) {
    int ok = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    printf("SIGUSR1 delivered %d time(s), siginfo correct: %s\n", (int)usr1_count, usr1_info_ok ? "yes" : "no");
    ok = ok && usr1_count == 1 && usr1_info_ok;
    kill(getpid(), SIGUSR1);
    printf("kill(getpid()) delivered: %s\n", usr1_count == 2 ? "yes" : "no");
    ok = ok && usr1_count == 2;

    /* A blocked signal stays pending until unblocked. */
    signal(SIGUSR2, on_usr2);
    sigset_t set, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    kill(getpid(), SIGUSR2);
    sigpending(&pend);
    int before = usr2_count;
    printf("SIGUSR2 while blocked: delivered %d, pending %d\n", before, sigismember(&pend, SIGUSR2));
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    printf("SIGUSR2 after unblocking: delivered %d\n", (int)usr2_count);
    ok = ok && before == 0 && usr2_count == 1;

    /* The old action is reported back. */
    struct sigaction old;
    sigaction(SIGUSR2, NULL, &old);
    printf("sigaction reports the installed handler: %s\n", old.sa_handler == on_usr2 ? "yes" : "no");
    ok = ok && old.sa_handler == on_usr2;

    signal(SIGUSR2, SIG_IGN);
    raise(SIGUSR2);
    printf("ignored SIGUSR2 did nothing\n");
    signal(SIGCHLD, SIG_DFL);
    raise(SIGCHLD);
    printf("SIGCHLD with SIG_DFL did nothing\n");

    /* Nesting: a handler raising another signal. */
    signal(SIGCONT, on_inner);
    signal(SIGHUP, on_outer);
    raise(SIGHUP);
    printf("nested handler ran inside the outer one: %s\n", nested_order_ok && nested_outer_done ? "yes" : "no");
    ok = ok && nested_order_ok && nested_outer_done;

    /* SA_RESETHAND: the second delivery gets the default action (ignore for SIGWINCH). */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_reset;
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGWINCH, &sa, NULL);
    raise(SIGWINCH);
    raise(SIGWINCH);
    printf("SA_RESETHAND handler ran %d time(s)\n", (int)reset_count);
    ok = ok && reset_count == 1;

    /* sigsuspend wakes up for a signal sent while it waits (by an alarm). */
    signal(SIGALRM, on_alarm);
    sigset_t block_alarm, waitmask;
    sigemptyset(&block_alarm);
    sigaddset(&block_alarm, SIGALRM);
    sigprocmask(SIG_BLOCK, &block_alarm, NULL);
    struct itimerval it = { .it_interval = { 0, 0 }, .it_value = { 0, 20000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    sigemptyset(&waitmask);
    while (!alarm_count) sigsuspend(&waitmask);
    sigprocmask(SIG_UNBLOCK, &block_alarm, NULL);
    printf("sigsuspend returned after SIGALRM: %s\n", alarm_count == 1 ? "yes" : "no");
    ok = ok && alarm_count == 1;

    /* An asynchronous SIGALRM interrupting a busy loop in translated code. */
    alarm_count = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    volatile unsigned long spins = 0;
    struct timeval start, now;
    gettimeofday(&start, NULL);
    while (!alarm_count) {
        spins++;
        if ((spins & 0xfffff) == 0) {
            gettimeofday(&now, NULL);
            if (now.tv_sec - start.tv_sec > 20) break;
        }
    }
    printf("SIGALRM interrupted the busy loop: %s\n", alarm_count == 1 ? "yes" : "no");
    ok = ok && alarm_count == 1;

    printf("%s\n", ok ? "signal_delivery: ok" : "signal_delivery: MISMATCH");
    return ok ? 0 : 1;
}
