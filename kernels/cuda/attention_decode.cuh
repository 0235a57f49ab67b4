// The decode attention kernels (one query row a sequence), templated on
// what the autotuner varies: dims a lane (DPL), query heads a block (HEADS)
// and warps a block (WARPS). nvcc builds the engine's instances from it
// (attention.cu: WARPS 4), and the autotuner's NVRTC compiles other ones
// for a device's exact architecture from the same text (attn_variant.cu;
// the Makefile embeds it in the plugin), so it includes nothing NVRTC
// lacks: no <cuda_fp16.h>, and only headers that are embedded or stubbed.
//
// A block takes a query row, one KV head with up to HEADS of the query
// heads that share it (a larger group is cut into chunks: sol_attn_head_
// chunks_for), and one split: a contiguous range of the row's keys. Each
// key's K and V rows are read once for all those heads; the block's warps
// take the range's keys in turn, each with an online softmax per head
// (lane l holds dims l, l + 32, ...), and the block merges its warps'
// states. Grid: (n_kv_heads * head chunks, splits, rows). With more than one
// split each block leaves its partial states in a workspace and
// attention_combine_kernel merges a (row, head)'s splits in split order.
#ifndef SOL_KERNELS_CUDA_ATTENTION_DECODE_CUH
#define SOL_KERNELS_CUDA_ATTENTION_DECODE_CUH

#include <cstdint>

#include "kernels/backend.h" // sol_kv_cache_layer, sol_kv_slot, sol_step_seq (SOL_KV_RULE)
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/elementwise.cuh"

constexpr int kAttnWarpLanes = 32;

// What the kernels need of the layer and the step, all constant across
// decode steps (ints only: the launch recorder keys it byte by byte).
struct attn_shape {
    int n_heads, n_kv_heads, head_dim;
    int head_chunks, chunk_heads; // query heads per block: sol_attn_head_chunks_for / sol_attn_chunk_heads_for
    int n_splits;
    int rows, seqs;
};

// What one block of the split kernel works on.
struct attn_block {
    int row, kvh, h0, heads, split;
    const void *k, *v;  // the row's sequence's cache arrays
    sol_attn_keys keys; // the keys its row sees
    sol_attn_range range;
};

__device__ inline attn_block block_of(const attn_shape &sh, const sol_kv_cache_layer &cache, int64_t pos0,
                                      int64_t window)
{
    attn_block b;
    int group = sh.n_heads / sh.n_kv_heads, chunk = blockIdx.x % sh.head_chunks;
    b.kvh = blockIdx.x / sh.head_chunks;
    b.h0 = b.kvh * group + chunk * sh.chunk_heads;
    b.heads = min(sh.chunk_heads, group - chunk * sh.chunk_heads);
    b.split = blockIdx.y;
    b.row = blockIdx.z;
    size_t seq_bytes = (size_t)sol_step_seq(sh.rows, sh.seqs, b.row) * cache.seq_stride;
    b.k = static_cast<const uint8_t *>(cache.k) + seq_bytes;
    b.v = static_cast<const uint8_t *>(cache.v) + seq_bytes;
    b.keys = sol_attn_keys_of(sol_step_row_pos(pos0, sh.rows, sh.seqs, b.row), window, cache.sinks);
    b.range = sol_attn_split_range(b.keys.count, sh.n_splits, b.split);
    return b;
}

__device__ inline float warp_sum(float v)
{
    for (int o = kAttnWarpLanes / 2; o > 0; o /= 2)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// An f16 cache element as f32: the one conversion instruction
// __half2float is, written out so that NVRTC needs no <cuda_fp16.h> (it
// would need the toolkit's include directory at tune time). Exact, as
// sol_half_to_f32 is on the host.
__device__ inline float attn_half_to_f32(uint16_t h)
{
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

// The lane's dims (lane + 32 j) of one head's row of a cache array, 0 past head_dim.
template <int DPL>
__device__ void load_dims(sol_dtype type, const void *base, size_t at, int head_dim, float (&x)[DPL])
{
    int lane = threadIdx.x % kAttnWarpLanes;
    for (int j = 0; j < DPL; j++) {
        int d = lane + kAttnWarpLanes * j;
        if (d >= head_dim)
            x[j] = 0.0f;
        else if (type == SOL_DT_F16)
            x[j] = attn_half_to_f32(static_cast<const uint16_t *>(base)[at + d]);
        else
            x[j] = static_cast<const float *>(base)[at + d];
    }
}

// The block's query heads into shared memory, 0 past head_dim and past its
// heads (a padding head scores 0 on every key and is never written).
template <int DPL, int HEADS>
__device__ void load_queries(const float *q, const attn_shape &sh, const attn_block &b,
                             float (&s_q)[HEADS][DPL * kAttnWarpLanes])
{
    for (int i = threadIdx.x; i < HEADS * DPL * kAttnWarpLanes; i += blockDim.x) {
        int g = i / (DPL * kAttnWarpLanes), d = i % (DPL * kAttnWarpLanes);
        bool real = g < b.heads && d < sh.head_dim;
        s_q[g][d] = real ? q[((size_t)b.row * sh.n_heads + b.h0 + g) * sh.head_dim + d] : 0.0f;
    }
}

// One warp's keys of the block's range (every WARPS-th): per key, the dot
// with each head's query (scaled, maybe soft-capped), then the online
// softmax update of each head's state and accumulator.
template <int DPL, int HEADS, int WARPS>
__device__ void warp_attend(const attn_block &b, const sol_kv_cache_layer &cache, int head_dim, float softcap,
                            const float (&s_q)[HEADS][DPL * kAttnWarpLanes], sol_attn_part (&st)[HEADS],
                            float (&acc)[HEADS][DPL])
{
    int warp = threadIdx.x / kAttnWarpLanes, lane = threadIdx.x % kAttnWarpLanes;
    float scale = 1.0f / sqrtf((float)head_dim);
    for (int64_t i = b.range.begin + warp; i < b.range.end; i += WARPS) {
        size_t at = (size_t)sol_kv_slot(&cache, sol_attn_key_pos(b.keys, i)) * cache.width + (size_t)b.kvh * head_dim;
        float k[DPL], v[DPL];
        load_dims<DPL>(cache.type, b.k, at, head_dim, k);
        load_dims<DPL>(cache.type, b.v, at, head_dim, v); // in flight while the dots reduce
        for (int g = 0; g < HEADS; g++) {
            float dot = 0;
            for (int j = 0; j < DPL; j++)
                dot += s_q[g][lane + kAttnWarpLanes * j] * k[j];
            float s = warp_sum(dot) * scale;
            if (softcap > 0) // uniform over the grid: no divergence
                s = sol_softcapped(s, softcap);
            float rescale, weight;
            sol_attn_add_score(&st[g], s, &rescale, &weight);
            for (int j = 0; j < DPL; j++)
                acc[g][j] = acc[g][j] * rescale + weight * v[j];
        }
    }
}

// A block's result for query head h of a row (its dim d): the output
// itself when there is one split, else the split's partial state in the
// workspace. (The prefill kernel writes its rows with it too.)
__device__ inline void write_head(const attn_shape &sh, int row, int split, int h, int d, sol_attn_part st, float acc,
                                  sol_attn_part *parts, float *part_acc, float *out)
{
    size_t rh = (size_t)row * sh.n_heads + h;
    if (sh.n_splits == 1) {
        out[rh * sh.head_dim + d] = acc / st.sum;
        return;
    }
    size_t p = rh * sh.n_splits + split;
    part_acc[p * sh.head_dim + d] = acc;
    if (d == 0)
        parts[p] = st;
}

// Grid (n_kv_heads * head_chunks, n_splits, rows), WARPS warps a block.
// HEADS >= the block's heads (sh.chunk_heads); DPL * 32 >= head_dim.
// Static shared memory: sol_attn_decode_smem_bytes.
template <int DPL, int HEADS, int WARPS>
__global__ void __launch_bounds__(WARPS *kAttnWarpLanes)
    attention_split_kernel(const float *q, sol_kv_cache_layer cache, attn_shape sh, const int64_t *pos_dev,
                           int64_t window, float softcap, sol_attn_part *parts, float *part_acc, float *out)
{
    __shared__ float s_q[HEADS][DPL * kAttnWarpLanes];
    __shared__ sol_attn_part s_part[WARPS][HEADS];
    __shared__ float s_acc[WARPS][HEADS][DPL * kAttnWarpLanes];
    attn_block b = block_of(sh, cache, *pos_dev, window);
    if (b.range.begin == b.range.end) { // a split past the row's keys (never the only split: count >= 1)
        if ((int)threadIdx.x < b.heads)
            parts[((size_t)b.row * sh.n_heads + b.h0 + threadIdx.x) * sh.n_splits + b.split] = sol_attn_empty();
        return;
    }
    load_queries<DPL, HEADS>(q, sh, b, s_q);
    __syncthreads();
    sol_attn_part st[HEADS];
    float acc[HEADS][DPL];
    for (int g = 0; g < HEADS; g++) {
        st[g] = sol_attn_empty();
        for (int j = 0; j < DPL; j++)
            acc[g][j] = 0.0f;
    }
    warp_attend<DPL, HEADS, WARPS>(b, cache, sh.head_dim, softcap, s_q, st, acc);
    int warp = threadIdx.x / kAttnWarpLanes, lane = threadIdx.x % kAttnWarpLanes;
    for (int g = 0; g < HEADS; g++) {
        if (lane == 0)
            s_part[warp][g] = st[g];
        for (int j = 0; j < DPL; j++)
            s_acc[warp][g][lane + kAttnWarpLanes * j] = acc[g][j];
    }
    __syncthreads();
    // warp 0 always has a key (the range starts with its first); a later
    // warp of a short range may have none and merges as nothing
    for (int i = threadIdx.x; i < b.heads * sh.head_dim; i += blockDim.x) {
        int g = i / sh.head_dim, d = i % sh.head_dim;
        sol_attn_part merged = s_part[0][g];
        float a = s_acc[0][g][d];
        for (int w = 1; w < WARPS; w++)
            sol_attn_merge(&merged, &a, s_part[w][g], &s_acc[w][g][d], 1);
        write_head(sh, b.row, b.split, b.h0 + g, d, merged, a, parts, part_acc, out);
    }
}

// One block per (row, head): its splits merged in split order, normalised.
// Any block size (attention.cu launches 128 threads). static: the header's
// one non-template kernel stays private to the file that includes it.
static __global__ void attention_combine_kernel(const sol_attn_part *parts, const float *part_acc, int n_splits,
                                                int head_dim, float *out)
{
    size_t rh = blockIdx.x;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        sol_attn_part st = sol_attn_empty();
        float acc = 0.0f;
        for (int s = 0; s < n_splits; s++) {
            size_t p = rh * n_splits + s;
            sol_attn_merge(&st, &acc, parts[p], &part_acc[p * head_dim + d], 1);
        }
        out[rh * head_dim + d] = acc / st.sum; // st.sum > 0: a row always sees its own position
    }
}

#endif
