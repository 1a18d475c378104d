// dbi-cflags: -pthread
/* Cross-modifying code: a thread spins in `nop; nop; jmp back` on a
 * writable+executable page while the main thread overwrites the `jmp` with
 * two NOPs, so the loop falls through to `ret` and the thread returns; the
 * main thread joins it. 200 rounds, each with a fresh thread. Natively every
 * round ends at once; a translator that keeps running a stale copy of the
 * loop hangs. Prints the number of rounds completed. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static unsigned char *code;
static atomic_int started;

static void *spin(void *arg) {
    (void)arg;
    atomic_store(&started, 1);
    ((void (*)(void))code)();
    return NULL;
}

int main(void) {
    code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED) return 1;
    int rounds = 0;
    for (int i = 0; i < 200; i++) {
        /* nop; nop; jmp -4 (back to the first nop); ret */
        static const unsigned char loop[] = {0x90, 0x90, 0xeb, 0xfc, 0xc3};
        memcpy(code, loop, sizeof loop);
        atomic_store(&started, 0);
        pthread_t t;
        if (pthread_create(&t, NULL, spin, NULL) != 0) return 2;
        while (!atomic_load(&started)) ;
        struct timespec ts = {0, (i % 4) * 250000};
        nanosleep(&ts, NULL);
        /* One 2-byte store: the jmp becomes two NOPs. */
        static const unsigned short nops = 0x9090;
        __atomic_store_n((unsigned short *)(code + 2), nops, __ATOMIC_SEQ_CST);
        pthread_join(t, NULL);
        rounds++;
    }
    printf("%d rounds\n", rounds);
    return 0;
}
