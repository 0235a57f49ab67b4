/* Monotonic wall time and the summary statistics of repeated timings. */
#ifndef SOL_UTIL_CLOCK_H
#define SOL_UTIL_CLOCK_H

/* Seconds on the monotonic clock. */
double sol_now_s(void);

/* Sorts v[0..n) and returns its median (n >= 1); min and max may be NULL. */
double sol_median(double *v, int n, double *min, double *max);

#endif
