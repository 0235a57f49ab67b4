/* PCG32 for the strategies' reproducible proposals (tuner-internal): one
 * seed gives one sequence on every machine. */
#ifndef SOL_TUNER_RNG_H
#define SOL_TUNER_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t state;
} sol_rng;

static inline uint32_t sol_rng_next(sol_rng *r)
{
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + 1442695040888963407ULL;
    uint32_t x = (uint32_t)(((old >> 18u) ^ old) >> 27u), rot = (uint32_t)(old >> 59u);
    return (x >> rot) | (x << ((-rot) & 31));
}

/* [0, 1) */
static inline double sol_rng_uniform(sol_rng *r) { return sol_rng_next(r) / 4294967296.0; }

/* [0, n) */
static inline int64_t sol_rng_below(sol_rng *r, int64_t n) { return (int64_t)(sol_rng_uniform(r) * (double)n); }

static inline void sol_rng_seed(sol_rng *r, uint64_t seed)
{
    r->state = seed * 6364136223846793005ULL + 0x9e3779b97f4a7c15ULL;
    sol_rng_next(r);
}

#endif
