/* Token sampling: greedy, temperature, top-k, top-p, min-p, repetition
 * penalty; reproducible for a given seed. */
#ifndef SOL_ENGINE_SAMPLE_H
#define SOL_ENGINE_SAMPLE_H

#include <stdint.h>

typedef struct sol_sampler_config {
    float temperature;    /* 0 = greedy */
    int top_k;            /* 0 = off */
    float top_p;          /* 1 = off */
    float min_p;          /* 0 = off */
    float repeat_penalty; /* 1 = off */
    int repeat_last_n;    /* how many recent tokens the penalty sees */
    uint64_t seed;
} sol_sampler_config;

typedef struct sol_sampler {
    sol_sampler_config cfg;
    uint64_t rng;
    int n_vocab;
    struct sol_candidate *cand; /* n_vocab scratch entries */
    struct sol_ranked *ranked;  /* n_vocab: top-k's heap */
} sol_sampler;

void sol_sampler_defaults(sol_sampler_config *cfg);
int sol_sampler_init(sol_sampler *s, const sol_sampler_config *cfg, int n_vocab);
void sol_sampler_free(sol_sampler *s);
/* Picks the next token from logits (modified in place by the penalty);
 * history holds the tokens so far. */
int32_t sol_sample(sol_sampler *s, float *logits, const int32_t *history, int n_history);

/* How many of the best logits suffice to sample exactly as sol_sample
 * does from all of them: top_k when the penalty is off, top_k +
 * repeat_last_n when it only lowers logits (> 1: at most repeat_last_n
 * candidates drop, and nothing from outside climbs past them); 0 when the
 * whole row is needed (greedy, no top-k, a boosting penalty, or more than
 * SOL_SAMPLE_CANDIDATES_MAX). */
#define SOL_SAMPLE_CANDIDATES_MAX 512
int sol_sample_candidates_needed(const sol_sampler_config *cfg, int n_vocab);
/* sol_sample from the n best logits of a row (vals[i] the logit of token
 * ids[i], in any order; n from sol_sample_candidates_needed; ties at the
 * n-th included by lower id): the same token, the same draw. */
int32_t sol_sample_candidates(sol_sampler *s, const float *vals, const int32_t *ids, int n, const int32_t *history,
                              int n_history);

#endif
