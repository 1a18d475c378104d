/* A periodic ITIMER_REAL every 50 us (20 kHz) while a hot loop does a fixed
 * amount of work: natively a signal costs a microsecond or two, so the
 * loop ends in a fraction of a second having taken thousands of signals.
 * Under translation the runtime's share of each signal (frame, handler
 * entry, sigreturn) must stay well below the interval, or the process
 * spends all its time delivering signals and the loop never ends (it did,
 * when each frame asked CPUID, a VM exit, for the XSAVE layout: the test
 * harness's timeout ends such a run). A guard (clock_gettime every 2^20
 * iterations) gives up after 30 s of slow progress. The count of signals
 * varies from run to run; the output says only whether any came. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t ticks;
static volatile uint64_t handler_state = 1;

static void on_alarm(int sig) {
    (void)sig;
    uint64_t s = handler_state;
    for (int i = 0; i < 16; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
    }
    handler_state = s;
    ticks++;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    const struct itimerval storm = { .it_interval = { 0, 50 }, .it_value = { 0, 50 } };
    if (setitimer(ITIMER_REAL, &storm, NULL)) { perror("setitimer"); return 2; }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    uint64_t x = 88172645463325252ULL;
    int gave_up = 0;
    for (uint64_t i = 1; i <= 100000000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if ((i & ((1u << 20) - 1)) == 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - start.tv_sec > 30) { gave_up = 1; break; }
        }
    }
    const struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    if (gave_up) printf("gave up after 30 s, %d signals taken\n", (int)ticks);
    else printf("loop done: %016llx, signals taken: %s\n", (unsigned long long)x, ticks > 0 ? "yes" : "no");
    return gave_up ? 1 : 0;
}
