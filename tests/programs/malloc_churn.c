/* malloc/free/realloc/calloc churn over many sizes (tiny to above the mmap
 * threshold), aligned allocations; contents checked, addresses never printed. */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

struct slot { unsigned char *p; size_t n; unsigned char tag; };

static size_t pick_size(void) {
    uint64_t r = next();
    switch (r % 10) {
    case 0: return 0;
    case 1: case 2: case 3: return 1 + r % 64;
    case 4: case 5: return 64 + r % 1024;
    case 6: case 7: return 1024 + r % 65536;
    case 8: return 120000 + r % 200000;     /* around the mmap threshold */
    default: return 1 + r % 4096;
    }
}

static int check(const struct slot *s) {
    for (size_t i = 0; i < s->n; i++)
        if (s->p[i] != (unsigned char)(s->tag + i)) return 0;
    return 1;
}

int main(void) {
    int ok = 1;
    enum { SLOTS = 512, ROUNDS = 8000 };
    static struct slot slots[SLOTS];
    uint64_t total_bytes = 0, allocs = 0, frees = 0, reallocs = 0, bad = 0;
    for (int round = 0; round < ROUNDS; round++) {
        struct slot *s = &slots[next() % SLOTS];
        uint64_t action = next() % 4;
        if (s->p && !check(s)) bad++;
        if (action == 0 && s->p) {
            free(s->p);
            s->p = NULL;
            s->n = 0;
            frees++;
        } else if (action == 1 && s->p) {
            size_t n = pick_size() + 1;
            unsigned char *q = realloc(s->p, n);
            if (!q) { printf("realloc failed\n"); return 2; }
            size_t keep = n < s->n ? n : s->n;
            for (size_t i = 0; i < keep; i++) if (q[i] != (unsigned char)(s->tag + i)) { bad++; break; }
            s->p = q;
            s->n = n;
            for (size_t i = 0; i < n; i++) q[i] = (unsigned char)(s->tag + i);
            total_bytes += n;
            reallocs++;
        } else {
            free(s->p);
            size_t n = pick_size();
            s->tag = (unsigned char)next();
            s->p = (action == 2) ? calloc(1, n ? n : 1) : malloc(n ? n : 1);
            if (!s->p) { printf("allocation failed\n"); return 2; }
            if (action == 2)
                for (size_t i = 0; i < n; i++) if (s->p[i]) { bad++; break; }
            s->n = n;
            for (size_t i = 0; i < n; i++) s->p[i] = (unsigned char)(s->tag + i);
            total_bytes += n;
            allocs++;
        }
    }
    uint64_t live = 0, sum = 0;
    for (int i = 0; i < SLOTS; i++) {
        if (!slots[i].p) continue;
        if (!check(&slots[i])) bad++;
        live++;
        for (size_t j = 0; j < slots[i].n; j += 97) sum += slots[i].p[j];
        free(slots[i].p);
    }
    printf("allocs=%llu frees=%llu reallocs=%llu bytes=%llu live=%llu sum=%llu bad=%llu\n",
           (unsigned long long)allocs, (unsigned long long)frees, (unsigned long long)reallocs,
           (unsigned long long)total_bytes, (unsigned long long)live, (unsigned long long)sum, (unsigned long long)bad);
    if (bad) ok = 0;

    int aligned_ok = 1;
    for (size_t align = 16; align <= 65536; align *= 2) {
        void *p = NULL;
        if (posix_memalign(&p, align, align * 3 + 5) != 0) { aligned_ok = 0; continue; }
        if ((uintptr_t)p % align) aligned_ok = 0;
        memset(p, 0xab, align * 3 + 5);
        free(p);
        void *q = aligned_alloc(align, align * 2);
        if (!q || (uintptr_t)q % align) aligned_ok = 0;
        free(q);
        void *m = memalign(align, 100);
        if (!m || (uintptr_t)m % align) aligned_ok = 0;
        free(m);
    }
    printf("aligned allocations: %s\n", aligned_ok ? "aligned" : "MISALIGNED");
    if (!aligned_ok) ok = 0;

    /* A big allocation (mmap-backed) and a chain of growing reallocs. */
    size_t big = 64u << 20;
    unsigned char *g = malloc(big);
    if (!g) { printf("big malloc failed\n"); return 2; }
    for (size_t i = 0; i < big; i += 4096) g[i] = (unsigned char)(i >> 12);
    uint64_t gs = 0;
    for (size_t i = 0; i < big; i += 4096) gs += g[i];
    free(g);
    printf("64 MiB block page sum: %llu\n", (unsigned long long)gs);
    char *str = NULL;
    size_t len = 0;
    for (int i = 0; i < 2000; i++) {
        char piece[32];
        int k = snprintf(piece, sizeof piece, "%d;", i * i);
        str = realloc(str, len + (size_t)k + 1);
        memcpy(str + len, piece, (size_t)k + 1);
        len += (size_t)k;
    }
    printf("grown string length %zu, tail %s\n", len, str + len - 16);
    free(str);
    printf("%s\n", ok ? "malloc_churn: ok" : "malloc_churn: MISMATCH");
    return ok ? 0 : 1;
}
