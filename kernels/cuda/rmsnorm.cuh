// RMSNorm's arithmetic on the GPU, shared by the rmsnorm op (ops.cu's
// rmsnorm_kernel) and the matvec that folds the norm into its input
// (matvec.cuh's sol_matvec_rmsnorm), so that the fused matmul sees the very
// bits the rmsnorm op writes to xb.
//
// The sum of squares is the order-dependent part. It is defined by a
// "layout" of L threads (L a multiple of 32; rmsnorm_kernel's block size):
// thread t adds elements t, t + L, ... in double; each warp of 32 adds its
// threads' sums by an xor-shuffle tree; the L / 32 warp sums are added in
// warp order from 0. A block of any size (whole warps) computes the same
// sum by having each of its warps stand for warps w, w + its warp count,
// ... of the layout: every layout warp's sum depends only on its own 32
// threads, so which real warp computes it does not change a bit.
//
// Included by NVRTC's matvec source too (variant_compile.cu): nothing here
// but dequant.cuh (SOL_HD) and built-ins.
#ifndef SOL_KERNELS_CUDA_RMSNORM_CUH
#define SOL_KERNELS_CUDA_RMSNORM_CUH

#include "kernels/cuda/dequant.cuh"

#ifndef __CUDACC_RTC__ // NVRTC has sqrtf built in
#include <cmath>
#endif

// The block size cuda_rmsnorm launches: the layout the fused matvecs reproduce.
constexpr int kSolRmsThreads = 256;
constexpr int kSolRmsWarp = 32;
constexpr int kSolRmsWarps = kSolRmsThreads / kSolRmsWarp;

// Layout thread t's share of the sum of squares of row[0..n). One
// rounding per element: the fused multiply-add nvcc made of sum += x * x,
// written out so that the host model (tests/cuda/test_rmsnorm.cu), whose
// compiler would not fuse it, adds the device's bits.
SOL_HD double sol_rms_thread_sum(const float *row, int64_t n, int t, int layout)
{
    double sum = 0;
    for (int64_t i = t; i < n; i += layout)
        sum = fma((double)row[i], (double)row[i], sum);
    return sum;
}

// The layout's warp sums added in warp order, as every thread of
// rmsnorm_kernel adds them.
SOL_HD double sol_rms_total(const double *warp_sums, int warps)
{
    double total = 0;
    for (int w = 0; w < warps; w++)
        total += warp_sums[w];
    return total;
}

// What each element of a row of n is multiplied by (before its weight).
SOL_HD float sol_rms_scale(double total, int64_t n, float eps) { return 1.0f / sqrtf((float)(total / n) + eps); }

// One normalised element, x * scale * weight in that order, each product
// rounded on its own: never contracted with what the caller does next (a
// matvec's multiply-add), so a fused input equals the stored one.
SOL_HD float sol_rms_apply(float x, float scale, float weight)
{
#ifdef __CUDA_ARCH__
    return __fmul_rn(__fmul_rn(x, scale), weight);
#else
    return x * scale * weight;
#endif
}

// The sum of v over the 32 lanes of a warp by an xor-shuffle tree; every
// lane ends with the same bits (each step adds the same two values, in
// either order).
__device__ inline double sol_rms_warp_sum(double v)
{
    for (int o = kSolRmsWarp / 2; o > 0; o /= 2)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// The layout's warp sums of row[0..n) into warp_sums[0 .. layout / 32),
// computed by this block (blockDim.x a multiple of 32). Every thread calls
// it; the caller syncs before reading warp_sums. A whole warp takes each
// layout warp, so the shuffles always see 32 lanes.
__device__ inline void sol_rms_warp_sums(const float *row, int64_t n, int layout, double *warp_sums)
{
    const int lane = threadIdx.x % kSolRmsWarp, warps = blockDim.x / kSolRmsWarp;
    for (int lw = threadIdx.x / kSolRmsWarp; lw < layout / kSolRmsWarp; lw += warps) {
        double sum = sol_rms_warp_sum(sol_rms_thread_sum(row, n, lw * kSolRmsWarp + lane, layout));
        if (lane == 0)
            warp_sums[lw] = sum;
    }
}

#endif
