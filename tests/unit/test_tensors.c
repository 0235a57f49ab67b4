/* The GGUF tensor table of every preset holds exactly the parameters the
 * plan counts, and its metadata reads back as the same model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "models/tensors.h"
#include "tests/unit/helpers.h"

static void test_tensor_table_matches_plan(void **state)
{
    (void)state;
    for (int p = 0; p < sol_preset_count(); p++) {
        sol_model m = load_preset(sol_preset_name(p));
        sol_tensor_spec *t;
        int n;
        sol_err err = {0};
        sol_param_count count;
        assert_int_equal(sol_model_tensors(&m, &t, &n, &err), 0);
        assert_int_equal(sol_model_params(&m, &count, &err), 0);
        double elems = 0;
        for (int i = 0; i < n; i++)
            elems += (double)t[i].dims[0] * t[i].dims[1] * t[i].dims[2];
        if (elems != count.total)
            fail_msg("%s: tensors hold %.0f parameters, the plan counts %.0f", sol_preset_name(p), elems, count.total);
        free(t);
    }
}

/* Metadata and a tensor table written by sol_model_write_meta read back as
 * the same hyperparameters (weights left as zeros: 2 layers, tiny vocab). */
static void test_metadata_round_trip(void **state)
{
    (void)state;
    const char *presets[] = {"llama-3-8b", "qwen2.5-7b", "mistral-7b", "mixtral-8x7b", "deepseek-v2-lite"};
    for (size_t p = 0; p < sizeof presets / sizeof presets[0]; p++) {
        sol_model m = load_preset(presets[p]), back;
        m.n_layers = 2;
        m.vocab = 300;
        m.wtype = m.embed_type = m.output_type = SOL_DT_F16;
        if (m.first_dense > 1)
            m.first_dense = 1;
        sol_tensor_spec *t;
        int n;
        sol_err err = {0};
        assert_int_equal(sol_model_tensors(&m, &t, &n, &err), 0);
        sol_gguf_writer *w = sol_gguf_writer_new();
        sol_model_write_meta(&m, w);
        for (int i = 0; i < n; i++) {
            int f32 = t[i].is_vector;
            uint64_t bytes = t[i].dims[0] * t[i].dims[1] * t[i].dims[2] * (f32 ? 4 : 2);
            sol_gguf_add_tensor(w, t[i].name, (uint32_t)t[i].n_dims, t[i].dims, f32 ? 0 : 1, NULL, bytes);
        }
        char path[64];
        snprintf(path, sizeof path, "/tmp/sol-meta-%d.gguf", getpid());
        if (sol_gguf_writer_write(w, path, &err))
            fail_msg("%s", err.msg);
        sol_gguf_writer_free(w);
        if (sol_model_from_gguf(path, &back, &err))
            fail_msg("%s: %s", presets[p], err.msg);
        unlink(path);
        free(t);
        assert_int_equal(back.n_layers, 2);
        assert_int_equal(back.hidden, m.hidden);
        assert_int_equal(back.n_heads, m.n_heads);
        assert_int_equal(back.n_kv_heads, m.n_kv_heads);
        assert_int_equal(back.head_dim, m.head_dim);
        assert_int_equal(back.ffn, m.ffn);
        assert_int_equal(back.vocab, 300);
        assert_int_equal(back.sliding_window, m.sliding_window);
        assert_int_equal(back.n_experts, m.n_experts);
        assert_int_equal(back.moe_ffn, m.moe_ffn);
        assert_int_equal(back.kv_lora_rank, m.kv_lora_rank);
        assert_int_equal(back.qk_rope_dim, m.qk_rope_dim);
        assert_int_equal(back.v_head_dim, m.v_head_dim);
        assert_true(back.qkv_bias == m.qkv_bias);
        assert_true(back.tied_embeddings == m.tied_embeddings);
        sol_param_count a, b;
        assert_int_equal(sol_model_params(&m, &a, &err), 0);
        assert_int_equal(sol_model_params(&back, &b, &err), 0);
        assert_true(a.total == b.total);
    }
}

/* Writes a GGUF with meta's metadata, the tensors t (zeros; vectors f32,
 * matrices f16) and, when more is set, keys it adds by hand. */
static void write_file(const char *path, const sol_model *meta, const sol_tensor_spec *t, int n,
                       void (*more)(sol_gguf_writer *))
{
    sol_gguf_writer *w = sol_gguf_writer_new();
    sol_model_write_meta(meta, w);
    if (more)
        more(w);
    for (int i = 0; i < n; i++) {
        int f32 = t[i].is_vector;
        uint64_t bytes = t[i].dims[0] * t[i].dims[1] * t[i].dims[2] * (f32 ? 4 : 2);
        sol_gguf_add_tensor(w, t[i].name, (uint32_t)t[i].n_dims, t[i].dims, f32 ? 0 : 1, NULL, bytes);
    }
    sol_err err = {0};
    if (sol_gguf_writer_write(w, path, &err))
        fail_msg("%s", err.msg);
    sol_gguf_writer_free(w);
}

/* A preset's family facts (routing, caps, scales, windows, flags) at tiny
 * sizes, so its file is a few MB: hidden 64, heads of 16, 2 layers (gemma-3:
 * one window period), the first MoE. */
static sol_model shrink(const char *preset)
{
    sol_model m = load_preset(preset);
    m.n_layers = m.sliding_window > 0 && m.swa_period > 2 ? m.swa_period : 2;
    m.hidden = 64;
    m.n_heads = 4;
    m.n_kv_heads = m.n_kv_heads == load_preset(preset).n_heads ? 4 : 2;
    m.head_dim = 16;
    m.ffn = 128;
    m.vocab = 300;
    m.wtype = m.embed_type = m.output_type = SOL_DT_F16;
    if (m.first_dense > 1)
        m.first_dense = 1;
    if (m.n_experts > 0)
        m.moe_ffn = strcmp(m.arch, "mixtral") == 0 ? m.ffn : 32;
    if (m.kv_lora_rank > 0) {
        m.kv_lora_rank = 32;
        m.q_lora_rank = m.q_lora_rank ? 32 : 0;
        m.qk_rope_dim = 16;
        m.qk_nope_dim = 16;
        m.v_head_dim = 16;
        m.head_dim = 32;
    }
    return m;
}

/* The family fields sol_model_write_meta writes read back the same, from
 * the presets (shrunk) and the tiny fixtures sol synth is checked with. */
static void test_family_round_trip(void **state)
{
    (void)state;
    const char *presets[] = {"deepseek-v3", "deepseek-v2", "deepseek-v2-lite", "mixtral-8x7b",
                             "gemma-2-9b",  "gemma-3-27b", "phi-3-mini-4k",    "llama-3-8b"};
    const char *fixtures[] = {"tiny-deepseek-v3", "tiny-deepseek-v2", "tiny-mixtral", "tiny-gemma2",
                              "tiny-gemma3",      "tiny-phi3"};
    size_t n_presets = sizeof presets / sizeof presets[0], n_fixtures = sizeof fixtures / sizeof fixtures[0];
    char path[64];
    snprintf(path, sizeof path, "/tmp/sol-family-%d.gguf", getpid());
    for (size_t p = 0; p < n_presets + n_fixtures; p++) {
        sol_model m, back;
        sol_err err = {0};
        char spec[128];
        if (p < n_presets) {
            m = shrink(presets[p]);
            snprintf(spec, sizeof spec, "%s", presets[p]);
        } else {
            snprintf(spec, sizeof spec, "tests/fixtures/configs/%s.json", fixtures[p - n_presets]);
            if (sol_model_load(spec, &m, &err))
                fail_msg("%s", err.msg);
        }
        sol_tensor_spec *t;
        int n;
        assert_int_equal(sol_model_tensors(&m, &t, &n, &err), 0);
        write_file(path, &m, t, n, NULL);
        free(t);
        if (sol_model_from_gguf(path, &back, &err))
            fail_msg("%s: %s", spec, err.msg);
        if (strcmp(back.arch, strncmp(m.arch, "deepseek", 8) == 0 ? "deepseek_v2" : m.arch) != 0)
            fail_msg("%s: arch %s read back as %s", spec, m.arch, back.arch);
        assert_int_equal(back.n_experts, m.n_experts);
        assert_int_equal(back.n_experts_active, m.n_experts_active);
        assert_int_equal(back.n_shared_experts, m.n_shared_experts);
        assert_int_equal(back.first_dense, m.first_dense);
        assert_int_equal(back.moe_ffn, m.moe_ffn);
        assert_true(back.expert_bias == m.expert_bias);
        assert_true(back.expert_sigmoid == m.expert_sigmoid);
        assert_true(back.expert_norm == m.expert_norm);
        assert_true(back.expert_scale == m.expert_scale); /* 1, 2.5 and 16 are exact in f32 */
        assert_int_equal(back.expert_groups, m.expert_groups);
        assert_int_equal(back.expert_groups_used, m.expert_groups_used);
        assert_true(back.attn_softcap == m.attn_softcap && back.final_softcap == m.final_softcap);
        assert_true(fabs(back.attn_scale - m.attn_scale) < 1e-7); /* stored as f32 */
        assert_true(back.rope_theta_local == m.rope_theta_local);
        assert_true(back.rope_scale == m.rope_scale);
        assert_true(back.embed_scale == m.embed_scale);
        assert_true(back.fused_qkv == m.fused_qkv);
        assert_true(back.qk_norm == m.qk_norm && back.post_norms == m.post_norms);
        assert_int_equal(back.sliding_window, m.sliding_window);
        assert_int_equal(back.swa_period, m.sliding_window ? m.swa_period : 1);
        sol_param_count a, b;
        assert_int_equal(sol_model_params(&m, &a, &err), 0);
        assert_int_equal(sol_model_params(&back, &b, &err), 0);
        if (a.total != b.total)
            fail_msg("%s: %.0f parameters written, %.0f read back", spec, a.total, b.total);
    }
    unlink(path);
}

/* phi3's GGUF layout: one attn_qkv of q + 2 kv rows, one ffn_up of gate
 * rows then up rows; no attn_q/k/v or ffn_gate. */
static void test_fused_phi3_tensors(void **state)
{
    (void)state;
    sol_model m = load_preset("phi-3-mini-4k");
    sol_tensor_spec *t;
    int n;
    sol_err err = {0};
    assert_int_equal(sol_model_tensors(&m, &t, &n, &err), 0);
    int qkv = 0, up = 0;
    for (int i = 0; i < n; i++) {
        if (strstr(t[i].name, "attn_q.") || strstr(t[i].name, "attn_k.") || strstr(t[i].name, "attn_v.") ||
            strstr(t[i].name, "ffn_gate"))
            fail_msg("phi3 table holds %s", t[i].name);
        if (strstr(t[i].name, "attn_qkv.weight")) {
            qkv++;
            assert_true(t[i].dims[0] == 3072 && t[i].dims[1] == 3 * 3072);
        }
        if (strstr(t[i].name, "ffn_up.weight")) {
            up++;
            assert_true(t[i].dims[0] == 3072 && t[i].dims[1] == 2 * 8192);
        }
    }
    assert_int_equal(qkv, 32);
    assert_int_equal(up, 32);
    free(t);
}

static void add_v2_counts(sol_gguf_writer *w)
{
    sol_gguf_set_u32(w, "deepseek2.expert_count", 16);
    sol_gguf_set_u32(w, "deepseek2.expert_used_count", 4);
}

static void expect_gguf_error(const char *path, const char *needle)
{
    sol_model back;
    sol_err err = {0};
    assert_int_equal(sol_model_from_gguf(path, &back, &err), SOL_ERR_RUNTIME);
    if (!strstr(err.msg, path) || !strstr(err.msg, needle))
        fail_msg("message \"%s\" lacks the file or \"%s\"", err.msg, needle);
}

/* GGUF files whose expert metadata and tensors disagree are refused in one
 * line naming the key or tensor; files from before the routing keys load
 * with DeepSeek's defaults. */
static void test_gguf_expert_checks(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/sol-experts-%d.gguf", getpid());
    sol_model mx = shrink("mixtral-8x7b"), meta;
    sol_tensor_spec *t;
    int n;
    sol_err err = {0};
    assert_int_equal(sol_model_tensors(&mx, &t, &n, &err), 0);
    meta = mx;
    meta.n_experts_active = 9;
    write_file(path, &meta, t, n, NULL);
    expect_gguf_error(path, "\"llama.expert_used_count\" = 9 is outside 1..8 (\"llama.expert_count\")");
    meta.n_experts_active = 0;
    write_file(path, &meta, t, n, NULL);
    expect_gguf_error(path, "\"llama.expert_used_count\" = 0 is outside 1..8");
    meta = mx;
    meta.n_experts = 4;
    write_file(path, &meta, t, n, NULL); /* the router has 8 outputs */
    expect_gguf_error(path,
                      "tensor blk.0.ffn_gate_inp.weight routes to 8 experts, metadata \"llama.expert_count\" says 4");
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].name, "blk.0.ffn_gate_exps.weight"))
            t[i].dims[2] = 4;
    write_file(path, &mx, t, n, NULL);
    expect_gguf_error(path,
                      "tensor blk.0.ffn_gate_exps.weight holds 4 experts, metadata \"llama.expert_count\" says 8");
    free(t);

    sol_model v2 = shrink("deepseek-v2"); /* 160 experts, groups 8 of 3 */
    assert_int_equal(sol_model_tensors(&v2, &t, &n, &err), 0);
    meta = v2;
    meta.expert_groups = 3;
    write_file(path, &meta, t, n, NULL);
    expect_gguf_error(path, "\"deepseek2.expert_group_count\" = 3 does not divide the 160 experts");
    meta = v2;
    meta.expert_groups_used = 9;
    write_file(path, &meta, t, n, NULL);
    expect_gguf_error(path, "\"deepseek2.expert_group_used_count\" = 9 is outside 1..8");
    meta = v2;
    meta.first_dense = 3;
    write_file(path, &meta, t, n, NULL);
    expect_gguf_error(path, "\"deepseek2.leading_dense_block_count\" = 3 exceeds the 2 layers");
    free(t);

    /* experts without expert_feed_forward_length (a deepseek2 file needs it) */
    sol_model v2small = shrink("deepseek-v2");
    v2small.n_experts = 16;
    v2small.n_experts_active = 4;
    v2small.expert_groups = v2small.expert_groups_used = 1;
    assert_int_equal(sol_model_tensors(&v2small, &t, &n, &err), 0);
    meta = v2small;
    meta.kv_lora_rank = 0; /* the MLA block holds the MoE sizes: none written */
    write_file(path, &meta, t, n, NULL);
    expect_gguf_error(path, "missing metadata key \"deepseek2.expert_feed_forward_length\"");
    /* a file from before the routing keys: counts by hand, the rest absent */
    meta = v2small;
    meta.n_experts = 0;
    write_file(path, &meta, t, n, add_v2_counts);
    sol_model back;
    if (sol_model_from_gguf(path, &back, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(back.n_experts, 16);
    assert_false(back.expert_sigmoid || back.expert_norm);
    assert_true(back.expert_scale == 1);
    assert_int_equal(back.expert_groups, 1);
    assert_int_equal(back.expert_groups_used, 1);
    free(t);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tensor_table_matches_plan),
        cmocka_unit_test(test_metadata_round_trip),
        cmocka_unit_test(test_family_round_trip),
        cmocka_unit_test(test_fused_phi3_tensors),
        cmocka_unit_test(test_gguf_expert_checks),
    };
    return cmocka_run_group_tests_name("tensors", tests, NULL, NULL);
}
