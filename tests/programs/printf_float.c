// dbi-cflags: -lm
/* printf of floating point values in every format, strtod round trips and a
 * few libm functions on inputs the compiler cannot fold. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile double inputs[] = { 0.0, -0.0, 1.0, 0.1, 1.0 / 3.0, 2.5, 3.5, -2.5, 1e-300, 1e300,
                                    123456789.123456789, 6.02214076e23, 1.602176634e-19, 5e-324, DBL_MAX };

int main(void) {
    int ok = 1;
    size_t n = sizeof inputs / sizeof inputs[0];
    for (size_t i = 0; i < n; i++) {
        double x = inputs[i];
        printf("%zu: %%f=%f %%e=%e %%g=%g %%.17g=%.17g %%a=%a\n", i, x, x, x, x, x);
    }
    printf("rounding: %.0f %.0f %.0f %.0f %.1f %.2f\n", 0.5, 1.5, 2.5, -0.5, 0.05, 2.675);
    printf("widths: [%10.3f] [%-10.3f] [%+.2e] [%010.4f] [% g]\n", 3.14159, 2.71828, 12345.678, -1.5, 42.0);
    volatile float f = 1.1f;
    printf("float: %.9g %a\n", (double)f, (double)f);
    volatile long double ld = 1.0L / 3.0L;
    printf("long double: %.21Lg\n", (long double)ld);
    printf("specials: %f %f %f %e\n", (double)INFINITY, (double)-INFINITY, (double)NAN, (double)INFINITY);

    char buf[64];
    int round_trips = 0;
    for (size_t i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "%.17g", inputs[i]);
        double back = strtod(buf, NULL);
        if (memcmp(&back, (const void *)&inputs[i], sizeof back) == 0) round_trips++;
    }
    printf("strtod round trips: %d of %zu\n", round_trips, n);
    if (round_trips != (int)n) ok = 0;

    volatile double a = 0.7, b = 2.0, c = 10.0;
    printf("sqrt %.17g pow %.17g exp %.17g log %.17g\n", sqrt(a), pow(b, a), exp(a), log(c));
    printf("sin %.17g cos %.17g atan2 %.17g\n", sin(a), cos(a), atan2(a, b));
    printf("floor %g ceil %g trunc %g round %g fmod %g\n", floor(-a), ceil(-a), trunc(-2.7), round(2.5), fmod(c, 3.0));
    double acc = 0;
    for (int i = 1; i <= 100000; i++) acc += 1.0 / ((double)i * (double)i);
    printf("basel partial sum %.15f (pi^2/6 = %.15f)\n", acc, M_PI * M_PI / 6);
    printf("%s\n", ok ? "printf_float: ok" : "printf_float: MISMATCH");
    return ok ? 0 : 1;
}
