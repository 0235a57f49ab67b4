// Which tuner winner a matmul takes (tuned.h). Host code, no device.
#include "kernels/cuda/tuned.h"

sol_mv_variant sol_mv_tuned_variant(const sol_cuda_tuned_mv *t)
{
    const sol_cuda_mv_config &c = t->params;
    return sol_mv_variant{t->type, sol_mv_params{c.rows_per_block, c.threads_per_row, c.vec_bytes, c.unroll,
                                                 c.k_split, c.max_inputs}};
}

namespace {

bool same_problem(const sol_cuda_tuned_mv &t, sol_dtype type, int64_t rows, int64_t cols, int m)
{
    return t.type == type && t.rows == rows && t.cols == cols && t.m == m;
}

// Whether the variant runs this matrix and these inputs in one pass.
bool runs(const sol_cuda_tuned_mv &t, size_t row_bytes, int m, const void *w, const float *x)
{
    sol_mv_variant v = sol_mv_tuned_variant(&t);
    sol_mv_shape shape = {t.rows, t.cols, row_bytes};
    return v.p.max_inputs >= m && sol_mv_check_shape(&v, &shape, nullptr, 0) == 0 &&
           reinterpret_cast<uintptr_t>(w) % (uintptr_t)v.p.vec_bytes == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
}

} // namespace

int sol_mv_tuned_find(const sol_cuda_tuned_mv *t, int n, sol_dtype type, int64_t rows, int64_t cols,
                      size_t row_bytes, int m, const void *w, const float *x)
{
    for (int i = 0; i < n; i++)
        if (same_problem(t[i], type, rows, cols, m))
            return runs(t[i], row_bytes, m, w, x) ? i : -1;
    return -1;
}
