/* SimLayerKV's layer scoring (simlayer.h) and its use by the engine: the
 * last prompt step's queries and the layer's cached keys come down to the
 * host once, after the prompt; the lazy layers' caches then shrink. */
#include "engine/simlayer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_impl.h"
#include "kernels/formats.h"

double sol_simlayer_mass(const sol_simlayer_input *in)
{
    int group = in->n_heads / in->n_kv_heads;
    double total = 0, *score = malloc((size_t)(in->n_keys > 0 ? in->n_keys : 1) * sizeof *score);
    if (!score)
        return NAN;
    for (int r = 0; r < in->nq; r++) {
        int64_t p = in->q_pos0 + r, keys = p + 1 < in->n_keys ? p + 1 : in->n_keys;
        for (int h = 0; h < in->n_heads; h++) {
            const float *q = in->q + ((size_t)r * in->n_heads + h) * in->dk;
            const float *k0 = in->keys + (size_t)(h / group) * in->dk;
            double max = -INFINITY, sum = 0, kept = 0;
            for (int64_t t = 0; t < keys; t++) {
                const float *k = k0 + (size_t)t * in->n_kv_heads * in->dk;
                double s = 0;
                for (int d = 0; d < in->dk; d++)
                    s += (double)q[d] * k[d];
                score[t] = s * in->scale;
                max = fmax(max, score[t]);
            }
            for (int64_t t = 0; t < keys; t++) {
                double w = exp(score[t] - max);
                sum += w;
                if (t < in->sinks || t > p - in->recent)
                    kept += w;
            }
            total += kept / sum;
        }
    }
    free(score);
    return total / ((double)in->nq * in->n_heads);
}

int sol_simlayer_choose(const double *score, int n, double fraction, double threshold, unsigned char *lazy)
{
    int want = (int)floor(n * fraction + 1e-9), chosen = 0;
    memset(lazy, 0, (size_t)n);
    while (chosen < want) { /* the best layer not yet taken */
        int best = -1;
        for (int i = 0; i < n; i++)
            if (!lazy[i] && score[i] >= threshold && (best < 0 || score[i] > score[best]))
                best = i;
        if (best < 0)
            break;
        lazy[best] = 1;
        chosen++;
    }
    return chosen;
}

/* n rows of a cache array from position 0, as f32 rows of its width. */
static int keys_to_host(sol_engine *e, const sol_kv_cache_layer *c, int64_t n, float *out, sol_err *err)
{
    size_t row = sol_row_bytes(c->type, c->width);
    char *raw = malloc(row * (size_t)n);
    if (!raw)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    int rc = e->be->download(e->be, raw, c->k, row * (size_t)n, err); /* a full cache: slot t is position t */
    for (int64_t t = 0; t < n && !rc; t++)
        sol_dequantize(c->type, raw + (size_t)t * row, out + (size_t)t * c->width, c->width);
    free(raw);
    return rc;
}

/* The step's last query rows of layer `layer` (after its attention was
 * launched), kept on the host until the prompt is done: the newest step
 * before then is the prompt's last. */
int sol_engine_stash_queries(sol_engine *e, int layer, int rows, sol_err *err)
{
    const sol_model *m = &e->model;
    int nq = rows < SOL_SIMLAYER_QUERY_ROWS ? rows : SOL_SIMLAYER_QUERY_ROWS;
    size_t floats = (size_t)nq * m->n_heads * e->simlayer_dk;
    const float *q = (e->kv.heads == SOL_KV_MLA ? e->q_abs : e->q) + (size_t)(rows - nq) * m->n_heads * e->simlayer_dk;
    e->simlayer_query_rows = nq;
    e->simlayer_query_pos0 = e->pos + rows - nq;
    return e->be->download(e->be, e->simlayer_q + (size_t)layer * SOL_SIMLAYER_QUERY_ROWS * m->n_heads *
                                                      e->simlayer_dk, q, floats * sizeof(float), err);
}

/* Layer `layer`'s score from its stashed queries and its cached keys. */
static int score_layer(sol_engine *e, int layer, sol_err *err)
{
    const sol_model *m = &e->model;
    const sol_kv_cache_layer *c = &e->cache[layer];
    int latent = e->kv.heads == SOL_KV_MLA, dk = e->simlayer_dk;
    float *keys = malloc((size_t)e->pos * c->width * sizeof *keys);
    if (!keys)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    int rc = keys_to_host(e, c, e->pos, keys, err);
    if (!rc) {
        sol_simlayer_input in = {e->simlayer_q + (size_t)layer * SOL_SIMLAYER_QUERY_ROWS * m->n_heads * dk,
                                 e->simlayer_query_rows,
                                 e->simlayer_query_pos0,
                                 m->n_heads,
                                 latent ? 1 : m->n_kv_heads,
                                 dk,
                                 keys,
                                 e->pos,
                                 1.0f / sqrtf((float)dk),
                                 e->kv.lazy_sinks,
                                 e->kv.lazy_window};
        e->lazy_score[layer] = sol_simlayer_mass(&in);
        if (isnan(e->lazy_score[layer]))
            rc = sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    }
    free(keys);
    return rc;
}

int sol_engine_prompt_done(sol_engine *e, sol_err *err)
{
    if (!e->simlayer_pending || e->pos == 0)
        return 0;
    for (int i = 0; i < e->model.n_layers; i++) {
        int rc = score_layer(e, i, err);
        if (rc)
            return rc;
    }
    e->simlayer_pending = 0;
    sol_simlayer_choose(e->lazy_score, e->model.n_layers, e->kv.lazy_fraction, e->cfg.simlayer_threshold, e->lazy);
    return sol_engine_compact_lazy(e, err);
}
