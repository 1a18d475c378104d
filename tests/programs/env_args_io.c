/* argv, getenv and the whole environment, stdout and stderr, a file created,
 * written, read back and removed in the current directory, stdin read to EOF.
 * The harness runs it with extra arguments and DBI_TEST_GREETING set. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    int ok = 1;
    printf("argc = %d\n", argc);
    for (int i = 1; i < argc; i++) printf("argv[%d] = \"%s\" (%zu bytes)\n", i, argv[i], strlen(argv[i]));
    printf("argv[argc] is NULL: %s\n", argv[argc] == NULL ? "yes" : "no");
    const char *slash = strrchr(argv[0], '/');
    printf("argv[0] basename: %s\n", slash ? slash + 1 : argv[0]);

    const char *g = getenv("DBI_TEST_GREETING");
    printf("DBI_TEST_GREETING = %s\n", g ? g : "(unset)");
    printf("DBI_TEST_UNSET = %s\n", getenv("DBI_TEST_UNSET") ? "set" : "(unset)");
    /* The application sees exactly the environment it was given. */
    uint64_t h = 1469598103934665603ull;
    int n = 0;
    for (char **e = environ; *e; e++, n++)
        for (const char *c = *e; ; c++) { h = (h ^ (unsigned char)*c) * 1099511628211ull; if (!*c) break; }
    printf("environment: %d variables, hash %016llx\n", n, (unsigned long long)h);
    setenv("DBI_TEST_NEW", "value", 1);
    printf("setenv/getenv round trip: %s\n", strcmp(getenv("DBI_TEST_NEW"), "value") == 0 ? "yes" : "no");

    fprintf(stderr, "this line goes to stderr\n");
    fprintf(stderr, "stderr line with number %d\n", 12345);

    const char *name = "env_args_io.tmp";
    FILE *f = fopen(name, "w");
    if (!f) { printf("fopen for writing failed: %s\n", strerror(errno)); return 2; }
    for (int i = 0; i < 1000; i++) fprintf(f, "line %d: %d\n", i, i * i);
    fclose(f);
    struct stat st;
    stat(name, &st);
    printf("file size: %lld\n", (long long)st.st_size);
    int fd = open(name, O_RDONLY);
    char buf[4096];
    ssize_t r;
    size_t total = 0, lines = 0;
    uint32_t sum = 0;
    while ((r = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < r; i++) { sum = sum * 31 + (unsigned char)buf[i]; lines += buf[i] == '\n'; }
        total += (size_t)r;
    }
    close(fd);
    printf("read back %zu bytes, %zu lines, checksum %08x\n", total, lines, sum);
    if (total != (size_t)st.st_size || lines != 1000) ok = 0;
    unlink(name);
    printf("file removed: %s\n", access(name, F_OK) != 0 ? "yes" : "no");

    size_t in_bytes = 0, in_lines = 0;
    uint32_t in_sum = 0;
    while ((r = read(0, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < r; i++) { in_sum = in_sum * 31 + (unsigned char)buf[i]; in_lines += buf[i] == '\n'; }
        in_bytes += (size_t)r;
    }
    printf("stdin: %zu bytes, %zu lines, checksum %08x\n", in_bytes, in_lines, in_sum);
    char cwd[4096];
    printf("getcwd works: %s\n", getcwd(cwd, sizeof cwd) ? "yes" : "no");
    printf("%s\n", ok ? "env_args_io: ok" : "env_args_io: MISMATCH");
    return ok ? 0 : 1;
}
