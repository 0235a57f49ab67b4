/* Parameter counts from the plan equal the real models' published counts. */
#include "tests/unit/helpers.h"

static double total_params(const char *preset, double *active)
{
    sol_model m = load_preset(preset);
    sol_param_count p;
    sol_err err = {0};
    if (sol_model_params(&m, &p, &err))
        fail_msg("%s: %s", preset, err.msg);
    if (active)
        *active = p.active;
    return p.total;
}

#define ASSERT_PARAMS(preset, expected) \
    assert_int_equal((long long)total_params(preset, NULL), (long long)(expected))

/* Exact counts published on the models' Hugging Face pages / safetensors
 * metadata. */
static void test_dense_exact(void **state)
{
    (void)state;
    ASSERT_PARAMS("llama-2-7b", 6738415616LL);
    ASSERT_PARAMS("llama-2-13b", 13015864320LL);
    ASSERT_PARAMS("llama-2-70b", 68976648192LL);
    ASSERT_PARAMS("llama-3-8b", 8030261248LL);
    ASSERT_PARAMS("llama-3-70b", 70553706496LL);
    ASSERT_PARAMS("llama-3.1-405b", 405853388800LL);
    ASSERT_PARAMS("mistral-7b", 7241732096LL);
    ASSERT_PARAMS("qwen2.5-7b", 7615616512LL);
    ASSERT_PARAMS("gemma-2-9b", 9241705984LL);
    ASSERT_PARAMS("smollm2-135m", 134515008LL); /* tied embeddings counted once */
}

static void test_mixtral_total_and_active(void **state)
{
    (void)state;
    double active;
    assert_int_equal((long long)total_params("mixtral-8x7b", &active), 46702792704LL);
    /* 12.9 B active (Mistral's announcement): 2 of 8 experts per token. */
    assert_int_equal((long long)active, 12879925248LL);
}

static void assert_near(double got, double want, double rel)
{
    if (got < want * (1 - rel) || got > want * (1 + rel))
        fail_msg("got %.4g, want %.4g within %.1f%%", got, want, rel * 100);
}

/* DeepSeek publishes rounded figures: V2 236B total / 21B active, V3 671B /
 * 37B, V2-Lite 15.7B total. */
static void test_deepseek_rounded(void **state)
{
    (void)state;
    double active;
    assert_near(total_params("deepseek-v2", &active), 236e9, 0.005);
    assert_near(active, 21e9, 0.025);
    assert_near(total_params("deepseek-v3", &active), 671e9, 0.001);
    assert_near(active, 37e9, 0.02);
    assert_near(total_params("deepseek-v2-lite", NULL), 15.7e9, 0.005);
    assert_near(total_params("gemma-3-27b", NULL), 27e9, 0.01);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_exact),
        cmocka_unit_test(test_mixtral_total_and_active),
        cmocka_unit_test(test_deepseek_rounded),
    };
    return cmocka_run_group_tests_name("params", tests, NULL, NULL);
}
