// The matvec autotuner's trials: one variant of matvec.cuh on the device,
// compiled by NVRTC for the device's exact architecture (through the image
// cache, variant_compile.cu), loaded with the runtime's library API
// (cudaLibraryLoadData, cudaLibraryGetKernel, cudaLaunchKernel: no link to
// libcuda), checked against a float64 reference and timed; and the cuBLAS
// baseline of the same problem under the same rules.
//
// A problem (device, type, shape, seed) makes its weights and 8 inputs on
// the host, uploads them and computes the reference once; it is kept until
// a trial asks for another problem (or mv_release), so a search over one
// shape pays for it once. Timing: a few untimed warm-up runs, then `reps`
// runs, each preceded by an untimed write of twice the L2 (cudaMemsetAsync),
// so every run reads the weights from device memory as a decode step does;
// each run is a pair of CUDA events around the launches (a k_split variant's
// slice sum included); median, min and max. Counters (when asked) come after
// the timing, in runs of their own (CUPTI replays the run once per pass,
// each after the same untimed flush): counting never touches a timed run.
// Single-threaded, as the CLI calls it.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

#include "kernels/cuda/attn_trial.h"
#include "kernels/cuda/attn_variant.h"
#include "kernels/cuda/counters.h"
#include "kernels/cuda/cuda_util.h"
#include "kernels/cuda/gemm_plan.h"
#include "kernels/cuda/trial_run.cuh"
#include "kernels/cuda/tune_trial.h"
#include "kernels/cuda/variant.h"

namespace {

using namespace sol_trial;

constexpr int kMaxInputs = 8;   // a problem's inputs: every m of 1..8 takes the first m
constexpr double kU32 = 1.0 / 16777216; // 2^-24, f32's unit roundoff
constexpr double kLambda = 10;          // sol_tune_f32_bound

// ---- host data -------------------------------------------------------------

void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

// An f16 normal number in [2^e, 2^(e+1)) (-14 <= e <= 15), of random sign
// when signed_ is set.
uint16_t random_half(rng &r, int e, bool signed_)
{
    unsigned mant = (unsigned)(r.next() >> 54), sign = signed_ ? (unsigned)(r.next() >> 63) : 0u;
    return (uint16_t)(sign << 15 | (unsigned)(e + 15) << 10 | mant);
}

void random_bytes(rng &r, uint8_t *p, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = r.byte();
}

// One block (or element, for plain types) of t at p. The scales bound the
// decoded weights: Q8_0 d < 2^-7, |q| <= 128: < 1. Q4_0 d < 2^-2, |q - 8| <= 8:
// < 2. Q4_1 d < 2^-3, q <= 15, |m| < 2^-3: < 2. Q4_K d, dmin < 2^-6, 6-bit
// scales and mins <= 63, q <= 15: < 16. Q6_K d < 2^-9, |scale| <= 128,
// |q - 32| <= 32: <= 8. F16, BF16: [2^-4, 2) in magnitude. F32: [-1, 1).
void make_block(sol_dtype t, rng &r, uint8_t *p)
{
    switch (t) {
    case SOL_DT_F32: {
        float v = r.uniform();
        memcpy(p, &v, 4);
        return;
    }
    case SOL_DT_F16: put16(p, random_half(r, -4 + (int)(r.next() % 5), true)); return;
    case SOL_DT_BF16: {
        unsigned e = 127 - 4 + (unsigned)(r.next() % 5), mant = (unsigned)(r.next() >> 57), sign = (unsigned)(r.next() >> 63);
        put16(p, (uint16_t)(sign << 15 | e << 7 | mant));
        return;
    }
    case SOL_DT_Q8_0:
        put16(p, random_half(r, -8, true));
        random_bytes(r, p + 2, 32);
        return;
    case SOL_DT_Q4_0:
        put16(p, random_half(r, -3, true));
        random_bytes(r, p + 2, 16);
        return;
    case SOL_DT_Q4_1:
        put16(p, random_half(r, -4, true));
        put16(p + 2, random_half(r, -4, true));
        random_bytes(r, p + 4, 16);
        return;
    case SOL_DT_Q4_K:
        put16(p, random_half(r, -7, false));     // d
        put16(p + 2, random_half(r, -7, false)); // dmin
        random_bytes(r, p + 4, 12 + 128);        // packed scales and mins, quants
        return;
    case SOL_DT_Q6_K:
        random_bytes(r, p, 128 + 64 + 16); // low bits, high bits, int8 scales
        put16(p + 208, random_half(r, -10, true));
        return;
    default: return;
    }
}

} // namespace

size_t sol_tune_row_bytes(sol_dtype t, int64_t cols)
{
    int block = sol_cuda_block_elems(t);
    if (block == 0 || cols < 1 || cols % block != 0)
        return 0;
    return (size_t)sol_mv_bytes_of(t, cols);
}

void sol_tune_make_weights(sol_dtype t, int64_t rows, int64_t cols, uint64_t seed, uint8_t *out)
{
    size_t row_bytes = sol_tune_row_bytes(t, cols);
    int block_bytes = sol_cuda_block_bytes(t);
    if (!row_bytes)
        return;
    rng r = {seed};
    size_t total = (size_t)rows * row_bytes;
    for (size_t at = 0; at < total; at += (size_t)block_bytes) // rows are whole blocks
        make_block(t, r, out + at);
}

void sol_tune_make_inputs(int64_t n, uint64_t seed, float *x)
{
    rng r = {seed};
    for (int64_t i = 0; i < n; i++)
        x[i] = r.uniform();
}

namespace {

// sol_tune_reference's body over inputs of float (exact products) or of
// float64 (the normalised ones: products to 2^-53 of themselves).
template <typename X>
void reference_of(sol_dtype t, const uint8_t *w, int64_t rows, int64_t cols, const X *x, int m, double *ref,
                  double *mag)
{
    size_t row_bytes = sol_tune_row_bytes(t, cols);
    if (!row_bytes)
        return;
    unsigned threads = std::max(1u, std::min(std::thread::hardware_concurrency(), 32u));
    if (rows * cols * m < (int64_t)1 << 22)
        threads = 1;
    auto work = [=](unsigned first) {
        std::vector<float> row((size_t)cols);
        for (int64_t r = first; r < rows; r += threads) {
            for (int64_t g = 0; g < cols / 8; g++)
                sol_dq8(t, w + (size_t)r * row_bytes, g, &row[(size_t)(8 * g)]);
            for (int i = 0; i < m; i++) {
                const X *xi = x + (size_t)i * cols;
                double sum = 0, abs_sum = 0;
                for (int64_t c = 0; c < cols; c++) {
                    double p = (double)row[(size_t)c] * (double)xi[c]; // exact for float x: 24 x 24 bits
                    sum += p;
                    abs_sum += fabs(p);
                }
                ref[(size_t)i * rows + r] = sum;
                mag[(size_t)i * rows + r] = abs_sum;
            }
        }
    };
    run_on_threads(threads, work);
}

} // namespace

void sol_tune_reference(sol_dtype t, const uint8_t *w, int64_t rows, int64_t cols, const float *x, int m, double *ref,
                        double *mag)
{
    reference_of(t, w, rows, cols, x, m, ref, mag);
}

void sol_tune_reference_normed(sol_dtype t, const uint8_t *w, int64_t rows, int64_t cols, const double *xn, int m,
                               double *ref, double *mag)
{
    reference_of(t, w, rows, cols, xn, m, ref, mag);
}

void sol_tune_make_norm(int64_t n, uint64_t seed, float *norm)
{
    rng r = {seed};
    for (int64_t i = 0; i < n; i++)
        norm[i] = 1.0f + 0.5f * r.uniform();
}

void sol_tune_normalize(const float *x, const float *norm, int64_t cols, int m, float eps, double *xn)
{
    for (int i = 0; i < m; i++) {
        const float *xi = x + (size_t)i * cols;
        double sum = 0;
        for (int64_t c = 0; c < cols; c++)
            sum += (double)xi[c] * (double)xi[c];
        double scale = 1.0 / sqrt(sum / (double)cols + (double)eps);
        for (int64_t c = 0; c < cols; c++)
            xn[(size_t)i * cols + c] = (double)xi[c] * scale * (double)norm[c];
    }
}

// The bound. Each output is cols products summed in f32: every product and
// every addition is rounded once (the weights are decoded by the same
// sol_dq8 code the reference uses, exactly; contracting into an FMA only
// removes roundings). The classical worst case, cols u / (1 - cols u) of
// sum |w x|, is so loose that a variant skipping a group of 8 weights could
// pass it on a long row. With independent zero-mean rounding errors (random
// data), Higham and Mary's probabilistic bound (SIAM J. Sci. Comput. 41(5),
// 2019) is lambda sqrt(n) u sum |w x|, holding with probability at least
// 1 - 2 n exp(-lambda^2 (1 - u)^2 / 2): for lambda = 10 and n up to 2^20,
// a false alarm is rarer than 1 in 10^15. n counts the row's products and
// additions, plus 64 for the shuffles and slice sums that follow; one more u
// covers the rounding of the output. Dropping or doubling one group of 8
// weights moves an output by about sqrt(8) of its typical product, i.e.
// 2.8 / cols of sum |w x|: 18 times this bound at cols = 4096, still above it
// at 32768; a whole tile (>= 256 weights) far more.
double sol_tune_f32_bound(int64_t cols) { return kLambda * sqrt((double)cols + 64) * kU32 + kU32; }

// The fused kernel's bound: the f32 dot product's of its normalised inputs,
// plus what the norm's roundings move them by (rmsnorm.cuh). Its scale
// 1 / sqrtf((float)(total / n) + eps) is off the exact one by at most
// 3u to first order: the sum of squares is in double (n 2^-53 of itself:
// nothing at f32's scale), its cast to float and the added eps round once
// each (2u of the radicand), sqrtf halves that and rounds (2u), the
// reciprocal rounds again (3u); IEEE sqrtf and division (NVRTC's default
// -prec-sqrt and -prec-div). Each input is then x * scale * norm, two more
// roundings (sol_rms_apply): every normalised input is within 5u of its
// float64 value, so every product w xn within 5u of its own, and the
// output within 5u of sum |w xn| (= mag) beyond the dot product's bound.
// This part is not random: the scale's error is the same for a row's every
// term, so it is added whole, not under the square root. One u more covers
// the second-order terms. A wrong norm weight, a skipped normalisation or a
// dropped group of weights is far beyond it (test_tune_trial.cu).
double sol_tune_rms_bound(int64_t cols) { return sol_tune_f32_bound(cols) + 6 * kU32; }

sol_tune_verdict sol_tune_judge(const float *y, const double *ref, const double *mag, int64_t n, double bound)
{
    sol_tune_verdict v = {1, 0.0, 0};
    for (int64_t i = 0; i < n; i++) {
        double diff = fabs((double)y[i] - ref[i]);
        bool ok = std::isfinite(y[i]) && diff <= bound * mag[i];
        // a wrong output's error exceeds the bound (inf when not finite), so
        // the worst output is a wrong one whenever there is one
        double e = !std::isfinite(y[i]) ? INFINITY : mag[i] > 0 ? diff / mag[i] : diff > 0 ? INFINITY : 0.0;
        if (!ok)
            v.correct = 0;
        if (e > v.max_error) {
            v.max_error = e;
            v.worst = i;
        }
    }
    return v;
}

namespace {

// ---- the device problem ---------------------------------------------------

struct problem {
    bool ready = false;
    int device = -1;
    sol_dtype type = SOL_DT_F32;
    int64_t rows = 0, cols = 0;
    uint64_t seed = 0;
    int rmsnorm = 0; // the reference is of the normalised inputs, by norm
    size_t row_bytes = 0;
    uint8_t *w = nullptr;
    float *x = nullptr, *y = nullptr, *ws = nullptr, *norm = nullptr;
    size_t ws_bytes = 0;
    void *flush = nullptr;
    size_t flush_bytes = 0;
    std::vector<double> ref, mag; // kMaxInputs x rows
    cudaStream_t stream = nullptr;
    cudaEvent_t start = nullptr, stop = nullptr;
    // the baseline's: its handle, the weights decoded to f16 (block types),
    // the inputs rounded to the 16-bit type
    cublasHandle_t cublas = nullptr;
    void *w16 = nullptr, *x16 = nullptr;
};

problem g_problem;

constexpr bool same(int cupti_metric, int plugin_counter) { return cupti_metric == plugin_counter; }
static_assert(same(SOL_CUPTI_N_METRICS, SOL_CUDA_N_COUNTERS), "plugin.h's counters are the sol metric set");
static_assert(same(SOL_CUPTI_DRAM_READ_BYTES, SOL_CUDA_CTR_DRAM_READ_BYTES) &&
                  same(SOL_CUPTI_DRAM_WRITE_BYTES, SOL_CUDA_CTR_DRAM_WRITE_BYTES) &&
                  same(SOL_CUPTI_L2_BYTES, SOL_CUDA_CTR_L2_BYTES) && same(SOL_CUPTI_SM_THROUGHPUT_PCT, SOL_CUDA_CTR_SM_PCT) &&
                  same(SOL_CUPTI_DRAM_THROUGHPUT_PCT, SOL_CUDA_CTR_DRAM_PCT) &&
                  same(SOL_CUPTI_DURATION_NS, SOL_CUDA_CTR_DURATION_NS),
              "in the same order");

void release(problem &p)
{
    if (p.cublas) { // before its stream goes
        if (p.device >= 0)
            cudaSetDevice(p.device);
        cublasDestroy(p.cublas);
    }
    free_problem_resources(p.device, {p.w, p.x, p.y, p.ws, p.norm, p.flush, p.w16, p.x16}, p.start, p.stop, p.stream);
    p = problem();
}

int check_request(const sol_cuda_mv_request *req, sol_err *err)
{
    if (req->m < 1 || req->m > kMaxInputs)
        return sol_cuda_fail(err, "a trial takes 1 to %d inputs, not %d", kMaxInputs, req->m);
    if (req->reps < 10 || req->reps > 1000)
        return sol_cuda_fail(err, "a trial times 10 to 1000 repetitions, not %d", req->reps);
    if (req->rows < 1 || req->rows > ((int64_t)1 << 31) - 1 || !sol_tune_row_bytes(req->type, req->cols) ||
        req->cols % 8 != 0)
        return sol_cuda_fail(err, "a %lldx%lld matrix of %s: not one the CUDA matvec takes (K whole blocks and groups "
                             "of 8)", (long long)req->rows, (long long)req->cols, sol_mv_type_name(req->type));
    return 0;
}

// The problem of req on device (made current), made or kept.
int prepare(problem &p, int device, int64_t l2_bytes, const sol_cuda_mv_request *req, sol_err *err)
{
    int rmsnorm = req->rmsnorm ? 1 : 0;
    if (p.ready && p.device == device && p.type == req->type && p.rows == req->rows && p.cols == req->cols &&
        p.seed == req->seed && p.rmsnorm == rmsnorm)
        return 0;
    release(p);
    p.device = device;
    p.type = req->type;
    p.rows = req->rows;
    p.cols = req->cols;
    p.seed = req->seed;
    p.rmsnorm = rmsnorm;
    p.row_bytes = sol_tune_row_bytes(req->type, req->cols);
    size_t w_bytes = (size_t)p.rows * p.row_bytes, x_elems = (size_t)kMaxInputs * (size_t)p.cols,
           y_elems = (size_t)kMaxInputs * (size_t)p.rows;
    std::vector<uint8_t> hw;
    std::vector<float> hx, hnorm;
    std::vector<double> xn;
    try {
        hw.resize(w_bytes);
        hx.resize(x_elems);
        hnorm.resize(rmsnorm ? (size_t)p.cols : 0);
        xn.resize(rmsnorm ? x_elems : 0);
        p.ref.resize(y_elems);
        p.mag.resize(y_elems);
    } catch (const std::bad_alloc &) {
        release(p);
        return sol_cuda_fail(err, "out of host memory for a %lldx%lld %s problem", (long long)p.rows,
                             (long long)p.cols, sol_mv_type_name(p.type));
    }
    sol_tune_make_weights(p.type, p.rows, p.cols, p.seed, hw.data());
    sol_tune_make_inputs((int64_t)x_elems, p.seed ^ 0x5eed1e55c0ffee00ull, hx.data());
    if (rmsnorm) {
        sol_tune_make_norm(p.cols, p.seed ^ 0x6e6f726d6e6f726dull, hnorm.data());
        sol_tune_normalize(hx.data(), hnorm.data(), p.cols, kMaxInputs, kSolTuneRmsEps, xn.data());
        sol_tune_reference_normed(p.type, hw.data(), p.rows, p.cols, xn.data(), kMaxInputs, p.ref.data(),
                                  p.mag.data());
    } else {
        sol_tune_reference(p.type, hw.data(), p.rows, p.cols, hx.data(), kMaxInputs, p.ref.data(), p.mag.data());
    }
    p.flush_bytes = 2 * (size_t)(l2_bytes > 0 ? l2_bytes : (int64_t)32 << 20);
    CUDA_OK(cudaStreamCreateWithFlags(&p.stream, cudaStreamNonBlocking));
    CUDA_OK(cudaEventCreate(&p.start));
    CUDA_OK(cudaEventCreate(&p.stop));
    CUDA_OK(cudaMalloc(reinterpret_cast<void **>(&p.w), w_bytes));
    CUDA_OK(cudaMalloc(reinterpret_cast<void **>(&p.x), x_elems * sizeof(float)));
    CUDA_OK(cudaMalloc(reinterpret_cast<void **>(&p.y), y_elems * sizeof(float)));
    CUDA_OK(cudaMalloc(&p.flush, p.flush_bytes));
    // on the trials' stream (a non-blocking one, which cudaMemcpy's legacy
    // stream would not order), finished before the host buffers go
    CUDA_OK(cudaMemcpyAsync(p.w, hw.data(), w_bytes, cudaMemcpyHostToDevice, p.stream));
    CUDA_OK(cudaMemcpyAsync(p.x, hx.data(), x_elems * sizeof(float), cudaMemcpyHostToDevice, p.stream));
    if (rmsnorm) {
        CUDA_OK(cudaMalloc(reinterpret_cast<void **>(&p.norm), hnorm.size() * sizeof(float)));
        CUDA_OK(cudaMemcpyAsync(p.norm, hnorm.data(), hnorm.size() * sizeof(float), cudaMemcpyHostToDevice, p.stream));
    }
    CUDA_OK(cudaStreamSynchronize(p.stream));
    p.ready = true;
    return 0;
}

void judge(const problem &p, int m, const std::vector<float> &y, double bound, sol_cuda_mv_result *out)
{
    sol_tune_verdict v = sol_tune_judge(y.data(), p.ref.data(), p.mag.data(), (int64_t)m * p.rows, bound);
    out->correct = v.correct;
    out->max_error = v.max_error;
    out->tolerance = bound;
    if (!v.correct) {
        int64_t input = v.worst / p.rows, row = v.worst % p.rows;
        snprintf(out->why, sizeof out->why, "wrong answer: input %lld row %lld is %.9g, the float64 reference %.9g "
                 "(error %.3g of sum |w x|, allowed %.3g)", (long long)input, (long long)row, (double)y[(size_t)v.worst],
                 p.ref[(size_t)v.worst], v.max_error, bound);
    }
}

sol_mv_params params_of(const sol_cuda_mv_config &c)
{
    return sol_mv_params{c.rows_per_block, c.threads_per_row, c.vec_bytes, c.unroll, c.k_split, c.max_inputs};
}

// Every pass (max_inputs inputs each) of variant v over the problem's
// first m inputs: the matvec, then with k_split > 1 the slice sum.
cudaError_t launch_variant(const problem &p, cudaKernel_t mv, cudaKernel_t sum, const sol_mv_variant &v, int m)
{
    sol_mv_shape shape = {p.rows, p.cols, p.row_bytes};
    for (int i = 0; i < m; i += v.p.max_inputs) {
        int pass = std::min(v.p.max_inputs, m - i);
        sol_mv_launch g = sol_mv_geometry(&v, &shape, pass);
        const uint8_t *w = p.w;
        size_t row_bytes = p.row_bytes;
        int64_t rows = p.rows, k = p.cols;
        const float *bias = nullptr, *x = p.x + (size_t)i * (size_t)p.cols, *norm = p.norm;
        float *y = p.y + (size_t)i * (size_t)p.rows, *out = v.p.k_split > 1 ? p.ws : y;
        // the fused kernel stores no xb here: the engine's group has one
        // launch that does and the others (most of its matrices) do not
        float eps = kSolTuneRmsEps, *xb = nullptr;
        void *args[] = {&w, &row_bytes, &rows, &k, &bias, &x, &pass, &out}; // sol_matvec's parameters
        void *norm_args[] = {&w, &row_bytes, &rows, &k, &bias, &x, &norm, &eps, &pass, &out, &xb}; // sol_matvec_rmsnorm's
        cudaError_t e = cudaLaunchKernel(reinterpret_cast<const void *>(mv), dim3(g.grid_x, g.grid_y), dim3(g.threads),
                                         v.rmsnorm ? norm_args : args, 0, p.stream);
        if (e != cudaSuccess)
            return e;
        if (v.p.k_split > 1) {
            int64_t n = (int64_t)pass * p.rows;
            const float *partial = p.ws;
            void *sum_args[] = {&partial, &n, &rows, &bias, &y}; // sol_matvec_sum's
            e = cudaLaunchKernel(reinterpret_cast<const void *>(sum), dim3((unsigned)((n + 255) / 256)), dim3(256),
                                 sum_args, 0, p.stream);
            if (e != cudaSuccess)
                return e;
        }
    }
    return cudaSuccess;
}

// ---- the baseline's conversions (untimed) ---------------------------------

__device__ void store_rounded(__half *p, float v) { *p = __float2half_rn(v); }
__device__ void store_rounded(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }

// Row r of w decoded into row r of out (dense, cols halves): one thread per
// group of 8.
__global__ void decode_f16_kernel(const uint8_t *w, size_t row_bytes, sol_dtype t, int64_t rows, int64_t cols, __half *out)
{
    int64_t groups = cols / 8, i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * groups)
        return;
    int64_t r = i / groups, g = i % groups;
    float v[8];
    sol_dq8(t, w + (size_t)r * row_bytes, g, v);
    for (int j = 0; j < 8; j++)
        store_rounded(out + (size_t)r * cols + 8 * g + j, v[j]);
}

template <typename T> __global__ void round_kernel(const float *x, int64_t n, T *out)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        store_rounded(out + i, x[i]);
}

unsigned blocks_of(int64_t n) { return (unsigned)((n + 255) / 256); }

int cublas_fail(sol_err *err, const char *what, cublasStatus_t st)
{
    return sol_cuda_fail(err, "cuBLAS %s: %s", what, cublasGetStatusString(st));
}

double unit_roundoff(cudaDataType_t t) { return t == CUDA_R_16F ? 1.0 / 2048 : t == CUDA_R_16BF ? 1.0 / 256 : 0.0; }

} // namespace

// ---- the entries ---------------------------------------------------------------

void sol_cuda_tune_default(sol_dtype type, int max_inputs, sol_cuda_mv_config *out)
{
    sol_mv_params p = sol_mv_default(type, max_inputs);
    *out = sol_cuda_mv_config{p.rows_per_block, p.threads_per_row, p.vec_bytes, p.unroll, p.k_split, p.max_inputs};
}

int sol_cuda_tune_check(sol_dtype type, int64_t rows, int64_t cols, size_t row_bytes, const sol_cuda_mv_config *params,
                      char *why, size_t cap)
{
    sol_mv_variant v = {type, params_of(*params)};
    sol_mv_shape s = {rows, cols, row_bytes};
    return sol_mv_check_shape(&v, &s, why, cap);
}

int sol_cuda_tune_source(sol_cuda_mv_source *out, sol_err *err)
{
    memset(out, 0, sizeof *out);
    int major = 0, minor = 0, patch = 0;
    sol_mv_nvrtc_version(&major, &minor);
    if (major == 0)
        return sol_cuda_fail(err, "NVRTC does not say its version (libnvrtc missing or broken)");
    snprintf(out->hash, sizeof out->hash, "%016llx", (unsigned long long)sol_mv_source_key());
    snprintf(out->attn_hash, sizeof out->attn_hash, "%016llx", (unsigned long long)sol_av_source_key());
    snprintf(out->nvrtc, sizeof out->nvrtc, "%d.%d", major, minor);
    sol_mv_rtc_options(out->options, sizeof out->options);
    if (cublasGetProperty(MAJOR_VERSION, &major) != CUBLAS_STATUS_SUCCESS ||
        cublasGetProperty(MINOR_VERSION, &minor) != CUBLAS_STATUS_SUCCESS ||
        cublasGetProperty(PATCH_LEVEL, &patch) != CUBLAS_STATUS_SUCCESS)
        return sol_cuda_fail(err, "cuBLAS does not say its version");
    snprintf(out->cublas, sizeof out->cublas, "%d.%d.%d", major, minor, patch);
    return 0;
}

int sol_cuda_tune_trial(int device, const sol_cuda_mv_request *req, sol_cuda_mv_result *out, sol_err *err)
{
    result_init(out);
    sol_mv_variant v = {req->type, params_of(req->params), req->rmsnorm ? 1 : 0};
    sol_mv_label(&v, out->label, sizeof out->label);
    if (int rc = check_request(req, err))
        return rc;
    sol_mv_shape shape = {req->rows, req->cols, sol_tune_row_bytes(req->type, req->cols)};
    if (sol_mv_check_shape(&v, &shape, out->why, sizeof out->why)) {
        out->status = SOL_CUDA_TRIAL_INVALID;
        return 0;
    }
    int sm = 0;
    int64_t l2 = 0;
    if (int rc = open_device(device, &sm, &l2, err))
        return rc;

    sol_mv_compiler compiler = {req->cache_dir, 0, 0};
    sol_mv_image img;
    sol_err build_err = {0, ""};
    int built = sol_mv_build(&compiler, &v, sm, &img, out->notice, sizeof out->notice, &build_err);
    out->registers = img.res.registers;
    out->spill_bytes = img.res.spill_store_bytes + img.res.spill_load_bytes;
    out->stack_bytes = img.res.stack_bytes;
    out->smem_bytes = img.res.smem_bytes;
    out->compile_ms = img.compile_ms;
    out->from_cache = img.from_cache;
    if (built == SOL_MV_INVALID || built == SOL_MV_REJECTED) {
        out->status = built == SOL_MV_INVALID ? SOL_CUDA_TRIAL_INVALID : SOL_CUDA_TRIAL_REJECTED;
        snprintf(out->why, sizeof out->why, "%.255s", build_err.msg);
        return 0;
    }
    if (built != SOL_MV_OK)
        return sol_cuda_fail(err, "%s for sm_%d: %s", out->label, sm, build_err.msg);

    problem &p = g_problem;
    if (int rc = prepare(p, device, l2, req, err))
        return rc;
    sol_mv_launch g = sol_mv_geometry(&v, &shape, std::min(v.p.max_inputs, req->m));
    if (g.workspace_bytes > p.ws_bytes) {
        if (p.ws)
            cudaFree(p.ws);
        p.ws = nullptr;
        p.ws_bytes = 0;
        CUDA_OK(cudaMalloc(reinterpret_cast<void **>(&p.ws), g.workspace_bytes));
        p.ws_bytes = g.workspace_bytes;
    }
    library lib;
    cudaKernel_t mv = nullptr, sum = nullptr;
    CUDA_OK(cudaLibraryLoadData(&lib.lib, img.cubin.data(), nullptr, nullptr, 0, nullptr, nullptr, 0));
    CUDA_OK(cudaLibraryGetKernel(&mv, lib.lib, img.kernel));
    if (img.sum[0])
        CUDA_OK(cudaLibraryGetKernel(&sum, lib.lib, img.sum));
    auto run = [&] { return launch_variant(p, mv, sum, v, req->m); };

    std::vector<float> y;
    cudaError_t e = answer(p, (size_t)req->m * (size_t)p.rows, run, &y);
    if (e != cudaSuccess) {
        if (context_lost())
            return lost(p, out, e, err);
        out->status = SOL_CUDA_TRIAL_REJECTED; // would not launch: resources, configuration
        snprintf(out->why, sizeof out->why, "launch: %s", cudaGetErrorString(e));
        return 0;
    }
    judge(p, req->m, y, v.rmsnorm ? sol_tune_rms_bound(req->cols) : sol_tune_f32_bound(req->cols), out);
    out->bytes = (double)req->rows * (double)p.row_bytes + 4.0 * req->m * ((double)req->cols + (double)req->rows) +
                 (v.rmsnorm ? 4.0 * (double)req->cols : 0.0); // and the norm vector
    if (!out->correct)
        return 0; // a wrong variant is never timed, never chosen
    return time_and_count(
        p, run, req->reps, req->counters, out, [&](cudaError_t fault) { return lost(p, out, fault, err); },
        [&] { release(p); }, err);
}

int sol_cuda_tune_cublas(int device, const sol_cuda_mv_request *req, sol_cuda_mv_result *out, sol_err *err)
{
    result_init(out);
    if (int rc = check_request(req, err))
        return rc;
    // cuBLAS has no RMSNorm to fold in: refused rather than timed on the
    // pre-normalised input, which would compare a different amount of work
    // (the fused kernel's baseline is the plain matvec's, tuned on its own)
    if (req->rmsnorm) {
        snprintf(out->label, sizeof out->label, "cuBLAS (no fused RMSNorm)");
        out->status = SOL_CUDA_TRIAL_INVALID;
        snprintf(out->why, sizeof out->why, "cuBLAS has no fused RMSNorm matvec: the fused kernel has no cuBLAS "
                 "baseline");
        return 0;
    }
    int sm = 0;
    int64_t l2 = 0;
    if (int rc = open_device(device, &sm, &l2, err))
        return rc;
    problem &p = g_problem;
    if (int rc = prepare(p, device, l2, req, err))
        return rc;
    sol_weight_view view = {p.type, p.w, p.rows, p.cols, p.row_bytes};
    sol_cuda_gemm_plan plan = sol_cuda_gemm_plan_for(&view, req->m);
    const char *x_type = plan.b_type == CUDA_R_16BF ? "bf16" : plan.b_type == CUDA_R_16F ? "f16" : "f32";
    if (p.type == SOL_DT_F32 || p.type == SOL_DT_F16 || p.type == SOL_DT_BF16)
        snprintf(out->label, sizeof out->label, "cublasGemmEx on the %s weights in place, x in %s",
                 sol_mv_type_name(p.type), x_type);
    else
        snprintf(out->label, sizeof out->label, "cublasGemmEx on the f16 decoding of the %s weights, x in f16",
                 sol_mv_type_name(p.type));
    if (!plan.ok) {
        out->status = SOL_CUDA_TRIAL_INVALID;
        snprintf(out->why, sizeof out->why, "cuBLAS does not take a %lldx%lld %s matrix", (long long)p.rows,
                 (long long)p.cols, sol_mv_type_name(p.type));
        return 0;
    }
    cublasStatus_t st;
    if (!p.cublas) {
        if ((st = cublasCreate(&p.cublas)) != CUBLAS_STATUS_SUCCESS) {
            p.cublas = nullptr;
            return cublas_fail(err, "cublasCreate", st);
        }
        if ((st = cublasSetStream(p.cublas, p.stream)) != CUBLAS_STATUS_SUCCESS)
            return cublas_fail(err, "cublasSetStream", st);
    }
    // the operands cuBLAS takes, made before anything is timed
    const void *a = p.w, *b = p.x;
    if (plan.w_scratch_bytes) {
        if (!p.w16) {
            CUDA_OK(cudaMalloc(&p.w16, plan.w_scratch_bytes));
            decode_f16_kernel<<<blocks_of(p.rows * (p.cols / 8)), 256, 0, p.stream>>>(
                p.w, p.row_bytes, p.type, p.rows, p.cols, static_cast<__half *>(p.w16));
            CUDA_OK(cudaGetLastError());
        }
        a = p.w16;
    }
    if (plan.x_scratch_bytes) {
        if (!p.x16)
            CUDA_OK(cudaMalloc(&p.x16, (size_t)kMaxInputs * (size_t)p.cols * 2));
        int64_t n = (int64_t)req->m * p.cols;
        if (plan.b_type == CUDA_R_16BF)
            round_kernel<<<blocks_of(n), 256, 0, p.stream>>>(p.x, n, static_cast<__nv_bfloat16 *>(p.x16));
        else
            round_kernel<<<blocks_of(n), 256, 0, p.stream>>>(p.x, n, static_cast<__half *>(p.x16));
        CUDA_OK(cudaGetLastError());
        b = p.x16;
    }
    CUDA_OK(cudaStreamSynchronize(p.stream));
    cublasStatus_t last = CUBLAS_STATUS_SUCCESS;
    auto run = [&]() -> cudaError_t {
        const float one = 1.0f, zero = 0.0f;
        last = cublasGemmEx(p.cublas, plan.transa, plan.transb, plan.M, plan.N, plan.K, &one, a, plan.a_type, plan.lda,
                            b, plan.b_type, plan.ldb, &zero, p.y, plan.c_type, plan.ldc, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT);
        return last == CUBLAS_STATUS_SUCCESS ? cudaSuccess : cudaErrorUnknown;
    };
    std::vector<float> y;
    cudaError_t e = answer(p, (size_t)req->m * (size_t)p.rows, run, &y);
    if (last != CUBLAS_STATUS_SUCCESS)
        return cublas_fail(err, "cublasGemmEx", last);
    if (e != cudaSuccess)
        return sol_cuda_fail(err, "cuBLAS baseline: %s", cudaGetErrorString(e));
    // the inputs' rounding (x, and the weights of block types, to 16 bits:
    // each product moves by at most u_x + u_w + u_x u_w of itself), and the
    // f32 accumulation's bound four times over (cuBLAS's order is its own)
    double ux = unit_roundoff(plan.b_type), uw = plan.w_scratch_bytes ? unit_roundoff(plan.a_type) : 0.0;
    judge(p, req->m, y, ux + uw + ux * uw + 4 * sol_tune_f32_bound(req->cols), out);
    double a_elem = plan.a_type == CUDA_R_32F ? 4 : 2, b_elem = plan.b_type == CUDA_R_32F ? 4 : 2;
    out->bytes = (double)plan.M * plan.lda * a_elem + (double)req->m * plan.K * b_elem + 4.0 * req->m * plan.M;
    timing t;
    if ((e = time_runs(p, req->reps, run, &t)) != cudaSuccess) {
        if (last != CUBLAS_STATUS_SUCCESS)
            return cublas_fail(err, "cublasGemmEx", last);
        return sol_cuda_fail(err, "cuBLAS baseline: timing: %s", cudaGetErrorString(e));
    }
    out->median_s = t.median;
    out->min_s = t.min;
    out->max_s = t.max;
    out->reps = req->reps;
    return count_run(p, run, req->counters, out, err);
}

void sol_cuda_tune_release(void)
{
    release(g_problem);
    sol_cuda_attn_release(); // mv_release frees the attention trials' problem too (plugin.h)
    close_counting();
}
