// Which decode attention variants are valid, for any shape and for one,
// with the reason when not; their launch geometry and names. The rules are
// what attention_decode.cuh's split kernel assumes (a lane's DPL dims hold
// the head, a block's HEADS hold its chunk of the group) plus what an SM
// gives one block; the geometry is attention.cu's, with the variant's heads
// a block and slots a split in place of the engine's 8 and 256.
#include <cstdarg>
#include <cstdio>

#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attn_variant.h"
#include "kernels/cuda/fail.h"

namespace {

constexpr int kLanes = 32;
constexpr int kMaxDimsPerLane = 8; // SOL_CUDA_MAX_HEAD_DIM (256) / 32
constexpr int kMaxSlotsPerSplit = 1 << 16;

bool power_of_two(int n) { return n > 0 && (n & (n - 1)) == 0; }

int round_up_pow2(int n)
{
    int p = 1;
    while (p < n)
        p *= 2;
    return p;
}

// The head: every dim held, and no register array wider than it needs
// (half of it would hold the head too).
int check_dims(int dpl, int head_dim, char *why, size_t cap)
{
    if (head_dim < 1 || head_dim > kMaxDimsPerLane * kLanes)
        return sol_cuda_refuse(why, cap, "head_dim %d: 1 to %d", head_dim, kMaxDimsPerLane * kLanes);
    if (dpl * kLanes < head_dim)
        return sol_cuda_refuse(why, cap, "dims_per_lane %d holds %d dims, fewer than head_dim %d", dpl, dpl * kLanes,
                      head_dim);
    if (dpl > 1 && dpl / 2 * kLanes >= head_dim)
        return sol_cuda_refuse(why, cap, "dims_per_lane %d: %d already holds head_dim %d (the rest would be idle registers)",
                      dpl, dpl / 2, head_dim);
    return 0;
}

} // namespace

int sol_av_smem_bytes(const sol_attn_variant *v)
{
    return sol_attn_decode_smem_bytes(v->dims_per_lane, v->heads_per_block, v->warps);
}

int sol_av_check_params(const sol_attn_variant *v, char *why, size_t cap)
{
    if (!power_of_two(v->dims_per_lane) || v->dims_per_lane > kMaxDimsPerLane)
        return sol_cuda_refuse(why, cap, "dims_per_lane %d: 1, 2, 4 or 8", v->dims_per_lane);
    if (!power_of_two(v->heads_per_block) || v->heads_per_block > SOL_ATTN_MAX_BLOCK_HEADS)
        return sol_cuda_refuse(why, cap, "heads_per_block %d: 1, 2, 4 or 8", v->heads_per_block);
    if (v->warps < 1 || v->warps * kLanes > SOL_MV_MAX_THREADS)
        return sol_cuda_refuse(why, cap, "warps %d: 1 to %d (%d threads a block at most)", v->warps,
                      SOL_MV_MAX_THREADS / kLanes, (int)SOL_MV_MAX_THREADS);
    // fewer slots than a split's fewest keys would only name splits that stay empty
    if (!power_of_two(v->slots_per_split) || v->slots_per_split < SOL_ATTN_MIN_SPLIT_KEYS ||
        v->slots_per_split > kMaxSlotsPerSplit)
        return sol_cuda_refuse(why, cap, "slots_per_split %d: a power of two from %d to %d", v->slots_per_split,
                      SOL_ATTN_MIN_SPLIT_KEYS, kMaxSlotsPerSplit);
    if (sol_av_smem_bytes(v) > SOL_MV_MAX_STATIC_SMEM)
        return sol_cuda_refuse(why, cap, "%d bytes of static shared memory per block (dims_per_lane %d x heads %d x warps %d), "
                      "more than %d", sol_av_smem_bytes(v), v->dims_per_lane, v->heads_per_block, v->warps,
                      (int)SOL_MV_MAX_STATIC_SMEM);
    return 0;
}

// heads_per_block may exceed the group when the group is not a power of two
// (a group of 6 in blocks of 8: two padding heads a block, as the engine
// runs it); more than the group rounded up would pad every block for nothing.
int sol_av_check_shape(const sol_attn_variant *v, const sol_av_shape *s, char *why, size_t cap)
{
    if (sol_av_check_params(v, why, cap))
        return 1;
    if (s->n_kv_heads < 1 || s->n_heads < 1 || s->n_heads % s->n_kv_heads != 0)
        return sol_cuda_refuse(why, cap, "%d query heads over %d KV heads: not whole groups", s->n_heads, s->n_kv_heads);
    if (check_dims(v->dims_per_lane, s->head_dim, why, cap))
        return 1;
    int group = s->n_heads / s->n_kv_heads, widest = round_up_pow2(group);
    if (v->heads_per_block > widest)
        return sol_cuda_refuse(why, cap, "heads_per_block %d: a group of %d query heads needs at most %d", v->heads_per_block,
                      group, widest);
    if (s->capacity < 1)
        return sol_cuda_refuse(why, cap, "a cache of %lld slots", (long long)s->capacity);
    if (s->rows < 1 || s->rows > 65535)
        return sol_cuda_refuse(why, cap, "%d rows: 1 to 65535 (the grid's z)", s->rows);
    return 0;
}

sol_av_launch sol_av_geometry(const sol_attn_variant *v, const sol_av_shape *s)
{
    int group = s->n_heads / s->n_kv_heads;
    sol_av_launch l;
    l.head_chunks = sol_attn_head_chunks_for(group, v->heads_per_block);
    l.chunk_heads = sol_attn_chunk_heads_for(group, v->heads_per_block);
    l.n_splits = sol_attn_splits_for(s->capacity, v->slots_per_split);
    l.grid_x = (unsigned)(s->n_kv_heads * l.head_chunks);
    l.grid_y = (unsigned)l.n_splits;
    l.grid_z = (unsigned)s->rows;
    l.threads = (unsigned)(v->warps * kLanes);
    bool split = l.n_splits > 1;
    size_t parts = (size_t)s->rows * s->n_heads * l.n_splits;
    l.combine_blocks = split ? (unsigned)(s->rows * s->n_heads) : 0;
    l.workspace_bytes = split ? parts * (sizeof(sol_attn_part) + s->head_dim * sizeof(float)) : 0;
    return l;
}

void sol_av_label(const sol_attn_variant *v, char *buf, size_t cap)
{
    snprintf(buf, cap, "d%d h%d w%d s%d", v->dims_per_lane, v->heads_per_block, v->warps, v->slots_per_split);
}

void sol_av_kernel_expr(const sol_attn_variant *v, char *buf, size_t cap)
{
    snprintf(buf, cap, "attention_split_kernel<%d, %d, %d>", v->dims_per_lane, v->heads_per_block, v->warps);
}

void sol_av_combine_expr(char *buf, size_t cap) { snprintf(buf, cap, "attention_combine_kernel"); }
