/* Tensor binding and checks (see weights.h). GGUF dims[0] is the
 * contiguous one: a projection from K to N features is stored as N rows of
 * K elements, dims = {K, N}. */
#include "engine/weights.h"

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

/* A rows x cols matrix. */
static int bind_matrix(const sol_gguf *g, const sol_backend_caps *caps, const char *name, int64_t rows, int64_t cols,
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

/* A vector of n elements copied to f32; absent and optional gives NULL. */
static int bind_vector(const sol_gguf *g, const char *name, int64_t n, int required, float **out, sol_err *err)
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

/* MLA's absorbed matrices from kv_b (rows per head: nope of W_UK, then dv
 * of W_UV; rank columns), as f32 host arrays the views point at. */
static int build_absorbed(const sol_model *m, const sol_weight_view *kv_b, sol_layer_weights *l, sol_err *err)
{
    int64_t heads = m->n_heads, rank = m->kv_lora_rank, rope = m->qk_rope_dim, nope = m->qk_nope_dim;
    int64_t dv = m->v_head_dim, dk = nope + rope, lat = rank + rope;
    size_t aug = (size_t)(heads * lat * dk), uv = (size_t)(heads * dv * rank);
    float *host = calloc(aug + uv, sizeof *host), *row = malloc((size_t)rank * sizeof *row);
    if (!host || !row) {
        free(host);
        free(row);
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    }
    float s = sqrtf((float)lat / (float)dk);
    for (int64_t h = 0; h < heads; h++) {
        float *a = host + (size_t)(h * lat * dk), *u = host + aug + (size_t)(h * dv * rank);
        for (int64_t i = 0; i < nope + dv; i++) {
            sol_dequantize(kv_b->type, (const char *)kv_b->data + (size_t)(h * (nope + dv) + i) * kv_b->row_bytes,
                           row, rank);
            for (int64_t j = 0; j < rank; j++) {
                if (i < nope)
                    a[j * dk + i] = row[j] * s; /* W_UK^T */
                else
                    u[(i - nope) * rank + j] = row[j];
            }
        }
        for (int64_t r = 0; r < rope; r++) /* the RoPE part passes through */
            a[(rank + r) * dk + nope + r] = s;
    }
    free(row);
    l->absorb_host = host;
    l->q_absorb = (sol_weight_view){SOL_DT_F32, host, heads * lat, dk, (size_t)dk * sizeof(float)};
    l->v_absorb = (sol_weight_view){SOL_DT_F32, host + aug, heads * dv, rank, (size_t)rank * sizeof(float)};
    return 0;
}

/* An MLA layer's attention: q, the latent + RoPE key, its norm, kv_b
 * folded (build_absorbed), the output. */
static int bind_latent(const sol_gguf *g, const sol_model *m, const sol_backend_caps *caps, int i,
                       sol_layer_weights *l, sol_err *err)
{
    char name[96];
    int64_t h = m->hidden, heads = m->n_heads, rank = m->kv_lora_rank, dv = m->v_head_dim;
    int64_t dk = m->qk_nope_dim + m->qk_rope_dim;
    sol_weight_view kv_b;
    int rc;
#define NAME(suffix) (snprintf(name, sizeof name, "blk.%d." suffix, i), name)
    if ((rc = bind_matrix(g, caps, NAME("attn_q.weight"), heads * dk, h, &l->wq, err)) ||
        (rc = bind_matrix(g, caps, NAME("attn_kv_a_mqa.weight"), rank + m->qk_rope_dim, h, &l->kv_a, err)) ||
        (rc = bind_vector(g, NAME("attn_kv_a_norm.weight"), rank, 1, &l->kv_a_norm, err)) ||
        (rc = bind_matrix(g, caps, NAME("attn_kv_b.weight"), heads * (m->qk_nope_dim + dv), rank, &kv_b, err)) ||
        (rc = bind_matrix(g, caps, NAME("attn_output.weight"), h, heads * dv, &l->wo, err)))
        return rc;
#undef NAME
    return build_absorbed(m, &kv_b, l, err);
}

static int bind_layer(const sol_gguf *g, const sol_model *m, const sol_backend_caps *caps, int i, sol_layer_weights *l,
                      sol_err *err)
{
    char name[96];
    int64_t h = m->hidden, dh = m->head_dim, q_rows = (int64_t)m->n_heads * dh, kv_rows = (int64_t)m->n_kv_heads * dh;
    int rc;
#define NAME(suffix) (snprintf(name, sizeof name, "blk.%d." suffix, i), name)
    if ((rc = bind_vector(g, NAME("attn_norm.weight"), h, 1, &l->attn_norm, err)))
        return rc;
    if (m->kv_lora_rank > 0)
        rc = bind_latent(g, m, caps, i, l, err);
    else if ((rc = bind_matrix(g, caps, NAME("attn_q.weight"), q_rows, h, &l->wq, err)) ||
        (rc = bind_matrix(g, caps, NAME("attn_k.weight"), kv_rows, h, &l->wk, err)) ||
        (rc = bind_matrix(g, caps, NAME("attn_v.weight"), kv_rows, h, &l->wv, err)) ||
        (rc = bind_matrix(g, caps, NAME("attn_output.weight"), h, q_rows, &l->wo, err)) ||
        (rc = bind_vector(g, NAME("attn_q.bias"), q_rows, 0, &l->bq, err)) ||
        (rc = bind_vector(g, NAME("attn_k.bias"), kv_rows, 0, &l->bk, err)) ||
        (rc = bind_vector(g, NAME("attn_v.bias"), kv_rows, 0, &l->bv, err)))
        return rc;
    if (rc || (rc = bind_vector(g, NAME("ffn_norm.weight"), h, 1, &l->ffn_norm, err)) ||
        (rc = bind_matrix(g, caps, NAME("ffn_gate.weight"), m->ffn, h, &l->gate, err)) ||
        (rc = bind_matrix(g, caps, NAME("ffn_up.weight"), m->ffn, h, &l->up, err)) ||
        (rc = bind_matrix(g, caps, NAME("ffn_down.weight"), h, m->ffn, &l->down, err)))
        return rc;
#undef NAME
    return 0;
}

/* RoPE: theta^(-2i/d) per pair, divided by a linear scaling factor and by
 * per-dimension factors when the file carries rope_freqs (Llama 3.1). */
static int bind_rope(const sol_gguf *g, const sol_model *m, sol_model_weights *w, sol_err *err)
{
    char key[96];
    int64_t dims = m->head_dim;
    snprintf(key, sizeof key, "%s.rope.dimension_count", m->arch);
    int rc = sol_gguf_get_i64(g, key, &dims, err);
    if (rc > 0)
        return rc;
    if (dims < 2 || dims > m->head_dim || dims % 2)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: %s = %lld is not an even size <= head_dim %d", g->path, key,
                        (long long)dims, m->head_dim);
    double factor = 1;
    sol_gguf_str type;
    snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch);
    if (sol_gguf_get_str(g, key, &type, NULL) == 0 && !sol_gguf_str_eq(type, "none")) {
        if (!sol_gguf_str_eq(type, "linear"))
            return sol_fail(err, SOL_ERR_RUNTIME, "%s: RoPE scaling %s is not supported (linear only)", g->path,
                            sol_quote(&(sol_qbuf){0}, type.ptr, type.len));
        snprintf(key, sizeof key, "%s.rope.scaling.factor", m->arch);
        if ((rc = sol_gguf_get_f64(g, key, &factor, err)) > 0)
            return rc;
        if (!(factor > 0))
            return sol_fail(err, SOL_ERR_RUNTIME, "%s: %s must be positive", g->path, key);
    }
    float *freq_factors = NULL;
    if ((rc = bind_vector(g, "rope_freqs.weight", dims / 2, 0, &freq_factors, err)))
        return rc;
    w->rope_inv_freq = malloc((size_t)(dims / 2) * sizeof *w->rope_inv_freq);
    if (!w->rope_inv_freq) {
        free(freq_factors);
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    }
    for (int i = 0; i < dims / 2; i++) {
        double inv = pow(m->rope_theta, -2.0 * i / (double)dims) / factor;
        w->rope_inv_freq[i] = (float)(freq_factors ? inv / freq_factors[i] : inv);
    }
    free(freq_factors);
    /* llama.cpp's converter permutes llama Q/K rows to rotate adjacent
     * pairs; qwen2 keeps HF's half-split ("neox") layout. */
    w->rope = (sol_rope){.dims = (int)dims, .neox = strcmp(m->arch, "qwen2") == 0, .inv_freq = w->rope_inv_freq};
    w->rope_q_mla = w->rope;
    w->rope_q_mla.offset = m->kv_lora_rank > 0 ? m->qk_nope_dim : 0;
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
    if ((rc = bind_matrix(g, caps, "token_embd.weight", m->vocab, m->hidden, &w->token_embd, err)) ||
        (rc = bind_vector(g, "output_norm.weight", m->hidden, 1, &w->output_norm, err)))
        goto fail;
    if (sol_gguf_find_tensor(g, "output.weight"))
        rc = bind_matrix(g, caps, "output.weight", m->vocab, m->hidden, &w->output, err);
    else
        w->output = w->token_embd; /* tied embeddings */
    if (rc || (rc = bind_rope(g, m, w, err)))
        goto fail;
    for (int i = 0; i < m->n_layers; i++)
        if ((rc = bind_layer(g, m, caps, i, &w->layers[i], err)))
            goto fail;
    return 0;
fail:
    sol_weights_free(w);
    return rc;
}

/* Every vector of w (norm weights, biases, RoPE frequencies), with its
 * length in floats; returns how many (at most cap). */
static int vectors(sol_model_weights *w, float **out[], int64_t len[], int cap, const sol_model *m)
{
    int n = 0;
#define VEC(p, elems)                                                                                          \
    do {                                                                                                       \
        if (n < cap) {                                                                                         \
            out[n] = &(p);                                                                                     \
            len[n++] = (elems);                                                                                \
        }                                                                                                      \
    } while (0)
    int64_t q_rows = (int64_t)m->n_heads * m->head_dim, kv_rows = (int64_t)m->n_kv_heads * m->head_dim;
    VEC(w->output_norm, m->hidden);
    VEC(w->rope_inv_freq, w->rope.dims / 2);
    for (int i = 0; i < w->n_layers; i++) {
        sol_layer_weights *l = &w->layers[i];
        VEC(l->attn_norm, m->hidden);
        VEC(l->ffn_norm, m->hidden);
        VEC(l->bq, q_rows);
        VEC(l->bk, kv_rows);
        VEC(l->bv, kv_rows);
        VEC(l->kv_a_norm, m->kv_lora_rank);
    }
#undef VEC
    return n;
}

enum { VECTORS_PER_LAYER = 6, MATRICES_PER_LAYER = 10 };

static int place_matrices(sol_backend *be, sol_model_weights *w, sol_err *err)
{
    int cap = 2 + MATRICES_PER_LAYER * w->n_layers, n = 0;
    sol_weight_view **views = malloc((size_t)cap * sizeof *views);
    if (!views)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    views[n++] = &w->token_embd;
    views[n++] = &w->output; /* tied: the same data, placed once */
    for (int i = 0; i < w->n_layers; i++) {
        sol_layer_weights *l = &w->layers[i];
        sol_weight_view *v[] = {&l->wq, &l->wk,   &l->wv,       &l->wo,      &l->gate,
                                &l->up, &l->down, &l->kv_a, &l->q_absorb, &l->v_absorb};
        for (int j = 0; j < MATRICES_PER_LAYER; j++)
            if (v[j]->data) /* an MLA layer has no wk, wv; others no kv_a, absorbed */
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
    int cap = 2 + VECTORS_PER_LAYER * w->n_layers;
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
        float *v[VECTORS_PER_LAYER] = {l->attn_norm, l->ffn_norm, l->bq, l->bk, l->bv, l->kv_a_norm};
        for (int j = 0; j < VECTORS_PER_LAYER; j++)
            free_vector(be, v[j]);
        free(l->absorb_host);
    }
    free_vector(be, w->output_norm);
    free_vector(be, w->rope_inv_freq);
    if (be && w->placed_handle)
        be->free(be, w->placed_handle);
    free(w->layers);
    memset(w, 0, sizeof *w);
}
