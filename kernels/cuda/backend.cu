// The engine's CUDA backend (kernels/backend.h, ABI 6), the part that is not
// arithmetic: device memory, weights copied to the device once, the step's
// tokens uploaded by begin_step, one CUDA event per op mark on one stream,
// and the first error of any launch or of the stream, blamed on the op it
// was marked under. The kernels are in ops.cu.
#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/fit.h"
#include "kernels/cuda/tuned.h"

// "cuda device 0 (NVIDIA H100 80GB HBM3), layer 3 attention: cudaLaunchKernel:
// CUDA error: an illegal memory access was encountered": the device, the op,
// the call, the error. A cuBLAS failure arrives as cudaErrorUnknown with its
// status kept in c->cublas_status (gemm.cu): the line names the status
// instead. An asynchronous fault surfaces at the next call that waits
// (cudaStreamSynchronize), still blamed on the op whose mark it came under.
int sol_cuda_note(cuda_ctx *c, cudaError_t e, const char *call)
{
    if (e != cudaSuccess && !c->failed) {
        c->failed = 1;
        char where[32] = "", what[160], api[64] = "";
        if (c->layer >= 0)
            snprintf(where, sizeof where, "layer %d ", c->layer);
        if (call) // the name, not the arguments
            snprintf(api, sizeof api, "%.*s: ", (int)strcspn(call, "("), call);
        if (e == cudaErrorUnknown && c->cublas_status != CUBLAS_STATUS_SUCCESS)
            snprintf(what, sizeof what, "cuBLAS error: %s (%s)", cublasGetStatusName(c->cublas_status),
                     cublasGetStatusString(c->cublas_status));
        else
            snprintf(what, sizeof what, "CUDA error: %s", cudaGetErrorString(e));
        snprintf(c->error, sizeof c->error, "cuda device %d (%s), %s%s: %s%s", c->device,
                 c->device_name[0] ? c->device_name : "?", where, c->op ? c->op : "?", api, what);
    }
    return c->failed;
}

namespace {

int report(cuda_ctx *c, sol_err *err)
{
    return c->failed ? sol_cuda_fail(err, "%s", c->error) : 0;
}

int cuda_alloc(sol_backend *b, size_t bytes, void **out, sol_err *err)
{
    (void)b;
    *out = nullptr;
    cudaError_t e = cudaMalloc(out, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        cudaGetLastError(); // an allocation failure is not sticky
        return sol_cuda_fail(err, "cannot allocate %zu MiB of GPU memory: %s", bytes >> 20, cudaGetErrorString(e));
    }
    return 0;
}

void cuda_free(sol_backend *b, void *p)
{
    (void)b;
    if (p)
        cudaFree(p);
}

int cuda_upload(sol_backend *b, void *dst, const void *src, size_t bytes, sol_err *err)
{
    cuda_ctx *c = cuda_of(b);
    sol_cuda_flush(c); // a sync point: what the step recorded runs first
    SOL_CUDA_NOTE(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream));
    SOL_CUDA_NOTE(c, cudaStreamSynchronize(c->stream)); // src may be reused on return
    return report(c, err);
}

int cuda_download(sol_backend *b, void *dst, const void *src, size_t bytes, sol_err *err)
{
    cuda_ctx *c = cuda_of(b);
    if (!sol_cuda_flush(c))
        SOL_CUDA_NOTE(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream));
    SOL_CUDA_NOTE(c, cudaStreamSynchronize(c->stream));
    return report(c, err);
}

size_t view_bytes(const sol_weight_view *v) { return (size_t)v->rows * v->row_bytes; }
size_t aligned256(size_t n) { return (n + 255) / 256 * 256; }

// Refuses, before allocating anything, weights larger than the device's
// free memory, naming both.
int check_fits(cuda_ctx *c, size_t bytes, sol_err *err)
{
    size_t free_bytes = 0, total_bytes = 0;
    cudaError_t e = cudaMemGetInfo(&free_bytes, &total_bytes);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return sol_cuda_fail(err, "cuda device %d: cudaMemGetInfo: %s", c->device, cudaGetErrorString(e));
    }
    char why[sizeof err->msg];
    if (sol_cuda_weights_fit(bytes, free_bytes, total_bytes, c->device, c->device_name, why, sizeof why))
        return sol_cuda_fail(err, "%s", why);
    return 0;
}

// Every distinct matrix in one device allocation (the handle), 256-byte
// aligned each; views with the same data share the copy.
int cuda_load_weights(sol_backend *b, sol_weight_view *const *views, int n, void **handle, sol_err *err)
{
    *handle = nullptr;
    cuda_ctx *c = cuda_of(b);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        int shared = 0;
        for (int j = 0; j < i && !shared; j++)
            shared = views[j]->data == views[i]->data;
        if (!shared)
            total += aligned256(view_bytes(views[i]));
    }
    if (check_fits(c, total, err))
        return err->code;
    uint8_t *base = nullptr;
    int rc = cuda_alloc(b, total, reinterpret_cast<void **>(&base), err);
    size_t at = 0;
    for (int i = 0; i < n && !rc; i++) {
        const void *orig = views[i]->data;
        if (orig >= static_cast<const void *>(base) && orig < static_cast<const void *>(base + total))
            continue; // re-pointed with an earlier view
        rc = cuda_upload(b, base + at, orig, view_bytes(views[i]), err);
        for (int j = i; j < n && !rc; j++)
            if (views[j]->data == orig)
                views[j]->data = base + at;
        at += aligned256(view_bytes(views[i]));
        if (c->upload_progress && !rc)
            c->upload_progress(c->progress_user, (double)at, (double)total);
    }
    if (rc) {
        cuda_free(b, base);
        return rc;
    }
    *handle = base;
    return 0;
}

} // namespace

void *sol_cuda_scratch(cuda_ctx *c, sol_cuda_scratch_slot slot, size_t bytes)
{
    if (c->failed)
        return nullptr;
    if (bytes <= c->scratch_bytes[slot])
        return c->scratch[slot];
    void *grown = nullptr;
    bytes = aligned256(bytes + bytes / 4); // room to grow before the next allocation
    if (SOL_CUDA_NOTE(c, cudaMalloc(&grown, bytes)))
        return nullptr;
    if (c->scratch[slot] && c->graph.recording)
        c->retired.push_back(c->scratch[slot]);
    else if (c->scratch[slot])
        cudaFree(c->scratch[slot]); // after the launches before it: cudaFree synchronises
    c->scratch[slot] = grown;
    c->scratch_bytes[slot] = bytes;
    return grown;
}

namespace {

void free_retired(cuda_ctx *c)
{
    for (void *p : c->retired)
        cudaFree(p);
    c->retired.clear();
}

// Room for a step of `rows` tokens: the device copy and its pinned host side.
int reserve_step(sol_backend *b, int rows, sol_err *err)
{
    cuda_ctx *c = cuda_of(b);
    if (rows <= c->tokens_cap)
        return 0;
    cuda_free(b, c->step);
    cudaFreeHost(c->step_host);
    c->step = c->step_host = nullptr;
    c->tokens = nullptr;
    c->pos_dev = nullptr;
    c->tokens_cap = 0;
    size_t bytes = sol_cuda_step_bytes(rows);
    if (cuda_alloc(b, bytes, reinterpret_cast<void **>(&c->step), err))
        return err->code;
    cudaError_t e = cudaMallocHost(reinterpret_cast<void **>(&c->step_host), bytes);
    if (e != cudaSuccess) {
        cudaGetLastError();
        c->step_host = nullptr;
        return sol_cuda_fail(err, "cannot allocate %zu bytes of pinned host memory: %s", bytes, cudaGetErrorString(e));
    }
    c->tokens = c->step->tokens;
    c->pos_dev = &c->step->pos;
    c->tokens_cap = rows;
    return 0;
}

// The step's position and tokens go up in one copy; a decode step records
// its launches for a graph unless graphs are off or it is a profiled step.
int cuda_begin_step(sol_backend *b, const sol_step_state *s, sol_err *err)
{
    cuda_ctx *c = cuda_of(b);
    int seqs = s->seqs > 1 ? s->seqs : 1;
    if (seqs > b->caps.max_seqs) {
        // The engine checks the caps first; should a step come anyway it
        // fails, and the backend runs nothing more (its sync returns the
        // same line, or the error before it).
        if (!c->failed) {
            c->failed = 1;
            snprintf(c->error, sizeof c->error,
                     "begin_step: a batched step of %d sequences; the cuda backend steps at most %d at a time", seqs,
                     b->caps.max_seqs);
        }
        return report(c, err);
    }
    if (sol_cuda_flush(c) || reserve_step(b, s->rows, err))
        return c->failed ? report(c, err) : err->code;
    free_retired(c); // the last step has run (its sync came before)
    c->pos = s->pos;
    c->rows = s->rows;
    c->seqs = seqs;
    c->n_events = 0;
    c->op = "begin_step";
    c->layer = -1;
    c->step_host->pos = s->pos;
    c->step_host->rows = s->rows;
    c->step_host->seqs = seqs;
    if (s->tokens)
        memcpy(c->step_host->tokens, s->tokens, (size_t)s->rows * sizeof(int32_t));
    else
        memset(c->step_host->tokens, 0, (size_t)s->rows * sizeof(int32_t));
    if (!c->failed)
        SOL_CUDA_NOTE(c, cudaMemcpyAsync(c->step, c->step_host, sol_cuda_step_bytes(s->rows), cudaMemcpyHostToDevice,
                                         c->stream));
    int decode = s->rows == seqs;
    c->graph.recording = decode && sol_cuda_graph_step(c->graph, c->graph.decode_steps);
    c->graph.decode_steps += decode;
    c->step_timed = !c->graph.recording;
    c->count_this_step = c->count_every > 0 && c->graph.recording && c->graph_steps % c->count_every == 0;
    c->graph_steps += c->graph.recording;
    return report(c, err);
}

// The next event of the step, created on first use; NULL without one.
cudaEvent_t next_event(cuda_ctx *c)
{
    if (c->n_events == c->events_cap) {
        int cap = c->events_cap ? 2 * c->events_cap : 512;
        cudaEvent_t *ev = static_cast<cudaEvent_t *>(realloc(c->events, (size_t)cap * sizeof *ev));
        if (!ev)
            return nullptr;
        c->events = ev;
        for (int i = c->events_cap; i < cap; i++)
            if (cudaEventCreate(&c->events[i]) != cudaSuccess) {
                cudaGetLastError();
                c->events_cap = i;
                return nullptr;
            }
        c->events_cap = cap;
    }
    return c->events[c->n_events++];
}

void record_event(cuda_ctx *c)
{
    cudaEvent_t ev = c->failed ? nullptr : next_event(c);
    if (ev)
        SOL_CUDA_NOTE(c, cudaEventRecord(ev, c->stream));
}

void cuda_mark(sol_backend *b, const char *op, int layer)
{
    cuda_ctx *c = cuda_of(b);
    c->op = op;
    c->layer = layer;
    if (c->step_timed)
        record_event(c);
}

int cuda_sync(sol_backend *b, sol_err *err)
{
    cuda_ctx *c = cuda_of(b);
    sol_cuda_flush(c);
    if (c->step_timed)
        record_event(c);
    SOL_CUDA_NOTE(c, cudaStreamSynchronize(c->stream));
    return err ? report(c, err) : c->failed;
}

// A graph step has no per-op times (the profiled steps do): none.
int cuda_op_seconds(sol_backend *b, double *seconds, int cap)
{
    cuda_ctx *c = cuda_of(b);
    int n = 0;
    if (!c->step_timed)
        return 0;
    for (int i = 0; i + 1 < c->n_events && n < cap; i++) {
        float ms = 0;
        if (cudaEventElapsedTime(&ms, c->events[i], c->events[i + 1]) != cudaSuccess) {
            cudaGetLastError();
            break;
        }
        seconds[n++] = ms * 1e-3;
    }
    return n;
}

// The counted work: the step's instantiated graph once more, waited for.
// Replaying it is idempotent: the position and tokens it reads live in
// device memory (begin_step's copy), unchanged since the step ran, and the
// KV write stores the same rows at the same slots again.
int replay_step(void *user, sol_err *err)
{
    cuda_ctx *c = static_cast<cuda_ctx *>(user);
    c->op = "counted replay of the decode step graph (--counters)";
    c->layer = -1;
    if (!c->failed)
        SOL_CUDA_NOTE(c, cudaGraphLaunch(c->graph.exec, c->stream));
    SOL_CUDA_NOTE(c, cudaStreamSynchronize(c->stream));
    return report(c, err);
}

// kernels/backend.h's count_step: a graph step begin_step chose is replayed
// under CUPTI (one replay per pass the metrics need), after the engine took
// its time. The first CUPTI failure turns counting off with its notice.
int cuda_count_step(sol_backend *b, double *dram_read, double *dram_write, double *gpu_s, sol_err *err)
{
    cuda_ctx *c = cuda_of(b);
    bool chosen = c->count_this_step;
    c->count_this_step = false;
    if (!chosen || c->failed || !c->graph.exec || c->counting.off)
        return SOL_COUNT_NONE;
    double v[SOL_CUDA_STEP_N_METRICS] = {};
    sol_cupti_work work = {nullptr, replay_step, c};
    int got = sol_cuda_count(&c->counting, c->device, sol_cuda_step_metrics, SOL_CUDA_STEP_N_METRICS, &work, v, err);
    if (got == 1) {
        *dram_read = v[SOL_CUDA_STEP_DRAM_READ];
        *dram_write = v[SOL_CUDA_STEP_DRAM_WRITE];
        *gpu_s = v[SOL_CUDA_STEP_DURATION_NS] * 1e-9;
        return SOL_COUNT_DONE;
    }
    if (got == 0) { // turned off just now: its notice goes to the user once
        snprintf(err->msg, sizeof err->msg, "%s", c->counting.notice);
        err->code = SOL_OK;
        return SOL_COUNT_TURNED_OFF;
    }
    // the replay failed: replay_step noted it in c->failed, so the backend
    // runs nothing more, and err names it
    err->code = SOL_ERR_RUNTIME;
    return SOL_COUNT_FAILED;
}

void cuda_destroy(sol_backend *b)
{
    if (!b)
        return;
    cuda_ctx *c = cuda_of(b);
    if (c) {
        if (c->stream)
            cudaStreamSynchronize(c->stream);
        for (int i = 0; i < c->events_cap; i++)
            cudaEventDestroy(c->events[i]);
        free(c->events);
        sol_cuda_counting_close(&c->counting);
        sol_cuda_graph_free(c);
        sol_cuda_gemm_free(c);
        for (const sol_cuda_tuned_kernels &k : c->tuned_kernels)
            cudaLibraryUnload(k.lib);
        for (const sol_cuda_tuned_kernels &k : c->tuned_attn_kernels)
            cudaLibraryUnload(k.lib);
        free_retired(c);
        for (void *p : c->scratch)
            cuda_free(b, p);
        cuda_free(b, c->step);
        cudaFreeHost(c->step_host);
        if (c->stream)
            cudaStreamDestroy(c->stream);
        delete c;
    }
    free(b);
}

// An image's kernels: its first, and its second when the variant needs one
// (need_sum); false when any step fails (the error is cleared: a failed
// load is not sticky).
bool load_image(const sol_mv_image &img, bool need_sum, sol_cuda_tuned_kernels *out)
{
    *out = sol_cuda_tuned_kernels{nullptr, nullptr, nullptr};
    cudaError_t e = cudaLibraryLoadData(&out->lib, img.cubin.data(), nullptr, nullptr, 0, nullptr, nullptr, 0);
    if (e == cudaSuccess)
        e = cudaLibraryGetKernel(&out->mv, out->lib, img.kernel);
    if (e == cudaSuccess && need_sum)
        e = img.sum[0] ? cudaLibraryGetKernel(&out->sum, out->lib, img.sum) : cudaErrorSymbolNotFound;
    if (e == cudaSuccess)
        return true;
    cudaGetLastError();
    if (out->lib)
        cudaLibraryUnload(out->lib);
    return false;
}

// A matvec winner's image for sm_<sm> (from the cache, or compiled by
// NVRTC) and its kernels (the slice sum with a K split).
bool load_tuned(const sol_cuda_tuned_mv &t, int sm, const char *cache_dir, sol_cuda_tuned_kernels *out)
{
    sol_mv_variant v = sol_mv_tuned_variant(&t);
    sol_mv_compiler compiler = {cache_dir, 0, 0};
    sol_mv_image img;
    char notice[256];
    sol_err err = {0, ""};
    return sol_mv_build(&compiler, &v, sm, &img, notice, sizeof notice, &err) == SOL_MV_OK &&
           load_image(img, v.p.k_split > 1, out);
}

// An attention winner's: the split kernel and the combine.
bool load_tuned_attn(const sol_cuda_tuned_attn &t, int sm, const char *cache_dir, sol_cuda_tuned_kernels *out)
{
    sol_attn_variant v = sol_attn_tuned_variant(&t);
    sol_mv_compiler compiler = {cache_dir, 0, 0};
    sol_mv_image img;
    char notice[256];
    sol_err err = {0, ""};
    return sol_av_build(&compiler, &v, sm, &img, notice, sizeof notice, &err) == SOL_MV_OK &&
           load_image(img, true, out);
}

// The options' winners that load for the device, into c's table.
void load_tuned_all(cuda_ctx *c, const sol_plugin_backend_options *opt, int sm)
{
    for (int i = 0; opt && opt->tuned && i < opt->n_tuned; i++) {
        sol_cuda_tuned_kernels k;
        if (!load_tuned(opt->tuned[i], sm, opt->tune_cache_dir, &k))
            continue;
        c->tuned.push_back(opt->tuned[i]);
        c->tuned_kernels.push_back(k);
    }
    if (opt && opt->tuned_loaded)
        *opt->tuned_loaded = (int)c->tuned.size();
    for (int i = 0; opt && opt->tuned_attn && i < opt->n_tuned_attn; i++) {
        sol_cuda_tuned_kernels k;
        if (!load_tuned_attn(opt->tuned_attn[i], sm, opt->tune_cache_dir, &k))
            continue;
        c->tuned_attn.push_back(opt->tuned_attn[i]);
        c->tuned_attn_kernels.push_back(k);
    }
    if (opt && opt->tuned_attn_loaded)
        *opt->tuned_attn_loaded = (int)c->tuned_attn.size();
}

sol_backend_caps cuda_caps()
{
    sol_backend_caps caps = {};
    const sol_dtype types[] = {SOL_DT_F32,  SOL_DT_F16,  SOL_DT_BF16, SOL_DT_Q8_0,
                               SOL_DT_Q4_0, SOL_DT_Q4_1, SOL_DT_Q4_K, SOL_DT_Q6_K};
    for (sol_dtype t : types)
        caps.weight_types |= 1u << t;
    caps.kv_types = 1u << SOL_DT_F32 | 1u << SOL_DT_F16;
    caps.kv_sinks = 1; // ops.cu's kv_write and attention.cu: sol_kv_slot and the sinks below the window
    caps.max_seqs = 8; // batched decode: the matvec takes up to 8 inputs a pass; RoPE, the KV
                       // write and attention take each row's sequence (rope_kv.cu, attention.cu)
    caps.max_head_dim = SOL_CUDA_MAX_HEAD_DIM;
    return caps;
}

} // namespace

int sol_cuda_backend_new(const sol_plugin_backend_options *opt, sol_backend **out, sol_err *err)
{
    *out = nullptr;
    sol_backend *b = static_cast<sol_backend *>(calloc(1, sizeof *b));
    cuda_ctx *c = b ? new (std::nothrow) cuda_ctx() : nullptr;
    if (!c) {
        free(b);
        return sol_cuda_fail(err, "out of memory");
    }
    b->ctx = c;
    b->destroy = cuda_destroy;
    c->device = opt ? opt->device : 0;
    c->layer = -1;
    c->graph.enabled = opt ? !opt->no_graph : 1;
    c->graph.profile_every = opt ? opt->profile_every : 16;
    c->gemm = opt && opt->gemm_cublas ? SOL_CUDA_GEMM_CUBLAS : SOL_CUDA_GEMM_CUSTOM;
    c->upload_progress = opt ? opt->upload_progress : nullptr;
    c->progress_user = opt ? opt->user : nullptr;
    if (opt && opt->counters && opt->no_graph) {
        cuda_destroy(b);
        return sol_cuda_failc(err, SOL_ERR_USAGE, "--counters counts replays of a decode step's CUDA graph; drop --no-graph");
    }
    if (opt && opt->counters) // as often as steps are profiled, the first graph step first
        c->count_every = opt->profile_every > 0 ? opt->profile_every : 16;
    int count = 0;
    CUDA_OK(cudaGetDeviceCount(&count));
    if (c->device < 0 || c->device >= count) {
        cuda_destroy(b);
        return sol_cuda_fail(err, "--device %d: this machine has %d CUDA device%s", c->device, count,
                             count == 1 ? "" : "s");
    }
    cudaError_t e = cudaSetDevice(c->device);
    cudaDeviceProp prop;
    int sm = 0;
    if (e == cudaSuccess && cudaGetDeviceProperties(&prop, c->device) == cudaSuccess) {
        snprintf(c->device_name, sizeof c->device_name, "%s", prop.name);
        sm = prop.major * 10 + prop.minor;
    }
    if (e == cudaSuccess)
        e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        cuda_destroy(b);
        return sol_cuda_fail(err, "CUDA device %d: %s", c->device, cudaGetErrorString(e));
    }
    if (opt && opt->tuned_loaded)
        *opt->tuned_loaded = 0;
    if (opt && opt->tuned_attn_loaded)
        *opt->tuned_attn_loaded = 0;
    if (sm > 0)
        load_tuned_all(c, opt, sm);
    b->name = "cuda";
    b->threads = 0;
    b->caps = cuda_caps();
    b->activations = SOL_ACT_F32;
    b->int8_dots_below = 0; // f32 activations everywhere
    b->alloc = cuda_alloc;
    b->free = cuda_free;
    b->upload = cuda_upload;
    b->download = cuda_download;
    b->load_weights = cuda_load_weights;
    b->begin_step = cuda_begin_step;
    b->mark = cuda_mark;
    b->sync = cuda_sync;
    b->op_seconds = cuda_op_seconds;
    b->count_step = c->count_every > 0 ? cuda_count_step : nullptr;
    sol_cuda_ops_init(b);
    *out = b;
    return 0;
}
