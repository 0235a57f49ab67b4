/* The ops of one step on the backend (engine_impl.h: sol_engine_launch_ops).
 * Each plan op is resolved to its weights and buffers by name; runs of ops
 * that go as one backend call (matmuls of one input, a norm and the matmuls
 * of its output, RoPE + KV write, the latent's norm + write, a MoE layer's
 * experts) share one mark. */
#include <math.h>
#include <string.h>

#include "engine/engine_impl.h"

typedef struct {
    const sol_weight_view *w;
    const float *bias;
    const float *in;
    float *out;
} matmul_binding;

static int is(const sol_op *op, const char *name) { return strcmp(op->name, name) == 0; }

static int is_latent(const sol_engine *e) { return e->kv.heads == SOL_KV_MLA; }

static int bind_attention_matmul(sol_engine *e, const sol_op *op, const sol_layer_weights *l, matmul_binding *b)
{
    if (is(op, "attn.q"))
        *b = (matmul_binding){&l->wq, l->bq, e->xb, e->q};
    else if (is(op, "attn.k"))
        *b = (matmul_binding){&l->wk, l->bk, e->xb, e->k};
    else if (is(op, "attn.v"))
        *b = (matmul_binding){&l->wv, l->bv, e->xb, e->v};
    else if (is(op, "attn.q_a")) /* DeepSeek: the query's low-rank row */
        *b = (matmul_binding){&l->q_a, NULL, e->xb, e->q_lat};
    else if (is(op, "attn.q_b"))
        *b = (matmul_binding){&l->q_b, NULL, e->q_lat, e->q};
    else if (is(op, "attn.kv_a")) /* MLA: latent + RoPE key rows */
        *b = (matmul_binding){&l->kv_a, NULL, e->xb, e->k};
    else if (is(op, "attn.o")) /* MLA: the values came back through v_absorb into q */
        *b = (matmul_binding){&l->wo, NULL, l->v_absorb.data ? e->q : e->att, e->xb2};
    else
        return -1;
    return 0;
}

/* A MoE layer's shared expert writes xb (its input is read by then): xb2
 * holds the routed experts' sum, and the residual adds both. */
static int bind_ffn_matmul(sol_engine *e, const sol_op *op, const sol_layer_weights *l, matmul_binding *b)
{
    if (is(op, "ffn.gate"))
        *b = (matmul_binding){&l->gate, NULL, e->xb, e->hb};
    else if (is(op, "ffn.up"))
        *b = (matmul_binding){&l->up, NULL, e->xb, e->hb2};
    else if (is(op, "ffn.down"))
        *b = (matmul_binding){&l->down, NULL, e->hb, e->xb2};
    else if (is(op, "moe.router"))
        *b = (matmul_binding){&l->router, NULL, e->xb, e->router_logits};
    else if (is(op, "ffn.shared.gate"))
        *b = (matmul_binding){&l->sh_gate, NULL, e->xb, e->hb};
    else if (is(op, "ffn.shared.up"))
        *b = (matmul_binding){&l->sh_up, NULL, e->xb, e->hb2};
    else if (is(op, "ffn.shared.down"))
        *b = (matmul_binding){&l->sh_down, NULL, e->hb, e->xb};
    else
        return -1;
    return 0;
}

static int bind_matmul(sol_engine *e, const sol_op *op, int rows, matmul_binding *b)
{
    if (op->layer >= 0) {
        const sol_layer_weights *l = &e->w.layers[op->layer];
        return bind_attention_matmul(e, op, l, b) == 0 ? 0 : bind_ffn_matmul(e, op, l, b);
    }
    if (!is(op, "lm_head"))
        return -1;
    /* the plan's rows are the last op->m rows */
    *b = (matmul_binding){&e->w.output, NULL, e->xb + (size_t)(rows - op->m) * e->model.hidden, e->logits};
    return 0;
}

/* Whether layer i of the model attends over a sliding window (its own
 * pattern, which fixes Gemma-3's RoPE base whatever --kv says). */
static int model_layer_local(const sol_model *m, int layer)
{
    return m->sliding_window > 0 && (m->swa_period <= 1 || (layer + 1) % m->swa_period != 0);
}

static const sol_rope *rope_of(const sol_engine *e, int layer)
{
    return e->w.rope_local.inv_freq && model_layer_local(&e->model, layer) ? &e->w.rope_local : &e->w.rope;
}

/* The weight of a pre-norm (x into xb: attn.norm, ffn.norm, output.norm),
 * NULL for any other op. */
static const float *pre_norm_weight(const sol_engine *e, const sol_op *op)
{
    if (op->kind != SOL_OP_NORM)
        return NULL;
    if (op->layer < 0)
        return is(op, "output.norm") ? e->w.output_norm : NULL;
    const sol_layer_weights *l = &e->w.layers[op->layer];
    return is(op, "attn.norm") ? l->attn_norm : is(op, "ffn.norm") ? l->ffn_norm : NULL;
}

/* RMSNorms: the pre-norms into xb, the post-norms in place on a block's
 * output (Gemma), q_lora's row, the q and k heads (Gemma-3). */
static int run_norm(sol_engine *e, const sol_op *op)
{
    const sol_model *m = &e->model;
    sol_backend *be = e->be;
    float eps = (float)m->norm_eps;
    const float *pre = pre_norm_weight(e, op);
    if (pre) {
        be->rmsnorm(be, e->x, pre, eps, m->hidden, e->xb);
        return 0;
    }
    if (op->layer < 0)
        return -1;
    const sol_layer_weights *l = &e->w.layers[op->layer];
    if (is(op, "attn.post_norm"))
        be->rmsnorm(be, e->xb2, l->post_attn_norm, eps, m->hidden, e->xb2);
    else if (is(op, "ffn.post_norm"))
        be->rmsnorm(be, e->xb2, l->post_ffn_norm, eps, m->hidden, e->xb2);
    else if (is(op, "attn.q_a_norm"))
        be->rmsnorm(be, e->q_lat, l->q_a_norm, eps, m->q_lora_rank, e->q_lat);
    else if (is(op, "attn.q_norm"))
        be->head_rmsnorm(be, e->q, l->q_norm, eps, m->n_heads, m->head_dim);
    else if (is(op, "attn.k_norm"))
        be->head_rmsnorm(be, e->k, l->k_norm, eps, m->n_kv_heads, m->head_dim);
    else if (is(op, "attn.kv_a_norm"))
        return 0; /* MLA: done by the cache write (run_latent_kv_write); a sharing layer stores nothing */
    else
        return -1;
    return 0;
}

/* MLA's absorbed projections (plan ops attn.q_absorb, attn.v_absorb):
 * queries into the latent space, attended latents back to value heads. */
static int run_absorb(sol_engine *e, const sol_op *op)
{
    const sol_model *m = &e->model;
    const sol_layer_weights *l = &e->w.layers[op->layer];
    int64_t latent = (int64_t)m->kv_lora_rank + m->qk_rope_dim;
    if (is(op, "attn.q_absorb"))
        e->be->head_matmul(e->be, &l->q_absorb, m->n_heads, e->q, m->head_dim, e->q_abs, latent);
    else if (is(op, "attn.v_absorb"))
        e->be->head_matmul(e->be, &l->v_absorb, m->n_heads, e->att, latent, e->q, m->v_head_dim);
    else
        return -1;
    return 0;
}

/* The cache rows attention touches for query rows pos .. pos + rows - 1,
 * each seeing the newest `window` positions (0: all) and the sinks below
 * them: from the first row's first position to the last row. */
static int64_t kv_rows_read(int64_t pos, int rows, int64_t window, int64_t sinks)
{
    int64_t first = window > 0 && pos + 1 > window ? pos + 1 - window : 0;
    return (sinks < first ? sinks : first) + pos + rows - first;
}

static void run_attention(sol_engine *e, const sol_op *op, int rows)
{
    const sol_model *m = &e->model;
    int owner = e->plan.layers[op->layer].owner;
    const sol_kv_cache_layer *cache = &e->cache[owner];
    int64_t window = sol_engine_layer_window(e, op->layer);
    if (is_latent(e)) /* one latent "head" serves every query head */
        e->be->attention(e->be, e->q_abs, cache, m->n_heads, 1, (int)cache->width, window, 0, e->att);
    else
        e->be->attention(e->be, e->q, cache, m->n_heads, m->n_kv_heads, m->head_dim, window,
                         (float)m->attn_softcap, e->att);
    /* each sequence reads its own rows */
    e->kv_read_step += (double)e->seqs * (double)kv_rows_read(e->pos, rows / e->seqs, window, cache->sinks) *
                       sol_engine_token_bytes(e, owner);
}

/* Gemma's query scale (query_pre_attn_scalar^-1/2 where attention divides
 * by sqrt(head_dim)): folded into the rotated queries. */
static void scale_queries(sol_engine *e)
{
    const sol_model *m = &e->model;
    if (m->attn_scale > 0)
        e->be->scale(e->be, e->q, (float)(m->attn_scale * sqrt((double)m->head_dim)),
                      (int64_t)m->n_heads * m->head_dim);
}

static void run_rope(sol_engine *e, const sol_op *op)
{
    const sol_model *m = &e->model;
    if (is_latent(e)) { /* the queries' RoPE part; the key's is rotated as it is stored */
        e->be->rope(e->be, e->q, m->n_heads, m->head_dim, &e->w.rope_q_mla);
        return;
    }
    const sol_rope *rope = rope_of(e, op->layer);
    e->be->rope(e->be, e->q, m->n_heads, m->head_dim, rope);
    e->be->rope(e->be, e->k, m->n_kv_heads, m->head_dim, rope);
    scale_queries(e);
}

static int run_elementwise(sol_engine *e, const sol_op *op)
{
    const sol_model *m = &e->model;
    sol_backend *be = e->be;
    if (op->kind == SOL_OP_ADD) {
        be->add(be, e->x, e->xb2, m->hidden);
        if (op->layer >= 0 && is(op, "ffn.residual") && e->w.layers[op->layer].sh_down.data)
            be->add(be, e->x, e->xb, m->hidden); /* the shared expert's part */
        return 0;
    }
    if (op->kind != SOL_OP_ACT || !(is(op, "ffn.act") || is(op, "ffn.shared.act")))
        return -1;
    if (m->act == SOL_ACT_GELU)
        be->geglu(be, e->hb, e->hb2, op->n);
    else
        be->swiglu(be, e->hb, e->hb2, op->n);
    return 0;
}

static void run_embed(sol_engine *e)
{
    const sol_model *m = &e->model;
    e->be->embed(e->be, &e->w.token_embd, e->x);
    if (m->embed_scale) /* Gemma: sqrt(hidden), rounded to f32 as the reference does */
        e->be->scale(e->be, e->x, (float)sqrt((double)m->hidden), m->hidden);
}

/* After the LM head (the only matmul outside the layers): Gemma-2's capped
 * logits. */
static void cap_logits(sol_engine *e, const sol_op *op, float *out)
{
    if (op->layer < 0 && e->model.final_softcap > 0)
        e->be->softcap(e->be, out, (float)e->model.final_softcap, (int)op->m, e->model.vocab);
}

static int run_matmul(sol_engine *e, const sol_op *op, int rows)
{
    matmul_binding mm;
    if (op->layer >= 0 && is_latent(e) && run_absorb(e, op) == 0)
        return 0;
    if (bind_matmul(e, op, rows, &mm))
        return -1;
    e->be->matmul(e->be, mm.w, mm.bias, mm.in, (int)op->m, mm.out);
    cap_logits(e, op, mm.out);
    return 0;
}

/* Launches op on the backend (the sample op runs on the host after sync). */
static int exec_op(sol_engine *e, const sol_op *op, int rows, sol_err *err)
{
    sol_backend *be = e->be;
    int rc = -1;
    switch (op->kind) {
    case SOL_OP_EMBED:
        run_embed(e);
        return 0;
    case SOL_OP_NORM:
        rc = run_norm(e, op);
        break;
    case SOL_OP_MATMUL:
        rc = run_matmul(e, op, rows);
        break;
    case SOL_OP_ROPE:
        run_rope(e, op);
        return 0;
    case SOL_OP_KV_WRITE:
        if (is_latent(e))
            break; /* only with its norm (run_latent_kv_write) */
        be->kv_write(be, e->k, e->v, &e->cache[op->layer]);
        return 0;
    case SOL_OP_ATTENTION:
        run_attention(e, op, rows);
        return e->simlayer_pending ? sol_engine_stash_queries(e, op->layer, rows, err) : 0;
    case SOL_OP_ROUTER: {
        sol_router r = sol_engine_router(e, op->layer);
        be->route(be, e->router_logits, &r, sol_engine_moe_ids(e, op->layer, rows), e->moe_weights);
        return 0;
    }
    case SOL_OP_ADD:
    case SOL_OP_ACT:
        rc = run_elementwise(e, op);
        break;
    default:
        break;
    }
    if (rc == 0)
        return 0;
    return sol_fail(err, SOL_ERR_RUNTIME, "engine: op %s (%s) of the plan has no %s implementation", op->name,
                    sol_op_kind_name(op->kind), be->name);
}


/* The bound matmuls of a group as the backend's group calls take them. */
typedef struct matmul_args {
    const sol_weight_view *w[SOL_MATMUL_GROUP_MAX];
    const float *bias[SOL_MATMUL_GROUP_MAX];
    float *out[SOL_MATMUL_GROUP_MAX];
} matmul_args;

static matmul_args group_args(const matmul_binding *mm, int n)
{
    matmul_args a = {0};
    for (int j = 0; j < n; j++) {
        a.w[j] = mm[j].w;
        a.bias[j] = mm[j].bias;
        a.out[j] = mm[j].out;
    }
    return a;
}

/* Matmuls from op i on that read the same input (q/k/v, gate/up) run as one
 * backend launch. Returns how many ops ran, 0 when op i does not start such
 * a run of two or more. */
static int run_matmul_group(sol_engine *e, int i, int rows)
{
    matmul_binding mm[SOL_MATMUL_GROUP_MAX];
    int n = 0;
    while (n < SOL_MATMUL_GROUP_MAX && i + n < e->plan.n_ops) {
        const sol_op *op = &e->plan.ops[i + n];
        if (op->kind != SOL_OP_MATMUL || op->m != e->plan.ops[i].m || bind_matmul(e, op, rows, &mm[n]) ||
            (n > 0 && mm[n].in != mm[0].in))
            break;
        n++;
    }
    if (n < 2)
        return 0;
    matmul_args a = group_args(mm, n);
    e->be->matmul_group(e->be, n, a.w, a.bias, mm[0].in, (int)e->plan.ops[i].m, a.out);
    return n;
}

/* A pre-norm followed by the matmuls that read all of xb (q/k/v, gate/up,
 * the router, the LM head when every row gives logits): one backend call,
 * so a GPU folds the norm into the matmuls' input rather than wait for it.
 * The LM head of fewer rows reads xb from an offset and keeps the two
 * calls. Returns 1 + the matmuls, or 0 when op i does not start such a run
 * or the backend has no such call. */
static int run_norm_matmul(sol_engine *e, int i, int rows)
{
    const sol_op *norm_op = &e->plan.ops[i];
    const float *norm = e->be->rmsnorm_matmul_group ? pre_norm_weight(e, norm_op) : NULL;
    if (!norm)
        return 0;
    matmul_binding mm[SOL_MATMUL_GROUP_MAX];
    int n = 0;
    while (n < SOL_MATMUL_GROUP_MAX && i + 1 + n < e->plan.n_ops) {
        const sol_op *op = &e->plan.ops[i + 1 + n];
        if (op->kind != SOL_OP_MATMUL || op->m != rows || bind_matmul(e, op, rows, &mm[n]) || mm[n].in != e->xb)
            break;
        n++;
    }
    if (n == 0)
        return 0;
    matmul_args a = group_args(mm, n);
    e->be->rmsnorm_matmul_group(e->be, e->x, norm, (float)e->model.norm_eps, n, a.w, a.bias, rows, e->xb, a.out);
    for (int j = 0; j < n; j++)
        cap_logits(e, &e->plan.ops[i + 1 + j], a.out[j]);
    return n + 1;
}

/* RoPE followed by the KV write of the same layer: one backend call that
 * rotates and stores each K row in one pass. Returns 2, or 0 when op i does
 * not start such a pair. */
static int run_rope_kv_write(sol_engine *e, int i)
{
    const sol_op *op = &e->plan.ops[i], *next = i + 1 < e->plan.n_ops ? &e->plan.ops[i + 1] : NULL;
    if (op->kind != SOL_OP_ROPE || !next || next->kind != SOL_OP_KV_WRITE || next->layer != op->layer ||
        is_latent(e))
        return 0;
    const sol_model *m = &e->model;
    e->be->rope_kv_write(e->be, e->q, e->k, e->v, m->n_heads, m->head_dim, rope_of(e, op->layer),
                         &e->cache[next->layer]);
    scale_queries(e);
    return 2;
}

/* MLA: the latent's norm and the cache write as one backend call (the
 * latent normalised, the RoPE key rotated, the row stored). Returns 2, or 0
 * when op i does not start such a pair. */
static int run_latent_kv_write(sol_engine *e, int i)
{
    const sol_op *op = &e->plan.ops[i], *next = i + 1 < e->plan.n_ops ? &e->plan.ops[i + 1] : NULL;
    if (!is_latent(e) || op->kind != SOL_OP_NORM || !is(op, "attn.kv_a_norm") || !next ||
        next->kind != SOL_OP_KV_WRITE || next->layer != op->layer)
        return 0;
    const sol_model *m = &e->model;
    e->be->latent_kv_write(e->be, e->k, e->w.layers[op->layer].kv_a_norm, (float)m->norm_eps, m->kv_lora_rank,
                           &e->w.rope, &e->cache[op->layer]);
    return 2;
}

/* A MoE layer's routed experts (plan ops moe.gate, moe.up, moe.act,
 * moe.down) as one backend call that reads each chosen expert once.
 * Returns 4, or 0 when op i does not start them. */
static int run_moe(sol_engine *e, int i, int rows)
{
    const sol_op *op = &e->plan.ops[i];
    if (op->kind != SOL_OP_MATMUL || op->layer < 0 || !is(op, "moe.gate") || i + 3 >= e->plan.n_ops ||
        !is(&e->plan.ops[i + 3], "moe.down"))
        return 0;
    const sol_model *m = &e->model;
    const sol_layer_weights *l = &e->w.layers[op->layer];
    int k = m->n_experts_active;
    e->be->moe_ffn(e->be, &l->exp_gate, &l->exp_up, &l->exp_down, m->n_experts, e->xb,
                   sol_engine_moe_ids(e, op->layer, rows), e->moe_weights, k, e->xb2);
    return 4;
}

/* The greedy choice over each sequence's last logits row on the device,
 * or its sample_k best for the host to sample from. */
static int run_device_sample(sol_engine *e)
{
    int64_t vocab = e->model.vocab;
    for (int s = 0; s < e->seqs; s++) {
        const float *row = e->logits + (size_t)(e->logits_rows - e->seqs + s) * vocab;
        if (e->sample_k > 0)
            e->be->top_k(e->be, row, vocab, e->sample_k, e->cand_vals_dev + (size_t)s * e->sample_k,
                         e->cand_ids_dev + (size_t)s * e->sample_k);
        else
            e->be->argmax(e->be, row, vocab, e->next_dev + s);
    }
    return 1;
}

int sol_engine_launch_ops(sol_engine *e, int rows, int device_choice, int *spans, sol_err *err)
{
    int rc = 0;
    *spans = 0;
    for (int i = 0; i < e->plan.n_ops && !rc;) {
        const sol_op *op = &e->plan.ops[i];
        if (op->kind == SOL_OP_SAMPLE && !device_choice) {
            i++; /* on the host after the sync */
            continue;
        }
        e->be->mark(e->be, op->name, op->layer);
        int n = op->kind == SOL_OP_SAMPLE ? run_device_sample(e) : run_matmul_group(e, i, rows);
        if (n == 0)
            n = run_norm_matmul(e, i, rows);
        if (n == 0)
            n = run_rope_kv_write(e, i);
        if (n == 0)
            n = run_latent_kv_write(e, i);
        if (n == 0)
            n = run_moe(e, i, rows);
        if (n == 0) {
            rc = exec_op(e, op, rows, err);
            n = 1;
        }
        e->span_first[*spans] = i;
        e->span_ops[*spans] = n;
        ++*spans;
        i += n;
    }
    return rc;
}
