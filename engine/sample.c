/* Sampling (see sample.h). Filters apply in llama.cpp's customary order:
 * repetition penalty, top-k, temperature softmax, top-p, min-p; then a
 * draw from a PCG32 generator seeded by --seed. */
#include "engine/sample.h"

#include "util/argmax.h"

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
    return s->cand ? 0 : -1;
}

void sol_sampler_free(sol_sampler *s)
{
    free(s->cand);
    s->cand = NULL;
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

/* a ranks before b: higher logit, then lower id (by_logit_desc's order) */
static int ranks_before(const sol_candidate *a, const sol_candidate *b)
{
    return a->logit != b->logit ? a->logit > b->logit : a->id < b->id;
}

/* Restores the heap below i: the root is the candidate ranked last. */
static void sift_down(sol_candidate *heap, int n, int i)
{
    for (;;) {
        int worst = i, l = 2 * i + 1, r = l + 1;
        if (l < n && ranks_before(&heap[worst], &heap[l]))
            worst = l;
        if (r < n && ranks_before(&heap[worst], &heap[r]))
            worst = r;
        if (worst == i)
            return;
        sol_candidate t = heap[i];
        heap[i] = heap[worst];
        heap[worst] = t;
        i = worst;
    }
}

/* The k best of n logits into cand[0..k), sorted: a heap of k instead of
 * sorting the whole vocabulary (qsort of 128k candidates took ~15 ms a
 * token on Llama-3's vocabulary, a third of a 1B model's decode step). The
 * order is total (ties by id), so the set equals a full sort's first k. */
static void top_k(sol_candidate *cand, const float *logits, int n, int k)
{
    for (int i = 0; i < k; i++)
        cand[i] = (sol_candidate){i, logits[i], 0};
    for (int i = k / 2 - 1; i >= 0; i--)
        sift_down(cand, k, i);
    for (int i = k; i < n; i++) {
        sol_candidate c = {i, logits[i], 0};
        if (ranks_before(&c, &cand[0])) {
            cand[0] = c;
            sift_down(cand, k, 0);
        }
    }
    qsort(cand, (size_t)k, sizeof *cand, by_logit_desc);
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

int32_t sol_sample(sol_sampler *s, float *logits, const int32_t *history, int n_history)
{
    const sol_sampler_config *cfg = &s->cfg;
    apply_repeat_penalty(cfg, logits, history, n_history);
    if (cfg->temperature <= 0)
        return sol_argmax_f32(logits, s->n_vocab);

    int n = s->n_vocab;
    if (cfg->top_k > 0 && cfg->top_k < n) {
        n = cfg->top_k;
        top_k(s->cand, logits, s->n_vocab, n);
    } else {
        for (int i = 0; i < n; i++)
            s->cand[i] = (sol_candidate){i, logits[i], 0};
        qsort(s->cand, (size_t)n, sizeof *s->cand, by_logit_desc);
    }
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
