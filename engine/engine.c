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
static int any_block_weights(sol_model_weights *w)
{
    if (sol_dtype_block_elems(w->output.type) > 1)
        return 1;
    for (int i = 0; i < w->n_layers; i++) {
        sol_weight_view *v[SOL_LAYER_MATRICES];
        sol_layer_matrices(&w->layers[i], v);
        for (int j = 0; j < SOL_LAYER_MATRICES; j++)
            if (v[j]->data && sol_dtype_block_elems(v[j]->type) > 1)
                return 1;
    }
    return 0;
}

/* The ABI 4 ops a model needs that the backend may lack (NULL entries):
 * the first missing one named, or NULL. */
static const char *missing_op(const sol_model *m, const sol_backend *be)
{
    if (m->n_experts > 0 && !be->route)
        return "route";
    if (m->n_experts > 0 && !be->moe_ffn)
        return "moe_ffn";
    if ((m->embed_scale || m->attn_scale > 0) && !be->scale)
        return "scale";
    if (m->final_softcap > 0 && !be->softcap)
        return "softcap";
    if (m->act == SOL_ACT_GELU && !be->geglu)
        return "geglu";
    if (m->qk_norm && !be->head_rmsnorm)
        return "head_rmsnorm";
    return NULL;
}

static const char *const engine_archs[] = {"llama", "mistral", "mixtral", "qwen2", "gemma2",
                                           "gemma3", "phi3", "deepseek_v2", "deepseek_v3"};

static int check_family(const sol_engine *e, sol_err *err)
{
    const sol_model *m = &e->model;
    size_t i = 0;
    while (i < sizeof engine_archs / sizeof *engine_archs && strcmp(m->arch, engine_archs[i]))
        i++;
    if (i == sizeof engine_archs / sizeof *engine_archs)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: the engine does not run the %s architecture", e->gguf.path, m->arch);
    const char *op = missing_op(m, e->be);
    if (op)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: %s needs the %s op, which the %s backend does not have yet",
                        e->gguf.path, m->arch, op, e->be->name);
    if (e->seqs > e->be->caps.max_seqs)
        return sol_fail(err, SOL_ERR_USAGE, "--batch %d: the %s backend steps at most %d sequence%s at once", e->seqs,
                        e->be->name, e->be->caps.max_seqs, e->be->caps.max_seqs == 1 ? "" : "s");
    return 0;
}

static int check_supported(const sol_engine *e, sol_err *err)
{
    const sol_model *m = &e->model;
    const sol_backend *be = e->be;
    int rc = check_family(e, err);
    if (rc)
        return rc;
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
    if (e->seqs > 1)
        return sol_fail(err, SOL_ERR_USAGE, "--kv simlayer: not with a batch of sequences (each would go lazy its own way)");
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

/* The device's top-k candidates of each sequence, and their host copies. */
static int alloc_candidates(sol_engine *e, sol_err *err)
{
    _Static_assert(SOL_SAMPLE_CANDIDATES_MAX <= SOL_TOP_K_MAX, "the sampler asks for no more than top_k gives");
    size_t n = (size_t)e->seqs * SOL_SAMPLE_CANDIDATES_MAX;
    void *vals = NULL, *ids = NULL;
    int rc = e->be->alloc(e->be, n * sizeof(float), &vals, err);
    e->cand_vals_dev = vals;
    if (!rc)
        rc = e->be->alloc(e->be, n * sizeof(int32_t), &ids, err);
    e->cand_ids_dev = ids;
    e->cand_vals = malloc(n * sizeof *e->cand_vals);
    e->cand_ids = malloc(n * sizeof *e->cand_ids);
    if (!rc && (!e->cand_vals || !e->cand_ids))
        rc = sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    return rc;
}

static int alloc_buffers(sol_engine *e, sol_err *err)
{
    const sol_model *m = &e->model;
    size_t rows = (size_t)e->chunk, q_width = (size_t)m->n_heads * m->head_dim;
    size_t kv_width = (size_t)m->n_kv_heads * m->head_dim, f = sizeof(float);
    size_t latent = (size_t)(m->kv_lora_rank + m->qk_rope_dim), q_abs = m->kv_lora_rank > 0 ? m->n_heads * latent : 0;
    size_t att = q_abs > q_width ? q_abs : q_width; /* MLA attends in the latent space */
    /* hb, hb2: the widest dense block, a layer's or the shared expert's */
    size_t shared = (size_t)m->moe_ffn * (size_t)m->n_shared_experts, ffn = (size_t)m->ffn;
    ffn = shared > ffn ? shared : ffn;
    kv_width = latent > kv_width ? latent : kv_width;
    struct {
        float **p;
        size_t elems;
    } act[] = {{&e->x, m->hidden},   {&e->xb, m->hidden},  {&e->xb2, m->hidden}, {&e->q, q_width},
               {&e->att, att},       {&e->k, kv_width},    {&e->v, kv_width},    {&e->hb, ffn},
               {&e->hb2, ffn},       {&e->logits, (size_t)m->vocab}, {&e->q_abs, q_abs},
               {&e->q_lat, (size_t)m->q_lora_rank}};
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
    rc = e->be->alloc(e->be, (size_t)e->seqs * sizeof(int32_t), &next, err);
    e->next_dev = next;
    if (!rc && e->be->top_k)
        rc = alloc_candidates(e, err);
    if (rc || (rc = sol_engine_moe_alloc(e, err)))
        return rc;
    e->logits_host = malloc(rows * m->vocab * f);
    e->history = malloc((size_t)e->ctx * e->seqs * sizeof *e->history);
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
    e->seqs = cfg->seqs > 1 ? cfg->seqs : 1;
    if (e->chunk < e->seqs) /* a step holds a row of each */
        e->chunk = e->seqs;
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
    float *buffers[] = {e->x, e->xb, e->xb2, e->q, e->k, e->v, e->att, e->hb, e->hb2, e->logits, e->q_abs, e->q_lat};
    for (size_t i = 0; be && i < sizeof buffers / sizeof buffers[0]; i++)
        be->free(be, buffers[i]);
    if (be) {
        sol_engine_cache_free(e);
        sol_engine_moe_free(e);
        be->free(be, e->next_dev);
        be->free(be, e->cand_vals_dev);
        be->free(be, e->cand_ids_dev);
    }
    if (e->gguf_open)
        sol_gguf_close(&e->gguf);
    free(e->logits_host);
    free(e->cand_vals);
    free(e->cand_ids);
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

const char *sol_engine_counter_notice(const sol_engine *e)
{
    return e->counter_notice[0] ? e->counter_notice : NULL;
}

int sol_engine_last_rows(const sol_engine *e) { return e->logits_rows; }
int sol_engine_seqs(const sol_engine *e) { return e->seqs; }

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

/* Greedy decoding with no penalty needs only the argmax: the device picks
 * it and 4 bytes come back (the logits stay there until asked for).
 * Sampling with top-k needs only the best few of each row
 * (sol_sample_candidates_needed): the device picks those, e->sample_k of
 * them. Returns whether the device does either. */
static int sample_on_device(sol_engine *e, int all_logits)
{
    const sol_sampler_config *s = &e->cfg.sampler;
    e->sample_k = 0;
    if (all_logits)
        return 0;
    if (s->temperature <= 0)
        return s->repeat_penalty == 1.0f && e->be->argmax;
    e->sample_k = e->cand_vals_dev ? sol_sample_candidates_needed(s, e->model.vocab) : 0;
    return e->sample_k > 0;
}

/* The sample op's host side: with the device's greedy choice 4 bytes a
 * sequence come down; else the logits rows the caller sees come down and
 * each sequence's last one is sampled. Returns its seconds in *seconds. */
static int sample_on_host(sol_engine *e, int device_choice, int32_t *next, double *seconds, sol_err *err)
{
    double t0 = sol_now_s();
    size_t row_floats = (size_t)e->model.vocab;
    int rc;
    if (device_choice && e->sample_k > 0) {
        size_t n = (size_t)e->seqs * e->sample_k;
        rc = e->be->download(e->be, e->cand_vals, e->cand_vals_dev, n * sizeof *e->cand_vals, err);
        if (!rc)
            rc = e->be->download(e->be, e->cand_ids, e->cand_ids_dev, n * sizeof *e->cand_ids, err);
        for (int s = 0; s < e->seqs && !rc; s++)
            next[s] = sol_sample_candidates(&e->sampler, e->cand_vals + (size_t)s * e->sample_k,
                                            e->cand_ids + (size_t)s * e->sample_k, e->sample_k,
                                            e->history + (size_t)s * e->ctx, (int)(e->pos + e->step_rows));
    } else if (device_choice) {
        rc = e->be->download(e->be, next, e->next_dev, (size_t)e->seqs * sizeof *next, err);
    } else {
        rc = fetch_logits(e, err);
        for (int s = 0; s < e->seqs && !rc; s++) {
            float *row = e->logits_host + (size_t)(e->logits_rows - e->seqs + s) * row_floats;
            next[s] = sol_sample(&e->sampler, row, e->history + (size_t)s * e->ctx, (int)(e->pos + e->step_rows));
        }
    }
    *seconds = sol_now_s() - t0;
    return rc;
}

/* The step's tokens into each sequence's history. */
static void record_history(sol_engine *e, const int32_t *tokens, int rows)
{
    int per_seq = rows / e->seqs;
    for (int s = 0; s < e->seqs; s++)
        memcpy(e->history + (size_t)s * e->ctx + e->pos, tokens + (size_t)s * per_seq, (size_t)per_seq * sizeof *tokens);
}

/* Hardware counters of the step just run, where the backend counts: after
 * its time is taken (counting replays the step's device work), before the
 * slot is published; a notice that counting turned off is kept for the
 * caller (sol_engine_counter_notice). */
static int count_step(sol_engine *e, sol_step_timing *slot, sol_err *err)
{
    double read = 0, write = 0, gpu_s = 0;
    sol_err why = {0, ""};
    int got = e->be->count_step ? e->be->count_step(e->be, &read, &write, &gpu_s, &why) : SOL_COUNT_NONE;
    slot->counted = got == SOL_COUNT_DONE;
    if (got == SOL_COUNT_DONE) {
        e->last_counted.counted_step = slot->step;
        e->last_counted.dram_read_bytes = read;
        e->last_counted.dram_write_bytes = write;
        e->last_counted.counted_gpu_s = gpu_s;
        e->last_counted.counted_step_s = slot->total_s;
    } else if (got == SOL_COUNT_TURNED_OFF) {
        snprintf(e->counter_notice, sizeof e->counter_notice, "%s", why.msg[0] ? why.msg : "hardware counters off");
    } else if (got != SOL_COUNT_NONE) {
        *err = why;
        return why.code ? why.code : sol_fail(err, SOL_ERR_RUNTIME, "counting the step failed");
    }
    return 0;
}

/* The latest counted figures into the slot (a ring slot holds a step of
 * SOL_TIMING_STEPS ago until written). */
static void carry_counted(const sol_engine *e, sol_step_timing *slot)
{
    slot->counted_step = e->last_counted.counted_step;
    slot->dram_read_bytes = e->last_counted.dram_read_bytes;
    slot->dram_write_bytes = e->last_counted.dram_write_bytes;
    slot->counted_gpu_s = e->last_counted.counted_gpu_s;
    slot->counted_step_s = e->last_counted.counted_step_s;
}

/* One step of `rows` tokens: build the plan, launch it op by op (matmuls
 * of a shared input together), wait for it, sample; per-op times come from
 * the backend's marks. */
static int run_step(sol_engine *e, const int32_t *tokens, int rows, int all_logits, sol_step_fn on_step,
                    void *user, int32_t *next, sol_err *err)
{
    sol_plan_params p = {.batch = e->seqs, .n_tokens = rows / e->seqs, .pos = e->pos, .wtype = e->model.wtype,
                         .atype = SOL_DT_F32, .kvtype = e->cfg.kvtype, .tp = 1, .all_logits = all_logits,
                         .int8_dots_below = e->be->activations == SOL_ACT_Q8 ? e->be->int8_dots_below : 0};
    sol_plan_free(&e->plan);
    int rc = sol_plan_build(&e->model, &e->kv, &p, &e->plan, err);
    if (rc || (rc = reserve_spans(e, e->plan.n_ops, err)))
        return rc;
    record_history(e, tokens, rows);
    e->step_rows = rows / e->seqs;
    e->logits_rows = all_logits ? rows : e->seqs;
    e->kv_read_step = 0;
    sol_step_state state = {.pos = e->pos, .rows = rows, .tokens = tokens, .seqs = e->seqs};
    if ((rc = e->be->begin_step(e->be, &state, err)))
        return rc;
    sol_step_timing *slot = sol_timing_begin(&e->timing, e->pos, rows, e->plan.n_ops);
    for (int j = 0; j < slot->n_ops; j++)
        slot->op_s[j] = 0;
    double start = sol_now_s();
    int spans = 0, device_choice = sample_on_device(e, all_logits);
    e->logits_fresh = 0;
    rc = sol_engine_launch_ops(e, rows, device_choice, &spans, err);
    int synced = e->be->sync(e->be, rc ? NULL : err); /* always: nothing may stay in flight */
    rc = rc ? rc : synced;
    int timed = e->be->op_seconds(e->be, e->span_s, spans);
    slot->ops_timed = spans == 0 || timed > 0; /* a graph step times none of its ops */
    for (int s = 0; s < spans; s++)
        share_time(&e->plan, e->span_first[s], e->span_ops[s], s < timed ? e->span_s[s] : 0, slot);
    for (int i = 0; i < e->plan.n_ops && !rc; i++)
        if (e->plan.ops[i].kind == SOL_OP_SAMPLE) {
            double seconds;
            rc = sample_on_host(e, device_choice, next, &seconds, err);
            if (i < slot->n_ops) /* after the device's interval, if it had one */
                slot->op_s[i] += seconds;
        }
    slot->total_s = sol_now_s() - start;
    slot->counted = 0;
    if (!rc)
        rc = count_step(e, slot, err);
    carry_counted(e, slot);
    sol_timing_publish(&e->timing, slot);
    if (!rc && e->moe_ids) /* instrumentation, after the step's time */
        rc = sol_engine_count_experts(e, rows, err);
    if (rc)
        return rc;
    e->pos += rows / e->seqs;
    if (on_step)
        on_step(user, &e->plan, slot->total_s);
    return 0;
}

int sol_engine_eval(sol_engine *e, const int32_t *tokens, int n, int all_logits, sol_step_fn on_step, void *user,
                    int32_t *next, sol_err *err)
{
    if (n < 1)
        return sol_fail(err, SOL_ERR_USAGE, "nothing to evaluate (0 tokens)");
    if (e->seqs > 1)
        return sol_fail(err, SOL_ERR_USAGE, "a batched engine (%d sequences) steps with sol_engine_eval_batch", e->seqs);
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

int sol_engine_eval_batch(sol_engine *e, const int32_t *tokens, sol_step_fn on_step, void *user, int32_t *next,
                          sol_err *err)
{
    if (e->reset_failed)
        return sol_fail(err, SOL_ERR_RUNTIME, "the KV cache could not be restored to full size after a reset");
    if (e->pos + 1 > e->ctx)
        return sol_fail(err, SOL_ERR_USAGE, "context full: %lld tokens fill the %lld-token context (--ctx)",
                        (long long)e->pos, (long long)e->ctx);
    for (int s = 0; s < e->seqs; s++)
        if (tokens[s] < 0 || tokens[s] >= e->model.vocab)
            return sol_fail(err, SOL_ERR_USAGE, "token id %d of sequence %d outside the vocabulary (%d)", tokens[s], s,
                            e->model.vocab);
    return run_step(e, tokens, e->seqs, 0, on_step, user, next, err);
}
