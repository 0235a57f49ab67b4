/* Reads a Hugging Face config.json (via cJSON) into a sol_model. Knows the
 * per-family conventions HF encodes in code rather than in the file:
 * defaults for tie_word_embeddings, gemma2's alternating windows, qwen2's
 * q/k/v bias, DeepSeek's MLA and MoE fields, each family's expert routing,
 * gemma's scales and soft-caps, phi3's fused projections (docs/FAMILIES.md). */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/models.h"
#include "util/quote.h"

typedef struct {
    const cJSON *root;
    const char *origin;
    sol_err *err;
} hf_reader;

static const char *json_type_name(const cJSON *item)
{
    if (cJSON_IsNumber(item)) return "number";
    if (cJSON_IsString(item)) return "string";
    if (cJSON_IsBool(item)) return "bool";
    if (cJSON_IsNull(item)) return "null";
    if (cJSON_IsArray(item)) return "array";
    return "object";
}

/* Reads an integer key. Absent or null gives def when !required. */
static int read_int(const hf_reader *r, const char *key, int required, long min, long def, int *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(r->root, key);
    if (!item || cJSON_IsNull(item)) {
        if (required)
            return sol_fail(r->err, SOL_ERR_RUNTIME, "%s: missing required key \"%s\"", r->origin, key);
        *out = (int)def;
        return 0;
    }
    double v = item->valuedouble;
    if (!cJSON_IsNumber(item))
        return sol_fail(r->err, SOL_ERR_RUNTIME, "%s: key \"%s\" must be an integer >= %ld (found %s)",
                        r->origin, key, min, json_type_name(item));
    if (v != floor(v) || v < (double)min || v > 1e9)
        return sol_fail(r->err, SOL_ERR_RUNTIME, "%s: key \"%s\" must be an integer >= %ld (found %g)",
                        r->origin, key, min, v);
    *out = (int)v;
    return 0;
}

/* Without a head_dim key it is hidden / heads: the heads must divide it. */
static int check_head_split(const hf_reader *r, const sol_model *m)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(r->root, "head_dim");
    if ((!item || cJSON_IsNull(item)) && m->hidden % m->n_heads != 0)
        return sol_fail(r->err, SOL_ERR_RUNTIME, "%s: %d attention heads do not divide hidden_size %d (and no "
                        "head_dim is given)", r->origin, m->n_heads, m->hidden);
    return 0;
}

static int read_double(const hf_reader *r, const char *key, double def, double *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(r->root, key);
    if (!item || cJSON_IsNull(item)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(item) || !(item->valuedouble > 0) || !isfinite(item->valuedouble))
        return sol_fail(r->err, SOL_ERR_RUNTIME, "%s: key \"%s\" must be a positive, finite number (found %s)",
                        r->origin, key, json_type_name(item));
    *out = item->valuedouble;
    return 0;
}

static int read_bool(const hf_reader *r, const char *key, int def, bool *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(r->root, key);
    if (!item || cJSON_IsNull(item)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(item))
        return sol_fail(r->err, SOL_ERR_RUNTIME, "%s: key \"%s\" must be true or false (found %s)",
                        r->origin, key, json_type_name(item));
    *out = cJSON_IsTrue(item);
    return 0;
}

static const char *read_string(const hf_reader *r, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(r->root, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* A number >= 0 where 0 (or absent, or null) means "off": the soft-caps. */
static int read_optional_double(const hf_reader *r, const char *key, double *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(r->root, key);
    *out = 0;
    if (!item || cJSON_IsNull(item))
        return 0;
    if (!cJSON_IsNumber(item) || !(item->valuedouble >= 0) || !isfinite(item->valuedouble))
        return sol_fail(r->err, SOL_ERR_RUNTIME, "%s: key \"%s\" must be a finite number >= 0 or null (found %s)",
                        r->origin, key, json_type_name(item));
    *out = item->valuedouble;
    return 0;
}

/* A string key that must be one of choices (n of them); absent or null gives
 * def. *out is the index of the choice. */
static int read_choice(const hf_reader *r, const char *key, const char *const *choices, int n, int def, int *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(r->root, key);
    *out = def;
    if (!item || cJSON_IsNull(item))
        return 0;
    for (int i = 0; cJSON_IsString(item) && i < n; i++)
        if (strcmp(item->valuestring, choices[i]) == 0) {
            *out = i;
            return 0;
        }
    char known[160] = "";
    for (int i = 0; i < n; i++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s\"%s\"", i ? ", " : "", choices[i]);
    sol_qbuf q;
    return sol_fail(r->err, SOL_ERR_RUNTIME, "%s: key \"%s\" must be one of %s (found %s)", r->origin, key, known,
                    cJSON_IsString(item) ? sol_quote_z(&q, item->valuestring) : json_type_name(item));
}

/* Architectures sol knows, with the HF default of tie_word_embeddings. */
static const struct {
    const char *model_type;
    const char *arch;
    bool tied_default;
} known_archs[] = {
    {"llama", "llama", false},          {"mistral", "mistral", false},
    {"mixtral", "mixtral", false},      {"qwen2", "qwen2", false},
    {"gemma2", "gemma2", true},         {"gemma3", "gemma3", true},
    {"gemma3_text", "gemma3", true},    {"phi3", "phi3", false},
    {"deepseek_v2", "deepseek_v2", false}, {"deepseek_v3", "deepseek_v3", false},
};

static int read_weight_type(const hf_reader *r, const hf_reader *top, sol_model *m)
{
    const char *dtype = read_string(r, "torch_dtype");
    if (!dtype)
        dtype = read_string(r, "dtype");
    if (!dtype) /* multimodal configs keep it at the top level */
        dtype = read_string(top, "torch_dtype");
    m->wtype = SOL_DT_BF16;
    if (dtype && strcmp(dtype, "float16") == 0)
        m->wtype = SOL_DT_F16;
    else if (dtype && strcmp(dtype, "float32") == 0)
        m->wtype = SOL_DT_F32;
    /* DeepSeek-V3 ships fp8 (e4m3) weights with block scales. */
    const cJSON *quant = cJSON_GetObjectItemCaseSensitive(top->root, "quantization_config");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(quant, "quant_method");
    if (cJSON_IsString(method) && strcmp(method->valuestring, "fp8") == 0)
        m->wtype = SOL_DT_FP8;
    return 0;
}

/* Sliding windows: layer_types when present, else the family's convention. */
static int read_sliding_window(const hf_reader *r, sol_model *m)
{
    int rc = read_int(r, "sliding_window", 0, 0, 0, &m->sliding_window);
    if (rc)
        return rc;
    bool use_sliding = true;
    if ((rc = read_bool(r, "use_sliding_window", 1, &use_sliding)))
        return rc;
    if (!use_sliding)
        m->sliding_window = 0;
    /* No pattern (mistral, phi3): the window applies on every layer, as HF's
     * modelling code does; Phi-3-mini-4k's 2047 makes every layer local. */
    m->swa_period = 1;
    if (strcmp(m->arch, "gemma2") == 0)
        m->swa_period = 2; /* even layers local, odd global (hard-coded in HF) */
    if (strcmp(m->arch, "gemma3") == 0 &&
        (rc = read_int(r, "sliding_window_pattern", 0, 1, 6, &m->swa_period)))
        return rc;

    const cJSON *types = cJSON_GetObjectItemCaseSensitive(r->root, "layer_types");
    if (!types || cJSON_IsNull(types) || m->sliding_window == 0)
        return 0;
    if (!cJSON_IsArray(types) || cJSON_GetArraySize(types) != m->n_layers)
        return sol_fail(r->err, SOL_ERR_RUNTIME, "%s: \"layer_types\" must be an array of %d strings",
                        r->origin, m->n_layers);
    int first_global = -1;
    for (int i = 0; i < m->n_layers; i++) {
        const cJSON *t = cJSON_GetArrayItem(types, i);
        if (!cJSON_IsString(t) || (strcmp(t->valuestring, "full_attention") != 0 &&
                                   strcmp(t->valuestring, "sliding_attention") != 0))
            return sol_fail(r->err, SOL_ERR_RUNTIME,
                            "%s: layer_types[%d] must be \"full_attention\" or \"sliding_attention\"",
                            r->origin, i);
        if (first_global < 0 && strcmp(t->valuestring, "full_attention") == 0)
            first_global = i;
    }
    if (first_global < 0) {
        m->swa_period = 1;
        return 0;
    }
    m->swa_period = first_global + 1;
    for (int i = 0; i < m->n_layers; i++) {
        bool global = strcmp(cJSON_GetArrayItem(types, i)->valuestring, "full_attention") == 0;
        if (global != ((i + 1) % m->swa_period == 0))
            return sol_fail(r->err, SOL_ERR_RUNTIME,
                            "%s: layer_types is not one global layer in every %d (layer %d); "
                            "sol supports that pattern only",
                            r->origin, m->swa_period, i);
    }
    if (m->swa_period == 1)
        m->sliding_window = 0; /* every layer global */
    return 0;
}

static int read_moe_mla(const hf_reader *r, sol_model *m)
{
    int rc = 0;
    if (strcmp(m->arch, "mixtral") == 0) {
        if ((rc = read_int(r, "num_local_experts", 1, 1, 0, &m->n_experts)) ||
            (rc = read_int(r, "num_experts_per_tok", 1, 1, 0, &m->n_experts_active)))
            return rc;
        m->moe_ffn = m->ffn;
        return 0;
    }
    if (strncmp(m->arch, "deepseek", 8) != 0)
        return 0;
    if ((rc = read_int(r, "n_routed_experts", 0, 0, 0, &m->n_experts)) ||
        (rc = read_int(r, "num_experts_per_tok", 0, 0, 0, &m->n_experts_active)) ||
        (rc = read_int(r, "n_shared_experts", 0, 0, 0, &m->n_shared_experts)) ||
        (rc = read_int(r, "moe_intermediate_size", m->n_experts > 0, 1, 0, &m->moe_ffn)) ||
        (rc = read_int(r, "first_k_dense_replace", 0, 0, 0, &m->first_dense)) ||
        (rc = read_int(r, "q_lora_rank", 0, 0, 0, &m->q_lora_rank)) ||
        (rc = read_int(r, "kv_lora_rank", 1, 1, 0, &m->kv_lora_rank)) ||
        (rc = read_int(r, "qk_rope_head_dim", 1, 1, 0, &m->qk_rope_dim)) ||
        (rc = read_int(r, "qk_nope_head_dim", 1, 1, 0, &m->qk_nope_dim)) ||
        (rc = read_int(r, "v_head_dim", 1, 1, 0, &m->v_head_dim)))
        return rc;
    int moe_layer_freq = 1;
    if ((rc = read_int(r, "moe_layer_freq", 0, 1, 1, &moe_layer_freq)))
        return rc;
    if (moe_layer_freq != 1)
        return sol_fail(r->err, SOL_ERR_RUNTIME, "%s: moe_layer_freq %d is not supported (only 1)",
                        r->origin, moe_layer_freq);
    const char *topk_method = read_string(r, "topk_method");
    m->expert_bias = topk_method && strcmp(topk_method, "noaux_tc") == 0;
    m->head_dim = m->qk_nope_dim + m->qk_rope_dim;
    return 0;
}

/* MoE routing as each family's modelling code does it. Mixtral: a softmax
 * over all experts, the top k renormalised. DeepSeek: the config's scoring
 * function, renormalisation and scale; groups only where topk_method uses
 * them (greedy ignores n_group/topk_group). */
static int read_routing(const hf_reader *r, sol_model *m)
{
    m->expert_scale = 1;
    m->expert_groups = m->expert_groups_used = 1;
    if (strcmp(m->arch, "mixtral") == 0) {
        static const sol_routing_keys keys = {"num_local_experts", "num_experts_per_tok", "n_group", "topk_group"};
        m->expert_norm = true;
        return sol_model_check_routing(m, r->origin, &keys, r->err);
    }
    if (strncmp(m->arch, "deepseek", 8) != 0 || m->n_experts == 0)
        return 0;
    static const char *const scoring[] = {"softmax", "sigmoid"};
    static const char *const methods[] = {"greedy", "group_limited_greedy", "noaux_tc"};
    int scoring_func = 0, method = 0, rc;
    if ((rc = read_choice(r, "scoring_func", scoring, 2, 0, &scoring_func)) ||
        (rc = read_choice(r, "topk_method", methods, 3, 0, &method)) ||
        (rc = read_bool(r, "norm_topk_prob", 0, &m->expert_norm)) ||
        (rc = read_double(r, "routed_scaling_factor", 1.0, &m->expert_scale)))
        return rc;
    m->expert_sigmoid = scoring_func == 1;
    if (method > 0 && ((rc = read_int(r, "n_group", 0, 1, 1, &m->expert_groups)) ||
                       (rc = read_int(r, "topk_group", 0, 1, 1, &m->expert_groups_used))))
        return rc;
    static const sol_routing_keys keys = {"n_routed_experts", "num_experts_per_tok", "n_group", "topk_group"};
    return sol_model_check_routing(m, r->origin, &keys, r->err);
}

/* Gemma's conventions: the embedding scaled by sqrt(hidden), scores by
 * query_pre_attn_scalar^-1/2 (absent: 0, the head size's), soft-caps (null or
 * absent: none), and gemma-3's own RoPE base for the local layers. */
static int read_gemma(const hf_reader *r, sol_model *m)
{
    if (strncmp(m->arch, "gemma", 5) != 0)
        return 0;
    m->embed_scale = true;
    double scalar = 0;
    int rc;
    if ((rc = read_double(r, "query_pre_attn_scalar", 0, &scalar)) ||
        (rc = read_optional_double(r, "attn_logit_softcapping", &m->attn_softcap)) ||
        (rc = read_optional_double(r, "final_logit_softcapping", &m->final_softcap)))
        return rc;
    m->attn_scale = scalar > 0 ? 1.0 / sqrt(scalar) : 0;
    if (strcmp(m->arch, "gemma3") == 0)
        return read_double(r, "rope_local_base_freq", 10000.0, &m->rope_theta_local);
    return 0;
}

/* rope_scaling of type (or rope_type) "linear" keeps its factor; other kinds
 * (DeepSeek's YaRN, Llama-3.1's llama3, LongRoPE) cost the analyzer nothing
 * different and the engine does not model them, so nothing is kept and sol
 * synth writes no scaling for them. */
static int read_rope_scaling(const hf_reader *r, sol_model *m)
{
    const cJSON *scaling = cJSON_GetObjectItemCaseSensitive(r->root, "rope_scaling");
    if (!cJSON_IsObject(scaling))
        return 0;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(scaling, "rope_type");
    if (!cJSON_IsString(type))
        type = cJSON_GetObjectItemCaseSensitive(scaling, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "linear") != 0)
        return 0;
    const cJSON *factor = cJSON_GetObjectItemCaseSensitive(scaling, "factor");
    if (!cJSON_IsNumber(factor) || !(factor->valuedouble > 0) || !isfinite(factor->valuedouble))
        return sol_fail(r->err, SOL_ERR_RUNTIME,
                        "%s: key \"rope_scaling.factor\" must be a positive, finite number for linear scaling",
                        r->origin);
    m->rope_scale = factor->valuedouble;
    return 0;
}

/* The name a path gives a config: "dir/Llama-3-8B/config.json" ->
 * "Llama-3-8B", "configs/tiny-llama.json" -> "tiny-llama"; a preset's
 * name (no slash, no .json) is itself. */
static void name_from_path(const char *origin, char *out, size_t cap)
{
    size_t n = strlen(origin);
    while (n > 1 && origin[n - 1] == '/')
        n--;
    size_t start = n;
    while (start > 0 && origin[start - 1] != '/')
        start--;
    size_t len = n - start;
    if (len == strlen("config.json") && !strncmp(origin + start, "config.json", len) && start > 1) {
        n = start - 1; /* the directory's name */
        start = n;
        while (start > 0 && origin[start - 1] != '/')
            start--;
        len = n - start;
    } else if (len > 5 && !strncmp(origin + n - 5, ".json", 5)) {
        len -= 5;
    }
    snprintf(out, cap, "%.*s", (int)len, origin + start);
}

/* The config's own name (sol presets: _sol.name; Hugging Face's save_pretrained:
 * _name_or_path), else the file's stem. */
static void read_display_name(const cJSON *root, const char *origin, sol_model *m)
{
    const cJSON *sol = cJSON_GetObjectItemCaseSensitive(root, "_sol");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(sol, "name");
    const cJSON *hf = cJSON_GetObjectItemCaseSensitive(root, "_name_or_path");
    if (cJSON_IsString(name) && name->valuestring[0])
        snprintf(m->name, sizeof m->name, "%s", name->valuestring);
    else if (cJSON_IsString(hf) && hf->valuestring[0])
        snprintf(m->name, sizeof m->name, "%s", hf->valuestring);
    else
        name_from_path(origin, m->name, sizeof m->name);
    if (!m->name[0])
        snprintf(m->name, sizeof m->name, "%s", origin);
    sol_printable(m->name); /* shown in headers and summaries */
}

int sol_model_from_hf_json(const char *text, const char *origin, sol_model *m, sol_err *err)
{
    memset(m, 0, sizeof *m);
    cJSON *doc = cJSON_Parse(text);
    if (!doc) {
        const char *at = cJSON_GetErrorPtr();
        long offset = at ? (long)(at - text) : -1;
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: invalid JSON near byte %ld", origin, offset);
    }
    int rc = 0;
    hf_reader r = {doc, origin, err};
    const hf_reader top = r;
    if (!cJSON_IsObject(doc)) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: expected a JSON object", origin);
        goto exit;
    }
    read_display_name(doc, origin, m);
    const char *model_type = read_string(&r, "model_type");
    if (!model_type) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: missing required key \"model_type\"", origin);
        goto exit;
    }
    /* Multimodal gemma3 nests the language model in text_config. */
    const cJSON *text_config = cJSON_GetObjectItemCaseSensitive(doc, "text_config");
    if (cJSON_IsObject(text_config)) {
        r.root = text_config;
        const char *inner = read_string(&r, "model_type");
        if (inner)
            model_type = inner;
    }
    bool tied_default = false;
    size_t n_known = sizeof known_archs / sizeof known_archs[0];
    size_t a = 0;
    for (; a < n_known; a++)
        if (strcmp(model_type, known_archs[a].model_type) == 0)
            break;
    sol_qbuf q;
    if (a == n_known) {
        rc = sol_fail(err, SOL_ERR_RUNTIME,
                      "%s: unknown architecture %s (known: llama, mistral, mixtral, qwen2, "
                      "gemma2, gemma3, phi3, deepseek_v2, deepseek_v3)",
                      origin, sol_quote_z(&q, model_type));
        goto exit;
    }
    snprintf(m->arch, sizeof m->arch, "%s", known_archs[a].arch);
    tied_default = known_archs[a].tied_default;

    if ((rc = read_int(&r, "hidden_size", 1, 1, 0, &m->hidden)) ||
        (rc = read_int(&r, "num_hidden_layers", 1, 1, 0, &m->n_layers)) ||
        (rc = read_int(&r, "num_attention_heads", 1, 1, 0, &m->n_heads)) ||
        (rc = read_int(&r, "num_key_value_heads", 0, 1, m->n_heads, &m->n_kv_heads)) ||
        (rc = check_head_split(&r, m)) ||
        (rc = read_int(&r, "head_dim", 0, 1, m->hidden / m->n_heads, &m->head_dim)) ||
        (rc = read_int(&r, "intermediate_size", 1, 1, 0, &m->ffn)) ||
        (rc = read_int(&r, "vocab_size", 1, 1, 0, &m->vocab)) ||
        (rc = read_int(&r, "max_position_embeddings", 0, 1, 4096, &m->ctx_max)) ||
        (rc = read_bool(&r, "tie_word_embeddings", tied_default, &m->tied_embeddings)) ||
        (rc = read_double(&r, "rope_theta", 10000.0, &m->rope_theta)) ||
        (rc = read_double(&r, "rms_norm_eps", 1e-6, &m->norm_eps)) ||
        (rc = read_weight_type(&r, &top, m)) || (rc = read_sliding_window(&r, m)) ||
        (rc = read_moe_mla(&r, m)) || (rc = read_routing(&r, m)) || (rc = read_gemma(&r, m)) ||
        (rc = read_rope_scaling(&r, m)))
        goto exit;
    /* tie_word_embeddings may sit at the top level of a multimodal config. */
    if (r.root != doc && !cJSON_GetObjectItemCaseSensitive(r.root, "tie_word_embeddings") &&
        (rc = read_bool(&top, "tie_word_embeddings", tied_default, &m->tied_embeddings)))
        goto exit;
    const char *act = read_string(&r, "hidden_activation");
    if (!act)
        act = read_string(&r, "hidden_act");
    m->act = act && strncmp(act, "gelu", 4) == 0 ? SOL_ACT_GELU : SOL_ACT_SILU;
    m->embed_type = m->output_type = m->wtype;
    m->qkv_bias = strcmp(m->arch, "qwen2") == 0;
    m->post_norms = strncmp(m->arch, "gemma", 5) == 0;
    m->qk_norm = strcmp(m->arch, "gemma3") == 0;
    m->fused_qkv = strcmp(m->arch, "phi3") == 0; /* how its GGUF files store the projections */
    rc = sol_model_validate(m, origin, err);
exit:
    cJSON_Delete(doc);
    return rc;
}
