/* The CPU backend's side of the seam that is not arithmetic: its memory is
 * host memory, weights are copied into huge pages, every op has finished
 * when it returns (sync only stamps the end and reports an op that could
 * not run), and op times are wall-clock stamps taken at each mark. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/formats.h"
#include "util/clock.h"

static int cpu_alloc(sol_backend *b, size_t bytes, void **out, sol_err *err)
{
    (void)b;
    *out = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!*out)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory for %zu MiB of CPU buffers", bytes >> 20);
    return 0;
}

static void cpu_free(sol_backend *b, void *p)
{
    (void)b;
    free(p);
}

static int cpu_copy(sol_backend *b, void *dst, const void *src, size_t bytes, sol_err *err)
{
    (void)b;
    (void)err;
    memcpy(dst, src, bytes);
    return 0;
}

void sol_cpu_fail(cpu_ctx *ctx, const char *op, const char *what)
{
    if (!ctx->error[0])
        snprintf(ctx->error, sizeof ctx->error, "%s: %s (CPU backend)", op, what);
}

/* The recorded failure, if any, as sync and download return it. */
static int reported(const cpu_ctx *ctx, sol_err *err)
{
    return ctx->error[0] ? sol_fail(err, SOL_ERR_RUNTIME, "%s", ctx->error) : 0;
}

/* A sync point like sync: every op has run (they are synchronous), so only
 * a recorded failure is left to report. */
static int cpu_download(sol_backend *b, void *dst, const void *src, size_t bytes, sol_err *err)
{
    int rc = reported(b->ctx, err);
    return rc ? rc : cpu_copy(b, dst, src, bytes, err);
}

static size_t view_bytes(const sol_weight_view *v) { return (size_t)v->rows * v->row_bytes; }

/* The first of views[0..i) with the same data, or -1. */
static int same_data_before(sol_weight_view *const *views, int i)
{
    for (int j = 0; j < i; j++)
        if (views[j]->data == views[i]->data)
            return j;
    return -1;
}

/* Copies the weights into memory backed by transparent huge pages and
 * re-points the views. Streaming reads across 4 KiB pages stop the hardware
 * prefetchers at every page boundary: on this VM `sol hw probe` reads
 * 26 GB/s from 4 KiB pages and 63 GB/s from huge pages. Without that
 * memory (or with mapped_weights) the views stay on the caller's mapping. */
static int cpu_load_weights(sol_backend *b, sol_weight_view *const *views, int n, void **handle, sol_err *err)
{
    (void)err;
    cpu_ctx *ctx = b->ctx;
    *handle = NULL;
    if (ctx->mapped_weights || n < 1)
        return 0;
    size_t total = 0, huge = (size_t)2 << 20;
    for (int i = 0; i < n; i++)
        if (same_data_before(views, i) < 0)
            total += (view_bytes(views[i]) + 63) / 64 * 64;
    size_t cap = (total + huge - 1) / huge * huge;
    uint8_t *copy = cap ? aligned_alloc(huge, cap) : NULL;
    if (!copy) /* best effort: compute from the mapping */
        return 0;
    madvise(copy, cap, MADV_HUGEPAGE);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        const void *orig = views[i]->data;
        if ((const uint8_t *)orig >= copy && (const uint8_t *)orig < copy + cap)
            continue; /* shares the copy of an earlier view */
        memcpy(copy + at, orig, view_bytes(views[i]));
        for (int j = i; j < n; j++)
            if (views[j]->data == orig)
                views[j]->data = copy + at;
        at += (view_bytes(views[i]) + 63) / 64 * 64;
    }
    *handle = copy;
    return 0;
}

static int cpu_begin_step(sol_backend *b, const sol_step_state *s, sol_err *err)
{
    cpu_ctx *ctx = b->ctx;
    int seqs = s->seqs > 1 ? s->seqs : 1;
    if (seqs > b->caps.max_seqs || s->rows % seqs)
        return sol_fail(err, SOL_ERR_RUNTIME, "a step of %d rows over %d sequences (at most %d, equal rows each)",
                        s->rows, seqs, b->caps.max_seqs);
    if (s->rows > ctx->tokens_cap) {
        int32_t *t = realloc(ctx->tokens, (size_t)s->rows * sizeof *t);
        if (!t)
            return sol_fail(err, SOL_ERR_RUNTIME, "out of memory for %d tokens", s->rows);
        ctx->tokens = t;
        ctx->tokens_cap = s->rows;
    }
    if (s->tokens)
        memcpy(ctx->tokens, s->tokens, (size_t)s->rows * sizeof *ctx->tokens);
    ctx->pos = s->pos;
    ctx->rows = s->rows;
    ctx->seqs = seqs;
    ctx->n_stamps = 0;
    return 0;
}

/* Appends a stamp; without memory for it the step's timing stops there. */
static void stamp(cpu_ctx *ctx)
{
    if (ctx->n_stamps == ctx->stamps_cap) {
        int cap = ctx->stamps_cap ? 2 * ctx->stamps_cap : 256;
        double *s = realloc(ctx->stamps, (size_t)cap * sizeof *s);
        if (!s)
            return;
        ctx->stamps = s;
        ctx->stamps_cap = cap;
    }
    ctx->stamps[ctx->n_stamps++] = sol_now_s();
}

static void cpu_mark(sol_backend *b, const char *op, int layer)
{
    (void)op;
    (void)layer;
    stamp(b->ctx);
}

static int cpu_sync(sol_backend *b, sol_err *err)
{
    stamp(b->ctx);
    return reported(b->ctx, err);
}

static int cpu_op_seconds(sol_backend *b, double *seconds, int cap)
{
    const cpu_ctx *ctx = b->ctx;
    int n = 0;
    for (int i = 0; i + 1 < ctx->n_stamps && n < cap; i++)
        seconds[n++] = ctx->stamps[i + 1] - ctx->stamps[i];
    return n;
}

void sol_cpu_memory_init(sol_backend *b)
{
    b->alloc = cpu_alloc;
    b->free = cpu_free;
    b->upload = cpu_copy;
    b->download = cpu_download;
    b->load_weights = cpu_load_weights;
    b->begin_step = cpu_begin_step;
    b->mark = cpu_mark;
    b->sync = cpu_sync;
    b->op_seconds = cpu_op_seconds;
    ((cpu_ctx *)b->ctx)->seqs = 1;
}

void sol_cpu_memory_free(cpu_ctx *ctx)
{
    free(ctx->tokens);
    free(ctx->stamps);
    free(ctx->scratch);
    free(ctx->iscratch);
}
