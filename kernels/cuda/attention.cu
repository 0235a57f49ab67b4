// The CUDA backend's attention: causal attention of the step's query rows
// over the KV cache (f32 or f16), with a window, the cache's sinks and an
// optional soft-cap, for one sequence or a batched step's several.
//
// One kernel does the work for decode and prefill alike. A block takes a
// query row, one KV head with up to 8 of the query heads that share it
// (attention.cuh: a larger MQA group is cut into chunks), and one split: a
// contiguous range of the row's keys. Each key's K and V rows are read once
// for all those heads; the block's 4 warps take the range's keys in turn,
// each with an online softmax per head (lane l holds dims l, l + 32, ...),
// and the block merges its warps' states. Grid: (n_kv_heads * head chunks,
// splits, rows).
//
// Splits (flash-decoding): a long context is cut into up to 32 ranges
// (sol_attn_splits, from the capacity, so a decode step's grid never
// changes); each block leaves its heads' partial states (max, sum, and the
// unnormalised accumulator) in a scratch workspace and a second kernel
// merges a (row, head)'s splits in split order. With one split the block
// writes the output itself. A prompt's rows each have their own keys, so
// the same kernel is causal for any number of rows; prompts take fewer
// splits (their workspace grows with rows).
#include <cuda_fp16.h>

#include <cmath>

#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/elementwise.cuh"

namespace {

constexpr int kWarp = 32;
constexpr int kWarps = 4;               // per block of the split kernel
constexpr int kCombineThreads = 128;
constexpr int kMaxGridZ = 65535;        // rows are the grid's z
constexpr int kPrefillParts = 256;      // rows x splits of a prompt step, at most (bounds its workspace)

// What the kernels need of the layer and the step, all constant across
// decode steps (ints only: the launch recorder keys it byte by byte).
struct attn_shape {
    int n_heads, n_kv_heads, head_dim;
    int head_chunks, chunk_heads; // query heads per block: sol_attn_head_chunks / sol_attn_chunk_heads
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

__device__ attn_block block_of(const attn_shape &sh, const sol_kv_cache_layer &cache, int64_t pos0, int64_t window)
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

__device__ float warp_sum(float v)
{
    for (int o = kWarp / 2; o > 0; o /= 2)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// The lane's dims (lane + 32 j) of one head's row of a cache array, 0 past head_dim.
template <int DPL>
__device__ void load_dims(sol_dtype type, const void *base, size_t at, int head_dim, float (&x)[DPL])
{
    int lane = threadIdx.x % kWarp;
    for (int j = 0; j < DPL; j++) {
        int d = lane + kWarp * j;
        if (d >= head_dim)
            x[j] = 0.0f;
        else if (type == SOL_DT_F16)
            x[j] = __half2float(static_cast<const __half *>(base)[at + d]);
        else
            x[j] = static_cast<const float *>(base)[at + d];
    }
}

// The block's query heads into shared memory, 0 past head_dim and past its
// heads (a padding head scores 0 on every key and is never written).
template <int DPL, int HEADS>
__device__ void load_queries(const float *q, const attn_shape &sh, const attn_block &b, float (&s_q)[HEADS][DPL * kWarp])
{
    for (int i = threadIdx.x; i < HEADS * DPL * kWarp; i += blockDim.x) {
        int g = i / (DPL * kWarp), d = i % (DPL * kWarp);
        bool real = g < b.heads && d < sh.head_dim;
        s_q[g][d] = real ? q[((size_t)b.row * sh.n_heads + b.h0 + g) * sh.head_dim + d] : 0.0f;
    }
}

// One warp's keys of the block's range (every kWarps-th): per key, the dot
// with each head's query (scaled, maybe soft-capped), then the online
// softmax update of each head's state and accumulator.
template <int DPL, int HEADS>
__device__ void warp_attend(const attn_block &b, const sol_kv_cache_layer &cache, int head_dim, float softcap,
                            const float (&s_q)[HEADS][DPL * kWarp], sol_attn_part (&st)[HEADS],
                            float (&acc)[HEADS][DPL])
{
    int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    float scale = 1.0f / sqrtf((float)head_dim);
    for (int64_t i = b.range.begin + warp; i < b.range.end; i += kWarps) {
        size_t at = (size_t)sol_kv_slot(&cache, sol_attn_key_pos(b.keys, i)) * cache.width + (size_t)b.kvh * head_dim;
        float k[DPL], v[DPL];
        load_dims<DPL>(cache.type, b.k, at, head_dim, k);
        load_dims<DPL>(cache.type, b.v, at, head_dim, v); // in flight while the dots reduce
        for (int g = 0; g < HEADS; g++) {
            float dot = 0;
            for (int j = 0; j < DPL; j++)
                dot += s_q[g][lane + kWarp * j] * k[j];
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

// A block's result for query head h of its row: the output itself when
// there is one split, else the split's partial state in the workspace.
__device__ void write_head(const attn_shape &sh, const attn_block &b, int h, int d, sol_attn_part st, float acc,
                           sol_attn_part *parts, float *part_acc, float *out)
{
    size_t rh = (size_t)b.row * sh.n_heads + h;
    if (sh.n_splits == 1) {
        out[rh * sh.head_dim + d] = acc / st.sum;
        return;
    }
    size_t p = rh * sh.n_splits + b.split;
    part_acc[p * sh.head_dim + d] = acc;
    if (d == 0)
        parts[p] = st;
}

// Grid (n_kv_heads * head_chunks, n_splits, rows), kWarps warps a block.
// HEADS >= the block's heads; DPL * 32 >= head_dim.
template <int DPL, int HEADS>
__global__ void __launch_bounds__(kWarps *kWarp)
    attention_split_kernel(const float *q, sol_kv_cache_layer cache, attn_shape sh, const int64_t *pos_dev,
                           int64_t window, float softcap, sol_attn_part *parts, float *part_acc, float *out)
{
    __shared__ float s_q[HEADS][DPL * kWarp];
    __shared__ sol_attn_part s_part[kWarps][HEADS];
    __shared__ float s_acc[kWarps][HEADS][DPL * kWarp];
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
    warp_attend<DPL, HEADS>(b, cache, sh.head_dim, softcap, s_q, st, acc);
    int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    for (int g = 0; g < HEADS; g++) {
        if (lane == 0)
            s_part[warp][g] = st[g];
        for (int j = 0; j < DPL; j++)
            s_acc[warp][g][lane + kWarp * j] = acc[g][j];
    }
    __syncthreads();
    // warp 0 always has a key (the range starts with its first); a later
    // warp of a short range may have none and merges as nothing
    for (int i = threadIdx.x; i < b.heads * sh.head_dim; i += blockDim.x) {
        int g = i / sh.head_dim, d = i % sh.head_dim;
        sol_attn_part merged = s_part[0][g];
        float a = s_acc[0][g][d];
        for (int w = 1; w < kWarps; w++)
            sol_attn_merge(&merged, &a, s_part[w][g], &s_acc[w][g][d], 1);
        write_head(sh, b, b.h0 + g, d, merged, a, parts, part_acc, out);
    }
}

// One block per (row, head): its splits merged in split order, normalised.
__global__ void attention_combine_kernel(const sol_attn_part *parts, const float *part_acc, int n_splits, int head_dim,
                                         float *out)
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

using split_kernel = void (*)(const float *, sol_kv_cache_layer, attn_shape, const int64_t *, int64_t, float,
                              sol_attn_part *, float *, float *);

template <int DPL> split_kernel split_kernel_heads(int heads)
{
    if (heads <= 1)
        return attention_split_kernel<DPL, 1>;
    if (heads <= 2)
        return attention_split_kernel<DPL, 2>;
    if (heads <= 4)
        return attention_split_kernel<DPL, 4>;
    return attention_split_kernel<DPL, 8>;
}

// The instance for head_dim (<= SOL_CUDA_MAX_HEAD_DIM) and heads a block
// (<= SOL_ATTN_MAX_BLOCK_HEADS): the fewest registers that hold them.
split_kernel split_kernel_for(int head_dim, int heads)
{
    static_assert(SOL_CUDA_MAX_HEAD_DIM == 8 * kWarp, "the largest instance holds 8 dims a lane");
    if (head_dim <= 2 * kWarp)
        return split_kernel_heads<2>(heads);
    if (head_dim <= 4 * kWarp)
        return split_kernel_heads<4>(heads);
    return split_kernel_heads<8>(heads);
}

// A decode step (one row a sequence) takes the capacity's splits; a prompt
// fewer, so that rows x splits stays within kPrefillParts.
int splits_for(const cuda_ctx *c, const sol_kv_cache_layer *cache)
{
    int n = sol_attn_splits(cache->capacity);
    if (c->rows == c->seqs)
        return n;
    int most = kPrefillParts / c->rows;
    return most < 1 ? 1 : n < most ? n : most;
}

attn_shape shape_of(const cuda_ctx *c, const sol_kv_cache_layer *cache, int n_heads, int n_kv_heads, int head_dim)
{
    int group = n_heads / n_kv_heads;
    return {n_heads,          n_kv_heads, head_dim, sol_attn_head_chunks(group), sol_attn_chunk_heads(group),
            splits_for(c, cache), c->rows, c->seqs};
}

} // namespace

void sol_cuda_attention(sol_backend *b, const float *q, const sol_kv_cache_layer *cache, int n_heads, int n_kv_heads,
                        int head_dim, int64_t window, float softcap, float *out)
{
    cuda_ctx *c = cuda_of(b);
    if (c->failed || c->rows < 1)
        return;
    if (head_dim < 1 || head_dim > SOL_CUDA_MAX_HEAD_DIM || n_kv_heads < 1 || n_heads % n_kv_heads ||
        c->rows > kMaxGridZ) {
        sol_cuda_note(c, cudaErrorInvalidValue);
        return;
    }
    attn_shape sh = shape_of(c, cache, n_heads, n_kv_heads, head_dim);
    sol_attn_part *parts = nullptr;
    float *part_acc = nullptr;
    if (sh.n_splits > 1) { // the workspace: every (row, head, split)'s state, then its accumulator
        size_t n_parts = (size_t)sh.rows * n_heads * sh.n_splits;
        void *ws = sol_cuda_scratch(c, SOL_CUDA_SCRATCH_ATTN, n_parts * (sizeof(sol_attn_part) + head_dim * sizeof(float)));
        if (!ws)
            return;
        parts = static_cast<sol_attn_part *>(ws);
        part_acc = reinterpret_cast<float *>(parts + n_parts);
    }
    dim3 grid(n_kv_heads * sh.head_chunks, sh.n_splits, sh.rows);
    sol_cuda_launch(c, split_kernel_for(head_dim, sh.chunk_heads), grid, kWarps * kWarp, 0, q, *cache, sh, c->pos_dev,
                    window, softcap, parts, part_acc, out);
    if (sh.n_splits > 1)
        sol_cuda_launch(c, attention_combine_kernel, sh.rows * n_heads, kCombineThreads, 0,
                        static_cast<const sol_attn_part *>(parts), static_cast<const float *>(part_acc), sh.n_splits,
                        head_dim, out);
}
