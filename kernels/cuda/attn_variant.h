// The autotuner's decode attention variants: attention_decode.cuh's
// template parameters (dims a lane, query heads and warps a block) and the
// split rule, a launch argument (slots of capacity a split). Which are valid
// (for any shape, then for one), their launch geometry and kernel names
// (attn_variant.cu), and their NVRTC compile for one architecture with
// ptxas's figures, cached on disk by the matvec's machinery
// (variant_compile.cu, variant_cache.cu). Host code inside the plugin: it
// never prints; reasons and errors come back as strings.
#ifndef SOL_KERNELS_CUDA_ATTN_VARIANT_H
#define SOL_KERNELS_CUDA_ATTN_VARIANT_H

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/variant.h" // sol_mv_compiler, sol_mv_image: the compile and cache types are shared

struct sol_attn_variant {
    int dims_per_lane;   // DPL: 1, 2, 4 or 8 (head_dim / 32 rounded up to one of them)
    int heads_per_block; // HEADS: 1, 2, 4 or 8 query heads of one KV head's group
    int warps;           // WARPS a block
    int slots_per_split; // the split rule: one split per this many slots of capacity (the engine's is 256)
};

// A layer's attention as a decode step launches it: rows query rows (one a
// sequence), over a cache of `capacity` slots.
struct sol_av_shape {
    int n_heads, n_kv_heads, head_dim;
    int64_t capacity;
    int rows;
};

// 0 when the variant can be compiled; otherwise 1 and the reason, one line,
// in why (why may be NULL).
int sol_av_check_params(const sol_attn_variant *v, char *why, size_t cap);
// 0 when it can also run on shape s, and is not wider than s needs (the
// parameters are checked too).
int sol_av_check_shape(const sol_attn_variant *v, const sol_av_shape *s, char *why, size_t cap);

// Static shared memory of the split kernel, in bytes.
int sol_av_smem_bytes(const sol_attn_variant *v);

// The split kernel's launch (and the combine's, when there is more than
// one split), with what attn_shape takes of it.
struct sol_av_launch {
    unsigned grid_x, grid_y, grid_z, threads;
    int head_chunks, chunk_heads, n_splits;
    unsigned combine_blocks;  // 0 with one split: the split kernel writes the output
    size_t workspace_bytes;   // the splits' partial states and accumulators (0 with one split)
};
sol_av_launch sol_av_geometry(const sol_attn_variant *v, const sol_av_shape *s);

// "d4 h8 w4 s256", for tables and messages.
void sol_av_label(const sol_attn_variant *v, char *buf, size_t cap);
// The kernels' C++ names as NVRTC instantiates them: the split kernel and
// the combine (the same for every variant).
void sol_av_kernel_expr(const sol_attn_variant *v, char *buf, size_t cap);
void sol_av_combine_expr(char *buf, size_t cap);

// Compiles v for sm_<sm> (or takes it from c's cache), as sol_mv_build does
// a matvec: SOL_MV_OK, SOL_MV_INVALID (err says why; NVRTC never runs),
// SOL_MV_REJECTED (spills, or more registers or shared memory than an SM
// gives its block: out filled, err says why) or SOL_MV_FAILED. out->kernel
// is the split kernel's lowered name, out->sum the combine's; out->res the
// split kernel's resources.
int sol_av_build(sol_mv_compiler *c, const sol_attn_variant *v, int sm, sol_mv_image *out, char *notice,
                 size_t notice_cap, sol_err *err);

// What every attention image depends on but the variant and the
// architecture (attention_decode.cuh and what it includes, the options,
// NVRTC's version): a tuning trial's source key, as sol_mv_source_key is
// the matvec's.
uint64_t sol_av_source_key(void);

#endif
