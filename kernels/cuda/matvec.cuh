// The decode matmul: y[i] = W x[i] (+ bias) for up to 8 inputs, straight
// from the stored weight rows (every type dequant.cuh decodes), as a
// template the autotuner instantiates: nvcc builds the defaults into the
// plugin (ops.cu), NVRTC compiles other variants of this same file at run
// time (variant_compile.cu), so it includes nothing but dequant.cuh and
// rmsnorm.cuh.
//
// A block computes rows_per_block rows, threads_per_row threads each. It
// walks K in tiles: the block copies each row's tile of stored bytes into
// shared memory with vec_bytes-wide loads, then every thread decodes unroll
// groups of 8 weights of its row (sol_dq8) against each input, accumulating
// in f32; a row's threads add their sums with warp shuffles (and shared
// memory past 32 threads). With k_split > 1, blockIdx.y takes one slice of
// K and writes a partial sum; sol_matvec_sum adds the slices in order (so
// results do not depend on scheduling, unlike atomics).
//
// sol_matvec_rmsnorm is the same walk over the weights with RMSNorm folded
// into its input (rmsnorm.cuh): the engine's norm and the matmuls after it
// in one pass.
#ifndef SOL_KERNELS_CUDA_MATVEC_CUH
#define SOL_KERNELS_CUDA_MATVEC_CUH

#include "kernels/cuda/dequant.cuh"
#include "kernels/cuda/rmsnorm.cuh"

// One variant's parameters; variant.cu says which are valid for a shape.
struct sol_mv_params {
    int rows_per_block;  // weight rows per block
    int threads_per_row; // 1, 2, 4, 8, 16, 32 or a multiple of 32
    int vec_bytes;       // width of the loads that stage the weights: 2, 4, 8 or 16
    int unroll;          // groups of 8 weights per thread per tile
    int k_split;         // slices of K (1: none)
    int max_inputs;      // inputs per pass over the weights, 1..8
};

// The built-in variant of each type, valid for every shape the backend
// takes (K a multiple of the block, and of 8): the loads are as wide as the
// type's block size guarantees any row's start to be aligned.
SOL_HD constexpr sol_mv_params sol_mv_default(sol_dtype t, int max_inputs)
{
    int vec = t == SOL_DT_Q4_1 ? 4 : t == SOL_DT_Q8_0 || t == SOL_DT_Q4_0 || t == SOL_DT_Q6_K ? 2 : 16;
    return sol_mv_params{4, 32, vec, 2, 1, max_inputs};
}

// Elements and stored bytes of one tile (a whole number of blocks).
SOL_HD constexpr int sol_mv_tile_elems(int threads_per_row, int unroll) { return threads_per_row * unroll * 8; }
SOL_HD constexpr int64_t sol_mv_bytes_of(sol_dtype t, int64_t elems)
{
    return elems / sol_cuda_block_elems(t) * sol_cuda_block_bytes(t);
}

// Unrolled on the device; the host compiler (the host model) knows no such pragma.
#ifdef __CUDA_ARCH__
#define SOL_MV_UNROLL _Pragma("unroll")
#else
#define SOL_MV_UNROLL
#endif

template <int VEC> struct sol_mv_vec;
template <> struct sol_mv_vec<2> { typedef unsigned short type; };
template <> struct sol_mv_vec<4> { typedef unsigned int type; };
template <> struct sol_mv_vec<8> { typedef uint2 type; };
template <> struct sol_mv_vec<16> { typedef uint4 type; };

// Thread `thread` of `threads` copies its share of `rows` rows of `bytes`
// each (a multiple of VEC) from src (rows src_stride apart) to dst (rows
// dst_stride apart), VEC bytes at a time; consecutive threads take
// consecutive vectors of a row. Both sides are VEC-aligned (variant.cu).
template <int VEC>
SOL_HD void sol_mv_stage(uint8_t *dst, int dst_stride, const uint8_t *src, size_t src_stride, int rows, int bytes,
                         int thread, int threads)
{
    int per_row = bytes / VEC;
    for (int v = thread; v < rows * per_row; v += threads) {
        uint8_t *d = dst + (size_t)(v / per_row) * dst_stride + (size_t)(v % per_row) * VEC;
        const uint8_t *s = src + (size_t)(v / per_row) * src_stride + (size_t)(v % per_row) * VEC;
#ifdef __CUDA_ARCH__
        *reinterpret_cast<typename sol_mv_vec<VEC>::type *>(d) =
            *reinterpret_cast<const typename sol_mv_vec<VEC>::type *>(s);
#else
        memcpy(d, s, VEC); // the host model (tests/cuda/test_variants.cu)
#endif
    }
}

// x[0..8) into v: two 16-byte loads on the device (x 16-byte aligned).
SOL_HD void sol_mv_load_x8(const float *x, float v[8])
{
#ifdef __CUDA_ARCH__
    float4 a = reinterpret_cast<const float4 *>(x)[0], b = reinterpret_cast<const float4 *>(x)[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
#else
    for (int j = 0; j < 8; j++)
        v[j] = x[j];
#endif
}

// One thread's share of one staged tile: groups lane, lane + TPR, ... (UNROLL
// of them, those below `groups`) decoded from `tile` and multiplied into
// acc[i] for inputs i < m; x points at the tile's first element of input 0,
// inputs k apart. NORM: each input element is first normalised,
// sol_rms_apply(x, scale[i], norm[..]), norm pointing at the tile's first
// weight of the norm (sol_matvec_rmsnorm); without it the code is the plain
// matvec's.
template <sol_dtype T, int TPR, int UNROLL, int M, bool NORM = false>
SOL_HD void sol_mv_tile_dot(const uint8_t *tile, int lane, int groups, const float *x, int64_t k, int m, float acc[M],
                            const float *norm = nullptr, const float *scale = nullptr)
{
    SOL_MV_UNROLL
    for (int u = 0; u < UNROLL; u++) {
        int g = u * TPR + lane;
        if (g < groups) {
            float wv[8], xv[8], nv[8];
            sol_dq8(T, tile, g, wv);
            if constexpr (NORM)
                sol_mv_load_x8(norm + 8 * g, nv); // the same 8 weights for every input
            SOL_MV_UNROLL
            for (int i = 0; i < M; i++) {
                if (i < m) {
                    sol_mv_load_x8(x + (size_t)i * k + 8 * g, xv);
                    if constexpr (NORM)
                        for (int j = 0; j < 8; j++)
                            xv[j] = sol_rms_apply(xv[j], scale[i], nv[j]);
                    for (int j = 0; j < 8; j++)
                        acc[i] += wv[j] * xv[j];
                }
            }
        }
    }
}

// The sum of v over the TPR threads of each row, in every one of them.
// Past 32 threads the warps meet in s_warp (one float per warp of the
// block); every thread of the block must call it.
template <int TPR>
__device__ float sol_mv_row_sum(float v, float *s_warp)
{
    for (int o = (TPR < 32 ? TPR : 32) / 2; o > 0; o /= 2)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    if (TPR > 32) {
        int warps = TPR / 32, first = threadIdx.x / TPR * warps;
        __syncthreads(); // s_warp is free (an earlier call has read it)
        if (threadIdx.x % 32 == 0)
            s_warp[threadIdx.x / 32] = v;
        __syncthreads();
        v = 0;
        for (int w = 0; w < warps; w++)
            v += s_warp[first + w];
    }
    return v;
}

// sol_matvec's body (below), a function so that sol_matvec_rmsnorm walks
// the weights the same way; NORM as in sol_mv_tile_dot, with norm the
// whole norm vector (k weights) and scale[i] input i's.
template <sol_dtype T, int RPB, int TPR, int VEC, int UNROLL, int KSPLIT, int M, bool NORM = false>
__device__ inline void sol_mv_rows(const uint8_t *w, size_t row_bytes, int64_t rows, int64_t k, const float *bias,
                                   const float *x, int m, float *y, const float *norm = nullptr,
                                   const float *scale = nullptr)
{
    constexpr int kTileElems = sol_mv_tile_elems(TPR, UNROLL), kTileBytes = (int)sol_mv_bytes_of(T, kTileElems);
    static_assert(kTileElems % sol_cuda_block_elems(T) == 0 && kTileBytes % VEC == 0, "tile of whole blocks");
    __shared__ __align__(16) uint8_t s_tile[RPB * kTileBytes];
    __shared__ float s_warp[TPR > 32 ? RPB * TPR / 32 : 1];
    const int rr = threadIdx.x / TPR, lane = threadIdx.x % TPR;
    const int64_t row0 = (int64_t)blockIdx.x * RPB;
    const int rows_here = rows - row0 < RPB ? (int)(rows - row0) : RPB;
    const int64_t slice_elems = k / KSPLIT, first = blockIdx.y * slice_elems;
    const uint8_t *src = w + row0 * row_bytes + blockIdx.y * (row_bytes / KSPLIT);
    float acc[M];
#pragma unroll
    for (int i = 0; i < M; i++)
        acc[i] = 0;
    // Every thread runs every tile, so the barriers and shuffles see the
    // whole block; rows past the end stage and write nothing.
    for (int64_t e = 0; e < slice_elems; e += kTileElems) {
        int elems = slice_elems - e < kTileElems ? (int)(slice_elems - e) : kTileElems;
        __syncthreads(); // the previous tile has been read
        sol_mv_stage<VEC>(s_tile, kTileBytes, src + sol_mv_bytes_of(T, e), row_bytes, rows_here,
                          (int)sol_mv_bytes_of(T, elems), threadIdx.x, RPB * TPR);
        __syncthreads();
        if (rr < rows_here)
            sol_mv_tile_dot<T, TPR, UNROLL, M, NORM>(s_tile + rr * kTileBytes, lane, elems / 8, x + first + e, k, m,
                                                     acc, NORM ? norm + first + e : nullptr, scale);
    }
#pragma unroll
    for (int i = 0; i < M; i++) {
        if (i >= m) // m is the block's: every thread takes the same branch
            continue;
        float sum = sol_mv_row_sum<TPR>(acc[i], s_warp);
        if (lane == 0 && rr < rows_here) {
            int64_t r = row0 + rr;
            if (KSPLIT == 1)
                y[i * rows + r] = sum + (bias ? bias[r] : 0.0f);
            else
                y[(blockIdx.y * m + i) * rows + r] = sum;
        }
    }
}

// y[i * rows + r] = W[r] . x[i * k ..] (+ bias[r]) for i < m <= M, rows r
// of this block. With KSPLIT > 1, slice s = blockIdx.y of K goes to
// y[(s * m + i) * rows + r] without bias, for sol_matvec_sum. No launch
// bounds: ptxas takes the registers it wants, and the tuner rejects a
// variant whose registers x threads exceed an SM's (variant_compile.cu).
template <sol_dtype T, int RPB, int TPR, int VEC, int UNROLL, int KSPLIT, int M>
__global__ void sol_matvec(const uint8_t *w, size_t row_bytes, int64_t rows, int64_t k, const float *bias,
                           const float *x, int m, float *y)
{
    sol_mv_rows<T, RPB, TPR, VEC, UNROLL, KSPLIT, M>(w, row_bytes, rows, k, bias, x, m, y);
}

// Input i's RMSNorm scale (i < m) into scale[i], every thread of the block
// computing rmsnorm_kernel's bits for rows of k (rmsnorm.cuh); warp_sums
// holds M * kSolRmsWarps doubles of shared memory.
template <int M>
__device__ inline void sol_mv_rms_scales(const float *x, int64_t k, int m, float eps, double *warp_sums,
                                         float scale[M])
{
    for (int i = 0; i < m && i < M; i++)
        sol_rms_warp_sums(x + (size_t)i * k, k, kSolRmsThreads, warp_sums + i * kSolRmsWarps);
    __syncthreads();
#pragma unroll
    for (int i = 0; i < M; i++)
        scale[i] = i < m ? sol_rms_scale(sol_rms_total(warp_sums + i * kSolRmsWarps, kSolRmsWarps), k, eps) : 0.0f;
}

// This block's share of xb = RMSNorm(x) (m rows of k): elements
// blockIdx.x * blockDim.x + threadIdx.x, then a grid's worth of threads
// apart, so the launch's blocks write it once between them.
template <int M>
__device__ inline void sol_mv_rms_store(const float *x, const float *norm, const float scale[M], int64_t k, int m,
                                        float *xb)
{
    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < m * k; e += step) {
        int i = (int)(e / k);
        float s = scale[0];
#pragma unroll
        for (int r = 1; r < M; r++) // a register array: no dynamic index
            s = i == r ? scale[r] : s;
        xb[e] = sol_rms_apply(x[e], s, norm[e % k]);
    }
}

// sol_matvec (KSPLIT 1) of RMSNorm(x) by norm, eps: y[i * rows + r] =
// W[r] . xb[i] (+ bias[r]) with xb[i] = x[i] * scale_i * norm, the bits
// rmsnorm_kernel writes (each block computes the m scales itself: no
// launch waits for a norm). xb non-NULL: the launch also stores xb for the
// ops after it (one launch of a group does). The emulated layout needs
// whole warps.
template <sol_dtype T, int RPB, int TPR, int VEC, int UNROLL, int M>
__global__ void sol_matvec_rmsnorm(const uint8_t *w, size_t row_bytes, int64_t rows, int64_t k, const float *bias,
                                   const float *x, const float *norm, float eps, int m, float *y, float *xb)
{
    static_assert(RPB * TPR % kSolRmsWarp == 0, "whole warps");
    __shared__ double s_warp_sums[M * kSolRmsWarps];
    float scale[M];
    sol_mv_rms_scales<M>(x, k, m, eps, s_warp_sums, scale);
    if (xb) // the same for every thread
        sol_mv_rms_store<M>(x, norm, scale, k, m, xb);
    sol_mv_rows<T, RPB, TPR, VEC, UNROLL, 1, M, true>(w, row_bytes, rows, k, bias, x, m, y, norm, scale);
}

// y[t] = the KSPLIT slices' partial sums of element t of n = m * rows,
// added in slice order, + bias[t % rows].
template <int KSPLIT>
__global__ void sol_matvec_sum(const float *partial, int64_t n, int64_t rows, const float *bias, float *y)
{
    int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n)
        return;
    float sum = 0;
    for (int s = 0; s < KSPLIT; s++)
        sum += partial[s * n + t];
    y[t] = sum + (bias ? bias[t % rows] : 0.0f);
}

#endif
