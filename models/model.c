/* Finds and loads a model description: preset name, config.json (or a
 * directory holding one) or GGUF file; checks it is self-consistent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "models/models.h"
#include "models/safetensors.h"
#include "util/embedded.h"
#include "util/file.h"

extern const sol_embedded_file sol_embedded_presets[];

int sol_preset_count(void) { return sol_embedded_count(sol_embedded_presets); }

const char *sol_preset_name(int i) { return sol_embedded_presets[i].name; }

const char *sol_preset_json(const char *name) { return sol_embedded_find(sol_embedded_presets, name); }

/* A checkpoint directory: the weights' own dtype (by bytes of the layer
 * matrices) beats the config's torch_dtype. No safetensors: keep the config. */
static int weight_type_from_safetensors(const char *dir, sol_model *m, sol_err *err)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int present = stat(path, &st) == 0;
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (!present && stat(path, &st) != 0)
        return 0;
    sol_st_model *weights = NULL;
    int rc = sol_st_open(dir, &weights, err);
    if (rc)
        return rc;
    double bytes[SOL_DT_COUNT] = {0};
    for (int i = 0; i < sol_st_count(weights); i++) {
        const sol_st_tensor *t = sol_st_at(weights, i);
        if (t->n_dims == 2 && t->has_sol_dtype)
            bytes[t->dtype] += (double)t->n_bytes;
    }
    sol_st_close(weights);
    int best = -1;
    for (int t = 0; t < SOL_DT_COUNT; t++)
        if (bytes[t] > 0 && (best < 0 || bytes[t] > bytes[best]))
            best = t;
    if (best >= 0)
        m->wtype = m->embed_type = m->output_type = (sol_dtype)best;
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int sol_model_load(const char *spec, sol_model *m, sol_err *err)
{
    struct stat st;
    if (stat(spec, &st) != 0) {
        const char *json = sol_preset_json(spec);
        if (json)
            return sol_model_from_hf_json(json, spec, m, err);
        if (ends_with(spec, ".gguf") || ends_with(spec, ".json") || strchr(spec, '/'))
            return sol_fail(err, SOL_ERR_RUNTIME, "%s: %s", spec, strerror(errno));
        return sol_fail(err, SOL_ERR_USAGE,
                        "MODEL: \"%s\" is not a preset, file or directory (list presets with "
                        "`sol analyze --list-models`)",
                        spec);
    }
    char path[4096];
    if (S_ISDIR(st.st_mode))
        snprintf(path, sizeof path, "%s/config.json", spec);
    else
        snprintf(path, sizeof path, "%s", spec);
    if (ends_with(path, ".gguf"))
        return sol_model_from_gguf(path, m, err);

    /* Not named .gguf: sniff the magic so a renamed GGUF still loads. */
    FILE *f = sol_fopen_regular(path, err);
    if (!f)
        return SOL_ERR_RUNTIME;
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    if (got == 4 && memcmp(magic, "GGUF", 4) == 0)
        return sol_model_from_gguf(path, m, err);

    char *text = NULL;
    int rc = sol_read_text_file(path, 16u << 20, "config file", &text, err);
    if (rc == 0)
        rc = sol_model_from_hf_json(text, path, m, err);
    free(text);
    if (rc == 0 && S_ISDIR(st.st_mode))
        rc = weight_type_from_safetensors(spec, m, err);
    return rc;
}

int sol_model_check_routing(const sol_model *m, const char *origin, const sol_routing_keys *keys, sol_err *err)
{
    static const sol_routing_keys own = {"experts", "experts per token", "expert groups", "expert groups used"};
    if (!keys)
        keys = &own;
    int e = m->n_experts, k = m->n_experts_active, g = m->expert_groups, used = m->expert_groups_used;
    if (e <= 0)
        return 0;
    if (k < 1 || k > e)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: \"%s\" = %d is outside 1..%d (\"%s\")", origin, keys->used, k, e,
                        keys->experts);
    if (g < 1 || e % g != 0)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: \"%s\" = %d does not divide the %d experts (\"%s\")", origin,
                        keys->groups, g, e, keys->experts);
    if (used < 1 || used > g)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: \"%s\" = %d is outside 1..%d (\"%s\")", origin,
                        keys->groups_used, used, g, keys->groups);
    /* only the experts of the groups kept can be chosen */
    if (k > used * (e / g))
        return sol_fail(err, SOL_ERR_RUNTIME,
                        "%s: \"%s\" = %d is more than the %d experts of %d groups of %d (\"%s\" = %d)", origin,
                        keys->used, k, used * (e / g), used, e / g, keys->groups_used, used);
    return 0;
}

int sol_model_validate(const sol_model *m, const char *origin, sol_err *err)
{
    if (m->n_layers > SOL_MAX_LAYERS)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: %d layers is more than sol supports (%d)", origin,
                        m->n_layers, SOL_MAX_LAYERS);
    if (m->n_layers < 1 || m->hidden < 1 || m->n_heads < 1 || m->vocab < 1 || m->ffn < 1 ||
        m->head_dim < 1 || m->n_kv_heads < 1)
        return sol_fail(err, SOL_ERR_RUNTIME,
                        "%s: layers, hidden size, heads, KV heads, head_dim, FFN size and vocab must "
                        "all be positive",
                        origin);
    if (m->qk_rope_dim < 0 || m->qk_nope_dim < 0 || m->qk_rope_dim > m->head_dim)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: %d RoPE dims do not fit a key of %d", origin, m->qk_rope_dim,
                        m->head_dim);
    if (m->n_heads % m->n_kv_heads != 0)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: %d attention heads are not a multiple of %d KV heads",
                        origin, m->n_heads, m->n_kv_heads);
    int rc = sol_model_check_routing(m, origin, NULL, err);
    if (rc)
        return rc;
    if (m->n_experts > 0 && m->moe_ffn < 1)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: MoE model without an expert FFN size", origin);
    if (m->first_dense > m->n_layers)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: first_k_dense_replace %d exceeds %d layers", origin,
                        m->first_dense, m->n_layers);
    if (m->sliding_window > 0 && (m->swa_period < 1 || m->swa_period > m->n_layers))
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: sliding-window pattern period %d outside 1..%d",
                        origin, m->swa_period, m->n_layers);
    return 0;
}
