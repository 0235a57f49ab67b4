/* Sampling (see sample.h). Filters apply in llama.cpp's customary order:
 * repetition penalty, top-k, temperature softmax, top-p, min-p; then a
 * draw from a PCG32 generator seeded by --seed. */
#include "engine/sample.h"

#include "util/argmax.h"
#include "util/topk.h"

#include <math.h>
#include <stdlib.h>

typedef struct sol_candidate {
    int32_t id;
    float logit;
    float p;
} sol_candidate;

void sol_sampler_defaults(sol_sampler_config *cfg)
{
    *cfg = (sol_sampler_config){.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                                .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 0x50L};
}

int sol_sampler_init(sol_sampler *s, const sol_sampler_config *cfg, int n_vocab)
{
    s->cfg = *cfg;
    s->rng = cfg->seed * 6364136223846793005ULL + 1442695040888963407ULL;
    s->n_vocab = n_vocab;
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    s->ranked = malloc((size_t)n_vocab * sizeof *s->ranked);
    return s->cand && s->ranked ? 0 : -1;
}

void sol_sampler_free(sol_sampler *s)
{
    free(s->cand);
    free(s->ranked);
    s->cand = NULL;
    s->ranked = NULL;
}

/* PCG32 (O'Neill): uniform in [0, 1). */
static double next_uniform(sol_sampler *s)
{
    uint64_t old = s->rng;
    s->rng = old * 6364136223846793005ULL + 1442695040888963407ULL;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    uint32_t r = (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
    return r / 4294967296.0;
}

static int by_logit_desc(const void *a, const void *b)
{
    float x = ((const sol_candidate *)a)->logit, y = ((const sol_candidate *)b)->logit;
    if (x != y)
        return x < y ? 1 : -1;
    return ((const sol_candidate *)a)->id - ((const sol_candidate *)b)->id;
}

/* The k best of n logits into cand[0..k), sorted (util/topk.h's order,
 * which by_logit_desc keeps: ties by id). */
static void top_k(sol_sampler *s, const float *logits, int n, int k)
{
    sol_top_k_f32(logits, n, k, s->ranked);
    for (int i = 0; i < k; i++)
        s->cand[i] = (sol_candidate){s->ranked[i].id, s->ranked[i].v, 0};
}

static void apply_repeat_penalty(const sol_sampler_config *cfg, float *logits, const int32_t *history, int n)
{
    if (cfg->repeat_penalty == 1.0f)
        return;
    int first = n > cfg->repeat_last_n ? n - cfg->repeat_last_n : 0;
    for (int i = first; i < n; i++) {
        float *l = &logits[history[i]];
        /* each distinct token is penalised once */
        int seen = 0;
        for (int j = first; j < i && !seen; j++)
            seen = history[j] == history[i];
        if (!seen)
            *l = *l > 0 ? *l / cfg->repeat_penalty : *l * cfg->repeat_penalty;
    }
}

/* Softmax at the temperature over the sorted s->cand[0..n), top-p, min-p,
 * then the draw. */
static int32_t draw(sol_sampler *s, int n)
{
    const sol_sampler_config *cfg = &s->cfg;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += s->cand[i].p = expf((s->cand[i].logit - s->cand[0].logit) / cfg->temperature);
    for (int i = 0; i < n; i++)
        s->cand[i].p /= (float)sum;
    if (cfg->top_p < 1.0f) {
        double cum = 0;
        int keep = 0;
        while (keep < n && cum < cfg->top_p)
            cum += s->cand[keep++].p;
        n = keep > 0 ? keep : 1;
    }
    if (cfg->min_p > 0) {
        int keep = 1;
        while (keep < n && s->cand[keep].p >= cfg->min_p * s->cand[0].p)
            keep++;
        n = keep;
    }
    double total = 0;
    for (int i = 0; i < n; i++)
        total += s->cand[i].p;
    double r = next_uniform(s) * total, cum = 0;
    for (int i = 0; i < n; i++) {
        cum += s->cand[i].p;
        if (r < cum)
            return s->cand[i].id;
    }
    return s->cand[n - 1].id;
}

int32_t sol_sample(sol_sampler *s, float *logits, const int32_t *history, int n_history)
{
    const sol_sampler_config *cfg = &s->cfg;
    apply_repeat_penalty(cfg, logits, history, n_history);
    if (cfg->temperature <= 0)
        return sol_argmax_f32(logits, s->n_vocab);

    int n = s->n_vocab;
    if (cfg->top_k > 0 && cfg->top_k < n) {
        n = cfg->top_k;
        top_k(s, logits, s->n_vocab, n);
    } else {
        for (int i = 0; i < n; i++)
            s->cand[i] = (sol_candidate){i, logits[i], 0};
        qsort(s->cand, (size_t)n, sizeof *s->cand, by_logit_desc);
    }
    return draw(s, n);
}

int sol_sample_candidates_needed(const sol_sampler_config *cfg, int n_vocab)
{
    if (cfg->temperature <= 0 || cfg->top_k <= 0 || cfg->top_k >= n_vocab || cfg->repeat_penalty < 1.0f)
        return 0;
    int n = cfg->repeat_penalty == 1.0f ? cfg->top_k : cfg->top_k + (cfg->repeat_last_n > 0 ? cfg->repeat_last_n : 0);
    return n <= SOL_SAMPLE_CANDIDATES_MAX && n < n_vocab ? n : 0;
}

/* Whether token id is among the last repeat_last_n of history (the
 * tokens apply_repeat_penalty lowers, each once). */
static int penalised(const sol_sampler_config *cfg, int32_t id, const int32_t *history, int n)
{
    for (int i = n > cfg->repeat_last_n ? n - cfg->repeat_last_n : 0; i < n; i++)
        if (history[i] == id)
            return 1;
    return 0;
}

int32_t sol_sample_candidates(sol_sampler *s, const float *vals, const int32_t *ids, int n, const int32_t *history,
                              int n_history)
{
    const sol_sampler_config *cfg = &s->cfg;
    for (int i = 0; i < n; i++) {
        float l = vals[i];
        if (cfg->repeat_penalty != 1.0f && penalised(cfg, ids[i], history, n_history))
            l = l > 0 ? l / cfg->repeat_penalty : l * cfg->repeat_penalty;
        s->cand[i] = (sol_candidate){ids[i], l, 0};
    }
    /* the total order top_k() keeps: its first top_k are the full row's */
    qsort(s->cand, (size_t)n, sizeof *s->cand, by_logit_desc);
    return draw(s, cfg->top_k < n ? cfg->top_k : n);
}
