/* One measured ceiling, as every backend's probe reports it (`sol hw
 * probe`): the median of repetitions with their range and what was done. */
#ifndef SOL_KERNELS_PROBE_H
#define SOL_KERNELS_PROBE_H

typedef struct sol_probe_result {
    char kind[32];     /* mem_read_bw, mem_copy_bw, l2_read_bw, fp32_peak, bf16_peak, int8_peak, launch_interval, ... */
    char unit[16];     /* B/s, FLOP/s, OP/s or s */
    char method[96];
    double median, min, max;
    int reps;
} sol_probe_result;

typedef void (*sol_probe_progress)(void *user, const char *what, int step, int steps);

#endif
