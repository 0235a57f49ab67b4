/* sol bench --batch B --check: B sequences decoded in lockstep, every
 * step's logits row of every sequence compared with the same sequence
 * decoded alone on the same backend (max |batched - alone| / max |alone|
 * over the row): what a backend's batched kernels (RoPE, the KV write,
 * attention per sequence) must keep, checked where no unit test reaches,
 * e.g. on a GPU. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench_experts.h"

enum { CHECK_STEPS = 12 };

static double row_error(const float *a, const float *b, int n)
{
    double diff = 0, scale = 0;
    for (int i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return scale > 0 ? diff / scale : diff;
}

static int open_engine(const cli_experts_opts *o, int seqs, sol_engine **e, sol_err *err)
{
    sol_engine_config cfg = o->engine;
    cfg.seqs = seqs;
    cfg.ctx = CHECK_STEPS + 1;
    cfg.sampler.temperature = 0;
    return sol_engine_open(o->model, &cfg, e, err);
}

/* tokens[t * batch + s]: step t's token of sequence s; every sequence
 * different. Fills logits[(s * CHECK_STEPS + t) * vocab ..]. */
static int decode_batched(const cli_experts_opts *o, int batch, const int32_t *tokens, float *logits, int *vocab,
                          sol_err *err)
{
    sol_engine *e = NULL;
    int rc = open_engine(o, batch, &e, err);
    int32_t *next = rc ? NULL : malloc((size_t)batch * sizeof *next);
    if (!rc && !next)
        rc = sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    *vocab = rc ? 0 : sol_engine_model(e)->vocab;
    for (int t = 0; t < CHECK_STEPS && !rc; t++) {
        rc = sol_engine_eval_batch(e, tokens + (size_t)t * batch, NULL, NULL, next, err);
        for (int s = 0; s < batch && !rc; s++) {
            const float *row;
            if (!(rc = sol_engine_logits(e, s, &row, err)))
                memcpy(logits + ((size_t)s * CHECK_STEPS + t) * *vocab, row, (size_t)*vocab * sizeof *row);
        }
    }
    free(next);
    sol_engine_close(e);
    return rc;
}

int cli_batch_check(const cli_experts_opts *o, int batch, int vocab_hint, double *max_rel, sol_err *err)
{
    *max_rel = 0;
    size_t n_tokens = (size_t)CHECK_STEPS * batch;
    int32_t *tokens = malloc(n_tokens * sizeof *tokens);
    float *logits = malloc(n_tokens * (size_t)vocab_hint * sizeof *logits);
    int rc = tokens && logits ? 0 : sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    for (size_t i = 0; i < n_tokens && !rc; i++)
        tokens[i] = (int32_t)((i * 7919 + 13) % (size_t)(vocab_hint < 258 ? vocab_hint : 258));
    int vocab = 0;
    if (!rc)
        rc = decode_batched(o, batch, tokens, logits, &vocab, err);
    sol_engine *e = NULL;
    if (!rc)
        rc = open_engine(o, 1, &e, err);
    for (int s = 0; s < batch && !rc; s++) {
        sol_engine_reset(e);
        for (int t = 0; t < CHECK_STEPS && !rc; t++) {
            int32_t next;
            const float *row;
            rc = sol_engine_eval(e, &tokens[(size_t)t * batch + s], 1, 0, NULL, NULL, &next, err);
            if (!rc && !(rc = sol_engine_logits(e, 0, &row, err)))
                *max_rel = fmax(*max_rel, row_error(logits + ((size_t)s * CHECK_STEPS + t) * vocab, row, vocab));
        }
    }
    sol_engine_close(e);
    free(tokens);
    free(logits);
    return rc;
}
