/* Timing helpers shared by the engine, the probes, the tuner and the CLI. */
#include "util/clock.h"

#include <stdlib.h>
#include <time.h>

double sol_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double sol_median(double *v, int n, double *min, double *max)
{
    qsort(v, (size_t)n, sizeof *v, by_value);
    if (min)
        *min = v[0];
    if (max)
        *max = v[n - 1];
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
