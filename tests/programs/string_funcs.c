/* glibc string functions (strlen, memcpy, memmove, memset, strchr, strrchr,
 * memchr, strcmp, memcmp, strstr, strcpy, strncpy, strcasecmp, ...), which
 * glibc picks at load time through ifuncs (SSE2, AVX2, EVEX variants), over
 * many lengths and alignments, including strings that end right before an
 * unmapped page. Only checksums and counts are printed. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t h = 1469598103934665603ull;
static void mix(uint64_t v) { h = (h ^ v) * 1099511628211ull; }

/* Call through volatile pointers so the compiler cannot inline or fold. */
static size_t (*volatile p_strlen)(const char *) = strlen;
static void *(*volatile p_memcpy)(void *, const void *, size_t) = memcpy;
static void *(*volatile p_memmove)(void *, const void *, size_t) = memmove;
static void *(*volatile p_memset)(void *, int, size_t) = memset;
static char *(*volatile p_strchr)(const char *, int) = strchr;
static char *(*volatile p_strrchr)(const char *, int) = strrchr;
static void *(*volatile p_memchr)(const void *, int, size_t) = memchr;
static int (*volatile p_strcmp)(const char *, const char *) = strcmp;
static int (*volatile p_memcmp)(const void *, const void *, size_t) = memcmp;
static char *(*volatile p_strstr)(const char *, const char *) = strstr;
static char *(*volatile p_strcpy)(char *, const char *) = strcpy;
static char *(*volatile p_strncpy)(char *, const char *, size_t) = strncpy;
static int (*volatile p_strcasecmp)(const char *, const char *) = strcasecmp;
static size_t (*volatile p_strnlen)(const char *, size_t) = strnlen;
static char *(*volatile p_stpcpy)(char *, const char *) = stpcpy;
static void *(*volatile p_rawmemchr)(const void *, int) = rawmemchr;

static int sign(int x) { return (x > 0) - (x < 0); }

int main(void) {
    int ok = 1;
    enum { BUF = 8192 };
    char *a = malloc(BUF + 64), *b = malloc(BUF + 64);
    for (size_t len = 0; len < 600; len = len < 80 ? len + 1 : len * 5 / 4) {
        for (size_t align = 0; align < 64; align += (len < 40 ? 1 : 7)) {
            char *s = a + align;
            for (size_t i = 0; i < len; i++) s[i] = (char)('a' + (i * 7 + len) % 26);
            s[len] = 0;
            if (p_strlen(s) != len) ok = 0;
            mix(p_strlen(s));
            char *d = b + (63 - align);
            p_memcpy(d, s, len + 1);
            if (p_strcmp(d, s) != 0 || p_memcmp(d, s, len) != 0) ok = 0;
            if (len) {
                d[len / 2] ^= 1;
                mix((uint64_t)(sign(p_strcmp(d, s)) + 2));
                mix((uint64_t)(sign(p_memcmp(d, s, len)) + 2));
                d[len / 2] ^= 1;
            }
            char *c = p_strchr(s, 'q');
            mix(c ? (uint64_t)(c - s) : 99999);
            c = p_strrchr(s, 'c');
            mix(c ? (uint64_t)(c - s) : 99999);
            void *m = p_memchr(s, 'z', len);
            mix(m ? (uint64_t)((char *)m - s) : 99999);
            mix((uint64_t)((char *)p_rawmemchr(s, 0) - s));
            mix(p_strnlen(s, len / 2 + 1));
            c = p_strstr(s, "hov");
            mix(c ? (uint64_t)(c - s) : 99999);
        }
    }
    printf("scan checksum: %016llx\n", (unsigned long long)h);

    /* memmove with overlap both ways, memset of many sizes. */
    for (size_t len = 1; len < 5000; len = len * 3 / 2 + 1) {
        for (size_t i = 0; i < BUF; i++) a[i] = (char)(i * 13);
        p_memmove(a + 17, a, len);
        p_memmove(a + 1, a + 40, len);
        for (size_t i = 0; i < len + 64; i++) mix((unsigned char)a[i]);
        p_memset(b, (int)len, len);
        for (size_t i = 0; i < len; i++) if ((unsigned char)b[i] != (unsigned char)len) ok = 0;
    }
    printf("move/set checksum: %016llx\n", (unsigned long long)h);

    char w[64];
    char *end = p_stpcpy(p_strcpy(w, "Hello") + 5, ", World");
    printf("stpcpy: %s (%td)\n", w, end - w);
    memset(w, 'x', sizeof w);
    p_strncpy(w, "abc", 8);
    printf("strncpy pads with zeros: %s\n", (w[3] == 0 && w[7] == 0 && w[8] == 'x') ? "yes" : "no");
    printf("strcasecmp: %d %d %d\n", sign(p_strcasecmp("HeLLo", "hello")), sign(p_strcasecmp("abc", "ABD")), sign(p_strcasecmp("b", "A")));

    /* Strings ending right before an unmapped page: the vector code must not fault. */
    long pg = sysconf(_SC_PAGESIZE);
    char *region = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) { perror("mmap"); return 2; }
    mprotect(region + pg, (size_t)pg, PROT_NONE);
    int edge = 0;
    for (int len = 0; len < 130; len++) {
        char *s = region + pg - len - 1;
        memset(s, 'k', (size_t)len);
        s[len] = 0;
        edge += p_strlen(s) == (size_t)len;
        edge += p_strchr(s, 'z') == NULL;
        edge += p_strrchr(s, 'k') == (len ? s + len - 1 : NULL);
        edge += p_memchr(s, 0, (size_t)len + 1) == s + len;
        edge += p_strcmp(s, s) == 0;
        char *t = region + pg - len;  /* no terminator inside: memcmp/memchr with exact length only */
        memset(t, 'k', (size_t)len);
        edge += p_memchr(t, 'j', (size_t)len) == NULL;
        edge += p_memcmp(t, s, (size_t)len) == 0;
    }
    printf("page-edge checks passed: %d of %d\n", edge, 130 * 7);
    if (edge != 130 * 7) ok = 0;
    printf("%s\n", ok ? "string_funcs: ok" : "string_funcs: MISMATCH");
    return ok ? 0 : 1;
}
