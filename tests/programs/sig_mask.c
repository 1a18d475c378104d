/* Signal masks: sigprocmask blocks SIGUSR1, raise leaves it pending
 * (sigpending shows it, the handler has not run), unblocking delivers it
 * before sigprocmask returns; a standard signal raised three times while
 * blocked is delivered once, a real-time one three times (queued, with its
 * sigqueue value, in order); the old mask is reported back; sigsuspend
 * replaces the mask while it waits and wakes for a signal sent by a child
 * process; sigtimedwait takes a blocked signal without running a handler;
 * a signalfd reads a blocked signal; a forked child inherits the mask. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, usr2, rt_count;
static volatile int rt_values[8], rt_codes[8];

static void on_usr1(int sig) { (void)sig; usr1++; }
static void on_usr2(int sig) { (void)sig; usr2++; }
static void on_rt(int sig, siginfo_t *si, void *ctx) {
    (void)sig; (void)ctx;
    if (rt_count < 8) {
        rt_values[rt_count] = si->si_value.sival_int;
        rt_codes[rt_count] = si->si_code;
    }
    rt_count++;
}

int main(void) {
    int ok = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGRTMIN + 1, &sa, NULL);

    sigset_t usr1_set, old, pend;
    sigemptyset(&usr1_set);
    sigaddset(&usr1_set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1_set, &old);
    printf("SIGUSR1 blocked before: %d\n", sigismember(&old, SIGUSR1));
    raise(SIGUSR1);
    sigpending(&pend);
    printf("raised while blocked: handler ran %d time(s), pending %d\n", (int)usr1, sigismember(&pend, SIGUSR1));
    ok = ok && usr1 == 0 && sigismember(&pend, SIGUSR1) == 1;
    sigprocmask(SIG_UNBLOCK, &usr1_set, &old);
    printf("after unblocking: handler ran %d time(s), old mask had SIGUSR1: %d\n", (int)usr1, sigismember(&old, SIGUSR1));
    sigpending(&pend);
    printf("pending after delivery: %d\n", sigismember(&pend, SIGUSR1));
    ok = ok && usr1 == 1 && sigismember(&old, SIGUSR1) == 1 && !sigismember(&pend, SIGUSR1);

    /* Standard signals merge, real-time signals queue. */
    sigset_t both;
    sigemptyset(&both);
    sigaddset(&both, SIGUSR2);
    sigaddset(&both, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &both, NULL);
    for (int i = 0; i < 3; i++) {
        raise(SIGUSR2);
        union sigval v = { .sival_int = 100 + i };
        sigqueue(getpid(), SIGRTMIN + 1, v);
    }
    sigprocmask(SIG_UNBLOCK, &both, NULL);
    printf("SIGUSR2 raised 3 times while blocked, delivered %d time(s); SIGRTMIN+1 queued 3 times, delivered %d time(s)\n",
           (int)usr2, (int)rt_count);
    int rt_ok = rt_count == 3;
    printf("SIGRTMIN+1 sigqueue values and si_code:");
    for (int i = 0; i < rt_count && i < 8; i++) {
        printf(" %d/%s", rt_values[i], rt_codes[i] == SI_QUEUE ? "SI_QUEUE" : "other");
        if (rt_values[i] != 100 + i || rt_codes[i] != SI_QUEUE) rt_ok = 0;
    }
    printf("\n");
    ok = ok && usr2 == 1 && rt_ok;

    /* SIG_SETMASK round trip. */
    sigset_t full, cur;
    sigfillset(&full);
    sigprocmask(SIG_SETMASK, &full, &old);
    sigprocmask(SIG_SETMASK, &old, &cur);
    printf("SIG_SETMASK with a full set blocks all but SIGKILL/SIGSTOP: %s\n",
           sigismember(&cur, SIGUSR1) && sigismember(&cur, SIGTERM) && !sigismember(&cur, SIGKILL) && !sigismember(&cur, SIGSTOP) ? "yes" : "no");

    /* A forked child inherits the mask. */
    sigprocmask(SIG_BLOCK, &usr1_set, NULL);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t m;
        sigprocmask(SIG_SETMASK, NULL, &m);
        _exit(sigismember(&m, SIGUSR1) ? 10 : 11);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("forked child inherited the blocked SIGUSR1: %s\n", WIFEXITED(st) && WEXITSTATUS(st) == 10 ? "yes" : "no");
    ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 10;

    /* sigsuspend: SIGUSR1 is blocked; a child sends it; sigsuspend with an
     * empty mask waits for it and returns -1/EINTR after the handler ran;
     * the blocked mask is back afterwards. */
    usr1 = 0;
    pid_t parent = getpid();
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        kill(parent, SIGUSR1);
        _exit(0);
    }
    sigset_t empty;
    sigemptyset(&empty);
    int r = 0;
    while (!usr1) r = sigsuspend(&empty);
    sigprocmask(SIG_SETMASK, NULL, &cur);
    printf("sigsuspend woke for the child's SIGUSR1: %s, returned %d, mask restored: %s\n", usr1 == 1 ? "yes" : "no", r,
           sigismember(&cur, SIGUSR1) ? "yes" : "no");
    ok = ok && usr1 == 1 && r == -1 && sigismember(&cur, SIGUSR1);
    waitpid(pid, &st, 0);

    /* sigtimedwait takes a blocked pending signal without the handler (glibc
     * reports raise's SI_TKILL as SI_USER there). */
    usr1 = 0;
    raise(SIGUSR1);
    struct timespec ts = { 5, 0 };
    siginfo_t si;
    int got = sigtimedwait(&usr1_set, &si, &ts);
    printf("sigtimedwait returned %d, si_code %d, handler ran %d time(s)\n", got, si.si_code,
           (int)usr1);
    ok = ok && got == SIGUSR1 && si.si_code == SI_USER && usr1 == 0;
    ts.tv_sec = 0;
    ts.tv_nsec = 1000000;
    got = sigtimedwait(&usr1_set, &si, &ts);
    printf("sigtimedwait with nothing pending times out: %s\n", got == -1 ? "yes" : "no");

    /* signalfd reads a blocked signal. */
    int fd = signalfd(-1, &usr1_set, SFD_CLOEXEC);
    raise(SIGUSR1);
    struct signalfd_siginfo fsi;
    ssize_t n = read(fd, &fsi, sizeof fsi);
    printf("signalfd read %zd bytes, ssi_signo %u, handler ran %d time(s)\n", n, fsi.ssi_signo, (int)usr1);
    ok = ok && n == (ssize_t)sizeof fsi && fsi.ssi_signo == SIGUSR1 && usr1 == 0;
    close(fd);

    printf("%s\n", ok ? "sig_mask: ok" : "sig_mask: MISMATCH");
    return ok ? 0 : 1;
}
