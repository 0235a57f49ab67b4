// The cuBLAS matmul's host half (kernels/cuda/gemm_plan.h), without a GPU:
// the cublasGemmEx arguments for each weight type and shape, a column-major
// GEMM on the host driven only by those arguments reproducing the engine's
// y = x . W^T (+ bias) on random data, which matmuls go through cuBLAS
// under each --gemm mode, and the scratch each call asks for.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include <cmath>
#include <cstdlib>
#include <vector>

#include "kernels/cuda/cuda_backend.h"

static sol_weight_view view(sol_dtype t, int64_t rows, int64_t cols, size_t row_bytes)
{
    sol_weight_view w = {};
    w.type = t;
    w.rows = rows;
    w.cols = cols;
    w.row_bytes = row_bytes;
    return w;
}

// A stored row of a block type: whole blocks.
static size_t block_row_bytes(sol_dtype t, int64_t cols)
{
    return (size_t)(cols / sol_cuda_block_elems(t)) * (size_t)sol_cuda_block_bytes(t);
}

// What every plan shares: C = W . x seen column-major.
static void check_mapping(const sol_cuda_gemm_plan &p, const sol_weight_view &w, int m)
{
    assert_true(p.ok);
    assert_int_equal(p.transa, CUBLAS_OP_T);
    assert_int_equal(p.transb, CUBLAS_OP_N);
    assert_int_equal(p.M, w.rows);
    assert_int_equal(p.N, m);
    assert_int_equal(p.K, w.cols);
    assert_int_equal(p.ldb, w.cols);
    assert_int_equal(p.ldc, w.rows);
    assert_int_equal(p.c_type, CUDA_R_32F);
    assert_true(p.lda >= p.K); // cuBLAS's rule for op(A) = A^T
}

static void test_plan_f32(void **state)
{
    (void)state;
    sol_weight_view w = view(SOL_DT_F32, 5, 7, 7 * 4);
    sol_cuda_gemm_plan p = sol_cuda_gemm_plan_for(&w, 9);
    check_mapping(p, w, 9);
    assert_int_equal(p.lda, 7);
    assert_int_equal(p.a_type, CUDA_R_32F);
    assert_int_equal(p.b_type, CUDA_R_32F);
    assert_int_equal(p.w_scratch_bytes, 0);
    assert_int_equal(p.x_scratch_bytes, 0);
}

static void test_plan_half_types(void **state)
{
    (void)state;
    sol_weight_view w = view(SOL_DT_F16, 64, 40, 40 * 2);
    sol_cuda_gemm_plan p = sol_cuda_gemm_plan_for(&w, 3);
    check_mapping(p, w, 3);
    assert_int_equal(p.lda, 40);
    assert_int_equal(p.a_type, CUDA_R_16F);
    assert_int_equal(p.b_type, CUDA_R_16F);

    // rows further apart than cols: lda is the stored stride
    w = view(SOL_DT_BF16, 33, 100, 108 * 2);
    p = sol_cuda_gemm_plan_for(&w, 1);
    check_mapping(p, w, 1);
    assert_int_equal(p.lda, 108);
    assert_int_equal(p.a_type, CUDA_R_16BF);
    assert_int_equal(p.b_type, CUDA_R_16BF);
}

static void test_plan_block_types(void **state)
{
    (void)state;
    const sol_dtype types[] = {SOL_DT_Q8_0, SOL_DT_Q4_0, SOL_DT_Q4_1, SOL_DT_Q4_K, SOL_DT_Q6_K};
    for (sol_dtype t : types) {
        sol_weight_view w = view(t, 16, 512, block_row_bytes(t, 512));
        sol_cuda_gemm_plan p = sol_cuda_gemm_plan_for(&w, 17);
        check_mapping(p, w, 17);
        assert_int_equal(p.lda, 512); // the decoded scratch: dense rows
        assert_int_equal(p.a_type, CUDA_R_16F);
        assert_int_equal(p.b_type, CUDA_R_16F);
    }
}

static void test_plan_refuses(void **state)
{
    (void)state;
    sol_weight_view none[] = {
        view(SOL_DT_Q5_K, 16, 256, 176),                          // not decoded by dequant.cuh
        view(SOL_DT_Q4_0, 16, 48, 18),                            // not whole blocks
        view(SOL_DT_F16, 16, 40, 79),                             // odd row bytes
        view(SOL_DT_F16, 16, 40, 60),                             // rows shorter than cols
        view(SOL_DT_F32, 16, 40, 162),                            // not whole floats
        view(SOL_DT_F16, (int64_t)INT_MAX + 1, 64, 128),          // rows past cuBLAS's int
        view(SOL_DT_F32, 4, 0, 0),                                // empty
    };
    for (const sol_weight_view &w : none)
        assert_false(sol_cuda_gemm_plan_for(&w, 16).ok);
    sol_weight_view w = view(SOL_DT_F16, 16, 40, 80);
    assert_false(sol_cuda_gemm_plan_for(&w, 0).ok);
}

static void test_scratch_sizes(void **state)
{
    (void)state;
    sol_weight_view w = view(SOL_DT_F32, 300, 64, 256);
    sol_cuda_gemm_plan p = sol_cuda_gemm_plan_for(&w, 20);
    assert_int_equal(p.w_scratch_bytes, 0); // f32 in place, both operands
    assert_int_equal(p.x_scratch_bytes, 0);

    w = view(SOL_DT_BF16, 300, 64, 128);
    p = sol_cuda_gemm_plan_for(&w, 20);
    assert_int_equal(p.w_scratch_bytes, 0);       // in place
    assert_int_equal(p.x_scratch_bytes, 20 * 64 * 2); // x in bf16, ldb per row

    w = view(SOL_DT_Q4_K, 300, 1024, block_row_bytes(SOL_DT_Q4_K, 1024));
    p = sol_cuda_gemm_plan_for(&w, 20);
    assert_int_equal(p.w_scratch_bytes, (size_t)300 * p.lda * 2); // M rows of lda halves
    assert_int_equal(p.w_scratch_bytes, (size_t)300 * 1024 * 2);
    assert_int_equal(p.x_scratch_bytes, (size_t)p.N * p.ldb * 2);
    assert_int_equal(p.x_scratch_bytes, (size_t)20 * 1024 * 2);
}

static void test_wanted_modes(void **state)
{
    (void)state;
    cuda_ctx c{};
    sol_weight_view f16 = view(SOL_DT_F16, 64, 64, 128), bf16 = view(SOL_DT_BF16, 64, 64, 128),
                    f32 = view(SOL_DT_F32, 64, 64, 256),
                    q4k = view(SOL_DT_Q4_K, 64, 256, block_row_bytes(SOL_DT_Q4_K, 256)),
                    q5k = view(SOL_DT_Q5_K, 64, 256, 176);

    c.gemm = SOL_CUDA_GEMM_CUSTOM; // cuBLAS for prefill only
    assert_false(sol_cuda_gemm_wanted(&c, &f16, 1));
    assert_false(sol_cuda_gemm_wanted(&c, &f16, 8));
    assert_true(sol_cuda_gemm_wanted(&c, &f16, 9));
    assert_false(sol_cuda_gemm_wanted(&c, &q4k, 8));
    assert_true(sol_cuda_gemm_wanted(&c, &q4k, 9));
    assert_true(sol_cuda_gemm_wanted(&c, &f32, 512));
    assert_false(sol_cuda_gemm_wanted(&c, &q5k, 512)); // no plan: the custom path

    c.gemm = SOL_CUDA_GEMM_CUBLAS; // and every F16/BF16 matmul
    assert_true(sol_cuda_gemm_wanted(&c, &f16, 1));
    assert_true(sol_cuda_gemm_wanted(&c, &bf16, 1));
    assert_true(sol_cuda_gemm_wanted(&c, &bf16, 8));
    assert_false(sol_cuda_gemm_wanted(&c, &f32, 1));
    assert_false(sol_cuda_gemm_wanted(&c, &q4k, 8));
    assert_true(sol_cuda_gemm_wanted(&c, &q4k, 9));
}

// cublasGemmEx's arithmetic on the host, reading A, B and C only through
// the plan's (trans, M, N, K, ld): C[i + j ldc] = sum_l op(A)(i, l) op(B)(l, j).
static void host_gemm(const sol_cuda_gemm_plan &p, const float *a, const float *b, float *c)
{
    for (int j = 0; j < p.N; j++)
        for (int i = 0; i < p.M; i++) {
            double s = 0;
            for (int l = 0; l < p.K; l++) {
                float av = p.transa == CUBLAS_OP_N ? a[i + (size_t)l * p.lda] : a[l + (size_t)i * p.lda];
                float bv = p.transb == CUBLAS_OP_N ? b[l + (size_t)j * p.ldb] : b[j + (size_t)l * p.ldb];
                s += (double)av * bv;
            }
            c[i + (size_t)j * p.ldc] = (float)s;
        }
}

static float uniform() { return (float)rand() / (float)RAND_MAX * 2.0f - 1.0f; }

// W as cuBLAS reads it (rows of lda floats, padding poisoned), x, bias:
// the host GEMM then gemm.cu's bias rule (y[t] += bias[t % rows]) equal the
// engine's matmul written out naively, to 1e-5.
static void check_against_naive(const sol_weight_view &w, int m, bool with_bias, bool f32_inputs = false)
{
    sol_cuda_gemm_plan p = sol_cuda_gemm_plan_for(&w, m, f32_inputs);
    assert_true(p.ok);
    int64_t rows = w.rows, cols = w.cols;
    std::vector<float> a((size_t)rows * p.lda, NAN), x((size_t)m * cols), bias(rows), y((size_t)m * rows);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < cols; k++)
            a[(size_t)r * p.lda + k] = uniform();
    for (float &v : x)
        v = uniform();
    for (float &v : bias)
        v = uniform();
    host_gemm(p, a.data(), x.data(), y.data());
    if (with_bias)
        for (size_t t = 0; t < y.size(); t++)
            y[t] += bias[t % rows];
    for (int i = 0; i < m; i++)
        for (int64_t r = 0; r < rows; r++) {
            double want = with_bias ? bias[r] : 0.0;
            for (int64_t k = 0; k < cols; k++)
                want += (double)x[(size_t)i * cols + k] * a[(size_t)r * p.lda + k];
            float got = y[(size_t)i * rows + r];
            if (!(fabs(got - want) <= 1e-5 * (1 + fabs(want))))
                fail_msg("type %d %lldx%lld m=%d: y[%d][%lld] = %.9g, want %.9g", (int)w.type,
                         (long long)rows, (long long)cols, m, i, (long long)r, got, want);
        }
}

static void test_mapping_reproduces_matmul(void **state)
{
    (void)state;
    srand(12345);
    check_against_naive(view(SOL_DT_F32, 5, 7, 7 * 4), 9, true);
    check_against_naive(view(SOL_DT_F32, 13, 24, 32 * 4), 1, false); // padded rows
    check_against_naive(view(SOL_DT_F16, 37, 40, 40 * 2), 11, true);
    check_against_naive(view(SOL_DT_BF16, 33, 100, 108 * 2), 3, true); // padded rows
    check_against_naive(view(SOL_DT_Q4_K, 19, 256, block_row_bytes(SOL_DT_Q4_K, 256)), 16, true);
    check_against_naive(view(SOL_DT_Q8_0, 64, 96, block_row_bytes(SOL_DT_Q8_0, 96)), 33, false);
    // f32 inputs: every type decoded to dense f32 rows
    check_against_naive(view(SOL_DT_BF16, 33, 104, 112 * 2), 12, true, true);
    check_against_naive(view(SOL_DT_Q6_K, 9, 512, block_row_bytes(SOL_DT_Q6_K, 512)), 10, false, true);
}

// --activations f32: nothing rounded to 16 bits; W decoded to f32 (rows of
// K floats), x in place; the rule of which matmuls go to cuBLAS unchanged.
static void test_plan_f32_inputs(void **state)
{
    (void)state;
    const sol_dtype types[] = {SOL_DT_F16, SOL_DT_BF16, SOL_DT_Q8_0, SOL_DT_Q4_0, SOL_DT_Q4_1, SOL_DT_Q4_K,
                               SOL_DT_Q6_K};
    for (sol_dtype t : types) {
        int64_t cols = 512, bytes = sol_cuda_block_elems(t) == 1 ? cols * 2 : block_row_bytes(t, cols);
        sol_weight_view w = view(t, 300, cols, (size_t)bytes);
        sol_cuda_gemm_plan p = sol_cuda_gemm_plan_for(&w, 12, true);
        assert_true(p.ok);
        assert_int_equal(p.a_type, CUDA_R_32F);
        assert_int_equal(p.b_type, CUDA_R_32F);
        assert_int_equal(p.lda, 512);
        assert_int_equal(p.w_scratch_bytes, 300 * 512 * 4);
        assert_int_equal(p.x_scratch_bytes, 0);
    }
    sol_weight_view f32 = view(SOL_DT_F32, 300, 512, 512 * 4); // in place, as without f32 inputs
    assert_int_equal(sol_cuda_gemm_plan_for(&f32, 12, true).w_scratch_bytes, 0);
    cuda_ctx c = {};
    c.f32_gemm = true;
    sol_weight_view q4k = view(SOL_DT_Q4_K, 300, 512, block_row_bytes(SOL_DT_Q4_K, 512));
    assert_false(sol_cuda_gemm_wanted(&c, &q4k, 8));
    assert_true(sol_cuda_gemm_wanted(&c, &q4k, 9));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_f32),        cmocka_unit_test(test_plan_half_types),
        cmocka_unit_test(test_plan_block_types), cmocka_unit_test(test_plan_refuses),
        cmocka_unit_test(test_scratch_sizes),   cmocka_unit_test(test_wanted_modes),
        cmocka_unit_test(test_plan_f32_inputs),
        cmocka_unit_test(test_mapping_reproduces_matmul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
