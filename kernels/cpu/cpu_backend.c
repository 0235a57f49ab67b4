/* The CPU backend: the plan's ops over the stored weight types, rows split
 * across a thread pool; the matmuls are in matmul.c. AVX2 or reference
 * kernels are chosen by dispatch.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/backend.h"
#include "kernels/formats.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/kv_quant.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/simd.h"
#include "util/argmax.h"
#include "util/topk.h"

/* ---- embedding, norm ---------------------------------------------------- */

static void cpu_embed(sol_backend *b, const sol_weight_view *table, float *out)
{
    const cpu_ctx *ctx = b->ctx;
    forget_quantized(b);
    for (int i = 0; i < ctx->rows; i++)
        sol_dequantize(table->type, (const char *)table->data + (size_t)ctx->tokens[i] * table->row_bytes,
                       out + (size_t)i * table->cols, table->cols);
}

/* With 8-bit activations the norm's output is what the next matmuls
 * quantise: it happens here, row by row while the row is in cache, and the
 * matmuls (q/k/v, gate/up) take the copy (cpu_backend.h). Not for m rows
 * that the matmuls take in f32 (int8_dots_below). */
static int quantizes_output(sol_backend *b, int m, int64_t row_elems)
{
    cpu_ctx *ctx = b->ctx;
    forget_quantized(b);
    return b->activations == SOL_ACT_Q8 && m < b->int8_dots_below && row_elems % SOL_Q8_BLOCK == 0 &&
           act_reserve(ctx, (size_t)((int64_t)m * row_elems / SOL_Q8_BLOCK)) == 0;
}

/* out[i] = row[i] / rms(row) * weight[i] over n values. */
static void rms_normalise(const float *row, const float *weight, float eps, int64_t n, float *out)
{
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)row[i] * row[i];
    float scale = 1.0f / sqrtf((float)(sum / n) + eps);
    for (int64_t i = 0; i < n; i++)
        out[i] = row[i] * scale * weight[i];
}

static void cpu_rmsnorm(sol_backend *b, const float *x, const float *weight, float eps, int64_t n, float *out)
{
    cpu_ctx *ctx = b->ctx;
    int m = ctx->rows;
    int quantize = quantizes_output(b, m, n);
    for (int r = 0; r < m; r++) {
        rms_normalise(x + (size_t)r * n, weight, eps, n, out + (size_t)r * n);
        if (quantize)
            sol_quantize_act(out + (size_t)r * n, ctx->act + (size_t)r * (n / SOL_Q8_BLOCK), n);
    }
    if (quantize) {
        ctx->act_src = out;
        ctx->act_elems = (int64_t)m * n;
    }
}

/* RMSNorm into xb, then the matmuls of xb: the very calls the engine makes
 * without this op (rmsnorm quantises xb for the matmuls as ever), so the
 * results are theirs by construction. The CPU gains nothing from fusing;
 * the op keeps the engine's path the one a GPU takes. */
static void cpu_rmsnorm_matmul_group(sol_backend *b, const float *x, const float *norm, float eps, int n,
                                     const sol_weight_view *const *w, const float *const *bias, int m, float *xb,
                                     float *const *y)
{
    cpu_rmsnorm(b, x, norm, eps, w[0]->cols, xb);
    if (n == 1)
        sol_cpu_matmul(b, w[0], bias[0], xb, m, y[0]);
    else
        sol_cpu_matmul_group(b, n, w, bias, xb, m, y);
}

/* ---- rope, kv (attention is in attention.c) ------------------------------------------------ */

/* The step's table (cpu_backend.h): the positions pos0 .. pos0 + m - 1 of
 * one sequence (every sequence of a batched step has the same), recomputed
 * when the positions or the frequencies change; NULL when its memory is not
 * there. */
static const rope_table *rope_table_for(cpu_ctx *ctx, int m, int64_t pos0, const sol_rope *rope)
{
    rope_table *t = &ctx->rope;
    int half = rope->dims / 2;
    if (t->cos && t->pos0 == pos0 && t->m == m && t->dims == rope->dims && t->inv_freq == rope->inv_freq)
        return t;
    size_t need = (size_t)m * (size_t)half;
    if (need > t->cap) {
        float *c = realloc(t->cos, need * sizeof *c), *sn = c ? realloc(t->sin, need * sizeof *sn) : NULL;
        if (c)
            t->cos = c;
        if (!c || !sn) {
            t->cap = 0;
            t->m = -1; /* invalid until a later success */
            return NULL;
        }
        t->sin = sn;
        t->cap = need;
    }
    for (int r = 0; r < m; r++) {
        double pos = (double)(pos0 + r);
        for (int i = 0; i < half; i++) {
            double angle = pos * rope->inv_freq[i];
            t->cos[(size_t)r * half + i] = (float)cos(angle);
            t->sin[(size_t)r * half + i] = (float)sin(angle);
        }
    }
    t->pos0 = pos0;
    t->m = m;
    t->dims = rope->dims;
    t->inv_freq = rope->inv_freq;
    return t;
}

/* The table of the step's rows: one sequence's, which step row r finds at
 * row r % rows_per_seq (its position's). */
static const rope_table *step_rope_table(cpu_ctx *ctx, const sol_rope *rope)
{
    return rope_table_for(ctx, rows_per_seq(ctx), ctx->pos, rope);
}

/* Rotates the n_heads heads of step row r (at x) in place: dims rope->offset
 * .. offset + rope->dims of each, by the angles of the row's position. */
static void rope_row(float *x, const cpu_ctx *ctx, int r, int n_heads, int head_dim, const sol_rope *rope,
                     const rope_table *t)
{
    int half = rope->dims / 2, tr = r % rows_per_seq(ctx);
    for (int h = 0; h < n_heads; h++) {
        float *head = x + (size_t)h * head_dim + rope->offset;
        for (int i = 0; i < half; i++) {
            float c, s;
            if (t) {
                c = t->cos[(size_t)tr * half + i];
                s = t->sin[(size_t)tr * half + i];
            } else { /* no table memory: the same values, computed here */
                double angle = (double)row_pos(ctx, r) * rope->inv_freq[i];
                c = (float)cos(angle);
                s = (float)sin(angle);
            }
            int a = rope->neox ? i : 2 * i, z = rope->neox ? i + half : 2 * i + 1;
            float x0 = head[a], x1 = head[z];
            head[a] = x0 * c - x1 * s;
            head[z] = x0 * s + x1 * c;
        }
    }
}

static void cpu_rope(sol_backend *b, float *x, int n_heads, int head_dim, const sol_rope *rope)
{
    cpu_ctx *ctx = b->ctx;
    forget_quantized(b);
    const rope_table *t = step_rope_table(ctx, rope);
    for (int r = 0; r < ctx->rows; r++)
        rope_row(x + (size_t)r * n_heads * head_dim, ctx, r, n_heads, head_dim, rope, t);
}

/* Step row r's K (or V) row of a cache array, base the array of sequence 0:
 * the row's sequence's array, at its position's slot. */
static void *row_slot(const cpu_ctx *ctx, const sol_kv_cache_layer *c, void *base, int r)
{
    size_t seq = (size_t)row_seq(ctx, r) * c->seq_stride;
    return (char *)base + seq + (size_t)sol_kv_slot(c, row_pos(ctx, r)) * sol_row_bytes(c->type, c->width);
}

/* Step row r's K and V stored, converted to the cache's type. */
static void store_kv(const cpu_ctx *ctx, const sol_kv_cache_layer *c, int r, const float *k, const float *v)
{
    sol_kv_store_row(c->type, k, row_slot(ctx, c, c->k, r), c->width);
    sol_kv_store_row(c->type, v, row_slot(ctx, c, c->v, r), c->width);
}

static void cpu_kv_write(sol_backend *b, const float *k, const float *v, sol_kv_cache_layer *cache)
{
    const cpu_ctx *ctx = b->ctx;
    forget_quantized(b);
    for (int r = 0; r < ctx->rows; r++)
        store_kv(ctx, cache, r, k + (size_t)r * cache->width, v + (size_t)r * cache->width);
}

/* RoPE and the KV write in one pass per row: each K row is rotated and
 * stored (converted to the cache's type) while it is in cache. */
static void cpu_rope_kv_write(sol_backend *b, float *q, float *k, const float *v, int n_heads, int head_dim,
                              const sol_rope *rope, sol_kv_cache_layer *cache)
{
    cpu_ctx *ctx = b->ctx;
    forget_quantized(b);
    const rope_table *t = step_rope_table(ctx, rope);
    int n_kv_heads = (int)(cache->width / head_dim);
    for (int r = 0; r < ctx->rows; r++) {
        float *k_row = k + (size_t)r * cache->width;
        rope_row(q + (size_t)r * n_heads * head_dim, ctx, r, n_heads, head_dim, rope, t);
        rope_row(k_row, ctx, r, n_kv_heads, head_dim, rope, t);
        store_kv(ctx, cache, r, k_row, v + (size_t)r * cache->width);
    }
}

/* MLA: the latent normalised and the RoPE key rotated, stored as one row
 * (the cache's k and v are the same array). */
static void cpu_latent_kv_write(sol_backend *b, const float *kv, const float *norm, float eps, int rank,
                                const sol_rope *rope, sol_kv_cache_layer *cache)
{
    cpu_ctx *ctx = b->ctx;
    int64_t width = cache->width;
    forget_quantized(b);
    const rope_table *t = step_rope_table(ctx, rope);
    float row[SOL_CPU_MAX_HEAD_DIM];
    for (int r = 0; r < ctx->rows; r++) {
        const float *in = kv + (size_t)r * width;
        rms_normalise(in, norm, eps, rank, row);
        memcpy(row + rank, in + rank, (size_t)(width - rank) * sizeof *row);
        rope_row(row + rank, ctx, r, 1, (int)(width - rank), rope, t);
        sol_kv_store_row(cache->type, row, row_slot(ctx, cache, cache->k, r), width);
    }
}

/* Each head_dim slice of the step's rows normalised in place (Gemma-3's q
 * and k norms): the same arithmetic as rmsnorm over a row of head_dim. */
static void cpu_head_rmsnorm(sol_backend *b, float *x, const float *weight, float eps, int n_heads, int head_dim)
{
    const cpu_ctx *ctx = b->ctx;
    forget_quantized(b);
    for (int64_t i = 0, n = (int64_t)ctx->rows * n_heads; i < n; i++)
        rms_normalise(x + (size_t)i * head_dim, weight, eps, head_dim, x + (size_t)i * head_dim);
}

/* ---- elementwise -------------------------------------------------------- */

static void cpu_add(sol_backend *b, float *x, const float *y, int64_t row_elems)
{
    int64_t n = ((const cpu_ctx *)b->ctx)->rows * row_elems;
    forget_quantized(b);
    for (int64_t i = 0; i < n; i++)
        x[i] += y[i];
}

/* SwiGLU's output is the down projection's input: with 8-bit activations
 * it is quantised chunk by chunk right after it is computed. */
static void cpu_swiglu(sol_backend *b, float *gate, const float *up, int64_t row_elems)
{
    enum { CHUNK = 1024 }; /* a multiple of the block, small enough for L1 */
    cpu_ctx *ctx = b->ctx;
    int m = ctx->rows;
    const sol_cpu_kernels *k = sol_cpu_kernels_active();
    int quantize = quantizes_output(b, m, row_elems);
    int64_t n = (int64_t)m * row_elems;
    for (int64_t i = 0; i < n; i += CHUNK) {
        int64_t len = n - i < CHUNK ? n - i : CHUNK;
        k->swiglu(gate + i, up + i, len);
        if (quantize)
            k->quantize_act(gate + i, ctx->act + i / SOL_Q8_BLOCK, len);
    }
    if (quantize) {
        ctx->act_src = gate;
        ctx->act_elems = n;
    }
}

/* x[rows, n] *= s (Gemma's embedding and query scales). */
static void cpu_scale(sol_backend *b, float *x, float s, int64_t row_elems)
{
    int64_t n = ((const cpu_ctx *)b->ctx)->rows * row_elems;
    forget_quantized(b);
    for (int64_t i = 0; i < n; i++)
        x[i] *= s;
}

/* x[m, n] = cap * tanh(x / cap) (Gemma-2's final logits); m is explicit
 * because the LM head may take only the last row. cap <= 0 caps nothing
 * (as in attention, where 0 means no soft-cap). */
static void cpu_softcap(sol_backend *b, float *x, float cap, int m, int64_t row_elems)
{
    forget_quantized(b);
    if (!(cap > 0))
        return;
    for (int64_t i = 0, n = (int64_t)m * row_elems; i < n; i++)
        x[i] = cap * tanhf(x[i] / cap);
}

/* gelu with the tanh approximation (docs/FAMILIES.md), in float:
 * 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))). */
static inline float gelu_tanh(float u)
{
    const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
    return 0.5f * u * (1.0f + tanhf(k * (u + 0.044715f * u * u * u)));
}

/* GeGLU, like SwiGLU: gate = gelu_tanh(gate) * up, the output quantised
 * chunk by chunk for the down projection when it takes 8-bit inputs. */
static void cpu_geglu(sol_backend *b, float *gate, const float *up, int64_t row_elems)
{
    enum { CHUNK = 1024 }; /* a multiple of the block, small enough for L1 */
    cpu_ctx *ctx = b->ctx;
    int m = ctx->rows;
    int quantize = quantizes_output(b, m, row_elems);
    int64_t n = (int64_t)m * row_elems;
    for (int64_t i = 0; i < n; i += CHUNK) {
        int64_t len = n - i < CHUNK ? n - i : CHUNK;
        for (int64_t j = i; j < i + len; j++)
            gate[j] = gelu_tanh(gate[j]) * up[j];
        if (quantize)
            sol_cpu_kernels_active()->quantize_act(gate + i, ctx->act + i / SOL_Q8_BLOCK, len);
    }
    if (quantize) {
        ctx->act_src = gate;
        ctx->act_elems = n;
    }
}

/* the row is host memory already: this only keeps the engine's path one */
static void cpu_top_k(sol_backend *b, const float *x, int64_t n, int k, float *vals, int32_t *ids)
{
    (void)b;
    sol_ranked best[SOL_TOP_K_MAX];
    if (k < 1 || k > SOL_TOP_K_MAX || k > n)
        return;
    sol_top_k_f32(x, n, k, best);
    for (int i = 0; i < k; i++) {
        vals[i] = best[i].v;
        ids[i] = best[i].id;
    }
}

static void cpu_argmax(sol_backend *b, const float *x, int64_t n, int32_t *out)
{
    forget_quantized(b);
    *out = sol_argmax_f32(x, n);
}

static void cpu_destroy(sol_backend *b)
{
    if (!b)
        return;
    cpu_ctx *ctx = b->ctx;
    if (ctx) {
        sol_pool_free(ctx->pool);
        free(ctx->act);
        free(ctx->packed);
        free(ctx->rope.cos);
        free(ctx->rope.sin);
        sol_cpu_memory_free(ctx); /* also the step's tokens, stamps and route/moe scratch */
    }
    free(ctx);
    free(b);
}

/* Physical cores: distinct (package, core id) pairs in sysfs; falls back to
 * the online CPU count. */
static int physical_cores(void)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int seen[1024], n = 0;
    for (long cpu = 0; cpu < online && cpu < 1024; cpu++) {
        char path[128];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%ld/topology/core_id", cpu);
        FILE *f = fopen(path, "r");
        int core = -1;
        if (!f || fscanf(f, "%d", &core) != 1)
            core = -1;
        if (f)
            fclose(f);
        if (core < 0)
            return online > 0 ? (int)online : 1;
        int dup = 0;
        for (int i = 0; i < n; i++)
            dup |= seen[i] == core;
        if (!dup)
            seen[n++] = core;
    }
    return n > 0 ? n : 1;
}

/* The weight types and KV types every CPU op handles. */
static sol_backend_caps cpu_caps(void)
{
    sol_backend_caps caps = {.max_head_dim = SOL_CPU_MAX_HEAD_DIM, .kv_sinks = 1, .max_seqs = SOL_CPU_MAX_SEQS};
    for (int t = 0; t < SOL_DT_COUNT; t++)
        if (sol_kv_store_supported((sol_dtype)t))
            caps.kv_types |= 1u << t;
    for (int t = 0; t < SOL_DT_COUNT; t++)
        if (sol_cpu_supports((sol_dtype)t))
            caps.weight_types |= 1u << t;
    return caps;
}

int sol_cpu_backend_new(const sol_cpu_options *opt, sol_backend **out, sol_err *err)
{
    sol_backend *b = calloc(1, sizeof *b);
    cpu_ctx *ctx = calloc(1, sizeof *ctx);
    int threads = opt ? opt->threads : 0;
    if (threads <= 0)
        threads = physical_cores();
    if (b && ctx)
        ctx->pool = sol_pool_new(threads);
    if (!b || !ctx || !ctx->pool) {
        free(b);
        if (ctx)
            sol_pool_free(ctx->pool);
        free(ctx);
        return sol_fail(err, SOL_ERR_RUNTIME, "cannot start %d CPU threads", threads);
    }
    *b = (sol_backend){
        .name = "cpu",
        .ctx = ctx,
        .threads = sol_pool_threads(ctx->pool),
        .caps = cpu_caps(),
        .activations = SOL_ACT_Q8,
        .int8_dots_below = SOL_INT8_DOTS_BELOW,
        .destroy = cpu_destroy,
        .embed = cpu_embed,
        .rmsnorm = cpu_rmsnorm,
        .matmul = sol_cpu_matmul,
        .matmul_group = sol_cpu_matmul_group,
        .rope = cpu_rope,
        .kv_write = cpu_kv_write,
        .rope_kv_write = cpu_rope_kv_write,
        .attention = sol_cpu_attention,
        .head_matmul = sol_cpu_head_matmul,
        .latent_kv_write = cpu_latent_kv_write,
        .add = cpu_add,
        .swiglu = cpu_swiglu,
        .scale = cpu_scale,
        .softcap = cpu_softcap,
        .geglu = cpu_geglu,
        .head_rmsnorm = cpu_head_rmsnorm,
        .route = sol_cpu_route,
        .moe_ffn = sol_cpu_moe_ffn,
        .argmax = cpu_argmax,
        .top_k = cpu_top_k,
        .rmsnorm_matmul_group = cpu_rmsnorm_matmul_group,
    };
    sol_cpu_memory_init(b);
    ctx->tuning = opt ? opt->tuning : NULL;
    ctx->mapped_weights = opt ? opt->mapped_weights : 0;
    *out = b;
    return 0;
}
