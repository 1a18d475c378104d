/* qsort and bsearch with callbacks into the program (libc calling back into
 * app code through function pointers). Exit 0 when all checks hold. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct person { char name[16]; int age; double score; };

static unsigned long calls;

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    calls++;
    return (x > y) - (x < y);
}
static int cmp_int_desc(const void *a, const void *b) { return cmp_int(b, a); }
static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}
static int cmp_person(const void *a, const void *b) {
    const struct person *p = a, *q = b;
    if (p->age != q->age) return p->age - q->age;
    return strcmp(p->name, q->name);
}
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static unsigned long rng = 88172645463325252ul;
static unsigned long next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

int main(void) {
    int ok = 1;
    enum { N = 50000 };
    static int arr[N];
    for (int i = 0; i < N; i++) arr[i] = (int)(next() % 1000000) - 500000;
    qsort(arr, N, sizeof arr[0], cmp_int);
    long sum = 0;
    for (int i = 0; i < N; i++) {
        if (i && arr[i - 1] > arr[i]) ok = 0;
        sum += (long)arr[i] * (i % 13);
    }
    printf("sorted %d ints: min %d max %d median %d weighted %ld\n", N, arr[0], arr[N - 1], arr[N / 2], sum);
    printf("comparator was called: %s\n", calls > (unsigned long)N ? "yes" : "no");

    int found = 0, missing = 0;
    for (int i = 0; i < 2000; i++) {
        int key = (int)(next() % 1000000) - 500000;
        int *p = bsearch(&key, arr, N, sizeof arr[0], cmp_int);
        if (p) { found++; if (*p != key) ok = 0; } else missing++;
    }
    for (int i = 0; i < 500; i++) {
        int key = arr[(i * 97) % N];
        if (!bsearch(&key, arr, N, sizeof arr[0], cmp_int)) ok = 0;
    }
    printf("bsearch: found %d missing %d\n", found, missing);

    qsort(arr, N, sizeof arr[0], cmp_int_desc);
    printf("descending: first %d last %d\n", arr[0], arr[N - 1]);

    const char *words[] = { "pear", "apple", "fig", "banana", "cherry", "date", "elderberry",
                            "grape", "kiwi", "lemon", "mango", "nectarine", "orange", "quince" };
    size_t nw = sizeof words / sizeof words[0];
    qsort(words, nw, sizeof words[0], cmp_str);
    for (size_t i = 0; i < nw; i++) printf("%s%c", words[i], i + 1 == nw ? '\n' : ' ');
    const char *key = "kiwi";
    const char **hit = bsearch(&key, words, nw, sizeof words[0], cmp_str);
    printf("kiwi at index %ld\n", hit ? (long)(hit - words) : -1L);

    struct person people[] = { { "zoe", 31, 1.5 }, { "adam", 25, 2.5 }, { "bob", 31, 0.5 },
                               { "carl", 19, 9.0 }, { "dina", 25, 3.25 }, { "eve", 44, 7.75 } };
    size_t np = sizeof people / sizeof people[0];
    qsort(people, np, sizeof people[0], cmp_person);
    for (size_t i = 0; i < np; i++) printf("%s:%d:%.2f ", people[i].name, people[i].age, people[i].score);
    printf("\n");

    double d[1000];
    for (int i = 0; i < 1000; i++) d[i] = (double)(next() % 100000) / 7.0;
    qsort(d, 1000, sizeof d[0], cmp_double);
    printf("doubles: %.6f .. %.6f\n", d[0], d[999]);
    for (int i = 1; i < 1000; i++) if (d[i - 1] > d[i]) ok = 0;

    printf("%s\n", ok ? "qsort_callback: ok" : "qsort_callback: MISMATCH");
    return ok ? 0 : 1;
}
