/* Global and static data reached RIP-relatively (PIE) or absolutely (non-PIE):
 * arrays read and written, string tables, const tables, static locals,
 * pointers to globals compared. Addresses are never printed. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int global_array[1024];
int initialised_array[8] = { 3, 1, 4, 1, 5, 9, 2, 6 };
static long static_counter = 5;
static char static_buffer[256];
const uint32_t const_table[16] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                   0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x100 };
static const char *const string_table[] = { "zero", "one", "two", "three", "four", "five", "six" };
struct record { int id; const char *label; double weight; };
static struct record records[] = { { 1, "alpha", 0.5 }, { 2, "beta", 1.5 }, { 3, "gamma", 2.25 } };
int *global_ptr = &global_array[10];
const char *const *table_ptr = string_table;
unsigned char byte_array[3] = { 0xfe, 0x01, 0x7f };
volatile short shorts[5] = { -1, 2, -3, 4, -5 };

static __attribute__((noinline)) int *get_global(void) { return global_array; }
static __attribute__((noinline)) long *get_static(void) { return &static_counter; }
static __attribute__((noinline)) long next_id(void) { static long id = 100; return id++; }

int main(void) {
    int ok = 1;
    for (int i = 0; i < 1024; i++) global_array[i] = i * i - 3 * i;
    long sum = 0;
    for (int i = 0; i < 1024; i += 3) sum += global_array[i];
    printf("global_array sum = %ld\n", sum);
    int prod = 1;
    for (int i = 0; i < 8; i++) prod = prod * 3 + initialised_array[i];
    printf("initialised_array fold = %d\n", prod);
    initialised_array[7] = 600;
    printf("after write: %d\n", initialised_array[7]);

    static_counter *= 7;
    *get_static() += 1;
    printf("static_counter = %ld\n", static_counter);
    for (int i = 0; i < 3; i++) printf("next_id = %ld\n", next_id());

    uint32_t x = 0;
    for (int i = 0; i < 16; i++) x = (x << 1) ^ const_table[i];
    printf("const_table fold = %08x\n", x);

    size_t len = 0;
    for (size_t i = 0; i < sizeof string_table / sizeof string_table[0]; i++) {
        strcat(static_buffer, string_table[i]);
        strcat(static_buffer, ",");
        len += strlen(table_ptr[i]);
    }
    printf("static_buffer = %s (%zu chars in table)\n", static_buffer, len);

    double w = 0;
    for (int i = 0; i < 3; i++) { records[i].weight *= 2; w += records[i].weight * records[i].id; }
    printf("records: %s %s %s, weighted %.3f\n", records[0].label, records[1].label, records[2].label, w);

    /* Pointer relationships, not values. */
    printf("global_ptr == &global_array[10]: %s\n", global_ptr == &global_array[10] ? "yes" : "no");
    printf("get_global() == global_array: %s\n", get_global() == global_array ? "yes" : "no");
    printf("&global_array[1000] - &global_array[0] = %td\n", &global_array[1000] - &global_array[0]);
    printf("*global_ptr = %d\n", *global_ptr);
    printf("table_ptr == string_table: %s\n", table_ptr == string_table ? "yes" : "no");
    printf("byte_array: %u %u %u\n", byte_array[0], byte_array[1], byte_array[2]);
    int ss = 0;
    for (int i = 0; i < 5; i++) { shorts[i] = (short)(shorts[i] * 3); ss += shorts[i]; }
    printf("shorts sum = %d\n", ss);
    /* Data and code sit in one image: the distance between two globals is the
     * same in every run, even though the base moves with ASLR. */
    static ptrdiff_t first_distance;
    ptrdiff_t d = (char *)&static_counter - (char *)global_array;
    first_distance = d;
    printf("distance between globals is stable: %s\n", first_distance == (char *)get_static() - (char *)get_global() ? "yes" : "no");
    if (global_ptr != &global_array[10] || *global_ptr != 70 || static_counter != 36) ok = 0;
    printf("%s\n", ok ? "rip_relative: ok" : "rip_relative: MISMATCH");
    return ok ? 0 : 1;
}
