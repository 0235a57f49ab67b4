// The arithmetic of the CUDA attention (attention.cu), __host__ __device__
// so tests/cuda/test_attention.cu checks it on the host without a GPU:
// which keys a query row sees, how they are cut into splits (flash-
// decoding: blocks take contiguous ranges of them), which query heads a
// block takes, and the online softmax that each split keeps and the
// combine merges.
#ifndef SOL_KERNELS_CUDA_ATTENTION_CUH
#define SOL_KERNELS_CUDA_ATTENTION_CUH

#include <cmath>
#include <cstdint>

#include "kernels/cuda/dequant.cuh" // SOL_HD

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
// step (a CUDA graph replays it).
#define SOL_ATTN_SLOTS_PER_SPLIT 256
#define SOL_ATTN_MAX_SPLITS 32
// A split takes at least this many keys, so a short context keeps to a few
// blocks (the rest find no keys and return at once) instead of spreading
// one or two keys over each.
#define SOL_ATTN_MIN_SPLIT_KEYS 64

SOL_HD int sol_attn_splits(int64_t capacity)
{
    int64_t n = (capacity + SOL_ATTN_SLOTS_PER_SPLIT - 1) / SOL_ATTN_SLOTS_PER_SPLIT;
    return n < 1 ? 1 : n > SOL_ATTN_MAX_SPLITS ? SOL_ATTN_MAX_SPLITS : (int)n;
}

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
// chunks of equal size (the last may be smaller).
#define SOL_ATTN_MAX_BLOCK_HEADS 8

SOL_HD int sol_attn_head_chunks(int group)
{
    return (group + SOL_ATTN_MAX_BLOCK_HEADS - 1) / SOL_ATTN_MAX_BLOCK_HEADS;
}

// Query heads per chunk (the last chunk takes what is left, at least one:
// at most 8 a chunk, so the chunks before the last hold fewer than group).
SOL_HD int sol_attn_chunk_heads(int group)
{
    int chunks = sol_attn_head_chunks(group);
    return (group + chunks - 1) / chunks;
}

// A partial softmax over some keys: the largest score, and the sum of
// exp(score - max). Its accumulator, kept beside it, is the sum of
// exp(score - max) * value. No keys: max -inf, sum 0, and the accumulator
// is never read.
struct sol_attn_part {
    float max, sum;
};

SOL_HD sol_attn_part sol_attn_empty() { return {-INFINITY, 0.0f}; }

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

#endif
