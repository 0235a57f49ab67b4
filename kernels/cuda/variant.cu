// Which matvec variants are valid, for any shape and for one, with the
// reason when not; their launch geometry and names. The rules are what
// matvec.cuh's kernel assumes, so a variant that passes computes every
// weight of every row exactly once (the host model in
// tests/cuda/test_variants.cu holds the kernel's tiling to that).
#include <cstdarg>
#include <cstdio>

#include "kernels/cuda/fail.h"
#include "kernels/cuda/variant.h"

namespace {

const char *type_name(sol_dtype t)
{
    switch (t) {
    case SOL_DT_F32: return "f32";
    case SOL_DT_F16: return "f16";
    case SOL_DT_BF16: return "bf16";
    case SOL_DT_Q8_0: return "q8_0";
    case SOL_DT_Q4_0: return "q4_0";
    case SOL_DT_Q4_1: return "q4_1";
    case SOL_DT_Q4_K: return "q4_k";
    case SOL_DT_Q6_K: return "q6_k";
    default: return "?";
    }
}

bool power_of_two(int n) { return n > 0 && (n & (n - 1)) == 0; }

int tile_bytes(const sol_mv_variant *v)
{
    return (int)sol_mv_bytes_of(v->type, sol_mv_tile_elems(v->p.threads_per_row, v->p.unroll));
}

// The thread layout: rows of threads that the shuffles and barriers take.
int check_threads(const sol_mv_params &p, char *why, size_t cap)
{
    int tpr = p.threads_per_row, rpb = p.rows_per_block;
    if (tpr < 1 || tpr > SOL_MV_MAX_THREADS || (tpr <= 32 ? !power_of_two(tpr) : tpr % 32 != 0))
        return sol_cuda_refuse(why, cap, "threads_per_row %d: a divisor of 32 or a multiple of 32, at most 1024", tpr);
    if (rpb < 1 || rpb * tpr > SOL_MV_MAX_THREADS)
        return sol_cuda_refuse(why, cap, "rows_per_block %d x threads_per_row %d: 1 to 1024 threads per block", rpb, tpr);
    if (rpb * tpr % 32 != 0)
        return sol_cuda_refuse(why, cap, "%d threads per block: not whole warps", rpb * tpr);
    return 0;
}

} // namespace

const char *sol_mv_type_name(sol_dtype t) { return type_name(t); }

int sol_mv_check_params(const sol_mv_variant *v, char *why, size_t cap)
{
    const sol_mv_params &p = v->p;
    sol_dtype t = v->type;
    if (sol_cuda_block_bytes(t) == 0)
        return sol_cuda_refuse(why, cap, "weight type %d: not one the CUDA backend decodes", (int)t);
    if (p.max_inputs < 1 || p.max_inputs > 8)
        return sol_cuda_refuse(why, cap, "max_inputs %d: 1 to 8", p.max_inputs);
    if (check_threads(p, why, cap))
        return 1;
    if (p.vec_bytes != 2 && p.vec_bytes != 4 && p.vec_bytes != 8 && p.vec_bytes != 16)
        return sol_cuda_refuse(why, cap, "vec_bytes %d: 2, 4, 8 or 16", p.vec_bytes);
    if (p.unroll < 1 || p.unroll > 64)
        return sol_cuda_refuse(why, cap, "unroll %d: 1 to 64", p.unroll);
    if (p.k_split < 1 || p.k_split > 256)
        return sol_cuda_refuse(why, cap, "k_split %d: 1 to 256", p.k_split);
    if (v->rmsnorm && p.k_split != 1)
        return sol_cuda_refuse(why, cap, "k_split %d: the fused RMSNorm matvec has no K split (1 only)", p.k_split);
    int elems = sol_mv_tile_elems(p.threads_per_row, p.unroll), block = sol_cuda_block_elems(t);
    if (elems % block != 0)
        return sol_cuda_refuse(why, cap, "a tile of %d elements (threads_per_row x unroll x 8) is not whole %s blocks of %d",
                      elems, type_name(t), block);
    if (tile_bytes(v) % p.vec_bytes != 0)
        return sol_cuda_refuse(why, cap, "a tile of %d bytes is not whole %d-byte loads", tile_bytes(v), p.vec_bytes);
    if (sol_mv_smem_bytes(v) > SOL_MV_MAX_STATIC_SMEM)
        return sol_cuda_refuse(why, cap, "%d bytes of shared memory per block, more than %d", sol_mv_smem_bytes(v),
                      (int)SOL_MV_MAX_STATIC_SMEM);
    return 0;
}

int sol_mv_check_shape(const sol_mv_variant *v, const sol_mv_shape *s, char *why, size_t cap)
{
    if (sol_mv_check_params(v, why, cap))
        return 1;
    const sol_mv_params &p = v->p;
    sol_dtype t = v->type;
    long long cols = (long long)s->cols, block = sol_cuda_block_elems(t);
    if (s->rows < 1 || s->cols < 1)
        return sol_cuda_refuse(why, cap, "an empty matrix (%lld x %lld)", (long long)s->rows, cols);
    if (cols % block != 0 || cols % 8 != 0)
        return sol_cuda_refuse(why, cap, "%lld columns: not whole %s blocks and groups of 8", cols, type_name(t));
    if ((long long)s->row_bytes != sol_mv_bytes_of(t, s->cols))
        return sol_cuda_refuse(why, cap, "rows of %zu bytes: %lld %s columns take %lld", s->row_bytes, cols, type_name(t),
                      (long long)sol_mv_bytes_of(t, s->cols));
    long long units = cols / (block > 8 ? block : 8); // blocks, or groups of 8 of a plain type
    if (units % p.k_split != 0)
        return sol_cuda_refuse(why, cap, "k_split %d does not divide the %lld %s of a row", p.k_split, units,
                      block > 8 ? "blocks" : "groups of 8");
    if (s->row_bytes % p.vec_bytes != 0)
        return sol_cuda_refuse(why, cap, "rows of %zu bytes do not all start %d-byte aligned", s->row_bytes, p.vec_bytes);
    if (s->row_bytes / p.k_split % p.vec_bytes != 0)
        return sol_cuda_refuse(why, cap, "K slices of %zu bytes do not all start %d-byte aligned", s->row_bytes / p.k_split,
                      p.vec_bytes);
    if ((s->rows + p.rows_per_block - 1) / p.rows_per_block > 0x7fffffff)
        return sol_cuda_refuse(why, cap, "%lld rows: more blocks than a grid holds", (long long)s->rows);
    return 0;
}

int sol_mv_smem_bytes(const sol_mv_variant *v)
{
    const sol_mv_params &p = v->p;
    int warp_sums = p.threads_per_row > 32 ? p.rows_per_block * p.threads_per_row / 32 : 0;
    // the fused kernel's RMSNorm warp sums: M x kSolRmsWarps doubles
    int norm_sums = v->rmsnorm ? p.max_inputs * kSolRmsWarps * 8 : 0;
    return p.rows_per_block * tile_bytes(v) + 4 * warp_sums + norm_sums;
}

sol_mv_launch sol_mv_geometry(const sol_mv_variant *v, const sol_mv_shape *s, int m)
{
    const sol_mv_params &p = v->p;
    sol_mv_launch l;
    l.grid_x = (unsigned)((s->rows + p.rows_per_block - 1) / p.rows_per_block);
    l.grid_y = (unsigned)p.k_split;
    l.threads = (unsigned)(p.rows_per_block * p.threads_per_row);
    l.workspace_bytes = p.k_split > 1 ? (size_t)p.k_split * m * s->rows * sizeof(float) : 0;
    return l;
}

void sol_mv_label(const sol_mv_variant *v, char *buf, size_t cap)
{
    const sol_mv_params &p = v->p;
    snprintf(buf, cap, "%s r%d t%d v%d u%d k%d m%d%s", type_name(v->type), p.rows_per_block, p.threads_per_row,
             p.vec_bytes, p.unroll, p.k_split, p.max_inputs, v->rmsnorm ? " norm" : "");
}

void sol_mv_kernel_expr(const sol_mv_variant *v, char *buf, size_t cap)
{
    const sol_mv_params &p = v->p;
    if (v->rmsnorm) { // sol_matvec_rmsnorm's parameters: no KSPLIT
        snprintf(buf, cap, "sol_matvec_rmsnorm<(sol_dtype)%d, %d, %d, %d, %d, %d>", (int)v->type, p.rows_per_block,
                 p.threads_per_row, p.vec_bytes, p.unroll, p.max_inputs);
        return;
    }
    snprintf(buf, cap, "sol_matvec<(sol_dtype)%d, %d, %d, %d, %d, %d, %d>", (int)v->type, p.rows_per_block,
             p.threads_per_row, p.vec_bytes, p.unroll, p.k_split, p.max_inputs);
}

void sol_mv_sum_expr(const sol_mv_variant *v, char *buf, size_t cap)
{
    if (v->p.k_split > 1)
        snprintf(buf, cap, "sol_matvec_sum<%d>", v->p.k_split);
    else if (cap)
        buf[0] = 0;
}
