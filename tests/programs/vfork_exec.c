/* vfork + execve of the program named by argv[1] (e.g. /bin/echo) with
 * arguments, waitpid and its status; vfork + execve of a missing file
 * (the child reports errno through a shared variable, as posix_spawn does,
 * and _exits 127); vfork + _exit(3). The parent is suspended until the
 * child execs or exits, so the output order is fixed. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static volatile int child_errno;

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: vfork_exec PROGRAM\n"); return 2; }
    int ok = 1, st;
    fflush(stdout);
    pid_t pid = vfork();
    if (pid < 0) { perror("vfork"); return 2; }
    if (pid == 0) {
        char *args[] = { argv[1], "echoed", "by", "the", "vfork", "child", NULL };
        execve(argv[1], args, environ);
        _exit(127);
    }
    waitpid(pid, &st, 0);
    printf("vfork+execve %s: exited %d, status %d\n", argv[1], WIFEXITED(st), WEXITSTATUS(st));
    ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;

    fflush(stdout);
    child_errno = 0;
    pid = vfork();
    if (pid == 0) {
        char *args[] = { "/nonexistent/dbi-no-such-program", NULL };
        execve(args[0], args, environ);
        child_errno = errno;
        _exit(127);
    }
    waitpid(pid, &st, 0);
    printf("vfork+execve of a missing file: exited %d, status %d, child's errno seen by the parent: %s\n",
           WIFEXITED(st), WEXITSTATUS(st), strerror(child_errno));
    ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 127 && child_errno == ENOENT;

    pid = vfork();
    if (pid == 0) _exit(3);
    waitpid(pid, &st, 0);
    printf("vfork+_exit(3): exited %d, status %d\n", WIFEXITED(st), WEXITSTATUS(st));
    ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 3;
    printf("%s\n", ok ? "vfork_exec: ok" : "vfork_exec: MISMATCH");
    return ok ? 0 : 1;
}
