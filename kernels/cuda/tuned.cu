// Which tuner winner a matmul takes (tuned.h). Host code, no device.
#include "kernels/cuda/tuned.h"

#include <cmath>

sol_mv_variant sol_mv_tuned_variant(const sol_cuda_tuned_mv *t)
{
    const sol_cuda_mv_config &c = t->params;
    return sol_mv_variant{t->type,
                          sol_mv_params{c.rows_per_block, c.threads_per_row, c.vec_bytes, c.unroll, c.k_split,
                                        c.max_inputs},
                          t->rmsnorm ? 1 : 0};
}

namespace {

// The same matmul, by the same kernel (fused or not: each has its winners).
bool same_problem(const sol_cuda_tuned_mv &t, int rmsnorm, sol_dtype type, int64_t rows, int64_t cols, int m)
{
    return (t.rmsnorm != 0) == (rmsnorm != 0) && t.type == type && t.rows == rows && t.cols == cols && t.m == m;
}

// Whether the variant runs this matrix and these inputs in one pass.
bool runs(const sol_cuda_tuned_mv &t, size_t row_bytes, int m, const void *w, const float *x)
{
    sol_mv_variant v = sol_mv_tuned_variant(&t);
    sol_mv_shape shape = {t.rows, t.cols, row_bytes};
    return v.p.max_inputs >= m && sol_mv_check_shape(&v, &shape, nullptr, 0) == 0 &&
           reinterpret_cast<uintptr_t>(w) % (uintptr_t)v.p.vec_bytes == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
}

int find(const sol_cuda_tuned_mv *t, int n, int rmsnorm, sol_dtype type, int64_t rows, int64_t cols, size_t row_bytes,
         int m, const void *w, const float *x)
{
    for (int i = 0; i < n; i++)
        if (same_problem(t[i], rmsnorm, type, rows, cols, m))
            return runs(t[i], row_bytes, m, w, x) ? i : -1;
    return -1;
}

} // namespace

int sol_mv_tuned_find(const sol_cuda_tuned_mv *t, int n, sol_dtype type, int64_t rows, int64_t cols,
                      size_t row_bytes, int m, const void *w, const float *x)
{
    return find(t, n, 0, type, rows, cols, row_bytes, m, w, x);
}

int sol_mv_tuned_find_fused(const sol_cuda_tuned_mv *t, int n, sol_dtype type, int64_t rows, int64_t cols,
                            size_t row_bytes, int m, const void *w, const float *x)
{
    return find(t, n, 1, type, rows, cols, row_bytes, m, w, x);
}

sol_attn_variant sol_attn_tuned_variant(const sol_cuda_tuned_attn *t)
{
    const sol_cuda_attn_config &c = t->params;
    return sol_attn_variant{c.dims_per_lane, c.heads_per_block, c.warps, c.slots_per_split};
}

namespace {

// How far apart two capacities are, in factors of 2 (0: equal).
double octaves(int64_t a, int64_t b) { return fabs(log2((double)a / (double)b)); }

} // namespace

int sol_attn_tuned_find(const sol_cuda_tuned_attn *t, int n, int n_heads, int n_kv_heads, int head_dim,
                        sol_dtype kv_type, int64_t capacity, int rows)
{
    int best = -1;
    for (int i = 0; i < n; i++) {
        const sol_cuda_tuned_attn &w = t[i];
        if (w.n_heads != n_heads || w.n_kv_heads != n_kv_heads || w.head_dim != head_dim || w.kv_type != kv_type ||
            w.rows != rows || w.capacity < 1 || capacity < 1 || octaves(w.capacity, capacity) > 1)
            continue;
        if (best < 0 || octaves(w.capacity, capacity) < octaves(t[best].capacity, capacity))
            best = i;
    }
    if (best < 0)
        return -1;
    sol_attn_variant v = sol_attn_tuned_variant(&t[best]);
    sol_av_shape shape = {n_heads, n_kv_heads, head_dim, capacity, rows};
    return sol_av_check_shape(&v, &shape, nullptr, 0) == 0 ? best : -1;
}
