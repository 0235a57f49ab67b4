/* Measured CPU ceilings: streaming memory bandwidth (read, copy, triad),
 * cache bandwidth per level, fp32 FMA peak on one and all cores, and the
 * int8 dot rate of the q8 kernels on all cores (AVX2 CPUs). Each
 * figure is the median of repetitions with its spread. */
#ifndef SOL_KERNELS_CPU_PROBE_H
#define SOL_KERNELS_CPU_PROBE_H

#include <stdint.h>

#include "kernels/probe.h"
#include "util/err.h"

typedef struct sol_probe_config {
    int threads;             /* > 0 */
    int reps;                /* >= 5 */
    int64_t buffer_bytes;    /* streaming buffer; >= 8x the last-level cache */
    int64_t cache_bytes[3];  /* L1d, L2, L3 sizes (0 = skip that level) */
    sol_probe_progress progress;
    void *user;
} sol_probe_config;

/* A streaming-read check to run between other measurements (sol bench
 * interleaves it with decode repetitions, since this machine's bandwidth
 * moves from minute to minute): its own pool of `threads` and a huge-page
 * buffer of `bytes`, read once per call with the probe's AVX2 kernel. */
typedef struct sol_read_check sol_read_check;
int sol_read_check_open(int threads, int64_t bytes, sol_read_check **out, sol_err *err);
double sol_read_check_run(sol_read_check *c); /* bytes per second of one pass */
void sol_read_check_close(sol_read_check *c);

/* Runs every probe on cfg->threads threads; fills out[0..*n) (at most cap). */
int sol_probe_cpu(const sol_probe_config *cfg, sol_probe_result *out, int cap, int *n, sol_err *err);

#endif
