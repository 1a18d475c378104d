// dbi-cflags: -pthread
/* fork racing other threads that map, reprotect and unmap memory (code
 * mappings of a file among them) and change signal actions: 1,000 forks,
 * each child maps executable memory, changes a signal action and runs a
 * little code before it exits. A runtime lock another thread held at the
 * fork must not stay held in the child (it would spin forever). Prints the
 * number of children that exited cleanly. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int stop;
static int self_fd;

static void on_usr1(int sig) { (void)sig; }

static void *mapper(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        unsigned char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) abort();
        p[0] = 0xc3; /* ret */
        mprotect(p, 4096, PROT_READ | PROT_EXEC);
        ((void (*)(void))p)();
        munmap(p, 8192);
        void *f = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, self_fd, 0);
        if (f != MAP_FAILED) munmap(f, 4096);
    }
    return NULL;
}

static void *signaller(void *arg) {
    (void)arg;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    while (!atomic_load(&stop)) {
        sa.sa_handler = on_usr1;
        sigaction(SIGUSR1, &sa, NULL);
        sa.sa_handler = SIG_DFL;
        sigaction(SIGUSR2, &sa, NULL);
    }
    return NULL;
}

static int child(int i) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    if (sigaction(SIGUSR1, &sa, NULL) != 0) return 1;
    unsigned char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 2;
    /* mov eax, imm32; ret */
    p[0] = 0xb8;
    memcpy(p + 1, &i, 4);
    p[5] = 0xc3;
    if (((int (*)(void))p)() != i) return 3;
    return 0;
}

int main(void) {
    self_fd = open("/proc/self/exe", O_RDONLY);
    if (self_fd < 0) return 1;
    pthread_t t1, t2;
    pthread_create(&t1, NULL, mapper, NULL);
    pthread_create(&t2, NULL, signaller, NULL);
    int ok = 0;
    for (int i = 0; i < 1000; i++) {
        pid_t pid = fork();
        if (pid < 0) return 2;
        if (pid == 0) _exit(child(i));
        int status;
        if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) ok++;
    }
    atomic_store(&stop, 1);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    printf("%d of 1000 children exited cleanly\n", ok);
    return 0;
}
