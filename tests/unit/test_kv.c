/* KV-cache arithmetic against published figures, and the --kv grammar. */
#include "tests/unit/helpers.h"

#define GiB (1024.0 * 1024.0 * 1024.0)

static void test_llama2_7b_fp16(void **state)
{
    (void)state;
    sol_model m = load_preset("llama-2-7b");
    sol_kv_scheme kv = scheme_of(&m, NULL);
    /* 2 * 32 layers * 32 heads * 128 * 2 bytes (SimLayerKV, FACTS.md) */
    assert_int_equal((long long)sol_kv_bytes_per_token(&kv, &m, SOL_DT_F16), 524288);
    assert_true(sol_kv_cache_bytes(&kv, &m, SOL_DT_F16, 128000) == 62.5 * GiB);
}

static void test_int_scales_counted(void **state)
{
    (void)state;
    sol_model m = load_preset("llama-2-7b");
    sol_kv_scheme kv = scheme_of(&m, NULL);
    /* one f16 scale per 128-element head vector: 2*32*32 scales per token */
    assert_int_equal((long long)sol_kv_bytes_per_token(&kv, &m, SOL_DT_INT8), 262144 + 4096);
    assert_int_equal((long long)sol_kv_bytes_per_token(&kv, &m, SOL_DT_INT4), 131072 + 4096);
    assert_int_equal((long long)sol_kv_bytes_per_token(&kv, &m, SOL_DT_FP8), 262144);
    assert_int_equal((long long)sol_kv_bytes_per_token(&kv, &m, SOL_DT_F32), 1048576);
}

static void test_mqa_is_eighth_of_gqa8(void **state)
{
    (void)state;
    sol_model m = load_preset("llama-3-8b");
    sol_kv_scheme gqa = scheme_of(&m, "gqa:8"), mqa = scheme_of(&m, "mqa");
    double g = sol_kv_bytes_per_token(&gqa, &m, SOL_DT_F16);
    double q = sol_kv_bytes_per_token(&mqa, &m, SOL_DT_F16);
    assert_true(g == 8 * q);
    assert_int_equal((long long)g, 131072); /* Llama-3-8B: 128 KiB/token */
    sol_kv_scheme mha = scheme_of(&m, "mha");
    assert_true(sol_kv_bytes_per_token(&mha, &m, SOL_DT_F16) == 4 * g);
}

static void test_deepseek_v2_mla(void **state)
{
    (void)state;
    sol_model m = load_preset("deepseek-v2");
    sol_kv_scheme kv = scheme_of(&m, NULL);
    assert_int_equal(kv.heads, SOL_KV_MLA);
    /* (kv_lora_rank 512 + rope 64) * 60 layers (DeepSeek-V2 paper) */
    assert_int_equal(sol_kv_elems_per_token(&kv, &m), 34560);
    sol_kv_layer info;
    sol_kv_layer_info(&kv, &m, 0, &info);
    assert_int_equal(info.kind, SOL_ATTN_LATENT);
    assert_int_equal(info.elems_per_token, 576);
    /* the same model cached per head: 128 heads * (192 + 128) * 60 */
    sol_kv_scheme mha = scheme_of(&m, "mha");
    assert_int_equal(sol_kv_elems_per_token(&mha, &m), 128LL * 320 * 60);
}

static void test_mistral_window(void **state)
{
    (void)state;
    sol_model m = load_preset("mistral-7b");
    sol_kv_scheme kv = scheme_of(&m, NULL);
    assert_int_equal(kv.window, 4096);
    assert_int_equal((long long)sol_kv_bytes_per_token(&kv, &m, SOL_DT_F16), 128 * 1024);
    /* the 4096 window caps the cache: 32k context costs what 4096 does */
    double at_window = sol_kv_cache_bytes(&kv, &m, SOL_DT_F16, 4096);
    assert_true(at_window == 4096.0 * 128 * 1024);
    assert_true(sol_kv_cache_bytes(&kv, &m, SOL_DT_F16, 32768) == at_window);
    assert_true(sol_kv_cache_bytes(&kv, &m, SOL_DT_F16, 1000) == 1000.0 * 128 * 1024);
}

static void test_gemma_alternating(void **state)
{
    (void)state;
    sol_model m = load_preset("gemma-2-9b");
    sol_kv_scheme kv = scheme_of(&m, NULL);
    sol_kv_layer l0, l1;
    sol_kv_layer_info(&kv, &m, 0, &l0);
    sol_kv_layer_info(&kv, &m, 1, &l1);
    assert_int_equal(l0.kind, SOL_ATTN_LOCAL);
    assert_int_equal(l1.kind, SOL_ATTN_GLOBAL);
    /* 42 layers, 8 KV heads of 256: 8 KiB per layer-token at f16 */
    double per_layer = 2.0 * 8 * 256 * 2;
    assert_true(sol_kv_cache_bytes(&kv, &m, SOL_DT_F16, 32768) == 21 * per_layer * 32768 + 21 * per_layer * 4096);
    /* gemma-3: 5 local per global, 62 layers -> 10 global */
    sol_model g3 = load_preset("gemma-3-27b");
    sol_kv_scheme kv3 = scheme_of(&g3, NULL);
    int globals = 0;
    for (int i = 0; i < g3.n_layers; i++) {
        sol_kv_layer info;
        sol_kv_layer_info(&kv3, &g3, i, &info);
        globals += info.kind == SOL_ATTN_GLOBAL;
    }
    assert_int_equal(globals, 10);
}

static void test_cla_and_simlayer(void **state)
{
    (void)state;
    sol_model m = load_preset("llama-2-7b");
    sol_kv_scheme base = scheme_of(&m, NULL), cla = scheme_of(&m, "mha+cla:2");
    assert_true(sol_kv_bytes_per_token(&cla, &m, SOL_DT_F16) * 2 == sol_kv_bytes_per_token(&base, &m, SOL_DT_F16));
    sol_kv_layer l1;
    sol_kv_layer_info(&cla, &m, 1, &l1);
    assert_int_equal(l1.kind, SOL_ATTN_SHARED);
    assert_int_equal(l1.owner, 0);

    /* half the layers lazy, each keeping 4 sinks + 1024 recent tokens */
    sol_kv_scheme lazy = scheme_of(&m, "simlayer:0.5");
    double per_layer = 524288.0 / 32;
    assert_true(sol_kv_cache_bytes(&lazy, &m, SOL_DT_F16, 100000) == 16 * per_layer * 100000 + 16 * per_layer * 1028);
    /* per-token figure is before truncation */
    assert_true(sol_kv_bytes_per_token(&lazy, &m, SOL_DT_F16) == 524288);
    int lazy_layers = 0;
    sol_kv_scheme third = scheme_of(&m, "simlayer:0.25,512,0");
    for (int i = 0; i < 32; i++) {
        sol_kv_layer info;
        sol_kv_layer_info(&third, &m, i, &info);
        lazy_layers += info.kind == SOL_ATTN_LAZY;
        if (info.kind == SOL_ATTN_LAZY)
            assert_int_equal(info.tokens_cap, 512);
    }
    assert_int_equal(lazy_layers, 8);
}

/* cla:S with local:W/E groups layers of the same kind (hand-counted
 * tables): local layers with the neighbouring local layers, global layers
 * with the global layers of later blocks; a global layer never reads a
 * windowed cache, E not a multiple of S included. */
static void test_cla_groups_layers_of_one_kind(void **state)
{
    (void)state;
    static const struct {
        const char *kv;
        int layers;
        int owner[12];
    } cases[] = {
        /* globals 5, 11 */
        {"mqa+local:64/6+cla:2", 12, {0, 0, 2, 2, 4, 5, 4, 7, 7, 9, 9, 5}},
        /* globals 3, 7, 11; E = 4, S = 3 */
        {"mqa+local:64/4+cla:3", 12, {0, 0, 0, 3, 4, 4, 4, 3, 8, 8, 8, 3}},
        /* globals 4, 9; E = 5, S = 2 */
        {"mqa+local:64/5+cla:2", 10, {0, 0, 2, 2, 4, 5, 5, 7, 7, 4}},
        /* globals 2, 5, 8; E = 3, S = 4 */
        {"mqa+local:64/3+cla:4", 9, {0, 0, 2, 0, 0, 2, 6, 6, 2}},
        /* no windows: runs of S as before */
        {"mqa+cla:3", 8, {0, 0, 0, 3, 3, 3, 6, 6}},
        /* every layer local */
        {"mqa+local:64+cla:2", 5, {0, 0, 2, 2, 4}},
    };
    sol_model m = load_preset("llama-2-7b");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        m.n_layers = cases[c].layers;
        sol_kv_scheme kv = scheme_of(&m, cases[c].kv);
        for (int i = 0; i < m.n_layers; i++) {
            sol_kv_layer info, owner;
            sol_kv_layer_info(&kv, &m, i, &info);
            if (info.owner != cases[c].owner[i])
                fail_msg("%s on %d layers: layer %d reads layer %d's cache, want %d", cases[c].kv, m.n_layers, i,
                         info.owner, cases[c].owner[i]);
            sol_kv_layer_info(&kv, &m, info.owner, &owner);
            assert_int_equal(owner.owner, info.owner); /* an owner owns itself */
            assert_true(info.stores_kv == (info.owner == i));
            /* a shared layer reads a cache of its own kind: same window */
            sol_kv_scheme solo = kv;
            solo.share = 1;
            sol_kv_layer alone, alone_owner;
            sol_kv_layer_info(&solo, &m, i, &alone);
            sol_kv_layer_info(&solo, &m, info.owner, &alone_owner);
            assert_int_equal(alone.kind, alone_owner.kind);
            assert_true(info.tokens_cap == alone.tokens_cap);
        }
    }
}

static void test_parse_format_round_trip(void **state)
{
    (void)state;
    sol_model m = load_preset("llama-3-8b");
    const char *texts[] = {"mha", "mqa", "gqa:4", "mla:512,64", "gqa:8+local:4096/6", "mqa+cla:2+local:1024/1",
                           "gqa:8+simlayer:0.5,1024,4"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        sol_kv_scheme kv = scheme_of(&m, texts[i]), again;
        char buf[128];
        sol_err err = {0};
        sol_kv_format(&kv, buf, sizeof buf);
        assert_int_equal(sol_kv_parse(buf, &kv, &again, &err), 0);
        assert_memory_equal(&kv, &again, sizeof kv);
    }
    /* local without /E means every layer local; heads come from the config */
    sol_kv_scheme local = scheme_of(&m, "local:512");
    assert_int_equal(local.global_every, 1);
    assert_int_equal(local.heads, SOL_KV_GQA);
    assert_int_equal(local.n_kv_heads, 8);
}

static void expect_parse_error(const char *text, const char *needle1, const char *needle2)
{
    sol_model m = load_preset("llama-3-8b");
    sol_kv_scheme base, kv;
    sol_err err = {0};
    sol_kv_from_model(&m, &base);
    int rc = sol_kv_parse(text, &base, &kv, &err);
    if (rc == 0)
        rc = sol_kv_check(&kv, &m, &err);
    assert_int_equal(rc, SOL_ERR_USAGE);
    if (!strstr(err.msg, needle1) || (needle2 && !strstr(err.msg, needle2)))
        fail_msg("--kv %s: message \"%s\" lacks \"%s\"/\"%s\"", text, err.msg, needle1, needle2 ? needle2 : "");
}

static void test_parse_errors(void **state)
{
    (void)state;
    expect_parse_error("gqa:8+foo", "term 2", "\"foo\"");
    expect_parse_error("mla:512,64+gqa:8", "term 2 \"gqa:8\" contradicts term 1", NULL);
    expect_parse_error("mqa+mha", "contradicts", NULL);
    expect_parse_error("gqa", "term 1", "gqa:G");
    expect_parse_error("gqa:0", "term 1", NULL);
    expect_parse_error("gqa:x", "term 1", NULL);
    expect_parse_error("mla:512", "mla:C,R", NULL);
    expect_parse_error("local:0/2", "local:W/E", NULL);
    expect_parse_error("local:4096/2/3", "local", NULL);
    expect_parse_error("cla:2+cla:3", "term 2", "twice");
    expect_parse_error("simlayer:1.5", "simlayer", NULL);
    expect_parse_error("simlayer:0", "simlayer", NULL);
    expect_parse_error("mqa++cla:2", "term 2", "empty");
    expect_parse_error("", "empty", NULL);
    expect_parse_error("mha:3", "no arguments", NULL);
    expect_parse_error("gqa:5", "gqa:5", "32 query heads");
    expect_parse_error("cla:64", "cla:64", "32");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama2_7b_fp16),      cmocka_unit_test(test_int_scales_counted),
        cmocka_unit_test(test_mqa_is_eighth_of_gqa8), cmocka_unit_test(test_deepseek_v2_mla),
        cmocka_unit_test(test_mistral_window),      cmocka_unit_test(test_gemma_alternating),
        cmocka_unit_test(test_cla_and_simlayer),
        cmocka_unit_test(test_cla_groups_layers_of_one_kind),    cmocka_unit_test(test_parse_format_round_trip),
        cmocka_unit_test(test_parse_errors),
    };
    return cmocka_run_group_tests_name("kv", tests, NULL, NULL);
}
