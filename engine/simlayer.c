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
    double total = 0;
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
                max = fmax(max, s * in->scale);
            }
            for (int64_t t = 0; t < keys; t++) {
                const float *k = k0 + (size_t)t * in->n_kv_heads * in->dk;
                double s = 0;
                for (int d = 0; d < in->dk; d++)
                    s += (double)q[d] * k[d];
                double w = exp(s * in->scale - max);
                sum += w;
                if (t < in->sinks || t > p - in->recent)
                    kept += w;
            }
            total += kept / sum;
        }
    }
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

int sol_engine_score_layer(sol_engine *e, int layer, int rows, sol_err *err)
{
    const sol_model *m = &e->model;
    const sol_kv_cache_layer *c = &e->cache[layer];
    int latent = e->kv.heads == SOL_KV_MLA, nq = rows < 8 ? rows : 8;
    int dk = latent ? (int)c->width : m->head_dim, n_kv = latent ? 1 : m->n_kv_heads;
    int64_t n_keys = e->pos + rows;
    size_t q_floats = (size_t)nq * m->n_heads * dk;
    float *q = malloc(q_floats * sizeof *q), *keys = malloc((size_t)n_keys * c->width * sizeof *keys);
    int rc = q && keys ? 0 : sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    const float *q_dev = (latent ? e->q_abs : e->q) + (size_t)(rows - nq) * m->n_heads * dk;
    if (!rc && !(rc = e->be->download(e->be, q, q_dev, q_floats * sizeof *q, err)))
        rc = keys_to_host(e, c, n_keys, keys, err);
    if (!rc) {
        sol_simlayer_input in = {q,     nq,   e->pos + rows - nq, m->n_heads, n_kv, dk, keys, n_keys,
                                 1.0f / sqrtf((float)dk), e->kv.lazy_sinks, e->kv.lazy_window};
        e->lazy_score[layer] = sol_simlayer_mass(&in);
        e->simlayer_query_rows = nq;
    }
    free(q);
    free(keys);
    return rc;
}

int sol_engine_choose_lazy(sol_engine *e, sol_err *err)
{
    e->simlayer_pending = 0;
    sol_simlayer_choose(e->lazy_score, e->model.n_layers, e->kv.lazy_fraction, e->cfg.simlayer_threshold, e->lazy);
    return sol_engine_compact_lazy(e, err);
}
