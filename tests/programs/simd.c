// dbi-cflags: -mavx2 -mfma -ffp-contract=off -lm
/* SSE2, AVX, AVX2 and FMA arithmetic through intrinsics. Whether the CPU has
 * AVX2 is checked at run time; the scalar fallback computes the same numbers,
 * so the output is identical either way. Exit 0 when all checks hold. */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint32_t fnv(const void *p, size_t n) {
    const unsigned char *b = p;
    uint32_t h = 2166136261u;
    while (n--) h = (h ^ *b++) * 16777619u;
    return h;
}

static __attribute__((noinline)) void sse2_part(int32_t out_i[4], double out_d[2], uint8_t out_b[16]) {
    __m128i a = _mm_setr_epi32(1, -2, 300000, 0x7fffffff);
    __m128i b = _mm_setr_epi32(10, 20, -30, 1);
    __m128i s = _mm_add_epi32(a, b);                /* wraps in lane 3 */
    s = _mm_xor_si128(s, _mm_slli_epi32(b, 4));
    _mm_storeu_si128((__m128i *)out_i, s);
    __m128d x = _mm_setr_pd(2.0, 10.0), y = _mm_setr_pd(0.25, 3.0);
    __m128d r = _mm_sqrt_pd(_mm_add_pd(_mm_mul_pd(x, x), _mm_div_pd(x, y)));
    _mm_storeu_pd(out_d, r);
    __m128i bytes = _mm_setr_epi8(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, (char)250, (char)251, (char)252, (char)253);
    __m128i sat = _mm_adds_epu8(bytes, _mm_set1_epi8(5));
    __m128i avg = _mm_avg_epu8(sat, bytes);
    _mm_storeu_si128((__m128i *)out_b, avg);
}

static __attribute__((noinline)) void sse2_scalar_check(int32_t out_i[4], double out_d[2], uint8_t out_b[16]) {
    int32_t a[4] = { 1, -2, 300000, 0x7fffffff }, b[4] = { 10, 20, -30, 1 };
    for (int i = 0; i < 4; i++) out_i[i] = (int32_t)(((uint32_t)a[i] + (uint32_t)b[i]) ^ ((uint32_t)b[i] << 4));
    double x[2] = { 2.0, 10.0 }, y[2] = { 0.25, 3.0 };
    for (int i = 0; i < 2; i++) out_d[i] = sqrt(x[i] * x[i] + x[i] / y[i]);
    uint8_t bytes[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 250, 251, 252, 253 };
    for (int i = 0; i < 16; i++) {
        unsigned s = bytes[i] + 5u; if (s > 255) s = 255;
        out_b[i] = (uint8_t)((s + bytes[i] + 1) / 2);
    }
}

__attribute__((noinline)) static void avx2_part(float out_f[8], int32_t out_i[8], double out_d[4], uint8_t out_b[32]) {
    __m256 a = _mm256_setr_ps(1.5f, 2.5f, -3.0f, 4.0f, 0.125f, 100.0f, -7.25f, 8.0f);
    __m256 b = _mm256_set1_ps(2.0f);
    __m256 r = _mm256_add_ps(_mm256_mul_ps(a, b), _mm256_sub_ps(a, b));   /* AVX */
    _mm256_storeu_ps(out_f, r);
    __m256i x = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8);
    __m256i y = _mm256_setr_epi32(-1, 1000, 77, 123456, 9, -9, 65536, 3);
    __m256i m = _mm256_mullo_epi32(x, y);                                /* AVX2 */
    m = _mm256_add_epi32(m, _mm256_permutevar8x32_epi32(m, _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0)));
    _mm256_storeu_si256((__m256i *)out_i, m);
    __m256d p = _mm256_setr_pd(1.0, 2.0, 3.0, 4.0), q = _mm256_setr_pd(0.5, 0.25, 0.125, 2.0);
    __m256d f = _mm256_fmadd_pd(p, q, _mm256_set1_pd(10.0));             /* FMA */
    _mm256_storeu_pd(out_d, f);
    uint8_t src[32];
    for (int i = 0; i < 32; i++) src[i] = (uint8_t)(i * 7 + 3);
    __m256i v = _mm256_loadu_si256((const __m256i *)src);
    __m256i shuf = _mm256_shuffle_epi8(v, _mm256_setr_epi8(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
                                                           0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
    _mm256_storeu_si256((__m256i *)out_b, shuf);
}

static void avx2_scalar(float out_f[8], int32_t out_i[8], double out_d[4], uint8_t out_b[32]) {
    float a[8] = { 1.5f, 2.5f, -3.0f, 4.0f, 0.125f, 100.0f, -7.25f, 8.0f };
    for (int i = 0; i < 8; i++) out_f[i] = a[i] * 2.0f + (a[i] - 2.0f);
    int32_t x[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, y[8] = { -1, 1000, 77, 123456, 9, -9, 65536, 3 }, m[8];
    for (int i = 0; i < 8; i++) m[i] = x[i] * y[i];
    for (int i = 0; i < 8; i++) out_i[i] = m[i] + m[7 - i];
    double p[4] = { 1.0, 2.0, 3.0, 4.0 }, q[4] = { 0.5, 0.25, 0.125, 2.0 };
    for (int i = 0; i < 4; i++) out_d[i] = fma(p[i], q[i], 10.0);
    uint8_t src[32];
    for (int i = 0; i < 32; i++) src[i] = (uint8_t)(i * 7 + 3);
    static const int idx[32] = { 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
                                 0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15 };
    for (int i = 0; i < 32; i++) out_b[i] = src[(i < 16 ? 0 : 16) + idx[i]];
}

/* A reduction the compiler vectorises with -O2 -mavx2. */
static __attribute__((noinline)) uint64_t dot(const uint32_t *a, const uint32_t *b, int n) {
    uint64_t s = 0;
    for (int i = 0; i < n; i++) s += (uint64_t)a[i] * b[i];
    return s;
}

int main(void) {
    int ok = 1;
    int32_t si[4], si2[4];
    double sd[2], sd2[2];
    uint8_t sb[16], sb2[16];
    sse2_part(si, sd, sb);
    sse2_scalar_check(si2, sd2, sb2);
    printf("sse2 ints: %d %d %d %d\n", si[0], si[1], si[2], si[3]);
    printf("sse2 doubles: %.17g %.17g\n", sd[0], sd[1]);
    printf("sse2 bytes hash: %08x\n", fnv(sb, 16));
    if (memcmp(si, si2, sizeof si) || memcmp(sd, sd2, sizeof sd) || memcmp(sb, sb2, sizeof sb)) ok = 0;

    float f[8];
    int32_t i8[8];
    double d4[4];
    uint8_t b32[32];
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        avx2_part(f, i8, d4, b32);
        float f2[8]; int32_t i82[8]; double d42[4]; uint8_t b322[32];
        avx2_scalar(f2, i82, d42, b322);
        if (memcmp(f, f2, sizeof f) || memcmp(i8, i82, sizeof i8) || memcmp(d4, d42, sizeof d4) || memcmp(b32, b322, sizeof b32))
            ok = 0;
    } else {
        avx2_scalar(f, i8, d4, b32);
    }
    printf("avx floats:");
    for (int i = 0; i < 8; i++) printf(" %g", f[i]);
    printf("\navx2 ints:");
    for (int i = 0; i < 8; i++) printf(" %d", i8[i]);
    printf("\nfma doubles:");
    for (int i = 0; i < 4; i++) printf(" %.17g", d4[i]);
    printf("\navx2 shuffle hash: %08x\n", fnv(b32, 32));

    static uint32_t va[4099], vb[4099];
    for (int i = 0; i < 4099; i++) { va[i] = (uint32_t)i * 2654435761u; vb[i] = (uint32_t)(i ^ 0x5555) * 40503u; }
    printf("vectorised dot: %llu\n", (unsigned long long)dot(va, vb, 4099));

    /* Registers survive across calls: keep values in ymm across a libc call. */
    __m256d keep = _mm256_set1_pd(1.25);
    char buf[64];
    snprintf(buf, sizeof buf, "%d", 12345);
    keep = _mm256_add_pd(keep, _mm256_set1_pd((double)strlen(buf)));
    double kept[4];
    _mm256_storeu_pd(kept, keep);
    printf("kept across call: %.2f\n", kept[3]);

    printf("%s\n", ok ? "simd: ok" : "simd: MISMATCH");
    return ok ? 0 : 1;
}
