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

/* Layer i's rows of positions [a, b) set to those of positions a % base ..
 * (rows: the layer's first `base` positions, K block then V block). */
static int repeat_range(sol_engine *e, int i, const char *rows, int64_t base, int64_t a, int64_t b, sol_err *err)
{
    int arrays = sol_engine_kv_arrays(e, i);
    size_t per = sol_engine_kv_row_bytes(e, i) / (size_t)arrays;
    char *buf = malloc(per * (size_t)arrays * (size_t)base);
    int rc = buf ? 0 : sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    for (int64_t t = a; t < b && !rc;) {
        int64_t s0 = t % base, len = base - s0 < b - t ? base - s0 : b - t;
        for (int k = 0; k < arrays; k++)
            memcpy(buf + (size_t)k * (size_t)len * per, rows + ((size_t)k * (size_t)base + (size_t)s0) * per,
                   (size_t)len * per);
        rc = sol_engine_kv_import(e, i, t, t + len, buf, err);
        t += len;
    }
    free(buf);
    return rc;
}

int sol_engine_kv_repeat(sol_engine *e, int64_t depth, sol_err *err)
{
    int64_t base = e->pos;
    if (base < 1 || depth <= base || depth > e->ctx)
        return depth <= base ? 0 : sol_fail(err, SOL_ERR_USAGE, "cannot fill %lld positions from %lld",
                                            (long long)depth, (long long)base);
    int rc = 0;
    for (int i = 0; i < e->model.n_layers && !rc; i++) {
        if (!owns(e, i))
            continue;
        char *rows = malloc(sol_engine_kv_row_bytes(e, i) * (size_t)base);
        if (!rows)
            return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
        rc = sol_engine_kv_export(e, i, 0, base, rows, err);
        int64_t from = sol_engine_kv_first_kept(e, i, base, depth); /* a ring keeps only its newest */
        if (!rc)
            rc = repeat_range(e, i, rows, base, from, depth, err);
        free(rows);
    }
    for (int64_t t = base; t < depth && !rc; t++)
        e->history[t] = e->history[t % base];
    if (!rc)
        e->pos = depth;
    return rc;
}
