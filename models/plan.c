/* Builds the op plan of one step: embedding, per layer norm / attention
 * (standard or MLA) / residual / norm / FFN (dense or MoE), final norm,
 * LM head, sampling. Every byte and FLOP the analyzer costs comes from here. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/plan.h"

/* Shared state while building: the model, scheme, step shape and dtypes. */
typedef struct builder {
    sol_plan *plan;
    const sol_model *m;
    const sol_kv_scheme *kv;
    int64_t rows;      /* M: batch * tokens per sequence */
    double act_size;   /* bytes per activation element */
    double small_size; /* bytes per element of norms and biases */
    int layer;
    int failed;
} builder;

static sol_op *emit(builder *b, sol_op_kind kind, sol_op_group group, const char *name)
{
    sol_plan *plan = b->plan;
    if (plan->n_ops == plan->cap) {
        int cap = plan->cap ? plan->cap * 2 : 256;
        sol_op *ops = realloc(plan->ops, (size_t)cap * sizeof *ops);
        if (!ops) {
            b->failed = 1;
            static sol_op scratch; /* keeps callers simple; the build fails */
            return &scratch;
        }
        plan->ops = ops;
        plan->cap = cap;
    }
    sol_op *op = &plan->ops[plan->n_ops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->group = group;
    snprintf(op->name, sizeof op->name, "%s", name);
    op->layer = b->layer;
    op->batch = 1;
    op->wtype = plan->params.wtype;
    op->atype = plan->params.atype;
    op->kvtype = plan->params.kvtype;
    return op;
}

/* y[M, N] = x[M, K] W^T for `copies` independent weights (heads); bias adds
 * N small-type parameters per copy. */
static sol_op *emit_matmul_typed(builder *b, sol_dtype wtype, sol_op_group group, const char *name,
                                 int64_t n, int64_t k, int64_t copies, int bias)
{
    sol_op *op = emit(b, SOL_OP_MATMUL, group, name);
    op->wtype = wtype;
    if (b->rows < b->plan->params.int8_dots_below && sol_dtype_block_elems(wtype) > 1) /* integer codes */
        op->atype = SOL_DT_INT8;
    double elems = (double)n * (double)k * (double)copies;
    op->m = b->rows;
    op->n = n;
    op->k = k;
    op->batch = copies;
    op->weight_bytes = sol_dtype_bytes(op->wtype, elems, SOL_WEIGHT_SCALE_GROUP);
    op->params = elems;
    if (bias) {
        op->weight_bytes += (double)n * (double)copies * b->small_size;
        op->params += (double)n * (double)copies;
    }
    op->store_bytes = op->weight_bytes;
    op->active_params = op->params;
    op->act_bytes = (double)b->rows * (double)k * (double)copies * b->act_size;
    op->write_bytes = (double)b->rows * (double)n * (double)copies * b->act_size;
    op->flops = 2.0 * (double)b->rows * elems;
    return op;
}

/* The stored type of a layer matrix of a mixed-type file, when the plan
 * keeps the file's types (its wtype is the file's); else the plan's. */
static sol_dtype matrix_type(const builder *b, const char *name)
{
    static const char *const names[SOL_MATRIX_COUNT] = {"attn.q",   "attn.k", "attn.v",  "attn.o",
                                                         "ffn.gate", "ffn.up", "ffn.down"};
    const sol_model *m = b->m;
    if (!m->mixed || b->layer < 0 || b->layer >= SOL_MAX_LAYERS || b->plan->params.wtype != m->wtype)
        return b->plan->params.wtype;
    for (int x = 0; x < SOL_MATRIX_COUNT; x++)
        if (!strcmp(name, names[x]))
            return (sol_dtype)m->matrix_type[b->layer][x];
    return b->plan->params.wtype;
}

/* A layer matmul, in the plan's weight type (or the file's own, mixed). */
static sol_op *emit_matmul(builder *b, sol_op_group group, const char *name, int64_t n, int64_t k,
                           int64_t copies, int bias)
{
    return emit_matmul_typed(b, matrix_type(b, name), group, name, n, k, copies, bias);
}

/* RMSNorm over `width` features of `vectors` vectors per row. */
static void emit_norm(builder *b, const char *name, int64_t width, int64_t vectors)
{
    sol_op *op = emit(b, SOL_OP_NORM, SOL_GROUP_OTHER, name);
    double elems = (double)b->rows * (double)width * (double)vectors;
    op->m = b->rows;
    op->n = width * vectors;
    op->weight_bytes = op->store_bytes = (double)width * b->small_size;
    op->params = op->active_params = (double)width;
    op->act_bytes = elems * b->act_size;
    op->write_bytes = elems * b->act_size;
    op->flops = 4.0 * elems; /* square, sum, scale, multiply by weight */
}

static void emit_add(builder *b, const char *name)
{
    sol_op *op = emit(b, SOL_OP_ADD, SOL_GROUP_OTHER, name);
    double elems = (double)b->rows * (double)b->m->hidden;
    op->m = b->rows;
    op->n = b->m->hidden;
    op->act_bytes = 2.0 * elems * b->act_size;
    op->write_bytes = elems * b->act_size;
    op->flops = elems;
}

static void emit_allreduce(builder *b)
{
    int tp = b->plan->params.tp;
    if (tp <= 1)
        return;
    sol_op *op = emit(b, SOL_OP_ALLREDUCE, SOL_GROUP_COMM, "comm.allreduce");
    double bytes = (double)b->rows * (double)b->m->hidden * b->act_size;
    op->m = b->rows;
    op->n = b->m->hidden;
    op->comm_bytes = 2.0 * (tp - 1) / tp * bytes; /* ring: reduce-scatter + all-gather */
    op->comm_steps = 2 * (tp - 1);
    op->flops = (double)(tp - 1) / tp * (double)b->rows * (double)b->m->hidden;
}

/* Tensor parallel: each device computed a 1/tp slice of the vocabulary's
 * logits (f32); every device gathers the rest before sampling. */
static void emit_logits_gather(builder *b)
{
    int tp = b->plan->params.tp;
    if (tp <= 1)
        return;
    sol_op *op = emit(b, SOL_OP_ALLGATHER, SOL_GROUP_COMM, "comm.allgather");
    op->m = b->rows;
    op->n = b->m->vocab;
    op->comm_bytes = (double)(tp - 1) / tp * (double)b->rows * (double)b->m->vocab * 4.0;
    op->comm_steps = tp - 1;
}

static void emit_rope(builder *b, int64_t q_heads, int64_t k_heads, int64_t rope_dim)
{
    sol_op *op = emit(b, SOL_OP_ROPE, SOL_GROUP_ATTN_QKV, "attn.rope");
    double elems = (double)b->rows * (double)(q_heads + k_heads) * (double)rope_dim;
    op->m = b->rows;
    op->n = (q_heads + k_heads) * rope_dim;
    op->act_bytes = elems * b->act_size;
    op->write_bytes = elems * b->act_size;
    op->flops = 3.0 * elems;
}

/* Sum over the step's query tokens of the context each attends to: token j
 * of a sequence sees min(pos + j + 1, cap) cached tokens (cap 0: no cap).
 * Closed form, so a billion-token prompt costs no more than one: the first
 * n tokens see pos+1 .. pos+n (below the cap), the rest see cap. */
static double attended_tokens(int64_t pos, int64_t tokens, int64_t cap)
{
    int64_t below = tokens;
    if (cap) {
        below = cap - pos;
        below = below < 0 ? 0 : below > tokens ? tokens : below;
    }
    double n = (double)below;
    return n * (double)pos + n * (n + 1) / 2 + (double)(tokens - below) * (double)cap;
}

/* Cache append and attention over it. key/value widths are per head (for
 * MLA: the latent + RoPE key, and the latent). */
static void emit_kv_and_attention(builder *b, int64_t key_width, int64_t value_width)
{
    const sol_plan_params *p = &b->plan->params;
    const sol_kv_layer *info = &b->plan->layers[b->layer];
    const sol_kv_layer *owner = &b->plan->layers[info->owner];
    double token_bytes = b->plan->kv_bytes_per_token_layer[info->owner];
    int64_t heads = b->m->n_heads;

    if (info->stores_kv) {
        sol_op *w = emit(b, SOL_OP_KV_WRITE, SOL_GROUP_ATTN_QKV, "attn.kv_write");
        w->m = b->rows;
        w->n = info->elems_per_token;
        w->act_bytes = (double)b->rows * (double)info->elems_per_token * b->act_size;
        w->write_bytes = (double)b->rows * token_bytes;
    }
    sol_op *op = emit(b, SOL_OP_ATTENTION, SOL_GROUP_ATTN_SCORE, "attn.attention");
    int64_t cap = owner->tokens_cap;
    /* Each sequence reads the cache once (flash-style tiles are reused across
     * its query tokens): the newest pos + T tokens, at most cap + T - 1. */
    int64_t read_tokens = p->pos + p->n_tokens;
    if (cap && read_tokens > cap + p->n_tokens - 1)
        read_tokens = cap + p->n_tokens - 1;
    double attended = attended_tokens(p->pos, p->n_tokens, cap) * p->batch;
    op->m = b->rows;
    op->n = read_tokens;
    op->k = key_width;
    op->batch = heads;
    op->kv_bytes = (double)p->batch * (double)read_tokens * token_bytes;
    op->act_bytes = (double)b->rows * (double)heads * (double)key_width * b->act_size;
    op->write_bytes = (double)b->rows * (double)heads * (double)value_width * b->act_size;
    op->flops = 2.0 * (double)heads * (double)(key_width + value_width) * attended +
                5.0 * (double)heads * attended; /* softmax: max, sub, exp, sum, scale */
}

/* Standard multi-head attention with any number of KV heads. */
static void emit_attention_standard(builder *b, int64_t kv_heads)
{
    const sol_model *m = b->m;
    int64_t dk = m->head_dim, dv = m->v_head_dim > 0 ? m->v_head_dim : m->head_dim;
    emit_norm(b, "attn.norm", m->hidden, 1);
    if (m->kv_lora_rank > 0) {
        /* An MLA model run with a per-head cache: the latent is expanded by
         * kv_b for the new token only, and the expansion is what's cached. */
        if (m->q_lora_rank > 0) {
            emit_matmul(b, SOL_GROUP_ATTN_QKV, "attn.q_a", m->q_lora_rank, m->hidden, 1, 0);
            emit_norm(b, "attn.q_a_norm", m->q_lora_rank, 1);
            emit_matmul(b, SOL_GROUP_ATTN_QKV, "attn.q_b", m->n_heads * dk, m->q_lora_rank, 1, 0);
        } else {
            emit_matmul(b, SOL_GROUP_ATTN_QKV, "attn.q", m->n_heads * dk, m->hidden, 1, 0);
        }
        emit_matmul(b, SOL_GROUP_ATTN_QKV, "attn.kv_a", m->kv_lora_rank + m->qk_rope_dim, m->hidden, 1,
                    0);
        emit_norm(b, "attn.kv_a_norm", m->kv_lora_rank, 1);
        emit_matmul(b, SOL_GROUP_ATTN_QKV, "attn.kv_b", kv_heads * (m->qk_nope_dim + dv),
                    m->kv_lora_rank, 1, 0);
    } else {
        emit_matmul(b, SOL_GROUP_ATTN_QKV, "attn.q", m->n_heads * dk, m->hidden, 1, m->qkv_bias);
        emit_matmul(b, SOL_GROUP_ATTN_QKV, "attn.k", kv_heads * dk, m->hidden, 1, m->qkv_bias);
        emit_matmul(b, SOL_GROUP_ATTN_QKV, "attn.v", kv_heads * dv, m->hidden, 1, m->qkv_bias);
    }
    if (m->qk_norm) {
        emit_norm(b, "attn.q_norm", dk, m->n_heads);
        emit_norm(b, "attn.k_norm", dk, kv_heads);
    }
    emit_rope(b, m->n_heads, kv_heads, m->kv_lora_rank > 0 ? m->qk_rope_dim : dk);
    emit_kv_and_attention(b, dk, dv);
    emit_matmul(b, SOL_GROUP_ATTN_OUT, "attn.o", m->hidden, m->n_heads * dv, 1, 0);
}

/* Multi-head latent attention, decoded with the up-projections absorbed:
 * queries move into the latent space, attention runs there, and values come
 * back through kv_b before the output projection (DeepSeek-V2 §2.1). */
static void emit_attention_latent(builder *b)
{
    const sol_model *m = b->m;
    int64_t rank = b->kv->mla_rank, rope = b->kv->mla_rope, heads = m->n_heads;
    int64_t nope, dv;
    if (m->kv_lora_rank > 0) {
        nope = m->qk_nope_dim;
        dv = m->v_head_dim;
    } else { /* a standard model converted on paper: RoPE takes R of d_h */
        nope = m->head_dim > rope ? m->head_dim - rope : m->head_dim;
        dv = m->head_dim;
    }
    emit_norm(b, "attn.norm", m->hidden, 1);
    if (m->q_lora_rank > 0) {
        emit_matmul(b, SOL_GROUP_ATTN_QKV, "attn.q_a", m->q_lora_rank, m->hidden, 1, 0);
        emit_norm(b, "attn.q_a_norm", m->q_lora_rank, 1);
        emit_matmul(b, SOL_GROUP_ATTN_QKV, "attn.q_b", heads * (nope + rope), m->q_lora_rank, 1, 0);
    } else {
        emit_matmul(b, SOL_GROUP_ATTN_QKV, "attn.q", heads * (nope + rope), m->hidden, 1, 0);
    }
    emit_matmul(b, SOL_GROUP_ATTN_QKV, "attn.kv_a", rank + rope, m->hidden, 1, 0);
    /* in the engine's order: the queries' RoPE part rotated, then moved
     * into the latent space; the latent normalised as it is stored. kv_b
     * holds W_UK (rank -> nope per head) and W_UV (rank -> dv per head). */
    emit_rope(b, heads, 1, rope);
    emit_matmul(b, SOL_GROUP_ATTN_QKV, "attn.q_absorb", rank, nope, heads, 0);
    emit_norm(b, "attn.kv_a_norm", rank, 1);
    emit_kv_and_attention(b, rank + rope, rank);
    emit_matmul(b, SOL_GROUP_ATTN_OUT, "attn.v_absorb", dv, rank, heads, 0);
    emit_matmul(b, SOL_GROUP_ATTN_OUT, "attn.o", m->hidden, heads * dv, 1, 0);
}

static sol_op *emit_activation(builder *b, const char *name, int64_t width, double rows)
{
    sol_op *op = emit(b, SOL_OP_ACT, SOL_GROUP_FFN_GATE_UP, name);
    double elems = rows * (double)width;
    op->m = (int64_t)rows;
    op->n = width;
    op->act_bytes = 2.0 * elems * b->act_size;
    op->write_bytes = elems * b->act_size;
    op->flops = (b->m->act == SOL_ACT_GELU ? 14.0 : 6.0) * elems; /* rough transcendental cost */
    return op;
}

static void emit_ffn_dense(builder *b, const char *prefix, int64_t width)
{
    char name[24];
    int64_t hidden = b->m->hidden;
    snprintf(name, sizeof name, "%s.gate", prefix);
    emit_matmul(b, SOL_GROUP_FFN_GATE_UP, name, width, hidden, 1, 0);
    snprintf(name, sizeof name, "%s.up", prefix);
    emit_matmul(b, SOL_GROUP_FFN_GATE_UP, name, width, hidden, 1, 0);
    snprintf(name, sizeof name, "%s.act", prefix);
    emit_activation(b, name, width, (double)b->rows);
    snprintf(name, sizeof name, "%s.down", prefix);
    emit_matmul(b, SOL_GROUP_FFN_DOWN, name, hidden, width, 1, 0);
}

double sol_moe_expected_experts(int n_experts, int k, double tokens)
{
    return n_experts * (1.0 - pow(1.0 - (double)k / n_experts, tokens));
}

double sol_moe_expected_experts_routed(const double *p, int n_experts, double tokens)
{
    double sum = 0;
    for (int e = 0; e < n_experts; e++)
        sum += 1.0 - pow(1.0 - (p[e] < 1 ? p[e] : 1), tokens);
    return sum;
}

/* Experts a MoE layer's rows are expected to touch this step. */
static double expected_experts(const builder *b)
{
    const sol_model *m = b->m;
    const sol_routing *r = b->plan->params.routing;
    int i = b->layer - (r ? r->first_layer : 0);
    if (r && r->n_experts == m->n_experts && i >= 0 && i < r->n_layers)
        return sol_moe_expected_experts_routed(r->p + (size_t)i * r->n_experts, r->n_experts, (double)b->rows);
    return sol_moe_expected_experts(m->n_experts, m->n_experts_active, (double)b->rows);
}

/* One expert matmul for all routed tokens: weights of the experts expected
 * to be hit are read once; each token runs k experts. */
static void emit_expert_matmul(builder *b, sol_op_group group, const char *name, int64_t n, int64_t k)
{
    const sol_model *m = b->m;
    int experts = m->n_experts, active = m->n_experts_active;
    sol_op *op = emit_matmul(b, group, name, n, k, experts, 0);
    double per_expert = sol_dtype_bytes(op->wtype, (double)n * (double)k, SOL_WEIGHT_SCALE_GROUP);
    double routed_rows = (double)b->rows * active;
    op->weight_bytes = per_expert * expected_experts(b);
    op->active_params = (double)n * (double)k * active;
    op->act_bytes = routed_rows * (double)k * b->act_size;
    op->write_bytes = routed_rows * (double)n * b->act_size;
    op->flops = 2.0 * routed_rows * (double)n * (double)k;
}

static void emit_ffn_moe(builder *b)
{
    const sol_model *m = b->m;
    sol_op *router = emit_matmul(b, SOL_GROUP_MOE_ROUTER, "moe.router", m->n_experts, m->hidden, 1, 0);
    if (m->expert_bias) {
        router->params += m->n_experts;
        router->active_params += m->n_experts;
        router->weight_bytes += m->n_experts * 4.0; /* f32 correction bias */
        router->store_bytes = router->weight_bytes;
    }
    sol_op *topk = emit(b, SOL_OP_ROUTER, SOL_GROUP_MOE_ROUTER, "moe.topk");
    topk->m = b->rows;
    topk->n = m->n_experts;
    topk->act_bytes = (double)b->rows * m->n_experts * b->act_size;
    topk->write_bytes = (double)b->rows * m->n_experts_active * 8.0; /* index + weight */
    topk->flops = (double)b->rows * m->n_experts * 4.0;
    emit_expert_matmul(b, SOL_GROUP_MOE_EXPERTS, "moe.gate", m->moe_ffn, m->hidden);
    emit_expert_matmul(b, SOL_GROUP_MOE_EXPERTS, "moe.up", m->moe_ffn, m->hidden);
    emit_activation(b, "moe.act", m->moe_ffn, (double)b->rows * m->n_experts_active)->group = SOL_GROUP_MOE_EXPERTS;
    emit_expert_matmul(b, SOL_GROUP_MOE_EXPERTS, "moe.down", m->hidden, m->moe_ffn);
    if (m->n_shared_experts > 0)
        emit_ffn_dense(b, "ffn.shared", (int64_t)m->n_shared_experts * m->moe_ffn);
}

static void emit_layer(builder *b, int layer, int64_t kv_heads)
{
    const sol_model *m = b->m;
    b->layer = layer;
    if (b->kv->heads == SOL_KV_MLA)
        emit_attention_latent(b);
    else
        emit_attention_standard(b, kv_heads);
    emit_allreduce(b);
    if (m->post_norms)
        emit_norm(b, "attn.post_norm", m->hidden, 1);
    emit_add(b, "attn.residual");
    emit_norm(b, "ffn.norm", m->hidden, 1);
    if (m->n_experts > 0 && layer >= m->first_dense)
        emit_ffn_moe(b);
    else
        emit_ffn_dense(b, "ffn", m->ffn);
    emit_allreduce(b);
    if (m->post_norms)
        emit_norm(b, "ffn.post_norm", m->hidden, 1);
    emit_add(b, "ffn.residual");
}

static void emit_head(builder *b)
{
    const sol_model *m = b->m;
    const sol_plan_params *p = &b->plan->params;
    b->layer = -1;
    emit_norm(b, "output.norm", m->hidden, 1);
    /* Logits are needed for the last token of each sequence only, unless
     * the caller checks every position. */
    int64_t rows = b->rows;
    if (!p->all_logits)
        b->rows = p->batch;
    sol_dtype head_type = m->tied_embeddings ? m->embed_type : m->output_type;
    sol_op *head = emit_matmul_typed(b, head_type, SOL_GROUP_LM_HEAD, "lm_head", m->vocab, m->hidden, 1, 0);
    if (m->tied_embeddings) /* reads the embedding table, owns nothing */
        head->params = head->active_params = head->store_bytes = 0;
    emit_logits_gather(b);
    sol_op *sample = emit(b, SOL_OP_SAMPLE, SOL_GROUP_OTHER, "sample");
    sample->m = p->batch;
    sample->n = m->vocab;
    sample->act_bytes = (double)p->batch * m->vocab * 4.0; /* f32 logits of the last rows */
    sample->write_bytes = (double)p->batch * 4.0;
    sample->flops = 2.0 * (double)p->batch * m->vocab;
    b->rows = rows;
}

/* Tensor parallelism on paper: the heavy ops split N ways; norms, residuals,
 * routing and sampling are replicated on every device. */
static void shard_ops(sol_plan *plan, int64_t kv_heads)
{
    int tp = plan->params.tp;
    if (tp <= 1)
        return;
    /* KV splits by head; a single head or an MLA latent is replicated. */
    double kv_split = kv_heads < tp ? (double)(kv_heads > 0 ? kv_heads : 1) : tp;
    for (int i = 0; i < plan->n_ops; i++) {
        sol_op *op = &plan->ops[i];
        if (op->kind == SOL_OP_MATMUL && op->group != SOL_GROUP_MOE_ROUTER) {
            op->weight_bytes /= tp;
            op->store_bytes /= tp;
            op->flops /= tp;
            op->write_bytes /= tp;
        } else if (op->kind == SOL_OP_ATTENTION || op->kind == SOL_OP_ROPE || op->kind == SOL_OP_ACT) {
            op->flops /= tp;
            op->act_bytes /= tp;
            op->write_bytes /= tp;
            op->kv_bytes /= kv_split;
        } else if (op->kind == SOL_OP_EMBED) {
            op->store_bytes /= tp; /* vocab-parallel table */
        } else if (op->kind == SOL_OP_KV_WRITE) {
            op->act_bytes /= tp;
            op->write_bytes /= kv_split;
        }
    }
}

static int check_params(const sol_plan_params *p, sol_err *err)
{
    if (p->batch < 1)
        return sol_fail(err, SOL_ERR_USAGE, "--batch: must be at least 1 (got %d)", p->batch);
    if (p->n_tokens < 1)
        return sol_fail(err, SOL_ERR_USAGE, "--prompt: must be at least 1 token (got %d)", p->n_tokens);
    if (p->pos < 0)
        return sol_fail(err, SOL_ERR_USAGE, "--ctx: must not be negative (got %lld)", (long long)p->pos);
    if (p->tp < 1)
        return sol_fail(err, SOL_ERR_USAGE, "--tp: must be at least 1 (got %d)", p->tp);
    if (!sol_dtype_is_float(p->atype) && p->atype != SOL_DT_INT8)
        return sol_fail(err, SOL_ERR_USAGE, "--atype: %s cannot hold activations",
                        sol_dtype_name(p->atype));
    /* GGUF's Q8_0 and Q4_0 blocks (scales inside) are what the engine's
     * quantised caches store; the other block formats are for weights */
    if (sol_dtype_block_elems(p->kvtype) != 1 && p->kvtype != SOL_DT_Q8_0 && p->kvtype != SOL_DT_Q4_0)
        return sol_fail(err, SOL_ERR_USAGE,
                        "--kvtype: %s is a weight block format; use f32, f16, bf16, fp8, int8, int4, q8_0 or q4_0",
                        sol_dtype_name(p->kvtype));
    return 0;
}

/* Tensor parallel splits the attention heads: tp must divide them. KV
 * heads split too, or, when fewer than tp, each is replicated on tp / heads
 * devices (so they must divide tp). An MLA latent is replicated. */
static int check_tp(const sol_model *m, const sol_kv_scheme *kv, int tp, sol_err *err)
{
    if (tp <= 1)
        return 0;
    if (m->n_heads % tp)
        return sol_fail(err, SOL_ERR_USAGE, "--tp %d does not divide %s's %d attention heads", tp, m->name,
                        m->n_heads);
    int kv_heads = kv->heads == SOL_KV_MHA ? m->n_heads
                   : kv->heads == SOL_KV_MQA ? 1
                   : kv->heads == SOL_KV_GQA ? kv->n_kv_heads
                                             : 0;
    if (kv_heads > 0 && (kv_heads >= tp ? kv_heads % tp : tp % kv_heads))
        return sol_fail(err, SOL_ERR_USAGE,
                        "--tp %d and %d KV heads: the heads must split evenly over the devices, or (fewer "
                        "heads than devices) each be replicated on the same number of devices",
                        tp, kv_heads);
    return 0;
}

int sol_plan_build(const sol_model *m, const sol_kv_scheme *kv, const sol_plan_params *p,
                   sol_plan *plan, sol_err *err)
{
    memset(plan, 0, sizeof *plan);
    int rc = check_params(p, err);
    if (!rc)
        rc = sol_kv_check(kv, m, err);
    if (!rc)
        rc = check_tp(m, kv, p->tp, err);
    if (rc)
        return rc;
    plan->params = *p;
    plan->kv = *kv;
    plan->n_layers = m->n_layers;
    int group = sol_kv_scale_group(kv, m);
    for (int i = 0; i < m->n_layers; i++) {
        sol_kv_layer_info(kv, m, i, &plan->layers[i]);
        plan->kv_bytes_per_token_layer[i] =
            sol_dtype_bytes(p->kvtype, (double)plan->layers[i].elems_per_token, group);
    }
    builder b = {
        .plan = plan,
        .m = m,
        .kv = kv,
        .rows = (int64_t)p->batch * p->n_tokens,
        .act_size = sol_dtype_bytes(p->atype, 1, 0),
        .small_size = sol_dtype_is_float(p->wtype) && p->wtype != SOL_DT_FP8 ? sol_dtype_bytes(p->wtype, 1, 0)
                                                                              : 4.0,
        .layer = -1,
    };
    sol_op *embed = emit(&b, SOL_OP_EMBED, SOL_GROUP_OTHER, "embed");
    embed->m = b.rows;
    embed->n = m->hidden;
    embed->wtype = m->embed_type;
    embed->weight_bytes = sol_dtype_bytes(embed->wtype, (double)b.rows * m->hidden, SOL_WEIGHT_SCALE_GROUP);
    embed->params = embed->active_params = (double)m->vocab * m->hidden;
    embed->store_bytes = sol_dtype_bytes(embed->wtype, embed->params, SOL_WEIGHT_SCALE_GROUP);
    embed->write_bytes = (double)b.rows * m->hidden * b.act_size;

    int64_t kv_heads = kv->heads == SOL_KV_MHA ? m->n_heads
                       : kv->heads == SOL_KV_MQA ? 1
                       : kv->heads == SOL_KV_GQA ? kv->n_kv_heads
                                                 : 0;
    for (int i = 0; i < m->n_layers; i++)
        emit_layer(&b, i, kv_heads);
    emit_head(&b);
    shard_ops(plan, kv_heads);
    if (b.failed) {
        sol_plan_free(plan);
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory building the op plan");
    }
    return 0;
}

void sol_plan_free(sol_plan *plan)
{
    free(plan->ops);
    plan->ops = NULL;
    plan->n_ops = plan->cap = 0;
}

const char *sol_op_kind_name(sol_op_kind k)
{
    static const char *const names[SOL_OP_KIND_COUNT] = {
        "embed", "norm", "matmul", "rope", "kv_write", "attention", "add", "act", "router", "allreduce",
        "allgather", "sample"};
    return (unsigned)k < SOL_OP_KIND_COUNT ? names[k] : "?";
}

const char *sol_op_group_name(sol_op_group g)
{
    static const char *const names[SOL_GROUP_COUNT] = {
        "attn.qkv", "attn.score", "attn.out", "ffn.gate_up", "ffn.down", "moe.router", "moe.experts", "lm_head", "comm",
        "other"};
    return (unsigned)g < SOL_GROUP_COUNT ? names[g] : "?";
}

double sol_op_bytes(const sol_op *op)
{
    return op->weight_bytes + op->kv_bytes + op->act_bytes + op->write_bytes;
}

int sol_model_params(const sol_model *m, sol_param_count *out, sol_err *err)
{
    sol_kv_scheme kv;
    sol_kv_from_model(m, &kv);
    sol_plan_params p = {.batch = 1, .n_tokens = 1, .pos = 0, .wtype = m->wtype, .atype = SOL_DT_F16,
                         .kvtype = SOL_DT_F16, .tp = 1};
    sol_plan *plan = malloc(sizeof *plan);
    if (!plan)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    int rc = sol_plan_build(m, &kv, &p, plan, err);
    if (rc == 0) {
        out->total = out->active = 0;
        for (int i = 0; i < plan->n_ops; i++) {
            out->total += plan->ops[i].params;
            out->active += plan->ops[i].active_params;
        }
        sol_plan_free(plan);
    }
    free(plan);
    return rc;
}
