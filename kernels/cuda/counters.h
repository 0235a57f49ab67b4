// Hardware counters inside the plugin (counters.cu): a device's CUPTI
// counter, opened at first use and shared by the tuner's trials and the
// engine's counted steps. Counting never fails the work it counts: no
// CUPTI, no privileges or any CUPTI error turns counting off with one
// notice; only the work's own error is an error.
#ifndef SOL_KERNELS_CUDA_COUNTERS_H
#define SOL_KERNELS_CUDA_COUNTERS_H

#include "kernels/cuda/cupti_host.h"

struct sol_cuda_counting {
    int device = -1;
    sol_cupti *cupti = nullptr;
    sol_cupti_counter *counter = nullptr;
    bool off = false;     // counting failed once: the rest is timed only
    char notice[sizeof(sol_err::msg)] = ""; // why it is off (one line), "" while it works
};

// The DRAM metrics a decode step is counted with (one pass on GA100, AD102
// and GH100): bytes read, bytes written, the range's GPU time.
enum { SOL_CUDA_STEP_DRAM_READ, SOL_CUDA_STEP_DRAM_WRITE, SOL_CUDA_STEP_DURATION_NS, SOL_CUDA_STEP_N_METRICS };
extern const char *const sol_cuda_step_metrics[SOL_CUDA_STEP_N_METRICS];

// Counts work on device (current on this thread) with the metrics (the
// same set on every call for one counting): 1 and values filled; 0 when
// counting is off (c->notice says why); -1 when the work itself failed
// (err says how).
int sol_cuda_count(sol_cuda_counting *c, int device, const char *const *metrics, size_t n_metrics,
                   const sol_cupti_work *work, double *values, sol_err *err);
void sol_cuda_counting_close(sol_cuda_counting *c);

#endif
