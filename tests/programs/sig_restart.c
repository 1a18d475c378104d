/* SA_RESTART against not: the parent blocks in read() on an empty pipe; a
 * child process waits until the parent really is blocked in read (its
 * /proc/PID/syscall starts with "0 ", the read system call; or, where that
 * file cannot be read, 200 ms), sends it SIGUSR1, waits 50 ms and writes a
 * line to the pipe. With SA_RESTART the handler runs and read() resumes and
 * returns the line; without it read() fails with EINTR (and a second read
 * gets the line). Prints both outcomes; exit 0 when both are as expected. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t handled;

static void on_usr1(int sig) { (void)sig; handled++; }

static void sleep_ms(long ms) {
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) && errno == EINTR) {}
}

/* Waits (up to 10 s) until `pid` is blocked in read(2). */
static void wait_blocked_in_read(pid_t pid) {
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/%d/syscall", (int)pid);
    for (int i = 0; i < 10000; i++) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) { sleep_ms(200); return; }
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) { sleep_ms(200); return; }
        buf[n] = 0;
        if (!strncmp(buf, "0 ", 2)) { sleep_ms(10); return; }
        sleep_ms(1);
    }
}

/* Returns 1 when the outcome is the expected one. */
static int trial(int restart) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    handled = 0;

    int fds[2];
    if (pipe(fds)) { perror("pipe"); exit(2); }
    pid_t parent = getpid();
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); exit(2); }
    if (pid == 0) {
        close(fds[0]);
        wait_blocked_in_read(parent);
        kill(parent, SIGUSR1);
        sleep_ms(50);
        const char msg[] = "data from the child\n";
        if (write(fds[1], msg, sizeof msg - 1) < 0) _exit(1);
        _exit(0);
    }
    close(fds[1]);
    char buf[128];
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    int err = errno;
    int ok = restart ? n == 20 : n == -1 && err == EINTR;
    const char *how = restart ? "with SA_RESTART" : "without SA_RESTART";
    if (n >= 0) {
        buf[n] = 0;
        printf("%s: read returned %zd bytes: %s", how, n, buf);
    } else {
        printf("%s: read returned %zd, errno %s\n", how, n, err == EINTR ? "EINTR" : strerror(err));
        n = read(fds[0], buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = 0;
        printf("%s: the next read returned %zd bytes: %s", how, n, buf);
        ok = ok && n == 20;
    }
    printf("%s: handler ran %d time(s)\n", how, (int)handled);
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    return ok && handled == 1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(void) {
    int ok = trial(1);
    ok &= trial(0);
    printf("%s\n", ok ? "sig_restart: ok" : "sig_restart: MISMATCH");
    return ok ? 0 : 1;
}
