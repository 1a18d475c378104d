/* fork, a pipe between parent and child, waitpid for an exit status and for
 * a death by signal, and execve of another program from the child. The
 * parent waits before printing, so the output order is fixed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int ok = 1;
    int fds[2];
    if (pipe(fds)) { perror("pipe"); return 2; }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 2; }
    if (pid == 0) {
        close(fds[0]);
        unsigned long s = 0;
        for (unsigned long i = 1; i <= 1000; i++) s += i * i;
        char msg[64];
        int n = snprintf(msg, sizeof msg, "child computed %lu", s);
        if (write(fds[1], msg, (size_t)n) != n) _exit(99);
        printf("hello from the child\n");
        fflush(stdout);
        _exit(7);
    }
    close(fds[1]);
    char buf[128];
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    int status;
    waitpid(pid, &status, 0);
    printf("parent read: %s\n", buf);
    printf("child exited: %d, status %d\n", WIFEXITED(status), WEXITSTATUS(status));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 7 || strcmp(buf, "child computed 333833500")) ok = 0;

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        raise(SIGTERM);
        _exit(1);
    }
    waitpid(pid, &status, 0);
    printf("second child killed by signal: %d, signal %d\n", WIFSIGNALED(status), WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGTERM) ok = 0;

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        char *argv[] = { "/bin/echo", "exec'd", "echo", "in", "the", "child", NULL };
        execv(argv[0], argv);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    printf("exec'd child exited with %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ok = 0;

    /* vfork + _exit */
    pid = vfork();
    if (pid == 0) _exit(3);
    waitpid(pid, &status, 0);
    printf("vfork child exited with %d\n", WEXITSTATUS(status));
    if (WEXITSTATUS(status) != 3) ok = 0;
    printf("%s\n", ok ? "fork_wait: ok" : "fork_wait: MISMATCH");
    return ok ? 0 : 1;
}
