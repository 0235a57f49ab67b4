// The tuner's winners in the backend (kernels/cuda/tuned.h): which one a
// matmul takes, on the host without a GPU.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include "kernels/cuda/tuned.h"

namespace {

alignas(16) float g_x[16];
alignas(16) uint8_t g_w[64];

sol_cuda_tuned_mv winner(sol_dtype t, int64_t rows, int64_t cols, int m, int max_inputs, int k_split,
                         int rmsnorm = 0)
{
    sol_mv_params p = sol_mv_default(t, max_inputs);
    return sol_cuda_tuned_mv{t, rows, cols, m,
                             sol_cuda_mv_config{p.rows_per_block, p.threads_per_row, p.vec_bytes, p.unroll, k_split,
                                                p.max_inputs},
                             rmsnorm};
}

size_t row_bytes(sol_dtype t, int64_t cols) { return (size_t)sol_mv_bytes_of(t, cols); }

// Llama-2-7B's q, k, v, o (F16) and FFN down (Q4_K), each tuned for 1 and 8 inputs.
const sol_cuda_tuned_mv kTable[] = {
    winner(SOL_DT_F16, 4096, 4096, 1, 1, 1),   winner(SOL_DT_F16, 4096, 4096, 8, 8, 2),
    winner(SOL_DT_Q4_K, 4096, 11008, 1, 1, 1), winner(SOL_DT_Q4_K, 4096, 11008, 8, 8, 1),
};
constexpr int kN = sizeof kTable / sizeof kTable[0];

int find(sol_dtype t, int64_t rows, int64_t cols, int m, const void *w = g_w, const float *x = g_x)
{
    return sol_mv_tuned_find(kTable, kN, t, rows, cols, row_bytes(t, cols), m, w, x);
}

void test_exact_matches(void **state)
{
    (void)state;
    assert_int_equal(find(SOL_DT_F16, 4096, 4096, 1), 0);
    assert_int_equal(find(SOL_DT_F16, 4096, 4096, 8), 1);
    assert_int_equal(find(SOL_DT_Q4_K, 4096, 11008, 1), 2);
    assert_int_equal(find(SOL_DT_Q4_K, 4096, 11008, 8), 3);
}

// m between or above the tuned batches: the defaults (a winner for one
// input takes one a pass; none was measured for 2..7).
void test_other_batch_falls_back(void **state)
{
    (void)state;
    assert_int_equal(find(SOL_DT_F16, 4096, 4096, 2), -1);
    assert_int_equal(find(SOL_DT_Q4_K, 4096, 11008, 5), -1);
    sol_cuda_tuned_mv narrow = winner(SOL_DT_F16, 64, 64, 4, 2, 1); // max_inputs 2 < m 4
    assert_int_equal(sol_mv_tuned_find(&narrow, 1, SOL_DT_F16, 64, 64, row_bytes(SOL_DT_F16, 64), 4, g_w, g_x), -1);
}

void test_other_shape_falls_back(void **state)
{
    (void)state;
    assert_int_equal(find(SOL_DT_F16, 4096, 11008, 1), -1);      // another matrix
    assert_int_equal(find(SOL_DT_BF16, 4096, 4096, 1), -1);      // another type
    assert_int_equal(find(SOL_DT_Q4_K, 11008, 4096, 1), -1);     // transposed
    assert_int_equal(sol_mv_tuned_find(nullptr, 0, SOL_DT_F16, 4096, 4096, 8192, 1, g_w, g_x), -1);
}

// The variant's own rules still hold: a winner that does not fit the shape
// as stored, or loads that are not aligned, run the defaults.
void test_unfit_or_unaligned_falls_back(void **state)
{
    (void)state;
    assert_int_equal(sol_mv_tuned_find(kTable, kN, SOL_DT_F16, 4096, 4096, 8194, 1, g_w, g_x), -1); // padded rows
    assert_int_equal(find(SOL_DT_F16, 4096, 4096, 1, g_w + 2), -1); // 16-byte loads from 2 bytes in
    assert_int_equal(find(SOL_DT_F16, 4096, 4096, 1, g_w, g_x + 1), -1);
    sol_cuda_tuned_mv split3 = winner(SOL_DT_F16, 4096, 4096, 1, 1, 3); // 512 groups of 8 do not split in 3
    assert_int_equal(sol_mv_tuned_find(&split3, 1, SOL_DT_F16, 4096, 4096, 8192, 1, g_w, g_x), -1);
}

// Llama-2-7B's attention (32 heads, 32 KV heads of 128, f16 cache) tuned
// at 4096 slots for 1 and 8 rows, and at 16384 for 1 row; Llama-3-8B's
// (32 over 8) at 4096 for 1 row.
sol_cuda_tuned_attn attn(int heads, int kv, int64_t capacity, int rows, int block_heads, int warps, int slots)
{
    return sol_cuda_tuned_attn{heads, kv, 128, SOL_DT_F16, capacity, rows, sol_cuda_attn_config{4, block_heads, warps, slots}};
}
const sol_cuda_tuned_attn kAttn[] = {
    attn(32, 32, 4096, 1, 1, 8, 512), attn(32, 32, 4096, 8, 1, 4, 256), attn(32, 32, 16384, 1, 1, 8, 1024),
    attn(32, 8, 4096, 1, 4, 8, 512),
};
constexpr int kNAttn = sizeof kAttn / sizeof kAttn[0];

int find_attn(int heads, int kv, int64_t capacity, int rows, sol_dtype t = SOL_DT_F16, int head_dim = 128)
{
    return sol_attn_tuned_find(kAttn, kNAttn, heads, kv, head_dim, t, capacity, rows);
}

// The heads, head_dim, cache type and rows must be the winner's; the
// capacity the nearest tuned one within a factor of 2.
void test_attention_matches(void **state)
{
    (void)state;
    assert_int_equal(find_attn(32, 32, 4096, 1), 0);
    assert_int_equal(find_attn(32, 32, 4096, 8), 1);
    assert_int_equal(find_attn(32, 8, 4096, 1), 3);
    assert_int_equal(find_attn(32, 32, 2048, 1), 0);  // half the capacity: the 4096 one
    assert_int_equal(find_attn(32, 32, 8192, 1), 0);  // 4096 and 16384 an octave off each: the first
    assert_int_equal(find_attn(32, 32, 12000, 1), 2); // nearer 16384
    assert_int_equal(find_attn(32, 32, 32768, 1), 2);
    assert_int_equal(find_attn(32, 32, 1024, 1), -1); // 2 octaves below any
    assert_int_equal(find_attn(32, 32, 4096, 2), -1); // rows never tuned
    assert_int_equal(find_attn(32, 16, 4096, 1), -1); // other heads
    assert_int_equal(find_attn(32, 32, 4096, 1, SOL_DT_F32), -1);
    assert_int_equal(find_attn(32, 32, 4096, 1, SOL_DT_F16, 64), -1);
}

// A winner whose variant does not fit the shape it is asked for (wider
// than the head_dim needs) runs the built-in instead.
void test_attention_unfit_falls_back(void **state)
{
    (void)state;
    sol_cuda_tuned_attn wide = attn(32, 32, 4096, 1, 1, 8, 512);
    wide.params.dims_per_lane = 8; // 256 dims a lane group for head_dim 128
    assert_int_equal(sol_attn_tuned_find(&wide, 1, 32, 32, 128, SOL_DT_F16, 4096, 1), -1);
}

// The fused kernel's winners and the plain matvec's are apart: Llama-2-7B's
// q (F16, 4096 x 4096) tuned both ways for one input, its FFN up (Q4_K,
// 11008 x 4096) fused only.
const sol_cuda_tuned_mv kBoth[] = {
    winner(SOL_DT_F16, 4096, 4096, 1, 1, 2),
    winner(SOL_DT_F16, 4096, 4096, 1, 1, 1, 1),
    winner(SOL_DT_Q4_K, 11008, 4096, 1, 1, 1, 1),
};
constexpr int kNBoth = sizeof kBoth / sizeof kBoth[0];

int find_fused(sol_dtype t, int64_t rows, int64_t cols, int m, const void *w = g_w, const float *x = g_x)
{
    return sol_mv_tuned_find_fused(kBoth, kNBoth, t, rows, cols, row_bytes(t, cols), m, w, x);
}

void test_fused_matches(void **state)
{
    (void)state;
    assert_int_equal(find_fused(SOL_DT_F16, 4096, 4096, 1), 1);
    assert_int_equal(find_fused(SOL_DT_Q4_K, 11008, 4096, 1), 2);
    // the plain lookup never takes a fused winner, nor the fused a plain one
    assert_int_equal(sol_mv_tuned_find(kBoth, kNBoth, SOL_DT_F16, 4096, 4096, 8192, 1, g_w, g_x), 0);
    assert_int_equal(sol_mv_tuned_find(kBoth, kNBoth, SOL_DT_Q4_K, 11008, 4096, row_bytes(SOL_DT_Q4_K, 4096), 1,
                                       g_w, g_x),
                     -1);
    assert_int_equal(find_fused(SOL_DT_F16, 4096, 4096, 1), 1);
    assert_int_equal(find_fused(SOL_DT_F16, 4096, 4096, 8), -1);  // m never tuned
    assert_int_equal(find_fused(SOL_DT_Q4_K, 4096, 11008, 1), -1); // another matrix
    assert_int_equal(find_fused(SOL_DT_BF16, 4096, 4096, 1), -1);  // another type
    assert_int_equal(sol_mv_tuned_variant(&kBoth[1]).rmsnorm, 1);
    assert_int_equal(sol_mv_tuned_variant(&kBoth[0]).rmsnorm, 0);
}

// A fused winner with a K split (no such kernel), or with loads that are
// not aligned, runs the built-in fused matvec instead.
void test_fused_unfit_falls_back(void **state)
{
    (void)state;
    sol_cuda_tuned_mv split = winner(SOL_DT_F16, 4096, 4096, 1, 1, 2, 1);
    assert_int_equal(sol_mv_tuned_find_fused(&split, 1, SOL_DT_F16, 4096, 4096, 8192, 1, g_w, g_x), -1);
    assert_int_equal(find_fused(SOL_DT_F16, 4096, 4096, 1, g_w + 2), -1);
    assert_int_equal(find_fused(SOL_DT_F16, 4096, 4096, 1, g_w, g_x + 1), -1);
}

} // namespace

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_matches),
        cmocka_unit_test(test_other_batch_falls_back),
        cmocka_unit_test(test_other_shape_falls_back),
        cmocka_unit_test(test_unfit_or_unaligned_falls_back),
        cmocka_unit_test(test_attention_matches),
        cmocka_unit_test(test_attention_unfit_falls_back),
        cmocka_unit_test(test_fused_matches),
        cmocka_unit_test(test_fused_unfit_falls_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
