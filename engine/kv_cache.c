/* The engine's KV cache: one block of backend memory per layer that owns a
 * cache (K then V, or under MLA one latent array that is both), sized as
 * the scheme keeps it, so the bytes allocated are the analyzer's. A local
 * layer's block is a ring; a SimLayerKV lazy layer's shrinks after its
 * prompt to its sinks and a ring for the recent window. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_impl.h"
#include "kernels/formats.h"

static int is_latent(const sol_engine *e) { return e->kv.heads == SOL_KV_MLA; }

static int64_t row_width(const sol_engine *e)
{
    const sol_model *m = &e->model;
    return is_latent(e) ? (int64_t)m->kv_lora_rank + m->qk_rope_dim : (int64_t)m->n_kv_heads * m->head_dim;
}

/* K and V of one token: one latent row under MLA. */
double sol_engine_token_bytes(const sol_engine *e, int layer)
{
    (void)layer;
    return (is_latent(e) ? 1.0 : 2.0) * (double)sol_row_bytes(e->cfg.kvtype, row_width(e));
}

int64_t sol_engine_layer_window(const sol_engine *e, int layer)
{
    sol_kv_layer info;
    sol_kv_layer_info(&e->kv, &e->model, layer, &info); /* the owner's, for a sharing layer */
    sol_kv_layer_info(&e->kv, &e->model, info.owner, &info);
    return info.kind == SOL_ATTN_LAZY ? e->kv.lazy_window : info.tokens_cap;
}

/* Slots of a cache keeping `cap` tokens (0: all): a ring of cap + chunk - 1
 * (every query row of a step sees its newest positions; decode alone,
 * chunk 1, needs exactly cap), at most the context. */
static int64_t slots_for(const sol_engine *e, int64_t cap)
{
    int64_t ring = cap > 0 ? cap + e->chunk - 1 : e->ctx;
    return ring < e->ctx ? ring : e->ctx;
}

/* A block of `slots` rows (and `sinks` fixed ones) per sequence for layer
 * i: every sequence's K, then every sequence's V. */
static int alloc_layer(sol_engine *e, int i, int64_t slots, int64_t sinks, sol_err *err)
{
    size_t row = sol_row_bytes(e->cfg.kvtype, row_width(e)), seq_bytes = row * (size_t)slots;
    size_t bytes = seq_bytes * (size_t)e->seqs, total = is_latent(e) ? bytes : 2 * bytes;
    void *block = NULL;
    if (e->be->alloc(e->be, total, &block, err)) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return sol_fail(err, SOL_ERR_RUNTIME, "layer %d's KV cache of %lld tokens (%zu MiB): %s; try --ctx", i,
                        (long long)slots, total >> 20, why);
    }
    char *base = block;
    e->cache_block[i] = block;
    e->cache[i] = (sol_kv_cache_layer){e->cfg.kvtype, base, is_latent(e) ? base : base + bytes, slots,
                                       row_width(e), sinks, seq_bytes};
    e->cache_bytes += (double)total;
    return 0;
}

/* Every layer's cache as the scheme keeps it before any scoring: a sharing
 * layer (cla) reads its owner's and writes nothing. */
int sol_engine_cache_alloc(sol_engine *e, sol_err *err)
{
    const sol_model *m = &e->model;
    e->cache_bytes = 0;
    for (int i = 0; i < m->n_layers; i++) {
        sol_kv_layer info;
        sol_kv_layer_info(&e->kv, m, i, &info);
        int rc = info.owner == i ? alloc_layer(e, i, slots_for(e, info.tokens_cap), 0, err) : 0;
        if (rc)
            return rc;
        if (info.owner != i) /* owners come first */
            e->cache[i] = e->cache[info.owner];
    }
    return 0;
}

void sol_engine_cache_free(sol_engine *e)
{
    for (int i = 0; e->cache_block && i < e->model.n_layers; i++) {
        if (e->cache_block[i])
            e->be->free(e->be, e->cache_block[i]);
        e->cache_block[i] = NULL;
    }
    e->cache_bytes = 0;
}

/* The rows of layer i's positions that its new cache `to` keeps, copied
 * from the old one through host memory (once, after the prompt). */
static int copy_kept(sol_engine *e, const sol_kv_cache_layer *from, const sol_kv_cache_layer *to, sol_err *err)
{
    size_t row = sol_row_bytes(from->type, from->width);
    size_t old_bytes = row * (size_t)from->capacity, new_bytes = row * (size_t)to->capacity;
    int arrays = from->v == from->k ? 1 : 2;
    char *old = malloc(old_bytes), *kept = calloc(1, new_bytes);
    int rc = old && kept ? 0 : sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    int64_t ring = to->capacity - to->sinks;
    for (int a = 0; a < arrays && !rc; a++) {
        const void *src = a ? from->v : from->k;
        if ((rc = e->be->download(e->be, old, src, old_bytes, err)))
            break;
        for (int64_t t = 0; t < e->pos; t++)
            if (t < to->sinks || t >= e->pos - ring)
                memcpy(kept + (size_t)sol_kv_slot(to, t) * row, old + (size_t)sol_kv_slot(from, t) * row, row);
        rc = e->be->upload(e->be, a ? to->v : to->k, kept, new_bytes, err);
    }
    free(old);
    free(kept);
    return rc;
}

int sol_engine_compact_lazy(sol_engine *e, sol_err *err)
{
    int64_t sinks = e->kv.lazy_sinks, slots = slots_for(e, (int64_t)e->kv.lazy_window + sinks);
    for (int i = 0; i < e->model.n_layers; i++) {
        if (!e->lazy[i] || !e->cache_block[i])
            continue;
        if (slots >= e->cache[i].capacity) { /* nothing to drop yet: the sinks stay visible */
            e->cache[i].sinks = sinks;
            continue;
        }
        sol_kv_cache_layer old = e->cache[i];
        void *old_block = e->cache_block[i];
        double bytes_before = e->cache_bytes;
        int rc = alloc_layer(e, i, slots, sinks, err);
        if (!rc && (rc = copy_kept(e, &old, &e->cache[i], err)))
            e->be->free(e->be, e->cache_block[i]);
        if (rc) { /* the full cache stays */
            e->cache[i] = old;
            e->cache_block[i] = old_block;
            e->cache_bytes = bytes_before;
            return rc;
        }
        e->be->free(e->be, old_block);
        e->cache_bytes -= (old.v == old.k ? 1.0 : 2.0) * (double)sol_row_bytes(old.type, old.width) * old.capacity;
    }
    return 0;
}

int sol_engine_cache_reset(sol_engine *e, sol_err *err)
{
    if (!e->lazy)
        return 0;
    int changed = 0;
    for (int i = 0; i < e->model.n_layers; i++) {
        changed |= e->lazy[i];
        e->lazy[i] = 0;
    }
    e->simlayer_pending = 1;
    if (!changed)
        return 0;
    sol_engine_cache_free(e);
    return sol_engine_cache_alloc(e, err);
}
