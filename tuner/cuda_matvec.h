/* The CUDA matvec as a tunable kernel (the trials run in the plugin,
 * kernels/cuda/tune_trial.cu): its problems, the parameter space over
 * matvec.cuh's template parameters, whose validity and default the plugin
 * says (the rules live in one place, kernels/cuda/variant.cu). */
#ifndef SOL_TUNER_CUDA_MATVEC_H
#define SOL_TUNER_CUDA_MATVEC_H

#include "kernels/cuda/plugin.h"
#include "tuner/tuner.h"

#define SOL_CUDA_MV_MAX_INPUTS 8

/* y[m, rows] = x[m, cols] . W^T on the GPU, a decode step's matmul for m
 * sequences (1..8); rmsnorm 1: of RMSNorm(x), by the fused kernel
 * (sol_cuda_mv_request.rmsnorm). */
typedef struct sol_cuda_mv_problem {
    sol_dtype type;
    int64_t rows, cols;
    int m;
    int rmsnorm;
} sol_cuda_mv_problem;

/* 1 for the weight types the CUDA backend decodes (f32 f16 bf16 q8_0 q4_0
 * q4_1 q4_k q6_k). */
int sol_cuda_mv_type_ok(sol_dtype t);

/* "matvec:TYPE:NxK" (*m_given 0: the inputs come from --batches) or
 * "matvec:TYPE:NxKxM" (M 1..8); N, K up to 2^20, K whole blocks of TYPE and
 * a multiple of 8. Usage errors name --shape. */
int sol_cuda_mv_problem_parse(const char *text, sol_cuda_mv_problem *pb, int *m_given, sol_err *err);
void sol_cuda_mv_problem_format(const sol_cuda_mv_problem *pb, char *shape, int cap); /* "4096x4096x1" */

/* --batches: "1,8" -> the distinct m, ascending, in out (bit i-1 set for m
 * = i); 0, or a usage error naming --batches. */
int sol_cuda_mv_batches_parse(const char *text, unsigned *mask, sol_err *err);

/* What the plugin says about variants (its mv_default and mv_check). */
typedef struct sol_cuda_mv_oracle {
    void (*defaults)(sol_dtype type, int max_inputs, sol_cuda_mv_config *out);
    int (*check)(sol_dtype type, int64_t rows, int64_t cols, size_t row_bytes, const sol_cuda_mv_config *params,
                 char *why, size_t cap);
} sol_cuda_mv_oracle;

/* The space of pb (kept in ctx, which must outlive the space): rows per
 * block 1..32, threads per row 1..256, loads of 2..16 bytes, unroll 1..8,
 * K split 1..8 (1 alone for the fused kernel), and max_inputs m or 8 (one pass over the weights for the m
 * inputs; 1 alone for one input); valid = the oracle's check for pb's shape. The default
 * configuration is the plugin's built-in variant for m (max_inputs 1 for one
 * input, else 8: what ops.cu runs). */
typedef struct sol_cuda_mv_space_ctx {
    sol_cuda_mv_problem pb;
    size_t row_bytes;
    sol_cuda_mv_oracle oracle;
} sol_cuda_mv_space_ctx;
void sol_cuda_mv_space(const sol_cuda_mv_problem *pb, const sol_cuda_mv_oracle *oracle, sol_cuda_mv_space_ctx *ctx,
                       sol_tune_space *s);
void sol_cuda_mv_config_from(const sol_tune_space *s, const sol_tune_config *c, sol_cuda_mv_config *out);
/* Bytes of a row of cols elements of t (0 when t is not a CUDA type or
 * cols not whole blocks). */
size_t sol_cuda_mv_row_bytes(sol_dtype t, int64_t cols);

#endif
