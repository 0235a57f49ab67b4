/* The CPU backend: the plan's ops over the stored weight types
 * (dequantisation inside the dot product, AVX2 or reference kernels chosen
 * by dispatch.c), rows split across a thread pool, matmul launch
 * parameters from the tuner when it has them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/backend.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu/quant.h"

typedef struct {
    sol_pool *pool;
} cpu_ctx;

static sol_pool *pool_of(sol_backend *b) { return ((cpu_ctx *)b->ctx)->pool; }

/* Splits [0, n) into n_tasks nearly equal ranges. */
static void task_range(int64_t n, int task, int n_tasks, int64_t *begin, int64_t *end)
{
    *begin = n * task / n_tasks;
    *end = n * (task + 1) / n_tasks;
}

/* ---- embedding, norm ---------------------------------------------------- */

static void cpu_embed(sol_backend *b, const sol_weight_view *table, const int32_t *tokens, int m, float *out)
{
    (void)b;
    for (int i = 0; i < m; i++)
        sol_dequantize(table->type, (const char *)table->data + (size_t)tokens[i] * table->row_bytes,
                       out + (size_t)i * table->cols, table->cols);
}

static void cpu_rmsnorm(sol_backend *b, const float *x, const float *weight, float eps, int m, int64_t n, float *out)
{
    (void)b;
    for (int r = 0; r < m; r++) {
        const float *row = x + (size_t)r * n;
        double sum = 0;
        for (int64_t i = 0; i < n; i++)
            sum += (double)row[i] * row[i];
        float scale = 1.0f / sqrtf((float)(sum / n) + eps);
        for (int64_t i = 0; i < n; i++)
            out[(size_t)r * n + i] = row[i] * scale * weight[i];
    }
}

/* ---- matmul ------------------------------------------------------------- */

typedef struct {
    const sol_weight_view *w;
    const float *bias, *x;
    int m;
    float *y;
    int row_block;
} matmul_job;

/* Through the kernel dispatch (simd.h), so prefill gets the SIMD f32 dot. */
static float dot_f32(const float *a, const float *b, int64_t n)
{
    return sol_dot(SOL_DT_F32, a, b, n);
}

/* Several inputs (prefill): dequantise row_block weight rows once, then run
 * every input against the block while it sits in cache. */
static void matmul_rows_blocked(const matmul_job *job, int64_t begin, int64_t end, float *block)
{
    const sol_weight_view *w = job->w;
    for (int64_t r0 = begin; r0 < end; r0 += job->row_block) {
        int rows = (int)(end - r0 < job->row_block ? end - r0 : job->row_block);
        for (int j = 0; j < rows; j++)
            sol_dequantize(w->type, (const char *)w->data + (size_t)(r0 + j) * w->row_bytes,
                           block + (size_t)j * w->cols, w->cols);
        for (int i = 0; i < job->m; i++) {
            const float *x = job->x + (size_t)i * w->cols;
            for (int j = 0; j < rows; j++)
                job->y[(size_t)i * w->rows + r0 + j] =
                    dot_f32(block + (size_t)j * w->cols, x, w->cols) + (job->bias ? job->bias[r0 + j] : 0.0f);
        }
    }
}

static void matmul_task(void *arg, int task, int n_tasks)
{
    const matmul_job *job = arg;
    const sol_weight_view *w = job->w;
    int64_t begin, end;
    task_range(w->rows, task, n_tasks, &begin, &end);
    float *block = job->m > 1 ? malloc((size_t)job->row_block * w->cols * sizeof *block) : NULL;
    if (block) {
        matmul_rows_blocked(job, begin, end, block);
        free(block);
        return;
    }
    /* one input (decode), or no scratch memory: dots on the stored rows */
    for (int64_t r = begin; r < end; r++) {
        const void *row = (const char *)w->data + (size_t)r * w->row_bytes;
        float bias = job->bias ? job->bias[r] : 0.0f;
        for (int i = 0; i < job->m; i++)
            job->y[(size_t)i * w->rows + r] = sol_dot(w->type, row, job->x + (size_t)i * w->cols, w->cols) + bias;
    }
}

static void cpu_matmul_with(sol_backend *b, const sol_weight_view *w, const float *bias, const float *x, int m,
                            float *y, const sol_matmul_params *p)
{
    matmul_job job = {w, bias, x, m, y, p->row_block > 0 ? p->row_block : 1};
    int64_t tasks = (int64_t)b->threads * (p->tasks_per_thread > 0 ? p->tasks_per_thread : 1);
    sol_pool_run(pool_of(b), matmul_task, &job, (int)(tasks < w->rows ? tasks : w->rows));
}

/* The tuned parameters of this (type, shape), else the defaults. */
static void cpu_matmul(sol_backend *b, const sol_weight_view *w, const float *bias, const float *x, int m, float *y)
{
    sol_matmul_params p = SOL_MATMUL_DEFAULTS;
    for (int i = 0; b->tuning && i < b->tuning->n; i++) {
        const sol_tuning_entry *e = &b->tuning->entries[i];
        if (e->type == w->type && e->rows == w->rows && e->cols == w->cols && (e->m > 1) == (m > 1)) {
            p = e->params;
            break;
        }
    }
    cpu_matmul_with(b, w, bias, x, m, y, &p);
}

/* ---- rope, kv, attention ------------------------------------------------ */

static void cpu_rope(sol_backend *b, float *x, int m, int n_heads, int head_dim, int64_t pos0, const sol_rope *rope)
{
    (void)b;
    int half = rope->dims / 2;
    for (int r = 0; r < m; r++) {
        double pos = (double)(pos0 + r);
        for (int h = 0; h < n_heads; h++) {
            float *head = x + ((size_t)r * n_heads + h) * head_dim;
            for (int i = 0; i < half; i++) {
                double angle = pos * rope->inv_freq[i];
                float c = (float)cos(angle), s = (float)sin(angle);
                int a = rope->neox ? i : 2 * i, z = rope->neox ? i + half : 2 * i + 1;
                float x0 = head[a], x1 = head[z];
                head[a] = x0 * c - x1 * s;
                head[z] = x0 * s + x1 * c;
            }
        }
    }
}

static void store_row(sol_dtype type, void *base, int64_t slot, int64_t width, const float *src)
{
    if (type == SOL_DT_F16) {
        uint16_t *dst = (uint16_t *)base + slot * width;
        for (int64_t i = 0; i < width; i++)
            dst[i] = sol_f32_to_f16(src[i]);
    } else {
        memcpy((float *)base + slot * width, src, (size_t)width * sizeof(float));
    }
}

static void cpu_kv_write(sol_backend *b, const float *k, const float *v, int m, int64_t pos0, sol_kv_cache_layer *cache)
{
    (void)b;
    for (int r = 0; r < m; r++) {
        store_row(cache->type, cache->k, pos0 + r, cache->width, k + (size_t)r * cache->width);
        store_row(cache->type, cache->v, pos0 + r, cache->width, v + (size_t)r * cache->width);
    }
}

typedef struct {
    const float *q;
    int64_t pos0;
    const sol_kv_cache_layer *cache;
    int n_heads, n_kv_heads, head_dim;
    int64_t window;
    float *out;
} attention_job;

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
    int64_t kv_off = (int64_t)(h / (job->n_heads / job->n_kv_heads)) * dh;
    int64_t pos = job->pos0 + r;
    int64_t first = job->window > 0 && pos + 1 > job->window ? pos + 1 - job->window : 0;
    size_t elem = c->type == SOL_DT_F16 ? 2 : 4, row_bytes = (size_t)c->width * elem;
    const float *q = job->q + ((size_t)r * job->n_heads + h) * dh;
    float *acc = job->out + ((size_t)r * job->n_heads + h) * dh;
    float v[SOL_MAX_HEAD_DIM];
    float scale = 1.0f / sqrtf((float)dh), max_score = -INFINITY, denom = 0;
    memset(acc, 0, (size_t)dh * sizeof *acc);
    for (int64_t t = first; t <= pos; t++) {
        const char *k_row = (const char *)c->k + (size_t)t * row_bytes + (size_t)kv_off * elem;
        const char *v_row = (const char *)c->v + (size_t)t * row_bytes + (size_t)kv_off * elem;
        float s = sol_dot(c->type, k_row, q, dh) * scale;
        if (s > max_score) {
            float rescale = expf(max_score - s);
            for (int i = 0; i < dh; i++)
                acc[i] *= rescale;
            denom *= rescale;
            max_score = s;
        }
        float weight = expf(s - max_score);
        denom += weight;
        sol_dequantize(c->type, v_row, v, dh);
        for (int i = 0; i < dh; i++)
            acc[i] += weight * v[i];
    }
    for (int i = 0; i < dh; i++)
        acc[i] /= denom;
}

static void cpu_attention(sol_backend *b, const float *q, int m, int64_t pos0, const sol_kv_cache_layer *cache,
                          int n_heads, int n_kv_heads, int head_dim, int64_t window, float *out)
{
    attention_job job = {q, pos0, cache, n_heads, n_kv_heads, head_dim, window, out};
    sol_pool_run(pool_of(b), attention_task, &job, m * n_heads);
}

/* ---- elementwise -------------------------------------------------------- */

static void cpu_add(sol_backend *b, float *x, const float *y, int64_t n)
{
    (void)b;
    for (int64_t i = 0; i < n; i++)
        x[i] += y[i];
}

static void cpu_swiglu(sol_backend *b, float *gate, const float *up, int64_t n)
{
    (void)b;
    for (int64_t i = 0; i < n; i++)
        gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

static void cpu_destroy(sol_backend *b)
{
    if (!b)
        return;
    cpu_ctx *ctx = b->ctx;
    if (ctx)
        sol_pool_free(ctx->pool);
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

int sol_cpu_backend_new(int threads, sol_backend **out, sol_err *err)
{
    sol_backend *b = calloc(1, sizeof *b);
    cpu_ctx *ctx = calloc(1, sizeof *ctx);
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
        .destroy = cpu_destroy,
        .embed = cpu_embed,
        .rmsnorm = cpu_rmsnorm,
        .matmul = cpu_matmul,
        .matmul_with = cpu_matmul_with,
        .rope = cpu_rope,
        .kv_write = cpu_kv_write,
        .attention = cpu_attention,
        .add = cpu_add,
        .swiglu = cpu_swiglu,
    };
    *out = b;
    return 0;
}
