/* The CPU backend's matmuls: rows split across the thread pool, launch
 * parameters from the tuner when it has them. Below int8_dots_below input
 * rows, quantised weights meet 8-bit activations in integer dots (act_q8.h)
 * unless the backend is set to f32 activations; otherwise, and for float
 * weights, decode dequantises inside f32 dots (dot_rows) and prefill runs
 * the f32 GEMM on dequantised rows (gemm.c). Matmuls that share their input
 * (q/k/v, gate/up) run as one pool job over one quantised (or packed) copy
 * of it. */
#include <stdlib.h>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/simd.h"

typedef struct {
    const sol_weight_view *w;
    const float *bias, *x;
    const float *packed; /* m > 1: x packed for gemm_panels, NULL when there was no memory */
    int m;
    float *y;
    int tile_rows; /* decode: weight rows per pass over x */
} matmul_job;

/* Several inputs (prefill): SOL_GEMM_ROWS weight rows dequantised at a
 * time, then every packed input against them (gemm.c) while they sit in
 * cache. */
static void matmul_rows_gemm(const matmul_job *job, int64_t begin, int64_t end, float *rows)
{
    const sol_weight_view *w = job->w;
    const sol_cpu_kernels *k = sol_cpu_kernels_active();
    for (int64_t r0 = begin; r0 < end; r0 += SOL_GEMM_ROWS) {
        int nr = (int)(end - r0 < SOL_GEMM_ROWS ? end - r0 : SOL_GEMM_ROWS);
        for (int j = 0; j < nr; j++)
            k->dequantize(w->type, (const char *)w->data + (size_t)(r0 + j) * w->row_bytes, rows + (size_t)j * w->cols,
                          w->cols);
        k->gemm_panels(job->packed, job->m, rows, nr, w->cols, w->cols, job->y + r0, w->rows);
        for (int i = 0; job->bias && i < job->m; i++)
            for (int j = 0; j < nr; j++)
                job->y[(size_t)i * w->rows + r0 + j] += job->bias[r0 + j];
    }
}

static void matmul_task(void *arg, int task, int n_tasks)
{
    const matmul_job *job = arg;
    const sol_weight_view *w = job->w;
    int64_t begin, end;
    task_range(w->rows, task, n_tasks, &begin, &end);
    float *rows = job->packed ? malloc((size_t)SOL_GEMM_ROWS * (size_t)w->cols * sizeof *rows) : NULL;
    if (rows) {
        matmul_rows_gemm(job, begin, end, rows);
        free(rows);
        return;
    }
    /* one input (decode), or no scratch memory: dots on the stored rows,
     * tile_rows of them per pass over each input */
    const sol_cpu_kernels *k = sol_cpu_kernels_active();
    for (int64_t r = begin; r < end; r += job->tile_rows) {
        int nr = (int)(end - r < job->tile_rows ? end - r : job->tile_rows);
        const void *stored = (const char *)w->data + (size_t)r * w->row_bytes;
        for (int i = 0; i < job->m; i++) {
            float *out = job->y + (size_t)i * w->rows + r;
            k->dot_rows(w->type, stored, w->row_bytes, nr, job->x + (size_t)i * w->cols, w->cols, out);
            for (int j = 0; job->bias && j < nr; j++)
                out[j] += job->bias[r + j];
        }
    }
}

/* ---- matmul with integer dots (act_q8.h) -------------------------------- */

typedef struct {
    const sol_weight_view *w;
    const float *bias;
    const sol_q8_block *x; /* m rows of cols / 32 blocks */
    int m;
    float *y;
    int row_block, tile_rows, tile_inputs;
} matmul_q8_job;

static int clamp_int(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Rows [begin, end) in blocks of row_block weight rows; within a block every
 * input passes (tile_inputs at a time) while the block's weights sit in cache,
 * tile_rows weight rows per kernel call. With one input the block is the
 * whole range. */
static void matmul_q8_task(void *arg, int task, int n_tasks)
{
    const matmul_q8_job *job = arg;
    const sol_weight_view *w = job->w;
    int64_t begin, end, x_stride = w->cols / SOL_Q8_BLOCK;
    task_range(w->rows, task, n_tasks, &begin, &end);
    int64_t block = job->m > 1 ? job->row_block : end - begin;
    for (int64_t r0 = begin; r0 < end; r0 += block) {
        int64_t r1 = end - r0 < block ? end : r0 + block;
        for (int i = 0; i < job->m; i += job->tile_inputs) {
            int n_x = job->m - i < job->tile_inputs ? job->m - i : job->tile_inputs;
            for (int64_t r = r0; r < r1; r += job->tile_rows) {
                int n_rows = (int)(r1 - r < job->tile_rows ? r1 - r : job->tile_rows);
                sol_dot_q8(w->type, (const char *)w->data + (size_t)r * w->row_bytes, w->row_bytes, n_rows,
                           job->x + (size_t)i * x_stride, x_stride, n_x, w->cols, job->y + (size_t)i * w->rows + r,
                           w->rows);
            }
        }
        for (int i = 0; job->bias && i < job->m; i++)
            for (int64_t r = r0; r < r1; r++)
                job->y[(size_t)i * w->rows + r] += job->bias[r];
    }
}

/* The input quantised once, in the calling thread, into the backend's
 * scratch; NULL when that memory is not there (the caller falls back). */
static const sol_q8_block *quantize_input(cpu_ctx *ctx, const float *x, int m, int64_t cols)
{
    if (ctx->act_src == x && ctx->act_elems == (int64_t)m * cols) /* the previous op quantised it */
        return ctx->act;
    if (act_reserve(ctx, (size_t)m * (size_t)(cols / SOL_Q8_BLOCK)))
        return NULL;
    for (int i = 0; i < m; i++)
        sol_quantize_act(x + (size_t)i * cols, ctx->act + (size_t)i * (cols / SOL_Q8_BLOCK), cols);
    return ctx->act;
}

/* The input packed once, in the calling thread, for the f32 prefill
 * matmul; NULL for one input or when that memory is not there. */
static const float *pack_input(cpu_ctx *ctx, const float *x, int m, int64_t cols)
{
    if (m < 2 || packed_reserve(ctx, sol_packed_floats(m, cols)))
        return NULL;
    sol_cpu_kernels_active()->pack_inputs(x, m, cols, ctx->packed);
    return ctx->packed;
}

static int uses_integer_dots(const sol_backend *b, const sol_weight_view *w, int m)
{
    return b->activations == SOL_ACT_Q8 && m < b->int8_dots_below && sol_act_q8_applies(w->type) &&
           w->cols % SOL_Q8_BLOCK == 0;
}

/* One matmul ready to run: which kernel, its job, how many pool tasks. */
typedef struct {
    int integer_dots;
    matmul_q8_job q8;
    matmul_job f32;
    int n_tasks;
} matmul_plan;

/* xq: x quantised (NULL: the f32 path, with x packed in xp when m > 1). */
static void plan_matmul(const sol_backend *b, const sol_weight_view *w, const float *bias, const float *x,
                        const sol_q8_block *xq, const float *xp, int m, float *y, const sol_matmul_params *p,
                        matmul_plan *out)
{
    int64_t tasks = (int64_t)b->threads * (p->tasks_per_thread > 0 ? p->tasks_per_thread : 1);
    out->n_tasks = (int)(tasks < w->rows ? tasks : w->rows);
    out->integer_dots = xq != NULL;
    if (xq) {
        int tile_rows = clamp_int(p->tile_rows, 1, SOL_Q8_MAX_ROWS);
        int tile_inputs = m > 1 ? clamp_int(p->tile_inputs, 1, SOL_Q8_MAX_INPUTS) : 1;
        if (tile_rows * tile_inputs > SOL_Q8_MAX_TILE)
            tile_inputs = SOL_Q8_MAX_TILE / tile_rows;
        out->q8 = (matmul_q8_job){w, bias, xq, m, y, p->row_block > tile_rows ? p->row_block : tile_rows, tile_rows,
                                  tile_inputs};
    } else {
        out->f32 = (matmul_job){w, bias, x, xp, m, y, clamp_int(p->tile_rows, 1, SOL_DOT_ROWS_MAX)};
    }
}

static void planned_task(void *arg, int task, int n_tasks)
{
    matmul_plan *plan = arg;
    if (plan->integer_dots)
        matmul_q8_task(&plan->q8, task, n_tasks);
    else
        matmul_task(&plan->f32, task, n_tasks);
}

void sol_cpu_matmul_with(sol_backend *b, const sol_weight_view *w, const float *bias, const float *x, int m, float *y,
                         const sol_matmul_params *p)
{
    const sol_q8_block *xq = uses_integer_dots(b, w, m) ? quantize_input(b->ctx, x, m, w->cols) : NULL;
    const float *xp = xq ? NULL : pack_input(b->ctx, x, m, w->cols);
    matmul_plan plan;
    plan_matmul(b, w, bias, x, xq, xp, m, y, p, &plan);
    sol_pool_run(pool_of(b), planned_task, &plan, plan.n_tasks);
    forget_quantized(b);
}

int sol_cpu_integer_dots(sol_dtype t) { return sol_act_q8_applies(t); }

sol_matmul_params sol_cpu_matmul_defaults(int64_t cols, int m, int integer_dots)
{
    sol_matmul_params p = SOL_MATMUL_DEFAULTS;
    if (m == 1 && !integer_dots)
        p.tile_rows = cols <= 4096 ? 1 : 4;
    else if (m == 1 && cols > 4096)
        p.tile_rows = 1;
    return p;
}

/* The tuned parameters of this (type, shape) on the path it takes, else the
 * defaults. */
static sol_matmul_params params_for(const sol_backend *b, const sol_weight_view *w, int m)
{
    int integer_dots = uses_integer_dots(b, w, m);
    const sol_tuning *tuning = ((const cpu_ctx *)b->ctx)->tuning;
    for (int i = 0; tuning && i < tuning->n; i++) {
        const sol_tuning_entry *e = &tuning->entries[i];
        if (e->type == w->type && e->rows == w->rows && e->cols == w->cols && (e->m > 1) == (m > 1) &&
            e->integer_dots == integer_dots)
            return e->params;
    }
    return sol_cpu_matmul_defaults(w->cols, m, integer_dots);
}

void sol_cpu_matmul(sol_backend *b, const sol_weight_view *w, const float *bias, const float *x, int m, float *y)
{
    sol_matmul_params p = params_for(b, w, m);
    sol_cpu_matmul_with(b, w, bias, x, m, y, &p);
}

/* ---- matmuls sharing an input --------------------------------------------- */

typedef struct {
    int n;
    matmul_plan plans[SOL_MATMUL_GROUP_MAX];
} group_job;

/* Task numbers run through the plans one after the other. */
static void group_task(void *arg, int task, int n_tasks)
{
    (void)n_tasks;
    group_job *g = arg;
    int j = 0;
    while (task >= g->plans[j].n_tasks)
        task -= g->plans[j++].n_tasks;
    planned_task(&g->plans[j], task, g->plans[j].n_tasks);
}

void sol_cpu_matmul_group(sol_backend *b, int n, const sol_weight_view *const *w, const float *const *bias,
                          const float *x, int m, float *const *y)
{
    group_job g = {.n = n};
    const sol_q8_block *xq = NULL;
    const float *xp = NULL;
    int total = 0, packed = 0;
    for (int j = 0; j < n; j++) {
        /* every matrix has the same columns (the input's width): one
         * quantised copy serves all that take integer dots, one packed copy
         * all that take f32 */
        int integer_dots = uses_integer_dots(b, w[j], m);
        if (!xq && integer_dots)
            xq = quantize_input(b->ctx, x, m, w[j]->cols);
        if (!packed && !integer_dots) {
            xp = pack_input(b->ctx, x, m, w[j]->cols);
            packed = 1;
        }
        sol_matmul_params p = params_for(b, w[j], m);
        plan_matmul(b, w[j], bias[j], x, integer_dots ? xq : NULL, integer_dots ? NULL : xp, m, y[j], &p,
                    &g.plans[j]);
        total += g.plans[j].n_tasks;
    }
    sol_pool_run(pool_of(b), group_task, &g, total);
    forget_quantized(b);
}
