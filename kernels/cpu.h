/* The CPU backend as seen from outside kernels/cpu: creation, and what its
 * tuner needs (the matmul's launch parameters, their defaults, a matmul
 * with explicit parameters). Everything else of kernels/cpu is private. */
#ifndef SOL_KERNELS_CPU_H
#define SOL_KERNELS_CPU_H

#include "kernels/backend.h"

/* Launch parameters of a matmul that the tuner chooses per (type, shape). */
typedef struct sol_matmul_params {
    int tasks_per_thread; /* row ranges per thread: balance vs hand-out overhead */
    int row_block;        /* integer dots, m > 1: weight rows kept in cache while every input
                           * passes (the f32 path's groups are fixed: kernels/cpu/gemm.c) */
    int tile_rows;        /* integer dots: weight rows per kernel call (interleaved streams) */
    int tile_inputs;      /* integer dots, m > 1: inputs per kernel call (weights decoded once) */
} sol_matmul_params;

typedef struct sol_tuning_entry {
    sol_dtype type;
    int64_t rows, cols;
    int m; /* 1: decode; > 1: prefill (any number of rows) */
    int integer_dots; /* tuned with 8-bit activations (kernel cpu.matmul.q8) */
    sol_matmul_params params;
} sol_tuning_entry;

/* Winners handed in by the caller (the engine never reads the database). */
typedef struct sol_tuning {
    int n;
    sol_tuning_entry *entries;
} sol_tuning;

#define SOL_MATMUL_DEFAULTS                                                                                    \
    ((sol_matmul_params){.tasks_per_thread = 4, .row_block = 4, .tile_rows = 2, .tile_inputs = 4})

/* The CPU backend's untuned parameters for one path: SOL_MATMUL_DEFAULTS,
 * except in decode. With f32 dots it passes over x with one weight row
 * while x fits in half of L1 (cols <= 4096) and with four beyond; with
 * integer dots, rows longer than 4096 go one at a time. Measured (`sol tune
 * --shape`, exhaustive, best time per rows-per-pass 1 / 2 / 4): F16
 * 8192x2048 570 / 1130 / 880 us, F16 2048x8192 1290 / 1030 / 770 us,
 * Q8_0 2048x8192 334 / 462 / 510 us, Q8_0 8192x2048 351 / 320 / 304 us. */
sol_matmul_params sol_cpu_matmul_defaults(int64_t cols, int m, int integer_dots);

/* The CPU backend's integer dots serve matmuls of fewer input rows than
 * this (see kernels/cpu/act_q8.h for the measurement). */
#define SOL_CPU_INT8_DOTS_BELOW 32

/* The most weight rows x inputs one integer-dot kernel call takes (its
 * accumulators live in registers). */
#define SOL_CPU_Q8_MAX_TILE 8

/* 1 when the CPU backend has an integer (8-bit activation) dot for t. */
int sol_cpu_integer_dots(sol_dtype t);

/* out[0 .. n) = x as the integer dots see it: quantised (reference rule)
 * and back, q * d, in f32. For references that check the integer-dot path.
 * -1 when scratch memory is not there. */
int sol_act_q8_round_trip(const float *x, float *out, int64_t n);

typedef struct sol_cpu_options {
    int threads;               /* <= 0: physical cores */
    const sol_tuning *tuning;  /* winners (NULL: defaults); must outlive the backend */
    int mapped_weights;        /* 1: compute from the caller's mapping (4 KiB pages), no huge-page copy */
} sol_cpu_options;

int sol_cpu_backend_new(const sol_cpu_options *opt, sol_backend **out, sol_err *err);

/* A matmul with explicit parameters (the tuner measures through this);
 * synchronous, like every CPU op. */
void sol_cpu_matmul_with(sol_backend *b, const sol_weight_view *w, const float *bias, const float *x, int m, float *y,
                         const sol_matmul_params *p);

#endif
