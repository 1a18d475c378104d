/* posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK), the child reports an
 * exec failure back through shared memory): a missing path must give ENOENT,
 * posix_spawnp of a name found nowhere on PATH too, and /bin/true must start
 * and exit 0. Also posix_spawn of /bin/sh -c 'exit 5' with its status. */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(void) {
    int ok = 1, st;
    pid_t pid;
    char *missing_argv[] = { "/nonexistent/dbi-no-such-program", NULL };
    int r = posix_spawn(&pid, missing_argv[0], NULL, NULL, missing_argv, environ);
    printf("posix_spawn of a missing path: %s\n", r ? strerror(r) : "succeeded");
    if (r == 0) waitpid(pid, &st, 0);
    ok = ok && r == ENOENT;

    char *missing_name[] = { "dbi-no-such-program-on-path", NULL };
    r = posix_spawnp(&pid, missing_name[0], NULL, NULL, missing_name, environ);
    printf("posix_spawnp of a missing name: %s\n", r ? strerror(r) : "succeeded");
    if (r == 0) waitpid(pid, &st, 0);
    ok = ok && r == ENOENT;

    char *true_argv[] = { "/bin/true", NULL };
    r = posix_spawn(&pid, true_argv[0], NULL, NULL, true_argv, environ);
    printf("posix_spawn of /bin/true: %s\n", r ? strerror(r) : "succeeded");
    if (r == 0) {
        waitpid(pid, &st, 0);
        printf("/bin/true: exited %d, status %d\n", WIFEXITED(st), WEXITSTATUS(st));
        ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    } else {
        ok = 0;
    }

    char *sh_argv[] = { "sh", "-c", "exit 5", NULL };
    r = posix_spawnp(&pid, "sh", NULL, NULL, sh_argv, environ);
    printf("posix_spawnp of sh -c 'exit 5': %s\n", r ? strerror(r) : "succeeded");
    if (r == 0) {
        waitpid(pid, &st, 0);
        printf("sh: exited %d, status %d\n", WIFEXITED(st), WEXITSTATUS(st));
        ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 5;
    } else {
        ok = 0;
    }
    printf("%s\n", ok ? "spawn_missing: ok" : "spawn_missing: MISMATCH");
    return ok ? 0 : 1;
}
