/* Sweeps: points are the analyses they stand for, and the knees are where
 * the bound changes (checked on both sides) and where memory runs out. */
#include <math.h>
#include <stdlib.h>

#include "tests/unit/helpers.h"

typedef struct {
    sol_model m;
    sol_kv_scheme kv;
    sol_hw hw;
    sol_analysis_config cfg;
} setup;

static setup make(const char *preset)
{
    setup s = {.m = load_preset(preset), .hw = load_hw("h100-sxm")};
    s.kv = scheme_of(&s.m, NULL);
    s.cfg = (sol_analysis_config){.batch = 1, .ctx = 4096, .prompt = 512, .wtype = s.m.wtype, .atype = SOL_DT_BF16,
                                  .kvtype = SOL_DT_F16, .tp = 1};
    return s;
}

static sol_sweep_point point(const setup *s, int64_t ctx, int batch)
{
    sol_sweep_point p;
    sol_err err = {0};
    assert_int_equal(sol_sweep_point_at(&s->m, &s->kv, &s->hw, &s->cfg, ctx, batch, &p, &err), 0);
    return p;
}

static void test_compute_knee(void **state)
{
    (void)state;
    setup s = make("llama-3-70b");
    sol_sweep_knee k;
    sol_err err = {0};
    assert_int_equal(sol_sweep_knee_at(&s.m, &s.kv, &s.hw, &s.cfg, 256, &k, &err), 0);
    assert_true(k.compute_bound_from > 1);
    assert_int_equal(point(&s, 256, (int)k.compute_bound_from).bound, SOL_BOUND_COMPUTE);
    assert_int_equal(point(&s, 256, (int)k.compute_bound_from - 1).bound, SOL_BOUND_MEMORY);
    /* 141 GB of bf16 weights on one 80 GB H100: no sequence fits */
    assert_int_equal(k.max_batch, 0);
}

/* Llama-3-8B at 1024 tokens: a sequence's weight FLOPs (2 x 8.03e9 at 989
 * TFLOP/s: 16 us) cost less than reading its KV (1024 x 128 KiB at 3.35
 * TB/s: 40 us), so no batch makes decode compute-bound. */
static void test_never_compute_bound(void **state)
{
    (void)state;
    setup s = make("llama-3-8b");
    sol_sweep_knee k;
    sol_err err = {0};
    assert_true(2 * 8.03e9 / 989.4e12 < 1024 * 131072.0 / 3.35e12);
    assert_int_equal(sol_sweep_knee_at(&s.m, &s.kv, &s.hw, &s.cfg, 1024, &k, &err), 0);
    assert_int_equal(k.compute_bound_from, -1);
    assert_int_equal(point(&s, 1024, 1 << 16).bound, SOL_BOUND_MEMORY);
    /* the memory knee: max_batch fits, one more does not */
    assert_true(k.max_batch > 100);
    assert_true(point(&s, 1024, (int)k.max_batch).fits);
    assert_false(point(&s, 1024, (int)k.max_batch + 1).fits);
    /* a point is its analysis: tok/s = batch / step, per user = step's inverse */
    sol_sweep_point p = point(&s, 1024, 16);
    assert_true(fabs(p.tokens_per_s - 16 / p.step_s) < 1e-9 * p.tokens_per_s);
    assert_true(fabs(p.user_tokens_per_s - 1 / p.step_s) < 1e-9 * p.user_tokens_per_s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compute_knee),
        cmocka_unit_test(test_never_compute_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
