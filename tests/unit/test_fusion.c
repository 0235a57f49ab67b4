/* The CPU backend's fused ops give exactly what the unfused sequence gives:
 * a matmul after rmsnorm or swiglu (which quantise their output for it)
 * equals the same matmul on a copy of that input quantised by the matmul
 * itself, and rope_kv_write equals rope then kv_write. Also: the quantised
 * copy serves only the very next call (another op in between, or a
 * different input, and the matmul quantises afresh). */
#define TEST_RNG_SEED 0x13198a2e03707344ull
#include "tests/unit/kernel_test.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/cpu/quant.h"

enum { ROWS = 40, COLS = 96, M = 3 };

static void random_matrix(uint8_t *w)
{
    float row[COLS];
    for (int r = 0; r < ROWS; r++) {
        for (int c = 0; c < COLS; c++)
            row[c] = rng_normal();
        sol_quantize(SOL_DT_Q4_1, row, w + (size_t)r * sol_row_bytes(SOL_DT_Q4_1, COLS), COLS);
    }
}

static void assert_same(const float *a, const float *b, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof *a))
            fail_msg("%s: element %d is %.9g fused, %.9g unfused", what, i, a[i], b[i]);
}

static void test_quantised_output_feeds_next_matmul(void **state)
{
    (void)state;
    sol_backend *be = cpu_backend(2);
    uint8_t w[ROWS * 60];
    random_matrix(w);
    sol_weight_view view = {SOL_DT_Q4_1, w, ROWS, COLS, sol_row_bytes(SOL_DT_Q4_1, COLS)};
    float x[M * COLS], norm_w[COLS], normed[M * COLS], copy[M * COLS], up[M * COLS];
    float fused[M * ROWS], plain[M * ROWS];
    for (int i = 0; i < M * COLS; i++) {
        x[i] = rng_normal();
        up[i] = rng_normal();
    }
    for (int i = 0; i < COLS; i++)
        norm_w[i] = 1 + 0.1f * rng_normal();

    begin_step(be, M, 0);
    be->rmsnorm(be, x, norm_w, 1e-5f, COLS, normed);
    be->matmul(be, &view, NULL, normed, M, fused);
    memcpy(copy, normed, sizeof copy); /* another buffer: nothing to reuse */
    be->matmul(be, &view, NULL, copy, M, plain);
    assert_same(fused, plain, M * ROWS, "rmsnorm -> matmul");

    memcpy(copy, x, sizeof copy);
    be->swiglu(be, copy, up, COLS);
    be->matmul(be, &view, NULL, copy, M, fused);
    memcpy(normed, copy, sizeof normed);
    be->matmul(be, &view, NULL, normed, M, plain);
    assert_same(fused, plain, M * ROWS, "swiglu -> matmul");

    /* an op in between: the copy is forgotten, the new contents quantised */
    be->rmsnorm(be, x, norm_w, 1e-5f, COLS, normed);
    be->add(be, normed, up, COLS);
    be->matmul(be, &view, NULL, normed, M, fused);
    memcpy(copy, normed, sizeof copy);
    be->matmul(be, &view, NULL, copy, M, plain);
    assert_same(fused, plain, M * ROWS, "rmsnorm, add, matmul");
    be->destroy(be);
}

/* From int8_dots_below input rows (prefill) q8 activations change nothing:
 * the matmul is bit for bit the one with f32 activations, also right after
 * rmsnorm and swiglu (which then quantise nothing), and one row below the
 * threshold it is not (the integer dots). */
static void test_prefill_rows_take_f32_inputs(void **state)
{
    (void)state;
    sol_backend *be = cpu_backend(2);
    enum { P = 32 };
    assert_int_equal(be->int8_dots_below, P);
    uint8_t w[ROWS * 60];
    random_matrix(w);
    sol_weight_view view = {SOL_DT_Q4_1, w, ROWS, COLS, sol_row_bytes(SOL_DT_Q4_1, COLS)};
    static float x[P * COLS], normed[P * COLS], up[P * COLS], q8[P * ROWS], f32[P * ROWS];
    float norm_w[COLS];
    for (int i = 0; i < P * COLS; i++) {
        x[i] = rng_normal();
        up[i] = rng_normal();
    }
    for (int i = 0; i < COLS; i++)
        norm_w[i] = 1 + 0.1f * rng_normal();
    begin_step(be, P, 0);
    be->activations = SOL_ACT_F32;
    be->rmsnorm(be, x, norm_w, 1e-5f, COLS, normed);
    be->matmul(be, &view, NULL, normed, P, f32);
    be->activations = SOL_ACT_Q8;
    be->rmsnorm(be, x, norm_w, 1e-5f, COLS, normed);
    be->matmul(be, &view, NULL, normed, P, q8);
    assert_same(q8, f32, P * ROWS, "rmsnorm -> matmul of 32 rows, q8 against f32");

    be->swiglu(be, normed, up, COLS);
    be->matmul(be, &view, NULL, normed, P, q8);
    be->activations = SOL_ACT_F32;
    be->matmul(be, &view, NULL, normed, P, f32);
    assert_same(q8, f32, P * ROWS, "swiglu -> matmul of 32 rows, q8 against f32");

    /* 31 rows: integer dots, which round the inputs */
    be->matmul(be, &view, NULL, normed, P - 1, f32);
    be->activations = SOL_ACT_Q8;
    be->matmul(be, &view, NULL, normed, P - 1, q8);
    int differ = 0;
    for (int i = 0; i < (P - 1) * ROWS; i++)
        differ += q8[i] != f32[i];
    assert_true(differ > 0);
    be->destroy(be);
}

static void test_rope_kv_write(void **state)
{
    (void)state;
    sol_backend *be = cpu_backend(2);
    enum { HEADS = 4, KV = 2, DH = 16, ROWS_ = 5, SLOTS = 12 };
    float inv_freq[DH / 2];
    for (int i = 0; i < DH / 2; i++)
        inv_freq[i] = powf(10000.0f, -2.0f * i / DH);
    sol_rope rope = {.dims = DH, .inv_freq = inv_freq};
    float q[2][ROWS_ * HEADS * DH], k[2][ROWS_ * KV * DH], v[ROWS_ * KV * DH];
    uint16_t ck[2][SLOTS * KV * DH], cv[2][SLOTS * KV * DH];
    for (int i = 0; i < ROWS_ * HEADS * DH; i++)
        q[0][i] = q[1][i] = rng_normal();
    for (int i = 0; i < ROWS_ * KV * DH; i++) {
        k[0][i] = k[1][i] = rng_normal();
        v[i] = rng_normal();
    }
    memset(ck, 0, sizeof ck);
    memset(cv, 0, sizeof cv);
    sol_kv_cache_layer fused = {SOL_DT_F16, ck[0], cv[0], SLOTS, KV * DH}, plain = {SOL_DT_F16, ck[1], cv[1], SLOTS, KV * DH};
    begin_step(be, ROWS_, 7);
    be->rope_kv_write(be, q[0], k[0], v, HEADS, DH, &rope, &fused);
    be->rope(be, q[1], HEADS, DH, &rope);
    be->rope(be, k[1], KV, DH, &rope);
    be->kv_write(be, k[1], v, &plain);
    assert_same(q[0], q[1], ROWS_ * HEADS * DH, "rotated q");
    assert_same(k[0], k[1], ROWS_ * KV * DH, "rotated k");
    assert_memory_equal(ck[0], ck[1], sizeof ck[0]);
    assert_memory_equal(cv[0], cv[1], sizeof cv[0]);
    be->destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantised_output_feeds_next_matmul),
        cmocka_unit_test(test_prefill_rows_take_f32_inputs),
        cmocka_unit_test(test_rope_kv_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
