// dbi-cflags: -pthread
/* __thread variables: initialised and zero, arrays, addresses taken, in the
 * main thread and in new threads. Addresses are never printed, only their
 * relationships. Exit 0 when all checks hold. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

__thread int tls_init = 42;
__thread long tls_zero;
__thread char tls_name[32] = "main-initial";
static __thread unsigned long tls_counter = 1000;
__thread int tls_big[4096];

static int *main_init_addr;
static long *main_zero_addr;

static __attribute__((noinline)) void bump(int n) {
    for (int i = 0; i < n; i++) { tls_counter += (unsigned long)i; tls_big[i % 4096] += i; }
}

static __attribute__((noinline)) int *addr_of_init(void) { return &tls_init; }

struct result { int init_seen; long zero_seen; char name_seen[32]; unsigned long counter; int distinct; int stable; long big_sum; };

static void *worker(void *arg) {
    struct result *r = arg;
    r->init_seen = tls_init;
    r->zero_seen = tls_zero;
    memcpy(r->name_seen, tls_name, sizeof tls_name);
    r->distinct = &tls_init != main_init_addr && &tls_zero != main_zero_addr;
    r->stable = addr_of_init() == &tls_init;
    tls_init = 7;
    snprintf(tls_name, sizeof tls_name, "worker");
    bump(5000);
    r->counter = tls_counter;
    long s = 0;
    for (int i = 0; i < 4096; i++) s += tls_big[i];
    r->big_sum = s;
    return NULL;
}

int main(void) {
    int ok = 1;
    printf("main: tls_init=%d tls_zero=%ld tls_name=%s tls_counter=%lu\n", tls_init, tls_zero, tls_name, tls_counter);
    main_init_addr = &tls_init;
    main_zero_addr = &tls_zero;
    tls_init = 99;
    tls_zero = -5;
    strcpy(tls_name, "main-changed");
    bump(100);
    printf("address stable in main: %s\n", addr_of_init() == &tls_init ? "yes" : "no");
    int *p = &tls_init;
    *p += 1;
    printf("write through pointer visible: %s\n", tls_init == 100 ? "yes" : "no");
    printf("tls_big is zero-initialised past the touched part: %s\n", tls_big[4000] == 0 ? "yes" : "no");
    /* The TLS block lies near the thread pointer (%fs:0 holds its own address). */
    uintptr_t tp;
    __asm__("mov %%fs:0, %0" : "=r"(tp));
    uintptr_t a = (uintptr_t)&tls_init;
    printf("tls_init within 1 MiB below the thread pointer: %s\n", (a < tp && tp - a < (1u << 20)) ? "yes" : "no");

    enum { T = 4 };
    pthread_t th[T];
    struct result res[T];
    memset(res, 0, sizeof res);
    for (int i = 0; i < T; i++) pthread_create(&th[i], NULL, worker, &res[i]);
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < T; i++) {
        printf("thread %d: saw init=%d zero=%ld name=%s, counter after=%lu, distinct=%d stable=%d big_sum=%ld\n", i,
               res[i].init_seen, res[i].zero_seen, res[i].name_seen, res[i].counter, res[i].distinct, res[i].stable,
               res[i].big_sum);
        if (res[i].init_seen != 42 || res[i].zero_seen != 0 || strcmp(res[i].name_seen, "main-initial") ||
            !res[i].distinct || !res[i].stable)
            ok = 0;
    }
    printf("main after threads: tls_init=%d tls_zero=%ld tls_name=%s tls_counter=%lu\n", tls_init, tls_zero, tls_name, tls_counter);
    if (tls_init != 100 || tls_zero != -5 || strcmp(tls_name, "main-changed")) ok = 0;
    printf("%s\n", ok ? "tls_vars: ok" : "tls_vars: MISMATCH");
    return ok ? 0 : 1;
}
