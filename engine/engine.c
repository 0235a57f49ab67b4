/* The decode engine (see engine.h). A step builds the plan for its tokens
 * and position, then runs it top to bottom: each op is resolved to its
 * weights and buffers and handed to the backend, and its time recorded. */
#include "engine/engine.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "engine/weights.h"
#include "util/clock.h"

struct sol_engine {
    sol_gguf gguf;
    int gguf_open;
    sol_model model;
    sol_kv_scheme kv;
    sol_model_weights w;
    sol_backend *be;
    sol_engine_config cfg;
    int64_t ctx, pos;
    int chunk;
    sol_kv_cache_layer *cache;
    void *cache_mem;
    /* activations, chunk rows each */
    float *x, *xb, *xb2, *q, *k, *v, *att, *hb, *hb2, *logits;
    int logits_rows;
    int32_t *history; /* every token in the cache, for the sampler */
    sol_sampler sampler;
    sol_plan plan;
    sol_timing_ring timing;
    void *weights_copy; /* the tensor data in huge pages (NULL: using the mapping) */
};

static void rebase(sol_weight_view *v, const uint8_t *from, uint8_t *to)
{
    v->data = to + ((const uint8_t *)v->data - from);
}

/* Copies the tensor data into memory backed by transparent huge pages and
 * points the weights there. Streaming reads across 4 KiB pages stop the
 * hardware prefetchers at every page boundary: on this VM `sol hw probe`
 * reads 26 GB/s from 4 KiB pages and 63 GB/s from huge pages. Best effort:
 * without memory or THP the mapping is used. */
static void copy_to_huge_pages(sol_engine *e)
{
    const sol_gguf *g = &e->gguf;
    size_t bytes = g->size - (size_t)(g->data - g->map), huge = (size_t)2 << 20;
    uint8_t *copy = aligned_alloc(huge, (bytes + huge - 1) / huge * huge);
    if (!copy)
        return;
    madvise(copy, (bytes + huge - 1) / huge * huge, MADV_HUGEPAGE);
    memcpy(copy, g->data, bytes);
    const uint8_t *from = g->data;
    rebase(&e->w.token_embd, from, copy);
    rebase(&e->w.output, from, copy);
    for (int i = 0; i < e->w.n_layers; i++) {
        sol_layer_weights *l = &e->w.layers[i];
        sol_weight_view *views[] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->gate, &l->up, &l->down};
        for (size_t j = 0; j < sizeof views / sizeof views[0]; j++)
            rebase(views[j], from, copy);
    }
    e->weights_copy = copy;
}

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
    int family = !strcmp(m->arch, "llama") || !strcmp(m->arch, "mistral") || !strcmp(m->arch, "qwen2");
    if (!family || m->n_experts > 0 || m->kv_lora_rank > 0 || m->post_norms || m->qk_norm)
        return sol_fail(err, SOL_ERR_RUNTIME,
                        "%s: the CPU engine runs dense llama-family models (llama, mistral, qwen2); %s%s is "
                        "not supported yet",
                        e->gguf.path, m->arch, m->n_experts > 0 ? " with experts" : "");
    if (m->head_dim > SOL_MAX_HEAD_DIM)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: head_dim %d is above the CPU engine's %d", e->gguf.path, m->head_dim,
                        SOL_MAX_HEAD_DIM);
    if (e->cfg.kvtype != SOL_DT_F32 && e->cfg.kvtype != SOL_DT_F16)
        return sol_fail(err, SOL_ERR_USAGE, "--kvtype: the CPU engine stores the cache as f32 or f16, not %s",
                        sol_dtype_name(e->cfg.kvtype));
    return 0;
}

static int alloc_buffers(sol_engine *e, sol_err *err)
{
    const sol_model *m = &e->model;
    size_t rows = (size_t)e->chunk, q_width = (size_t)m->n_heads * m->head_dim;
    size_t kv_width = (size_t)m->n_kv_heads * m->head_dim;
    size_t elem = e->cfg.kvtype == SOL_DT_F16 ? 2 : 4;
    e->x = malloc(rows * m->hidden * sizeof(float));
    e->xb = malloc(rows * m->hidden * sizeof(float));
    e->xb2 = malloc(rows * m->hidden * sizeof(float));
    e->q = malloc(rows * q_width * sizeof(float));
    e->att = malloc(rows * q_width * sizeof(float));
    e->k = malloc(rows * kv_width * sizeof(float));
    e->v = malloc(rows * kv_width * sizeof(float));
    e->hb = malloc(rows * m->ffn * sizeof(float));
    e->hb2 = malloc(rows * m->ffn * sizeof(float));
    e->logits = malloc(rows * m->vocab * sizeof(float));
    e->history = malloc((size_t)e->ctx * sizeof *e->history);
    e->cache = calloc((size_t)m->n_layers, sizeof *e->cache);
    size_t layer_bytes = (size_t)e->ctx * kv_width * elem;
    e->cache_mem = malloc(layer_bytes * 2 * m->n_layers);
    if (!e->x || !e->xb || !e->xb2 || !e->q || !e->att || !e->k || !e->v || !e->hb || !e->hb2 || !e->logits ||
        !e->history || !e->cache || !e->cache_mem)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory for a %lld-token cache (%zu MiB); try --ctx",
                        (long long)e->ctx, layer_bytes * 2 * m->n_layers >> 20);
    for (int i = 0; i < m->n_layers; i++) {
        char *base = (char *)e->cache_mem + layer_bytes * 2 * i;
        e->cache[i] = (sol_kv_cache_layer){e->cfg.kvtype, base, base + layer_bytes, e->ctx, (int64_t)kv_width};
    }
    return 0;
}

int sol_engine_open(const char *gguf_path, const sol_engine_config *cfg, sol_engine **out, sol_err *err)
{
    sol_engine *e = calloc(1, sizeof *e);
    if (!e)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    e->cfg = *cfg;
    e->chunk = cfg->chunk > 0 ? cfg->chunk : 64;
    int rc = sol_model_from_gguf(gguf_path, &e->model, err);
    if (!rc && !(rc = sol_gguf_open(&e->gguf, gguf_path, err)))
        e->gguf_open = 1;
    if (rc || (rc = check_supported(e, err)) || (rc = sol_weights_bind(&e->gguf, &e->model, &e->w, err)))
        goto fail;
    if (!cfg->mapped_weights)
        copy_to_huge_pages(e);
    sol_kv_from_model(&e->model, &e->kv);
    e->ctx = cfg->ctx > 0 ? cfg->ctx : e->model.ctx_max;
    if (e->ctx > e->model.ctx_max) {
        rc = sol_fail(err, SOL_ERR_USAGE, "--ctx: %lld tokens is beyond %s's limit of %d", (long long)e->ctx,
                      e->model.name, e->model.ctx_max);
        goto fail;
    }
    if ((rc = alloc_buffers(e, err)) || (rc = sol_cpu_backend_new(cfg->threads, &e->be, err)))
        goto fail;
    e->be->tuning = cfg->tuning;
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
    if (e->be)
        e->be->destroy(e->be);
    sol_weights_free(&e->w);
    free(e->weights_copy);
    if (e->gguf_open)
        sol_gguf_close(&e->gguf);
    float *buffers[] = {e->x, e->xb, e->xb2, e->q, e->k, e->v, e->att, e->hb, e->hb2, e->logits};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
        free(buffers[i]);
    free(e->history);
    free(e->cache);
    free(e->cache_mem);
    sol_sampler_free(&e->sampler);
    sol_plan_free(&e->plan);
    sol_timing_free(&e->timing);
    free(e);
}

const sol_model *sol_engine_model(const sol_engine *e) { return &e->model; }
const sol_gguf *sol_engine_gguf(const sol_engine *e) { return &e->gguf; }
const sol_backend *sol_engine_backend(const sol_engine *e) { return e->be; }
int64_t sol_engine_pos(const sol_engine *e) { return e->pos; }
int64_t sol_engine_ctx(const sol_engine *e) { return e->ctx; }
sol_timing_ring *sol_engine_timing(sol_engine *e) { return &e->timing; }
int sol_engine_last_rows(const sol_engine *e) { return e->logits_rows; }

void sol_engine_reset(sol_engine *e)
{
    e->pos = 0;
    e->logits_rows = 0;
}

const float *sol_engine_logits(const sol_engine *e, int row)
{
    return e->logits + (size_t)row * e->model.vocab;
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
    else if (l && is(op, "attn.o"))
        *b = (matmul_binding){&l->wo, NULL, e->att, e->xb2};
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

static int exec_op(sol_engine *e, const sol_op *op, const int32_t *tokens, int rows, int32_t *next, sol_err *err)
{
    const sol_model *m = &e->model;
    sol_backend *be = e->be;
    matmul_binding mm;
    const float *nw;
    switch (op->kind) {
    case SOL_OP_EMBED:
        be->embed(be, &e->w.token_embd, tokens, rows, e->x);
        return 0;
    case SOL_OP_NORM:
        if (!(nw = norm_weight(e, op)))
            break;
        be->rmsnorm(be, e->x, nw, (float)m->norm_eps, rows, m->hidden, e->xb);
        return 0;
    case SOL_OP_MATMUL:
        if (bind_matmul(e, op, rows, &mm))
            break;
        be->matmul(be, mm.w, mm.bias, mm.in, (int)op->m, mm.out);
        return 0;
    case SOL_OP_ROPE:
        be->rope(be, e->q, rows, m->n_heads, m->head_dim, e->pos, &e->w.rope);
        be->rope(be, e->k, rows, m->n_kv_heads, m->head_dim, e->pos, &e->w.rope);
        return 0;
    case SOL_OP_KV_WRITE:
        be->kv_write(be, e->k, e->v, rows, e->pos, &e->cache[op->layer]);
        return 0;
    case SOL_OP_ATTENTION: {
        const sol_kv_layer *info = &e->plan.layers[op->layer];
        be->attention(be, e->q, rows, e->pos, &e->cache[info->owner], m->n_heads, m->n_kv_heads, m->head_dim,
                      info->tokens_cap, e->att);
        return 0;
    }
    case SOL_OP_ADD:
        be->add(be, e->x, e->xb2, (int64_t)rows * m->hidden);
        return 0;
    case SOL_OP_ACT:
        be->swiglu(be, e->hb, e->hb2, rows, m->ffn);
        return 0;
    case SOL_OP_SAMPLE: {
        int last = e->logits_rows - 1;
        *next = sol_sample(&e->sampler, e->logits + (size_t)last * m->vocab, e->history, (int)(e->pos + rows));
        return 0;
    }
    default:
        break;
    }
    return sol_fail(err, SOL_ERR_RUNTIME, "engine: op %s (%s) of the plan has no CPU implementation", op->name,
                    sol_op_kind_name(op->kind));
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
static int run_rope_kv_write(sol_engine *e, int i, int rows)
{
    const sol_op *op = &e->plan.ops[i], *next = i + 1 < e->plan.n_ops ? &e->plan.ops[i + 1] : NULL;
    if (op->kind != SOL_OP_ROPE || !next || next->kind != SOL_OP_KV_WRITE || next->layer != op->layer)
        return 0;
    const sol_model *m = &e->model;
    e->be->rope_kv_write(e->be, e->q, e->k, e->v, rows, m->n_heads, m->head_dim, e->pos, &e->w.rope,
                         &e->cache[next->layer]);
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

/* One step of `rows` tokens: build the plan, run it op by op (matmuls of a
 * shared input together), time it. */
static int run_step(sol_engine *e, const int32_t *tokens, int rows, int all_logits, sol_step_fn on_step,
                    void *user, int32_t *next, sol_err *err)
{
    sol_plan_params p = {.batch = 1, .n_tokens = rows, .pos = e->pos, .wtype = e->model.wtype,
                         .atype = SOL_DT_F32, .kvtype = e->cfg.kvtype, .tp = 1, .all_logits = all_logits,
                         .int8_dots_below = e->be->activations == SOL_ACT_Q8 ? e->be->int8_dots_below : 0};
    sol_plan_free(&e->plan);
    int rc = sol_plan_build(&e->model, &e->kv, &p, &e->plan, err);
    if (rc)
        return rc;
    memcpy(e->history + e->pos, tokens, (size_t)rows * sizeof *tokens);
    e->logits_rows = all_logits ? rows : 1;
    sol_step_timing *slot = sol_timing_begin(&e->timing, e->pos, rows, e->plan.n_ops);
    double start = sol_now_s(), t0 = start;
    for (int i = 0; i < e->plan.n_ops && !rc;) {
        int n = run_matmul_group(e, i, rows);
        if (n == 0)
            n = run_rope_kv_write(e, i, rows);
        if (n == 0) {
            rc = exec_op(e, &e->plan.ops[i], tokens, rows, next, err);
            n = 1;
        }
        double t1 = sol_now_s();
        share_time(&e->plan, i, n, t1 - t0, slot);
        t0 = t1;
        i += n;
    }
    slot->total_s = t0 - start;
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
        int rc = run_step(e, tokens + done, rows, all_logits, on_step, user, next, err);
        if (rc)
            return rc;
        done += rows;
    }
    return 0;
}
