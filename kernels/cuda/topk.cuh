// Sampling's top-k on the device, the arithmetic of it (topk.cu runs it;
// tests/cuda/test_topk.cu checks it on the host): the k best of a row, in
// util/topk.h's order (larger first, ties by the lower index), found by a
// radix select on order-preserving 32-bit keys, a byte at a time from the
// top, then every element above the k-th key and the k-th key's first ties.
#ifndef SOL_KERNELS_CUDA_TOPK_CUH
#define SOL_KERNELS_CUDA_TOPK_CUH

#include <cstdint>
#include <cstring>

#include "kernels/cuda/dequant.cuh" // SOL_HD

// A key whose unsigned order is the values' order: sign flipped for
// positives, all bits for negatives; -0 is +0 (the CPU's comparison finds
// them equal, so the index decides) and NaN is 0, below every number.
SOL_HD uint32_t sol_topk_key(float v)
{
    if (v != v)
        return 0;
    if (v == 0.0f)
        v = 0.0f;
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u & 0x80000000u ? ~u : u | 0x80000000u;
}

// One byte of the select: hist[d] counts the candidates (keys matching the
// bytes chosen so far) whose byte here is d; the digit holding the
// `*remaining`-th best is returned, and *remaining becomes its rank among
// that digit's keys (the better digits' counts taken off). The candidates
// number at least *remaining, so digit 0 is reached only when it holds it.
SOL_HD int sol_topk_digit(const unsigned hist[256], int *remaining)
{
    int d = 255;
    while (d > 0 && (int)hist[d] < *remaining)
        *remaining -= (int)hist[d--];
    return d;
}

// Elements [begin, end) of n spread over `threads` in contiguous chunks,
// thread t's (so ties are taken in index order by a prefix sum over threads).
SOL_HD void sol_topk_chunk(int64_t n, int t, int threads, int64_t *begin, int64_t *end)
{
    int64_t per = (n + threads - 1) / threads;
    *begin = per * t < n ? per * t : n;
    *end = *begin + per < n ? *begin + per : n;
}

#endif
