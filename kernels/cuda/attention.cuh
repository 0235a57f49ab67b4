// The arithmetic of the CUDA attention (attention.cu), __host__ __device__
// so tests/cuda/test_attention.cu checks it on the host without a GPU:
// which keys a query row sees, how they are cut into splits (flash-
// decoding: blocks take contiguous ranges of them), which query heads a
// block takes, and the online softmax that each split keeps and the
// combine merges. For prefill: the tiles of query rows, the keys a tile of
// rows sees between them and their tiles, the splits' count, and the
// online softmax taken a tile of keys at a time.
#ifndef SOL_KERNELS_CUDA_ATTENTION_CUH
#define SOL_KERNELS_CUDA_ATTENTION_CUH

#include <cstdint>

#include "kernels/cuda/dequant.cuh" // SOL_HD

// NVRTC compiles this too (attention_decode.cuh) and has no <cmath>: its
// math functions are built in, but not the INFINITY macro.
#ifdef __CUDACC_RTC__
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
#else
#include <cmath>
#endif

// The keys a query row at position pos sees, as virtual indices 0..count-1:
// i < n_sinks is position i (a sink kept below the window), the rest are
// positions first..pos. Without a window (window <= 0) that is 0..pos; a
// window keeps the newest `window` positions, and the cache's `sinks` first
// positions when they fall below it (sol_kv_visible's rule).
struct sol_attn_keys {
    int64_t n_sinks, first, count;
};

SOL_HD sol_attn_keys sol_attn_keys_of(int64_t pos, int64_t window, int64_t sinks)
{
    int64_t first = window > 0 && pos + 1 > window ? pos + 1 - window : 0;
    int64_t n_sinks = sinks < first ? sinks : first; // sinks at or above first are in the window already
    return {n_sinks, first, n_sinks + pos - first + 1};
}

SOL_HD int64_t sol_attn_key_pos(const sol_attn_keys &k, int64_t i) { return i < k.n_sinks ? i : k.first + i - k.n_sinks; }

// Splits per query row: one per 256 slots of capacity, at most 32. From the
// capacity, never the position, so a decode step's grid is the same every
// step (a CUDA graph replays it). The autotuner's variants choose their own
// slots a split (sol_attn_splits_for); the engine's is 256.
#define SOL_ATTN_SLOTS_PER_SPLIT 256
#define SOL_ATTN_MAX_SPLITS 32
// A split takes at least this many keys, so a short context keeps to a few
// blocks (the rest find no keys and return at once) instead of spreading
// one or two keys over each.
#define SOL_ATTN_MIN_SPLIT_KEYS 64

SOL_HD int sol_attn_splits_for(int64_t capacity, int slots_per_split)
{
    int64_t n = (capacity + slots_per_split - 1) / slots_per_split;
    return n < 1 ? 1 : n > SOL_ATTN_MAX_SPLITS ? SOL_ATTN_MAX_SPLITS : (int)n;
}

SOL_HD int sol_attn_splits(int64_t capacity) { return sol_attn_splits_for(capacity, SOL_ATTN_SLOTS_PER_SPLIT); }

// Split `split` of n_splits over `count` keys: the virtual keys [begin, end),
// contiguous and in order, so merging the splits in split order adds the
// keys in order. Empty (begin == end) when the earlier splits took them all.
struct sol_attn_range {
    int64_t begin, end;
};

SOL_HD sol_attn_range sol_attn_split_range(int64_t count, int n_splits, int split)
{
    int64_t chunk = (count + n_splits - 1) / n_splits;
    if (chunk < SOL_ATTN_MIN_SPLIT_KEYS)
        chunk = SOL_ATTN_MIN_SPLIT_KEYS;
    int64_t begin = split * chunk, end = begin + chunk;
    return {begin < count ? begin : count, end < count ? end : count};
}

// A block takes up to this many query heads of one KV head's group, so each
// key is read once for all of them; a larger group (MQA) is cut into
// chunks of equal size (the last may be smaller). The autotuner's variants
// take up to their own heads a block (the _for functions); the engine's
// is 8.
#define SOL_ATTN_MAX_BLOCK_HEADS 8

SOL_HD int sol_attn_head_chunks_for(int group, int block_heads) { return (group + block_heads - 1) / block_heads; }

// Query heads per chunk (the last chunk takes what is left, at least one:
// at most block_heads a chunk, so the chunks before the last hold fewer
// than group).
SOL_HD int sol_attn_chunk_heads_for(int group, int block_heads)
{
    int chunks = sol_attn_head_chunks_for(group, block_heads);
    return (group + chunks - 1) / chunks;
}

SOL_HD int sol_attn_head_chunks(int group) { return sol_attn_head_chunks_for(group, SOL_ATTN_MAX_BLOCK_HEADS); }
SOL_HD int sol_attn_chunk_heads(int group) { return sol_attn_chunk_heads_for(group, SOL_ATTN_MAX_BLOCK_HEADS); }

// A partial softmax over some keys: the largest score, and the sum of
// exp(score - max). Its accumulator, kept beside it, is the sum of
// exp(score - max) * value. No keys: max -inf, sum 0, and the accumulator
// is never read.
struct sol_attn_part {
    float max, sum;
};

SOL_HD sol_attn_part sol_attn_empty() { return {-INFINITY, 0.0f}; }

// Static shared memory of attention_decode.cuh's split kernel with dpl dims
// a lane, `heads` heads and `warps` warps a block: the queries, then each
// warp's states and accumulators for the block's merge.
SOL_HD constexpr int sol_attn_decode_smem_bytes(int dpl, int heads, int warps)
{
    return (int)(sizeof(float) * heads * dpl * 32 + sizeof(sol_attn_part) * warps * heads +
                 sizeof(float) * warps * heads * dpl * 32);
}

// Adds one key's score to a running state: the caller multiplies its
// accumulator by *rescale and adds *weight times the key's value. The
// first key of an empty state gets rescale 0 (exp(-inf)) and weight 1.
SOL_HD void sol_attn_add_score(sol_attn_part *st, float score, float *rescale, float *weight)
{
    float next = fmaxf(st->max, score);
    *rescale = expf(st->max - next);
    *weight = expf(score - next);
    st->sum = st->sum * *rescale + *weight;
    st->max = next;
}

// Merges `from` (its accumulator from_acc, n values) into `into` (acc): both
// are rescaled to the larger max. An empty `from` changes nothing and its
// accumulator is not read (an empty split writes none); an empty `into`
// becomes a copy of `from`, whatever its accumulator held.
SOL_HD void sol_attn_merge(sol_attn_part *into, float *acc, sol_attn_part from, const float *from_acc, int n)
{
    if (from.max == -INFINITY)
        return;
    if (into->max == -INFINITY) {
        *into = from;
        for (int i = 0; i < n; i++)
            acc[i] = from_acc[i];
        return;
    }
    float max = fmaxf(into->max, from.max);
    float mine = expf(into->max - max), theirs = expf(from.max - max);
    into->sum = into->sum * mine + from.sum * theirs;
    into->max = max;
    for (int i = 0; i < n; i++)
        acc[i] = acc[i] * mine + from_acc[i] * theirs;
}

// ---- prefill: tiles of query rows ------------------------------------------
//
// A prompt step (more than one row a sequence) takes its rows a tile of
// consecutive rows of one sequence at a time, so that each K and V row read
// into shared memory serves every row of the tile, not one.

// Query rows a tile of the prefill kernel (attention.cu: 4 warps, 4 rows each).
#define SOL_ATTN_TILE_ROWS 16

// Tiles of tile_rows over a sequence's `rows` rows; tile i is rows
// [i * tile_rows, +tile_rows), the last one cut at `rows`.
SOL_HD int sol_attn_query_tiles(int rows, int tile_rows) { return (rows + tile_rows - 1) / tile_rows; }

SOL_HD int sol_attn_query_tile_rows(int rows, int tile_rows, int tile)
{
    int left = rows - tile * tile_rows;
    return left < tile_rows ? left : tile_rows;
}

// The keys that n consecutive query rows at positions pos0..pos0+n-1 see
// between them, enumerated as one row's are (sol_attn_key_pos): the first
// row's keys, then the later rows' newer positions pos0+1..pos0+n-1. A later
// row's window starts at or after the first row's, so its sinks below the
// first row's window are the first row's sinks, and the rest of its keys
// lie in first..pos0+n-1. Each of these keys is seen by some row (the first
// row, or the row at its position), so no tile of them is unseen by all.
SOL_HD sol_attn_keys sol_attn_tile_keys(int64_t pos0, int n, int64_t window, int64_t sinks)
{
    sol_attn_keys k = sol_attn_keys_of(pos0, window, sinks);
    k.count += n - 1;
    return k;
}

// A block's range of such keys in tiles of tile_keys (staged in shared
// memory one at a time): tile i is [begin + i * tile_keys, +tile_keys), the
// last one cut at end.
SOL_HD int64_t sol_attn_key_tiles(sol_attn_range r, int tile_keys)
{
    return (r.end - r.begin + tile_keys - 1) / tile_keys;
}

SOL_HD sol_attn_range sol_attn_key_tile(sol_attn_range r, int tile_keys, int64_t i)
{
    int64_t begin = r.begin + i * tile_keys, end = begin + tile_keys;
    return {begin, end < r.end ? end : r.end};
}

// Splits of each tile's keys in a prompt step: a long context spread over
// more blocks when the step's (tiles x heads) blocks are too few to fill the
// GPU (a 64-row chunk of a long prompt), none when they are enough. Each
// split keeps at least SOL_ATTN_PREFILL_SPLIT_KEYS keys, so the combine's
// extra pass stays small beside the split's work. keys: the most keys a
// tile sees; blocks: the launch's blocks without splits.
#define SOL_ATTN_PREFILL_BLOCKS 1024
#define SOL_ATTN_PREFILL_SPLIT_KEYS 512

SOL_HD int sol_attn_prefill_splits(int64_t keys, int64_t blocks)
{
    int64_t n = keys / SOL_ATTN_PREFILL_SPLIT_KEYS, b = blocks > 0 ? blocks : 1;
    int64_t wanted = (SOL_ATTN_PREFILL_BLOCKS + b - 1) / b;
    n = n < wanted ? n : wanted;
    n = n < SOL_ATTN_MAX_SPLITS ? n : SOL_ATTN_MAX_SPLITS;
    return n < 1 ? 1 : (int)n;
}

// The online softmax a tile of keys at a time (the prefill kernel): a row's
// scores over the tile, -inf where it does not see the key. A tile it sees
// none of is skipped. Otherwise sol_attn_open_tile moves the state to the
// tile's largest score and returns the factor the accumulator is multiplied
// by (0 for an empty state: exp(-inf)); then the seen keys' weights
// (sol_attn_weight), summed in key order, are added to the sum, and their
// weight * value to the accumulator. An unseen key's weight is exactly 0.
SOL_HD float sol_attn_open_tile(sol_attn_part *st, float tile_max)
{
    float next = fmaxf(st->max, tile_max);
    if (next == -INFINITY) // nothing seen yet nor now: nothing to rescale
        return 1.0f;
    float rescale = expf(st->max - next);
    st->sum *= rescale;
    st->max = next;
    return rescale;
}

SOL_HD float sol_attn_weight(const sol_attn_part &st, float score) { return expf(score - st.max); }

#endif
