/* A fault in code whose page the same block just wrote to. Function F,
 * in an RWX page, first stores a byte elsewhere in its own page (which
 * makes a translator throw away what it built from that page, F
 * included, while F is still running), then reads from an address the
 * caller chose: a PROT_NONE page, so the read faults. The SIGSEGV
 * handler checks the fault's address and the interrupted pc (F's read
 * instruction) and jumps out. Then the same from a second thread while
 * the first rewrites F's page in a loop (the JVM's case: a thread at its
 * safepoint poll while another patches code on the same page).
 * Prints what it saw; exit 0 when every fault was caught as natively. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef int (*fn)(volatile unsigned char *scribble, volatile int *bad);

/* mov byte [rdi], 0x90; mov eax, [rsi]; ret */
static const unsigned char F_CODE[] = { 0xc6, 0x07, 0x90, 0x8b, 0x06, 0xc3 };
/* Offset of the faulting read within F. */
#define READ_AT 3

static unsigned char *code_page;
static int *bad_page;
static __thread sigjmp_buf *escape;
static __thread int faults_seen;
static __thread int wrong_faults;
static void *wrong_addr, *wrong_pc;

static void on_segv(int sig, siginfo_t *info, void *ucv) {
    ucontext_t *uc = ucv;
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    if (info->si_addr != (void *)bad_page || pc != (uintptr_t)code_page + READ_AT) {
        wrong_faults++;
        wrong_addr = info->si_addr;
        wrong_pc = (void *)pc;
    }
    faults_seen++;
    (void)sig;
    siglongjmp(*escape, 1);
}

static int call_f_faulting(int times) {
    sigjmp_buf here;
    escape = &here;
    volatile int i = 0;
    sigsetjmp(here, 1);
    while (i < times) {
        i++;
        ((fn)code_page)(code_page + 2048, bad_page);
        return -1; /* the read must have faulted */
    }
    return faults_seen;
}

static volatile int stop;

static void *rewriter(void *arg) {
    (void)arg;
    while (!stop) {
        code_page[3000] ^= 1;
        usleep(50);
    }
    return NULL;
}

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    code_page = mmap(NULL, page, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    bad_page = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code_page == MAP_FAILED || bad_page == MAP_FAILED) { perror("mmap"); return 2; }
    memcpy(code_page, F_CODE, sizeof F_CODE);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    if (sigaction(SIGSEGV, &sa, NULL)) { perror("sigaction"); return 2; }

    int caught = call_f_faulting(20);
    printf("one thread: %d faults caught, %d at the wrong place\n", caught, wrong_faults);
    int ok = caught == 20 && wrong_faults == 0;

    pthread_t t;
    if (pthread_create(&t, NULL, rewriter, NULL)) { perror("pthread_create"); return 2; }
    faults_seen = 0;
    caught = call_f_faulting(2000);
    stop = 1;
    pthread_join(t, NULL);
    printf("while another thread rewrites the page: %d faults caught, %d at the wrong place\n", caught, wrong_faults);
    if (wrong_faults)
        printf("a wrong one: address %p (the read's %p), pc %p (the read's %p)\n", wrong_addr, (void *)bad_page, wrong_pc, (void *)(code_page + READ_AT));
    ok = ok && caught == 2000 && wrong_faults == 0;
    return ok ? 0 : 1;
}
