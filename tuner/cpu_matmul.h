/* The CPU matmul as a tunable kernel: its parameter space, and a prepared
 * problem (seeded weights of one type and shape, inputs, a float64
 * reference) that times a configuration and checks its answer. */
#ifndef SOL_TUNER_CPU_MATMUL_H
#define SOL_TUNER_CPU_MATMUL_H

#include "kernels/cpu.h"
#include "tuner/perf.h"
#include "tuner/tuner.h"

typedef struct sol_matmul_problem {
    sol_dtype type;
    int64_t rows, cols; /* weight: rows x cols (N x K) */
    int m;              /* input rows: 1 = decode matvec */
    sol_activations act; /* the path measured (the backend is switched to it) */
} sol_matmul_problem;

/* The kernel a (type, activations) pair runs, as named in the database:
 * "cpu.matmul.q8" (integer dots) or "cpu.matmul" (f32 dots). */
const char *sol_cpu_matmul_kernel(sol_dtype type, sol_activations act, int m);

/* "matvec:q4_1:576x1536" (N x K, m = 1) or "matmul:q8_0:576x1536x64"; act
 * is left SOL_ACT_Q8. */
int sol_matmul_problem_parse(const char *text, sol_matmul_problem *pb, sol_err *err);
void sol_matmul_problem_format(const sol_matmul_problem *pb, char *shape, int cap); /* "576x1536x1" */

void sol_cpu_matmul_space(const sol_matmul_problem *pb, sol_tune_space *s);
void sol_matmul_params_from(const sol_tune_space *s, const sol_tune_config *c, sol_matmul_params *p);

typedef struct sol_matmul_bench {
    sol_backend *be;
    sol_matmul_problem pb;
    const sol_tune_space *space;
    void *weights;      /* `copies` identical matrices, together larger than the LLC */
    int copies, next_copy;
    size_t matrix_bytes;
    float *x, *y;
    double *reference;
    sol_perf perf;
    int reps;
    /* the last evaluation, for the trial row */
    sol_timing_stats last;
    uint64_t counters[SOL_PERF_COUNT];
    int last_correct;
    /* tests only: corrupts the output of configurations it returns 1 for */
    int (*inject_fault)(const int *values);
} sol_matmul_bench;

int sol_matmul_bench_init(sol_matmul_bench *b, sol_backend *be, const sol_matmul_problem *pb,
                          const sol_tune_space *space, uint64_t seed, size_t llc_bytes, int reps, sol_err *err);
void sol_matmul_bench_free(sol_matmul_bench *b);
/* sol_tune_eval: median seconds, or -1 when the answer is wrong. */
double sol_matmul_bench_eval(void *bench, const sol_tune_config *c);

#endif
