// dbi-cflags: -pthread
/* 10,000 short threads, each created and joined before the next one starts
 * (so at most two threads exist at a time): per-thread state must be freed
 * at thread exit, or the runtime runs out of memory or mappings. Each
 * thread returns f(i); the program prints the sum. Exit 0 when it matches. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

enum { THREADS = 10000 };

static __thread int tls_seen;

static void *work(void *arg) {
    intptr_t i = (intptr_t)arg;
    tls_seen++;
    return (void *)(i * 3 + 1 + (tls_seen - 1) * 1000000);
}

int main(void) {
    long sum = 0;
    int failed = 0;
    for (intptr_t i = 0; i < THREADS; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, work, (void *)i)) {
            failed++;
            continue;
        }
        void *r;
        if (pthread_join(t, &r)) failed++;
        sum += (long)(intptr_t)r;
    }
    long expected = 3L * THREADS * (THREADS - 1) / 2 + THREADS;
    printf("%d threads, %d failures, sum of return values %ld (expected %ld)\n", THREADS, failed, sum, expected);
    printf("%s\n", failed == 0 && sum == expected ? "many_threads: ok" : "many_threads: MISMATCH");
    return failed == 0 && sum == expected ? 0 : 1;
}
