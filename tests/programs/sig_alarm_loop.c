/* A one-shot ITIMER_REAL of 1 ms, re-armed by the SIGALRM handler until it
 * has run 1,000 times; a hot loop (pure computation, no system calls) spins
 * until the counter reaches 1,000, so every signal interrupts translated
 * code at an arbitrary point. Each signal is generated only after the
 * previous handler ran, so the count is exact however slowly signals are
 * delivered: a lost signal stalls the loop, a duplicate makes it 1,001. A guard (clock_gettime
 * through the vDSO every 2^22 iterations) gives up after 30 s. The loop's
 * own computation is checked against a replay (it must not be corrupted
 * by the interruptions). */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t ticks;

static const struct itimerval one_shot = { .it_interval = { 0, 0 }, .it_value = { 0, 1000 } };

static void on_alarm(int sig) {
    (void)sig;
    if (++ticks < 1000) setitimer(ITIMER_REAL, &one_shot, NULL);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    if (setitimer(ITIMER_REAL, &one_shot, NULL)) { perror("setitimer"); return 2; }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    uint64_t x = 88172645463325252ULL, iterations = 0;
    int seen, gave_up = 0;
    while ((seen = ticks) < 1000) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        iterations++;
        if ((iterations & ((1u << 22) - 1)) == 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - start.tv_sec > 30) { gave_up = 1; break; }
        }
    }
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    /* Replay the same number of iterations without interruptions. */
    uint64_t y = 88172645463325252ULL;
    for (uint64_t i = 0; i < iterations; i++) {
        y ^= y << 13;
        y ^= y >> 7;
        y ^= y << 17;
    }
    if (gave_up) printf("gave up after 30 s with %d signals\n", seen);
    else printf("%d signals\n", seen);
    printf("loop state intact: %s\n", x == y ? "yes" : "no");
    int ok = !gave_up && seen == 1000 && x == y;
    printf("%s\n", ok ? "sig_alarm_loop: ok" : "sig_alarm_loop: MISMATCH");
    return ok ? 0 : 1;
}
