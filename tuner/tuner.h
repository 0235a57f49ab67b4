/* The tuner's framework: a tunable kernel declares its parameters, their
 * values and the constraints between them; strategies (exhaustive, random,
 * simulated annealing, a genetic algorithm) propose configurations; measurement times each one
 * honestly (warm-up, repetitions with the cache flushed, median and
 * spread, hardware counters when the kernel allows them). Backend-neutral:
 * the CUDA backend plugs its kernels into the same spaces. */
#ifndef SOL_TUNER_TUNER_H
#define SOL_TUNER_TUNER_H

#include <stdint.h>

#include "util/err.h"

#define SOL_TUNE_MAX_PARAMS 8
#define SOL_TUNE_MAX_VALUES 16

typedef struct sol_tune_param {
    const char *name;
    int n_values;
    int values[SOL_TUNE_MAX_VALUES];
} sol_tune_param;

/* A configuration: one value index per parameter. */
typedef struct sol_tune_config {
    int idx[SOL_TUNE_MAX_PARAMS];
} sol_tune_config;

typedef struct sol_tune_space {
    const char *kernel;
    int n_params;
    sol_tune_param params[SOL_TUNE_MAX_PARAMS];
    /* Constraints between parameters (values, not indices); NULL = all valid. */
    int (*valid)(const int *values, void *user);
    void *user;
    sol_tune_config default_config;
} sol_tune_space;

/* Adds a parameter with its values; returns its index. */
int sol_space_add(sol_tune_space *s, const char *name, const int *values, int n_values, int default_value);
int64_t sol_space_size(const sol_tune_space *s); /* all combinations, valid or not */
void sol_space_decode(const sol_tune_space *s, int64_t linear, sol_tune_config *c);
int64_t sol_space_encode(const sol_tune_space *s, const sol_tune_config *c);
void sol_space_values(const sol_tune_space *s, const sol_tune_config *c, int *values);
int sol_space_valid(const sol_tune_space *s, const sol_tune_config *c);
/* How many configurations are valid, and of them how many have a time in
 * seen[linear index] (not NAN: measured, or refused as wrong): a resume
 * with measured == valid has nothing left to try. */
void sol_space_coverage(const sol_tune_space *s, const double *seen, int *valid, int *measured);
/* {"rows_per_task": 16, ...} (cJSON text, caller frees) */
char *sol_space_json(const sol_tune_space *s, const sol_tune_config *c);

/* ---- strategies ------------------------------------------------------ */

/* A strategy proposes configurations and hears their times. Adding one
 * (e.g. Bayesian optimisation) is a new file with these four functions
 * (tuner/genetic.c is one). */
typedef struct sol_strategy_ops {
    const char *name;
    void *(*start)(const sol_tune_space *s, int budget, uint64_t seed);
    /* 1 and *c set, or 0 when the strategy has nothing more to try */
    int (*next)(void *state, sol_tune_config *c);
    /* time_s < 0: the configuration failed or computed a wrong answer */
    void (*report)(void *state, const sol_tune_config *c, double time_s);
    void (*finish)(void *state);
} sol_strategy_ops;

const sol_strategy_ops *sol_strategy_find(const char *name); /* exhaustive | random | anneal | genetic */
extern const sol_strategy_ops sol_strategy_genetic;          /* tuner/genetic.c */

/* Measures one configuration: seconds (median), or < 0 when it must never
 * be chosen (wrong answer, failed to run), or NAN to stop the search
 * (interrupted). */
typedef double (*sol_tune_eval)(void *user, const sol_tune_config *c);

typedef struct sol_search_result {
    sol_tune_config best;
    double best_time_s;   /* < 0: nothing valid was found */
    int evaluations;      /* configurations measured */
    int invalid_skipped;  /* proposals rejected by the constraints */
} sol_search_result;

/* Runs a strategy until it stops or `budget` configurations were measured.
 * Invalid configurations are never evaluated; none is evaluated twice. */
int sol_search(const sol_strategy_ops *strategy, const sol_tune_space *s, int budget, uint64_t seed,
               sol_tune_eval eval, void *user, sol_search_result *out, sol_err *err);

/* ---- measurement ------------------------------------------------------ */

typedef struct sol_timing_stats {
    double median_s, min_s, max_s;
    int reps;
} sol_timing_stats;

/* Calls run(run_user) once to warm up, then `reps` (>= 5) timed times;
 * flush(flush_user) (flush may be NULL) runs before each, untimed. */
void sol_measure(void (*run)(void *user), void *run_user, void (*flush)(void *user), void *flush_user, int reps,
                 sol_timing_stats *out);

/* Evicts the last-level cache by writing then reading a buffer of twice
 * its size (allocated once). */
typedef struct sol_cache_flusher {
    unsigned char *buf;
    size_t bytes;
    volatile unsigned sink;
} sol_cache_flusher;
int sol_flusher_init(sol_cache_flusher *f, size_t llc_bytes);
void sol_flusher_run(void *flusher);
void sol_flusher_free(sol_cache_flusher *f);

#endif
