// dbi-cflags: -pthread
/* Threads: parallel sums, a mutex-protected counter, a condition variable
 * ping-pong, atomics, thread return values and a barrier. Deterministic
 * output whatever the scheduling. Exit 0 when all checks hold. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { T = 4, N = 2000000, INCS = 100000, ROUNDS = 2000 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static long atomic_counter;
static pthread_barrier_t barrier;
static int barrier_serial;

struct job { int id; uint64_t sum; };

static void *summer(void *arg) {
    struct job *j = arg;
    uint64_t s = 0;
    for (uint64_t i = (uint64_t)j->id; i < N; i += T) s += i * i % 1000003;
    j->sum = s;
    for (int i = 0; i < INCS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
        __atomic_fetch_add(&atomic_counter, 2, __ATOMIC_SEQ_CST);
    }
    if (pthread_barrier_wait(&barrier) == PTHREAD_BARRIER_SERIAL_THREAD)
        __atomic_fetch_add(&barrier_serial, 1, __ATOMIC_SEQ_CST);
    return (void *)(intptr_t)(j->id * 10);
}

static pthread_mutex_t pp_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pp_cond = PTHREAD_COND_INITIALIZER;
static int turn;          /* 0: ping's turn, 1: pong's turn */
static long exchanges;

static void *ponger(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&pp_lock);
        while (turn != 1) pthread_cond_wait(&pp_cond, &pp_lock);
        exchanges++;
        turn = 0;
        pthread_cond_signal(&pp_cond);
        pthread_mutex_unlock(&pp_lock);
    }
    return NULL;
}

static void *detached_worker(void *arg) {
    __atomic_store_n((int *)arg, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

int main(void) {
    int ok = 1;
    pthread_barrier_init(&barrier, NULL, T);
    pthread_t th[T];
    struct job jobs[T];
    for (int i = 0; i < T; i++) {
        jobs[i].id = i;
        if (pthread_create(&th[i], NULL, summer, &jobs[i])) { perror("pthread_create"); return 2; }
    }
    uint64_t total = 0;
    for (int i = 0; i < T; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        printf("thread %d: sum %llu, returned %ld\n", i, (unsigned long long)jobs[i].sum, (long)(intptr_t)ret);
        if ((intptr_t)ret != i * 10) ok = 0;
        total += jobs[i].sum;
    }
    uint64_t check = 0;
    for (uint64_t i = 0; i < N; i++) check += i * i % 1000003;
    printf("total %llu matches serial: %s\n", (unsigned long long)total, total == check ? "yes" : "no");
    printf("mutex counter %ld, atomic counter %ld, barrier serial threads %d\n", counter, atomic_counter, barrier_serial);
    if (total != check || counter != (long)T * INCS || atomic_counter != 2L * T * INCS || barrier_serial != 1) ok = 0;

    pthread_t p;
    pthread_create(&p, NULL, ponger, NULL);
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&pp_lock);
        turn = 1;
        pthread_cond_signal(&pp_cond);
        while (turn != 0) pthread_cond_wait(&pp_cond, &pp_lock);
        pthread_mutex_unlock(&pp_lock);
    }
    pthread_join(p, NULL);
    printf("condition variable exchanges: %ld\n", exchanges);
    if (exchanges != ROUNDS) ok = 0;

    int flag = 0;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t d;
    pthread_create(&d, &attr, detached_worker, &flag);
    for (long spins = 0; !__atomic_load_n(&flag, __ATOMIC_SEQ_CST) && spins < 2000000000L; spins++)
        sched_yield();
    printf("detached thread ran: %s\n", flag ? "yes" : "no");
    if (!flag) ok = 0;
    printf("%s\n", ok ? "threads: ok" : "threads: MISMATCH");
    return ok ? 0 : 1;
}
