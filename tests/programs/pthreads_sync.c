// dbi-cflags: -pthread
/* N = 8 threads: a mutex-protected counter, a condition-variable
 * producer/consumer handoff of 10,000 items through a small ring buffer,
 * __thread data (initialised and zero-initialised, checked per thread), and
 * thread-exit destructors from pthread_key_create (run by glibc when each
 * thread exits, counted and checked after the joins). Prints totals only,
 * so the output is the same whatever the scheduling. Exit 0 when all
 * checks hold. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { N = 8, INCS = 20000, ITEMS = 10000, RING = 16, PRODUCERS = 2, CONSUMERS = 2 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static __thread long tls_init = 1000;
static __thread long tls_zero;
static __thread char tls_name[16];

static pthread_key_t key;
static pthread_mutex_t dtor_lock = PTHREAD_MUTEX_INITIALIZER;
static int dtor_calls;
static long dtor_sum;

static void key_destructor(void *value) {
    long v = (long)(intptr_t)value;
    pthread_mutex_lock(&dtor_lock);
    dtor_calls++;
    dtor_sum += v;
    pthread_mutex_unlock(&dtor_lock);
}

struct worker { int id; long tls_result; int tls_ok; };

static void *counter_thread(void *arg) {
    struct worker *w = arg;
    int ok = tls_init == 1000 && tls_zero == 0 && tls_name[0] == 0;
    snprintf(tls_name, sizeof tls_name, "worker-%d", w->id);
    for (int i = 0; i < INCS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
        tls_init += 1;
        tls_zero += w->id;
    }
    char want[16];
    snprintf(want, sizeof want, "worker-%d", w->id);
    for (int i = 0; want[i] || tls_name[i]; i++)
        if (want[i] != tls_name[i]) ok = 0;
    w->tls_result = tls_init + tls_zero;
    w->tls_ok = ok && tls_init == 1000 + INCS && tls_zero == (long)w->id * INCS;
    /* The destructor receives this value when the thread exits. */
    pthread_setspecific(key, (void *)(intptr_t)(w->id + 1));
    return (void *)(intptr_t)(w->id * w->id);
}

/* Producer/consumer: a bounded ring protected by one mutex, two condition
 * variables. */
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static long ring[RING];
static int head, tail, count, produced_total;

static void *producer(void *arg) {
    int id = (int)(intptr_t)arg;
    for (int i = id; i < ITEMS; i += PRODUCERS) {
        pthread_mutex_lock(&ring_lock);
        while (count == RING) pthread_cond_wait(&not_full, &ring_lock);
        ring[head] = i + 1;
        head = (head + 1) % RING;
        count++;
        produced_total++;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&ring_lock);
    }
    return NULL;
}

struct consumer { long sum; long items; };

static void *consumer(void *arg) {
    struct consumer *c = arg;
    for (;;) {
        pthread_mutex_lock(&ring_lock);
        while (count == 0) pthread_cond_wait(&not_empty, &ring_lock);
        long v = ring[tail];
        tail = (tail + 1) % RING;
        count--;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&ring_lock);
        if (v < 0) break; /* poison pill */
        c->sum += v;
        c->items++;
    }
    pthread_setspecific(key, (void *)(intptr_t)100);
    return NULL;
}

int main(void) {
    int ok = 1;
    if (pthread_key_create(&key, key_destructor)) { perror("pthread_key_create"); return 2; }

    pthread_t th[N];
    struct worker w[N];
    for (int i = 0; i < N; i++) {
        w[i].id = i;
        if (pthread_create(&th[i], NULL, counter_thread, &w[i])) { perror("pthread_create"); return 2; }
    }
    long ret_sum = 0, tls_sum = 0;
    int tls_ok = 0;
    for (int i = 0; i < N; i++) {
        void *r;
        pthread_join(th[i], &r);
        ret_sum += (long)(intptr_t)r;
        tls_sum += w[i].tls_result;
        tls_ok += w[i].tls_ok;
    }
    printf("threads: %d, mutex counter: %ld (expected %ld)\n", N, counter, (long)N * INCS);
    printf("sum of return values: %ld\n", ret_sum);
    printf("__thread data correct in %d of %d threads, sum %ld\n", tls_ok, N, tls_sum);
    printf("main thread's __thread data untouched: %s\n", tls_init == 1000 && tls_zero == 0 && tls_name[0] == 0 ? "yes" : "no");
    ok = ok && counter == (long)N * INCS && ret_sum == 140 && tls_ok == N;
    ok = ok && tls_init == 1000 && tls_zero == 0;
    pthread_mutex_lock(&dtor_lock);
    printf("key destructors after the counter threads: %d calls, sum %ld\n", dtor_calls, dtor_sum);
    ok = ok && dtor_calls == N && dtor_sum == N * (N + 1) / 2;
    pthread_mutex_unlock(&dtor_lock);

    pthread_t prod[PRODUCERS], cons[CONSUMERS];
    struct consumer c[CONSUMERS] = { { 0, 0 } };
    for (int i = 0; i < CONSUMERS; i++) pthread_create(&cons[i], NULL, consumer, &c[i]);
    for (int i = 0; i < PRODUCERS; i++) pthread_create(&prod[i], NULL, producer, (void *)(intptr_t)i);
    for (int i = 0; i < PRODUCERS; i++) pthread_join(prod[i], NULL);
    for (int i = 0; i < CONSUMERS; i++) {
        pthread_mutex_lock(&ring_lock);
        while (count == RING) pthread_cond_wait(&not_full, &ring_lock);
        ring[head] = -1;
        head = (head + 1) % RING;
        count++;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&ring_lock);
    }
    long items = 0, sum = 0;
    for (int i = 0; i < CONSUMERS; i++) {
        pthread_join(cons[i], NULL);
        items += c[i].items;
        sum += c[i].sum;
    }
    printf("producer/consumer: produced %d, consumed %ld, sum %ld (expected %ld)\n", produced_total, items, sum,
           (long)ITEMS * (ITEMS + 1) / 2);
    ok = ok && produced_total == ITEMS && items == ITEMS && sum == (long)ITEMS * (ITEMS + 1) / 2;
    printf("key destructors in total: %d calls, sum %ld\n", dtor_calls, dtor_sum);
    ok = ok && dtor_calls == N + CONSUMERS && dtor_sum == N * (N + 1) / 2 + 100 * CONSUMERS;

    /* The main thread's value is never destroyed by exit(): set it anyway. */
    pthread_setspecific(key, (void *)(intptr_t)999);
    printf("%s\n", ok ? "pthreads_sync: ok" : "pthreads_sync: MISMATCH");
    return ok ? 0 : 1;
}
