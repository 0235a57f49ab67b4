/* The decode engine (see engine.h). A step builds the plan for its tokens
 * and position, then runs it top to bottom: each op is resolved to its
 * weights and buffers and handed to the backend, and its time recorded. */
#include "engine/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_impl.h"
#include "engine/kv_rules.h"
#include "engine/weights.h"
#include "util/clock.h"

void sol_engine_defaults(sol_engine_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kvtype = SOL_DT_F16;
    cfg->chunk = 64;
    cfg->activations = SOL_ACT_Q8;
    sol_sampler_defaults(&cfg->sampler);
}


/* Whether any matmul weight is a block (integer-code) type. Without one,
 * 8-bit activations change nothing but would still make rmsnorm and swiglu
 * quantise outputs no matmul takes, so the backend is told f32. */
static int any_block_weights(const sol_model_weights *w)
{
    if (sol_dtype_block_elems(w->output.type) > 1)
        return 1;
    for (int i = 0; i < w->n_layers; i++) {
        const sol_layer_weights *l = &w->layers[i];
        const sol_weight_view *v[] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->gate, &l->up, &l->down};
        for (size_t j = 0; j < sizeof v / sizeof v[0]; j++)
            if (sol_dtype_block_elems(v[j]->type) > 1)
                return 1;
    }
    return 0;
}

static int check_supported(const sol_engine *e, sol_err *err)
{
    const sol_model *m = &e->model;
    const sol_backend *be = e->be;
    int family = !strcmp(m->arch, "llama") || !strcmp(m->arch, "mistral") || !strcmp(m->arch, "qwen2");
    if (!family || m->n_experts > 0 || m->q_lora_rank > 0 || m->post_norms || m->qk_norm)
        return sol_fail(err, SOL_ERR_RUNTIME,
                        "%s: the engine runs dense llama-family models (llama, mistral, qwen2); %s%s is "
                        "not supported yet",
                        e->gguf.path, m->arch, m->n_experts > 0 ? " with experts" : "");
    if (m->head_dim > be->caps.max_head_dim)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: head_dim %d is above the %s backend's %d", e->gguf.path,
                        m->head_dim, be->name, be->caps.max_head_dim);
    if (!sol_caps_has(be->caps.kv_types, e->cfg.kvtype))
        return sol_fail(err, SOL_ERR_USAGE, "--kvtype: the %s backend does not store a %s cache", be->name,
                        sol_dtype_name(e->cfg.kvtype));
    int block = sol_dtype_block_elems(e->cfg.kvtype);
    if (m->head_dim % block || (m->kv_lora_rank + m->qk_rope_dim) % block)
        return sol_fail(err, SOL_ERR_USAGE, "--kvtype %s: its blocks of %d do not divide %s's %s of %d",
                        sol_dtype_name(e->cfg.kvtype), block, e->gguf.path,
                        m->kv_lora_rank > 0 ? "latent + RoPE key" : "head size",
                        m->kv_lora_rank > 0 ? m->kv_lora_rank + m->qk_rope_dim : m->head_dim);
    if (m->kv_lora_rank > 0 && (!be->head_matmul || !be->latent_kv_write))
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: MLA needs head_matmul and latent_kv_write, which the %s "
                        "backend does not have yet (the cpu backend does)", e->gguf.path, be->name);
    if (m->kv_lora_rank + m->qk_rope_dim > be->caps.max_head_dim)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: an MLA row of %d is above the %s backend's %d", e->gguf.path,
                        m->kv_lora_rank + m->qk_rope_dim, be->name, be->caps.max_head_dim);
    return 0;
}

/* SimLayerKV keeps sinks in the cache; the backend must honour them. */
static int prepare_simlayer(sol_engine *e, sol_err *err)
{
    if (e->kv.lazy_fraction <= 0)
        return 0;
    if (!e->be->caps.kv_sinks)
        return sol_fail(err, SOL_ERR_RUNTIME, "--kv simlayer: the %s backend's attention does not keep sinks",
                        e->be->name);
    e->lazy = calloc((size_t)e->model.n_layers, 1);
    e->lazy_score = calloc((size_t)e->model.n_layers, sizeof *e->lazy_score);
    if (!e->lazy || !e->lazy_score)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    e->kv.lazy_layers = e->lazy; /* none lazy until the prompt is scored */
    e->simlayer_pending = 1;
    const sol_model *m = &e->model;
    e->simlayer_dk = m->kv_lora_rank > 0 ? m->kv_lora_rank + m->qk_rope_dim : m->head_dim;
    e->simlayer_q = malloc((size_t)m->n_layers * SOL_SIMLAYER_QUERY_ROWS * m->n_heads * e->simlayer_dk * sizeof(float));
    if (!e->simlayer_q)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    return 0;
}

static int alloc_buffers(sol_engine *e, sol_err *err)
{
    const sol_model *m = &e->model;
    size_t rows = (size_t)e->chunk, q_width = (size_t)m->n_heads * m->head_dim;
    size_t kv_width = (size_t)m->n_kv_heads * m->head_dim, f = sizeof(float);
    size_t latent = (size_t)(m->kv_lora_rank + m->qk_rope_dim), q_abs = m->kv_lora_rank > 0 ? m->n_heads * latent : 0;
    size_t att = q_abs > q_width ? q_abs : q_width; /* MLA attends in the latent space */
    kv_width = latent > kv_width ? latent : kv_width;
    struct {
        float **p;
        size_t elems;
    } act[] = {{&e->x, m->hidden},   {&e->xb, m->hidden},  {&e->xb2, m->hidden}, {&e->q, q_width},
               {&e->att, att},       {&e->k, kv_width},    {&e->v, kv_width},    {&e->hb, (size_t)m->ffn},
               {&e->hb2, (size_t)m->ffn}, {&e->logits, (size_t)m->vocab}, {&e->q_abs, q_abs}};
    int rc = 0;
    for (size_t i = 0; i < sizeof act / sizeof act[0] && !rc; i++) {
        void *p = NULL;
        if (act[i].elems == 0)
            continue;
        rc = e->be->alloc(e->be, rows * act[i].elems * f, &p, err);
        *act[i].p = p;
    }
    if (rc)
        return rc;
    void *next = NULL;
    rc = e->be->alloc(e->be, sizeof(int32_t), &next, err);
    e->next_dev = next;
    if (rc)
        return rc;
    e->logits_host = malloc(rows * m->vocab * f);
    e->history = malloc((size_t)e->ctx * sizeof *e->history);
    e->cache = calloc((size_t)m->n_layers, sizeof *e->cache);
    e->cache_block = calloc((size_t)m->n_layers, sizeof *e->cache_block);
    if (!e->logits_host || !e->history || !e->cache || !e->cache_block)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    return sol_engine_cache_alloc(e, err);
}

int sol_engine_open(const char *gguf_path, const sol_engine_config *cfg, sol_engine **out, sol_err *err)
{
    if (!cfg->backend)
        return sol_fail(err, SOL_ERR_USAGE, "engine: no backend given");
    sol_engine *e = calloc(1, sizeof *e);
    if (!e)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    e->cfg = *cfg;
    e->be = cfg->backend;
    e->chunk = cfg->chunk > 0 ? cfg->chunk : 64;
    int rc = sol_model_from_gguf(gguf_path, &e->model, err);
    if (!rc && !(rc = sol_gguf_open(&e->gguf, gguf_path, err)))
        e->gguf_open = 1;
    if (rc || (rc = check_supported(e, err)) || (rc = sol_weights_bind(&e->gguf, &e->model, &e->be->caps, &e->w, err)))
        goto fail;
    if ((rc = sol_engine_kv_scheme(&e->gguf, &e->model, cfg->kv, &e->kv, err)) || (rc = prepare_simlayer(e, err)))
        goto fail;
    e->ctx = cfg->ctx > 0 ? cfg->ctx : e->model.ctx_max;
    if (e->ctx > e->model.ctx_max) {
        rc = sol_fail(err, SOL_ERR_USAGE, "--ctx: %lld tokens is beyond %s's limit of %d", (long long)e->ctx,
                      e->model.name, e->model.ctx_max);
        goto fail;
    }
    if ((rc = sol_weights_place(e->be, &e->model, &e->w, err)) || (rc = alloc_buffers(e, err)))
        goto fail;
    e->be->activations = any_block_weights(&e->w) ? cfg->activations : SOL_ACT_F32;
    if (sol_sampler_init(&e->sampler, &cfg->sampler, e->model.vocab) ||
        sol_timing_init(&e->timing, 32 + 24 * e->model.n_layers)) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
        goto fail;
    }
    *out = e;
    return 0;
fail:
    sol_engine_close(e);
    return rc;
}

void sol_engine_close(sol_engine *e)
{
    if (!e)
        return;
    sol_backend *be = e->be;
    if (be) /* nothing of ours may be in flight when it is freed */
        be->sync(be, NULL);
    sol_weights_free(&e->w);
    float *buffers[] = {e->x, e->xb, e->xb2, e->q, e->k, e->v, e->att, e->hb, e->hb2, e->logits, e->q_abs};
    for (size_t i = 0; be && i < sizeof buffers / sizeof buffers[0]; i++)
        be->free(be, buffers[i]);
    if (be) {
        sol_engine_cache_free(e);
        be->free(be, e->next_dev);
    }
    if (e->gguf_open)
        sol_gguf_close(&e->gguf);
    free(e->logits_host);
    free(e->history);
    free(e->cache);
    free(e->cache_block);
    free(e->lazy);
    free(e->lazy_score);
    free(e->simlayer_q);
    free(e->span_first);
    free(e->span_ops);
    free(e->span_s);
    sol_sampler_free(&e->sampler);
    sol_plan_free(&e->plan);
    sol_timing_free(&e->timing);
    free(e);
}

const sol_model *sol_engine_model(const sol_engine *e) { return &e->model; }
const sol_gguf *sol_engine_gguf(const sol_engine *e) { return &e->gguf; }
const sol_backend *sol_engine_backend(const sol_engine *e) { return e->be; }
const sol_kv_scheme *sol_engine_kv(const sol_engine *e) { return &e->kv; }
sol_dtype sol_engine_kv_type(const sol_engine *e) { return e->cfg.kvtype; }
double sol_engine_kv_allocated(const sol_engine *e) { return e->cache_bytes; }
double sol_engine_kv_read_last_step(const sol_engine *e) { return e->kv_read_step; }
int64_t sol_engine_pos(const sol_engine *e) { return e->pos; }
int64_t sol_engine_ctx(const sol_engine *e) { return e->ctx; }
sol_timing_ring *sol_engine_timing(sol_engine *e) { return &e->timing; }
int sol_engine_last_rows(const sol_engine *e) { return e->logits_rows; }

void sol_engine_reset(sol_engine *e)
{
    e->pos = 0;
    e->logits_rows = 0;
    sol_err err;
    e->reset_failed = sol_engine_cache_reset(e, &err) != 0;
}

int sol_engine_simlayer(const sol_engine *e, sol_simlayer_state *out)
{
    if (!e->lazy)
        return -1;
    *out = (sol_simlayer_state){!e->simlayer_pending, e->model.n_layers, 0, e->lazy_score, e->lazy,
                                e->cfg.simlayer_threshold, e->simlayer_query_rows};
    for (int i = 0; i < e->model.n_layers; i++)
        out->n_lazy += e->lazy[i];
    return 0;
}

/* The last step's logits rows into logits_host, once per step. */
static int fetch_logits(sol_engine *e, sol_err *err)
{
    if (e->logits_fresh)
        return 0;
    size_t bytes = (size_t)e->logits_rows * e->model.vocab * sizeof(float);
    int rc = e->be->download(e->be, e->logits_host, e->logits, bytes, err);
    e->logits_fresh = !rc;
    return rc;
}

int sol_engine_logits(sol_engine *e, int row, const float **out, sol_err *err)
{
    *out = NULL;
    if (row < 0 || row >= e->logits_rows)
        return sol_fail(err, SOL_ERR_USAGE, "logits row %d of a step of %d", row, e->logits_rows);
    int rc = fetch_logits(e, err);
    if (!rc)
        *out = e->logits_host + (size_t)row * e->model.vocab;
    return rc;
}

/* ---- one op ------------------------------------------------------------- */

typedef struct {
    const sol_weight_view *w;
    const float *bias;
    const float *in;
    float *out;
} matmul_binding;

static int is(const sol_op *op, const char *name) { return strcmp(op->name, name) == 0; }

static int bind_matmul(sol_engine *e, const sol_op *op, int rows, matmul_binding *b)
{
    const sol_layer_weights *l = op->layer >= 0 ? &e->w.layers[op->layer] : NULL;
    if (l && is(op, "attn.q"))
        *b = (matmul_binding){&l->wq, l->bq, e->xb, e->q};
    else if (l && is(op, "attn.k"))
        *b = (matmul_binding){&l->wk, l->bk, e->xb, e->k};
    else if (l && is(op, "attn.v"))
        *b = (matmul_binding){&l->wv, l->bv, e->xb, e->v};
    else if (l && is(op, "attn.kv_a")) /* MLA: latent + RoPE key rows */
        *b = (matmul_binding){&l->kv_a, NULL, e->xb, e->k};
    else if (l && is(op, "attn.o")) /* MLA: the values came back through v_absorb into q */
        *b = (matmul_binding){&l->wo, NULL, l->v_absorb.data ? e->q : e->att, e->xb2};
    else if (l && is(op, "ffn.gate"))
        *b = (matmul_binding){&l->gate, NULL, e->xb, e->hb};
    else if (l && is(op, "ffn.up"))
        *b = (matmul_binding){&l->up, NULL, e->xb, e->hb2};
    else if (l && is(op, "ffn.down"))
        *b = (matmul_binding){&l->down, NULL, e->hb, e->xb2};
    else if (!l && is(op, "lm_head")) /* the plan's rows are the last op->m rows */
        *b = (matmul_binding){&e->w.output, NULL, e->xb + (size_t)(rows - op->m) * e->model.hidden, e->logits};
    else
        return -1;
    return 0;
}

static const float *norm_weight(const sol_engine *e, const sol_op *op)
{
    if (op->layer >= 0 && is(op, "attn.norm"))
        return e->w.layers[op->layer].attn_norm;
    if (op->layer >= 0 && is(op, "ffn.norm"))
        return e->w.layers[op->layer].ffn_norm;
    if (op->layer < 0 && is(op, "output.norm"))
        return e->w.output_norm;
    return NULL;
}

/* The cache rows attention touches for query rows pos .. pos + rows - 1,
 * each seeing the newest `window` positions (0: all) and the sinks below
 * them: from the first row's first position to the last row. */
static int64_t kv_rows_read(int64_t pos, int rows, int64_t window, int64_t sinks)
{
    int64_t first = window > 0 && pos + 1 > window ? pos + 1 - window : 0;
    return (sinks < first ? sinks : first) + pos + rows - first;
}

static int is_latent(const sol_engine *e) { return e->kv.heads == SOL_KV_MLA; }

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
    e->kv_read_step += (double)kv_rows_read(e->pos, rows, window, cache->sinks) * sol_engine_token_bytes(e, owner);
}

/* Launches op on the backend (the sample op runs on the host after sync). */
static int exec_op(sol_engine *e, const sol_op *op, int rows, sol_err *err)
{
    const sol_model *m = &e->model;
    sol_backend *be = e->be;
    matmul_binding mm;
    const float *nw;
    switch (op->kind) {
    case SOL_OP_EMBED:
        be->embed(be, &e->w.token_embd, e->x);
        return 0;
    case SOL_OP_NORM:
        if (op->layer >= 0 && is(op, "attn.kv_a_norm"))
            return 0; /* MLA: done by the cache write (run_latent_kv_write); a sharing layer stores nothing */
        if (!(nw = norm_weight(e, op)))
            break;
        be->rmsnorm(be, e->x, nw, (float)m->norm_eps, m->hidden, e->xb);
        return 0;
    case SOL_OP_MATMUL:
        if (op->layer >= 0 && is_latent(e) && run_absorb(e, op) == 0)
            return 0;
        if (bind_matmul(e, op, rows, &mm))
            break;
        be->matmul(be, mm.w, mm.bias, mm.in, (int)op->m, mm.out);
        return 0;
    case SOL_OP_ROPE:
        if (is_latent(e)) { /* the queries' RoPE part; the key's is rotated as it is stored */
            be->rope(be, e->q, m->n_heads, m->head_dim, &e->w.rope_q_mla);
            return 0;
        }
        be->rope(be, e->q, m->n_heads, m->head_dim, &e->w.rope);
        be->rope(be, e->k, m->n_kv_heads, m->head_dim, &e->w.rope);
        return 0;
    case SOL_OP_KV_WRITE:
        if (is_latent(e))
            break; /* only with its norm (run_latent_kv_write) */
        be->kv_write(be, e->k, e->v, &e->cache[op->layer]);
        return 0;
    case SOL_OP_ATTENTION:
        run_attention(e, op, rows);
        return e->simlayer_pending ? sol_engine_stash_queries(e, op->layer, rows, err) : 0;
    case SOL_OP_ADD:
        be->add(be, e->x, e->xb2, m->hidden);
        return 0;
    case SOL_OP_ACT:
        be->swiglu(be, e->hb, e->hb2, m->ffn);
        return 0;
    default:
        break;
    }
    return sol_fail(err, SOL_ERR_RUNTIME, "engine: op %s (%s) of the plan has no %s implementation", op->name,
                    sol_op_kind_name(op->kind), be->name);
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
    const sol_weight_view *w[SOL_MATMUL_GROUP_MAX];
    const float *bias[SOL_MATMUL_GROUP_MAX];
    float *out[SOL_MATMUL_GROUP_MAX];
    for (int j = 0; j < n; j++) {
        w[j] = mm[j].w;
        bias[j] = mm[j].bias;
        out[j] = mm[j].out;
    }
    e->be->matmul_group(e->be, n, w, bias, mm[0].in, (int)e->plan.ops[i].m, out);
    return n;
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
    e->be->rope_kv_write(e->be, e->q, e->k, e->v, m->n_heads, m->head_dim, &e->w.rope, &e->cache[next->layer]);
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

/* The time of ops i..i+n-1, run as one launch, shared in proportion to the
 * bytes each moves (the matmuls of a group are memory-bound in decode). */
static void share_time(const sol_plan *plan, int i, int n, double seconds, sol_step_timing *slot)
{
    double total = 0;
    for (int j = i; j < i + n; j++)
        total += plan->ops[j].weight_bytes + plan->ops[j].act_bytes;
    for (int j = i; j < i + n && j < slot->n_ops; j++) {
        double bytes = plan->ops[j].weight_bytes + plan->ops[j].act_bytes;
        slot->op_s[j] = n == 1 || total <= 0 ? seconds / n : seconds * bytes / total;
    }
}

/* Room for n timed spans. */
static int reserve_spans(sol_engine *e, int n, sol_err *err)
{
    if (n <= e->span_cap)
        return 0;
    int *first = realloc(e->span_first, (size_t)n * sizeof *first);
    if (first)
        e->span_first = first;
    int *ops = first ? realloc(e->span_ops, (size_t)n * sizeof *ops) : NULL;
    if (ops)
        e->span_ops = ops;
    double *sec = ops ? realloc(e->span_s, (size_t)n * sizeof *sec) : NULL;
    if (!sec)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    e->span_s = sec;
    e->span_cap = n;
    return 0;
}

/* The greedy choice over the last logits row, on the device. */
static int run_device_argmax(sol_engine *e)
{
    e->be->argmax(e->be, e->logits + (size_t)(e->logits_rows - 1) * e->model.vocab, e->model.vocab, e->next_dev);
    return 1;
}

/* Greedy decoding with no penalty needs only the argmax: the device picks
 * it and 4 bytes come back (the logits stay there until asked for). */
static int greedy_on_device(const sol_engine *e, int all_logits)
{
    const sol_sampler_config *s = &e->cfg.sampler;
    return !all_logits && s->temperature <= 0 && s->repeat_penalty == 1.0f && e->be->argmax;
}

/* Launches every op of the plan but the sample (unless the device takes
 * it: greedy_on_device), each run of ops that go as
 * one backend call (matmuls of a shared input, RoPE + KV write) under one
 * mark; returns the number of spans in *spans. */
static int launch_ops(sol_engine *e, int rows, int device_choice, int *spans, sol_err *err)
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
        int n = op->kind == SOL_OP_SAMPLE ? run_device_argmax(e) : run_matmul_group(e, i, rows);
        if (n == 0)
            n = run_rope_kv_write(e, i);
        if (n == 0)
            n = run_latent_kv_write(e, i);
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

/* The sample op's host side: with the device's greedy choice 4 bytes come
 * down; else the logits rows the caller sees come down and the last one is
 * sampled. Returns its seconds in *seconds. */
static int sample_on_host(sol_engine *e, int rows, int device_choice, int32_t *next, double *seconds, sol_err *err)
{
    double t0 = sol_now_s();
    size_t row_floats = (size_t)e->model.vocab;
    int rc;
    if (device_choice) {
        rc = e->be->download(e->be, next, e->next_dev, sizeof *next, err);
    } else {
        rc = fetch_logits(e, err);
        if (!rc)
            *next = sol_sample(&e->sampler, e->logits_host + (size_t)(e->logits_rows - 1) * row_floats, e->history,
                               (int)(e->pos + rows));
    }
    *seconds = sol_now_s() - t0;
    return rc;
}

/* One step of `rows` tokens: build the plan, launch it op by op (matmuls
 * of a shared input together), wait for it, sample; per-op times come from
 * the backend's marks. */
static int run_step(sol_engine *e, const int32_t *tokens, int rows, int all_logits, sol_step_fn on_step,
                    void *user, int32_t *next, sol_err *err)
{
    sol_plan_params p = {.batch = 1, .n_tokens = rows, .pos = e->pos, .wtype = e->model.wtype,
                         .atype = SOL_DT_F32, .kvtype = e->cfg.kvtype, .tp = 1, .all_logits = all_logits,
                         .int8_dots_below = e->be->activations == SOL_ACT_Q8 ? e->be->int8_dots_below : 0};
    sol_plan_free(&e->plan);
    int rc = sol_plan_build(&e->model, &e->kv, &p, &e->plan, err);
    if (rc || (rc = reserve_spans(e, e->plan.n_ops, err)))
        return rc;
    memcpy(e->history + e->pos, tokens, (size_t)rows * sizeof *tokens);
    e->logits_rows = all_logits ? rows : 1;
    e->kv_read_step = 0;
    sol_step_state state = {.pos = e->pos, .rows = rows, .tokens = tokens};
    if ((rc = e->be->begin_step(e->be, &state, err)))
        return rc;
    sol_step_timing *slot = sol_timing_begin(&e->timing, e->pos, rows, e->plan.n_ops);
    for (int j = 0; j < slot->n_ops; j++)
        slot->op_s[j] = 0;
    double start = sol_now_s();
    int spans = 0, device_choice = greedy_on_device(e, all_logits);
    e->logits_fresh = 0;
    rc = launch_ops(e, rows, device_choice, &spans, err);
    int synced = e->be->sync(e->be, rc ? NULL : err); /* always: nothing may stay in flight */
    rc = rc ? rc : synced;
    int timed = e->be->op_seconds(e->be, e->span_s, spans);
    for (int s = 0; s < spans; s++)
        share_time(&e->plan, e->span_first[s], e->span_ops[s], s < timed ? e->span_s[s] : 0, slot);
    for (int i = 0; i < e->plan.n_ops && !rc; i++)
        if (e->plan.ops[i].kind == SOL_OP_SAMPLE) {
            double seconds;
            rc = sample_on_host(e, rows, device_choice, next, &seconds, err);
            if (i < slot->n_ops) /* after the device's interval, if it had one */
                slot->op_s[i] += seconds;
        }
    slot->total_s = sol_now_s() - start;
    sol_timing_publish(&e->timing, slot);
    if (rc)
        return rc;
    e->pos += rows;
    if (on_step)
        on_step(user, &e->plan, slot->total_s);
    return 0;
}

int sol_engine_eval(sol_engine *e, const int32_t *tokens, int n, int all_logits, sol_step_fn on_step, void *user,
                    int32_t *next, sol_err *err)
{
    if (n < 1)
        return sol_fail(err, SOL_ERR_USAGE, "nothing to evaluate (0 tokens)");
    if (e->reset_failed)
        return sol_fail(err, SOL_ERR_RUNTIME, "the KV cache could not be restored to full size after a reset");
    int rc = n == 1 ? sol_engine_prompt_done(e, err) : 0; /* decoding starts: the prompt is done */
    if (rc)
        return rc;
    if (e->pos + n > e->ctx)
        return sol_fail(err, SOL_ERR_USAGE, "context full: %lld + %d tokens exceed the %lld-token context (--ctx)",
                        (long long)e->pos, n, (long long)e->ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= e->model.vocab)
            return sol_fail(err, SOL_ERR_USAGE, "token id %d outside the vocabulary (%d)", tokens[i], e->model.vocab);
    /* with all_logits, every chunk's logits must survive: one chunk only */
    if (all_logits && n > e->chunk)
        return sol_fail(err, SOL_ERR_USAGE, "all-position logits need n <= %d tokens per call", e->chunk);
    for (int done = 0; done < n;) {
        int rows = n - done < e->chunk ? n - done : e->chunk;
        rc = run_step(e, tokens + done, rows, all_logits, on_step, user, next, err);
        if (rc)
            return rc;
        done += rows;
    }
    return 0;
}
