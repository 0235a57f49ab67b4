// What the autotuner's trials share (tune_trial.cu: the matvec's,
// attn_trial.cu: decode attention's): the random data's generator, opening
// the device, the warm-up / flush / CUDA-event timing, the one poisoned run
// whose output is judged, and the CUPTI counting after the timing. A
// problem P is the trial's own struct; these read its fields by name:
// device, stream, start, stop, flush, flush_bytes (the L2 flush), y (the
// output) and ws, ws_bytes (a workspace, nullptr / 0 when none).
// Single-threaded, as the CLI calls the trials.
#ifndef SOL_KERNELS_CUDA_TRIAL_RUN_CUH
#define SOL_KERNELS_CUDA_TRIAL_RUN_CUH

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <system_error>
#include <thread>
#include <vector>

#include "kernels/cuda/counters.h"
#include "kernels/cuda/cuda_util.h"

namespace sol_trial {

constexpr int kWarmups = 3;

struct rng { // splitmix64
    uint64_t s;
    uint64_t next()
    {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    float uniform() { return (float)((double)(next() >> 40) / 16777216.0) * 2.0f - 1.0f; } // [-1, 1), exact
    uint8_t byte() { return (uint8_t)(next() >> 56); }
};

// The trials' counter (opened at the first counted trial, one for every
// kind of trial: CUPTI takes one session a device) and whether its
// "counting is off" notice was handed out.
inline sol_cuda_counting g_counting;
inline bool g_counting_noticed = false;

inline void close_counting()
{
    sol_cuda_counting_close(&g_counting);
    g_counting_noticed = false;
}

// The device made current, its architecture (80, 90, ...) and L2 size; the
// one-line "no CUDA device" where there is none.
inline int open_device(int device, int *sm, int64_t *l2_bytes, sol_err *err)
{
    int driver = 0, count = 0;
    if (cudaDriverGetVersion(&driver) != cudaSuccess || driver == 0)
        return sol_cuda_fail(err, "no CUDA device: no NVIDIA driver is loaded on this machine");
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count < 1) {
        cudaGetLastError();
        return sol_cuda_fail(err, "no CUDA device: %s", e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports none");
    }
    if (device < 0 || device >= count)
        return sol_cuda_fail(err, "--device %d: this machine has %d CUDA device%s (0..%d)", device, count,
                             count == 1 ? "" : "s", count - 1);
    CUDA_OK(cudaSetDevice(device));
    cudaDeviceProp prop;
    CUDA_OK(cudaGetDeviceProperties(&prop, device));
    *sm = prop.major * 10 + prop.minor;
    *l2_bytes = prop.l2CacheSize;
    return 0;
}

// ---- running and timing ------------------------------------------------------

struct timing {
    double median, min, max;
};

// Whether the device context is gone after a failed launch or run: a
// launch's own error (resources, configuration) is cleared and the device
// still synchronizes; a fault (illegal address, ...) stays.
inline bool context_lost()
{
    cudaGetLastError();
    return cudaDeviceSynchronize() != cudaSuccess;
}

// `run` (enqueues one run on p.stream, returns its launch error) warmed up
// and timed reps times, each after the L2 flush. cudaSuccess, or the first
// error.
template <typename P, typename F> cudaError_t time_runs(P &p, int reps, F run, timing *out)
{
    cudaError_t e = cudaSuccess;
    for (int i = 0; i < kWarmups && e == cudaSuccess; i++)
        e = run();
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(p.stream);
    std::vector<double> secs;
    for (int i = 0; i < reps && e == cudaSuccess; i++) {
        float ms = 0;
        e = cudaMemsetAsync(p.flush, i & 0xff, p.flush_bytes, p.stream); // untimed: before the start event
        if (e == cudaSuccess)
            e = cudaEventRecord(p.start, p.stream);
        if (e == cudaSuccess)
            e = run();
        if (e == cudaSuccess)
            e = cudaEventRecord(p.stop, p.stream);
        if (e == cudaSuccess)
            e = cudaEventSynchronize(p.stop);
        if (e == cudaSuccess)
            e = cudaEventElapsedTime(&ms, p.start, p.stop);
        secs.push_back(ms * 1e-3);
    }
    if (e != cudaSuccess)
        return e;
    std::sort(secs.begin(), secs.end());
    size_t n = secs.size();
    out->median = n % 2 ? secs[n / 2] : 0.5 * (secs[n / 2 - 1] + secs[n / 2]);
    out->min = secs.front();
    out->max = secs.back();
    return cudaSuccess;
}

// p.y's first n floats poisoned (NaN bytes), one run, read back:
// cudaSuccess or the error.
template <typename P, typename F> cudaError_t answer(P &p, size_t n, F run, std::vector<float> *y)
{
    cudaError_t e = cudaMemsetAsync(p.y, 0xff, n * sizeof(float), p.stream);
    if (e == cudaSuccess && p.ws)
        e = cudaMemsetAsync(p.ws, 0xff, p.ws_bytes, p.stream); // stale partial results must not pass for a right answer
    if (e == cudaSuccess)
        e = run();
    y->assign(n, 0.0f);
    if (e == cudaSuccess)
        e = cudaMemcpyAsync(y->data(), p.y, n * sizeof(float), cudaMemcpyDeviceToHost, p.stream);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(p.stream);
    return e;
}

// ---- counting ------------------------------------------------------------------

// One run as CUPTI replays it: the flush before each pass (outside the
// counted range, as before each timed run), then the run, waited for.
template <typename P, typename F> struct counted_run {
    P *p;
    F *run;
    static int prepare(void *user, sol_err *err)
    {
        P &p = *static_cast<counted_run *>(user)->p;
        cudaError_t e = cudaMemsetAsync(p.flush, 0x5a, p.flush_bytes, p.stream);
        if (e == cudaSuccess)
            e = cudaStreamSynchronize(p.stream);
        return e == cudaSuccess ? 0 : sol_cuda_fail(err, "the L2 flush before a counted run: %s", cudaGetErrorString(e));
    }
    static int run_once(void *user, sol_err *err)
    {
        counted_run *c = static_cast<counted_run *>(user);
        cudaError_t e = (*c->run)();
        if (e == cudaSuccess)
            e = cudaStreamSynchronize(c->p->stream);
        return e == cudaSuccess ? 0 : sol_cuda_fail(err, "a counted run: %s", cudaGetErrorString(e));
    }
};

// The sol metric set of one run into out->counters when `counters` asks
// and CUPTI can; counting off is a notice (handed out once), never an
// error; the run failing under CUPTI is.
template <typename P, typename F> int count_run(P &p, F run, int counters, sol_cuda_mv_result *out, sol_err *err)
{
    if (!counters)
        return 0;
    counted_run<P, F> c = {&p, &run};
    sol_cupti_work work = {counted_run<P, F>::prepare, counted_run<P, F>::run_once, &c};
    int rc = sol_cuda_count(&g_counting, p.device, sol_cupti_sol_metrics, SOL_CUPTI_N_METRICS, &work, out->counters,
                            err);
    if (rc < 0)
        return err->code ? err->code : SOL_ERR_RUNTIME;
    out->counted = rc == 1;
    out->counter_passes = rc == 1 ? (int)sol_cupti_counter_passes(g_counting.counter) : 0;
    if (rc == 0 && !g_counting_noticed) {
        snprintf(out->counter_notice, sizeof out->counter_notice, "%s", g_counting.notice);
        g_counting_noticed = true;
    }
    return 0;
}

// A right answer's time (reps runs, time_runs) and, when asked, its
// counters, into out. A fault that takes the context goes to lost(e)
// (which records the crash and returns the error); a counting failure that
// lost it releases the problem (release()) and returns the error.
template <typename P, typename F, typename Lost, typename Release>
int time_and_count(P &p, F run, int reps, int counters, sol_cuda_mv_result *out, Lost lost, Release release,
                   sol_err *err)
{
    timing t;
    cudaError_t e = time_runs(p, reps, run, &t);
    if (e != cudaSuccess) {
        if (context_lost())
            return lost(e);
        return sol_cuda_fail(err, "%s: timing: %s", out->label, cudaGetErrorString(e));
    }
    out->median_s = t.median;
    out->min_s = t.min;
    out->max_s = t.max;
    out->reps = reps;
    if (int rc = count_run(p, run, counters, out, err)) {
        if (context_lost()) // the problem's buffers went with the context
            release();
        return rc;
    }
    return 0;
}

// work(0) .. work(threads - 1) on threads threads (this one included); a
// thread that cannot be started runs its share here.
template <typename F> void run_on_threads(unsigned threads, F work)
{
    std::vector<std::thread> pool;
    for (unsigned i = 1; i < threads; i++) {
        try {
            pool.emplace_back(work, i);
        } catch (const std::system_error &) {
            work(i);
        }
    }
    work(0);
    for (std::thread &th : pool)
        th.join();
}

// A trial problem's device memory, events and stream freed, on its device
// (nothing when it never had one). After a lost context these calls fail:
// there is nothing more to do, and the error is cleared.
inline void free_problem_resources(int device, std::initializer_list<void *> buffers, cudaEvent_t start,
                                   cudaEvent_t stop, cudaStream_t stream)
{
    if (device >= 0)
        cudaSetDevice(device);
    for (void *ptr : buffers)
        if (ptr)
            cudaFree(ptr);
    if (start)
        cudaEventDestroy(start);
    if (stop)
        cudaEventDestroy(stop);
    if (stream)
        cudaStreamDestroy(stream);
    cudaGetLastError();
}

// A trial whose fault took the device context: recorded as crashed, its
// problem released (release(p): the trial file's own, found by argument-
// dependent lookup beside its problem type), and the error returned.
template <typename P> int lost(P &p, sol_cuda_mv_result *out, cudaError_t e, sol_err *err)
{
    out->status = SOL_CUDA_TRIAL_CRASHED;
    snprintf(out->why, sizeof out->why, "crashed: %s", cudaGetErrorString(e));
    release(p);
    return sol_cuda_fail(err, "%s faulted (%s) and took the device context with it; it is recorded as wrong, and a "
                         "rerun goes on from the trials stored", out->label, cudaGetErrorString(e));
}

inline void result_init(sol_cuda_mv_result *out)
{
    memset(out, 0, sizeof *out);
    out->status = SOL_CUDA_TRIAL_OK;
    out->median_s = out->min_s = out->max_s = -1;
}

struct library { // unloads on every return
    cudaLibrary_t lib = nullptr;
    ~library()
    {
        if (lib)
            cudaLibraryUnload(lib);
    }
};

} // namespace sol_trial

#endif
