/* Mixture-of-experts on the CPU (backend.h's route and moe_ffn).
 *
 * Routing follows sol_router's rule row by row. Softmax scores are
 * computed in double (the row's max subtracted, exp and the sum in double)
 * and rounded to float once, so they are the correctly rounded softmax up
 * to a few double ulps and equal logits give equal scores (the tie rule
 * then decides); sigmoid scores are float, 1 / (1 + expf(-x)). Choice
 * ranks c = s + bias are float sums. The norm's sum of the k weights is a
 * double; each weight is (float)(s / sum), then times scale in float.
 *
 * The expert FFN works expert by expert, not row by row: the rows routed
 * to an expert are gathered into one block and go through its gate/up
 * (one matmul group) and down matmuls together, so each chosen expert's
 * weights stream from memory once per step whatever the number of rows
 * that chose it; every weight type and the thread pool come with the
 * backend's matmul. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/simd.h"

/* ---- scratch ---------------------------------------------------------------- */

/* ctx->scratch grown to n floats (32-byte aligned, contents not kept);
 * NULL when that memory is not there. */
static float *scratch_floats(cpu_ctx *ctx, size_t n)
{
    if (n > ctx->scratch_cap) {
        float *p = aligned_alloc(32, (n * sizeof *p + 31) / 32 * 32);
        if (!p)
            return NULL;
        free(ctx->scratch);
        ctx->scratch = p;
        ctx->scratch_cap = n;
    }
    return ctx->scratch;
}

/* ctx->iscratch grown to n ints (contents not kept); NULL without memory. */
static int32_t *scratch_ints(cpu_ctx *ctx, size_t n)
{
    if (n > ctx->iscratch_cap) {
        int32_t *p = malloc(n * sizeof *p);
        if (!p)
            return NULL;
        free(ctx->iscratch);
        ctx->iscratch = p;
        ctx->iscratch_cap = n;
    }
    return ctx->iscratch;
}

/* Records the op's failure for lack of `bytes` of memory. */
static void out_of_memory(cpu_ctx *ctx, const char *op, size_t bytes)
{
    char what[96];
    snprintf(what, sizeof what, "out of memory for %zu KiB of scratch", (bytes + 1023) >> 10);
    sol_cpu_fail(ctx, op, what);
}

/* ---- routing ---------------------------------------------------------------- */

/* a ranks above b: larger, and a NaN never above a number. Equal values
 * rank neither above the other, so scanning upwards keeps the lower index. */
static int above(float a, float b) { return a > b || (isnan(b) && !isnan(a)); }

/* s[0..n) = the row's scores: softmax (in double, see the top) or sigmoid. */
static void router_scores(const float *logits, int n, int sigmoid, float *s)
{
    if (sigmoid) {
        for (int e = 0; e < n; e++)
            s[e] = 1.0f / (1.0f + expf(-logits[e]));
        return;
    }
    double max = -INFINITY, sum = 0;
    for (int e = 0; e < n; e++)
        if (logits[e] > max)
            max = logits[e];
    for (int e = 0; e < n; e++)
        sum += exp((double)logits[e] - max);
    for (int e = 0; e < n; e++)
        s[e] = (float)(exp((double)logits[e] - max) / sum);
}

/* Whether the router's groups restrict the choice: more than one group,
 * equal groups, and fewer kept than there are (else every expert may win). */
static int uses_groups(const sol_router *r)
{
    return r->n_groups > 1 && r->n_experts % r->n_groups == 0 && r->groups_kept > 0 && r->groups_kept < r->n_groups;
}

/* Group g's rank by the choice ranks c: its best c, or with a bias the sum
 * of its two best (DeepSeek-V3's noaux_tc; a group of one: its one). */
static float group_rank(const sol_router *r, const float *c, int g)
{
    int size = r->n_experts / r->n_groups, first = -1, second = -1;
    for (int e = g * size; e < (g + 1) * size; e++) {
        if (first < 0 || above(c[e], c[first])) {
            second = first;
            first = e;
        } else if (second < 0 || above(c[e], c[second])) {
            second = e;
        }
    }
    return r->bias && second >= 0 ? c[first] + c[second] : c[first];
}

/* taken[e] = 1 for every expert outside the groups_kept best groups (ties:
 * the lower group), 0 inside; rank and kept are n_groups of scratch. */
static void exclude_groups(const sol_router *r, const float *c, float *rank, int32_t *kept, int32_t *taken)
{
    int size = r->n_experts / r->n_groups;
    for (int g = 0; g < r->n_groups; g++) {
        rank[g] = group_rank(r, c, g);
        kept[g] = 0;
    }
    for (int n = 0; n < r->groups_kept; n++) {
        int best = -1;
        for (int g = 0; g < r->n_groups; g++)
            if (!kept[g] && (best < 0 || above(rank[g], rank[best])))
                best = g;
        kept[best] = 1;
    }
    for (int e = 0; e < r->n_experts; e++)
        taken[e] = !kept[e / size];
}

/* One row: ids[0..k) the k best c among the experts not taken, best first
 * (ties: the lower index), weights their s (normalised, scaled). Slots no
 * expert is left for (k beyond the experts the groups allow) get id -1 and
 * weight 0, which moe_ffn skips. */
static void choose(const sol_router *r, const float *s, const float *c, int32_t *taken, int32_t *ids, float *weights)
{
    double sum = 0;
    for (int j = 0; j < r->k; j++) {
        int best = -1;
        for (int e = 0; e < r->n_experts; e++)
            if (!taken[e] && (best < 0 || above(c[e], c[best])))
                best = e;
        ids[j] = best;
        weights[j] = best < 0 ? 0.0f : s[best];
        if (best >= 0)
            taken[best] = 1;
        sum += weights[j];
    }
    for (int j = 0; j < r->k; j++) {
        float w = r->norm && sum > 0 ? (float)(weights[j] / sum) : weights[j];
        weights[j] = w * r->scale;
    }
}

void sol_cpu_route(sol_backend *b, const float *logits, const sol_router *r, int32_t *ids, float *weights)
{
    cpu_ctx *ctx = b->ctx;
    forget_quantized(b);
    int n = r->n_experts, groups = uses_groups(r) ? r->n_groups : 0;
    if (n < 1 || r->k < 1)
        return;
    /* per row: s, c, group ranks; taken flags, kept groups */
    float *s = scratch_floats(ctx, 2 * (size_t)n + (size_t)groups);
    int32_t *taken = s ? scratch_ints(ctx, (size_t)n + (size_t)groups) : NULL;
    if (!taken) {
        out_of_memory(ctx, "route", (2 * (size_t)n + (size_t)groups) * sizeof *s);
        return;
    }
    float *c = s + n, *rank = c + n;
    for (int row = 0; row < ctx->rows; row++) {
        router_scores(logits + (size_t)row * n, n, r->sigmoid, s);
        for (int e = 0; e < n; e++)
            c[e] = r->bias ? s[e] + r->bias[e] : s[e];
        if (groups)
            exclude_groups(r, c, rank, taken + n, taken);
        else
            memset(taken, 0, (size_t)n * sizeof *taken);
        choose(r, s, c, taken, ids + (size_t)row * r->k, weights + (size_t)row * r->k);
    }
}

/* ---- the expert FFN -------------------------------------------------------------- */

/* Expert e's matrix of a stacked expert tensor (rows e * rows / n_experts ..). */
static sol_weight_view expert_view(const sol_weight_view *w, int n_experts, int e)
{
    sol_weight_view v = *w;
    v.rows = w->rows / n_experts;
    v.data = (const char *)w->data + (size_t)e * (size_t)v.rows * w->row_bytes;
    return v;
}

/* The step's (row, choice) entries bucketed by expert: entries of expert e
 * are order[start[e] .. start[e + 1]), each r * k + j; ids outside
 * [0, n_experts) are left out. next holds n_experts ints of scratch.
 * Returns the most entries any expert has. */
static int bucket(const int32_t *ids, int n_entries, int n_experts, int32_t *start, int32_t *next, int32_t *order)
{
    memset(start, 0, (size_t)(n_experts + 1) * sizeof *start);
    for (int i = 0; i < n_entries; i++)
        if (ids[i] >= 0 && ids[i] < n_experts)
            start[ids[i] + 1]++;
    int most = 0;
    for (int e = 0; e < n_experts; e++) {
        most = start[e + 1] > most ? start[e + 1] : most;
        start[e + 1] += start[e];
        next[e] = start[e];
    }
    for (int i = 0; i < n_entries; i++)
        if (ids[i] >= 0 && ids[i] < n_experts)
            order[next[ids[i]]++] = i;
    return most;
}

/* The scratch blocks of one expert's pass, for up to `rows` gathered rows. */
typedef struct {
    float *x, *gate, *up, *y; /* rows x hidden, rows x ffn (twice), rows x out */
} expert_scratch;

/* Expert e over its n entries (order): gather their inputs, gate and up
 * as one matmul group, silu(gate) * up, down, then each entry's weighted
 * result added to its row of out. Every matmul is on a freshly gathered
 * block: the quantised copy of an earlier input is forgotten first. */
static void run_expert(sol_backend *b, const sol_weight_view *gate, const sol_weight_view *up,
                       const sol_weight_view *down, int n_experts, int e, const float *x, const int32_t *order, int n,
                       const float *weights, int k, const expert_scratch *t, float *out)
{
    sol_weight_view g = expert_view(gate, n_experts, e), u = expert_view(up, n_experts, e),
                    d = expert_view(down, n_experts, e);
    int64_t hidden = gate->cols, ffn = g.rows, width = d.rows;
    for (int i = 0; i < n; i++)
        memcpy(t->x + (size_t)i * hidden, x + (size_t)(order[i] / k) * hidden, (size_t)hidden * sizeof *t->x);
    const sol_weight_view *gu[2] = {&g, &u};
    const float *no_bias[2] = {NULL, NULL};
    float *gu_out[2] = {t->gate, t->up};
    forget_quantized(b);
    sol_cpu_matmul_group(b, 2, gu, no_bias, t->x, n, gu_out);
    sol_cpu_kernels_active()->swiglu(t->gate, t->up, (int64_t)n * ffn);
    forget_quantized(b);
    sol_cpu_matmul(b, &d, NULL, t->gate, n, t->y);
    for (int i = 0; i < n; i++) {
        float w = weights[order[i]], *o = out + (size_t)(order[i] / k) * width;
        const float *y = t->y + (size_t)i * width;
        for (int64_t c = 0; c < width; c++)
            o[c] += w * y[c];
    }
}

void sol_cpu_moe_ffn(sol_backend *b, const sol_weight_view *gate, const sol_weight_view *up,
                     const sol_weight_view *down, int n_experts, const float *x, const int32_t *ids,
                     const float *weights, int k, float *out)
{
    cpu_ctx *ctx = b->ctx;
    forget_quantized(b);
    if (n_experts < 1)
        return;
    int n_entries = ctx->rows * (k > 0 ? k : 0);
    int64_t hidden = gate->cols, ffn = gate->rows / n_experts, width = down->rows / n_experts;
    memset(out, 0, (size_t)ctx->rows * (size_t)width * sizeof *out);
    if (n_entries < 1)
        return;
    size_t n_ints = 2 * (size_t)n_experts + 1 + (size_t)n_entries;
    int32_t *start = scratch_ints(ctx, n_ints);
    if (!start) {
        out_of_memory(ctx, "moe_ffn", n_ints * sizeof *start);
        return;
    }
    int32_t *next = start + n_experts + 1, *order = next + n_experts;
    int most = bucket(ids, n_entries, n_experts, start, next, order);
    size_t floats = (size_t)most * (size_t)(hidden + 2 * ffn + width);
    float *base = most ? scratch_floats(ctx, floats) : NULL;
    if (most && !base) {
        out_of_memory(ctx, "moe_ffn", floats * sizeof *base);
        return;
    }
    expert_scratch t = {base, NULL, NULL, NULL};
    if (base) {
        t.gate = t.x + (size_t)most * hidden;
        t.up = t.gate + (size_t)most * ffn;
        t.y = t.up + (size_t)most * ffn;
    }
    /* 8-bit activations or not is the step's choice (its rows against
     * int8_dots_below: what the plan costs), not each expert's share */
    sol_activations step_activations = b->activations;
    if (ctx->rows >= b->int8_dots_below)
        b->activations = SOL_ACT_F32;
    for (int e = 0; e < n_experts; e++)
        if (start[e + 1] > start[e])
            run_expert(b, gate, up, down, n_experts, e, x, order + start[e], start[e + 1] - start[e], weights, k,
                       &t, out);
    b->activations = step_activations;
}
