/* Each layer's tensors as its family stores them (docs/FAMILIES.md):
 * standard or fused (Phi-3) q/k/v, MLA with an optional low-rank query
 * (DeepSeek), Gemma's extra norms, dense, fused or MoE feed-forward. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/weights_bind.h"
#include "kernels/formats.h"

#define NAME(suffix) (snprintf(name, sizeof name, "blk.%d." suffix, i), name)

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

/* Rows first .. first + rows - 1 of a matrix (a fused tensor's part). */
static sol_weight_view slice_rows(const sol_weight_view *full, int64_t first, int64_t rows)
{
    sol_weight_view v = *full;
    v.data = (const char *)full->data + (size_t)first * full->row_bytes;
    v.rows = rows;
    return v;
}

/* An MLA layer's attention: the query (plain, or DeepSeek's low-rank
 * q_a -> norm -> q_b), the latent + RoPE key, its norm, kv_b folded
 * (build_absorbed), the output. */
static int bind_latent(const sol_gguf *g, const sol_model *m, const sol_backend_caps *caps, int i,
                       sol_layer_weights *l, sol_err *err)
{
    char name[96];
    int64_t h = m->hidden, heads = m->n_heads, rank = m->kv_lora_rank, dv = m->v_head_dim;
    int64_t dk = m->qk_nope_dim + m->qk_rope_dim, ql = m->q_lora_rank;
    sol_weight_view kv_b;
    int rc = 0;
    if (ql > 0 && ((rc = sol_bind_matrix(g, caps, NAME("attn_q_a.weight"), ql, h, &l->q_a, err)) ||
                   (rc = sol_bind_vector(g, NAME("attn_q_a_norm.weight"), ql, 1, &l->q_a_norm, err)) ||
                   (rc = sol_bind_matrix(g, caps, NAME("attn_q_b.weight"), heads * dk, ql, &l->q_b, err))))
        return rc;
    if (ql == 0 && (rc = sol_bind_matrix(g, caps, NAME("attn_q.weight"), heads * dk, h, &l->wq, err)))
        return rc;
    if ((rc = sol_bind_matrix(g, caps, NAME("attn_kv_a_mqa.weight"), rank + m->qk_rope_dim, h, &l->kv_a, err)) ||
        (rc = sol_bind_vector(g, NAME("attn_kv_a_norm.weight"), rank, 1, &l->kv_a_norm, err)) ||
        (rc = sol_bind_matrix(g, caps, NAME("attn_kv_b.weight"), heads * (m->qk_nope_dim + dv), rank, &kv_b, err)) ||
        (rc = sol_bind_matrix(g, caps, NAME("attn_output.weight"), h, heads * dv, &l->wo, err)))
        return rc;
    return build_absorbed(m, &kv_b, l, err);
}

/* q, k, v: three tensors, or Phi-3's attn_qkv cut into its three parts. */
static int bind_qkv(const sol_gguf *g, const sol_model *m, const sol_backend_caps *caps, int i, sol_layer_weights *l,
                    sol_err *err)
{
    char name[96];
    int64_t h = m->hidden, dh = m->head_dim, q_rows = (int64_t)m->n_heads * dh, kv_rows = (int64_t)m->n_kv_heads * dh;
    if (m->fused_qkv) {
        sol_weight_view qkv;
        int rc = sol_bind_matrix(g, caps, NAME("attn_qkv.weight"), q_rows + 2 * kv_rows, h, &qkv, err);
        if (rc)
            return rc;
        l->wq = slice_rows(&qkv, 0, q_rows);
        l->wk = slice_rows(&qkv, q_rows, kv_rows);
        l->wv = slice_rows(&qkv, q_rows + kv_rows, kv_rows);
        return 0;
    }
    int rc = 0;
    if ((rc = sol_bind_matrix(g, caps, NAME("attn_q.weight"), q_rows, h, &l->wq, err)) ||
        (rc = sol_bind_matrix(g, caps, NAME("attn_k.weight"), kv_rows, h, &l->wk, err)) ||
        (rc = sol_bind_matrix(g, caps, NAME("attn_v.weight"), kv_rows, h, &l->wv, err)) ||
        (rc = sol_bind_vector(g, NAME("attn_q.bias"), q_rows, 0, &l->bq, err)) ||
        (rc = sol_bind_vector(g, NAME("attn_k.bias"), kv_rows, 0, &l->bk, err)) ||
        (rc = sol_bind_vector(g, NAME("attn_v.bias"), kv_rows, 0, &l->bv, err)))
        return rc;
    return 0;
}

static int bind_attention(const sol_gguf *g, const sol_model *m, const sol_backend_caps *caps, int i,
                          sol_layer_weights *l, sol_err *err)
{
    char name[96];
    int64_t h = m->hidden, q_rows = (int64_t)m->n_heads * m->head_dim;
    if (m->kv_lora_rank > 0)
        return bind_latent(g, m, caps, i, l, err);
    int rc = bind_qkv(g, m, caps, i, l, err);
    if (rc || (rc = sol_bind_matrix(g, caps, NAME("attn_output.weight"), h, q_rows, &l->wo, err)))
        return rc;
    if (m->qk_norm && ((rc = sol_bind_vector(g, NAME("attn_q_norm.weight"), m->head_dim, 1, &l->q_norm, err)) ||
                       (rc = sol_bind_vector(g, NAME("attn_k_norm.weight"), m->head_dim, 1, &l->k_norm, err))))
        return rc;
    return 0;
}

/* A dense SwiGLU/GeGLU block: gate, up, down (Phi-3: gate and up are the
 * halves of one ffn_up). */
static int bind_dense_ffn(const sol_gguf *g, const sol_model *m, const sol_backend_caps *caps, int i,
                          sol_layer_weights *l, sol_err *err)
{
    char name[96];
    int64_t h = m->hidden, f = m->ffn;
    int rc;
    if (m->fused_qkv) {
        sol_weight_view gate_up;
        if ((rc = sol_bind_matrix(g, caps, NAME("ffn_up.weight"), 2 * f, h, &gate_up, err)))
            return rc;
        l->gate = slice_rows(&gate_up, 0, f);
        l->up = slice_rows(&gate_up, f, f);
    } else if ((rc = sol_bind_matrix(g, caps, NAME("ffn_gate.weight"), f, h, &l->gate, err)) ||
               (rc = sol_bind_matrix(g, caps, NAME("ffn_up.weight"), f, h, &l->up, err))) {
        return rc;
    }
    return sol_bind_matrix(g, caps, NAME("ffn_down.weight"), h, f, &l->down, err);
}

/* A MoE layer: the router (and V3's selection bias), the experts' 3-D
 * tensors, the shared expert when the model has one. */
static int bind_moe_ffn(const sol_gguf *g, const sol_model *m, const sol_backend_caps *caps, int i,
                        sol_layer_weights *l, sol_err *err)
{
    char name[96];
    int64_t h = m->hidden, f = m->moe_ffn, shared = (int64_t)m->n_shared_experts * m->moe_ffn;
    int e = m->n_experts, rc;
    if ((rc = sol_bind_matrix(g, caps, NAME("ffn_gate_inp.weight"), e, h, &l->router, err)) ||
        (rc = sol_bind_vector(g, NAME("exp_probs_b.bias"), e, m->expert_bias, &l->exp_bias, err)) ||
        (rc = sol_bind_experts(g, caps, NAME("ffn_gate_exps.weight"), e, f, h, &l->exp_gate, err)) ||
        (rc = sol_bind_experts(g, caps, NAME("ffn_up_exps.weight"), e, f, h, &l->exp_up, err)) ||
        (rc = sol_bind_experts(g, caps, NAME("ffn_down_exps.weight"), e, h, f, &l->exp_down, err)))
        return rc;
    if (shared > 0 && ((rc = sol_bind_matrix(g, caps, NAME("ffn_gate_shexp.weight"), shared, h, &l->sh_gate, err)) ||
                       (rc = sol_bind_matrix(g, caps, NAME("ffn_up_shexp.weight"), shared, h, &l->sh_up, err)) ||
                       (rc = sol_bind_matrix(g, caps, NAME("ffn_down_shexp.weight"), h, shared, &l->sh_down, err))))
        return rc;
    return 0;
}

int sol_bind_layer(const sol_gguf *g, const sol_model *m, const sol_backend_caps *caps, int i, sol_layer_weights *l,
                   sol_err *err)
{
    char name[96];
    int64_t h = m->hidden;
    int rc;
    if ((rc = sol_bind_vector(g, NAME("attn_norm.weight"), h, 1, &l->attn_norm, err)) ||
        (rc = bind_attention(g, m, caps, i, l, err)) ||
        (rc = sol_bind_vector(g, NAME("ffn_norm.weight"), h, 1, &l->ffn_norm, err)))
        return rc;
    if (m->post_norms && ((rc = sol_bind_vector(g, NAME("post_attention_norm.weight"), h, 1, &l->post_attn_norm, err)) ||
                          (rc = sol_bind_vector(g, NAME("post_ffw_norm.weight"), h, 1, &l->post_ffn_norm, err))))
        return rc;
    if (m->n_experts > 0 && i >= m->first_dense)
        return bind_moe_ffn(g, m, caps, i, l, err);
    return bind_dense_ffn(g, m, caps, i, l, err);
}
