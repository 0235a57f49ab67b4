/* Reads a model description from GGUF metadata: hyperparameters under the
 * architecture's key prefix, the vocabulary size, tied embeddings and the
 * dominant weight type from the tensor table. No weights are touched. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/gguf.h"
#include "models/models.h"
#include "util/quote.h"

typedef struct {
    const sol_gguf *g;
    const char *prefix; /* general.architecture */
    sol_err *err;
} meta_reader;

/* {arch}.suffix as an integer; absent gives def, or an error when required. */
static int meta_int(const meta_reader *r, const char *suffix, int required, int def, int *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", r->prefix, suffix);
    int64_t v;
    int rc = sol_gguf_get_i64(r->g, key, &v, r->err);
    if (rc == -1) {
        if (required)
            return sol_fail(r->err, SOL_ERR_RUNTIME, "%s: missing metadata key \"%s\"", r->g->path, key);
        *out = def;
        return 0;
    }
    if (rc)
        return rc;
    if (v < 0 || v > 1000000000)
        return sol_fail(r->err, SOL_ERR_RUNTIME, "%s: metadata \"%s\" = %lld is out of range", r->g->path,
                        key, (long long)v);
    *out = (int)v;
    return 0;
}

static int meta_double(const meta_reader *r, const char *suffix, double def, double *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", r->prefix, suffix);
    int rc = sol_gguf_get_f64(r->g, key, out, r->err);
    if (rc == -1) {
        *out = def;
        return 0;
    }
    return rc;
}

/* {arch}.suffix as a number >= 0 (absent: def); positive when positive is set. */
static int meta_nonneg(const meta_reader *r, const char *suffix, double def, int positive, double *out)
{
    int rc = meta_double(r, suffix, def, out);
    if (rc || (*out >= 0 && isfinite(*out) && (!positive || *out > 0)))
        return rc;
    return sol_fail(r->err, SOL_ERR_RUNTIME, "%s: metadata \"%s.%s\" = %g must be a finite number %s", r->g->path,
                    r->prefix, suffix, *out, positive ? "> 0" : ">= 0");
}

static int meta_bool(const meta_reader *r, const char *suffix, bool def, bool *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", r->prefix, suffix);
    int v = def;
    int rc = sol_gguf_get_bool(r->g, key, &v, r->err);
    if (rc > 0)
        return rc;
    *out = v != 0;
    return 0;
}

/* The weight type holding most bytes among the layers' matrices. */
static int dominant_weight_type(const sol_gguf *g, sol_model *m, sol_err *err)
{
    double bytes_by_type[64] = {0};
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const sol_gguf_tensor *t = &g->tensors[i];
        sol_dtype known;
        if (sol_dtype_from_ggml(t->ggml_type, &known) != 0) {
            char buf[32];
            sol_qbuf q;
            return sol_fail(err, SOL_ERR_RUNTIME, "%s: unsupported tensor type %s in %s", g->path,
                            sol_ggml_type_name(t->ggml_type, buf, sizeof buf), sol_quote(&q, t->name.ptr, t->name.len));
        }
        if (t->n_dims >= 2 && t->name.len > 4 && memcmp(t->name.ptr, "blk.", 4) == 0 && t->ggml_type < 64)
            bytes_by_type[t->ggml_type] += (double)t->n_elems;
    }
    uint32_t best = 0;
    for (uint32_t t = 1; t < 64; t++)
        if (bytes_by_type[t] > bytes_by_type[best])
            best = t;
    if (bytes_by_type[best] == 0)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: no layer weight matrices (blk.N.*) in the tensor table",
                        g->path);
    if (sol_dtype_from_ggml(best, &m->wtype) != 0) {
        char buf[32];
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: unsupported weight type %s", g->path,
                        sol_ggml_type_name(best, buf, sizeof buf));
    }
    return 0;
}

/* Each layer matrix's own type (Q4_K_M keeps some attn_v and ffn_down in
 * Q6_K); m->mixed when any differs from the dominant type. */
static int read_matrix_types(const sol_gguf *g, sol_model *m, sol_err *err)
{
    static const char *const names[SOL_MATRIX_COUNT] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                                         "ffn_gate", "ffn_up", "ffn_down"};
    /* phi3 stores Q, K, V in one attn_qkv and the gate in ffn_up: theirs */
    static const char *const fused[SOL_MATRIX_COUNT] = {"attn_qkv", "attn_qkv", "attn_qkv", "attn_output",
                                                         "ffn_up", "ffn_up", "ffn_down"};
    m->mixed = false;
    for (int l = 0; l < m->n_layers && l < SOL_MAX_LAYERS; l++) {
        for (int x = 0; x < SOL_MATRIX_COUNT; x++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, m->fused_qkv ? fused[x] : names[x]);
            sol_dtype type = m->wtype;
            const sol_gguf_tensor *t = sol_gguf_find_tensor(g, name);
            if (t && sol_dtype_from_ggml(t->ggml_type, &type) != 0) {
                char buf[32];
                return sol_fail(err, SOL_ERR_RUNTIME, "%s: unsupported tensor type %s in %s", g->path,
                                sol_ggml_type_name(t->ggml_type, buf, sizeof buf), name);
            }
            m->matrix_type[l][x] = (unsigned char)type;
            m->mixed |= type != m->wtype;
        }
    }
    return 0;
}

/* A sol synth file's whole KV scheme (sol.kv_scheme: windows every E
 * layers, cross-layer sharing), beyond what the llama.* keys say; its heads
 * must be the weights'. */
static int read_synth_scheme(const sol_gguf *g, sol_model *m, sol_err *err)
{
    sol_gguf_str text;
    int rc = sol_gguf_get_str(g, "sol.kv_scheme", &text, err);
    if (rc == -1)
        return 0;
    if (rc)
        return rc;
    char buf[128];
    if (text.len >= sizeof buf)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: sol.kv_scheme is %llu bytes long", g->path,
                        (unsigned long long)text.len);
    memcpy(buf, text.ptr, text.len);
    buf[text.len] = '\0';
    sol_kv_scheme own, kv;
    sol_kv_from_model(m, &own);
    sol_qbuf q;
    if (sol_kv_parse(buf, &own, &kv, err) || sol_kv_check(&kv, m, err))
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: sol.kv_scheme %s: %s", g->path, sol_quote(&q, buf, text.len),
                        err->msg);
    if (kv.heads != own.heads || kv.n_kv_heads != own.n_kv_heads || kv.lazy_fraction > 0)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: sol.kv_scheme %s disagrees with the file's %d KV heads", g->path,
                        sol_quote(&q, buf, text.len), m->n_kv_heads);
    m->sliding_window = kv.window;
    m->swa_period = kv.window ? kv.global_every : 1;
    m->kv_share = kv.share;
    return 0;
}

/* The type of one named tensor (fallback when absent). */
static int tensor_type(const sol_gguf *g, const char *name, sol_dtype fallback, sol_dtype *out, sol_err *err)
{
    const sol_gguf_tensor *t = sol_gguf_find_tensor(g, name);
    *out = fallback;
    if (!t || sol_dtype_from_ggml(t->ggml_type, out) == 0)
        return 0;
    char buf[32];
    return sol_fail(err, SOL_ERR_RUNTIME, "%s: unsupported tensor type %s in %s", g->path,
                    sol_ggml_type_name(t->ggml_type, buf, sizeof buf), name);
}

static int read_name_and_arch(const sol_gguf *g, const char *origin, sol_model *m, sol_err *err)
{
    sol_gguf_str s;
    int rc = sol_gguf_get_str(g, "general.architecture", &s, err);
    if (rc == -1)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: missing metadata key \"general.architecture\"", origin);
    if (rc)
        return rc;
    static const char *const known[][2] = {
        {"llama", "llama"}, {"qwen2", "qwen2"}, {"gemma2", "gemma2"}, {"gemma3", "gemma3"},
        {"phi3", "phi3"},   {"deepseek2", "deepseek_v2"},
    };
    size_t i = 0;
    for (; i < sizeof known / sizeof known[0]; i++)
        if (sol_gguf_str_eq(s, known[i][0]))
            break;
    sol_qbuf q;
    if (i == sizeof known / sizeof known[0])
        return sol_fail(err, SOL_ERR_RUNTIME,
                        "%s: unknown architecture %s (known: llama, qwen2, gemma2, gemma3, phi3, deepseek2)", origin,
                        sol_quote(&q, s.ptr, s.len));
    snprintf(m->arch, sizeof m->arch, "%s", known[i][1]);
    if (sol_gguf_get_str(g, "general.name", &s, NULL) == 0 && s.len > 0)
        snprintf(m->name, sizeof m->name, "%.*s", (int)(s.len > 90 ? 90 : s.len), s.ptr);
    else
        snprintf(m->name, sizeof m->name, "%.90s", origin);
    sol_printable(m->name); /* shown in headers and summaries */
    return 0;
}

static int read_vocab(const sol_gguf *g, const meta_reader *r, sol_model *m)
{
    const sol_gguf_kv *tokens = sol_gguf_find(g, "tokenizer.ggml.tokens");
    if (tokens && tokens->type == SOL_GGUF_ARRAY && tokens->arr_count > 0 && tokens->arr_count < (1u << 30)) {
        m->vocab = (int)tokens->arr_count;
        return 0;
    }
    if (meta_int(r, "vocab_size", 0, 0, &m->vocab))
        return SOL_ERR_RUNTIME;
    if (m->vocab > 0)
        return 0;
    const sol_gguf_tensor *embd = sol_gguf_find_tensor(g, "token_embd.weight");
    if (embd && embd->n_dims == 2) {
        m->vocab = (int)embd->dims[1];
        return 0;
    }
    return sol_fail(r->err, SOL_ERR_RUNTIME, "%s: cannot tell the vocabulary size (no tokenizer.ggml.tokens)",
                    g->path);
}

/* The expert tensors of the first MoE layer agree with expert_count (and
 * the expert width): a file whose metadata and tensors disagree is refused
 * by name before anything indexes an expert. */
static int check_expert_tensors(const sol_gguf *g, const meta_reader *r, const sol_model *m)
{
    int layer = m->first_dense;
    if (layer >= m->n_layers)
        return 0; /* every layer dense (sol synth --layers below the leading dense ones) */
    char name[64];
    snprintf(name, sizeof name, "blk.%d.ffn_gate_inp.weight", layer);
    const sol_gguf_tensor *t = sol_gguf_find_tensor(g, name);
    if (t && (t->n_dims != 2 || t->dims[1] != (uint64_t)m->n_experts))
        return sol_fail(r->err, SOL_ERR_RUNTIME, "%s: tensor %s routes to %llu experts, metadata \"%s.expert_count\" "
                        "says %d", g->path, name, (unsigned long long)t->dims[1], r->prefix, m->n_experts);
    snprintf(name, sizeof name, "blk.%d.ffn_gate_exps.weight", layer);
    t = sol_gguf_find_tensor(g, name);
    if (t && (t->n_dims != 3 || t->dims[2] != (uint64_t)m->n_experts))
        return sol_fail(r->err, SOL_ERR_RUNTIME, "%s: tensor %s holds %llu experts, metadata \"%s.expert_count\" "
                        "says %d", g->path, name, (unsigned long long)(t->n_dims == 3 ? t->dims[2] : 1), r->prefix,
                        m->n_experts);
    const char *width = strcmp(m->arch, "mixtral") == 0 ? "feed_forward_length" : "expert_feed_forward_length";
    if (t && t->dims[1] != (uint64_t)m->moe_ffn)
        return sol_fail(r->err, SOL_ERR_RUNTIME, "%s: tensor %s has experts of %llu rows, metadata \"%s.%s\" says %d",
                        g->path, name, (unsigned long long)t->dims[1], r->prefix, width, m->moe_ffn);
    return 0;
}

/* DeepSeek's routing keys (docs/FAMILIES.md); absent, the defaults older
 * files mean: softmax, no renormalisation, scale 1, no groups. */
static int read_deepseek_routing(const meta_reader *r, sol_model *m)
{
    int gating = 1, rc;
    if ((rc = meta_nonneg(r, "expert_weights_scale", 1.0, 1, &m->expert_scale)) ||
        (rc = meta_bool(r, "expert_weights_norm", false, &m->expert_norm)) ||
        (rc = meta_int(r, "expert_gating_func", 0, 1, &gating)) ||
        (rc = meta_int(r, "expert_group_count", 0, 1, &m->expert_groups)) ||
        (rc = meta_int(r, "expert_group_used_count", 0, 1, &m->expert_groups_used)))
        return rc;
    if (gating > 2) /* 0 is llama.cpp's "unset": softmax, as DeepSeek-V2's files mean it */
        return sol_fail(r->err, SOL_ERR_RUNTIME,
                        "%s: metadata \"%s.expert_gating_func\" = %d is not 1 (softmax) or 2 (sigmoid)", r->g->path,
                        r->prefix, gating);
    m->expert_sigmoid = gating == 2;
    return 0;
}

/* Experts: the counts, each family's routing (llama with experts is
 * Mixtral: softmax, the top k renormalised, as llama.cpp reads it), and
 * the checks that the counts agree with each other and the tensors. */
static int read_experts(const sol_gguf *g, const meta_reader *r, sol_model *m)
{
    bool deepseek = strcmp(m->arch, "deepseek_v2") == 0;
    int rc;
    m->expert_scale = 1;
    m->expert_groups = m->expert_groups_used = 1;
    if ((rc = meta_int(r, "expert_count", 0, 0, &m->n_experts)) ||
        (rc = meta_int(r, "expert_used_count", 0, 0, &m->n_experts_active)) ||
        (rc = meta_int(r, "expert_shared_count", 0, 0, &m->n_shared_experts)) ||
        (rc = meta_int(r, "expert_feed_forward_length", deepseek && m->n_experts > 0, 0, &m->moe_ffn)) ||
        (rc = meta_int(r, "leading_dense_block_count", 0, 0, &m->first_dense)))
        return rc;
    if (m->n_experts == 0)
        return 0;
    if (strcmp(m->arch, "llama") == 0) {
        snprintf(m->arch, sizeof m->arch, "mixtral");
        m->moe_ffn = m->ffn;
        m->expert_norm = true;
    } else if (deepseek && (rc = read_deepseek_routing(r, m))) {
        return rc;
    }
    char keys[4][160];
    snprintf(keys[0], sizeof keys[0], "%s.expert_count", r->prefix);
    snprintf(keys[1], sizeof keys[1], "%s.expert_used_count", r->prefix);
    snprintf(keys[2], sizeof keys[2], "%s.expert_group_count", r->prefix);
    snprintf(keys[3], sizeof keys[3], "%s.expert_group_used_count", r->prefix);
    sol_routing_keys names = {keys[0], keys[1], keys[2], keys[3]};
    if (m->first_dense > m->n_layers)
        return sol_fail(r->err, SOL_ERR_RUNTIME, "%s: metadata \"%s.leading_dense_block_count\" = %d exceeds the %d "
                        "layers", g->path, r->prefix, m->first_dense, m->n_layers);
    if ((rc = sol_model_check_routing(m, g->path, &names, r->err)) || (rc = check_expert_tensors(g, r, m)))
        return rc;
    char name[64];
    snprintf(name, sizeof name, "blk.%d.exp_probs_b.bias", m->first_dense);
    m->expert_bias = sol_gguf_find_tensor(g, name) != NULL; /* DeepSeek-V3's selection bias */
    return 0;
}

/* Gemma's and the common optional attention keys: soft-caps, the score
 * scale, gemma-3's local RoPE base, linear RoPE scaling (other kinds are
 * left to the engine, which refuses them). */
static int read_attention_extras(const sol_gguf *g, const meta_reader *r, sol_model *m)
{
    int rc;
    if ((rc = meta_nonneg(r, "attn_logit_softcapping", 0, 0, &m->attn_softcap)) ||
        (rc = meta_nonneg(r, "final_logit_softcapping", 0, 0, &m->final_softcap)) ||
        (rc = meta_nonneg(r, "attention.scale", 0, 0, &m->attn_scale)))
        return rc;
    m->embed_scale = strncmp(m->arch, "gemma", 5) == 0;
    if (strcmp(m->arch, "gemma3") == 0 && (rc = meta_nonneg(r, "rope.freq_base_swa", 10000.0, 1, &m->rope_theta_local)))
        return rc;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", r->prefix);
    sol_gguf_str type;
    if ((rc = sol_gguf_get_str(g, key, &type, r->err)) > 0)
        return rc;
    if (rc == 0 && sol_gguf_str_eq(type, "linear"))
        return meta_nonneg(r, "rope.scaling.factor", 1.0, 1, &m->rope_scale);
    return 0;
}

static int read_gguf_model(const sol_gguf *g, sol_model *m, sol_err *err)
{
    int rc = read_name_and_arch(g, g->path, m, err);
    if (rc)
        return rc;
    sol_gguf_str arch;
    sol_gguf_get_str(g, "general.architecture", &arch, NULL);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%.*s", (int)(arch.len > 60 ? 60 : arch.len), arch.ptr);
    meta_reader r = {g, prefix, err};
    int key_length = 0, value_length = 0, rope_dims = 0;
    if ((rc = meta_int(&r, "block_count", 1, 0, &m->n_layers)) ||
        (rc = meta_int(&r, "embedding_length", 1, 0, &m->hidden)) ||
        (rc = meta_int(&r, "feed_forward_length", 1, 0, &m->ffn)) ||
        (rc = meta_int(&r, "attention.head_count", 1, 0, &m->n_heads)) ||
        (rc = meta_int(&r, "attention.head_count_kv", 0, m->n_heads, &m->n_kv_heads)) ||
        (rc = meta_int(&r, "attention.key_length", 0, 0, &key_length)) ||
        (rc = meta_int(&r, "attention.value_length", 0, 0, &value_length)) ||
        (rc = meta_int(&r, "rope.dimension_count", 0, 0, &rope_dims)) ||
        (rc = meta_int(&r, "context_length", 0, 4096, &m->ctx_max)) ||
        (rc = meta_int(&r, "attention.sliding_window", 0, 0, &m->sliding_window)) ||
        (rc = meta_int(&r, "attention.q_lora_rank", 0, 0, &m->q_lora_rank)) ||
        (rc = meta_int(&r, "attention.kv_lora_rank", 0, 0, &m->kv_lora_rank)) ||
        (rc = meta_double(&r, "rope.freq_base", 10000.0, &m->rope_theta)) ||
        (rc = meta_double(&r, "attention.layer_norm_rms_epsilon", 1e-5, &m->norm_eps)) ||
        (rc = read_vocab(g, &r, m)) || (rc = dominant_weight_type(g, m, err)))
        return rc;
    if (m->n_heads < 1)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: attention.head_count must be positive", g->path);
    if (key_length == 0 && m->hidden % m->n_heads != 0) /* head_dim derived from the hidden size */
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: %d attention heads do not divide the hidden size %d", g->path,
                        m->n_heads, m->hidden);
    m->head_dim = key_length > 0 ? key_length : m->hidden / m->n_heads;
    if (rope_dims > m->head_dim)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: rope.dimension_count %d is more than the key length %d", g->path,
                        rope_dims, m->head_dim);
    if ((rc = read_experts(g, &r, m)) || (rc = read_attention_extras(g, &r, m)))
        return rc;
    if (m->kv_lora_rank > 0) { /* deepseek2: key = nope + rope, value separate */
        m->qk_rope_dim = rope_dims;
        m->qk_nope_dim = m->head_dim - rope_dims;
        m->v_head_dim = value_length > 0 ? value_length : m->qk_nope_dim;
    }
    m->swa_period = strcmp(m->arch, "gemma2") == 0 ? 2 : strcmp(m->arch, "gemma3") == 0 ? 6 : 1;
    const sol_gguf_tensor *output = sol_gguf_find_tensor(g, "output.weight");
    m->tied_embeddings = output == NULL;
    m->fused_qkv = sol_gguf_find_tensor(g, "blk.0.attn_qkv.weight") != NULL; /* phi3 */
    if ((rc = tensor_type(g, "token_embd.weight", m->wtype, &m->embed_type, err)) ||
        (rc = tensor_type(g, output ? "output.weight" : "token_embd.weight", m->wtype, &m->output_type, err)) ||
        (rc = read_matrix_types(g, m, err)) || (rc = read_synth_scheme(g, m, err)))
        return rc;
    m->qkv_bias = sol_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
    m->qk_norm = sol_gguf_find_tensor(g, "blk.0.attn_q_norm.weight") != NULL;
    m->post_norms = sol_gguf_find_tensor(g, "blk.0.post_attention_norm.weight") != NULL;
    m->act = strncmp(m->arch, "gemma", 5) == 0 ? SOL_ACT_GELU : SOL_ACT_SILU;
    return sol_model_validate(m, g->path, err);
}

int sol_model_from_gguf(const char *path, sol_model *m, sol_err *err)
{
    memset(m, 0, sizeof *m);
    sol_gguf g;
    int rc = sol_gguf_open(&g, path, err);
    if (rc)
        return rc;
    rc = read_gguf_model(&g, m, err);
    sol_gguf_close(&g);
    return rc;
}
