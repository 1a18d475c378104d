/* The legacy vsyscall page: time, gettimeofday and getcpu called at their
 * fixed addresses (old static binaries do this). The kernel emulates each
 * call; results are checked against the ordinary system calls. Then a
 * misaligned entry, which the kernel answers with SIGSEGV. */
#define _GNU_SOURCE
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef long (*gtod_fn)(struct timeval *, struct timezone *);
typedef long (*time_fn)(long *);
typedef long (*getcpu_fn)(unsigned *, unsigned *, void *);

static sigjmp_buf env;
static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    printf("signal %d code %d\n", sig, si->si_code);
    siglongjmp(env, 1);
}

int main(void) {
    gtod_fn gtod = (gtod_fn)0xffffffffff600000UL;
    time_fn vtime = (time_fn)0xffffffffff600400UL;
    getcpu_fn vgetcpu = (getcpu_fn)0xffffffffff600800UL;

    struct timeval tv = {0, 0};
    long r = gtod(&tv, NULL);
    time_t now = time(NULL);
    printf("gettimeofday: %ld, close to time(): %d\n", r, tv.tv_sec >= now - 2 && tv.tv_sec <= now + 2);

    long t_out = 0;
    long t = vtime(&t_out);
    now = time(NULL);
    printf("time: same in both: %d, close: %d\n", t == t_out, t >= now - 2 && t <= now);

    unsigned cpu = 9999, node = 9999;
    r = vgetcpu(&cpu, &node, NULL);
    printf("getcpu: %ld, cpu valid: %d, node: %u\n", r, cpu < 4096, node);

    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    if (sigsetjmp(env, 1) == 0) {
        ((time_fn)0xffffffffff600010UL)(NULL);
        printf("misaligned entry returned\n");
    }
    printf("done\n");
    return 0;
}
