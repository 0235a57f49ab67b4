/* Requests end to end and speculative decoding on paper, against hand
 * arithmetic and against step-by-step sums of the same plans. */
#include <math.h>
#include <stdlib.h>

#include "tests/unit/helpers.h"

static sol_analysis *analyze(const char *preset, int batch, int64_t ctx, int prompt)
{
    sol_model m = load_preset(preset);
    sol_kv_scheme kv = scheme_of(&m, NULL);
    sol_hw hw = load_hw("h100-sxm");
    sol_analysis_config cfg = {.batch = batch, .ctx = ctx, .prompt = prompt, .wtype = m.wtype,
                               .atype = SOL_DT_F16, .kvtype = SOL_DT_F16, .tp = 1};
    sol_analysis *a = malloc(sizeof *a);
    sol_err err = {0};
    if (sol_analyze(&m, &kv, &hw, &cfg, a, &err))
        fail_msg("%s: %s", preset, err.msg);
    return a;
}

static void destroy(sol_analysis *a)
{
    sol_analysis_free(a);
    free(a);
}

/* The bound of one step of n tokens per sequence after pos, built by hand. */
static double step_s(const sol_analysis *a, int n, int64_t pos)
{
    sol_plan_params p = {.batch = a->cfg.batch, .n_tokens = n, .pos = pos, .wtype = a->cfg.wtype,
                         .atype = a->cfg.atype, .kvtype = a->cfg.kvtype, .tp = 1};
    sol_plan plan;
    sol_step_cost cost;
    sol_err err = {0};
    assert_int_equal(sol_plan_build(&a->model, &a->kv, &p, &plan, &err), 0);
    assert_int_equal(sol_cost_plan(&plan, &a->hw, &cost, &err), 0);
    double t = cost.sol_time_s;
    sol_step_cost_free(&cost);
    sol_plan_free(&plan);
    return t;
}

static void test_request_exact_and_sampled(void **state)
{
    (void)state;
    sol_analysis *a = analyze("llama-3-8b", 1, 8192, 512);
    sol_request r;
    sol_err err = {0};
    for (int gen = 1; gen <= 600; gen += 599) { /* 1: nothing after the prefill; 600: sampled */
        assert_int_equal(sol_request_cost(a, gen, &r, &err), 0);
        double later = 0;
        for (int i = 0; i < gen - 1; i++)
            later += step_s(a, 1, 512 + i);
        assert_true(r.ttft_s == a->prefill_cost.sol_time_s);
        /* memory-bound decode is linear in the context: sampling is exact to rounding */
        assert_true(fabs(r.ttft_s + later - r.total_s) < 1e-9 * r.total_s);
        assert_true(fabs(r.user_tokens_per_s - gen / r.total_s) < 1e-9 * r.user_tokens_per_s);
        assert_int_equal(r.positions_costed, gen - 1 <= 256 ? gen - 1 : 257);
    }
    assert_int_equal(sol_request_cost(a, 8192, &r, &err), SOL_ERR_USAGE); /* 512 + 8192 > 8192 */
    destroy(a);
    /* batch 8: each device serves 8 users */
    sol_analysis *b = analyze("llama-3-8b", 8, 4096, 128);
    assert_int_equal(sol_request_cost(b, 64, &r, &err), 0);
    assert_true(fabs(r.device_tokens_per_s - 8 * r.user_tokens_per_s) < 1e-9 * r.device_tokens_per_s);
    destroy(b);
}

static void test_speculative(void **state)
{
    (void)state;
    sol_analysis *target = analyze("llama-3-70b", 1, 4096, 512), *draft = analyze("llama-3-8b", 1, 4096, 512);
    sol_speculative s;
    sol_err err = {0};
    assert_int_equal(sol_speculative_cost(target, draft, 4, 0.8, &s, &err), 0);
    /* (1 - 0.8^5) / (1 - 0.8) = 3.3616 tokens per round */
    assert_true(fabs(s.tokens_per_round - 3.3616) < 1e-12);
    assert_true(s.draft_step_s == draft->decode_cost.sol_time_s);
    assert_true(s.verify_step_s == step_s(target, 5, 4095));
    assert_true(fabs(s.round_s - (4 * s.draft_step_s + s.verify_step_s)) < 1e-15);
    assert_true(fabs(s.tokens_per_s - 3.3616 / s.round_s) < 1e-9 * s.tokens_per_s);
    assert_true(fabs(s.speedup - s.tokens_per_s / target->decode_tokens_per_s) < 1e-12);
    /* every draft accepted: k + 1 tokens; none: the target's own token */
    assert_int_equal(sol_speculative_cost(target, draft, 4, 1.0, &s, &err), 0);
    assert_true(s.tokens_per_round == 5);
    assert_int_equal(sol_speculative_cost(target, draft, 4, 0.0, &s, &err), 0);
    assert_true(s.tokens_per_round == 1);
    assert_true(s.speedup < 1); /* pure overhead */
    assert_int_equal(sol_speculative_cost(target, draft, 0, 0.5, &s, &err), SOL_ERR_USAGE);
    assert_int_equal(sol_speculative_cost(target, draft, 4, 1.5, &s, &err), SOL_ERR_USAGE);
    destroy(target);
    destroy(draft);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_exact_and_sampled),
        cmocka_unit_test(test_speculative),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
