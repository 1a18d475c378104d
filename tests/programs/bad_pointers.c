/* System calls the runtime carries out itself, given bad pointers: the
 * kernel answers EFAULT (or fails the exec), and so must a translator,
 * which reads and writes those buffers on the app's behalf. Prints each
 * call's result and errno. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BAD ((void *)16)
#define ARCH_GET_GS 0x1004

static void report(const char *what, long r) {
    printf("%s: %ld %s\n", what, r, r < 0 ? strerror(errno) : "");
    errno = 0;
}

int main(void) {
    char *argv[] = {"true", NULL};
    char *envp[] = {NULL};
    report("execve bad path", syscall(SYS_execve, BAD, argv, envp));
    report("execve bad argv", syscall(SYS_execve, "/bin/true", BAD, envp));
    report("rt_sigaction bad act", syscall(SYS_rt_sigaction, SIGUSR1, BAD, NULL, 8));
    report("rt_sigaction bad oldact", syscall(SYS_rt_sigaction, SIGUSR1, NULL, BAD, 8));
    report("arch_prctl GET_GS bad", syscall(SYS_arch_prctl, ARCH_GET_GS, BAD));
    report("clone3 bad args", syscall(SYS_clone3, BAD, 88));
    return 0;
}
