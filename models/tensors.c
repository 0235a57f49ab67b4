/* Tensor tables and metadata of each architecture in GGUF (see tensors.h).
 * Names follow llama.cpp's conventions so its tools read the files too. */
#include "models/tensors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    sol_tensor_spec *t;
    int n, cap, failed;
} tensor_list;

static void add(tensor_list *l, int is_vector, int n_dims, uint64_t d0, uint64_t d1, uint64_t d2, const char *fmt, ...)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        sol_tensor_spec *t = realloc(l->t, (size_t)cap * sizeof *t);
        if (!t) {
            l->failed = 1;
            return;
        }
        l->t = t;
        l->cap = cap;
    }
    sol_tensor_spec *s = &l->t[l->n++];
    memset(s, 0, sizeof *s);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->name, sizeof s->name, fmt, ap);
    va_end(ap);
    s->n_dims = n_dims;
    s->dims[0] = d0;
    s->dims[1] = d1;
    s->dims[2] = d2;
    s->is_vector = is_vector;
    s->is_bias = strstr(s->name, ".bias") != NULL;
}

#define VEC(len, ...) add(l, 1, 1, (uint64_t)(len), 1, 1, __VA_ARGS__)
#define MAT(in, out, ...) add(l, 0, 2, (uint64_t)(in), (uint64_t)(out), 1, __VA_ARGS__)
#define EXPERTS(in, out, n, ...) add(l, 0, 3, (uint64_t)(in), (uint64_t)(out), (uint64_t)(n), __VA_ARGS__)

static void attention_tensors(tensor_list *l, const sol_model *m, int i)
{
    uint64_t h = (uint64_t)m->hidden, heads = (uint64_t)m->n_heads;
    if (m->kv_lora_rank > 0) { /* MLA */
        uint64_t qk = (uint64_t)(m->qk_nope_dim + m->qk_rope_dim);
        if (m->q_lora_rank > 0) {
            MAT(h, m->q_lora_rank, "blk.%d.attn_q_a.weight", i);
            VEC(m->q_lora_rank, "blk.%d.attn_q_a_norm.weight", i);
            MAT(m->q_lora_rank, heads * qk, "blk.%d.attn_q_b.weight", i);
        } else {
            MAT(h, heads * qk, "blk.%d.attn_q.weight", i);
        }
        MAT(h, m->kv_lora_rank + m->qk_rope_dim, "blk.%d.attn_kv_a_mqa.weight", i);
        VEC(m->kv_lora_rank, "blk.%d.attn_kv_a_norm.weight", i);
        MAT(m->kv_lora_rank, heads * (uint64_t)(m->qk_nope_dim + m->v_head_dim), "blk.%d.attn_kv_b.weight", i);
        MAT(heads * m->v_head_dim, h, "blk.%d.attn_output.weight", i);
        return;
    }
    uint64_t q = heads * m->head_dim, kv = (uint64_t)m->n_kv_heads * m->head_dim;
    if (m->fused_qkv) { /* phi3: one matrix, rows Q then K then V */
        MAT(h, q + 2 * kv, "blk.%d.attn_qkv.weight", i);
        if (m->qkv_bias)
            VEC(q + 2 * kv, "blk.%d.attn_qkv.bias", i);
    } else {
        MAT(h, q, "blk.%d.attn_q.weight", i);
        MAT(h, kv, "blk.%d.attn_k.weight", i);
        MAT(h, kv, "blk.%d.attn_v.weight", i);
    }
    if (m->qkv_bias && !m->fused_qkv) {
        VEC(q, "blk.%d.attn_q.bias", i);
        VEC(kv, "blk.%d.attn_k.bias", i);
        VEC(kv, "blk.%d.attn_v.bias", i);
    }
    if (m->qk_norm) {
        VEC(m->head_dim, "blk.%d.attn_q_norm.weight", i);
        VEC(m->head_dim, "blk.%d.attn_k_norm.weight", i);
    }
    MAT(q, h, "blk.%d.attn_output.weight", i);
}

static void ffn_tensors(tensor_list *l, const sol_model *m, int i)
{
    uint64_t h = (uint64_t)m->hidden;
    if (m->fused_qkv && (m->n_experts == 0 || i < m->first_dense)) { /* phi3: gate rows, then up rows */
        MAT(h, 2 * (uint64_t)m->ffn, "blk.%d.ffn_up.weight", i);
        MAT(m->ffn, h, "blk.%d.ffn_down.weight", i);
        return;
    }
    if (m->n_experts == 0 || i < m->first_dense) {
        MAT(h, m->ffn, "blk.%d.ffn_gate.weight", i);
        MAT(h, m->ffn, "blk.%d.ffn_up.weight", i);
        MAT(m->ffn, h, "blk.%d.ffn_down.weight", i);
        return;
    }
    MAT(h, m->n_experts, "blk.%d.ffn_gate_inp.weight", i);
    if (m->expert_bias)
        VEC(m->n_experts, "blk.%d.exp_probs_b.bias", i);
    EXPERTS(h, m->moe_ffn, m->n_experts, "blk.%d.ffn_gate_exps.weight", i);
    EXPERTS(h, m->moe_ffn, m->n_experts, "blk.%d.ffn_up_exps.weight", i);
    EXPERTS(m->moe_ffn, h, m->n_experts, "blk.%d.ffn_down_exps.weight", i);
    if (m->n_shared_experts > 0) {
        uint64_t shared = (uint64_t)m->n_shared_experts * m->moe_ffn;
        MAT(h, shared, "blk.%d.ffn_gate_shexp.weight", i);
        MAT(h, shared, "blk.%d.ffn_up_shexp.weight", i);
        MAT(shared, h, "blk.%d.ffn_down_shexp.weight", i);
    }
}

int sol_model_tensors(const sol_model *m, sol_tensor_spec **out, int *n, sol_err *err)
{
    tensor_list list = {0}, *l = &list;
    MAT(m->hidden, m->vocab, "token_embd.weight");
    for (int i = 0; i < m->n_layers; i++) {
        VEC(m->hidden, "blk.%d.attn_norm.weight", i);
        attention_tensors(l, m, i);
        if (m->post_norms)
            VEC(m->hidden, "blk.%d.post_attention_norm.weight", i);
        VEC(m->hidden, "blk.%d.ffn_norm.weight", i);
        ffn_tensors(l, m, i);
        if (m->post_norms)
            VEC(m->hidden, "blk.%d.post_ffw_norm.weight", i);
    }
    VEC(m->hidden, "output_norm.weight");
    if (!m->tied_embeddings)
        MAT(m->hidden, m->vocab, "output.weight");
    if (list.failed) {
        free(list.t);
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory listing tensors");
    }
    *out = list.t;
    *n = list.n;
    return 0;
}

const char *sol_gguf_arch_name(const sol_model *m)
{
    if (!strcmp(m->arch, "mistral") || !strcmp(m->arch, "mixtral"))
        return "llama";
    if (!strncmp(m->arch, "deepseek", 8))
        return "deepseek2";
    return m->arch;
}

void sol_model_write_meta(const sol_model *m, sol_gguf_writer *w)
{
    const char *arch = sol_gguf_arch_name(m);
    char key[128];
#define KEY(suffix) (snprintf(key, sizeof key, "%s." suffix, arch), key)
    sol_gguf_set_str(w, "general.architecture", arch);
    sol_gguf_set_str(w, "general.name", m->name);
    sol_gguf_set_u32(w, KEY("block_count"), (uint32_t)m->n_layers);
    sol_gguf_set_u32(w, KEY("context_length"), (uint32_t)m->ctx_max);
    sol_gguf_set_u32(w, KEY("embedding_length"), (uint32_t)m->hidden);
    sol_gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)m->ffn);
    sol_gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)m->n_heads);
    sol_gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)m->n_kv_heads);
    sol_gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)m->head_dim);
    sol_gguf_set_u32(w, KEY("attention.value_length"), (uint32_t)(m->v_head_dim > 0 ? m->v_head_dim : m->head_dim));
    sol_gguf_set_f32(w, KEY("rope.freq_base"), (float)m->rope_theta);
    sol_gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)(m->kv_lora_rank > 0 ? m->qk_rope_dim : m->head_dim));
    sol_gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), (float)m->norm_eps);
    sol_gguf_set_u32(w, KEY("vocab_size"), (uint32_t)m->vocab);
    if (m->sliding_window > 0)
        sol_gguf_set_u32(w, KEY("attention.sliding_window"), (uint32_t)m->sliding_window);
    if (m->n_experts > 0) {
        sol_gguf_set_u32(w, KEY("expert_count"), (uint32_t)m->n_experts);
        sol_gguf_set_u32(w, KEY("expert_used_count"), (uint32_t)m->n_experts_active);
    }
    if (m->kv_lora_rank > 0) {
        sol_gguf_set_u32(w, KEY("expert_shared_count"), (uint32_t)m->n_shared_experts);
        sol_gguf_set_u32(w, KEY("expert_feed_forward_length"), (uint32_t)m->moe_ffn);
        sol_gguf_set_u32(w, KEY("leading_dense_block_count"), (uint32_t)m->first_dense);
        sol_gguf_set_u32(w, KEY("attention.q_lora_rank"), (uint32_t)m->q_lora_rank);
        sol_gguf_set_u32(w, KEY("attention.kv_lora_rank"), (uint32_t)m->kv_lora_rank);
    }
    /* DeepSeek's routing (docs/FAMILIES.md); Mixtral's is implied by its
     * architecture (llama with experts), as in llama.cpp. */
    if (!strcmp(arch, "deepseek2") && m->n_experts > 0) {
        sol_gguf_set_f32(w, KEY("expert_weights_scale"), (float)(m->expert_scale > 0 ? m->expert_scale : 1));
        sol_gguf_set_bool(w, KEY("expert_weights_norm"), m->expert_norm);
        sol_gguf_set_u32(w, KEY("expert_gating_func"), m->expert_sigmoid ? 2 : 1); /* llama.cpp: 1 softmax, 2 sigmoid */
        sol_gguf_set_u32(w, KEY("expert_group_count"), (uint32_t)(m->expert_groups > 0 ? m->expert_groups : 1));
        sol_gguf_set_u32(w, KEY("expert_group_used_count"),
                         (uint32_t)(m->expert_groups_used > 0 ? m->expert_groups_used : 1));
    }
    if (m->attn_softcap > 0)
        sol_gguf_set_f32(w, KEY("attn_logit_softcapping"), (float)m->attn_softcap);
    if (m->final_softcap > 0)
        sol_gguf_set_f32(w, KEY("final_logit_softcapping"), (float)m->final_softcap);
    if (m->attn_scale > 0)
        sol_gguf_set_f32(w, KEY("attention.scale"), (float)m->attn_scale);
    if (m->rope_theta_local > 0)
        sol_gguf_set_f32(w, KEY("rope.freq_base_swa"), (float)m->rope_theta_local);
    /* Only linear scaling is kept (sol_model.rope_scale): a DeepSeek preset's
     * YaRN is not written, as the engine does not model it. */
    if (m->rope_scale > 0) {
        sol_gguf_set_str(w, KEY("rope.scaling.type"), "linear");
        sol_gguf_set_f32(w, KEY("rope.scaling.factor"), (float)m->rope_scale);
    }
#undef KEY
}
