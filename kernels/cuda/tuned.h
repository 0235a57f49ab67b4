// The tuner's winners in the engine's backend: which one a matmul takes
// (pure host code, tests/cuda/test_tuned.cu), and the kernels the backend
// loaded for them (backend.cu loads them at creation, ops.cu launches them).
#ifndef SOL_KERNELS_CUDA_TUNED_H
#define SOL_KERNELS_CUDA_TUNED_H

#include <cstddef>
#include <cstdint>

extern "C" {
#include "kernels/cuda/plugin.h"
}

#include "kernels/cuda/attn_variant.h"
#include "kernels/cuda/variant.h"

// The variant a winner's parameters name.
sol_mv_variant sol_mv_tuned_variant(const sol_cuda_tuned_mv *t);

// The plain matvec's winner among t[0..n) (rmsnorm 0) for the matmul of a
// rows x cols matrix of type (rows row_bytes apart, stored at w) on m
// inputs at x: one of exactly this type, shape and m, whose variant takes the m inputs in one pass
// (max_inputs >= m), fits the shape (sol_mv_check_shape) and whose loads
// are aligned (w to its vec_bytes, x to 16 bytes, as the built-in ones
// need). Its index, or -1: the built-in variants run.
int sol_mv_tuned_find(const sol_cuda_tuned_mv *t, int n, sol_dtype type, int64_t rows, int64_t cols,
                      size_t row_bytes, int m, const void *w, const float *x);
// The same for the fused kernel (rmsnorm 1): the winner for the matmul of
// RMSNorm(x) (rmsnorm_matmul_group; the caller has checked the norm's own
// needs, ops.cu's norm_folds).
int sol_mv_tuned_find_fused(const sol_cuda_tuned_mv *t, int n, sol_dtype type, int64_t rows, int64_t cols,
                            size_t row_bytes, int m, const void *w, const float *x);

// The attention variant a winner's parameters name.
sol_attn_variant sol_attn_tuned_variant(const sol_cuda_tuned_attn *t);

// The winner among t[0..n) for a decode step's attention of rows sequences
// (one query row each) over caches of `capacity` slots of kv_type: one of
// exactly these heads, head_dim, cache type and rows, measured at the
// capacity nearest this one and within a factor of 2 of it (the split rule
// it found is in slots a split, so it carries over that far; beyond, the
// splits' balance may differ), whose variant fits the shape
// (sol_av_check_shape). Its index, or -1: the built-in variant runs.
int sol_attn_tuned_find(const sol_cuda_tuned_attn *t, int n, int n_heads, int n_kv_heads, int head_dim,
                        sol_dtype kv_type, int64_t capacity, int rows);

#endif
