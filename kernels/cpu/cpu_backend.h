/* What the CPU backend's source files share: its context and the task
 * split. Not an interface for anything outside kernels/cpu. */
#ifndef SOL_KERNELS_CPU_CPU_BACKEND_H
#define SOL_KERNELS_CPU_CPU_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "kernels/backend.h"
#include "kernels/cpu.h"
#include "kernels/cpu/act_q8.h"
#include "kernels/cpu/pool.h"

/* Largest head size the attention kernels take (a stack row per head). */
#define SOL_CPU_MAX_HEAD_DIM 1024 /* MLA attends over latent + RoPE key rows (576 in DeepSeek-V2) */

/* Sequences a batched step may hold (caps.max_seqs): the kernels take any
 * number; this bounds what the engine may ask for. */
#define SOL_CPU_MAX_SEQS 256

/* cos and sin of every (row, frequency) of one step's positions: the same
 * for every layer, so computed once per step, not once per layer and head. */
typedef struct {
    int64_t pos0;
    int m, dims;
    const float *inv_freq;
    float *cos, *sin; /* m x dims/2 each */
    size_t cap;       /* floats in each */
} rope_table;

typedef struct {
    sol_pool *pool;
    sol_q8_block *act; /* the quantised input of the running matmul */
    size_t act_cap;    /* blocks */
    /* Fusion: rmsnorm and swiglu quantise the rows they write while they are
     * in cache; act then holds act_elems values of act_src, for the very next
     * backend call only (a matmul takes it; every other op forgets it). */
    const float *act_src;
    int64_t act_elems;
    rope_table rope;
    float *packed;      /* the f32 prefill matmul's inputs, packed (simd.h) */
    size_t packed_cap;  /* floats */
    const sol_tuning *tuning; /* may be NULL: defaults everywhere */
    int mapped_weights;       /* load_weights leaves the views on the caller's mapping */
    /* the step (begin_step): rows of seqs sequences (rows / seqs each,
     * sequence-major), each sequence's first row at position pos */
    int64_t pos;
    int rows;
    int seqs; /* >= 1 */
    int32_t *tokens;
    int tokens_cap;
    /* wall-clock stamps of the step's marks, and the sync that ends the last */
    double *stamps;
    int n_stamps, stamps_cap;
    /* route's and moe_ffn's working memory (moe.c), grown on demand */
    float *scratch;
    size_t scratch_cap; /* floats */
    int32_t *iscratch;
    size_t iscratch_cap; /* ints */
    /* The first op that could not run (no memory and no other way): one
     * line that sync and download return from then on (backend.h). */
    char error[160];
} cpu_ctx;

static inline sol_pool *pool_of(sol_backend *b) { return ((cpu_ctx *)b->ctx)->pool; }

static inline void forget_quantized(sol_backend *b) { ((cpu_ctx *)b->ctx)->act_src = NULL; }

/* act grown to `blocks`; -1 when that memory is not there. */
static inline int act_reserve(cpu_ctx *ctx, size_t blocks)
{
    if (blocks <= ctx->act_cap)
        return 0;
    sol_q8_block *act = realloc(ctx->act, blocks * sizeof *act);
    if (!act)
        return -1;
    ctx->act = act;
    ctx->act_cap = blocks;
    return 0;
}

/* packed grown to `floats` (32-byte aligned); -1 when that memory is not there. */
static inline int packed_reserve(cpu_ctx *ctx, size_t floats)
{
    if (floats <= ctx->packed_cap)
        return 0;
    float *p = aligned_alloc(32, (floats * sizeof *p + 31) / 32 * 32);
    if (!p)
        return -1;
    free(ctx->packed);
    ctx->packed = p;
    ctx->packed_cap = floats;
    return 0;
}

/* Rows per sequence of the step, and row r's sequence and position
 * (backend.h's rule; with one sequence: every row, 0, pos + r). */
static inline int rows_per_seq(const cpu_ctx *ctx) { return ctx->rows / ctx->seqs; }
static inline int row_seq(const cpu_ctx *ctx, int r) { return sol_step_seq(ctx->rows, ctx->seqs, r); }
static inline int64_t row_pos(const cpu_ctx *ctx, int r) { return sol_step_row_pos(ctx->pos, ctx->rows, ctx->seqs, r); }

/* Sequence s's view of a cache: k and v moved by s * seq_stride bytes. */
static inline sol_kv_cache_layer seq_cache(const sol_kv_cache_layer *c, int s)
{
    sol_kv_cache_layer out = *c;
    out.k = (char *)c->k + (size_t)s * c->seq_stride;
    out.v = (char *)c->v + (size_t)s * c->seq_stride;
    return out;
}

/* Records that op could not run (the first failure is kept); sync and
 * download report it (memory.c). */
void sol_cpu_fail(cpu_ctx *ctx, const char *op, const char *what);

/* Splits [0, n) into n_tasks nearly equal ranges. */
static inline void task_range(int64_t n, int task, int n_tasks, int64_t *begin, int64_t *end)
{
    *begin = n * task / n_tasks;
    *end = n * (task + 1) / n_tasks;
}

/* matmul.c */
void sol_cpu_matmul(sol_backend *b, const sol_weight_view *w, const float *bias, const float *x, int m, float *y);
void sol_cpu_matmul_group(sol_backend *b, int n, const sol_weight_view *const *w, const float *const *bias,
                          const float *x, int m, float *const *y);

/* attention.c: the step's rows at the step's positions */
/* MLA's per-head projections (latent.c; backend.h's head_matmul) */
void sol_cpu_head_matmul(sol_backend *b, const sol_weight_view *w, int n_heads, const float *x, int64_t x_stride,
                         float *y, int64_t y_stride);
void sol_cpu_attention(sol_backend *b, const float *q, const sol_kv_cache_layer *cache, int n_heads, int n_kv_heads,
                       int head_dim, int64_t window, float softcap, float *out);

/* moe.c: backend.h's route and moe_ffn */
void sol_cpu_route(sol_backend *b, const float *logits, const sol_router *r, int32_t *ids, float *weights);
void sol_cpu_moe_ffn(sol_backend *b, const sol_weight_view *gate, const sol_weight_view *up,
                     const sol_weight_view *down, int n_experts, const float *x, const int32_t *ids,
                     const float *weights, int k, float *out);

/* memory.c: memory, weights, steps and timing */
void sol_cpu_memory_init(sol_backend *b);
void sol_cpu_memory_free(cpu_ctx *ctx);

#endif
