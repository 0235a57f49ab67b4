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

/* Rotary embedding parameters of a model. */
typedef struct sol_rope {
    int dims;               /* rotated dimensions per head (<= head_dim) */
    int neox;               /* 1: rotate (x[i], x[i+dims/2]); 0: adjacent pairs */
    const float *inv_freq;  /* dims/2 inverse frequencies, scaling applied */
} sol_rope;

typedef struct sol_backend sol_backend;
struct sol_backend {
    const char *name;
    void *ctx;
    int threads;
    void (*destroy)(sol_backend *b);
    /* out[m, cols] = rows tokens[i] of table */
    void (*embed)(sol_backend *b, const sol_weight_view *table, const int32_t *tokens, int m, float *out);
    /* out[m, n] = x / rms(x) * weight, per row */
    void (*rmsnorm)(sol_backend *b, const float *x, const float *weight, float eps, int m, int64_t n, float *out);
    /* y[m, w.rows] = x[m, w.cols] . W^T (+ bias) */
    void (*matmul)(sol_backend *b, const sol_weight_view *w, const float *bias, const float *x, int m, float *y);
    /* rotates m rows of n_heads heads at positions pos0..pos0+m-1 in place */
    void (*rope)(sol_backend *b, float *x, int m, int n_heads, int head_dim, int64_t pos0, const sol_rope *rope);
    /* stores m rows of K and V at positions pos0.. */
    void (*kv_write)(sol_backend *b, const float *k, const float *v, int m, int64_t pos0, sol_kv_cache_layer *cache);
    /* causal attention of m query rows at positions pos0.. over the cache;
     * window > 0 keeps only the last `window` positions */
    void (*attention)(sol_backend *b, const float *q, int m, int64_t pos0, const sol_kv_cache_layer *cache,
                      int n_heads, int n_kv_heads, int head_dim, int64_t window, float *out);
    /* x[i] += y[i] */
    void (*add)(sol_backend *b, float *x, const float *y, int64_t n);
    /* gate[i] = silu(gate[i]) * up[i] */
    void (*swiglu)(sol_backend *b, float *gate, const float *up, int64_t n);
};

/* The CPU backend (always built); threads <= 0 picks the physical core count. */
int sol_cpu_backend_new(int threads, sol_backend **out, sol_err *err);

#endif
