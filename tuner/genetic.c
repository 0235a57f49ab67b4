/* A genetic search strategy (see tuner.h), for spaces where one walk from
 * the default does badly: GPU kernels' spaces, with several interacting
 * parameters (tile shapes, stages, warps) and wide invalid regions between
 * their good points. Crossover carries a good value of one parameter over
 * to points good in the others, where annealing has to walk there one step
 * at a time, around the invalid gaps.
 *
 * Its choices, sized for budgets of 15 to 100 measurements (tried on
 * synthetic bowls and constrained GPU-like spaces, and on recorded CPU
 * landscapes of other shapes than bench/tune-strategies-evals.sh's):
 *  - Steady state, not generations: each child is bred from the population
 *    as it stands after every measurement so far, so a budget of 17 is not
 *    spent waiting for a generation to fill.
 *  - Population: budget / 5, within [4, 8]. Fewer leave tournaments and
 *    crossover nothing to choose between; more spend a small budget seeding
 *    (caps of 12 and 16 did no better, and worse at the smallest budgets).
 *  - Seeding: the default, then for each other member a mutant of the
 *    default half of the time (the default is a sane guess, and on the
 *    CPU's landscapes good points cluster near it) and a random valid point
 *    otherwise (diversity, for spaces whose optimum is far from it).
 *  - Elitism: a measured child replaces the population's slowest member,
 *    and only when it is faster, so the fastest points measured so far are
 *    always the parents' pool.
 *  - Tournament of 4, drawn with replacement, for each parent: strong
 *    pressure towards the fastest (3 found the optimum less often on the
 *    constrained spaces), while the others still get picked.
 *  - Uniform crossover: each parameter's value index from either parent,
 *    with even odds.
 *  - Mutation: each parameter with probability 1 / (parameters), one per
 *    child on average; a mutated parameter steps to a neighbouring value
 *    index 4 times in 5 (the values are ordered: powers of two, tile
 *    sizes), else to any index (a way out of a basin).
 *  - A local step: a quarter of the proposals after seeding are a fresh
 *    neighbour of the fastest member (one parameter, one value step), not
 *    a child. Measured landscapes are noisy and their optimum is often one
 *    step from a good point that crossover keeps circling; with it the
 *    constrained spaces and recorded CPU landscapes came within 3% more
 *    often at 10% of the space (half the proposals did no better).
 *  - A failed or wrong configuration (time < 0) has the worst fitness: it
 *    enters the population only while it fills, and is replaced first.
 *  - Never a wasted proposal: the driver refuses invalid and repeated
 *    points, so a child that is invalid or was proposed before is bred
 *    again (up to 64 tries); when none is fresh (the population has
 *    converged) the proposal is a random valid point not yet proposed.
 * Deterministic for a seed: one PCG32 stream (tuner/rng.h) drives every
 * choice. */
#include <math.h>
#include <stdlib.h>

#include "tuner/rng.h"
#include "tuner/tuner.h"

enum {
    POP_MIN = 4,
    POP_MAX = 8,
    BUDGET_PER_MEMBER = 5,
    TOURNAMENT = 4,
    BREED_TRIES = 64,
    RANDOM_TRIES = 64,
};
#define JUMP_P 0.2      /* a mutation to any value index, not a neighbour */
#define SEED_NEAR_P 0.5 /* a seed member is a mutant of the default, not random */
#define LOCAL_P 0.25    /* a proposal is a neighbour of the fastest, not a child */

typedef struct {
    sol_tune_config c;
    double time_s; /* INFINITY: failed */
} member;

typedef struct {
    const sol_tune_space *s;
    sol_rng r;
    int64_t size;
    unsigned char *proposed; /* by linear index */
    member pop[POP_MAX];
    int n_pop, cap;
} genetic_state;

static void *genetic_start(const sol_tune_space *s, int budget, uint64_t seed)
{
    genetic_state *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->s = s;
    st->size = sol_space_size(s);
    st->proposed = calloc((size_t)st->size, 1);
    if (!st->proposed) {
        free(st);
        return NULL;
    }
    int cap = (budget > 0 ? budget : (int)st->size) / BUDGET_PER_MEMBER;
    st->cap = cap < POP_MIN ? POP_MIN : cap > POP_MAX ? POP_MAX : cap;
    sol_rng_seed(&st->r, seed);
    return st;
}

static int fresh(const genetic_state *st, const sol_tune_config *c)
{
    return sol_space_valid(st->s, c) && !st->proposed[sol_space_encode(st->s, c)];
}

/* A valid point not yet proposed: random draws first (uniform over the
 * space), then a scan from a random start; 0 when none is left. */
static int random_fresh(genetic_state *st, sol_tune_config *c)
{
    for (int i = 0; i < RANDOM_TRIES; i++) {
        sol_space_decode(st->s, sol_rng_below(&st->r, st->size), c);
        if (fresh(st, c))
            return 1;
    }
    int64_t start = sol_rng_below(&st->r, st->size);
    for (int64_t i = 0; i < st->size; i++) {
        sol_space_decode(st->s, (start + i) % st->size, c);
        if (fresh(st, c))
            return 1;
    }
    return 0;
}

/* The fastest of TOURNAMENT members drawn with replacement. */
static const member *tournament(genetic_state *st)
{
    const member *best = &st->pop[sol_rng_below(&st->r, st->n_pop)];
    for (int i = 1; i < TOURNAMENT; i++) {
        const member *m = &st->pop[sol_rng_below(&st->r, st->n_pop)];
        if (m->time_s < best->time_s)
            best = m;
    }
    return best;
}

static void crossover(genetic_state *st, const member *a, const member *b, sol_tune_config *child)
{
    *child = a->c;
    for (int p = 0; p < st->s->n_params; p++)
        if (sol_rng_uniform(&st->r) < 0.5)
            child->idx[p] = b->c.idx[p];
}

/* Parameter p one value index up or down (reflected at the ends). */
static void step(genetic_state *st, sol_tune_config *c, int p)
{
    int n = st->s->params[p].n_values, v = c->idx[p] + (sol_rng_uniform(&st->r) < 0.5 ? -1 : 1);
    c->idx[p] = v < 0 ? 1 : v >= n ? n - 2 : v;
}

/* One parameter one step, or JUMP_P of the time to any value index. */
static void mutate_param(genetic_state *st, sol_tune_config *c, int p)
{
    int n = st->s->params[p].n_values;
    if (n < 2)
        return;
    if (sol_rng_uniform(&st->r) < JUMP_P)
        c->idx[p] = (int)sol_rng_below(&st->r, n);
    else
        step(st, c, p);
}

static void mutate(genetic_state *st, sol_tune_config *c)
{
    double rate = 1.0 / st->s->n_params;
    for (int p = 0; p < st->s->n_params; p++)
        if (sol_rng_uniform(&st->r) < rate)
            mutate_param(st, c, p);
}

/* A fresh child of two tournament winners; 0 when BREED_TRIES found none. */
static int breed(genetic_state *st, sol_tune_config *c)
{
    for (int i = 0; i < BREED_TRIES; i++) {
        const member *a = tournament(st), *b = tournament(st);
        crossover(st, a, b, c);
        mutate(st, c);
        if (fresh(st, c))
            return 1;
    }
    return 0;
}

/* A fresh point one step from the fastest member in one parameter; 0 when
 * 16 tries found none. */
static int near_best(genetic_state *st, sol_tune_config *c)
{
    const member *best = &st->pop[0];
    for (int i = 1; i < st->n_pop; i++)
        if (st->pop[i].time_s < best->time_s)
            best = &st->pop[i];
    for (int i = 0; i < 16; i++) {
        *c = best->c;
        int p = (int)sol_rng_below(&st->r, st->s->n_params);
        if (st->s->params[p].n_values < 2)
            continue;
        step(st, c, p);
        if (fresh(st, c))
            return 1;
    }
    return 0;
}

/* A member of the first population: a mutant of the default (SEED_NEAR_P
 * of the time), else (or when 32 mutants were taken or invalid) random. */
static int seed_member(genetic_state *st, sol_tune_config *c)
{
    if (sol_rng_uniform(&st->r) < SEED_NEAR_P)
        for (int i = 0; i < 32; i++) {
            *c = st->s->default_config;
            mutate(st, c);
            if (fresh(st, c))
                return 1;
        }
    return random_fresh(st, c);
}

static int genetic_next(void *state, sol_tune_config *c)
{
    genetic_state *st = state;
    int found;
    if (fresh(st, &st->s->default_config)) {
        *c = st->s->default_config;
        found = 1;
    } else if (st->n_pop < st->cap) {
        found = seed_member(st, c);
    } else {
        found = (sol_rng_uniform(&st->r) < LOCAL_P && near_best(st, c)) || breed(st, c) || random_fresh(st, c);
    }
    if (found)
        st->proposed[sol_space_encode(st->s, c)] = 1;
    return found;
}

/* Fills the population, then replaces its slowest member when faster. */
static void genetic_report(void *state, const sol_tune_config *c, double time_s)
{
    genetic_state *st = state;
    member m = {*c, time_s < 0 ? INFINITY : time_s};
    if (st->n_pop < st->cap) {
        st->pop[st->n_pop++] = m;
        return;
    }
    int worst = 0;
    for (int i = 1; i < st->n_pop; i++)
        if (st->pop[i].time_s > st->pop[worst].time_s)
            worst = i;
    if (m.time_s < st->pop[worst].time_s)
        st->pop[worst] = m;
}

static void genetic_finish(void *state)
{
    genetic_state *st = state;
    free(st->proposed);
    free(st);
}

const sol_strategy_ops sol_strategy_genetic = {"genetic", genetic_start, genetic_next, genetic_report, genetic_finish};
