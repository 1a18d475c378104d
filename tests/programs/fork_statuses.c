/* fork + waitpid statuses: children that exit(0), exit(7), _exit(255), kill
 * themselves with SIGKILL, write through a null pointer (SIGSEGV, no
 * handler), abort() (SIGABRT), raise SIGQUIT and die of a SIGFPE. RLIMIT_CORE
 * is set to 0 first, so whether a core is dumped is deterministic and
 * WCOREDUMP is printed too. The parent prints each child's status after
 * waiting for it, so the output order is fixed. Exit 0 when every status is
 * the expected one. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void child(int what) {
    switch (what) {
    case 0: exit(0);
    case 1: exit(7);
    case 2: _exit(255);
    case 3: kill(getpid(), SIGKILL); break;
    case 4: *(volatile int *)0 = 1; break;
    case 5: abort();
    case 6: raise(SIGQUIT); break;
    case 7: { volatile int zero = 0; volatile int r = 100 / zero; (void)r; } break;
    }
    _exit(100);
}

static const char *names[] = { "exit(0)", "exit(7)", "_exit(255)", "SIGKILL", "null write", "abort()", "SIGQUIT", "divide by zero" };
/* Expected: exit code, or -signal. */
static const int expected[] = { 0, 7, 255, -SIGKILL, -SIGSEGV, -SIGABRT, -SIGQUIT, -SIGFPE };

int main(void) {
    int ok = 1;
    struct rlimit zero = { 0, 0 };
    if (setrlimit(RLIMIT_CORE, &zero)) { perror("setrlimit"); return 2; }
    for (int i = 0; i < 8; i++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 2; }
        if (pid == 0) child(i);
        int st;
        if (waitpid(pid, &st, 0) != pid) { perror("waitpid"); return 2; }
        printf("%-15s WIFEXITED %d WEXITSTATUS %3d WIFSIGNALED %d WTERMSIG %2d (%s) WCOREDUMP %d\n", names[i],
               WIFEXITED(st), WIFEXITED(st) ? WEXITSTATUS(st) : 0, WIFSIGNALED(st),
               WIFSIGNALED(st) ? WTERMSIG(st) : 0, WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "-",
               WIFSIGNALED(st) ? WCOREDUMP(st) : 0);
        int got = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? -WTERMSIG(st) : 1000;
        if (got != expected[i]) ok = 0;
    }
    printf("%s\n", ok ? "fork_statuses: ok" : "fork_statuses: MISMATCH");
    return ok ? 0 : 1;
}
