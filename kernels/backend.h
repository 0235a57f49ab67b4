/* The backend interface (ABI 6): a table of function pointers, one per plan
 * op kind, so the engine runs the same plan on the CPU or, through a
 * plugin, on a GPU. Kernels see shapes and buffers, never models.
 *
 * The contract a backend writer works from:
 * - Memory. Every buffer an op reads or writes (activations, KV cache,
 *   weights, norm vectors, RoPE frequencies) is backend memory: allocated
 *   with alloc, filled with upload, weights placed with load_weights. The
 *   engine never dereferences it; it only offsets into it and reads results
 *   back with download.
 * - Asynchrony. Ops return void and may return before they have run. The
 *   arguments are read at the call, but the host structures they point to
 *   (weight views, the rope and cache descriptors) must stay valid until the
 *   next sync. sync waits for everything launched and returns the first
 *   asynchronous error, one line naming the op (a kernel fault is an error,
 *   never a crash or a silent wrong answer). After an error the backend
 *   runs nothing more; destroy is all that is left.
 * - Step state. begin_step sets the position, row count and token ids of a
 *   step (uploaded once); ops read them from there, so a decode step is
 *   the same sequence of calls every time (what a CUDA graph captures).
 *   A batched step (ABI 4) holds `seqs` sequences of rows / seqs rows each,
 *   sequence-major, every one at positions pos..; sequence s keeps its KV
 *   at s * seq_stride bytes from each cache array.
 *   Ops work on the step's rows unless they take an explicit m (matmuls:
 *   the LM head may take only the last row).
 * - Timing. mark(op, layer) opens an interval that ends at the next mark
 *   or at sync; after sync, op_seconds gives the step's intervals in order
 *   (wall-clock stamps on the CPU, events on a GPU).
 * - Counters (ABI 6). count_step, where a backend counts hardware
 *   counters, counts the step just synced by running its device work
 *   again (after its time was taken, so counting never inflates it). */
#ifndef SOL_KERNELS_BACKEND_H
#define SOL_KERNELS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "util/dtype.h"
#include "util/err.h"

/* A weight matrix as stored: `rows` rows of `cols` elements, row-major.
 * data is backend memory once load_weights has placed it. */
typedef struct sol_weight_view {
    sol_dtype type;
    const void *data;
    int64_t rows, cols;
    size_t row_bytes;
} sol_weight_view;

/* One layer's KV cache: `capacity` token slots of `width` elements for K
 * and for V, in `type` (a row of a block type is whole blocks: sol_row_bytes
 * of width, each head at sol_row_bytes of its offset). Position t lives in
 * slot sol_kv_slot: the first `sinks` positions keep slots 0..sinks-1 for
 * good (SimLayerKV's lazy layers, 0 elsewhere), the rest go round a ring of
 * capacity - sinks slots. A windowed layer's ring holds at least window +
 * rows - 1 slots (the newest `window` positions of every query row of a
 * step); a full cache holds the whole context. v == k is one array that is
 * both (MLA: the latent row is key and, its first values, value). */
typedef struct sol_kv_cache_layer {
    sol_dtype type;
    void *k, *v;
    int64_t capacity;
    int64_t width; /* n_kv_heads * head_dim; MLA: latent + RoPE key */
    int64_t sinks;
    size_t seq_stride; /* bytes from one sequence's k (and v) to the next's (batched steps) */
} sol_kv_cache_layer;

#ifdef __CUDACC__ /* the CUDA kernels use the same rules */
#define SOL_KV_RULE static inline __host__ __device__
#else
#define SOL_KV_RULE static inline
#endif

SOL_KV_RULE int64_t sol_kv_slot(const sol_kv_cache_layer *c, int64_t t)
{
    return t < c->sinks ? t : c->sinks + (t - c->sinks) % (c->capacity - c->sinks);
}

/* Whether the key at position t is seen by the query at position pos of a
 * layer keeping the newest `window` positions (0: all) and its sinks. */
SOL_KV_RULE int sol_kv_visible(const sol_kv_cache_layer *c, int64_t window, int64_t t, int64_t pos)
{
    return t <= pos && (window <= 0 || t > pos - window || t < c->sinks);
}

/* Rotary embedding parameters of a model. */
typedef struct sol_rope {
    int dims;               /* rotated dimensions per head (<= head_dim) */
    int offset;             /* the first rotated dimension of each head (MLA: after the nope part) */
    int neox;               /* 1: rotate (x[i], x[i+dims/2]); 0: adjacent pairs */
    const float *inv_freq;  /* dims/2 inverse frequencies, scaling applied (backend memory) */
} sol_rope;

/* How a matmul over quantised weights treats its input. */
typedef enum sol_activations {
    SOL_ACT_Q8,  /* quantised to 8 bits per 32 (integer dots); the default */
    SOL_ACT_F32, /* kept f32: exact up to float order, what the f32 reference checks */
} sol_activations;

/* What a backend computes with; asked before a model is loaded. */
typedef struct sol_backend_caps {
    uint32_t weight_types; /* bit t: matmuls and embedding over sol_dtype t */
    uint32_t kv_types;     /* bit t: a KV cache of sol_dtype t */
    int max_head_dim;
    int kv_sinks;          /* attention and KV writes honour sol_kv_cache_layer.sinks */
    int max_seqs;          /* sequences a batched step may hold (ABI 4; 1 = none) */
} sol_backend_caps;

static inline int sol_caps_has(uint32_t mask, sol_dtype t) { return (mask >> t) & 1u; }

/* The position, rows and tokens of one step. */
typedef struct sol_step_state {
    int64_t pos;            /* cache position of each sequence's first row */
    int rows;               /* tokens in the step, all sequences */
    const int32_t *tokens;  /* host, rows ids; copied by begin_step */
    int seqs;               /* sequences (rows / seqs rows each); 0 or 1: one */
} sol_step_state;

/* Row r of a step of `rows` rows over `seqs` sequences: its sequence and
 * its position (the kernels' rule for batched steps; the CUDA kernels call
 * these too, hence SOL_KV_RULE). */
SOL_KV_RULE int sol_step_seq(int rows, int seqs, int r) { return seqs > 1 ? r / (rows / seqs) : 0; }
SOL_KV_RULE int64_t sol_step_row_pos(int64_t pos, int rows, int seqs, int r)
{
    return seqs > 1 ? pos + r % (rows / seqs) : pos + r;
}

/* Mixture-of-experts routing of one token (a row of router logits over
 * n_experts): scores s = softmax(logits) (sigmoid: each sigmoid(logit));
 * the choice ranks c = s + bias (bias NULL: c = s); with n_groups > 1 the
 * experts form n_groups equal contiguous groups, each ranked by its best c
 * (by the sum of its two best c when bias is given, DeepSeek-V3), and only
 * the groups_kept best groups' experts may be chosen; the k best c win
 * (ties: the lower index), ordered best first. Their weights are their s,
 * divided by the sum of the k when norm, times scale. */
typedef struct sol_router {
    int n_experts, k;
    int sigmoid;
    const float *bias; /* backend memory, n_experts; NULL: none */
    int n_groups, groups_kept;
    int norm;
    float scale;
} sol_router;

#define SOL_MATMUL_GROUP_MAX 4
#define SOL_TOP_K_MAX 512 /* the largest k of the top_k op */

/* What count_step returns. */
enum sol_count_result {
    SOL_COUNT_FAILED = -1,     /* the device work itself failed: err filled, the backend runs nothing more */
    SOL_COUNT_NONE = 0,        /* not counted: a step it does not count, or counting is off */
    SOL_COUNT_DONE = 1,        /* counted: the outputs are filled */
    SOL_COUNT_TURNED_OFF = 2,  /* counting failed for good (no CUPTI, no privileges, ...): err->msg is
                                * a one-line notice for the user, err->code SOL_OK; returned once,
                                * every later call returns SOL_COUNT_NONE */
};

typedef struct sol_backend sol_backend;
struct sol_backend {
    const char *name;
    void *ctx;
    int threads;                 /* CPU threads behind it (display only) */
    sol_backend_caps caps;
    sol_activations activations; /* set by the caller after creation; SOL_ACT_Q8 at first */
    /* With SOL_ACT_Q8, matmuls of fewer input rows than this take 8-bit
     * activations; from it (prefill chunks) inputs stay f32. Set by the
     * backend (0: never 8-bit); the plan costs matmuls accordingly. */
    int int8_dots_below;
    void (*destroy)(sol_backend *b);

    /* ---- memory ---- */
    /* bytes of backend memory, uninitialised */
    int (*alloc)(sol_backend *b, size_t bytes, void **out, sol_err *err);
    void (*free)(sol_backend *b, void *p);
    /* host src -> backend dst; src may be reused on return */
    int (*upload)(sol_backend *b, void *dst, const void *src, size_t bytes, sol_err *err);
    /* backend src -> host dst, after every op before it has run: a sync
     * point, returning the first asynchronous error like sync */
    int (*download)(sol_backend *b, void *dst, const void *src, size_t bytes, sol_err *err);
    /* Places the n weight matrices (data pointing at host memory, e.g. a
     * file mapping that stays open) and re-points each view at the
     * backend's copy (which may be repacked; views sharing data share the
     * copy). *handle is what to free when the views are done (may be NULL). */
    int (*load_weights)(sol_backend *b, sol_weight_view *const *views, int n, void **handle, sol_err *err);

    /* ---- steps, timing, errors ---- */
    int (*begin_step)(sol_backend *b, const sol_step_state *s, sol_err *err);
    /* an op boundary: what is launched after it is timed (and blamed for
     * errors) as op `op` of layer `layer` (-1: outside the layers); op
     * must stay valid until sync */
    void (*mark)(sol_backend *b, const char *op, int layer);
    int (*sync)(sol_backend *b, sol_err *err);
    /* after sync: seconds of the step's intervals, in mark order; returns
     * how many (at most cap) */
    int (*op_seconds)(sol_backend *b, double *seconds, int cap);

    /* ---- ops (pointers are backend memory) ---- */
    /* out[rows, cols] = rows tokens[i] of table */
    void (*embed)(sol_backend *b, const sol_weight_view *table, float *out);
    /* out[rows, n] = x / rms(x) * weight, per row */
    void (*rmsnorm)(sol_backend *b, const float *x, const float *weight, float eps, int64_t n, float *out);
    /* y[m, w.rows] = x[m, w.cols] . W^T (+ bias) */
    void (*matmul)(sol_backend *b, const sol_weight_view *w, const float *bias, const float *x, int m, float *y);
    /* n (<= SOL_MATMUL_GROUP_MAX) matmuls of the same input x[m, cols]:
     * y[j] = x . w[j]^T (+ bias[j]), as one launch (q/k/v, gate/up); the
     * arrays are read at the call */
    void (*matmul_group)(sol_backend *b, int n, const sol_weight_view *const *w, const float *const *bias,
                         const float *x, int m, float *const *y);
    /* rotates the step's rows of n_heads heads (at positions pos..) in place */
    void (*rope)(sol_backend *b, float *x, int n_heads, int head_dim, const sol_rope *rope);
    /* rope of q and k, then k and v stored, in one pass per row (the
     * rotated k is also left in k) */
    void (*rope_kv_write)(sol_backend *b, float *q, float *k, const float *v, int n_heads, int head_dim,
                          const sol_rope *rope, sol_kv_cache_layer *cache);
    /* stores the step's rows of K and V at positions pos.. */
    void (*kv_write)(sol_backend *b, const float *k, const float *v, sol_kv_cache_layer *cache);
    /* causal attention of the step's query rows over the cache; window > 0
     * keeps only the last `window` positions; scores are q.k / sqrt(head_dim),
     * then softcap * tanh(score / softcap) when softcap > 0 (Gemma-2) */
    void (*attention)(sol_backend *b, const float *q, const sol_kv_cache_layer *cache, int n_heads, int n_kv_heads,
                      int head_dim, int64_t window, float softcap, float *out);
    /* MLA's absorbed projections, per head: y[(r * n_heads + h) * y_stride
     * + j] = sum_i W_h[j][i] x[(r * n_heads + h) * x_stride + i] over the
     * step's rows, W_h rows h * w->rows / n_heads .. of w (f32 or f16; i <
     * w->cols). NULL where the backend has none (the engine then refuses MLA). */
    void (*head_matmul)(sol_backend *b, const sol_weight_view *w, int n_heads, const float *x, int64_t x_stride,
                        float *y, int64_t y_stride);
    /* MLA's cache write: each step row of kv is [latent (rank), RoPE key
     * (rope->dims)]; stores [rmsnorm(latent) * norm, RoPE'd key] (width
     * cache->width = rank + rope->dims) at the row's position. NULL: none. */
    void (*latent_kv_write)(sol_backend *b, const float *kv, const float *norm, float eps, int rank,
                            const sol_rope *rope, sol_kv_cache_layer *cache);
    /* x[rows, n] += y[rows, n] */
    void (*add)(sol_backend *b, float *x, const float *y, int64_t n);
    /* gate = silu(gate) * up over the step's rows of n */
    void (*swiglu)(sol_backend *b, float *gate, const float *up, int64_t n);
    /* ---- ABI 4: the other families' ops; NULL where a backend has none
     * (the engine then refuses the models that need them, by name) ---- */
    /* x[rows, n] *= s (Gemma's embedding scale, its query scale) */
    void (*scale)(sol_backend *b, float *x, float s, int64_t n);
    /* x[m, n] = cap * tanh(x / cap) (Gemma-2's final logits) */
    void (*softcap)(sol_backend *b, float *x, float cap, int m, int64_t n);
    /* gate = gelu_tanh(gate) * up over the step's rows of n (GeGLU) */
    void (*geglu)(sol_backend *b, float *gate, const float *up, int64_t n);
    /* each head_dim slice of x[rows, n_heads * head_dim] in place:
     * x / rms(x) * weight[head_dim] (Gemma-3's q and k norms) */
    void (*head_rmsnorm)(sol_backend *b, float *x, const float *weight, float eps, int n_heads, int head_dim);
    /* the step's rows of router logits [rows, r->n_experts] -> the chosen
     * experts ids[rows, r->k] and their weights[rows, r->k] (sol_router) */
    void (*route)(sol_backend *b, const float *logits, const sol_router *r, int32_t *ids, float *weights);
    /* out[rows, down->rows / n_experts] = sum over j < k of weights[r, j] *
     * E(x[r]) for expert E = ids[r, j]: down_E(silu(gate_E x) * up_E x),
     * where expert e's matrix of gate (up, down) is its rows e * rows /
     * n_experts .. (a GGUF 3-D expert tensor); each expert's weights are
     * read once for all the rows routed to it */
    void (*moe_ffn)(sol_backend *b, const sol_weight_view *gate, const sol_weight_view *up,
                    const sol_weight_view *down, int n_experts, const float *x, const int32_t *ids,
                    const float *weights, int k, float *out);
    /* out[0] = the first index of the largest of x[0..n), NaNs never
     * winning (util/argmax.h's rule): greedy decoding moves 4 bytes */
    void (*argmax)(sol_backend *b, const float *x, int64_t n, int32_t *out);
    /* ABI 5: the k (1 <= k <= n) best of x[0..n) (larger first, ties by
     * the lower index: util/topk.h's order) into vals[0..k) and ids[0..k),
     * in any order: sampling with top-k moves 8k bytes, not the row.
     * NULL where a backend has none (the engine then downloads the row). */
    void (*top_k)(sol_backend *b, const float *x, int64_t n, int k, float *vals, int32_t *ids);
    /* ABI 5: rmsnorm(x, norm, eps, cols) into xb over the step's rows of
     * cols = w[0]->cols, then the n (1 .. SOL_MATMUL_GROUP_MAX) matmuls
     * of xb's first m rows, matmul_group(n, w, bias, xb, m, y) (matmul
     * when n is 1), as one call: their results bit for bit, xb written as
     * rmsnorm writes it (later ops may read it), but a GPU need not wait
     * for the norm (each matmul normalises its input as it reads it).
     * Every w[j] has cols columns; x and xb do not overlap. NULL where a
     * backend has none (the engine then makes the calls one by one). */
    void (*rmsnorm_matmul_group)(sol_backend *b, const float *x, const float *norm, float eps, int n,
                                 const sol_weight_view *const *w, const float *const *bias, int m, float *xb,
                                 float *const *y);
    /* ABI 6: hardware counters of the step just synced (the engine calls
     * it after taking the step's time, only for a step that succeeded):
     * DRAM bytes read and written by the step's device work, and that
     * work's GPU seconds as the counters timed it; returns a
     * sol_count_result. NULL where the backend has no counters or was not
     * asked to count (the CLI then refuses --counters). */
    int (*count_step)(sol_backend *b, double *dram_read, double *dram_write, double *gpu_s, sol_err *err);
};

#endif
