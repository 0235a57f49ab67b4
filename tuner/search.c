/* Search strategies and the driver (see tuner.h). The driver owns the
 * rules every strategy obeys: constraints are checked before anything
 * runs, no configuration is measured twice, and the budget counts
 * measurements. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tuner/rng.h"
#include "tuner/tuner.h"

/* Spaces larger than this are refused (the driver keeps a time per point). */
#define MAX_SPACE (1 << 20)

/* ---- exhaustive: every point in order ---------------------------------- */

typedef struct {
    const sol_tune_space *s;
    int64_t next, size;
} exhaustive_state;

static void *exhaustive_start(const sol_tune_space *s, int budget, uint64_t seed)
{
    (void)budget;
    (void)seed;
    exhaustive_state *st = calloc(1, sizeof *st);
    if (st) {
        st->s = s;
        st->size = sol_space_size(s);
    }
    return st;
}

static int exhaustive_next(void *state, sol_tune_config *c)
{
    exhaustive_state *st = state;
    if (st->next >= st->size)
        return 0;
    sol_space_decode(st->s, st->next++, c);
    return 1;
}

static void ignore_report(void *state, const sol_tune_config *c, double time_s)
{
    (void)state;
    (void)c;
    (void)time_s;
}

/* ---- random: a seeded permutation of the points ------------------------ */

typedef struct {
    const sol_tune_space *s;
    int64_t *order, size, next;
} random_state;

static void *random_start(const sol_tune_space *s, int budget, uint64_t seed)
{
    (void)budget;
    random_state *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->s = s;
    st->size = sol_space_size(s);
    st->order = malloc((size_t)st->size * sizeof *st->order);
    if (!st->order) {
        free(st);
        return NULL;
    }
    sol_rng r;
    sol_rng_seed(&r, seed);
    for (int64_t i = 0; i < st->size; i++)
        st->order[i] = i;
    for (int64_t i = st->size - 1; i > 0; i--) {
        int64_t j = (int64_t)(sol_rng_uniform(&r) * (double)(i + 1));
        int64_t t = st->order[i];
        st->order[i] = st->order[j];
        st->order[j] = t;
    }
    return st;
}

static int random_next(void *state, sol_tune_config *c)
{
    random_state *st = state;
    if (st->next >= st->size)
        return 0;
    sol_space_decode(st->s, st->order[st->next++], c);
    return 1;
}

static void random_finish(void *state)
{
    random_state *st = state;
    free(st->order);
    free(st);
}

/* ---- simulated annealing over neighbouring values ---------------------- */

/* It proposes only points it has not proposed before, valid ones: a
 * revisited point costs no measurement, so an annealer that revisits sits in
 * one basin while its temperature runs out (it measured 16 to 67 points of
 * a budget of 83 and missed the optimum by up to 37%). When every neighbour
 * of the current point is taken it jumps to an unvisited point near the best
 * so far, else anywhere. */
typedef struct {
    const sol_tune_space *s;
    sol_rng r;
    sol_tune_config current, best;
    double current_time, best_time;
    int have_current, budget;
    double temperature;
    int64_t size;
    unsigned char *visited; /* by linear index */
} anneal_state;

static void *anneal_start(const sol_tune_space *s, int budget, uint64_t seed)
{
    anneal_state *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->s = s;
    st->size = sol_space_size(s);
    st->visited = calloc((size_t)st->size, 1);
    if (!st->visited) {
        free(st);
        return NULL;
    }
    st->budget = budget > 0 ? budget : (int)st->size;
    sol_rng_seed(&st->r, seed);
    st->temperature = 0.2; /* accepts a 20% slower point with p = 1/e at the start */
    st->best_time = -1;
    return st;
}

static int fresh(const anneal_state *st, const sol_tune_config *c)
{
    return !st->visited[sol_space_encode(st->s, c)] && sol_space_valid(st->s, c);
}

/* A fresh neighbour of `from`: one parameter moved one step (or, one time
 * in five, to any value). 0 when 32 tries found none. */
static int neighbour(anneal_state *st, const sol_tune_config *from, sol_tune_config *c)
{
    const sol_tune_space *s = st->s;
    for (int tries = 0; tries < 32; tries++) {
        *c = *from;
        int p = (int)(sol_rng_uniform(&st->r) * s->n_params);
        int n = s->params[p].n_values;
        if (n < 2)
            continue;
        if (sol_rng_uniform(&st->r) < 0.2) {
            c->idx[p] = (int)(sol_rng_uniform(&st->r) * n);
        } else {
            int v = c->idx[p] + (sol_rng_uniform(&st->r) < 0.5 ? -1 : 1);
            c->idx[p] = v < 0 ? 1 : v >= n ? n - 2 : v;
        }
        if (fresh(st, c))
            return 1;
    }
    return 0;
}

/* Any fresh point, scanning from a random start; 0 when none is left. */
static int any_fresh(anneal_state *st, sol_tune_config *c)
{
    int64_t start = (int64_t)(sol_rng_uniform(&st->r) * (double)st->size);
    for (int64_t i = 0; i < st->size; i++) {
        sol_space_decode(st->s, (start + i) % st->size, c);
        if (fresh(st, c))
            return 1;
    }
    return 0;
}

static int anneal_next(void *state, sol_tune_config *c)
{
    anneal_state *st = state;
    int found;
    if (!st->have_current && !st->visited[sol_space_encode(st->s, &st->s->default_config)]) {
        *c = st->s->default_config; /* start from the default */
        found = 1;
    } else {
        found = (st->have_current && neighbour(st, &st->current, c)) ||
                (st->best_time >= 0 && neighbour(st, &st->best, c)) || any_fresh(st, c);
    }
    if (found)
        st->visited[sol_space_encode(st->s, c)] = 1;
    return found;
}

static void anneal_report(void *state, const sol_tune_config *c, double time_s)
{
    anneal_state *st = state;
    /* geometric cooling to ~1% of the start over the budget */
    st->temperature *= pow(0.01, 1.0 / st->budget);
    if (time_s < 0)
        return; /* wrong or failed: never a current point */
    if (st->best_time < 0 || time_s < st->best_time) {
        st->best = *c;
        st->best_time = time_s;
    }
    if (!st->have_current || time_s < st->current_time ||
        sol_rng_uniform(&st->r) < exp(-(time_s - st->current_time) / st->current_time / st->temperature)) {
        st->current = *c;
        st->current_time = time_s;
        st->have_current = 1;
    }
}

static void anneal_finish(void *state)
{
    anneal_state *st = state;
    free(st->visited);
    free(st);
}

static void free_state(void *state) { free(state); }

static const sol_strategy_ops exhaustive_ops = {"exhaustive", exhaustive_start, exhaustive_next, ignore_report,
                                                 free_state};
static const sol_strategy_ops random_ops = {"random", random_start, random_next, ignore_report, random_finish};
static const sol_strategy_ops anneal_ops = {"anneal", anneal_start, anneal_next, anneal_report, anneal_finish};
static const sol_strategy_ops *const strategies[] = {&exhaustive_ops, &random_ops, &anneal_ops, &sol_strategy_genetic};

const sol_strategy_ops *sol_strategy_find(const char *name)
{
    for (size_t i = 0; i < sizeof strategies / sizeof strategies[0]; i++)
        if (!strcmp(strategies[i]->name, name))
            return strategies[i];
    return NULL;
}

/* ---- the driver --------------------------------------------------------- */

int sol_search(const sol_strategy_ops *strategy, const sol_tune_space *s, int budget, uint64_t seed,
               sol_tune_eval eval, void *user, sol_search_result *out, sol_err *err)
{
    memset(out, 0, sizeof *out);
    out->best_time_s = -1;
    int64_t size = sol_space_size(s);
    if (size > MAX_SPACE)
        return sol_fail(err, SOL_ERR_USAGE, "%s: %lld configurations is more than the tuner handles (%d)", s->kernel,
                        (long long)size, MAX_SPACE);
    if (budget <= 0 || budget > size)
        budget = (int)size;
    /* time of every point measured so far; NAN = not yet */
    double *seen = malloc((size_t)size * sizeof *seen);
    void *state = seen ? strategy->start(s, budget, seed) : NULL;
    if (!state) {
        free(seen);
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    }
    for (int64_t i = 0; i < size; i++)
        seen[i] = NAN;
    sol_tune_config c;
    /* a strategy circling over measured points must still end */
    long proposals = 0, max_proposals = 64L * budget + size;
    while (out->evaluations < budget && proposals++ < max_proposals && strategy->next(state, &c)) {
        int64_t at = sol_space_encode(s, &c);
        double t;
        if (!sol_space_valid(s, &c)) {
            out->invalid_skipped++;
            t = -1;
        } else if (!isnan(seen[at])) {
            t = seen[at];
        } else {
            t = eval(user, &c);
            if (isnan(t))
                break; /* interrupted: what was measured stays measured */
            seen[at] = t;
            out->evaluations++;
            if (t >= 0 && (out->best_time_s < 0 || t < out->best_time_s)) {
                out->best_time_s = t;
                out->best = c;
            }
        }
        strategy->report(state, &c, t);
    }
    strategy->finish(state);
    free(seen);
    return 0;
}
