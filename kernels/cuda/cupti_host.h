/* The host half of the autotuner's hardware counters (issue 15): libcupti
 * opened at run time, the CUPTI Profiler Host API's configuration image and
 * pass count for a chip and a metric set (no GPU needed), and the evaluation
 * of counter data the Range Profiler collected on a GPU into metric values.
 *
 * Plain C at this seam; the implementation (cupti_host.cpp) is C++ because
 * cupti_profiler_host.h includes <string>. Every entry returns SOL_OK or
 * fills err and returns its code. SOL_CUPTI_UNAVAILABLE is not a failure:
 * CUPTI cannot count on this machine (not installed, too old for the host
 * API, or not allowed to read counters); err->msg is then a one-line notice
 * to print once, and the caller times its trials without counters. */
#ifndef SOL_KERNELS_CUDA_CUPTI_HOST_H
#define SOL_KERNELS_CUDA_CUPTI_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* err->code and return value when counters cannot be had here. Not an exit
 * code: a caller turns it into a notice and goes on timing. */
#define SOL_CUPTI_UNAVAILABLE 3

/* Names the one libcupti file to open (nothing else is tried when set). */
#define SOL_CUPTI_LIB_ENV "SOL_CUPTI_LIB"

/* The sol metric set, in this order (sol_cupti_sol_metrics). Names checked
 * against the CUDA 13.0 host API for GA100, AD102 and GH100. */
enum sol_cupti_metric {
    SOL_CUPTI_DRAM_READ_BYTES,    /* dram__bytes_read.sum, byte */
    SOL_CUPTI_DRAM_WRITE_BYTES,   /* dram__bytes_write.sum, byte */
    SOL_CUPTI_L2_BYTES,           /* lts__t_bytes.sum, byte: every L2 slice request */
    SOL_CUPTI_SM_THROUGHPUT_PCT,  /* sm__throughput.avg.pct_of_peak_sustained_elapsed */
    SOL_CUPTI_DRAM_THROUGHPUT_PCT,/* gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed */
    SOL_CUPTI_DURATION_NS,        /* gpu__time_duration.sum, nanosecond */
    SOL_CUPTI_N_METRICS
};
extern const char *const sol_cupti_sol_metrics[SOL_CUPTI_N_METRICS];

typedef struct sol_cupti sol_cupti;               /* the loaded library */
typedef struct sol_cupti_config sol_cupti_config; /* one chip's metric configuration */

/* Opens libcupti: $SOL_CUPTI_LIB when set, else the loader's search path,
 * then the toolkit this plugin was built with, $CUDA_HOME, $CUDA_PATH and
 * /usr/local/cuda (extras/CUPTI/lib64, lib64, lib). SOL_CUPTI_UNAVAILABLE
 * when none loads or the one found lacks the host API. */
int sol_cupti_open(sol_cupti **out, sol_err *err);
/* Frees the handle; the library itself stays loaded for the process (it
 * leaks what its constructors allocate when unloaded). */
void sol_cupti_close(sol_cupti *cupti);
const char *sol_cupti_path(const sol_cupti *cupti); /* the file opened */

/* The chip names the host API configures for ("GA100", "GH100", ...); the
 * array belongs to CUPTI. */
int sol_cupti_chips(sol_cupti *cupti, const char *const **names, size_t *n, sol_err *err);

/* Sorts a CUPTI result: 0 for success; SOL_CUPTI_UNAVAILABLE with a notice
 * for the results that mean "no counters here" (insufficient privileges,
 * virtualised, MIG, CMP, WSL, confidential computing, unsupported device);
 * SOL_ERR_RUNTIME naming the call otherwise. For the target half's calls. */
int sol_cupti_result(const sol_cupti *cupti, int result, const char *call, sol_err *err);

/* Builds the configuration image for the metrics on the chip (Range
 * Profiler) and counts the replay passes it needs. counter_availability is
 * the device's image from cuptiProfilerGetCounterAvailability, or NULL
 * offline. An unknown chip or a metric the chip rejects is an error naming
 * it. The config keeps cupti: free it before closing cupti. */
int sol_cupti_config_new(sol_cupti *cupti, const char *chip, const char *const *metrics, size_t n_metrics,
                         const uint8_t *counter_availability, sol_cupti_config **out, sol_err *err);
void sol_cupti_config_free(sol_cupti_config *cfg);
const uint8_t *sol_cupti_config_image(const sol_cupti_config *cfg, size_t *bytes);
size_t sol_cupti_config_passes(const sol_cupti_config *cfg);
size_t sol_cupti_config_metric_count(const sol_cupti_config *cfg);
/* Metric i's name and its unit as CUPTI states it ("byte", "percent",
 * "nanosecond"). */
const char *sol_cupti_config_metric(const sol_cupti_config *cfg, size_t i);
const char *sol_cupti_config_unit(const sol_cupti_config *cfg, size_t i);

/* Counter data from the GPU (the Range Profiler's image after
 * cuptiRangeProfilerDecodeData): how many ranges it holds, and the values
 * of every metric of cfg for one range, values[0..metric_count). */
int sol_cupti_counter_ranges(const sol_cupti_config *cfg, const uint8_t *counter_data, size_t bytes,
                             size_t *n_ranges, sol_err *err);
int sol_cupti_evaluate(const sol_cupti_config *cfg, const uint8_t *counter_data, size_t bytes, size_t range,
                       double *values, sol_err *err);

/* ---- the target half (cupti_count.cpp): counting on a GPU ----
 *
 * A counter is the Range Profiler enabled on one CUDA context, configured
 * for a metric set on that device's chip, with user ranges replayed by the
 * caller: sol_cupti_count runs the work once per pass the set needs, each
 * run inside one range, and evaluates the range. The work must do the same
 * thing every time it runs (a kernel on the same inputs, a graph replay). */
typedef struct sol_cupti_counter sol_cupti_counter;

/* The work a count replays: prepare (may be NULL) runs before each pass,
 * outside the range (an L2 flush, say); run enqueues the counted work and
 * waits for it. Each returns 0 or fills err. */
typedef struct sol_cupti_work {
    int (*prepare)(void *user, sol_err *err);
    int (*run)(void *user, sol_err *err);
    void *user;
} sol_cupti_work;

/* A counter on CUDA device `device` through its context cu_context (a
 * CUcontext, current on this thread), for the metrics. SOL_CUPTI_UNAVAILABLE
 * with a notice when the device cannot count here (privileges, MIG,
 * virtualised); an error naming the call otherwise. */
int sol_cupti_counter_new(sol_cupti *cupti, int device, void *cu_context, const char *const *metrics,
                          size_t n_metrics, sol_cupti_counter **out, sol_err *err);
void sol_cupti_counter_free(sol_cupti_counter *c);
const char *sol_cupti_counter_chip(const sol_cupti_counter *c);
size_t sol_cupti_counter_passes(const sol_cupti_counter *c);
/* Counts the work: values[0..n_metrics) of the one range, in the metrics'
 * order. A pass the work fails in still closes its range (the profiler
 * stays usable) and the work's error is returned. */
int sol_cupti_count(sol_cupti_counter *c, const sol_cupti_work *work, double *values, sol_err *err);

#ifdef __cplusplus
}
#endif

#endif
