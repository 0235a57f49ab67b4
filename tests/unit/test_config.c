/* Model configs: HF config.json families and error paths, model lookup by
 * preset/path/directory, and GGUF metadata. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/gguf.h"
#include "tests/unit/helpers.h"

static void expect_hf_error(const char *json, const char *needle)
{
    sol_model m;
    sol_err err = {0};
    assert_int_equal(sol_model_from_hf_json(json, "cfg.json", &m, &err), SOL_ERR_RUNTIME);
    if (!strstr(err.msg, "cfg.json") || !strstr(err.msg, needle))
        fail_msg("message \"%s\" lacks the file or \"%s\"", err.msg, needle);
}

#define LLAMA_KEYS "\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":128,\"vocab_size\":100"

static void test_hf_errors(void **state)
{
    (void)state;
    expect_hf_error("{\"model_type\": ", "invalid JSON");
    expect_hf_error("[1,2]", "JSON object");
    expect_hf_error("{\"hidden_size\": 4}", "\"model_type\"");
    expect_hf_error("{\"model_type\":\"rwkv\"," LLAMA_KEYS "}", "unknown architecture \"rwkv\"");
    expect_hf_error("{\"model_type\":\"llama\",\"num_hidden_layers\":2}", "missing required key \"hidden_size\"");
    expect_hf_error("{\"model_type\":\"llama\"," LLAMA_KEYS ",\"num_key_value_heads\":\"4\"}",
                    "\"num_key_value_heads\" must be an integer");
    expect_hf_error("{\"model_type\":\"llama\"," LLAMA_KEYS ",\"num_key_value_heads\":3}", "not a multiple of 3");
    expect_hf_error("{\"model_type\":\"llama\"," LLAMA_KEYS ",\"tie_word_embeddings\":1}", "true or false");
    expect_hf_error("{\"model_type\":\"llama\",\"hidden_size\":64.5,\"num_hidden_layers\":2}", "found 64.5");
    expect_hf_error("{\"model_type\":\"gemma3_text\"," LLAMA_KEYS ",\"sliding_window\":16,"
                    "\"layer_types\":[\"full_attention\",\"sliding_attention\"]}",
                    "layer_types is not one global layer in every 1");
    expect_hf_error("{\"model_type\":\"gemma3_text\"," LLAMA_KEYS ",\"sliding_window\":16,\"layer_types\":[\"x\",\"y\"]}",
                    "layer_types[0]");
    expect_hf_error("{\"model_type\":\"deepseek_v2\"," LLAMA_KEYS ",\"kv_lora_rank\":16}", "\"qk_rope_head_dim\"");
}

/* A config's display name: its own (_sol.name, _name_or_path), else the
 * file's stem or, for a config.json, its directory's name; never the path. */
static void expect_name(const char *json, const char *origin, const char *want)
{
    sol_model m;
    sol_err err = {0};
    assert_int_equal(sol_model_from_hf_json(json, origin, &m, &err), 0);
    assert_string_equal(m.name, want);
}

static void test_config_names(void **state)
{
    (void)state;
    const char *plain = "{\"model_type\":\"llama\"," LLAMA_KEYS "}";
    expect_name(plain, "/models/Llama-X/config.json", "Llama-X");
    expect_name(plain, "Llama-X/config.json", "Llama-X");
    expect_name(plain, "configs/tiny-llama.json", "tiny-llama");
    expect_name(plain, "mine.json", "mine");
    expect_name(plain, "config.json", "config");
    expect_name("{\"model_type\":\"llama\",\"_name_or_path\":\"meta-llama/Llama-2-7b-hf\"," LLAMA_KEYS "}",
                "/x/config.json", "meta-llama/Llama-2-7b-hf");
    expect_name("{\"model_type\":\"llama\",\"_sol\":{\"name\":\"Preset 1B\"}," LLAMA_KEYS "}", "/x/config.json",
                "Preset 1B");
}

static void test_hf_families(void **state)
{
    (void)state;
    sol_model m;
    sol_err err = {0};
    /* layer_types: 2 local then 1 global, repeating */
    assert_int_equal(sol_model_from_hf_json("{\"model_type\":\"gemma3_text\",\"hidden_size\":64,\"num_hidden_layers\":6,"
                                            "\"num_attention_heads\":4,\"intermediate_size\":128,\"vocab_size\":100,"
                                            "\"sliding_window\":32,\"layer_types\":[\"sliding_attention\",\"sliding_attention\","
                                            "\"full_attention\",\"sliding_attention\",\"sliding_attention\",\"full_attention\"]}",
                                            "g.json", &m, &err),
                     0);
    assert_int_equal(m.swa_period, 3);
    assert_int_equal(m.sliding_window, 32);
    assert_true(m.tied_embeddings); /* gemma's default */
    /* qwen2 declares a window it does not use */
    sol_model q = load_preset("qwen2.5-7b");
    assert_int_equal(q.sliding_window, 0);
    assert_true(q.qkv_bias);
    assert_false(q.tied_embeddings);
    /* gemma-3 nests the language model in text_config */
    sol_model g = load_preset("gemma-3-27b");
    assert_int_equal(g.n_layers, 62);
    assert_int_equal(g.hidden, 5376);
    assert_int_equal(g.head_dim, 128);
    assert_int_equal(g.swa_period, 6);
    assert_int_equal(g.wtype, SOL_DT_BF16);
    assert_true(g.qk_norm);
    /* DeepSeek: MLA + MoE, V3 stores fp8 weights */
    sol_model d = load_preset("deepseek-v3");
    assert_int_equal(d.kv_lora_rank, 512);
    assert_int_equal(d.q_lora_rank, 1536);
    assert_int_equal(d.head_dim, 192);
    assert_int_equal(d.n_experts, 256);
    assert_int_equal(d.n_experts_active, 8);
    assert_int_equal(d.first_dense, 3);
    assert_int_equal(d.wtype, SOL_DT_FP8);
    assert_true(d.expert_bias);
    sol_model lite = load_preset("deepseek-v2-lite");
    assert_int_equal(lite.q_lora_rank, 0);
    sol_model phi = load_preset("smollm2-135m");
    assert_int_equal(phi.head_dim, 64);
    assert_int_equal((int)phi.rope_theta, 100000);
}

/* Each family's routing, attention and RoPE conventions, from the real
 * configs (docs/FAMILIES.md). */
static void test_family_fields(void **state)
{
    (void)state;
    sol_model v3 = load_preset("deepseek-v3");
    assert_true(v3.expert_sigmoid && v3.expert_norm);
    assert_true(v3.expert_scale == 2.5);
    assert_int_equal(v3.expert_groups, 8);
    assert_int_equal(v3.expert_groups_used, 4);
    assert_true(v3.rope_scale == 0); /* YaRN is not kept: nothing for synth to write */
    sol_model v2 = load_preset("deepseek-v2");
    assert_false(v2.expert_sigmoid || v2.expert_norm);
    assert_true(v2.expert_scale == 16);
    assert_int_equal(v2.expert_groups, 8);
    assert_int_equal(v2.expert_groups_used, 3);
    sol_model lite = load_preset("deepseek-v2-lite"); /* greedy: no groups */
    assert_false(lite.expert_sigmoid || lite.expert_norm || lite.expert_bias);
    assert_true(lite.expert_scale == 1);
    assert_int_equal(lite.expert_groups, 1);
    assert_int_equal(lite.expert_groups_used, 1);
    sol_model mx = load_preset("mixtral-8x7b");
    assert_true(mx.expert_norm);
    assert_false(mx.expert_sigmoid);
    assert_true(mx.expert_scale == 1);
    assert_int_equal(mx.expert_groups, 1);
    assert_int_equal(mx.expert_groups_used, 1);
    assert_false(mx.embed_scale || mx.fused_qkv);

    sol_model g2 = load_preset("gemma-2-9b");
    assert_true(g2.attn_softcap == 50 && g2.final_softcap == 30);
    assert_true(g2.attn_scale == 1.0 / 16); /* query_pre_attn_scalar 256 */
    assert_true(g2.embed_scale);
    assert_true(g2.rope_theta_local == 0 && g2.rope_scale == 0);
    sol_model g3 = load_preset("gemma-3-27b"); /* in text_config */
    assert_true(g3.rope_theta_local == 10000 && g3.rope_theta == 1000000);
    assert_true(g3.rope_scale == 8);
    assert_true(g3.attn_softcap == 0 && g3.final_softcap == 0); /* null */
    assert_true(fabs(g3.attn_scale - 1 / sqrt(168.0)) < 1e-15);
    assert_true(g3.embed_scale);

    /* Phi-3: fused projections in GGUF; the window on every layer */
    sol_model phi = load_preset("phi-3-mini-4k");
    assert_string_equal(phi.arch, "phi3");
    assert_true(phi.fused_qkv);
    assert_int_equal(phi.head_dim, 96);
    assert_int_equal(phi.vocab, 32064);
    assert_int_equal(phi.sliding_window, 2047);
    assert_int_equal(phi.swa_period, 1);
    assert_false(phi.tied_embeddings || phi.embed_scale);
    sol_param_count p;
    sol_err err = {0};
    assert_int_equal(sol_model_params(&phi, &p, &err), 0);
    assert_true(p.total == 3821079552.0); /* the published 3.82 B */

    sol_model l31 = load_preset("llama-3.1-405b"); /* llama3 scaling: not linear, not kept */
    assert_true(l31.rope_scale == 0);
    assert_false(l31.embed_scale);
}

/* The tiny family fixtures (tests/fixtures/configs) load with their facts. */
static void test_tiny_fixtures(void **state)
{
    (void)state;
    sol_model m;
    sol_err err = {0};
    if (sol_model_load("tests/fixtures/configs/tiny-deepseek-v3.json", &m, &err))
        fail_msg("%s", err.msg);
    assert_true(m.expert_sigmoid && m.expert_norm && m.expert_bias);
    assert_true(m.expert_scale == 2.5);
    assert_int_equal(m.n_experts, 16);
    assert_int_equal(m.n_experts_active, 4);
    assert_int_equal(m.expert_groups, 4);
    assert_int_equal(m.expert_groups_used, 2);
    assert_int_equal(m.first_dense, 1);
    if (sol_model_load("tests/fixtures/configs/tiny-deepseek-v2.json", &m, &err))
        fail_msg("%s", err.msg);
    assert_false(m.expert_sigmoid || m.expert_norm || m.expert_bias);
    assert_true(m.expert_scale == 16);
    assert_int_equal(m.q_lora_rank, 0);
    assert_int_equal(m.n_shared_experts, 2);
    if (sol_model_load("tests/fixtures/configs/tiny-mixtral.json", &m, &err))
        fail_msg("%s", err.msg);
    assert_true(m.expert_norm);
    assert_int_equal(m.n_experts, 8);
    assert_int_equal(m.moe_ffn, 128);
    if (sol_model_load("tests/fixtures/configs/tiny-gemma2.json", &m, &err))
        fail_msg("%s", err.msg);
    assert_true(m.attn_softcap == 50 && m.final_softcap == 30);
    assert_true(fabs(m.attn_scale - 1 / sqrt(24.0)) < 1e-15);
    assert_int_equal(m.swa_period, 2);
    assert_true(m.tied_embeddings);
    if (sol_model_load("tests/fixtures/configs/tiny-gemma3.json", &m, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(m.n_layers, 7);
    assert_int_equal(m.swa_period, 6);
    assert_true(m.rope_scale == 8 && m.rope_theta_local == 10000 && m.rope_theta == 1000000);
    assert_true(m.qk_norm && m.post_norms && m.embed_scale);
    if (sol_model_load("tests/fixtures/configs/tiny-phi3.json", &m, &err))
        fail_msg("%s", err.msg);
    assert_true(m.fused_qkv);
    assert_int_equal(m.head_dim, 16);
}

#define MIXTRAL_KEYS "\"model_type\":\"mixtral\"," LLAMA_KEYS
#define DEEPSEEK_KEYS                                                                                          \
    "\"model_type\":\"deepseek_v3\"," LLAMA_KEYS ",\"kv_lora_rank\":32,\"qk_rope_head_dim\":16,"              \
    "\"qk_nope_head_dim\":32,\"v_head_dim\":32,\"moe_intermediate_size\":32,\"n_routed_experts\":16"

/* Routing that cannot be: refused naming the config's keys. */
static void test_hf_routing_errors(void **state)
{
    (void)state;
    expect_hf_error("{" MIXTRAL_KEYS ",\"num_local_experts\":4,\"num_experts_per_tok\":5}",
                    "\"num_experts_per_tok\" = 5 is outside 1..4 (\"num_local_experts\")");
    expect_hf_error("{" DEEPSEEK_KEYS ",\"num_experts_per_tok\":0}",
                    "\"num_experts_per_tok\" = 0 is outside 1..16 (\"n_routed_experts\")");
    expect_hf_error("{" DEEPSEEK_KEYS ",\"num_experts_per_tok\":17}", "\"num_experts_per_tok\" = 17 is outside 1..16");
    expect_hf_error("{" DEEPSEEK_KEYS ",\"num_experts_per_tok\":4,\"topk_method\":\"noaux_tc\",\"n_group\":3}",
                    "\"n_group\" = 3 does not divide the 16 experts (\"n_routed_experts\")");
    expect_hf_error("{" DEEPSEEK_KEYS ",\"num_experts_per_tok\":4,\"topk_method\":\"group_limited_greedy\","
                    "\"n_group\":4,\"topk_group\":5}",
                    "\"topk_group\" = 5 is outside 1..4 (\"n_group\")");
    expect_hf_error("{" DEEPSEEK_KEYS ",\"num_experts_per_tok\":9,\"topk_method\":\"noaux_tc\",\"n_group\":4,"
                    "\"topk_group\":2}",
                    "\"num_experts_per_tok\" = 9 is more than the 8 experts of 2 groups of 4 (\"topk_group\" = 2)");
    expect_hf_error("{" DEEPSEEK_KEYS ",\"num_experts_per_tok\":4,\"scoring_func\":\"relu\"}",
                    "key \"scoring_func\" must be one of \"softmax\", \"sigmoid\" (found \"relu\")");
    expect_hf_error("{" DEEPSEEK_KEYS ",\"num_experts_per_tok\":4,\"topk_method\":7}", "key \"topk_method\"");
    expect_hf_error("{" DEEPSEEK_KEYS ",\"num_experts_per_tok\":4,\"routed_scaling_factor\":0}",
                    "\"routed_scaling_factor\" must be a positive");
    expect_hf_error("{\"model_type\":\"gemma2\"," LLAMA_KEYS ",\"attn_logit_softcapping\":-1}",
                    "\"attn_logit_softcapping\" must be a finite number >= 0 or null");
    expect_hf_error("{\"model_type\":\"gemma3_text\"," LLAMA_KEYS ",\"rope_scaling\":{\"rope_type\":\"linear\"}}",
                    "\"rope_scaling.factor\"");

    /* greedy routing ignores the group keys; k of all experts is fine */
    sol_model m;
    sol_err err = {0};
    assert_int_equal(sol_model_from_hf_json("{" DEEPSEEK_KEYS ",\"num_experts_per_tok\":16,\"topk_method\":\"greedy\","
                                            "\"n_group\":3,\"topk_group\":9}",
                                            "cfg.json", &m, &err),
                     0);
    assert_int_equal(m.expert_groups, 1);
    assert_int_equal(m.expert_groups_used, 1);
    assert_false(m.expert_sigmoid); /* scoring_func absent: softmax */
}

static void test_model_lookup(void **state)
{
    (void)state;
    sol_model m;
    sol_err err = {0};
    assert_int_equal(sol_model_load("llama-2-7b", &m, &err), 0);
    assert_string_equal(m.name, "Llama-2-7B");
    assert_int_equal(sol_model_load("llama-9-1t", &m, &err), SOL_ERR_USAGE);
    assert_non_null(strstr(err.msg, "llama-9-1t"));
    assert_int_equal(sol_model_load("/nonexistent/config.json", &m, &err), SOL_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "/nonexistent/config.json: No such file"));
    assert_int_equal(sol_model_load("missing.gguf", &m, &err), SOL_ERR_RUNTIME);

    /* a directory holding config.json */
    char dir[] = "/tmp/sol-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(sol_preset_json("mistral-7b"), f);
    fclose(f);
    assert_int_equal(sol_model_load(dir, &m, &err), 0);
    assert_int_equal(m.sliding_window, 4096);
    f = fopen(path, "w");
    fputs("{\"model_type\": \"llama\",", f);
    fclose(f);
    assert_int_equal(sol_model_load(dir, &m, &err), SOL_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "config.json: invalid JSON"));
    unlink(path);
    rmdir(dir);
}

/* A GGUF with llama metadata and the tensor table of a 2-layer model. */
/* Metadata a test changes to make the tiny file wrong (0: as written). */
static struct {
    uint32_t heads, rope_dims;
    const char *name;
} tiny_tweak;

static void write_tiny_gguf(const char *path, int with_output)
{
    sol_gguf_writer *w = sol_gguf_writer_new();
    sol_gguf_set_str(w, "general.architecture", "llama");
    sol_gguf_set_str(w, "general.name", tiny_tweak.name ? tiny_tweak.name : "tiny");
    sol_gguf_set_u32(w, "llama.block_count", 2);
    sol_gguf_set_u32(w, "llama.embedding_length", 64);
    sol_gguf_set_u32(w, "llama.feed_forward_length", 128);
    sol_gguf_set_u32(w, "llama.attention.head_count", tiny_tweak.heads ? tiny_tweak.heads : 4);
    if (tiny_tweak.rope_dims)
        sol_gguf_set_u32(w, "llama.rope.dimension_count", tiny_tweak.rope_dims);
    sol_gguf_set_u32(w, "llama.attention.head_count_kv", 2);
    sol_gguf_set_u32(w, "llama.context_length", 256);
    sol_gguf_set_f32(w, "llama.rope.freq_base", 10000.0f);
    const char *tokens[] = {"a", "b", "c", "d"};
    sol_gguf_set_arr_str(w, "tokenizer.ggml.tokens", tokens, 4);
    uint64_t embd[2] = {64, 4}, q[2] = {64, 64}, kv[2] = {64, 32}, up[2] = {64, 128}, down[2] = {128, 64}, norm[1] = {64};
    sol_gguf_add_tensor(w, "token_embd.weight", 2, embd, 1, NULL, 64 * 4 * 2);
    for (int l = 0; l < 2; l++) {
        char name[64];
#define T(suffix, dims, nd, type, bytes)                               \
    snprintf(name, sizeof name, "blk.%d." suffix, l);                  \
    sol_gguf_add_tensor(w, name, nd, dims, type, NULL, bytes)
        T("attn_norm.weight", norm, 1, 0, 64 * 4);
        T("attn_q.weight", q, 2, 8, 64 * 64 / 32 * 34);
        T("attn_k.weight", kv, 2, 8, 64 * 32 / 32 * 34);
        T("attn_v.weight", kv, 2, 8, 64 * 32 / 32 * 34);
        T("attn_output.weight", q, 2, 8, 64 * 64 / 32 * 34);
        T("ffn_norm.weight", norm, 1, 0, 64 * 4);
        T("ffn_gate.weight", up, 2, 8, 64 * 128 / 32 * 34);
        T("ffn_up.weight", up, 2, 8, 64 * 128 / 32 * 34);
        T("ffn_down.weight", down, 2, 8, 64 * 128 / 32 * 34);
#undef T
    }
    sol_gguf_add_tensor(w, "output_norm.weight", 1, norm, 0, NULL, 64 * 4);
    if (with_output)
        sol_gguf_add_tensor(w, "output.weight", 2, embd, 1, NULL, 64 * 4 * 2);
    sol_err err = {0};
    if (sol_gguf_writer_write(w, path, &err))
        fail_msg("%s", err.msg);
    sol_gguf_writer_free(w);
}

static void test_gguf_metadata(void **state)
{
    (void)state;
    const char *path = "/tmp/sol-test-tiny.gguf";
    write_tiny_gguf(path, 0);
    sol_model m;
    sol_err err = {0};
    if (sol_model_load(path, &m, &err))
        fail_msg("%s", err.msg);
    assert_string_equal(m.arch, "llama");
    assert_string_equal(m.name, "tiny");
    assert_int_equal(m.n_layers, 2);
    assert_int_equal(m.n_kv_heads, 2);
    assert_int_equal(m.head_dim, 16);
    assert_int_equal(m.vocab, 4);
    assert_int_equal(m.ctx_max, 256);
    assert_int_equal(m.wtype, SOL_DT_Q8_0); /* the dominant layer type */
    assert_true(m.tied_embeddings);
    sol_param_count p;
    assert_int_equal(sol_model_params(&m, &p, &err), 0);
    /* the plan's count equals the tensor table's element count */
    double elems = 4 * 64 + 2 * (64 + 64 * 64 * 2 + 64 * 32 * 2 + 64 + 3 * 64 * 128) + 64;
    assert_true(p.total == elems);
    write_tiny_gguf(path, 1);
    assert_int_equal(sol_model_load(path, &m, &err), 0);
    assert_false(m.tied_embeddings);
    assert_int_equal(sol_model_params(&m, &p, &err), 0);
    assert_true(p.total == elems + 4 * 64);

    /* a truncated file is a one-line error naming it */
    FILE *f = fopen(path, "r+");
    assert_int_equal(ftruncate(fileno(f), 100), 0);
    fclose(f);
    assert_int_equal(sol_model_load(path, &m, &err), SOL_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, path));

    /* heads that do not divide the hidden size (no key_length), RoPE dims
     * beyond the key: refused by name, never negative dimensions */
    tiny_tweak.heads = 6;
    write_tiny_gguf(path, 0);
    assert_int_equal(sol_model_load(path, &m, &err), SOL_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "6 attention heads do not divide the hidden size 64"));
    tiny_tweak.heads = 0;
    tiny_tweak.rope_dims = 40;
    write_tiny_gguf(path, 0);
    assert_int_equal(sol_model_load(path, &m, &err), SOL_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "rope.dimension_count 40 is more than the key length 16"));
    tiny_tweak.rope_dims = 0;

    /* a name with escape sequences reaches headers and summaries printable */
    tiny_tweak.name = "a\x1b[2Jb\x07" "c\xc2\x9b" "d\xff" "\xe4\xb8\xad";
    write_tiny_gguf(path, 0);
    assert_int_equal(sol_model_load(path, &m, &err), 0);
    assert_string_equal(m.name, "a?[2Jb?c??d?\xe4\xb8\xad"); /* ESC, BEL, C1 CSI, a stray byte; 中 kept */
    tiny_tweak.name = NULL;
    unlink(path);
}


/* A checkpoint directory: config.json beside safetensors weights; the
 * weights' dtype wins over torch_dtype, a damaged file is an error. */
static void test_safetensors_dir(void **state)
{
    (void)state;
    char dir[] = "/tmp/sol-st-XXXXXX", path[256], cmd[512];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs(sol_preset_json("smollm2-135m"), f); /* torch_dtype bfloat16 */
    fclose(f);
    snprintf(cmd, sizeof cmd, "cp tests/fixtures/safetensors/mixed.safetensors %s/model.safetensors", dir);
    assert_int_equal(system(cmd), 0);
    sol_model m;
    sol_err err = {0};
    if (sol_model_load(dir, &m, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(m.wtype, SOL_DT_F32);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    f = fopen(path, "r+");
    fputs("garbage!", f); /* the header length */
    fclose(f);
    assert_int_equal(sol_model_load(dir, &m, &err), SOL_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "model.safetensors"));
    snprintf(cmd, sizeof cmd, "rm -r %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hf_errors),
        cmocka_unit_test(test_config_names),
        cmocka_unit_test(test_hf_families),
        cmocka_unit_test(test_family_fields),
        cmocka_unit_test(test_tiny_fixtures),
        cmocka_unit_test(test_hf_routing_errors),
        cmocka_unit_test(test_model_lookup),
        cmocka_unit_test(test_gguf_metadata),
        cmocka_unit_test(test_safetensors_dir),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
