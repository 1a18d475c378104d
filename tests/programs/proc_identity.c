/* What the system knows the process as: /proc/self/comm, the bytes of
 * /proc/self/cmdline, and whether /proc/self/environ and /proc/self/auxv
 * hold exactly the environment and auxiliary vector the program started
 * with. Modes, by argv[1]:
 *   print           print the above
 *   exec PATH ARGS  print, then execv(PATH, [PATH-as-given, ARGS...]) with
 *                   argv[2] as the new program's argv[0]
 *   wait            print "ready", then block until stdin ends (so another
 *                   process can look at this one) */
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static size_t slurp(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    size_t n = 0;
    ssize_t r;
    while (n < cap && (r = read(fd, buf + n, cap - n)) > 0) n += (size_t)r;
    close(fd);
    return n;
}

static void print_bytes(const char *label, const char *b, size_t n) {
    printf("%s (%zu bytes): ", label, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b[i];
        if (c >= 32 && c < 127 && c != '\\') putchar(c);
        else printf("\\%03o", c);
    }
    putchar('\n');
}

static char buf[1 << 20];

int main(int argc, char **argv, char **envp) {
    size_t n = slurp("/proc/self/comm", buf, sizeof buf);
    print_bytes("comm", buf, n);
    n = slurp("/proc/self/cmdline", buf, sizeof buf);
    print_bytes("cmdline", buf, n);

    /* environ: the envp strings, each with its NUL, back to back. */
    n = slurp("/proc/self/environ", buf, sizeof buf);
    size_t at = 0;
    int env_ok = 1;
    char **e = envp;
    for (; *e; e++) {
        size_t len = strlen(*e) + 1;
        if (at + len > n || memcmp(buf + at, *e, len) != 0) env_ok = 0;
        at += len;
    }
    printf("environ is envp: %s\n", env_ok && at == n ? "yes" : "no");

    /* auxv: the vector after envp's NULL, through AT_NULL. */
    Elf64_auxv_t *aux = (Elf64_auxv_t *)(e + 1);
    size_t count = 0;
    while (aux[count].a_type != AT_NULL) count++;
    count++;
    n = slurp("/proc/self/auxv", buf, sizeof buf);
    int aux_ok = n >= count * sizeof *aux && memcmp(buf, aux, count * sizeof *aux) == 0;
    printf("auxv is the stack's: %s\n", aux_ok ? "yes" : "no");
    fflush(stdout);

    if (argc >= 3 && strcmp(argv[1], "exec") == 0) {
        execv(argv[2], argv + 2);
        perror("execv");
        return 127;
    }
    if (argc >= 2 && strcmp(argv[1], "wait") == 0) {
        printf("ready\n");
        fflush(stdout);
        while (read(0, buf, sizeof buf) > 0) {
        }
    }
    return 0;
}
