// Decode attention's autotuner trials: one variant of attention_decode.cuh
// (the split kernel, and the combine when it has more than one split) on
// the device, compiled by NVRTC for the device's exact architecture through
// the image cache (sol_av_build), loaded with the runtime's library API (no
// link to libcuda), checked against a float64 reference and timed under
// the matvec trials' rules (trial_run.cuh: warm-ups, each timed run after
// an untimed L2 flush, CUDA events, median/min/max; counters after the
// timing, in runs of their own).
//
// A problem (device, shape, position, seed) makes q, K and V on the host,
// uploads them and computes the reference once; it is kept until a trial
// asks for another problem (or mv_release), so a search over one shape pays
// for it once. Every row's cache holds its keys 0..pos; the slots after pos
// hold NaN bytes, so a variant that reads a key its row does not see
// answers NaN and is judged wrong. Single-threaded, as the CLI calls it.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

#include "kernels/cuda/attention_decode.cuh" // attn_shape: the kernels' own argument struct
#include "kernels/cuda/attn_default.h"
#include "kernels/cuda/attn_trial.h"
#include "kernels/cuda/attn_variant.h"
#include "kernels/cuda/fail.h"
#include "kernels/cuda/trial_run.cuh"
#include "kernels/cuda/tune_trial.h" // sol_tune_judge: the same verdict rule

namespace {

using namespace sol_trial;

constexpr int kMaxRows = 8;
constexpr int64_t kMaxCapacity = (int64_t)1 << 20;
constexpr int kCombineThreads = 128; // attention.cu's
constexpr double kU32 = 1.0 / 16777216; // 2^-24, f32's unit roundoff
constexpr double kLambda = 10;          // sol_attn_f32_bound
constexpr uint64_t kSeedQ = 0x71ull, kSeedK = 0x6b6b6b6bull << 8, kSeedV = 0x76767676ull << 16;

sol_attn_variant variant_of(const sol_cuda_attn_config &c)
{
    return sol_attn_variant{c.dims_per_lane, c.heads_per_block, c.warps, c.slots_per_split};
}

sol_av_shape shape_of(const sol_cuda_attn_request *req)
{
    return sol_av_shape{req->n_heads, req->n_kv_heads, req->head_dim, req->capacity, req->rows};
}

size_t elem_bytes(sol_dtype t) { return t == SOL_DT_F16 ? 2 : 4; }

int64_t width_of(const sol_cuda_attn_request *req) { return (int64_t)req->n_kv_heads * req->head_dim; }

// n values uniform in [-1, 1) from seed; rounded to f16 (and kept as the
// f16's exact value) when the cache is f16.
void fill(std::vector<float> &x, size_t n, uint64_t seed, bool as_half)
{
    rng r = {seed};
    x.resize(n);
    for (size_t i = 0; i < n; i++) {
        float u = r.uniform();
        x[i] = as_half ? __half2float(__float2half_rn(u)) : u;
    }
}

// One (row, head) of the reference: scores, softmax and weighted values in
// float64 (every product of two floats is exact in a double).
struct row_head_stats {
    double dot_max, score_max;
};

row_head_stats reference_row_head(const sol_cuda_attn_request *req, const sol_attn_data *d, int row, int h, double *ref,
                                  double *mag)
{
    int hd = req->head_dim, group = req->n_heads / req->n_kv_heads, kvh = h / group;
    int64_t n = req->pos + 1, width = width_of(req);
    const float *q = d->q.data() + ((size_t)row * req->n_heads + h) * hd;
    std::vector<double> s((size_t)n);
    double scale = 1.0 / sqrt((double)hd), max = -INFINITY;
    row_head_stats st = {0, 0};
    for (int64_t t = 0; t < n; t++) {
        const float *k = d->k.data() + ((size_t)row * n + t) * width + (size_t)kvh * hd;
        double dot = 0, abs_dot = 0;
        for (int i = 0; i < hd; i++) {
            double p = (double)q[i] * (double)k[i];
            dot += p;
            abs_dot += fabs(p);
        }
        s[(size_t)t] = dot * scale;
        max = std::max(max, s[(size_t)t]);
        st.dot_max = std::max(st.dot_max, abs_dot * scale);
        st.score_max = std::max(st.score_max, fabs(s[(size_t)t]));
    }
    double sum = 0;
    for (double &x : s)
        sum += (x = exp(x - max));
    for (int i = 0; i < hd; i++)
        ref[i] = mag[i] = 0;
    for (int64_t t = 0; t < n; t++) {
        const float *v = d->v.data() + ((size_t)row * n + t) * width + (size_t)kvh * hd;
        double p = s[(size_t)t] / sum;
        for (int i = 0; i < hd; i++) {
            ref[i] += p * v[i];
            mag[i] += p * fabs((double)v[i]);
        }
    }
    return st;
}

} // namespace

void sol_attn_make_data(const sol_cuda_attn_request *req, sol_attn_data *out)
{
    bool half = req->kv_type == SOL_DT_F16;
    size_t kv = (size_t)req->rows * (size_t)(req->pos + 1) * (size_t)width_of(req);
    fill(out->q, (size_t)req->rows * req->n_heads * req->head_dim, req->seed ^ kSeedQ, false);
    fill(out->k, kv, req->seed ^ kSeedK, half);
    fill(out->v, kv, req->seed ^ kSeedV, half);
}

void sol_attn_reference_of(const sol_cuda_attn_request *req, const sol_attn_data *d, sol_attn_reference *out)
{
    int tasks = req->rows * req->n_heads, hd = req->head_dim;
    out->ref.assign((size_t)tasks * hd, 0.0);
    out->mag.assign((size_t)tasks * hd, 0.0);
    std::vector<row_head_stats> stats((size_t)tasks);
    unsigned threads = std::max(1u, std::min(std::thread::hardware_concurrency(), 32u));
    if ((int64_t)tasks * (req->pos + 1) * hd < (int64_t)1 << 20)
        threads = 1;
    auto work = [&](unsigned first) {
        for (int i = (int)first; i < tasks; i += (int)threads)
            stats[(size_t)i] = reference_row_head(req, d, i / req->n_heads, i % req->n_heads,
                                                  out->ref.data() + (size_t)i * hd, out->mag.data() + (size_t)i * hd);
    };
    run_on_threads(threads, work);
    out->dot_max = out->score_max = 0;
    for (const row_head_stats &s : stats) {
        out->dot_max = std::max(out->dot_max, s.dot_max);
        out->score_max = std::max(out->score_max, s.score_max);
    }
}

// The bound. An output is y = sum_t w_t v_t / sum_t w_t over n keys, w_t =
// exp(s_t - m), in f32 (no fast math: expf within 2 ulp <= 4u relative,
// sqrtf and the division correctly rounded). To first order its errors are:
// (1) each weight's relative error eps_t moves y by sum_t p_t eps_t (v_t -
// y), at most max eps * sum p |v - y| <= 2 max eps * mag (mag = sum_t p_t
// |v_t|, since |y| <= mag). eps_t gathers the score's error (a dot of
// head_dim products plus 5 shuffle adds: Higham and Mary's probabilistic
// lambda sqrt(head_dim + 5) u sum |q k|, times the scale 1/sqrt(head_dim):
// dot_max), then the roundings of the scale, its product and s - m (<= 5u
// |s|max) and the expf (4u), and those of every rescale its weight goes
// through: its chain's new maxima (for random scores about ln n of them:
// 4 (ln n + 1) is many standard deviations over) and the merges of warps
// and splits (`merges`), each an expf of a difference of maxima. These
// are independent zero-mean roundings, so their sum over K + 1 of them is
// held to lambda sqrt(K + 1) (4 + 5 score_max) u. (2) The accumulator and
// the sum are each a chain of n steps (a product, a rescale, an add: 3
// roundings; 2 for the sum) plus the merges: lambda sqrt(3 (n + K)) u mag
// and lambda sqrt(2 (n + K)) u |y|; one more u for the final division.
// lambda = 10 as in sol_tune_f32_bound (a false alarm rarer than 1 in
// 10^15). A key dropped moves an output by p_t |v_t - y|, about 1/n of
// mag's scale: detectable up to a few thousand keys; a wrong KV head, a
// split or warp's keys lost, or a key read twice at a short context, far
// over it (tests/cuda/test_attn_trial.cu measures both).
double sol_attn_f32_bound(int head_dim, int64_t keys, double dot_max, double score_max, int merges)
{
    double n = (double)keys, k = merges + 4 * (log(n) + 1);
    double weight = kLambda * kU32 * (sqrt(head_dim + 5.0) * dot_max + sqrt(k + 1) * (4 + 5 * score_max));
    double sums = kLambda * kU32 * (sqrt(3 * (n + k)) + sqrt(2 * (n + k)));
    return 2 * weight + sums + kU32;
}

namespace {

// ---- the device problem ---------------------------------------------------

struct problem {
    bool ready = false;
    int device = -1;
    sol_cuda_attn_request key = {}; // the shape, position and seed it was made for (params, reps ignored)
    size_t seq_stride = 0;          // bytes from one row's cache to the next's
    void *k = nullptr, *v = nullptr;
    float *q = nullptr, *y = nullptr;
    int64_t *pos = nullptr;
    void *ws = nullptr;
    size_t ws_bytes = 0;
    void *flush = nullptr;
    size_t flush_bytes = 0;
    sol_attn_reference ref;
    cudaStream_t stream = nullptr;
    cudaEvent_t start = nullptr, stop = nullptr;
};

problem g_problem;

void release(problem &p)
{
    free_problem_resources(p.device, {p.k, p.v, p.q, p.y, p.pos, p.ws, p.flush}, p.start, p.stop, p.stream);
    p = problem();
}

bool same_problem(const problem &p, int device, const sol_cuda_attn_request *r)
{
    const sol_cuda_attn_request &k = p.key;
    return p.ready && p.device == device && k.n_heads == r->n_heads && k.n_kv_heads == r->n_kv_heads &&
           k.head_dim == r->head_dim && k.kv_type == r->kv_type && k.capacity == r->capacity && k.pos == r->pos &&
           k.rows == r->rows && k.seed == r->seed;
}

// Every row's cache: NaN bytes, then its keys 0..pos (slots 0..pos: no
// sinks, no wrap) from the host data, on the trials' stream.
int upload_cache(problem &p, const std::vector<float> &host, void *dev, sol_dtype type, sol_err *err)
{
    size_t row_bytes = (size_t)(p.key.pos + 1) * (size_t)width_of(&p.key) * elem_bytes(type);
    CUDA_OK(cudaMemsetAsync(dev, 0xff, p.seq_stride * (size_t)p.key.rows, p.stream));
    if (type == SOL_DT_F32) {
        CUDA_OK(cudaMemcpy2DAsync(dev, p.seq_stride, host.data(), row_bytes, row_bytes, (size_t)p.key.rows,
                                  cudaMemcpyHostToDevice, p.stream));
        CUDA_OK(cudaStreamSynchronize(p.stream));
        return 0;
    }
    std::vector<__half> h(host.size());
    for (size_t i = 0; i < host.size(); i++)
        h[i] = __float2half_rn(host[i]); // exact: the values are f16's
    CUDA_OK(cudaMemcpy2DAsync(dev, p.seq_stride, h.data(), row_bytes, row_bytes, (size_t)p.key.rows,
                              cudaMemcpyHostToDevice, p.stream));
    CUDA_OK(cudaStreamSynchronize(p.stream)); // before h goes
    return 0;
}

// The problem of req on device (made current), made or kept.
int prepare(problem &p, int device, int64_t l2_bytes, const sol_cuda_attn_request *req, sol_err *err)
{
    if (same_problem(p, device, req))
        return 0;
    release(p);
    p.device = device;
    p.key = *req;
    p.key.cache_dir = nullptr; // not the caller's to keep
    sol_attn_data d;
    try {
        sol_attn_make_data(req, &d);
        sol_attn_reference_of(req, &d, &p.ref);
    } catch (const std::bad_alloc &) {
        release(p);
        return sol_cuda_fail(err, "out of host memory for an attention problem of %d rows at position %lld", req->rows,
                             (long long)req->pos);
    }
    p.seq_stride = (size_t)req->capacity * (size_t)width_of(req) * elem_bytes(req->kv_type);
    size_t q_bytes = d.q.size() * sizeof(float);
    p.flush_bytes = 2 * (size_t)(l2_bytes > 0 ? l2_bytes : (int64_t)32 << 20);
    CUDA_OK(cudaStreamCreateWithFlags(&p.stream, cudaStreamNonBlocking));
    CUDA_OK(cudaEventCreate(&p.start));
    CUDA_OK(cudaEventCreate(&p.stop));
    CUDA_OK(cudaMalloc(&p.k, p.seq_stride * (size_t)req->rows));
    CUDA_OK(cudaMalloc(&p.v, p.seq_stride * (size_t)req->rows));
    CUDA_OK(cudaMalloc(reinterpret_cast<void **>(&p.q), q_bytes));
    CUDA_OK(cudaMalloc(reinterpret_cast<void **>(&p.y), q_bytes)); // one output a query element
    CUDA_OK(cudaMalloc(reinterpret_cast<void **>(&p.pos), sizeof(int64_t)));
    CUDA_OK(cudaMalloc(&p.flush, p.flush_bytes));
    if (int rc = upload_cache(p, d.k, p.k, req->kv_type, err))
        return rc;
    if (int rc = upload_cache(p, d.v, p.v, req->kv_type, err))
        return rc;
    int64_t pos = req->pos;
    CUDA_OK(cudaMemcpyAsync(p.q, d.q.data(), q_bytes, cudaMemcpyHostToDevice, p.stream));
    CUDA_OK(cudaMemcpyAsync(p.pos, &pos, sizeof pos, cudaMemcpyHostToDevice, p.stream));
    CUDA_OK(cudaStreamSynchronize(p.stream)); // before the host copies go
    p.ready = true;
    return 0;
}

int check_request(const sol_cuda_attn_request *req, sol_err *err)
{
    if (req->reps < 10 || req->reps > 1000)
        return sol_cuda_fail(err, "a trial times 10 to 1000 repetitions, not %d", req->reps);
    return 0;
}

// The split kernel over every row, then with more than one split the
// combine, as attention.cu launches them (no window, no soft-cap).
cudaError_t launch_variant(const problem &p, cudaKernel_t split, cudaKernel_t combine, const sol_av_launch &g)
{
    const sol_cuda_attn_request &r = p.key;
    sol_kv_cache_layer cache = {r.kv_type, p.k, p.v, r.capacity, width_of(&r), 0, p.seq_stride};
    attn_shape sh = {r.n_heads, r.n_kv_heads, r.head_dim, g.head_chunks, g.chunk_heads, g.n_splits, r.rows, r.rows};
    const float *q = p.q;
    const int64_t *pos = p.pos;
    int64_t window = 0;
    float softcap = 0.0f, *out = p.y;
    size_t n_parts = (size_t)r.rows * r.n_heads * g.n_splits;
    sol_attn_part *parts = g.n_splits > 1 ? static_cast<sol_attn_part *>(p.ws) : nullptr;
    float *part_acc = parts ? reinterpret_cast<float *>(parts + n_parts) : nullptr;
    void *args[] = {&q, &cache, &sh, &pos, &window, &softcap, &parts, &part_acc, &out}; // attention_split_kernel's
    cudaError_t e = cudaLaunchKernel(reinterpret_cast<const void *>(split), dim3(g.grid_x, g.grid_y, g.grid_z),
                                     dim3(g.threads), args, 0, p.stream);
    if (e != cudaSuccess || g.n_splits == 1)
        return e;
    const sol_attn_part *cparts = parts;
    const float *cacc = part_acc;
    int n_splits = g.n_splits, head_dim = r.head_dim;
    void *cargs[] = {&cparts, &cacc, &n_splits, &head_dim, &out}; // attention_combine_kernel's
    return cudaLaunchKernel(reinterpret_cast<const void *>(combine), dim3(g.combine_blocks), dim3(kCombineThreads),
                            cargs, 0, p.stream);
}

void judge(const problem &p, const std::vector<float> &y, double bound, sol_cuda_mv_result *out)
{
    sol_tune_verdict v = sol_tune_judge(y.data(), p.ref.ref.data(), p.ref.mag.data(), (int64_t)y.size(), bound);
    out->correct = v.correct;
    out->max_error = v.max_error;
    out->tolerance = bound;
    if (!v.correct) {
        int hd = p.key.head_dim;
        int64_t rh = v.worst / hd, row = rh / p.key.n_heads, head = rh % p.key.n_heads;
        snprintf(out->why, sizeof out->why, "wrong answer: row %lld head %lld dim %lld is %.9g, the float64 reference "
                 "%.9g (error %.3g of sum p |v|, allowed %.3g)", (long long)row, (long long)head,
                 (long long)(v.worst % hd), (double)y[(size_t)v.worst], p.ref.ref[(size_t)v.worst], v.max_error, bound);
    }
}

// The workspace of geometry g, grown when a trial needs more.
int ensure_workspace(problem &p, size_t bytes, sol_err *err)
{
    if (bytes <= p.ws_bytes)
        return 0;
    if (p.ws)
        cudaFree(p.ws);
    p.ws = nullptr;
    p.ws_bytes = 0;
    CUDA_OK(cudaMalloc(&p.ws, bytes));
    p.ws_bytes = bytes;
    return 0;
}

// Compiled (or cached) for sm: SOL_MV_OK with img filled; a verdict
// (INVALID, REJECTED) in out; otherwise an error.
int build(const sol_cuda_attn_request *req, const sol_attn_variant &v, int sm, sol_mv_image *img,
          sol_cuda_mv_result *out, sol_err *err)
{
    sol_mv_compiler compiler = {req->cache_dir, 0, 0};
    sol_err build_err = {0, ""};
    int built = sol_av_build(&compiler, &v, sm, img, out->notice, sizeof out->notice, &build_err);
    out->registers = img->res.registers;
    out->spill_bytes = img->res.spill_store_bytes + img->res.spill_load_bytes;
    out->stack_bytes = img->res.stack_bytes;
    out->smem_bytes = img->res.smem_bytes;
    out->compile_ms = img->compile_ms;
    out->from_cache = img->from_cache;
    if (built == SOL_MV_INVALID || built == SOL_MV_REJECTED) {
        out->status = built == SOL_MV_INVALID ? SOL_CUDA_TRIAL_INVALID : SOL_CUDA_TRIAL_REJECTED;
        snprintf(out->why, sizeof out->why, "%.255s", build_err.msg);
        return built;
    }
    if (built != SOL_MV_OK)
        return sol_cuda_fail(err, "%s for sm_%d: %s", out->label, sm, build_err.msg);
    return SOL_MV_OK;
}

// Bytes one run moves: the K and V rows the queries see, q and the output.
double bytes_of(const sol_cuda_attn_request *req)
{
    double kv = (double)req->rows * (double)(req->pos + 1) * (double)width_of(req) * 2 * (double)elem_bytes(req->kv_type);
    return kv + 2.0 * 4 * req->rows * req->n_heads * req->head_dim;
}

} // namespace

// ---- the entries ---------------------------------------------------------------

void sol_cuda_attn_default(int head_dim, int group, sol_cuda_attn_config *out)
{
    *out = sol_cuda_attn_config{sol_attn_default_dpl(head_dim), sol_attn_default_heads(group), SOL_ATTN_DECODE_WARPS,
                                SOL_ATTN_SLOTS_PER_SPLIT};
}

int sol_cuda_attn_check(const sol_cuda_attn_request *req, char *why, size_t cap)
{
    if (req->kv_type != SOL_DT_F16 && req->kv_type != SOL_DT_F32)
        return sol_cuda_refuse(why, cap, "a KV cache of %s: the trials take f16 or f32", sol_mv_type_name(req->kv_type));
    if (req->rows < 1 || req->rows > kMaxRows)
        return sol_cuda_refuse(why, cap, "%d rows: a trial takes 1 to %d sequences", req->rows, kMaxRows);
    if (req->capacity < 1 || req->capacity > kMaxCapacity)
        return sol_cuda_refuse(why, cap, "a cache of %lld slots: 1 to %lld", (long long)req->capacity, (long long)kMaxCapacity);
    if (req->pos < 0 || req->pos >= req->capacity)
        return sol_cuda_refuse(why, cap, "position %lld in a cache of %lld slots: 0 to %lld", (long long)req->pos,
                      (long long)req->capacity, (long long)req->capacity - 1);
    sol_attn_variant v = variant_of(req->params);
    sol_av_shape s = shape_of(req);
    return sol_av_check_shape(&v, &s, why, cap);
}

int sol_cuda_attn_trial(int device, const sol_cuda_attn_request *req, sol_cuda_mv_result *out, sol_err *err)
{
    result_init(out);
    sol_attn_variant v = variant_of(req->params);
    sol_av_label(&v, out->label, sizeof out->label);
    if (int rc = check_request(req, err))
        return rc;
    if (sol_cuda_attn_check(req, out->why, sizeof out->why)) {
        out->status = SOL_CUDA_TRIAL_INVALID;
        return 0;
    }
    int sm = 0;
    int64_t l2 = 0;
    if (int rc = open_device(device, &sm, &l2, err))
        return rc;
    sol_mv_image img;
    int built = build(req, v, sm, &img, out, err);
    if (built != SOL_MV_OK)
        return built == SOL_MV_INVALID || built == SOL_MV_REJECTED ? 0 : built;

    problem &p = g_problem;
    if (int rc = prepare(p, device, l2, req, err))
        return rc;
    sol_av_shape shape = shape_of(req);
    sol_av_launch g = sol_av_geometry(&v, &shape);
    if (int rc = ensure_workspace(p, g.workspace_bytes, err))
        return rc;
    library lib;
    cudaKernel_t split = nullptr, combine = nullptr;
    CUDA_OK(cudaLibraryLoadData(&lib.lib, img.cubin.data(), nullptr, nullptr, 0, nullptr, nullptr, 0));
    CUDA_OK(cudaLibraryGetKernel(&split, lib.lib, img.kernel));
    CUDA_OK(cudaLibraryGetKernel(&combine, lib.lib, img.sum));
    auto run = [&] { return launch_variant(p, split, combine, g); };

    std::vector<float> y;
    cudaError_t e = answer(p, p.ref.ref.size(), run, &y);
    if (e != cudaSuccess) {
        if (context_lost())
            return lost(p, out, e, err);
        out->status = SOL_CUDA_TRIAL_REJECTED; // would not launch: resources, configuration
        snprintf(out->why, sizeof out->why, "launch: %s", cudaGetErrorString(e));
        return 0;
    }
    int merges = (v.warps - 1) + (g.n_splits - 1);
    judge(p, y, sol_attn_f32_bound(req->head_dim, req->pos + 1, p.ref.dot_max, p.ref.score_max, merges), out);
    out->bytes = bytes_of(req);
    if (!out->correct)
        return 0; // a wrong variant is never timed, never chosen
    return time_and_count(
        p, run, req->reps, req->counters, out, [&](cudaError_t fault) { return lost(p, out, fault, err); },
        [&] { release(p); }, err);
}

void sol_cuda_attn_release(void) { release(g_problem); }
