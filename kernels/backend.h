/* The backend interface: a table of function pointers, one per plan op kind
 * (nvtop-style), so the engine runs the same plan on the CPU or, through a
 * plugin, on a GPU. Kernels see shapes and buffers, never models. */
#ifndef SOL_KERNELS_BACKEND_H
#define SOL_KERNELS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "util/dtype.h"
#include "util/err.h"

/* A weight matrix as stored: `rows` rows of `cols` elements, row-major. */
typedef struct sol_weight_view {
    sol_dtype type;
    const void *data;
    int64_t rows, cols;
    size_t row_bytes;
} sol_weight_view;

/* One layer's KV cache: `capacity` token slots of `width` elements for K
 * and for V, in `type` (f32 or f16). */
typedef struct sol_kv_cache_layer {
    sol_dtype type;
    void *k, *v;
    int64_t capacity;
    int64_t width; /* n_kv_heads * head_dim */
} sol_kv_cache_layer;

/* Largest head size the attention kernels take. */
#define SOL_MAX_HEAD_DIM 512

/* Rotary embedding parameters of a model. */
typedef struct sol_rope {
    int dims;               /* rotated dimensions per head (<= head_dim) */
    int neox;               /* 1: rotate (x[i], x[i+dims/2]); 0: adjacent pairs */
    const float *inv_freq;  /* dims/2 inverse frequencies, scaling applied */
} sol_rope;

/* How a matmul over quantised weights treats its input. */
typedef enum sol_activations {
    SOL_ACT_Q8,  /* quantised to 8 bits per 32 (integer dots); the default */
    SOL_ACT_F32, /* kept f32: exact up to float order, what the f32 reference checks */
} sol_activations;

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

#define SOL_MATMUL_GROUP_MAX 4

typedef struct sol_backend sol_backend;
struct sol_backend {
    const char *name;
    void *ctx;
    int threads;
    sol_activations activations; /* set by the caller after creation; SOL_ACT_Q8 at first */
    /* With SOL_ACT_Q8, matmuls of fewer input rows than this take 8-bit
     * activations; from it (prefill chunks) the backend's f32 path is the
     * faster one and inputs stay exact. Set by the backend. */
    int int8_dots_below;
    const sol_tuning *tuning;    /* may be NULL: defaults everywhere */
    void (*destroy)(sol_backend *b);
    /* out[m, cols] = rows tokens[i] of table */
    void (*embed)(sol_backend *b, const sol_weight_view *table, const int32_t *tokens, int m, float *out);
    /* out[m, n] = x / rms(x) * weight, per row */
    void (*rmsnorm)(sol_backend *b, const float *x, const float *weight, float eps, int m, int64_t n, float *out);
    /* y[m, w.rows] = x[m, w.cols] . W^T (+ bias), with the tuned parameters
     * of this shape when there are some */
    void (*matmul)(sol_backend *b, const sol_weight_view *w, const float *bias, const float *x, int m, float *y);
    /* the same with explicit parameters (the tuner measures through this) */
    void (*matmul_with)(sol_backend *b, const sol_weight_view *w, const float *bias, const float *x, int m, float *y,
                        const sol_matmul_params *p);
    /* n (<= SOL_MATMUL_GROUP_MAX) matmuls of the same input x[m, cols]:
     * y[j] = x . w[j]^T (+ bias[j]), as one launch (q/k/v, gate/up) */
    void (*matmul_group)(sol_backend *b, int n, const sol_weight_view *const *w, const float *const *bias,
                         const float *x, int m, float *const *y);
    /* rotates m rows of n_heads heads at positions pos0..pos0+m-1 in place */
    void (*rope)(sol_backend *b, float *x, int m, int n_heads, int head_dim, int64_t pos0, const sol_rope *rope);
    /* rope of q and k, then k and v stored, in one pass per row (the
     * rotated k is also left in k) */
    void (*rope_kv_write)(sol_backend *b, float *q, float *k, const float *v, int m, int n_heads, int head_dim,
                          int64_t pos0, const sol_rope *rope, sol_kv_cache_layer *cache);
    /* stores m rows of K and V at positions pos0.. */
    void (*kv_write)(sol_backend *b, const float *k, const float *v, int m, int64_t pos0, sol_kv_cache_layer *cache);
    /* causal attention of m query rows at positions pos0.. over the cache;
     * window > 0 keeps only the last `window` positions */
    void (*attention)(sol_backend *b, const float *q, int m, int64_t pos0, const sol_kv_cache_layer *cache,
                      int n_heads, int n_kv_heads, int head_dim, int64_t window, float *out);
    /* x[i] += y[i] */
    void (*add)(sol_backend *b, float *x, const float *y, int64_t n);
    /* gate[i] = silu(gate[i]) * up[i] over m rows of n */
    void (*swiglu)(sol_backend *b, float *gate, const float *up, int m, int64_t n);
};

/* The CPU backend (always built); threads <= 0 picks the physical core count. */
int sol_cpu_backend_new(int threads, sol_backend **out, sol_err *err);

#endif
