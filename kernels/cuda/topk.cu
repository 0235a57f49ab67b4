// The seam's top_k op on the device (topk.cuh has the arithmetic): one
// block selects the k-th best key of the row byte by byte (four histogram
// passes), then writes every element with a larger key and the first ties
// of the k-th, k pairs in all, for the host to sample from (engine/sample.c
// sol_sample_candidates): 8k bytes move instead of the row.
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/topk.cuh"

namespace {

constexpr int kThreads = 1024;

// The k-th best key of x, and how many of its ties belong to the k best.
__device__ void select_kth(const float *x, int64_t n, int k, uint32_t *kth, int *ties)
{
    __shared__ unsigned hist[256];
    __shared__ uint32_t s_prefix;
    __shared__ int s_remaining;
    uint32_t prefix = 0, mask = 0;
    int remaining = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int i = threadIdx.x; i < 256; i += blockDim.x)
            hist[i] = 0;
        __syncthreads();
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
            uint32_t key = sol_topk_key(x[i]);
            if ((key & mask) == prefix)
                atomicAdd(&hist[(key >> shift) & 0xFFu], 1u);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            int d = sol_topk_digit(hist, &remaining);
            s_prefix = prefix | (uint32_t)d << shift;
            s_remaining = remaining;
        }
        __syncthreads();
        prefix = s_prefix;
        remaining = s_remaining;
        mask |= 0xFFu << shift;
        __syncthreads(); // every thread has read s_* before the next pass's thread 0 writes them
    }
    *kth = prefix;
    *ties = remaining;
}

__global__ void top_k_kernel(const float *x, int64_t n, int k, float *vals, int32_t *ids)
{
    __shared__ int s_before[kThreads]; // ties in the chunks before each thread's
    __shared__ unsigned s_above;       // slots taken by keys above the k-th
    uint32_t kth;
    int ties;
    select_kth(x, n, k, &kth, &ties);
    int64_t begin, end;
    sol_topk_chunk(n, threadIdx.x, blockDim.x, &begin, &end);
    int mine = 0;
    for (int64_t i = begin; i < end; i++)
        mine += sol_topk_key(x[i]) == kth;
    s_before[threadIdx.x] = mine;
    if (threadIdx.x == 0)
        s_above = 0;
    __syncthreads();
    if (threadIdx.x == 0) // exclusive prefix sum, in thread (= index) order
        for (int t = 0, sum = 0; t < (int)blockDim.x; t++) {
            int c = s_before[t];
            s_before[t] = sum;
            sum += c;
        }
    __syncthreads();
    int tie = s_before[threadIdx.x], above_total = k - ties;
    for (int64_t i = begin; i < end; i++) {
        uint32_t key = sol_topk_key(x[i]);
        int at = -1;
        if (key > kth)
            at = (int)atomicAdd(&s_above, 1u);
        else if (key == kth && tie < ties)
            at = above_total + tie++;
        if (at >= 0) {
            vals[at] = x[i];
            ids[at] = (int32_t)i;
        }
    }
}

} // namespace

void sol_cuda_top_k(sol_backend *b, const float *x, int64_t n, int k, float *vals, int32_t *ids)
{
    cuda_ctx *c = cuda_of(b);
    if (c->failed)
        return;
    if (k < 1 || k > SOL_TOP_K_MAX || k > n || n > INT32_MAX) {
        sol_cuda_note(c, cudaErrorInvalidValue);
        return;
    }
    sol_cuda_launch(c, top_k_kernel, 1, kThreads, 0, x, n, k, vals, ids);
}
