/* SimLayerKV (Zhang et al., 2024): a layer is "lazy" when the last prompt
 * tokens put nearly all their attention on the first few tokens (sinks)
 * and the most recent ones; such a layer can drop the rest of its KV cache
 * from then on. Scoring and the choice are plain math over host arrays. */
#ifndef SOL_ENGINE_SIMLAYER_H
#define SOL_ENGINE_SIMLAYER_H

#include <stdint.h>

/* Queries of nq rows (positions q_pos0..), n_heads heads of dk each, and
 * the keys of positions 0..n_keys-1 (n_kv_heads heads of dk per row); the
 * heads of a group share a KV head. */
typedef struct sol_simlayer_input {
    const float *q;
    int nq;
    int64_t q_pos0;
    int n_heads, n_kv_heads, dk;
    const float *keys;
    int64_t n_keys;
    float scale; /* of q.k */
    int sinks;   /* S */
    int recent;  /* W */
} sol_simlayer_input;

/* The attention mass on positions t < S or t > p - W of each query at p
 * (softmax over its causal keys 0..p), averaged over queries and heads;
 * NaN when memory is short. */
double sol_simlayer_mass(const sol_simlayer_input *in);

/* lazy[i] = 1 for the floor(n * fraction) layers of highest score (ties:
 * the lower layer) among those scoring >= threshold; returns how many. */
int sol_simlayer_choose(const double *score, int n, double fraction, double threshold, unsigned char *lazy);

#endif
