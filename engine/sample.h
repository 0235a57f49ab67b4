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
} sol_sampler;

void sol_sampler_defaults(sol_sampler_config *cfg);
int sol_sampler_init(sol_sampler *s, const sol_sampler_config *cfg, int n_vocab);
void sol_sampler_free(sol_sampler *s);
/* Picks the next token from logits (modified in place by the penalty);
 * history holds the tokens so far. */
int32_t sol_sample(sol_sampler *s, float *logits, const int32_t *history, int n_history);

#endif
