// The CUDA backend's ops: plain, correct first kernels for every op of the
// plan but MoE's (route, moe_ffn) and MLA's (head_matmul, latent_kv_write),
// f32 activations, f32 accumulation. Matmuls run matvec.cuh's
// template with each type's built-in parameters (the autotuner compiles
// others with NVRTC); the warp-per-row kernel here stays for shapes those
// do not fit. rmsnorm_matmul_group folds the norm into the matvecs after
// it, bit for bit the unfused answer (rmsnorm.cuh). Attention is in
// attention.cu. Each launcher blames a failed launch on the op marked
// before it (sol_cuda_note).
#include <cuda_fp16.h>

#include <cmath>
#include <type_traits>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/dequant.cuh"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/cuda/matvec.cuh"
#include "kernels/cuda/tuned.h"
#include "kernels/cuda/variant.h"

namespace {

constexpr int kWarp = 32;

__device__ float warp_sum(float v)
{
    for (int o = kWarp / 2; o > 0; o /= 2)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Elements [0, cols) of a stored row as f32, spread over the threads of a
// block (groups of 8; plain types may end in a partial group).
__device__ void block_dequant_row(sol_dtype t, const uint8_t *row, int64_t cols, float *out)
{
    for (int64_t g = threadIdx.x; g < cols / 8; g += blockDim.x) {
        float y[8];
        sol_dq8(t, row, g, y);
        for (int i = 0; i < 8; i++)
            out[8 * g + i] = y[i];
    }
    for (int64_t i = cols / 8 * 8 + threadIdx.x; i < cols; i += blockDim.x)
        out[i] = sol_dq_plain(t, row, i);
}

__global__ void embed_kernel(sol_weight_view table, const int32_t *tokens, float *out)
{
    int r = blockIdx.x;
    const uint8_t *row = static_cast<const uint8_t *>(table.data) + (size_t)tokens[r] * table.row_bytes;
    block_dequant_row(table.type, row, table.cols, out + (size_t)r * table.cols);
}

// One block per row; the sum of squares in double, as the CPU backend adds
// it, in the layout of the block's own threads (rmsnorm.cuh: the fused
// matvecs reproduce the 256-thread one). In place (out == x) too: each
// thread reads its elements for the sum before the barrier and writes only
// those after it (head_rmsnorm).
__global__ void rmsnorm_kernel(const float *x, const float *weight, float eps, int64_t n, float *out)
{
    __shared__ double warp_sums[32];
    const float *row = x + (size_t)blockIdx.x * n;
    sol_rms_warp_sums(row, n, blockDim.x, warp_sums);
    __syncthreads();
    float scale = sol_rms_scale(sol_rms_total(warp_sums, blockDim.x / kWarp), n, eps);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        out[(size_t)blockIdx.x * n + i] = sol_rms_apply(row[i], scale, weight[i]);
}

constexpr int kMatmulWarps = 4;   // rows of W per block, one warp each
constexpr int kMatmulInputs = 4;  // inputs per pass over a weight row

// y[i, r] = x[i] . W[r] (+ bias[r]) for i < m: one warp per weight row; each
// lane decodes groups of 8 weights once for up to kMatmulInputs inputs.
// The reference, for shapes the matvec defaults do not fit (plain types
// whose rows are not groups of 8, unaligned inputs).
__global__ void matmul_kernel(sol_weight_view w, const float *bias, const float *x, int m, float *y)
{
    int64_t r = (int64_t)blockIdx.x * kMatmulWarps + threadIdx.x / kWarp;
    int lane = threadIdx.x % kWarp;
    if (r >= w.rows)
        return;
    const uint8_t *row = static_cast<const uint8_t *>(w.data) + (size_t)r * w.row_bytes;
    int64_t k = w.cols, groups = k / 8;
    for (int i0 = 0; i0 < m; i0 += kMatmulInputs) {
        int n = m - i0 < kMatmulInputs ? m - i0 : kMatmulInputs;
        float acc[kMatmulInputs] = {0, 0, 0, 0};
        for (int64_t g = lane; g < groups; g += kWarp) {
            float wv[8];
            sol_dq8(w.type, row, g, wv);
            for (int i = 0; i < n; i++) {
                const float *xi = x + (size_t)(i0 + i) * k + 8 * g;
                for (int j = 0; j < 8; j++)
                    acc[i] += wv[j] * xi[j];
            }
        }
        for (int64_t c = groups * 8 + lane; c < k; c += kWarp) { // plain types: a partial group
            float wv = sol_dq_plain(w.type, row, c);
            for (int i = 0; i < n; i++)
                acc[i] += wv * x[(size_t)(i0 + i) * k + c];
        }
        for (int i = 0; i < n; i++) {
            float s = warp_sum(acc[i]);
            if (lane == 0)
                y[(size_t)(i0 + i) * w.rows + r] = s + (bias ? bias[r] : 0.0f);
        }
    }
}

__global__ void add_kernel(float *x, const float *y, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] += y[i];
}

__global__ void swiglu_kernel(float *gate, const float *up, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

__global__ void scale_kernel(float *x, float s, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] *= s;
}

__global__ void softcap_kernel(float *x, float cap, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] = sol_softcapped(x[i], cap);
}

__global__ void geglu_kernel(float *gate, const float *up, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        gate[i] = sol_gelu_tanh(gate[i]) * up[i];
}

constexpr int kArgmaxThreads = 1024;

// One block: the largest value (NaNs never win), then its first index;
// no element equal to it (all NaN) gives 0, as util/argmax.h says.
__global__ void argmax_kernel(const float *x, int64_t n, int32_t *out)
{
    __shared__ float s_max[kArgmaxThreads / kWarp];
    __shared__ int64_t s_first[kArgmaxThreads / kWarp];
    int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp, warps = blockDim.x / kWarp;
    float best = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        best = x[i] > best ? x[i] : best;
    for (int o = kWarp / 2; o > 0; o /= 2) {
        float other = __shfl_xor_sync(0xffffffffu, best, o);
        best = other > best ? other : best;
    }
    if (lane == 0)
        s_max[warp] = best;
    __syncthreads();
    best = -INFINITY;
    for (int w = 0; w < warps; w++)
        best = s_max[w] > best ? s_max[w] : best;
    int64_t first = n;
    for (int64_t i = threadIdx.x; i < n && first == n; i += blockDim.x)
        if (x[i] == best)
            first = i;
    for (int o = kWarp / 2; o > 0; o /= 2) {
        int64_t other = __shfl_xor_sync(0xffffffffu, first, o);
        first = other < first ? other : first;
    }
    if (lane == 0)
        s_first[warp] = first;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 0; w < warps; w++)
            first = s_first[w] < first ? s_first[w] : first;
        *out = first < n ? (int32_t)first : 0;
    }
}

unsigned blocks_for(int64_t n, int threads) { return (unsigned)((n + threads - 1) / threads); }

// Launches nothing after an error.
bool live(cuda_ctx *c) { return !c->failed; }

void cuda_embed(sol_backend *b, const sol_weight_view *table, float *out)
{
    cuda_ctx *c = cuda_of(b);
    if (!live(c) || c->rows < 1)
        return;
    sol_cuda_launch(c, embed_kernel, c->rows, 256, 0, *table, c->tokens, out);
}

void cuda_rmsnorm(sol_backend *b, const float *x, const float *weight, float eps, int64_t n, float *out)
{
    cuda_ctx *c = cuda_of(b);
    if (!live(c) || c->rows < 1)
        return;
    sol_cuda_launch(c, rmsnorm_kernel, c->rows, kSolRmsThreads, 0, x, weight, eps, n, out);
}

// f(std::integral_constant<sol_dtype, T>) for the weight type t, so one
// switch serves every launcher templated on the type.
template <typename F> void with_type(sol_dtype t, F f)
{
    switch (t) {
    case SOL_DT_F32: return f(std::integral_constant<sol_dtype, SOL_DT_F32>{});
    case SOL_DT_F16: return f(std::integral_constant<sol_dtype, SOL_DT_F16>{});
    case SOL_DT_BF16: return f(std::integral_constant<sol_dtype, SOL_DT_BF16>{});
    case SOL_DT_Q8_0: return f(std::integral_constant<sol_dtype, SOL_DT_Q8_0>{});
    case SOL_DT_Q4_0: return f(std::integral_constant<sol_dtype, SOL_DT_Q4_0>{});
    case SOL_DT_Q4_1: return f(std::integral_constant<sol_dtype, SOL_DT_Q4_1>{});
    case SOL_DT_Q4_K: return f(std::integral_constant<sol_dtype, SOL_DT_Q4_K>{});
    case SOL_DT_Q6_K: return f(std::integral_constant<sol_dtype, SOL_DT_Q6_K>{});
    default: return; // not in caps.weight_types: the engine refused it at load
    }
}

// The built-in matvec of type T for up to M inputs (sol_mv_default).
template <sol_dtype T, int M>
void matvec_default(cuda_ctx *c, const sol_weight_view *w, const float *bias, const float *x, int m, float *y)
{
    constexpr sol_mv_params p = sol_mv_default(T, M);
    static_assert(p.k_split == 1, "the defaults need no workspace");
    sol_cuda_launch(c, sol_matvec<T, p.rows_per_block, p.threads_per_row, p.vec_bytes, p.unroll, p.k_split, M>,
                    blocks_for(w->rows, p.rows_per_block), p.rows_per_block * p.threads_per_row, 0,
                    static_cast<const uint8_t *>(w->data), w->row_bytes, w->rows, w->cols, bias, x, m, y);
}

template <int M>
void matvec_default_of(cuda_ctx *c, const sol_weight_view *w, const float *bias, const float *x, int m, float *y)
{
    with_type(w->type, [&](auto t) { matvec_default<decltype(t)::value, M>(c, w, bias, x, m, y); });
}

// The built-in matvec of type T, as matvec_default, of RMSNorm(x) by norm
// (sol_matvec_rmsnorm); xb non-NULL: this launch stores the norm's output.
template <sol_dtype T, int M>
void matvec_rmsnorm_default(cuda_ctx *c, const sol_weight_view *w, const float *bias, const float *x,
                            const float *norm, float eps, int m, float *y, float *xb)
{
    constexpr sol_mv_params p = sol_mv_default(T, M);
    sol_cuda_launch(c, sol_matvec_rmsnorm<T, p.rows_per_block, p.threads_per_row, p.vec_bytes, p.unroll, M>,
                    blocks_for(w->rows, p.rows_per_block), p.rows_per_block * p.threads_per_row, 0,
                    static_cast<const uint8_t *>(w->data), w->row_bytes, w->rows, w->cols, bias, x, norm, eps, m, y,
                    xb);
}

template <int M>
void matvec_rmsnorm_default_of(cuda_ctx *c, const sol_weight_view *w, const float *bias, const float *x,
                               const float *norm, float eps, int m, float *y, float *xb)
{
    with_type(w->type,
              [&](auto t) { matvec_rmsnorm_default<decltype(t)::value, M>(c, w, bias, x, norm, eps, m, y, xb); });
}

constexpr int kPrefillInputs = 8; // inputs per pass of the defaults when m > 1

// Whether the defaults' rules (variant.cu) hold for this matrix and input.
bool default_fits(const sol_weight_view *w, const float *x)
{
    sol_mv_variant v = {w->type, sol_mv_default(w->type, kPrefillInputs)};
    sol_mv_shape shape = {w->rows, w->cols, w->row_bytes};
    return sol_mv_check_shape(&v, &shape, nullptr, 0) == 0 &&
           reinterpret_cast<uintptr_t>(w->data) % v.p.vec_bytes == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
}

// The tuner's winner for this matmul (tuned.h), when the backend loaded
// one that takes it: its matvec in one pass, then with k_split > 1 the
// slice sum from the partial sums in scratch. false: none (nothing launched).
bool tuned_matvec(cuda_ctx *c, const sol_weight_view *w, const float *bias, const float *x, int m, float *y)
{
    int i = sol_mv_tuned_find(c->tuned.data(), (int)c->tuned.size(), w->type, w->rows, w->cols, w->row_bytes, m,
                              w->data, x);
    if (i < 0)
        return false;
    const sol_cuda_tuned_kernels &k = c->tuned_kernels[(size_t)i];
    sol_mv_variant v = sol_mv_tuned_variant(&c->tuned[(size_t)i]);
    sol_mv_shape shape = {w->rows, w->cols, w->row_bytes};
    sol_mv_launch g = sol_mv_geometry(&v, &shape, m);
    bool split = v.p.k_split > 1;
    float *out = y;
    if (split && !(out = static_cast<float *>(sol_cuda_scratch(c, SOL_CUDA_SCRATCH_MV_SPLIT, g.workspace_bytes))))
        return true; // the error is noted
    sol_cuda_launch_handle(c, k.mv, dim3(g.grid_x, g.grid_y), dim3(g.threads), static_cast<const uint8_t *>(w->data),
                           w->row_bytes, (int64_t)w->rows, (int64_t)w->cols, split ? nullptr : bias, x, m, out);
    if (split) {
        int64_t n = (int64_t)m * w->rows;
        sol_cuda_launch_handle(c, k.sum, dim3(blocks_for(n, 256)), dim3(256), static_cast<const float *>(out), n,
                               (int64_t)w->rows, bias, y);
    }
    return true;
}

// The fused tuner's winner for this matmul of RMSNorm(x) (tuned.h), when
// the backend loaded one that takes it: one launch with the built-in's
// arguments, each of the exact type sol_matvec_rmsnorm's parameter has
// (the launch by handle passes them as they come). false: none.
bool tuned_matvec_rmsnorm(cuda_ctx *c, const sol_weight_view *w, const float *bias, const float *x,
                          const float *norm, float eps, int m, float *y, float *xb)
{
    int i = sol_mv_tuned_find_fused(c->tuned.data(), (int)c->tuned.size(), w->type, w->rows, w->cols, w->row_bytes,
                                    m, w->data, x);
    if (i < 0)
        return false;
    sol_mv_variant v = sol_mv_tuned_variant(&c->tuned[(size_t)i]);
    sol_mv_shape shape = {w->rows, w->cols, w->row_bytes};
    sol_mv_launch g = sol_mv_geometry(&v, &shape, m); // k_split 1: no workspace
    sol_cuda_launch_handle(c, c->tuned_kernels[(size_t)i].mv, dim3(g.grid_x, g.grid_y), dim3(g.threads),
                           static_cast<const uint8_t *>(w->data), w->row_bytes, (int64_t)w->rows, (int64_t)w->cols,
                           bias, x, norm, eps, m, y, xb);
    return true;
}

// Each head_dim slice of the step's rows normalised in place (Gemma-3's q
// and k norms): rmsnorm_kernel over rows * n_heads rows of head_dim, one
// block each, with the one weight vector of head_dim for every slice, so
// the arithmetic is rmsnorm's (the double sum), as on the CPU.
void cuda_head_rmsnorm(sol_backend *b, float *x, const float *weight, float eps, int n_heads, int head_dim)
{
    cuda_ctx *c = cuda_of(b);
    int64_t slices = (int64_t)c->rows * n_heads;
    if (!live(c) || slices < 1 || head_dim < 1)
        return;
    int threads = head_dim < 256 ? (head_dim + kWarp - 1) / kWarp * kWarp : 256; // whole warps
    sol_cuda_launch(c, rmsnorm_kernel, (unsigned)slices, threads, 0, x, weight, eps, (int64_t)head_dim, x);
}

void cuda_matmul(sol_backend *b, const sol_weight_view *w, const float *bias, const float *x, int m, float *y)
{
    cuda_ctx *c = cuda_of(b);
    if (!live(c) || m < 1)
        return;
    c->f32_gemm = b->activations == SOL_ACT_F32;
    if (sol_cuda_gemm_wanted(c, w, m))
        sol_cuda_gemm(c, w, bias, x, m, y);
    else if (m <= kPrefillInputs && tuned_matvec(c, w, bias, x, m, y))
        return;
    else if (!default_fits(w, x))
        sol_cuda_launch(c, matmul_kernel, blocks_for(w->rows, kMatmulWarps), kMatmulWarps * kWarp, 0, *w, bias, x, m,
                        y);
    else if (m == 1)
        matvec_default_of<1>(c, w, bias, x, 1, y);
    else
        for (int i = 0; i < m; i += kPrefillInputs) // the weights are read once per pass
            matvec_default_of<kPrefillInputs>(c, w, bias, x + (size_t)i * w->cols,
                                              m - i < kPrefillInputs ? m - i : kPrefillInputs,
                                              y + (size_t)i * w->rows);
}

void cuda_matmul_group(sol_backend *b, int n, const sol_weight_view *const *w, const float *const *bias,
                       const float *x, int m, float *const *y)
{
    for (int j = 0; j < n; j++)
        cuda_matmul(b, w[j], bias[j], x, m, y[j]);
}

// Whether the norm folds into the group's matvecs: each would take the
// built-in matvec on xb unfused (no cuBLAS, the defaults fit; one pass of
// at most kPrefillInputs inputs), and takes it on x fused, over the step's
// rows, all of the norm's width; the norm vector loads 8 floats at a time
// (16-byte aligned); xb is apart from x (other blocks read x while xb is
// written).
bool norm_folds(cuda_ctx *c, const float *x, const float *norm, int n, const sol_weight_view *const *w, int m,
                const float *xb)
{
    int64_t k = w[0]->cols;
    if (m != c->rows || m > kPrefillInputs || reinterpret_cast<uintptr_t>(norm) % 16 != 0 ||
        (x < xb + (size_t)m * k && xb < x + (size_t)m * k))
        return false;
    for (int j = 0; j < n; j++)
        if (w[j]->cols != k || sol_cuda_gemm_wanted(c, w[j], m) || !default_fits(w[j], x) || !default_fits(w[j], xb))
            return false;
    return true;
}

// RMSNorm into xb, then the n matmuls of xb: one launch per matmul, each a
// sol_matvec_rmsnorm whose blocks compute the norm's scales themselves (so
// none waits for a norm kernel), the first also storing xb for the ops
// after the group (its blocks share the writing: no block does all of it
// and no extra launch); a matrix with a fused winner of the tuner runs
// that instead of the built-in, the same arithmetic in another tiling.
// Shapes the fused matvec does not take run the
// unfused sequence, which gives the same bits.
void cuda_rmsnorm_matmul_group(sol_backend *b, const float *x, const float *norm, float eps, int n,
                               const sol_weight_view *const *w, const float *const *bias, int m, float *xb,
                               float *const *y)
{
    cuda_ctx *c = cuda_of(b);
    if (!live(c) || n < 1)
        return;
    c->f32_gemm = b->activations == SOL_ACT_F32; // what cuda_matmul would route by
    if (!norm_folds(c, x, norm, n, w, m, xb)) {
        cuda_rmsnorm(b, x, norm, eps, w[0]->cols, xb);
        cuda_matmul_group(b, n, w, bias, xb, m, y);
        return;
    }
    for (int j = 0; j < n; j++) {
        float *store = j == 0 ? xb : nullptr;
        if (tuned_matvec_rmsnorm(c, w[j], bias[j], x, norm, eps, m, y[j], store))
            continue;
        if (m == 1)
            matvec_rmsnorm_default_of<1>(c, w[j], bias[j], x, norm, eps, 1, y[j], store);
        else
            matvec_rmsnorm_default_of<kPrefillInputs>(c, w[j], bias[j], x, norm, eps, m, y[j], store);
    }
}

void cuda_add(sol_backend *b, float *x, const float *y, int64_t n)
{
    cuda_ctx *c = cuda_of(b);
    int64_t total = (int64_t)c->rows * n;
    if (!live(c) || total < 1)
        return;
    sol_cuda_launch(c, add_kernel, blocks_for(total, 256), 256, 0, x, y, total);
}

void cuda_swiglu(sol_backend *b, float *gate, const float *up, int64_t n)
{
    cuda_ctx *c = cuda_of(b);
    int64_t total = (int64_t)c->rows * n;
    if (!live(c) || total < 1)
        return;
    sol_cuda_launch(c, swiglu_kernel, blocks_for(total, 256), 256, 0, gate, up, total);
}

void cuda_scale(sol_backend *b, float *x, float s, int64_t n)
{
    cuda_ctx *c = cuda_of(b);
    int64_t total = (int64_t)c->rows * n;
    if (!live(c) || total < 1)
        return;
    sol_cuda_launch(c, scale_kernel, blocks_for(total, 256), 256, 0, x, s, total);
}

// m rows of n, explicit (the LM head may take only the last row); cap <= 0
// caps nothing, as on the CPU.
void cuda_softcap(sol_backend *b, float *x, float cap, int m, int64_t n)
{
    cuda_ctx *c = cuda_of(b);
    int64_t total = (int64_t)m * n;
    if (!live(c) || total < 1 || !(cap > 0))
        return;
    sol_cuda_launch(c, softcap_kernel, blocks_for(total, 256), 256, 0, x, cap, total);
}

void cuda_geglu(sol_backend *b, float *gate, const float *up, int64_t n)
{
    cuda_ctx *c = cuda_of(b);
    int64_t total = (int64_t)c->rows * n;
    if (!live(c) || total < 1)
        return;
    sol_cuda_launch(c, geglu_kernel, blocks_for(total, 256), 256, 0, gate, up, total);
}

void cuda_argmax(sol_backend *b, const float *x, int64_t n, int32_t *out)
{
    cuda_ctx *c = cuda_of(b);
    if (!live(c) || n < 1)
        return;
    sol_cuda_launch(c, argmax_kernel, 1, kArgmaxThreads, 0, x, n, out);
}

} // namespace

void sol_cuda_ops_init(sol_backend *b)
{
    b->embed = cuda_embed;
    b->rmsnorm = cuda_rmsnorm;
    b->matmul = cuda_matmul;
    b->matmul_group = cuda_matmul_group;
    b->rmsnorm_matmul_group = cuda_rmsnorm_matmul_group;
    b->rope = sol_cuda_rope; // rope_kv.cu
    b->rope_kv_write = sol_cuda_rope_kv_write;
    b->kv_write = sol_cuda_kv_write;
    b->attention = sol_cuda_attention; // attention.cu
    b->add = cuda_add;
    b->swiglu = cuda_swiglu;
    // ABI 4: Gemma's and Phi-3's ops. route and moe_ffn (MoE) and
    // head_matmul and latent_kv_write (MLA) stay NULL: the engine refuses
    // those models on this backend in one line naming the op.
    b->scale = cuda_scale;
    b->softcap = cuda_softcap;
    b->geglu = cuda_geglu;
    b->head_rmsnorm = cuda_head_rmsnorm;
    b->argmax = cuda_argmax;
    b->top_k = sol_cuda_top_k; // topk.cu
}
