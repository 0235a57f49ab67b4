/* The host-poisoning test backend: a backend plugin (ABI 6) that runs the
 * CPU backend's kernels but keeps every buffer it hands out in an arena
 * the host cannot touch. The arena is PROT_NONE except while one of its
 * own ops, uploads or downloads runs, so engine code that reads or writes
 * backend memory directly crashes; every pointer an op is given must lie in
 * the arena (a host pointer is an error naming the op). Two more modes,
 * from the environment:
 *   SOL_POISON_DEFER=1       every call is queued and runs at the next sync
 *                            or download, as a GPU stream would
 *   SOL_POISON_FAULT=OP[@L]  the first op named OP (of layer L) fails as an
 *                            asynchronous fault: sync reports it, nothing
 *                            after it runs
 *   SOL_POISON_COUNTERS=M    with the backend option counters (sol run
 *                            --counters), a fake count_step (ABI 6) for the
 *                            engine's and the CLI's plumbing, counting every
 *                            decode step (one row a sequence): M = fixed
 *                            gives the fixture figures POISON_DRAM_READ,
 *                            POISON_DRAM_WRITE and POISON_GPU_S; off turns
 *                            counting off at the first with POISON_NOTICE;
 *                            fail fails the first as a device fault would.
 *                            Unset: count_step stays NULL (no counters)
 * Built as build/test/poison.so; it calls the host's sol_cpu_backend_new
 * (the test build of sol exports its symbols), so it carries no kernels. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernels/cpu.h"
#include "kernels/cuda/plugin.h"
#include "util/clock.h"

typedef enum {
    Q_STEP, Q_MARK, Q_EMBED, Q_RMSNORM, Q_MATMUL, Q_GROUP, Q_ROPE, Q_ROPE_KV, Q_KV_WRITE, Q_ATTENTION, Q_ADD, Q_SWIGLU,
    Q_ARGMAX,
    Q_HEAD_MATMUL,
    Q_LATENT_KV,
    Q_SCALE, Q_SOFTCAP, Q_GEGLU, Q_HEAD_RMSNORM, Q_ROUTE, Q_MOE_FFN, Q_TOP_K, Q_NORM_GROUP
} call_kind;

/* One call as it was made (arrays copied, the host structures pointed to
 * are the caller's and live until sync by the contract). */
typedef struct {
    call_kind kind;
    sol_activations activations; /* the setting when the call was made */
    const char *op;
    int layer;
    sol_step_state step; /* tokens: our copy */
    int n_w;
    const sol_weight_view *w[SOL_MATMUL_GROUP_MAX];
    const float *bias[SOL_MATMUL_GROUP_MAX];
    float *y[SOL_MATMUL_GROUP_MAX];
    const float *x, *x2; /* inputs */
    float *out;
    int32_t *index;
    const float *weight;
    float eps, softcap;
    int64_t n, window, x_stride, y_stride;
    int m, n_heads, n_kv_heads, head_dim;
    const sol_rope *rope;
    sol_kv_cache_layer *cache;
    float s;                /* scale's factor, softcap's cap */
    sol_router router;      /* route: the caller's router, copied */
    const int32_t *ids;     /* moe_ffn: the chosen experts */
    float *weights_out;     /* route's weights */
    int n_experts, k;       /* moe_ffn */
} call;

/* The fake counters' fixture figures (SOL_POISON_COUNTERS=fixed). */
#define POISON_DRAM_READ 3000000.0
#define POISON_DRAM_WRITE 1000000.0
#define POISON_GPU_S 0.002
#define POISON_NOTICE "poison backend: hardware counters off (SOL_POISON_COUNTERS=off); timing only"

typedef enum { COUNT_FIXED = 1, COUNT_OFF, COUNT_FAIL } count_mode;

typedef struct {
    sol_backend *cpu;
    count_mode count_mode;
    int count_off;   /* COUNT_OFF: the notice was given */
    int decode_step; /* begin_step's step has one row a sequence */
    uint8_t *arena;
    size_t used, reserved;
    int live; /* allocations not freed: the arena is reset when none is left */
    int defer;
    char fault_op[64];
    int fault_layer; /* -2: any */
    call *queue;
    int queued, queue_cap;
    const char *call_op; /* of the op being called (errors found at the call) */
    int call_layer;
    int failed;
    char error[400];
    const char *run_op; /* the mark of the call being run (errors the CPU backend reports) */
    int run_layer;
    double *stamps;
    int n_stamps, stamps_cap;
} poison;

static poison *ctx_of(sol_backend *b) { return b->ctx; }

/* ---- the arena ------------------------------------------------------------ */

static size_t page_round(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (n + page - 1) / page * page;
}

static void arena_access(poison *p, int open)
{
    if (p->used)
        mprotect(p->arena, page_round(p->used), open ? PROT_READ | PROT_WRITE : PROT_NONE);
}

static int in_arena(const poison *p, const void *ptr) /* NULL never is */
{
    return ptr && (const uint8_t *)ptr >= p->arena && (const uint8_t *)ptr < p->arena + p->used;
}

/* The first error, blamed on op (of layer); nothing runs after it. */
static void fail_op(poison *p, const char *op, int layer, const char *what)
{
    if (p->failed)
        return;
    p->failed = 1;
    if (layer >= 0)
        snprintf(p->error, sizeof p->error, "layer %d %s: %s (poison backend)", layer, op ? op : "?", what);
    else
        snprintf(p->error, sizeof p->error, "%s: %s (poison backend)", op ? op : "?", what);
}

static int poison_alloc(sol_backend *b, size_t bytes, void **out, sol_err *err)
{
    poison *p = ctx_of(b);
    size_t at = (p->used + 63) / 64 * 64; /* the CPU backend's alignment: the same float order */
    if (at + bytes > p->reserved)
        return sol_fail(err, SOL_ERR_RUNTIME, "poison backend: arena of %zu MiB full", p->reserved >> 20);
    p->used = at + bytes; /* reserved PROT_NONE: it stays so */
    *out = p->arena + at;
    p->live++;
    return 0;
}

static void poison_free(sol_backend *b, void *ptr)
{
    poison *p = ctx_of(b);
    if (!ptr)
        return;
    if (!in_arena(p, ptr)) { /* freeing host memory through the backend is the engine's bug */
        fprintf(stderr, "poison backend: free of %p, not backend memory\n", ptr);
        abort();
    }
    if (--p->live == 0) {
        madvise(p->arena, page_round(p->used), MADV_DONTNEED);
        p->used = 0;
    }
}

/* ---- calls ---------------------------------------------------------------- */

static int check_ptr(poison *p, const void *ptr, const char *what)
{
    if (in_arena(p, ptr))
        return 0;
    char msg[160];
    snprintf(msg, sizeof msg, "%s %p is not backend memory", what, ptr);
    fail_op(p, p->call_op, p->call_layer, msg);
    return -1;
}

static int check_view(poison *p, const sol_weight_view *w) { return check_ptr(p, w->data, "weight data"); }

static int check_cache(poison *p, const sol_kv_cache_layer *c)
{
    return check_ptr(p, c->k, "KV cache K") || check_ptr(p, c->v, "KV cache V");
}

/* An op the CPU backend could not run (no memory for its scratch): its
 * sync reports it, and it becomes this backend's asynchronous error. */
static void cpu_failure(poison *p)
{
    sol_err err = {0};
    if (p->cpu->sync(p->cpu, &err))
        fail_op(p, p->run_op, p->run_layer, err.msg);
}

static void run_call(poison *p, call *c)
{
    sol_backend *cpu = p->cpu;
    cpu->activations = c->activations;
    switch (c->kind) {
    case Q_STEP: {
        sol_err err = {0};
        if (cpu->begin_step(cpu, &c->step, &err))
            fail_op(p, "begin_step", -1, err.msg);
        free((void *)c->step.tokens);
        c->step.tokens = NULL;
        return;
    }
    case Q_MARK:
        p->run_op = c->op;
        p->run_layer = c->layer;
        if (p->n_stamps < p->stamps_cap)
            p->stamps[p->n_stamps++] = sol_now_s();
        if (p->fault_op[0] && !strcmp(c->op, p->fault_op) && (p->fault_layer == -2 || p->fault_layer == c->layer))
            fail_op(p, c->op, c->layer, "injected fault");
        return;
    case Q_EMBED: cpu->embed(cpu, c->w[0], c->out); return;
    case Q_RMSNORM: cpu->rmsnorm(cpu, c->x, c->weight, c->eps, c->n, c->out); return;
    case Q_MATMUL: cpu->matmul(cpu, c->w[0], c->bias[0], c->x, c->m, c->out); return;
    case Q_GROUP: cpu->matmul_group(cpu, c->n_w, c->w, c->bias, c->x, c->m, c->y); return;
    case Q_ROPE: cpu->rope(cpu, c->out, c->n_heads, c->head_dim, c->rope); return;
    case Q_ROPE_KV:
        cpu->rope_kv_write(cpu, c->out, c->y[0], c->x, c->n_heads, c->head_dim, c->rope, c->cache);
        return;
    case Q_KV_WRITE: cpu->kv_write(cpu, c->x, c->x2, c->cache); return;
    case Q_ATTENTION:
        cpu->attention(cpu, c->x, c->cache, c->n_heads, c->n_kv_heads, c->head_dim, c->window, c->softcap, c->out);
        return;
    case Q_ADD: cpu->add(cpu, c->out, c->x, c->n); return;
    case Q_SWIGLU: cpu->swiglu(cpu, c->out, c->x, c->n); return;
    case Q_ARGMAX: cpu->argmax(cpu, c->x, c->n, c->index); return;
    case Q_TOP_K: cpu->top_k(cpu, c->x, c->n, c->m, c->out, c->index); return;
    case Q_NORM_GROUP:
        cpu->rmsnorm_matmul_group(cpu, c->x, c->weight, c->eps, c->n_w, c->w, c->bias, c->m, c->out, c->y);
        return;
    case Q_HEAD_MATMUL: cpu->head_matmul(cpu, c->w[0], c->n_heads, c->x, c->x_stride, c->out, c->y_stride); return;
    case Q_LATENT_KV: cpu->latent_kv_write(cpu, c->x, c->weight, c->eps, c->m, c->rope, c->cache); return;
    case Q_SCALE: cpu->scale(cpu, c->out, c->s, c->n); return;
    case Q_SOFTCAP: cpu->softcap(cpu, c->out, c->s, c->m, c->n); return;
    case Q_GEGLU: cpu->geglu(cpu, c->out, c->x, c->n); return;
    case Q_HEAD_RMSNORM: cpu->head_rmsnorm(cpu, c->out, c->weight, c->eps, c->n_heads, c->head_dim); return;
    case Q_ROUTE:
        cpu->route(cpu, c->x, &c->router, c->index, c->weights_out);
        cpu_failure(p);
        return;
    case Q_MOE_FFN:
        cpu->moe_ffn(cpu, c->w[0], c->w[1], c->w[2], c->n_experts, c->x, c->ids, c->weight, c->k, c->out);
        cpu_failure(p);
        return;
    }
}

/* Runs what is queued, the arena open only meanwhile; after a fault the
 * rest is dropped. */
static void flush(poison *p)
{
    arena_access(p, 1);
    for (int i = 0; i < p->queued; i++) {
        if (!p->failed)
            run_call(p, &p->queue[i]);
        if (p->queue[i].kind == Q_STEP)
            free((void *)p->queue[i].step.tokens);
    }
    arena_access(p, 0);
    p->queued = 0;
}

static void submit(sol_backend *b, call c)
{
    poison *p = ctx_of(b);
    if (p->failed) {
        if (c.kind == Q_STEP)
            free((void *)c.step.tokens);
        return;
    }
    if (p->queued == p->queue_cap) {
        int cap = p->queue_cap ? 2 * p->queue_cap : 512;
        call *q = realloc(p->queue, (size_t)cap * sizeof *q);
        if (!q) {
            fail_op(p, p->call_op, p->call_layer, "out of memory for the queue");
            return;
        }
        p->queue = q;
        p->queue_cap = cap;
    }
    c.activations = b->activations;
    p->queue[p->queued++] = c;
    if (!p->defer)
        flush(p);
}

/* ---- the table's entries --------------------------------------------------- */

static int poison_upload(sol_backend *b, void *dst, const void *src, size_t bytes, sol_err *err)
{
    poison *p = ctx_of(b);
    if (!in_arena(p, dst) || !in_arena(p, (uint8_t *)dst + bytes - 1))
        return sol_fail(err, SOL_ERR_RUNTIME, "poison backend: upload to %p, not backend memory", dst);
    flush(p); /* in order with what is queued before it */
    arena_access(p, 1);
    memcpy(dst, src, bytes);
    arena_access(p, 0);
    return 0;
}

static int poison_sync(sol_backend *b, sol_err *err);

static int poison_download(sol_backend *b, void *dst, const void *src, size_t bytes, sol_err *err)
{
    poison *p = ctx_of(b);
    if (!in_arena(p, src) || !in_arena(p, (const uint8_t *)src + bytes - 1))
        return sol_fail(err, SOL_ERR_RUNTIME, "poison backend: download from %p, not backend memory", src);
    flush(p);
    if (p->failed)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s", p->error);
    arena_access(p, 1);
    memcpy(dst, src, bytes);
    arena_access(p, 0);
    return 0;
}

/* Each distinct matrix copied into the arena; views sharing data (tied
 * embeddings) share the copy. */
static int poison_load_weights(sol_backend *b, sol_weight_view *const *views, int n, void **handle, sol_err *err)
{
    poison *p = ctx_of(b);
    *handle = NULL;
    for (int i = 0; i < n; i++) {
        if (in_arena(p, views[i]->data)) /* placed with an earlier view */
            continue;
        const void *orig = views[i]->data;
        size_t bytes = (size_t)views[i]->rows * views[i]->row_bytes;
        void *copy;
        int rc = poison_alloc(b, bytes, &copy, err);
        if (!rc)
            rc = poison_upload(b, copy, orig, bytes, err);
        if (rc)
            return rc;
        for (int j = i; j < n; j++)
            if (views[j]->data == orig)
                views[j]->data = copy;
    }
    return 0;
}

static int poison_begin_step(sol_backend *b, const sol_step_state *s, sol_err *err)
{
    poison *p = ctx_of(b);
    call c = {.kind = Q_STEP, .step = *s};
    int32_t *tokens = NULL;
    if (s->tokens) {
        tokens = malloc((size_t)s->rows * sizeof *tokens);
        if (!tokens)
            return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
        memcpy(tokens, s->tokens, (size_t)s->rows * sizeof *tokens);
    }
    c.step.tokens = tokens;
    p->n_stamps = 0;
    p->decode_step = s->rows == (s->seqs > 1 ? s->seqs : 1);
    submit(b, c);
    return 0;
}

static void poison_mark(sol_backend *b, const char *op, int layer)
{
    poison *p = ctx_of(b);
    if (p->n_stamps == 0 && p->stamps_cap < 4096) {
        double *s = realloc(p->stamps, 4096 * sizeof *s);
        if (s) {
            p->stamps = s;
            p->stamps_cap = 4096;
        }
    }
    p->call_op = op;
    p->call_layer = layer;
    submit(b, (call){.kind = Q_MARK, .op = op, .layer = layer});
}

static int poison_sync(sol_backend *b, sol_err *err)
{
    poison *p = ctx_of(b);
    flush(p);
    if (p->n_stamps < p->stamps_cap)
        p->stamps[p->n_stamps++] = sol_now_s();
    if (p->failed)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s", p->error);
    return 0;
}

static int poison_op_seconds(sol_backend *b, double *seconds, int cap)
{
    poison *p = ctx_of(b);
    int n = 0;
    for (int i = 0; i + 1 < p->n_stamps && n < cap; i++)
        seconds[n++] = p->stamps[i + 1] - p->stamps[i];
    return n;
}

static void poison_embed(sol_backend *b, const sol_weight_view *table, float *out)
{
    poison *p = ctx_of(b);
    if (!check_view(p, table) && !check_ptr(p, out, "output"))
        submit(b, (call){.kind = Q_EMBED, .w = {table}, .out = out});
}

static void poison_rmsnorm(sol_backend *b, const float *x, const float *weight, float eps, int64_t n, float *out)
{
    poison *p = ctx_of(b);
    if (!check_ptr(p, x, "input") && !check_ptr(p, weight, "norm weight") && !check_ptr(p, out, "output"))
        submit(b, (call){.kind = Q_RMSNORM, .x = x, .weight = weight, .eps = eps, .n = n, .out = out});
}

static void poison_matmul(sol_backend *b, const sol_weight_view *w, const float *bias, const float *x, int m, float *y)
{
    poison *p = ctx_of(b);
    if (!check_view(p, w) && (!bias || !check_ptr(p, bias, "bias")) && !check_ptr(p, x, "input") &&
        !check_ptr(p, y, "output"))
        submit(b, (call){.kind = Q_MATMUL, .w = {w}, .bias = {bias}, .x = x, .m = m, .out = y});
}

static void poison_matmul_group(sol_backend *b, int n, const sol_weight_view *const *w, const float *const *bias,
                                const float *x, int m, float *const *y)
{
    poison *p = ctx_of(b);
    call c = {.kind = Q_GROUP, .n_w = n, .x = x, .m = m};
    if (check_ptr(p, x, "input"))
        return;
    for (int j = 0; j < n; j++) {
        if (check_view(p, w[j]) || (bias[j] && check_ptr(p, bias[j], "bias")) || check_ptr(p, y[j], "output"))
            return;
        c.w[j] = w[j];
        c.bias[j] = bias[j];
        c.y[j] = y[j];
    }
    submit(b, c);
}

static void poison_rmsnorm_matmul_group(sol_backend *b, const float *x, const float *norm, float eps, int n,
                                        const sol_weight_view *const *w, const float *const *bias, int m, float *xb,
                                        float *const *y)
{
    poison *p = ctx_of(b);
    call c = {.kind = Q_NORM_GROUP, .x = x, .weight = norm, .eps = eps, .n_w = n, .m = m, .out = xb};
    if (check_ptr(p, x, "input") || check_ptr(p, norm, "norm weight") || check_ptr(p, xb, "norm output"))
        return;
    for (int j = 0; j < n; j++) {
        if (check_view(p, w[j]) || (bias[j] && check_ptr(p, bias[j], "bias")) || check_ptr(p, y[j], "output"))
            return;
        c.w[j] = w[j];
        c.bias[j] = bias[j];
        c.y[j] = y[j];
    }
    submit(b, c);
}

static void poison_rope(sol_backend *b, float *x, int n_heads, int head_dim, const sol_rope *rope)
{
    poison *p = ctx_of(b);
    if (!check_ptr(p, x, "rows") && !check_ptr(p, rope->inv_freq, "RoPE frequencies"))
        submit(b, (call){.kind = Q_ROPE, .out = x, .n_heads = n_heads, .head_dim = head_dim, .rope = rope});
}

static void poison_rope_kv_write(sol_backend *b, float *q, float *k, const float *v, int n_heads, int head_dim,
                                 const sol_rope *rope, sol_kv_cache_layer *cache)
{
    poison *p = ctx_of(b);
    if (!check_ptr(p, q, "q") && !check_ptr(p, k, "k") && !check_ptr(p, v, "v") &&
        !check_ptr(p, rope->inv_freq, "RoPE frequencies") && !check_cache(p, cache))
        submit(b, (call){.kind = Q_ROPE_KV, .out = q, .y = {k}, .x = v, .n_heads = n_heads, .head_dim = head_dim,
                         .rope = rope, .cache = cache});
}

static void poison_kv_write(sol_backend *b, const float *k, const float *v, sol_kv_cache_layer *cache)
{
    poison *p = ctx_of(b);
    if (!check_ptr(p, k, "k") && !check_ptr(p, v, "v") && !check_cache(p, cache))
        submit(b, (call){.kind = Q_KV_WRITE, .x = k, .x2 = v, .cache = cache});
}

static void poison_attention(sol_backend *b, const float *q, const sol_kv_cache_layer *cache, int n_heads,
                             int n_kv_heads, int head_dim, int64_t window, float softcap, float *out)
{
    poison *p = ctx_of(b);
    if (!check_ptr(p, q, "q") && !check_cache(p, cache) && !check_ptr(p, out, "output"))
        submit(b, (call){.kind = Q_ATTENTION, .x = q, .cache = (sol_kv_cache_layer *)cache, .n_heads = n_heads,
                         .n_kv_heads = n_kv_heads, .head_dim = head_dim, .window = window, .softcap = softcap, .out = out});
}

static void poison_add(sol_backend *b, float *x, const float *y, int64_t n)
{
    poison *p = ctx_of(b);
    if (!check_ptr(p, x, "x") && !check_ptr(p, y, "y"))
        submit(b, (call){.kind = Q_ADD, .out = x, .x = y, .n = n});
}

static void poison_swiglu(sol_backend *b, float *gate, const float *up, int64_t n)
{
    poison *p = ctx_of(b);
    if (!check_ptr(p, gate, "gate") && !check_ptr(p, up, "up"))
        submit(b, (call){.kind = Q_SWIGLU, .out = gate, .x = up, .n = n});
}

static void poison_argmax(sol_backend *b, const float *x, int64_t n, int32_t *out)
{
    poison *p = ctx_of(b);
    if (!check_ptr(p, x, "logits") && !check_ptr(p, out, "index"))
        submit(b, (call){.kind = Q_ARGMAX, .x = x, .n = n, .index = out});
}

static void poison_top_k(sol_backend *b, const float *x, int64_t n, int k, float *vals, int32_t *ids)
{
    poison *p = ctx_of(b);
    if (!check_ptr(p, x, "logits") && !check_ptr(p, vals, "values") && !check_ptr(p, ids, "ids"))
        submit(b, (call){.kind = Q_TOP_K, .x = x, .n = n, .m = k, .out = vals, .index = ids});
}

static void poison_head_matmul(sol_backend *b, const sol_weight_view *w, int n_heads, const float *x,
                               int64_t x_stride, float *y, int64_t y_stride)
{
    poison *p = ctx_of(b);
    if (!check_view(p, w) && !check_ptr(p, x, "input") && !check_ptr(p, y, "output"))
        submit(b, (call){.kind = Q_HEAD_MATMUL, .w = {w}, .n_heads = n_heads, .x = x, .x_stride = x_stride, .out = y,
                         .y_stride = y_stride});
}

static void poison_latent_kv_write(sol_backend *b, const float *kv, const float *norm, float eps, int rank,
                                   const sol_rope *rope, sol_kv_cache_layer *cache)
{
    poison *p = ctx_of(b);
    if (!check_ptr(p, kv, "latent rows") && !check_ptr(p, norm, "latent norm") &&
        !check_ptr(p, rope->inv_freq, "RoPE frequencies") && !check_cache(p, cache))
        submit(b, (call){.kind = Q_LATENT_KV, .x = kv, .weight = norm, .eps = eps, .m = rank, .rope = rope,
                         .cache = cache});
}

static void poison_scale(sol_backend *b, float *x, float s, int64_t n)
{
    poison *p = ctx_of(b);
    if (!check_ptr(p, x, "x"))
        submit(b, (call){.kind = Q_SCALE, .out = x, .s = s, .n = n});
}

static void poison_softcap(sol_backend *b, float *x, float cap, int m, int64_t n)
{
    poison *p = ctx_of(b);
    if (!check_ptr(p, x, "x"))
        submit(b, (call){.kind = Q_SOFTCAP, .out = x, .s = cap, .m = m, .n = n});
}

static void poison_geglu(sol_backend *b, float *gate, const float *up, int64_t n)
{
    poison *p = ctx_of(b);
    if (!check_ptr(p, gate, "gate") && !check_ptr(p, up, "up"))
        submit(b, (call){.kind = Q_GEGLU, .out = gate, .x = up, .n = n});
}

static void poison_head_rmsnorm(sol_backend *b, float *x, const float *weight, float eps, int n_heads, int head_dim)
{
    poison *p = ctx_of(b);
    if (!check_ptr(p, x, "x") && !check_ptr(p, weight, "norm weight"))
        submit(b, (call){.kind = Q_HEAD_RMSNORM, .out = x, .weight = weight, .eps = eps, .n_heads = n_heads,
                         .head_dim = head_dim});
}

/* The router is copied (a host structure read at the call); its bias is
 * backend memory. */
static void poison_route(sol_backend *b, const float *logits, const sol_router *r, int32_t *ids, float *weights)
{
    poison *p = ctx_of(b);
    if (!check_ptr(p, logits, "router logits") && (!r->bias || !check_ptr(p, r->bias, "router bias")) &&
        !check_ptr(p, ids, "expert ids") && !check_ptr(p, weights, "expert weights"))
        submit(b, (call){.kind = Q_ROUTE, .x = logits, .router = *r, .index = ids, .weights_out = weights});
}

/* The weight views are the caller's until sync (backend.h); their data
 * is backend memory. */
static void poison_moe_ffn(sol_backend *b, const sol_weight_view *gate, const sol_weight_view *up,
                           const sol_weight_view *down, int n_experts, const float *x, const int32_t *ids,
                           const float *weights, int k, float *out)
{
    poison *p = ctx_of(b);
    if (!check_view(p, gate) && !check_view(p, up) && !check_view(p, down) && !check_ptr(p, x, "input") &&
        !check_ptr(p, ids, "expert ids") && !check_ptr(p, weights, "expert weights") && !check_ptr(p, out, "output"))
        submit(b, (call){.kind = Q_MOE_FFN, .w = {gate, up, down}, .n_experts = n_experts, .x = x, .ids = ids,
                         .weight = weights, .k = k, .out = out});
}

static void poison_destroy(sol_backend *b)
{
    if (!b)
        return;
    poison *p = ctx_of(b);
    if (p) {
        for (int i = 0; i < p->queued; i++)
            if (p->queue[i].kind == Q_STEP)
                free((void *)p->queue[i].step.tokens);
        if (p->cpu)
            p->cpu->destroy(p->cpu);
        if (p->arena)
            munmap(p->arena, p->reserved);
        free(p->queue);
        free(p->stamps);
        free(p);
    }
    free(b);
}

/* kernels/backend.h's count_step, faked (SOL_POISON_COUNTERS): the
 * figures are fixtures, not measurements; what is tested is the way they
 * travel from the seam to the engine's timing ring and sol run's output. */
static int poison_count_step(sol_backend *b, double *dram_read, double *dram_write, double *gpu_s, sol_err *err)
{
    poison *p = ctx_of(b);
    if (!p->decode_step || p->failed)
        return SOL_COUNT_NONE;
    switch (p->count_mode) {
    case COUNT_FIXED:
        *dram_read = POISON_DRAM_READ;
        *dram_write = POISON_DRAM_WRITE;
        *gpu_s = POISON_GPU_S;
        return SOL_COUNT_DONE;
    case COUNT_OFF:
        if (p->count_off)
            return SOL_COUNT_NONE;
        p->count_off = 1;
        snprintf(err->msg, sizeof err->msg, "%s", POISON_NOTICE);
        err->code = SOL_OK;
        return SOL_COUNT_TURNED_OFF;
    default:
        p->failed = 1;
        snprintf(p->error, sizeof p->error, "counted replay: injected device fault");
        sol_fail(err, SOL_ERR_RUNTIME, "%s", p->error);
        return SOL_COUNT_FAILED;
    }
}

/* SOL_POISON_COUNTERS=fixed|off|fail; 0 when unset (or not asked to count). */
static int read_count_mode(const sol_plugin_backend_options *opt, count_mode *out, sol_err *err)
{
    const char *m = getenv("SOL_POISON_COUNTERS");
    *out = 0;
    if (!opt->counters || !m || !*m)
        return 0;
    if (!strcmp(m, "fixed"))
        *out = COUNT_FIXED;
    else if (!strcmp(m, "off"))
        *out = COUNT_OFF;
    else if (!strcmp(m, "fail"))
        *out = COUNT_FAIL;
    else
        return sol_fail(err, SOL_ERR_USAGE, "SOL_POISON_COUNTERS: expected fixed, off or fail, got \"%s\"", m);
    return 0;
}

/* SOL_POISON_FAULT=OP or OP@LAYER */
static void read_fault(poison *p)
{
    const char *f = getenv("SOL_POISON_FAULT");
    p->fault_layer = -2;
    if (!f || !*f)
        return;
    snprintf(p->fault_op, sizeof p->fault_op, "%s", f);
    char *at = strchr(p->fault_op, '@');
    if (at) {
        *at = 0;
        p->fault_layer = atoi(at + 1);
    }
}

static int backend_new(const sol_plugin_backend_options *opt, sol_backend **out, sol_err *err)
{
    sol_backend *b = calloc(1, sizeof *b);
    poison *p = calloc(1, sizeof *p);
    *out = NULL;
    if (!b || !p) {
        free(b);
        free(p);
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    }
    b->ctx = p;
    b->destroy = poison_destroy;
    sol_cpu_options cpu = {.threads = opt->threads, .mapped_weights = 1};
    int rc = sol_cpu_backend_new(&cpu, &p->cpu, err);
    p->reserved = (size_t)64 << 30; /* address space only */
    p->arena = rc ? MAP_FAILED : mmap(NULL, p->reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p->arena == MAP_FAILED) {
        p->arena = NULL;
        poison_destroy(b);
        return rc ? rc : sol_fail(err, SOL_ERR_RUNTIME, "poison backend: cannot reserve its arena");
    }
    madvise(p->arena, p->reserved, MADV_HUGEPAGE); /* fewer page-table entries for every mprotect */
    const char *defer = getenv("SOL_POISON_DEFER");
    p->defer = defer && *defer && strcmp(defer, "0") != 0;
    read_fault(p);
    if ((rc = read_count_mode(opt, &p->count_mode, err))) {
        poison_destroy(b);
        return rc;
    }
    p->call_layer = -1;
    p->run_layer = -1;
    b->name = p->defer ? "poison-deferred" : "poison";
    b->threads = p->cpu->threads;
    b->caps = p->cpu->caps;
    b->activations = SOL_ACT_Q8;
    b->int8_dots_below = p->cpu->int8_dots_below;
    b->alloc = poison_alloc;
    b->free = poison_free;
    b->upload = poison_upload;
    b->download = poison_download;
    b->load_weights = poison_load_weights;
    b->begin_step = poison_begin_step;
    b->mark = poison_mark;
    b->sync = poison_sync;
    b->op_seconds = poison_op_seconds;
    b->embed = poison_embed;
    b->rmsnorm = poison_rmsnorm;
    b->matmul = poison_matmul;
    b->matmul_group = poison_matmul_group;
    b->rmsnorm_matmul_group = poison_rmsnorm_matmul_group;
    b->rope = poison_rope;
    b->rope_kv_write = poison_rope_kv_write;
    b->kv_write = poison_kv_write;
    b->attention = poison_attention;
    b->add = poison_add;
    b->swiglu = poison_swiglu;
    b->argmax = poison_argmax;
    b->top_k = poison_top_k;
    b->head_matmul = poison_head_matmul;
    b->latent_kv_write = poison_latent_kv_write;
    b->scale = poison_scale;
    b->softcap = poison_softcap;
    b->geglu = poison_geglu;
    b->head_rmsnorm = poison_head_rmsnorm;
    b->route = poison_route;
    b->moe_ffn = poison_moe_ffn;
    b->count_step = p->count_mode ? poison_count_step : NULL;
    *out = b;
    return 0;
}

static const sol_cuda_plugin table = {
    .abi = SOL_CUDA_PLUGIN_ABI,
    .build = "poison test backend (tests/backend/poison.c) over the CPU kernels",
    .backend_new = backend_new,
};

__attribute__((visibility("default"))) const sol_cuda_plugin *sol_cuda_plugin_table(void) { return &table; }
