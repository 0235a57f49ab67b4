/* Causal attention over the KV cache. Decode (one query row) over a few
 * keys streams the cache once per head with an online softmax; beyond that
 * it works like prefill's tiles, with the keys split into ranges across tasks
 * (each range's max, sum and weighted sum merged at the end), so every
 * thread has work even with few KV heads. Prefill (many rows) works in
 * tiles: per KV head and block of query rows, a block of keys and values is
 * converted to f32 once and used by every query of the tile (the rows x the
 * query heads sharing that KV head): scores by the prefill GEMM's tile
 * (gemm_panels, the queries packed once per tile), softmax weights by the
 * vectorised exp, weighted sums by the block kernel (simd.h).
 *
 * The keys a run of query rows sees are a key_span: a lazy layer's sinks
 * below its window, then the window's positions (or the whole context);
 * each key row is read in the cache's own type (f32, f16, 8- or 4-bit
 * blocks, fp8) by the dot and dequantise kernels, never converted whole.
 *
 * A soft-capped layer (Gemma-2) maps each scaled score s to
 * cap * tanh(s / cap) before the mask and the softmax, in every path. A
 * batched step attends sequence by sequence: each is a step of its own
 * rows over its own region of the cache. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/quant.h"
#include "kernels/formats.h"
#include "kernels/cpu/simd.h"

typedef struct {
    const float *q;
    int64_t pos0;
    const sol_kv_cache_layer *cache;
    int n_heads, n_kv_heads, head_dim;
    int64_t window;
    float *out;
    size_t row_bytes, head_bytes; /* of a cache row, and of one KV head in it */
    float softcap;                /* > 0: scores soft-capped */
} attention_job;

/* A scaled score soft-capped (cap > 0; the caller tests it, so an uncapped
 * layer's arithmetic is untouched). */
static inline float capped(float s, float cap) { return cap * tanhf(s / cap); }

/* The first position of the window any of rows r0.. sees. */
static int64_t first_key(const attention_job *a, int r0)
{
    int64_t pos = a->pos0 + r0;
    return a->window > 0 && pos + 1 > a->window ? pos + 1 - a->window : 0;
}

/* The keys of query rows r0 .. r0 + rows - 1 as a run of virtual indices:
 * i < n_sinks is position i (a sink below the window), the rest positions
 * first .. last. */
typedef struct {
    int64_t n_sinks, first, last;
} key_span;

static key_span span_of(const attention_job *a, int r0, int rows)
{
    int64_t first = first_key(a, r0), sinks = a->cache->sinks < first ? a->cache->sinks : first;
    return (key_span){sinks, first, a->pos0 + r0 + rows - 1};
}

static int64_t span_keys(key_span s) { return s.n_sinks + s.last - s.first + 1; }
static int64_t span_pos(key_span s, int64_t i) { return i < s.n_sinks ? i : s.first + i - s.n_sinks; }

/* KV head kvh of position t's row in a cache array. */
static const char *kv_row(const attention_job *a, const void *base, int64_t t, int kvh)
{
    return (const char *)base + (size_t)sol_kv_slot(a->cache, t) * a->row_bytes + (size_t)kvh * a->head_bytes;
}

/* One (query row, head): a single pass over the cache with an online
 * softmax, so K and V are streamed once and no score buffer is needed. The
 * q.k dot and the V row conversion go through the dispatched kernels
 * (AVX2 for f16/f32 rows); the accumulation is a plain loop the compiler
 * vectorises. */
static void attention_task(void *arg, int task, int n_tasks)
{
    (void)n_tasks;
    const attention_job *job = arg;
    const sol_kv_cache_layer *c = job->cache;
    int r = task / job->n_heads, h = task % job->n_heads, dh = job->head_dim;
    int kvh = h / (job->n_heads / job->n_kv_heads);
    key_span span = span_of(job, r, 1);
    const float *q = job->q + ((size_t)r * job->n_heads + h) * dh;
    float *acc = job->out + ((size_t)r * job->n_heads + h) * dh;
    float v[SOL_CPU_MAX_HEAD_DIM];
    float scale = 1.0f / sqrtf((float)dh), max_score = -INFINITY, denom = 0;
    memset(acc, 0, (size_t)dh * sizeof *acc);
    for (int64_t i = 0, n = span_keys(span); i < n; i++) {
        int64_t t = span_pos(span, i);
        float s = sol_dot(c->type, kv_row(job, c->k, t, kvh), q, dh) * scale;
        if (job->softcap > 0)
            s = capped(s, job->softcap);
        if (s > max_score) {
            float rescale = expf(max_score - s);
            for (int d = 0; d < dh; d++)
                acc[d] *= rescale;
            denom *= rescale;
            max_score = s;
        }
        float weight = expf(s - max_score);
        denom += weight;
        sol_dequantize(c->type, kv_row(job, c->v, t, kvh), v, dh);
        for (int d = 0; d < dh; d++)
            acc[d] += weight * v[d];
    }
    for (int d = 0; d < dh; d++)
        acc[d] /= denom;
}


/* ---- prefill: tiles of queries x blocks of keys ---------------------------- */

enum {
    TILE_ROWS = 8,   /* query rows per task (each with the heads of one KV head) */
    KEY_BLOCK = 64,  /* keys converted and scored together */
};

typedef struct {
    attention_job a;
    int m;
} prefill_job;

/* The per-task scratch (one 32-byte aligned allocation, base): queries
 * (pre-scaled) and the same packed for gemm_panels, accumulators, f32 keys
 * and values of one block, scores, and the running max and sum per query. */
typedef struct {
    float *base, *qp, *q, *acc, *k, *v, *s, *max, *sum;
} tile_scratch;

static int scratch_alloc(tile_scratch *t, int nq, int dh)
{
    size_t packed = sol_packed_floats(nq, dh);
    size_t floats = packed + (size_t)nq * dh * 2 + (size_t)KEY_BLOCK * dh * 2 + (size_t)nq * KEY_BLOCK + 2 * (size_t)nq;
    float *p = aligned_alloc(32, (floats * sizeof *p + 31) / 32 * 32);
    if (!p)
        return -1;
    t->base = t->qp = p;
    t->q = p + packed;
    t->acc = t->q + (size_t)nq * dh;
    t->k = t->acc + (size_t)nq * dh;
    t->v = t->k + (size_t)KEY_BLOCK * dh;
    t->s = t->v + (size_t)KEY_BLOCK * dh;
    t->max = t->s + (size_t)nq * KEY_BLOCK;
    t->sum = t->max + nq;
    return 0;
}

/* Softmax weights of one block in place for query i at position qpos
 * (scores s, keys at positions kpos[0..nk)), rescaling its accumulator when
 * the running max grows. */
static void block_weights(tile_scratch *t, const attention_job *a, int i, const int64_t *kpos, int nk, int64_t qpos)
{
    int dh = a->head_dim;
    float *s = t->s + (size_t)i * KEY_BLOCK, block_max = -INFINITY;
    for (int j = 0; j < nk; j++) {
        if (!sol_kv_visible(a->cache, a->window, kpos[j], qpos)) {
            s[j] = -INFINITY;
            continue;
        }
        if (a->softcap > 0)
            s[j] = capped(s[j], a->softcap);
        if (s[j] > block_max)
            block_max = s[j];
    }
    if (block_max == -INFINITY) { /* nothing visible: weights 0 */
        memset(s, 0, (size_t)nk * sizeof *s);
        return;
    }
    if (block_max > t->max[i]) {
        float rescale = expf(t->max[i] - block_max); /* 0 the first time */
        float *acc = t->acc + (size_t)i * dh;
        for (int d = 0; d < dh; d++)
            acc[d] *= rescale;
        t->sum[i] *= rescale;
        t->max[i] = block_max;
    }
    t->sum[i] += sol_cpu_kernels_active()->exp_sum(s, nk, t->max[i]);
}

/* Tile (KV head kvh, query rows r0 .. r0 + rows - 1) over the virtual keys
 * [k_begin, k_end] of span: leaves each query's running max, sum and
 * weighted sum of values in t. -1 when the scratch memory is not there. */
static int tile_pass(const attention_job *a, int kvh, int r0, int rows, key_span span, int64_t k_begin,
                     int64_t k_end, tile_scratch *t)
{
    const sol_kv_cache_layer *c = a->cache;
    const sol_cpu_kernels *kern = sol_cpu_kernels_active();
    int dh = a->head_dim, group = a->n_heads / a->n_kv_heads;
    int nq = rows * group; /* query i: row r0 + i / group, head kvh * group + i % group */
    if (scratch_alloc(t, nq, dh))
        return -1;
    float scale = 1.0f / sqrtf((float)dh);
    for (int i = 0; i < nq; i++) {
        const float *q = a->q + ((size_t)(r0 + i / group) * a->n_heads + kvh * group + i % group) * dh;
        for (int d = 0; d < dh; d++)
            t->q[(size_t)i * dh + d] = q[d] * scale;
        t->max[i] = -INFINITY;
        t->sum[i] = 0;
    }
    memset(t->acc, 0, (size_t)nq * dh * sizeof *t->acc);
    /* scores by the GEMM tile when its 16-query panels are mostly used;
     * decode's few queries (the heads of one KV head) by the dot tiles */
    int gemm = nq >= SOL_PANEL_ROWS / 2;
    if (gemm)
        kern->pack_inputs(t->q, nq, dh, t->qp);
    int64_t kpos[KEY_BLOCK];
    for (int64_t k0 = k_begin; k0 <= k_end; k0 += KEY_BLOCK) {
        int nk = k_end + 1 - k0 < KEY_BLOCK ? (int)(k_end + 1 - k0) : KEY_BLOCK;
        for (int j = 0; j < nk; j++) {
            kpos[j] = span_pos(span, k0 + j);
            kern->dequantize(c->type, kv_row(a, c->k, kpos[j], kvh), t->k + (size_t)j * dh, dh);
            kern->dequantize(c->type, kv_row(a, c->v, kpos[j], kvh), t->v + (size_t)j * dh, dh);
        }
        if (gemm) /* s[i][j] = q_i . k_j */
            kern->gemm_panels(t->qp, nq, t->k, nk, dh, dh, t->s, KEY_BLOCK);
        else
            kern->cross_dots(t->q, nq, t->k, nk, dh, t->s, KEY_BLOCK);
        for (int i = 0; i < nq; i++)
            block_weights(t, a, i, kpos, nk, a->pos0 + r0 + i / group);
        kern->attn_weighted_sum(t->s, KEY_BLOCK, nq, t->v, nk, dh, t->acc);
    }
    return 0;
}

static void prefill_task(void *arg, int task, int n_tasks)
{
    (void)n_tasks;
    const prefill_job *job = arg;
    const attention_job *a = &job->a;
    int dh = a->head_dim, group = a->n_heads / a->n_kv_heads, kvh = task % a->n_kv_heads;
    int r0 = task / a->n_kv_heads * TILE_ROWS, rows = job->m - r0 < TILE_ROWS ? job->m - r0 : TILE_ROWS;
    tile_scratch t;
    key_span span = span_of(a, r0, rows);
    if (tile_pass(a, kvh, r0, rows, span, 0, span_keys(span) - 1, &t)) {
        for (int i = 0; i < rows * group; i++) /* no memory: the one-query path, head by head */
            attention_task((void *)a, (r0 + i / group) * a->n_heads + kvh * group + i % group, 0);
        return;
    }
    for (int i = 0; i < rows * group; i++) {
        float *out = a->out + ((size_t)(r0 + i / group) * a->n_heads + kvh * group + i % group) * dh;
        for (int d = 0; d < dh; d++)
            out[d] = t.acc[(size_t)i * dh + d] / t.sum[i];
    }
    free(t.base);
}

/* ---- decode over a long cache: key ranges split across tasks -------------- */

/* Below this many keys a decode step keeps the one-pass path per head
 * (SmolLM2 at 20-100 keys: the tiles took 506 us a token, per head 998). */
enum { SPLIT_MIN_KEYS = 16 };

typedef struct {
    attention_job a;
    int splits;
    key_span span;     /* the keys, per_split (a multiple of KEY_BLOCK) virtual ones each */
    int64_t per_split;
    float *partial;           /* per task: max[group], sum[group], acc[group][dh] */
    int *failed;
} decode_job;

static size_t partial_floats(const attention_job *a)
{
    return (size_t)(a->n_heads / a->n_kv_heads) * (size_t)(a->head_dim + 2);
}

static void decode_split_task(void *arg, int task, int n_tasks)
{
    (void)n_tasks;
    decode_job *job = arg;
    const attention_job *a = &job->a;
    int kvh = task / job->splits, split = task % job->splits, group = a->n_heads / a->n_kv_heads;
    int64_t begin = split * job->per_split, end = begin + job->per_split - 1, keys = span_keys(job->span);
    float *p = job->partial + (size_t)task * partial_floats(a);
    if (end > keys - 1)
        end = keys - 1;
    if (begin > end) { /* an empty range: contributes nothing */
        for (int i = 0; i < group; i++)
            p[i] = -INFINITY;
        return;
    }
    tile_scratch t;
    if (tile_pass(a, kvh, 0, 1, job->span, begin, end, &t)) {
        *job->failed = 1;
        return;
    }
    memcpy(p, t.max, (size_t)group * sizeof *p);
    memcpy(p + group, t.sum, (size_t)group * sizeof *p);
    memcpy(p + 2 * group, t.acc, (size_t)group * a->head_dim * sizeof *p);
    free(t.base);
}

/* softmax over all ranges from the ranges' own: each partial sum and
 * weighted sum rescaled to the overall max. */
static void merge_splits(const decode_job *job)
{
    const attention_job *a = &job->a;
    int group = a->n_heads / a->n_kv_heads, dh = a->head_dim;
    for (int kvh = 0; kvh < a->n_kv_heads; kvh++)
        for (int g = 0; g < group; g++) {
            float max = -INFINITY, sum = 0, *out = a->out + (size_t)(kvh * group + g) * dh;
            for (int s = 0; s < job->splits; s++) {
                const float *p = job->partial + (size_t)(kvh * job->splits + s) * partial_floats(a);
                max = p[g] > max ? p[g] : max;
            }
            memset(out, 0, (size_t)dh * sizeof *out);
            for (int s = 0; s < job->splits; s++) {
                const float *p = job->partial + (size_t)(kvh * job->splits + s) * partial_floats(a);
                if (p[g] == -INFINITY)
                    continue;
                float w = expf(p[g] - max);
                sum += w * p[group + g];
                for (int d = 0; d < dh; d++)
                    out[d] += w * p[2 * group + (size_t)g * dh + d];
            }
            for (int d = 0; d < dh; d++)
                out[d] /= sum;
        }
}

/* 0 when it ran; -1 when memory was short (the caller takes the per-head path). */
static int decode_split(sol_backend *b, const attention_job *a)
{
    key_span span = span_of(a, 0, 1);
    int64_t keys = span_keys(span);
    /* enough ranges for every thread twice over, each at least a block */
    int splits = (2 * b->threads + a->n_kv_heads - 1) / a->n_kv_heads;
    int64_t per_split = (keys + splits - 1) / splits;
    per_split = (per_split + KEY_BLOCK - 1) / KEY_BLOCK * KEY_BLOCK;
    splits = (int)((keys + per_split - 1) / per_split);
    int failed = 0;
    decode_job job = {*a, splits, span, per_split, malloc((size_t)(a->n_kv_heads * splits) * partial_floats(a) *
                                                           sizeof(float)), &failed};
    if (!job.partial)
        return -1;
    sol_pool_run(pool_of(b), decode_split_task, &job, a->n_kv_heads * splits);
    if (!failed)
        merge_splits(&job);
    free(job.partial);
    return failed ? -1 : 0;
}

/* One sequence's rows (m of them, the first at position pos0) over its
 * cache: the decode paths for one row, the tiles for more. */
static void attend(sol_backend *b, const attention_job *job, int m)
{
    if (m == 1) {
        if (span_keys(span_of(job, 0, 1)) < SPLIT_MIN_KEYS || decode_split(b, job))
            sol_pool_run(pool_of(b), attention_task, (void *)job, job->n_heads);
        return;
    }
    prefill_job p = {*job, m};
    sol_pool_run(pool_of(b), prefill_task, &p, job->n_kv_heads * ((m + TILE_ROWS - 1) / TILE_ROWS));
}

/* Batched decode over short caches: every sequence's one row, head by
 * head, as one pool run (task: sequence * n_heads + head) instead of one
 * small run per sequence. */
typedef struct {
    const attention_job *jobs; /* per sequence */
    int n_heads;
} seqs_job;

static void seqs_task(void *arg, int task, int n_tasks)
{
    const seqs_job *sj = arg;
    attention_task((void *)&sj->jobs[task / sj->n_heads], task % sj->n_heads, n_tasks);
}

void sol_cpu_attention(sol_backend *b, const float *q, const sol_kv_cache_layer *cache, int n_heads, int n_kv_heads,
                       int head_dim, int64_t window, float softcap, float *out)
{
    forget_quantized(b);
    const cpu_ctx *ctx = b->ctx;
    int m = rows_per_seq(ctx), seqs = ctx->seqs;
    attention_job job = {q,      ctx->pos, cache, n_heads, n_kv_heads, head_dim, window, out,
                         sol_row_bytes(cache->type, cache->width), sol_row_bytes(cache->type, head_dim), softcap};
    if (seqs == 1) {
        attend(b, &job, m);
        return;
    }
    /* sequence s: its rows of q and out, its region of the cache */
    size_t rows_floats = (size_t)m * n_heads * head_dim;
    sol_kv_cache_layer *caches = malloc((size_t)seqs * sizeof *caches);
    attention_job *jobs = malloc((size_t)seqs * sizeof *jobs);
    int short_decode = m == 1 && span_keys(span_of(&job, 0, 1)) < SPLIT_MIN_KEYS;
    if (caches && jobs && short_decode) {
        for (int s = 0; s < seqs; s++) {
            caches[s] = seq_cache(cache, s);
            jobs[s] = job;
            jobs[s].cache = &caches[s];
            jobs[s].q = q + s * rows_floats;
            jobs[s].out = out + s * rows_floats;
        }
        seqs_job sj = {jobs, n_heads};
        sol_pool_run(pool_of(b), seqs_task, &sj, seqs * n_heads);
    } else { /* one sequence after the other (also without memory for the descriptors) */
        for (int s = 0; s < seqs; s++) {
            sol_kv_cache_layer c = seq_cache(cache, s);
            attention_job one = job;
            one.cache = &c;
            one.q = q + s * rows_floats;
            one.out = out + s * rows_floats;
            attend(b, &one, m);
        }
    }
    free(caches);
    free(jobs);
}
