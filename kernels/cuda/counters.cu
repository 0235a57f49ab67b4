// kernels/cuda/counters.h: the device's context for CUPTI (the runtime's
// primary context, through the driver entry point: the plugin does not
// link libcuda), the counter opened once, and counting turned off with a
// notice at the first failure that is CUPTI's rather than the work's.
#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>

#include "kernels/cuda/counters.h"
#include "kernels/cuda/cupti_impl.h"
#include "kernels/cuda/fail.h"

const char *const sol_cuda_step_metrics[SOL_CUDA_STEP_N_METRICS] = {
    "dram__bytes_read.sum",
    "dram__bytes_write.sum",
    "gpu__time_duration.sum",
};

namespace {

// The work as CUPTI runs it, remembering whether the work (not CUPTI) failed.
struct guarded {
    const sol_cupti_work *work;
    bool failed;
};

int guarded_prepare(void *user, sol_err *err)
{
    guarded *g = static_cast<guarded *>(user);
    int rc = g->work->prepare ? g->work->prepare(g->work->user, err) : 0;
    g->failed |= rc != 0;
    return rc;
}

int guarded_run(void *user, sol_err *err)
{
    guarded *g = static_cast<guarded *>(user);
    int rc = g->work->run(g->work->user, err);
    g->failed |= rc != 0;
    return rc;
}

void turn_off(sol_cuda_counting *c, const sol_err *why)
{
    c->off = true;
    snprintf(c->notice, sizeof c->notice, "%s", why->msg[0] ? why->msg : "CUPTI failed; hardware counters off");
    sol_cupti_counter_free(c->counter);
    c->counter = nullptr;
}

// The current context (the device's primary one, made current by a runtime call).
int current_context(int device, CUcontext *ctx, sol_err *err)
{
    void *fn = nullptr;
    cudaDriverEntryPointQueryResult found;
    if (cudaSetDevice(device) != cudaSuccess || cudaFree(nullptr) != cudaSuccess)
        return sol_cuda_failc(err, SOL_ERR_RUNTIME, "CUDA device %d has no context to count on", device);
    if (cudaGetDriverEntryPointByVersion("cuCtxGetCurrent", &fn, 12000, cudaEnableDefault, &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess || !fn)
        return sol_cuda_failc(err, SOL_ERR_RUNTIME, "the driver has no cuCtxGetCurrent");
    CUresult r = reinterpret_cast<CUresult (*)(CUcontext *)>(fn)(ctx);
    if (r != CUDA_SUCCESS || !*ctx)
        return sol_cuda_failc(err, SOL_ERR_RUNTIME, "cuCtxGetCurrent: no current context on device %d", device);
    return SOL_OK;
}

int open_counter(sol_cuda_counting *c, int device, const char *const *metrics, size_t n, sol_err *err)
{
    CUcontext ctx = nullptr;
    int rc = c->cupti ? SOL_OK : sol_cupti_open(&c->cupti, err);
    if (rc == SOL_OK)
        rc = current_context(device, &ctx, err);
    if (rc == SOL_OK)
        rc = sol_cupti_counter_new(c->cupti, device, ctx, metrics, n, &c->counter, err);
    if (rc == SOL_OK)
        c->device = device;
    return rc;
}

} // namespace

int sol_cuda_count(sol_cuda_counting *c, int device, const char *const *metrics, size_t n_metrics,
                   const sol_cupti_work *work, double *values, sol_err *err)
{
    if (c->off)
        return 0;
    sol_err why = {0, ""};
    if (c->counter && c->device != device) { // another device: its own counter
        sol_cupti_counter_free(c->counter);
        c->counter = nullptr;
    }
    if (!c->counter && open_counter(c, device, metrics, n_metrics, &why) != SOL_OK) {
        if (why.code != SOL_CUPTI_UNAVAILABLE) // an error, said as one line: counting stops, the work goes on
            snprintf(why.msg + strlen(why.msg), sizeof why.msg - strlen(why.msg), "; %s", sol_cupti_timed_only);
        turn_off(c, &why);
        return 0;
    }
    guarded g = {work, false};
    sol_cupti_work w = {guarded_prepare, guarded_run, &g};
    if (sol_cupti_count(c->counter, &w, values, &why) == SOL_OK)
        return 1;
    if (g.failed) {
        *err = why;
        return -1;
    }
    snprintf(why.msg + strlen(why.msg), sizeof why.msg - strlen(why.msg), "; %s", sol_cupti_timed_only);
    turn_off(c, &why);
    return 0;
}

void sol_cuda_counting_close(sol_cuda_counting *c)
{
    sol_cupti_counter_free(c->counter);
    sol_cupti_close(c->cupti);
    *c = sol_cuda_counting();
}
