/* The process start-up state the kernel hands a program: the auxiliary
 * vector (AT_PHDR, AT_ENTRY, AT_BASE, AT_PAGESZ, AT_RANDOM, AT_EXECFN,
 * AT_SYSINFO_EHDR, ...), and /proc/self/exe. A translator that builds the
 * initial stack itself must reproduce these. Only relationships are printed. */
#define _GNU_SOURCE
#include <elf.h>
#include <limits.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

extern const ElfW(Ehdr) __ehdr_start;
extern char _start[];

int main(int argc, char **argv) {
    (void)argc;
    int ok = 1;
    unsigned long pagesz = getauxval(AT_PAGESZ);
    printf("AT_PAGESZ = %lu\n", pagesz);
    const ElfW(Ehdr) *eh = &__ehdr_start;
    const ElfW(Phdr) *phdr = (const ElfW(Phdr) *)((const char *)eh + eh->e_phoff);
    int phdr_ok = getauxval(AT_PHDR) == (uintptr_t)phdr;
    int phnum_ok = getauxval(AT_PHNUM) == eh->e_phnum;
    int phent_ok = getauxval(AT_PHENT) == sizeof(ElfW(Phdr));
    printf("AT_PHDR is this image's program headers: %s\n", phdr_ok ? "yes" : "no");
    printf("AT_PHNUM/AT_PHENT match the ELF header: %s\n", phnum_ok && phent_ok ? "yes" : "no");
    int entry_ok = getauxval(AT_ENTRY) == (uintptr_t)_start;
    printf("AT_ENTRY is _start: %s\n", entry_ok ? "yes" : "no");
    int has_interp = 0;
    for (int i = 0; i < eh->e_phnum; i++) has_interp |= phdr[i].p_type == PT_INTERP;
    unsigned long base = getauxval(AT_BASE);
    int base_ok = has_interp ? base != 0 : base == 0;
    printf("AT_BASE consistent with PT_INTERP: %s\n", base_ok ? "yes" : "no");
    if (has_interp) {
        /* The interpreter's ELF header is at AT_BASE. */
        const unsigned char *ld = (const unsigned char *)base;
        printf("interpreter image starts with ELF magic: %s\n", memcmp(ld, ELFMAG, SELFMAG) == 0 ? "yes" : "no");
    } else {
        printf("interpreter image starts with ELF magic: yes\n");
    }
    const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
    int nonzero = 0;
    if (rnd) for (int i = 0; i < 16; i++) nonzero |= rnd[i];
    printf("AT_RANDOM points to 16 readable bytes: %s\n", rnd ? "yes" : "no");
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    int execfn_ok = execfn && strcmp(execfn, argv[0]) == 0;
    printf("AT_EXECFN equals argv[0]: %s\n", execfn_ok ? "yes" : "no");
    const unsigned char *vdso = (const unsigned char *)getauxval(AT_SYSINFO_EHDR);
    printf("AT_SYSINFO_EHDR is an ELF image: %s\n", vdso && memcmp(vdso, ELFMAG, SELFMAG) == 0 ? "yes" : "no");
    printf("AT_UID/AT_EUID match getuid/geteuid: %s\n",
           getauxval(AT_UID) == getuid() && getauxval(AT_EUID) == geteuid() ? "yes" : "no");
    printf("AT_SECURE = %lu\n", getauxval(AT_SECURE));
    printf("AT_HWCAP nonzero: %s\n", getauxval(AT_HWCAP) ? "yes" : "no");
    const char *plat = (const char *)getauxval(AT_PLATFORM);
    printf("AT_PLATFORM = %s\n", plat ? plat : "(none)");
    printf("AT_CLKTCK = %lu\n", getauxval(AT_CLKTCK));

    /* argv, envp and auxv are laid out as the kernel does: envp follows argv's NULL. */
    extern char **environ;
    printf("environ follows argv: %s\n", environ == argv + argc + 1 ? "yes" : "no");

    char exe[PATH_MAX], real[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n >= 0) exe[n] = 0;
    int exe_ok = n > 0 && realpath(argv[0], real) && strcmp(exe, real) == 0;
    printf("/proc/self/exe is the program: %s\n", exe_ok ? "yes" : "no");

    ok = phdr_ok && phnum_ok && phent_ok && entry_ok && base_ok && rnd && execfn_ok && exe_ok;
    printf("%s\n", ok ? "auxv_proc: ok" : "auxv_proc: MISMATCH");
    return ok ? 0 : 1;
}
