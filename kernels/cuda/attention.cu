// The CUDA backend's attention: causal attention of the step's query rows
// over the KV cache (f32 or f16), with a window, the cache's sinks and an
// optional soft-cap, for one sequence or a batched step's several.
//
// Decode (one row a sequence; the kernels are in attention_decode.cuh, which
// the autotuner compiles by NVRTC too): a block takes a query row, one KV
// head with up to 8 of the query heads that share it (attention.cuh: a
// larger MQA group is cut into chunks), and one split: a contiguous range
// of the row's keys. Each key's K and V rows are read once for all those
// heads; the block's 4 warps take the range's keys in turn, each with an
// online softmax per head (lane l holds dims l, l + 32, ...), and the block
// merges its warps' states. Grid: (n_kv_heads * head chunks, splits, rows).
//
// Prefill (more rows a sequence): a block takes a tile of 16 consecutive
// query rows of one sequence, one query head, and one split of the keys
// those rows see between them (sol_attn_tile_keys). It stages the keys a
// tile at a time (32 keys, 16 at head_dim 256) in shared memory, as f32,
// and each warp runs 4 of the rows over them: a lane scores one key, each
// row masks the keys it does not see (causal, window, sinks) to -inf and
// skips a tile it sees none of. Grid: (n_heads, splits, sequences * tiles).
//
// Splits (flash-decoding): a long context is cut into up to 32 ranges; each
// block leaves its rows' and heads' partial states (max, sum, and the
// unnormalised accumulator) in a scratch workspace and a second kernel
// merges a (row, head)'s splits in split order. With one split the block
// writes the output itself. Decode takes its splits from the capacity (so
// its grid never changes and a CUDA graph replays it); prefill from the
// position and its own block count (sol_attn_prefill_splits).
#include <cmath>

#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_decode.cuh" // the decode kernels, which the autotuner also compiles by NVRTC
#include "kernels/cuda/attn_default.h"      // which instance a decode step runs (the tuner's at_default too)
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/tuned.h"
#include "kernels/cuda/elementwise.cuh"

namespace {

constexpr int kWarp = kAttnWarpLanes;
constexpr int kDecodeWarps = SOL_ATTN_DECODE_WARPS; // per block of the split kernel (its WARPS)
constexpr int kPrefillWarps = 4; // per block of the prefill kernel: its tile rows are laid out for 4
constexpr int kCombineThreads = 128;
constexpr int kMaxGridZ = 65535;        // rows are the grid's z
constexpr unsigned kFullWarp = 0xffffffffu;
constexpr int kTileRows = SOL_ATTN_TILE_ROWS;    // query rows a prefill block
constexpr int kRowsPerWarp = kTileRows / kPrefillWarps;
static_assert(kRowsPerWarp * kPrefillWarps == kTileRows, "a prefill tile's rows share out evenly over the warps");
constexpr size_t kStaticSharedBytes = 48 * 1024; // more needs cudaFuncSetAttribute first

// ---- prefill ----------------------------------------------------------------

// What one block of the prefill kernel works on: a tile of consecutive
// query rows of one sequence, one query head, and one split of the keys the
// tile's rows see between them.
struct prefill_block {
    int row0, rows; // the tile's first row of the step, and its rows
    int64_t pos0;   // the first row's position (row row0 + r is at pos0 + r)
    int h, kvh, split;
    const void *k, *v;    // the sequence's cache arrays
    sol_attn_keys keys;   // the keys the tile's rows see between them
    sol_attn_range range; // the split's part of them
};

__device__ prefill_block prefill_block_of(const attn_shape &sh, const sol_kv_cache_layer &cache, int64_t pos,
                                          int64_t window)
{
    prefill_block b;
    int per_seq = sh.rows / sh.seqs, tiles = sol_attn_query_tiles(per_seq, kTileRows);
    int seq = blockIdx.z / tiles;
    int tile = tiles - 1 - blockIdx.z % tiles; // the later tiles see the most keys: they start first
    b.row0 = seq * per_seq + tile * kTileRows;
    b.rows = sol_attn_query_tile_rows(per_seq, kTileRows, tile);
    b.pos0 = sol_step_row_pos(pos, sh.rows, sh.seqs, b.row0);
    b.h = blockIdx.x;
    b.kvh = b.h / (sh.n_heads / sh.n_kv_heads);
    b.split = blockIdx.y;
    size_t seq_bytes = (size_t)seq * cache.seq_stride;
    b.k = static_cast<const uint8_t *>(cache.k) + seq_bytes;
    b.v = static_cast<const uint8_t *>(cache.v) + seq_bytes;
    b.keys = sol_attn_tile_keys(b.pos0, b.rows, window, cache.sinks);
    b.range = sol_attn_split_range(b.keys.count, sh.n_splits, b.split);
    return b;
}

__device__ float warp_max(float v)
{
    for (int o = kWarp / 2; o > 0; o /= 2)
        v = fmaxf(v, __shfl_xor_sync(kFullWarp, v, o));
    return v;
}

// The tile's query rows for the block's head, 0 past head_dim and past its
// rows (a padding dim adds 0 to every dot).
template <int D>
__device__ void load_query_tile(const float *q, const attn_shape &sh, const prefill_block &b, float *s_q)
{
    for (int i = threadIdx.x; i < kTileRows * D; i += blockDim.x) {
        int r = i / D, d = i % D;
        bool real = r < b.rows && d < sh.head_dim;
        s_q[i] = real ? q[((size_t)(b.row0 + r) * sh.n_heads + b.h) * sh.head_dim + d] : 0.0f;
    }
}

// Keys [k0, k0 + n) of the tile's keys into shared memory as f32, a warp a
// key (one slot computation per key, the row read coalesced); keys n..KEYS-1
// of the tile are zeros. K rows are D + 1 floats apart, so the lanes that
// read one key each find their dims in different banks (tile_dot).
template <int DPL, int KEYS>
__device__ void load_kv_tile(const prefill_block &b, const sol_kv_cache_layer &cache, int head_dim, int64_t k0, int n,
                             float *s_k, float *s_v)
{
    constexpr int D = DPL * kWarp;
    int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    for (int j = warp; j < KEYS; j += kPrefillWarps) {
        float k[DPL] = {}, v[DPL] = {};
        if (j < n) {
            size_t at = (size_t)sol_kv_slot(&cache, sol_attn_key_pos(b.keys, k0 + j)) * cache.width +
                        (size_t)b.kvh * head_dim;
            load_dims<DPL>(cache.type, b.k, at, head_dim, k);
            load_dims<DPL>(cache.type, b.v, at, head_dim, v);
        }
        for (int c = 0; c < DPL; c++) {
            s_k[j * (D + 1) + lane + kWarp * c] = k[c];
            s_v[j * D + lane + kWarp * c] = v[c];
        }
    }
}

// q . k of the lane's key. With fewer keys than lanes (KEYS = 16) a key
// takes 32 / KEYS lanes: part p takes dims 32 c + p * KEYS + i (i < KEYS),
// and the parts' sums meet by shuffles, so every lane of the key holds the
// dot. The lanes' banks are (key + p * KEYS + i) % 32: all different.
template <int DPL, int KEYS> __device__ float tile_dot(const float *q_row, const float *k_row, int part)
{
    float dot = 0.0f;
    for (int c = 0; c < DPL; c++)
        for (int i = 0; i < KEYS; i++) {
            int d = kWarp * c + part * KEYS + i;
            dot += q_row[d] * k_row[d];
        }
    for (int o = KEYS; o < kWarp; o *= 2)
        dot += __shfl_xor_sync(kFullWarp, dot, o);
    return dot;
}

// One row's pass over the staged tile of n keys (t: the lane's key's
// position, -1 past n), by the whole warp: the row's score of each key it
// sees, -inf elsewhere; a tile it sees none of is skipped; else the online
// softmax a tile at a time (sol_attn_open_tile), the keys' weights summed
// in key order by every lane (lane l keeps dims l, l + 32, ...).
template <int DPL, int KEYS>
__device__ void attend_row(const sol_kv_cache_layer &cache, int64_t window, float softcap, float scale, int64_t pos,
                           int64_t t, int n, const float *q_row, const float *s_k, const float *s_v, sol_attn_part &st,
                           float (&acc)[DPL])
{
    constexpr int D = DPL * kWarp;
    int lane = threadIdx.x % kWarp, key = lane % KEYS;
    bool sees = t >= 0 && sol_kv_visible(&cache, window, t, pos);
    if (!__any_sync(kFullWarp, sees))
        return;
    float s = tile_dot<DPL, KEYS>(q_row, s_k + key * (D + 1), lane / KEYS) * scale;
    if (softcap > 0) // uniform over the grid: no divergence
        s = sol_softcapped(s, softcap);
    s = sees ? s : -INFINITY;
    float rescale = sol_attn_open_tile(&st, warp_max(s));
    float w = sol_attn_weight(st, s); // 0 where unseen
    float tile_sum = 0.0f, tile_acc[DPL] = {};
    for (int j = 0; j < n; j++) {
        float wj = __shfl_sync(kFullWarp, w, j); // lane j scored key j
        if (wj == 0.0f) // unseen (or underflowed): adds nothing
            continue;
        tile_sum += wj;
        for (int c = 0; c < DPL; c++)
            tile_acc[c] += wj * s_v[j * D + lane + kWarp * c];
    }
    st.sum += tile_sum; // the tile's sums first: a long context's running sums take one add a tile, not a key
    for (int c = 0; c < DPL; c++)
        acc[c] = acc[c] * rescale + tile_acc[c];
}

// The warp's rows' results (rows warp, warp + 4, ...): the output with one
// split, else the split's partial states (empty where a row saw none of
// the split's keys: the combine merges those as nothing).
template <int DPL>
__device__ void write_rows(const attn_shape &sh, const prefill_block &b, const sol_attn_part (&st)[kRowsPerWarp],
                           const float (&acc)[kRowsPerWarp][DPL], sol_attn_part *parts, float *part_acc, float *out)
{
    int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
#pragma unroll // the rows' states stay in registers
    for (int i = 0; i < kRowsPerWarp; i++) {
        int r = warp + kPrefillWarps * i;
        if (r >= b.rows)
            continue;
        for (int c = 0; c < DPL; c++) {
            int d = lane + kWarp * c;
            if (d < sh.head_dim)
                write_head(sh, b.row0 + r, b.split, b.h, d, st[i], acc[i][c], parts, part_acc, out);
        }
    }
}

// Grid (n_heads, n_splits, seqs * query tiles), kPrefillWarps warps a block; dynamic
// shared memory prefill_shared_bytes<DPL, KEYS>. Warp w takes the tile's rows
// w, w + 4, w + 8, w + 12: interleaved, since a later row sees more of the
// last key tiles. DPL * 32 >= head_dim; KEYS (32 or 16) keys a staged tile.
template <int DPL, int KEYS>
__global__ void __launch_bounds__(kPrefillWarps *kWarp)
    attention_prefill_kernel(const float *q, sol_kv_cache_layer cache, attn_shape sh, const int64_t *pos_dev,
                             int64_t window, float softcap, sol_attn_part *parts, float *part_acc, float *out)
{
    static_assert(kWarp % KEYS == 0, "a key's lanes divide the warp");
    constexpr int D = DPL * kWarp;
    extern __shared__ float s_mem[];
    float *s_q = s_mem;                // kTileRows x D
    float *s_k = s_q + kTileRows * D;  // KEYS x (D + 1)
    float *s_v = s_k + KEYS * (D + 1); // KEYS x D
    prefill_block b = prefill_block_of(sh, cache, *pos_dev, window);
    load_query_tile<D>(q, sh, b, s_q);
    int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    float scale = 1.0f / sqrtf((float)sh.head_dim);
    sol_attn_part st[kRowsPerWarp];
    float acc[kRowsPerWarp][DPL];
#pragma unroll // the rows' states stay in registers
    for (int i = 0; i < kRowsPerWarp; i++) {
        st[i] = sol_attn_empty();
        for (int c = 0; c < DPL; c++)
            acc[i][c] = 0.0f;
    }
    int64_t tiles = sol_attn_key_tiles(b.range, KEYS);
    for (int64_t kt = 0; kt < tiles; kt++) {
        sol_attn_range keys = sol_attn_key_tile(b.range, KEYS, kt);
        int n = (int)(keys.end - keys.begin);
        __syncthreads(); // every warp is done with the last tile (and the queries are in)
        load_kv_tile<DPL, KEYS>(b, cache, sh.head_dim, keys.begin, n, s_k, s_v);
        __syncthreads();
        int key = lane % KEYS;
        int64_t t = key < n ? sol_attn_key_pos(b.keys, keys.begin + key) : -1;
#pragma unroll // the rows' states stay in registers
        for (int i = 0; i < kRowsPerWarp; i++) {
            int r = warp + kPrefillWarps * i;
            if (r < b.rows)
                attend_row<DPL, KEYS>(cache, window, softcap, scale, b.pos0 + r, t, n, s_q + r * D, s_k, s_v, st[i],
                                      acc[i]);
        }
    }
    write_rows<DPL>(sh, b, st, acc, parts, part_acc, out);
}

template <int DPL, int KEYS> constexpr size_t prefill_shared_bytes()
{
    return sizeof(float) * (kTileRows * DPL * kWarp + KEYS * (DPL * kWarp + 1) + KEYS * DPL * kWarp);
}

using split_kernel = void (*)(const float *, sol_kv_cache_layer, attn_shape, const int64_t *, int64_t, float,
                              sol_attn_part *, float *, float *);

template <int DPL> split_kernel split_kernel_heads(int heads)
{
    switch (heads) {
    case 1: return attention_split_kernel<DPL, 1, kDecodeWarps>;
    case 2: return attention_split_kernel<DPL, 2, kDecodeWarps>;
    case 4: return attention_split_kernel<DPL, 4, kDecodeWarps>;
    default: return attention_split_kernel<DPL, 8, kDecodeWarps>;
    }
}

// The instance for head_dim (<= SOL_CUDA_MAX_HEAD_DIM) and a GQA group:
// attn_default.h's rule (the fewest registers that hold them), which the
// tuner reports as the built-in variant.
split_kernel split_kernel_for(int head_dim, int group)
{
    static_assert(SOL_CUDA_MAX_HEAD_DIM == 8 * kWarp, "the largest instance holds 8 dims a lane");
    int heads = sol_attn_default_heads(group);
    switch (sol_attn_default_dpl(head_dim)) {
    case 2: return split_kernel_heads<2>(heads);
    case 4: return split_kernel_heads<4>(heads);
    default: return split_kernel_heads<8>(heads);
    }
}

// A prefill instance and the shared memory it is launched with.
struct prefill_instance {
    split_kernel kernel; // the same parameters as the split kernel's
    size_t shared_bytes;
};

template <int DPL, int KEYS> prefill_instance prefill_instance_of()
{
    return {attention_prefill_kernel<DPL, KEYS>, prefill_shared_bytes<DPL, KEYS>()};
}

// The instance for head_dim: 32 keys a staged tile (one a lane), 16 at
// head_dim 256 (two lanes a key) so that its tiles take 48 KiB, not 80.
prefill_instance prefill_instance_for(int head_dim)
{
    if (head_dim <= 2 * kWarp)
        return prefill_instance_of<2, 32>();
    if (head_dim <= 4 * kWarp)
        return prefill_instance_of<4, 32>();
    return prefill_instance_of<8, 16>();
}

// A decode step takes the capacity's splits. A prompt step's come from the
// most keys a tile sees (its last rows', at the host's copy of the
// position: a prompt step is never replayed by a graph) and the blocks it
// has without splits.
int splits_for(const cuda_ctx *c, const sol_kv_cache_layer *cache, int64_t window, int n_heads)
{
    int per_seq = c->rows / c->seqs;
    if (per_seq <= 1)
        return sol_attn_splits(cache->capacity);
    int last = per_seq < kTileRows ? per_seq : kTileRows;
    sol_attn_keys most = sol_attn_tile_keys(c->pos + per_seq - last, last, window, cache->sinks);
    int64_t blocks = (int64_t)n_heads * c->seqs * sol_attn_query_tiles(per_seq, kTileRows);
    return sol_attn_prefill_splits(most.count, blocks);
}

attn_shape shape_of(const cuda_ctx *c, const sol_kv_cache_layer *cache, int n_heads, int n_kv_heads, int head_dim,
                    int64_t window)
{
    int group = n_heads / n_kv_heads;
    return {n_heads,
            n_kv_heads,
            head_dim,
            sol_attn_head_chunks(group),
            sol_attn_chunk_heads(group),
            splits_for(c, cache, window, n_heads),
            c->rows,
            c->seqs};
}

void launch_decode(cuda_ctx *c, const attn_shape &sh, const float *q, const sol_kv_cache_layer *cache, int64_t window,
                   float softcap, sol_attn_part *parts, float *part_acc, float *out)
{
    dim3 grid(sh.n_kv_heads * sh.head_chunks, sh.n_splits, sh.rows);
    sol_cuda_launch(c, split_kernel_for(sh.head_dim, sh.n_heads / sh.n_kv_heads), grid, kDecodeWarps * kWarp, 0, q, *cache, sh,
                    c->pos_dev, window, softcap, parts, part_acc, out);
}

// The tuner's winner for a decode step's attention (tuned.h), when the
// backend loaded one that takes it: its split kernel over its own head
// chunks and splits, then its combine when there is more than one split.
// false: none (nothing launched).
bool tuned_decode(cuda_ctx *c, const float *q, const sol_kv_cache_layer *cache, int n_heads, int n_kv_heads,
                  int head_dim, int64_t window, float softcap, float *out)
{
    int i = sol_attn_tuned_find(c->tuned_attn.data(), (int)c->tuned_attn.size(), n_heads, n_kv_heads, head_dim,
                                cache->type, cache->capacity, c->rows);
    if (i < 0)
        return false;
    sol_attn_variant v = sol_attn_tuned_variant(&c->tuned_attn[(size_t)i]);
    sol_av_shape shape = {n_heads, n_kv_heads, head_dim, cache->capacity, c->rows};
    sol_av_launch g = sol_av_geometry(&v, &shape);
    attn_shape sh = {n_heads, n_kv_heads, head_dim, g.head_chunks, g.chunk_heads, g.n_splits, c->rows, c->seqs};
    sol_attn_part *parts = nullptr;
    float *part_acc = nullptr;
    if (g.n_splits > 1) { // the engine's layout: every (row, head, split)'s state, then its accumulator
        void *ws = sol_cuda_scratch(c, SOL_CUDA_SCRATCH_ATTN, g.workspace_bytes);
        if (!ws)
            return true; // the error is noted
        parts = static_cast<sol_attn_part *>(ws);
        part_acc = reinterpret_cast<float *>(parts + (size_t)c->rows * n_heads * g.n_splits);
    }
    const sol_cuda_tuned_kernels &k = c->tuned_attn_kernels[(size_t)i];
    sol_cuda_launch_handle(c, k.mv, dim3(g.grid_x, g.grid_y, g.grid_z), dim3(g.threads), q, *cache, sh, c->pos_dev,
                           window, softcap, parts, part_acc, out);
    if (g.n_splits > 1)
        sol_cuda_launch_handle(c, k.sum, dim3(g.combine_blocks), dim3(kCombineThreads),
                               static_cast<const sol_attn_part *>(parts), static_cast<const float *>(part_acc),
                               g.n_splits, head_dim, out);
    return true;
}

// More than 48 KiB of shared memory (head_dim 256) is opted into here, on
// the host at the call, never inside a recorded launch.
void launch_prefill(cuda_ctx *c, const attn_shape &sh, const float *q, const sol_kv_cache_layer *cache,
                    int64_t window, float softcap, sol_attn_part *parts, float *part_acc, float *out)
{
    prefill_instance k = prefill_instance_for(sh.head_dim);
    if (k.shared_bytes > kStaticSharedBytes &&
        SOL_CUDA_NOTE(c, cudaFuncSetAttribute(reinterpret_cast<const void *>(k.kernel),
                                              cudaFuncAttributeMaxDynamicSharedMemorySize, (int)k.shared_bytes)))
        return;
    dim3 grid(sh.n_heads, sh.n_splits, sh.seqs * sol_attn_query_tiles(sh.rows / sh.seqs, kTileRows));
    sol_cuda_launch(c, k.kernel, grid, kPrefillWarps * kWarp, k.shared_bytes, q, *cache, sh, c->pos_dev, window, softcap,
                    parts, part_acc, out);
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
    if (c->rows == c->seqs && tuned_decode(c, q, cache, n_heads, n_kv_heads, head_dim, window, softcap, out))
        return;
    attn_shape sh = shape_of(c, cache, n_heads, n_kv_heads, head_dim, window);
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
    if (c->rows / c->seqs > 1)
        launch_prefill(c, sh, q, cache, window, softcap, parts, part_acc, out);
    else
        launch_decode(c, sh, q, cache, window, softcap, parts, part_acc, out);
    if (sh.n_splits > 1)
        sol_cuda_launch(c, attention_combine_kernel, sh.rows * n_heads, kCombineThreads, 0,
                        static_cast<const sol_attn_part *>(parts), static_cast<const float *>(part_acc), sh.n_splits,
                        head_dim, out);
}
