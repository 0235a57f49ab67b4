/* Requests end to end and speculative decoding on paper, against hand
 * arithmetic and against step-by-step sums of the same plans. */
#include <math.h>
#include <stdlib.h>

#include "tests/unit/helpers.h"

static sol_analysis *analyze(const char *preset, int batch, int64_t ctx, int prompt)
{
    return analyze_preset(preset, NULL, "h100-sxm", batch, ctx, prompt, 1);
}

static void destroy(sol_analysis *a) { analysis_destroy(a); }

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

/* Inter-turn KV reuse: Llama-3-8B (128 KiB of f16 KV per token) over 6
 * turns of 512 tokens, the history's KV loading at 32 GB/s. */
static void test_turns(void **state)
{
    (void)state;
    sol_analysis *a = analyze("llama-3-8b", 1, 8192, 512);
    sol_turns_config c = {.turns = 6, .turn_tokens = 512, .hit_rate = 0.95, .host_bw = 32e9,
                          .store_bytes = 1024.0 * 1024 * 1024 * 1024};
    sol_turns *t = malloc(sizeof *t);
    sol_err err = {0};
    assert_int_equal(sol_turns_cost(a, &c, t, &err), 0);
    double expected_total = 0;
    for (int i = 0; i < 6; i++) {
        const sol_turn *u = &t->turn[i];
        assert_int_equal(u->history_tokens, 512 * i);
        assert_true(u->loaded_bytes == 512.0 * i * 131072); /* turn 2: 64 MiB */
        assert_true(u->recompute_s == step_s(a, 512 * (i + 1), 0));
        assert_true(fabs(u->reuse_s - (u->loaded_bytes / 32e9 + step_s(a, 512, 512 * i))) < 1e-15);
        assert_true(fabs(u->expected_s - (0.95 * u->reuse_s + 0.05 * u->recompute_s)) < 1e-15);
        expected_total += u->expected_s;
    }
    assert_true(t->turn[5].reuse_s < t->turn[5].recompute_s); /* loading beats recomputing here */
    assert_true(fabs(t->expected_total_s - expected_total) < 1e-12);
    /* a whole conversation is 3072 tokens: 384 MiB; 1 TiB keeps floor(2730.67) */
    assert_true(t->stored_bytes == 3072.0 * 131072);
    assert_int_equal(t->conversations_stored, 2730);
    c.turns = 17; /* 17 x 512 > 8192 */
    assert_int_equal(sol_turns_cost(a, &c, t, &err), SOL_ERR_USAGE);
    c.turns = 6;
    c.hit_rate = 1.5;
    assert_int_equal(sol_turns_cost(a, &c, t, &err), SOL_ERR_USAGE);
    destroy(a);
    /* over 8 devices each loads its eighth: Llama-3-70B's 320 KiB per token
     * (80 layers x 8 KV heads x 128 x K, V x 2 bytes), 8 heads over 8 */
    sol_model m = load_preset("llama-3-70b");
    sol_kv_scheme kv = scheme_of(&m, NULL);
    sol_hw hw = load_hw("h100-sxm");
    sol_analysis_config cfg = {.batch = 1, .ctx = 8192, .prompt = 512, .wtype = m.wtype, .atype = SOL_DT_BF16,
                               .kvtype = SOL_DT_F16, .tp = 8};
    a = malloc(sizeof *a);
    assert_int_equal(sol_analyze(&m, &kv, &hw, &cfg, a, &err), 0);
    c = (sol_turns_config){.turns = 2, .turn_tokens = 512, .hit_rate = 1, .host_bw = 32e9};
    assert_int_equal(sol_turns_cost(a, &c, t, &err), 0);
    assert_true(t->turn[1].loaded_bytes == 512 * 327680.0 / 8);
    free(t);
    destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_exact_and_sampled),
        cmocka_unit_test(test_speculative),
        cmocka_unit_test(test_turns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
