/* The CUDA decode attention as a tunable kernel (the trials run in the
 * plugin, kernels/cuda/attn_trial.cu): its problems, and the space over
 * attention_decode.cuh's parameters, whose validity and default the plugin
 * says (kernels/cuda/attn_variant.cu holds the rules). */
#ifndef SOL_TUNER_CUDA_ATTN_H
#define SOL_TUNER_CUDA_ATTN_H

#include "kernels/cuda/plugin.h"
#include "tuner/tuner.h"

/* A decode step's attention of one layer shape for `rows` sequences (1..8)
 * over a cache of `capacity` slots of kv_type, measured with every query at
 * the last position (the cache full: the step that reads the most). */
typedef struct sol_cuda_attn_problem {
    int n_heads, n_kv_heads, head_dim;
    sol_dtype kv_type;
    int64_t capacity;
    int rows;
} sol_cuda_attn_problem;

/* "attention:KV:HxGxDxC" (*rows_given 0: rows from --batches) or
 * "attention:KV:HxGxDxCxR": H query heads, G KV heads (dividing H), head
 * dim D (<= 256), C cache slots (32..1048576), R rows 1..8; KV f16 or f32.
 * Usage errors name --shape. */
int sol_cuda_attn_problem_parse(const char *text, sol_cuda_attn_problem *pb, int *rows_given, sol_err *err);
void sol_cuda_attn_problem_format(const sol_cuda_attn_problem *pb, char *shape, int cap); /* "32x8x128x4096x1" */
/* The request of pb's trial with params (position capacity - 1). */
void sol_cuda_attn_request_of(const sol_cuda_attn_problem *pb, const sol_cuda_attn_config *params,
                              sol_cuda_attn_request *req);
/* K and V rows the queries see, the queries and the outputs: the bytes a
 * trial must move. */
double sol_cuda_attn_bytes(const sol_cuda_attn_problem *pb);

/* What the plugin says about variants (its at_default and at_check). */
typedef struct sol_cuda_attn_oracle {
    void (*defaults)(int head_dim, int group, sol_cuda_attn_config *out);
    int (*check)(const sol_cuda_attn_request *req, char *why, size_t cap);
} sol_cuda_attn_oracle;

/* The space of pb (kept in ctx, which must outlive it): query heads per
 * block 1..8, warps per block 2..16, slots of capacity per split 64..2048;
 * dims per lane the built-in's (the fewest that hold head_dim). The default
 * configuration is the plugin's built-in variant; valid = its check. */
typedef struct sol_cuda_attn_space_ctx {
    sol_cuda_attn_problem pb;
    sol_cuda_attn_oracle oracle;
} sol_cuda_attn_space_ctx;
void sol_cuda_attn_space(const sol_cuda_attn_problem *pb, const sol_cuda_attn_oracle *oracle,
                         sol_cuda_attn_space_ctx *ctx, sol_tune_space *s);
void sol_cuda_attn_config_from(const sol_tune_space *s, const sol_tune_config *c, sol_cuda_attn_config *out);

#endif
