/* The CPU backend's ops of the Gemma and Phi-3 families (backend.h, ABI
 * 4) against plain loops: scale over the step's rows (exact), softcap over
 * an explicit m rows (the rest untouched; 0 caps nothing), GeGLU's
 * tanh-approximated gelu (and its 8-bit output feeding the next matmul
 * exactly as the matmul's own quantisation would), and the per-head
 * RMSNorm (the same arithmetic as rmsnorm over rows of one head). */
#define TEST_RNG_SEED 0xbe5466cf34e90c6cull
#include "tests/unit/kernel_test.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/formats.h"

enum { ROWS = 5, N = 96 };

static void test_scale(void **state)
{
    (void)state;
    sol_backend *be = cpu_backend(2);
    float x[ROWS * N], want[ROWS * N];
    for (int i = 0; i < ROWS * N; i++) {
        x[i] = rng_normal();
        want[i] = x[i] * 7.5f;
    }
    begin_step(be, ROWS - 1, 0); /* the step's rows: the last row untouched */
    for (int i = (ROWS - 1) * N; i < ROWS * N; i++)
        want[i] = x[i];
    be->scale(be, x, 7.5f, N);
    assert_memory_equal(x, want, sizeof x);
    be->destroy(be);
}

static void test_softcap(void **state)
{
    (void)state;
    sol_backend *be = cpu_backend(2);
    float x[ROWS * N], orig[ROWS * N];
    for (int i = 0; i < ROWS * N; i++)
        orig[i] = x[i] = 40 * rng_normal();
    begin_step(be, ROWS, 0);
    be->softcap(be, x, 30.0f, 2, N); /* m = 2 of the step's 5 rows (the LM head's last rows) */
    for (int i = 0; i < ROWS * N; i++) {
        double want = i < 2 * N ? 30.0 * tanh(orig[i] / 30.0) : orig[i];
        if (!(fabs(x[i] - want) <= 1e-6 * (1 + fabs(want))))
            fail_msg("element %d: softcap(%.9g) is %.9g, want %.9g", i, orig[i], x[i], want);
    }
    be->softcap(be, x, 0.0f, ROWS, N); /* no cap */
    for (int i = 2 * N; i < ROWS * N; i++)
        assert_true(x[i] == orig[i]);
    be->destroy(be);
}

static double gelu_tanh(double u) { return 0.5 * u * (1 + tanh(sqrt(2 / M_PI) * (u + 0.044715 * u * u * u))); }

/* gelu_tanh(gate) * up in float64, then the op within float rounding: the
 * float formula loses at most a few ulps of 0.5 |u| |up| where 1 + tanh
 * cancels (u far below 0), hence the bound's scale. */
static void test_geglu(void **state)
{
    (void)state;
    sol_backend *be = cpu_backend(2);
    be->activations = SOL_ACT_F32;
    float gate[ROWS * N], up[ROWS * N], orig[ROWS * N];
    for (int i = 0; i < ROWS * N; i++) {
        orig[i] = gate[i] = i == 0 ? 0.0f : i == 1 ? -12.0f : i == 2 ? 12.0f : 3 * rng_normal();
        up[i] = rng_normal();
    }
    begin_step(be, ROWS, 0);
    be->geglu(be, gate, up, N);
    for (int i = 0; i < ROWS * N; i++) {
        double want = gelu_tanh(orig[i]) * up[i];
        if (!(fabs(gate[i] - want) <= 1e-6 * (1 + fabs(orig[i] * up[i]))))
            fail_msg("element %d: gelu_tanh(%.9g) * %.9g is %.9g, want %.9g", i, orig[i], up[i], gate[i], want);
    }
    be->destroy(be);
}

/* With 8-bit activations GeGLU quantises its output for the down matmul
 * (as SwiGLU does): that matmul is bit for bit the matmul of a plain copy. */
static void test_geglu_feeds_matmul(void **state)
{
    (void)state;
    enum { OUT = 40 };
    size_t row_bytes = sol_row_bytes(SOL_DT_Q8_0, N);
    uint8_t *w = malloc(row_bytes * OUT);
    float row[N], gate[ROWS * N], up[ROWS * N], copy[ROWS * N], fused[ROWS * OUT], plain[ROWS * OUT];
    for (int r = 0; r < OUT; r++) {
        for (int c = 0; c < N; c++)
            row[c] = rng_normal();
        sol_quantize(SOL_DT_Q8_0, row, w + (size_t)r * row_bytes, N);
    }
    sol_weight_view view = {SOL_DT_Q8_0, w, OUT, N, row_bytes};
    for (int i = 0; i < ROWS * N; i++) {
        gate[i] = rng_normal();
        up[i] = rng_normal();
    }
    sol_backend *be = cpu_backend(2);
    begin_step(be, ROWS, 0);
    be->geglu(be, gate, up, N);
    be->matmul(be, &view, NULL, gate, ROWS, fused);
    memcpy(copy, gate, sizeof copy);
    be->matmul(be, &view, NULL, copy, ROWS, plain);
    assert_memory_equal(fused, plain, sizeof fused);
    be->destroy(be);
    free(w);
}

/* Each head of each row: x / rms(x) * weight, within 1e-6 of float64, and
 * bit for bit rmsnorm over rows of one head. */
static void test_head_rmsnorm(void **state)
{
    (void)state;
    enum { HEADS = 3, DH = 32 };
    sol_backend *be = cpu_backend(2);
    float x[ROWS * HEADS * DH], orig[ROWS * HEADS * DH], rows_normed[ROWS * HEADS * DH], weight[DH];
    for (int i = 0; i < ROWS * HEADS * DH; i++)
        orig[i] = x[i] = (1 + (i / DH) % 4) * rng_normal(); /* heads of different scales */
    for (int i = 0; i < DH; i++)
        weight[i] = 1 + 0.2f * rng_normal();
    begin_step(be, ROWS, 0);
    be->head_rmsnorm(be, x, weight, 1e-6f, HEADS, DH);
    for (int h = 0; h < ROWS * HEADS; h++) {
        double sum = 0;
        for (int i = 0; i < DH; i++)
            sum += (double)orig[h * DH + i] * orig[h * DH + i];
        double inv = 1 / sqrt(sum / DH + 1e-6);
        for (int i = 0; i < DH; i++) {
            double want = orig[h * DH + i] * inv * weight[i];
            if (!(fabs(x[h * DH + i] - want) <= 1e-6 * (1 + fabs(want))))
                fail_msg("head %d element %d: %.9g, want %.9g", h, i, x[h * DH + i], want);
        }
    }
    begin_step(be, ROWS * HEADS, 0);
    be->rmsnorm(be, orig, weight, 1e-6f, DH, rows_normed);
    assert_memory_equal(x, rows_normed, sizeof x);
    be->destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scale),
        cmocka_unit_test(test_softcap),
        cmocka_unit_test(test_geglu),
        cmocka_unit_test(test_geglu_feeds_matmul),
        cmocka_unit_test(test_head_rmsnorm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
