/* A JIT's life in small: 3,000 rounds of rewriting one function (W^X:
 * mprotect RW, write `mov eax, i; ret`, mprotect RX) and calling it
 * twice, while a second thread waits in a system call (a read of a pipe)
 * the whole time. Every rewrite flushes the function's block; a
 * translator that keeps what it flushed for good grows all run long.
 * Prints the sum of the calls; exit 0 when it is what the code says. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ROUNDS 3000

typedef int (*fn)(void);

static int pipe_fds[2];

static void *wait_for_the_end(void *arg) {
    char c;
    (void)arg;
    return read(pipe_fds[0], &c, 1) == 1 ? NULL : (void *)1;
}

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *code = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED || pipe(pipe_fds)) { perror("setup"); return 2; }
    pthread_t waiter;
    if (pthread_create(&waiter, NULL, wait_for_the_end, NULL)) { perror("pthread_create"); return 2; }
    long sum = 0;
    for (int i = 0; i < ROUNDS; i++) {
        mprotect(code, page, PROT_READ | PROT_WRITE);
        code[0] = 0xb8; /* mov eax, imm32 */
        memcpy(code + 1, &i, 4);
        code[5] = 0xc3; /* ret */
        mprotect(code, page, PROT_READ | PROT_EXEC);
        sum += ((fn)code)() + ((fn)code)();
    }
    void *waited;
    if (write(pipe_fds[1], "x", 1) != 1 || pthread_join(waiter, &waited) || waited) { perror("the end"); return 2; }
    long expected = (long)ROUNDS * (ROUNDS - 1);
    printf("%d rewrites, sum %ld (expected %ld)\n", ROUNDS, sum, expected);
    return sum == expected ? 0 : 1;
}
