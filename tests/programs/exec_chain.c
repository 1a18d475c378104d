/* A program that execs itself N times (N = argv[1], default 5), finding
 * itself through /proc/self/exe, which must name this program (not a
 * runtime) at every level. argv[2] says how: "path" execs the path that
 * readlink("/proc/self/exe") returns, "proc" execs "/proc/self/exe" itself
 * (the kernel resolves it). Each level prints its level and whether
 * readlink("/proc/self/exe") equals realpath(argv[0]); the last prints
 * "done" and exits with status 0 (or 1 if any level saw a mismatch, passed
 * down in argv[3]). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int level = argc > 1 ? atoi(argv[1]) : 5;
    const char *mode = argc > 2 ? argv[2] : "path";
    int bad = argc > 3 ? atoi(argv[3]) : 0;
    if (strcmp(mode, "path") && strcmp(mode, "proc")) { fprintf(stderr, "usage: exec_chain N path|proc\n"); return 2; }
    char self[PATH_MAX], real[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0) { perror("readlink /proc/self/exe"); return 2; }
    self[n] = 0;
    if (!realpath(argv[0], real)) { perror("realpath argv[0]"); return 2; }
    int same = strcmp(self, real) == 0;
    if (!same) bad = 1;
    printf("level %d: /proc/self/exe is realpath(argv[0]): %s\n", level, same ? "yes" : "no");
    if (level <= 0) {
        printf("done\n");
        return bad;
    }
    char next[16], badstr[4];
    snprintf(next, sizeof next, "%d", level - 1);
    snprintf(badstr, sizeof badstr, "%d", bad);
    char *args[] = { argv[0], next, (char *)mode, badstr, NULL };
    const char *target = strcmp(mode, "proc") ? self : "/proc/self/exe";
    fflush(stdout);
    execv(target, args);
    fprintf(stderr, "execv %s failed\n", mode);
    return 2;
}
