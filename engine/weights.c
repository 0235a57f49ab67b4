/* Tensor binding and checks (see weights.h). GGUF dims[0] is the
 * contiguous one: a projection from K to N features is stored as N rows of
 * K elements, dims = {K, N}. */
#include "engine/weights.h"
#include "engine/weights_bind.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/formats.h"
#include "util/quote.h"

static const sol_gguf_tensor *find(const sol_gguf *g, const char *name, int required, sol_err *err, int *rc)
{
    const sol_gguf_tensor *t = sol_gguf_find_tensor(g, name);
    if (!t && required)
        *rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: missing tensor \"%s\"", g->path, name);
    return t;
}

/* A matrix type the backend computes with (caps), or, for vectors (caps
 * NULL), one the host converts to f32. */
static int check_type(const sol_gguf *g, const sol_gguf_tensor *t, const sol_backend_caps *caps, sol_dtype *type,
                      sol_err *err)
{
    char buf[32];
    sol_qbuf q;
    if (sol_dtype_from_ggml(t->ggml_type, type) != 0 || !sol_format_supported(*type) ||
        (caps && !sol_caps_has(caps->weight_types, *type)))
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: unsupported tensor type %s in %s", g->path,
                        sol_ggml_type_name(t->ggml_type, buf, sizeof buf), sol_quote(&q, t->name.ptr, t->name.len));
    return 0;
}

int sol_bind_matrix(const sol_gguf *g, const sol_backend_caps *caps, const char *name, int64_t rows, int64_t cols,
                       sol_weight_view *out, sol_err *err)
{
    int rc = 0;
    const sol_gguf_tensor *t = find(g, name, 1, err, &rc);
    if (!t)
        return rc;
    if (t->n_dims != 2 || (int64_t)t->dims[0] != cols || (int64_t)t->dims[1] != rows)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: tensor \"%s\" has shape [%llu, %llu], expected [%lld, %lld]",
                        g->path, name, (unsigned long long)t->dims[0],
                        (unsigned long long)(t->n_dims > 1 ? t->dims[1] : 1), (long long)cols, (long long)rows);
    if ((rc = check_type(g, t, caps, &out->type, err)))
        return rc;
    out->data = t->data;
    out->rows = rows;
    out->cols = cols;
    out->row_bytes = sol_row_bytes(out->type, cols);
    return 0;
}

int sol_bind_experts(const sol_gguf *g, const sol_backend_caps *caps, const char *name, int n_experts, int64_t rows,
                     int64_t cols, sol_weight_view *out, sol_err *err)
{
    int rc = 0;
    const sol_gguf_tensor *t = find(g, name, 1, err, &rc);
    if (!t)
        return rc;
    if (t->n_dims != 3 || (int64_t)t->dims[0] != cols || (int64_t)t->dims[1] != rows ||
        (int64_t)t->dims[2] != n_experts)
        return sol_fail(err, SOL_ERR_RUNTIME,
                        "%s: tensor \"%s\" has shape [%llu, %llu, %llu], expected [%lld, %lld, %d] (expert_count %d)",
                        g->path, name, (unsigned long long)t->dims[0], (unsigned long long)(t->n_dims > 1 ? t->dims[1] : 1),
                        (unsigned long long)(t->n_dims > 2 ? t->dims[2] : 1), (long long)cols, (long long)rows,
                        n_experts, n_experts);
    if ((rc = check_type(g, t, caps, &out->type, err)))
        return rc;
    out->data = t->data;
    out->rows = rows * n_experts;
    out->cols = cols;
    out->row_bytes = sol_row_bytes(out->type, cols);
    return 0;
}

int sol_bind_vector(const sol_gguf *g, const char *name, int64_t n, int required, float **out, sol_err *err)
{
    int rc = 0;
    *out = NULL;
    const sol_gguf_tensor *t = find(g, name, required, err, &rc);
    if (!t)
        return rc;
    sol_dtype type;
    if (t->n_elems != (uint64_t)n)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: tensor \"%s\" has %llu elements, expected %lld", g->path, name,
                        (unsigned long long)t->n_elems, (long long)n);
    if ((rc = check_type(g, t, NULL, &type, err)))
        return rc;
    if (!(*out = malloc((size_t)n * sizeof **out)))
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    sol_dequantize(type, t->data, *out, n);
    return 0;
}

/* theta^(-2i/d) per pair, divided by a linear scaling factor and by
 * per-dimension factors (NULL: none); NULL when out of memory. */
static float *rope_frequencies(double theta, int dims, double factor, const float *freq_factors)
{
    float *inv_freq = malloc((size_t)(dims / 2) * sizeof *inv_freq);
    for (int i = 0; inv_freq && i < dims / 2; i++) {
        double inv = pow(theta, -2.0 * i / (double)dims) / factor;
        inv_freq[i] = (float)(freq_factors ? inv / freq_factors[i] : inv);
    }
    return inv_freq;
}

/* "ARCH.suffix" with the file's own general.architecture (a Mixtral file
 * says llama, a DeepSeek one deepseek2: not the family's name). */
static void arch_key(const sol_gguf *g, const char *suffix, char *out, size_t cap)
{
    sol_gguf_str arch = {0};
    if (sol_gguf_get_str(g, "general.architecture", &arch, NULL) != 0)
        arch.len = 0;
    snprintf(out, cap, "%.*s.%s", (int)(arch.len > 60 ? 60 : arch.len), arch.ptr ? arch.ptr : "", suffix);
}

/* RoPE: the frequencies divided by a linear scaling factor and by
 * per-dimension factors when the file carries rope_freqs (Llama 3.1). */
static int bind_rope(const sol_gguf *g, const sol_model *m, sol_model_weights *w, sol_err *err)
{
    char key[96];
    int64_t dims = m->head_dim;
    arch_key(g, "rope.dimension_count", key, sizeof key);
    int rc = sol_gguf_get_i64(g, key, &dims, err);
    if (rc > 0)
        return rc;
    if (dims < 2 || dims > m->head_dim || dims % 2)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: %s = %lld is not an even size <= head_dim %d", g->path, key,
                        (long long)dims, m->head_dim);
    double factor = 1;
    sol_gguf_str type;
    arch_key(g, "rope.scaling.type", key, sizeof key);
    if (sol_gguf_get_str(g, key, &type, NULL) == 0 && !sol_gguf_str_eq(type, "none")) {
        if (!sol_gguf_str_eq(type, "linear"))
            return sol_fail(err, SOL_ERR_RUNTIME, "%s: RoPE scaling %s is not supported (linear only)", g->path,
                            sol_quote(&(sol_qbuf){0}, type.ptr, type.len));
        arch_key(g, "rope.scaling.factor", key, sizeof key);
        if ((rc = sol_gguf_get_f64(g, key, &factor, err)) > 0)
            return rc;
        if (!(factor > 0))
            return sol_fail(err, SOL_ERR_RUNTIME, "%s: %s must be positive", g->path, key);
    }
    float *freq_factors = NULL;
    if ((rc = sol_bind_vector(g, "rope_freqs.weight", dims / 2, 0, &freq_factors, err)))
        return rc;
    w->rope_inv_freq = rope_frequencies(m->rope_theta, (int)dims, factor, freq_factors);
    if (m->rope_theta_local > 0) /* Gemma-3's local layers: their own base, never scaled */
        w->rope_local_inv_freq = rope_frequencies(m->rope_theta_local, (int)dims, 1, NULL);
    free(freq_factors);
    if (!w->rope_inv_freq || (m->rope_theta_local > 0 && !w->rope_local_inv_freq))
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    /* llama.cpp's converter permutes llama (and deepseek2) Q/K rows to
     * rotate adjacent pairs; the others keep HF's half-split ("neox") layout. */
    int neox = !strcmp(m->arch, "qwen2") || !strncmp(m->arch, "gemma", 5) || !strcmp(m->arch, "phi3");
    w->rope = (sol_rope){.dims = (int)dims, .neox = neox, .inv_freq = w->rope_inv_freq};
    w->rope_q_mla = w->rope;
    w->rope_q_mla.offset = m->kv_lora_rank > 0 ? m->qk_nope_dim : 0;
    w->rope_local = w->rope;
    w->rope_local.inv_freq = w->rope_local_inv_freq;
    return 0;
}

int sol_weights_bind(const sol_gguf *g, const sol_model *m, const sol_backend_caps *caps, sol_model_weights *w,
                     sol_err *err)
{
    memset(w, 0, sizeof *w);
    int rc;
    w->layers = calloc((size_t)m->n_layers, sizeof *w->layers);
    if (!w->layers)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    w->n_layers = m->n_layers;
    if ((rc = sol_bind_matrix(g, caps, "token_embd.weight", m->vocab, m->hidden, &w->token_embd, err)) ||
        (rc = sol_bind_vector(g, "output_norm.weight", m->hidden, 1, &w->output_norm, err)))
        goto fail;
    if (sol_gguf_find_tensor(g, "output.weight"))
        rc = sol_bind_matrix(g, caps, "output.weight", m->vocab, m->hidden, &w->output, err);
    else
        w->output = w->token_embd; /* tied embeddings */
    if (rc || (rc = bind_rope(g, m, w, err)))
        goto fail;
    for (int i = 0; i < m->n_layers; i++)
        if ((rc = sol_bind_layer(g, m, caps, i, &w->layers[i], err)))
            goto fail;
    return 0;
fail:
    sol_weights_free(w);
    return rc;
}

/* Pointers to every vector slot of a layer. */
static void layer_vectors(sol_layer_weights *l, float **out[SOL_LAYER_VECTORS])
{
    float **slot[SOL_LAYER_VECTORS] = {&l->attn_norm, &l->ffn_norm,  &l->bq,          &l->bk,
                                       &l->bv,        &l->kv_a_norm, &l->q_a_norm,    &l->exp_bias,
                                       &l->post_attn_norm, &l->post_ffn_norm, &l->q_norm, &l->k_norm};
    memcpy(out, slot, sizeof slot);
}

/* Their lengths in floats, in layer_vectors' order. */
static void layer_vector_lengths(const sol_model *m, int64_t len[SOL_LAYER_VECTORS])
{
    int64_t q_rows = (int64_t)m->n_heads * m->head_dim, kv_rows = (int64_t)m->n_kv_heads * m->head_dim;
    int64_t n[SOL_LAYER_VECTORS] = {m->hidden,      m->hidden,    q_rows,    kv_rows,   kv_rows,     m->kv_lora_rank,
                                    m->q_lora_rank, m->n_experts, m->hidden, m->hidden, m->head_dim, m->head_dim};
    memcpy(len, n, sizeof n);
}

/* Every vector of w (norm weights, biases, RoPE frequencies), with its
 * length in floats; returns how many (at most cap). */
static int vectors(sol_model_weights *w, float **out[], int64_t len[], int cap, const sol_model *m)
{
    int n = 0;
    float **slot[SOL_LAYER_VECTORS];
    int64_t elems[SOL_LAYER_VECTORS];
    float **model_slots[] = {&w->output_norm, &w->rope_inv_freq, &w->rope_local_inv_freq};
    int64_t model_elems[] = {m->hidden, w->rope.dims / 2, w->rope.dims / 2};
    for (int j = 0; j < 3 && n < cap; j++, n++) {
        out[n] = model_slots[j];
        len[n] = model_elems[j];
    }
    layer_vector_lengths(m, elems);
    for (int i = 0; i < w->n_layers; i++) {
        layer_vectors(&w->layers[i], slot);
        for (int j = 0; j < SOL_LAYER_VECTORS && n < cap; j++, n++) {
            out[n] = slot[j];
            len[n] = elems[j];
        }
    }
    return n;
}

void sol_layer_matrices(sol_layer_weights *l, sol_weight_view *out[SOL_LAYER_MATRICES])
{
    sol_weight_view *v[SOL_LAYER_MATRICES] = {&l->wq,     &l->wk,       &l->wv,       &l->wo,      &l->gate,
                                              &l->up,     &l->down,     &l->kv_a,     &l->q_absorb, &l->v_absorb,
                                              &l->q_a,    &l->q_b,      &l->router,   &l->exp_gate, &l->exp_up,
                                              &l->exp_down, &l->sh_gate, &l->sh_up,   &l->sh_down};
    memcpy(out, v, sizeof v);
}

static int place_matrices(sol_backend *be, sol_model_weights *w, sol_err *err)
{
    int cap = 2 + SOL_LAYER_MATRICES * w->n_layers, n = 0;
    sol_weight_view **views = malloc((size_t)cap * sizeof *views);
    if (!views)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    views[n++] = &w->token_embd;
    views[n++] = &w->output; /* tied: the same data, placed once */
    for (int i = 0; i < w->n_layers; i++) {
        sol_weight_view *v[SOL_LAYER_MATRICES];
        sol_layer_matrices(&w->layers[i], v);
        for (int j = 0; j < SOL_LAYER_MATRICES; j++)
            if (v[j]->data) /* each family binds some of them */
                views[n++] = v[j];
    }
    int rc = be->load_weights(be, views, n, &w->placed_handle, err);
    free(views);
    return rc;
}

/* Vector i moved to backend memory (NULL after a failure). */
static int place_vector(sol_backend *be, float **slot, int64_t len, sol_err *err)
{
    float *host = *slot;
    void *dev = NULL;
    size_t bytes = (size_t)len * sizeof(float);
    *slot = NULL;
    int rc = be->alloc(be, bytes, &dev, err);
    if (!rc && (rc = be->upload(be, dev, host, bytes, err)))
        be->free(be, dev);
    if (!rc)
        *slot = dev;
    free(host);
    return rc;
}

int sol_weights_place(sol_backend *be, const sol_model *m, sol_model_weights *w, sol_err *err)
{
    int cap = 3 + SOL_LAYER_VECTORS * w->n_layers;
    float ***vec = malloc((size_t)cap * sizeof *vec);
    int64_t *len = malloc((size_t)cap * sizeof *len);
    int rc = vec && len ? 0 : sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    int n = rc ? 0 : vectors(w, vec, len, cap, m);
    /* from here every vector slot holds backend memory or NULL */
    w->placed = be;
    for (int i = 0; i < n; i++) {
        if (!*vec[i])
            continue;
        if (rc) { /* after a failure the rest is dropped */
            free(*vec[i]);
            *vec[i] = NULL;
        } else {
            rc = place_vector(be, vec[i], len[i], err);
        }
    }
    w->rope.inv_freq = w->rope_q_mla.inv_freq = w->rope_inv_freq;
    w->rope_local.inv_freq = w->rope_local_inv_freq;
    if (!rc)
        rc = place_matrices(be, w, err);
    free(vec);
    free(len);
    return rc;
}

/* Frees a vector wherever it lives. */
static void free_vector(sol_backend *be, float *p)
{
    if (be)
        be->free(be, p);
    else
        free(p);
}

void sol_weights_free(sol_model_weights *w)
{
    sol_backend *be = w->placed;
    for (int i = 0; w->layers && i < w->n_layers; i++) {
        sol_layer_weights *l = &w->layers[i];
        float **slot[SOL_LAYER_VECTORS];
        layer_vectors(l, slot);
        for (int j = 0; j < SOL_LAYER_VECTORS; j++)
            free_vector(be, *slot[j]);
        free(l->absorb_host);
    }
    free_vector(be, w->output_norm);
    free_vector(be, w->rope_inv_freq);
    free_vector(be, w->rope_local_inv_freq);
    if (be && w->placed_handle)
        be->free(be, w->placed_handle);
    free(w->layers);
    memset(w, 0, sizeof *w);
}
