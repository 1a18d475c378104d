/* system() and popen()/pclose() (glibc runs /bin/sh through posix_spawn,
 * i.e. clone(CLONE_VM|CLONE_VFORK)): the shell's output, the statuses, and
 * reading a child's output through the pipe. stdout is flushed before each
 * child so the output order is fixed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

int main(void) {
    int ok = 1;
    fflush(stdout);
    int st = system("echo via system; exit 3");
    printf("system: WIFEXITED %d WEXITSTATUS %d\n", WIFEXITED(st), WEXITSTATUS(st));
    ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 3;

    fflush(stdout);
    st = system("kill -TERM $$");
    printf("system, shell killed by SIGTERM: WIFSIGNALED %d WTERMSIG %d\n", WIFSIGNALED(st), WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    ok = ok && WIFSIGNALED(st) && WTERMSIG(st) == 15;

    printf("system(NULL) says a shell exists: %s\n", system(NULL) ? "yes" : "no");

    FILE *p = popen("echo via popen; seq 1 1000", "r");
    if (!p) { perror("popen"); return 2; }
    char line[256];
    long lines = 0, sum = 0;
    char first[256] = "";
    while (fgets(line, sizeof line, p)) {
        if (lines++ == 0) snprintf(first, sizeof first, "%s", line);
        else sum += atol(line);
    }
    st = pclose(p);
    printf("popen read %ld lines, first %s", lines, first);
    printf("popen sum of the numbers %ld\n", sum);
    printf("pclose: WIFEXITED %d WEXITSTATUS %d\n", WIFEXITED(st), WEXITSTATUS(st));
    ok = ok && lines == 1001 && sum == 500500 && !strcmp(first, "via popen\n") && WIFEXITED(st) && WEXITSTATUS(st) == 0;

    p = popen("cat > /dev/null; exit 4", "w");
    if (!p) { perror("popen"); return 2; }
    for (int i = 0; i < 10000; i++) fprintf(p, "line %d\n", i);
    st = pclose(p);
    printf("popen for writing, pclose: WIFEXITED %d WEXITSTATUS %d\n", WIFEXITED(st), WEXITSTATUS(st));
    ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 4;
    printf("%s\n", ok ? "system_popen: ok" : "system_popen: MISMATCH");
    return ok ? 0 : 1;
}
