/* cpuid (vendor string and maximum leaf) and rdtsc/rdtscp, which a DBI runs
 * as ordinary instructions. Only machine-stable facts are printed. */
#include <cpuid.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <x86intrin.h>

int main(void) {
    int ok = 1;
    unsigned eax, ebx, ecx, edx;
    __cpuid(0, eax, ebx, ecx, edx);
    char vendor[13];
    memcpy(vendor, &ebx, 4);
    memcpy(vendor + 4, &edx, 4);
    memcpy(vendor + 8, &ecx, 4);
    vendor[12] = 0;
    printf("vendor: %s\n", vendor);
    printf("max basic leaf: %u\n", eax);
    unsigned max_ext = __get_cpuid_max(0x80000000, NULL);
    printf("max extended leaf: %#x\n", max_ext);

    __cpuid(1, eax, ebx, ecx, edx);
    printf("family/model/stepping signature: %#x\n", eax);
    printf("sse2=%u sse4.2=%u avx=%u osxsave=%u\n", (edx >> 26) & 1, (ecx >> 20) & 1, (ecx >> 28) & 1, (ecx >> 27) & 1);

    if (max_ext >= 0x80000004) {
        unsigned brand[12];
        for (unsigned i = 0; i < 3; i++)
            __cpuid(0x80000002 + i, brand[i * 4], brand[i * 4 + 1], brand[i * 4 + 2], brand[i * 4 + 3]);
        char s[49];
        memcpy(s, brand, 48);
        s[48] = 0;
        printf("brand string length: %zu\n", strlen(s));
    }

    uint64_t t1 = __rdtsc();
    volatile unsigned long spin = 0;
    for (int i = 0; i < 100000; i++) spin += (unsigned long)i;
    uint64_t t2 = __rdtsc();
    printf("rdtsc second >= first: %s\n", t2 >= t1 ? "yes" : "no");
    if (t2 < t1) ok = 0;
    unsigned e1a = 0, e1b = 0, e1c = 0, e1d = 0;
    if (max_ext >= 0x80000001) __cpuid(0x80000001, e1a, e1b, e1c, e1d);
    if ((e1d >> 27) & 1) {
        unsigned aux1, aux2;
        uint64_t p1 = __rdtscp(&aux1);
        uint64_t p2 = __rdtscp(&aux2);
        printf("rdtscp second >= first: %s\n", p2 >= p1 ? "yes" : "no");
    } else {
        printf("rdtscp second >= first: yes\n"); /* not available: same line */
    }
    /* Registers untouched by cpuid survive it. */
    register unsigned long keep asm("r12") = 0x1234567890abcdefUL;
    __asm__ volatile("" : "+r"(keep));
    __cpuid(0, eax, ebx, ecx, edx);
    __asm__ volatile("" : "+r"(keep));
    printf("r12 preserved across cpuid: %s\n", keep == 0x1234567890abcdefUL ? "yes" : "no");
    printf("%s\n", ok ? "cpuid_rdtsc: ok" : "cpuid_rdtsc: MISMATCH");
    return ok ? 0 : 1;
}
