// The engine's built-in decode attention variant (attention.cu launches it;
// the autotuner's at_default reports it and starts its search there): one
// rule in one place, so the tuner's "default" is what a decode step runs.
// Host code, not embedded for NVRTC (the kernels never need it).
#ifndef SOL_KERNELS_CUDA_ATTN_DEFAULT_H
#define SOL_KERNELS_CUDA_ATTN_DEFAULT_H

#include "kernels/cuda/attention.cuh"

#define SOL_ATTN_DECODE_WARPS 4 // warps a block of the engine's split kernel

// Dims a lane: the fewest of 2, 4, 8 that hold head_dim (the engine has no
// 1-dim instance: head_dim <= 32 runs with 2).
inline int sol_attn_default_dpl(int head_dim) { return head_dim <= 64 ? 2 : head_dim <= 128 ? 4 : 8; }

// Query heads a block: the engine's chunk of the group (at most
// SOL_ATTN_MAX_BLOCK_HEADS) rounded up to the instance 1, 2, 4 or 8 that
// holds it.
inline int sol_attn_default_heads(int group)
{
    int chunk = sol_attn_chunk_heads(group), heads = 1;
    while (heads < chunk)
        heads *= 2;
    return heads;
}

#endif
