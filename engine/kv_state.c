/* The KV cache as positions (kv_state.h). */
#include "engine/kv_state.h"

#include <stdlib.h>
#include <string.h>

#include "engine/engine_impl.h"
#include "kernels/formats.h"

static int owns(const sol_engine *e, int layer) { return e->cache_block[layer] != NULL; }

int64_t sol_engine_kv_sinks(const sol_engine *e, int layer) { return owns(e, layer) ? e->cache[layer].sinks : 0; }

int sol_engine_kv_arrays(const sol_engine *e, int layer) { return e->cache[layer].v == e->cache[layer].k ? 1 : 2; }

size_t sol_engine_kv_row_bytes(const sol_engine *e, int layer)
{
    const sol_kv_cache_layer *c = &e->cache[layer];
    return (c->v == c->k ? 1 : 2) * sol_row_bytes(c->type, c->width);
}

int64_t sol_engine_kv_first_kept(const sol_engine *e, int layer, int64_t from, int64_t to)
{
    if (!owns(e, layer))
        return -1;
    const sol_kv_cache_layer *c = &e->cache[layer];
    int64_t ring = c->capacity - c->sinks, first = to - ring; /* older positions went round */
    int64_t window = sol_engine_layer_window(e, layer);
    if (window > 0 && to - window > first) /* only the window is ever read again */
        first = to - window;
    if (first < c->sinks)
        first = c->sinks < from ? from : c->sinks;
    return first > from ? first : from;
}

/* Positions [t0, t1) between the cache's arrays and buf (the K rows,
 * then the V rows): each run of consecutive slots in one copy. */
static int rows(sol_engine *e, int layer, int64_t t0, int64_t t1, void *buf, int import, sol_err *err)
{
    const sol_kv_cache_layer *c = &e->cache[layer];
    size_t row = sol_row_bytes(c->type, c->width);
    int arrays = c->v == c->k ? 1 : 2, rc = 0;
    for (int a = 0; a < arrays && !rc; a++) {
        char *base = a ? c->v : c->k, *mine = (char *)buf + (size_t)a * (size_t)(t1 - t0) * row;
        for (int64_t t = t0; t < t1 && !rc;) {
            int64_t slot = sol_kv_slot(c, t), run = 1;
            while (t + run < t1 && sol_kv_slot(c, t + run) == slot + run)
                run++;
            char *dev = base + (size_t)slot * row, *host = mine + (size_t)(t - t0) * row;
            size_t bytes = (size_t)run * row;
            rc = import ? e->be->upload(e->be, dev, host, bytes, err) : e->be->download(e->be, host, dev, bytes, err);
            t += run;
        }
    }
    return rc;
}

int sol_engine_kv_export(sol_engine *e, int layer, int64_t t0, int64_t t1, void *buf, sol_err *err)
{
    if (!owns(e, layer) || t0 < 0 || t1 > e->pos || t0 > t1)
        return sol_fail(err, SOL_ERR_USAGE, "KV export: positions %lld..%lld of layer %d are not in the cache",
                        (long long)t0, (long long)t1, layer);
    return rows(e, layer, t0, t1, buf, 0, err);
}

int sol_engine_kv_import(sol_engine *e, int layer, int64_t t0, int64_t t1, const void *buf, sol_err *err)
{
    if (!owns(e, layer) || t0 < 0 || t1 > e->ctx || t0 > t1)
        return sol_fail(err, SOL_ERR_USAGE, "KV import: positions %lld..%lld do not fit layer %d's cache",
                        (long long)t0, (long long)t1, layer);
    return rows(e, layer, t0, t1, (void *)buf, 1, err);
}

int sol_engine_kv_set_prefix(sol_engine *e, const int32_t *tokens, int64_t n, sol_err *err)
{
    if (n < 0 || n > e->ctx)
        return sol_fail(err, SOL_ERR_USAGE, "a stored prefix of %lld tokens does not fit the %lld-token context",
                        (long long)n, (long long)e->ctx);
    memcpy(e->history, tokens, (size_t)n * sizeof *tokens);
    e->pos = n;
    e->logits_rows = 0;
    return 0;
}

int sol_engine_simlayer_restore(sol_engine *e, const unsigned char *lazy, const double *score, int query_rows,
                                sol_err *err)
{
    if (!e->lazy)
        return -1;
    memcpy(e->lazy, lazy, (size_t)e->model.n_layers);
    memcpy(e->lazy_score, score, (size_t)e->model.n_layers * sizeof *score);
    e->simlayer_query_rows = query_rows;
    e->simlayer_pending = 0;
    return sol_engine_compact_lazy(e, err);
}
