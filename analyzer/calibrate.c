/* Calibrated predictions: per-op times measured on this machine, summed per
 * op class, turn each plan op's roofline time into the time it will take. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/analyzer.h"

void sol_op_class_of(const sol_op *op, int rows, sol_op_class *out)
{
    memset(out, 0, sizeof *out);
    out->kind = (int)op->kind;
    out->rows = rows;
    if (op->kind == SOL_OP_MATMUL || op->kind == SOL_OP_EMBED)
        snprintf(out->dtype, sizeof out->dtype, "%s", sol_dtype_name(op->wtype));
    else if (op->kind == SOL_OP_ATTENTION || op->kind == SOL_OP_KV_WRITE)
        snprintf(out->dtype, sizeof out->dtype, "%s", sol_dtype_name(op->kvtype));
    double bytes = sol_op_bytes(op);
    int exp2 = 0;
    if (bytes >= 1)
        frexp(bytes, &exp2); /* bytes = f * 2^exp2, f in [0.5, 1) */
    out->size_class = bytes >= 1 ? exp2 - 1 : 0;
}

const char *sol_op_class_kind_name(int kind)
{
    return kind == SOL_CALIB_OVERHEAD ? "overhead" : sol_op_kind_name((sol_op_kind)kind);
}

int sol_op_class_kind_parse(const char *name)
{
    for (int k = 0; k <= SOL_CALIB_OVERHEAD; k++)
        if (!strcmp(name, sol_op_class_kind_name(k)))
            return k;
    return -1;
}

static int same_class(const sol_op_class *a, const sol_op_class *b)
{
    return a->kind == b->kind && a->rows == b->rows && a->size_class == b->size_class && !strcmp(a->dtype, b->dtype);
}

static void sum_into(sol_op_class_sum *to, const sol_op_class_sum *from)
{
    to->bytes += from->bytes;
    to->flops += from->flops;
    to->roofline_s += from->roofline_s;
    to->measured_s += from->measured_s;
    to->count += from->count;
}

/* The index of item's entry, appended when new; -1 when out of memory. */
static int table_slot(sol_op_table *t, const sol_op_class_sum *item)
{
    for (int i = 0; i < t->n; i++)
        if (t->items[i].group == item->group && same_class(&t->items[i].key, &item->key))
            return i;
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 32;
        sol_op_class_sum *items = realloc(t->items, (size_t)cap * sizeof *items);
        if (!items)
            return -1;
        t->items = items;
        t->cap = cap;
    }
    t->items[t->n] = *item;
    t->items[t->n].bytes = t->items[t->n].flops = t->items[t->n].roofline_s = t->items[t->n].measured_s = 0;
    t->items[t->n].count = 0;
    return t->n++;
}

int sol_op_table_add(sol_op_table *t, const sol_op_class_sum *item, sol_err *err)
{
    int i = table_slot(t, item);
    if (i < 0)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    sum_into(&t->items[i], item);
    return 0;
}

/* Op i's entry: the one it went to last step when the class is the same
 * (most ops keep theirs from step to step), else found or appended. */
static int op_slot(sol_op_table *t, int i, const sol_op_class_sum *item)
{
    if (i < t->n_last) {
        int j = t->last[i];
        if (j >= 0 && j < t->n && t->items[j].group == item->group && same_class(&t->items[j].key, &item->key))
            return j;
    }
    int j = table_slot(t, item);
    if (j >= 0 && i < t->n_last)
        t->last[i] = j;
    return j;
}

static int reserve_last(sol_op_table *t, int n)
{
    if (n <= t->n_last)
        return 0;
    int *last = realloc(t->last, (size_t)n * sizeof *last);
    if (!last)
        return -1;
    for (int i = t->n_last; i < n; i++)
        last[i] = -1;
    t->last = last;
    t->n_last = n;
    return 0;
}

int sol_op_table_add_step(sol_op_table *t, const sol_plan *plan, const sol_step_cost *cost, const double *op_s,
                          int n_op_s, double overhead_s, sol_err *err)
{
    int rows = plan->params.batch * plan->params.n_tokens;
    if (reserve_last(t, plan->n_ops))
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    for (int i = 0; i < plan->n_ops; i++) {
        const sol_op *op = &plan->ops[i];
        sol_op_class_sum item = {.group = (int)op->group, .bytes = cost->ops[i].bytes, .flops = cost->ops[i].flops,
                                 .roofline_s = cost->ops[i].time_s, .measured_s = i < n_op_s ? op_s[i] : 0,
                                 .count = 1};
        sol_op_class_of(op, rows, &item.key);
        int j = op_slot(t, i, &item);
        if (j < 0)
            return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
        sum_into(&t->items[j], &item);
    }
    sol_op_class_sum over = {.key = {.kind = SOL_CALIB_OVERHEAD, .rows = rows}, .group = SOL_GROUP_OTHER,
                             .measured_s = overhead_s, .count = plan->n_ops};
    return sol_op_table_add(t, &over, err);
}

void sol_op_table_free(sol_op_table *t)
{
    free(t->items);
    free(t->last);
    memset(t, 0, sizeof *t);
}

/* ---- lookup ----------------------------------------------------------------- */

static int same_phase(int a_rows, int b_rows) { return (a_rows == 1) == (b_rows == 1); }

/* Measured seconds per roofline second for class k (per op when the class
 * has no roofline time), and how it was found; -1 when nothing of the same
 * kind, type and phase was measured. */
static int class_scale(const sol_calibration *c, const sol_op_class *k, sol_op_class_sum *found, int *match)
{
    const sol_op_table *t = &c->classes;
    int best = -1, best_dist = 0;
    sol_op_class_sum pooled = {.key = *k};
    for (int i = 0; i < t->n; i++) {
        const sol_op_class *ck = &t->items[i].key;
        if (ck->kind != k->kind || strcmp(ck->dtype, k->dtype) || !same_phase(ck->rows, k->rows))
            continue;
        sum_into(&pooled, &t->items[i]);
        int dist = abs(ck->size_class - k->size_class);
        if (ck->rows == k->rows && (best < 0 || dist < best_dist)) {
            best = i;
            best_dist = dist;
        }
    }
    if (pooled.count == 0)
        return -1;
    *found = best >= 0 ? t->items[best] : pooled;
    *match = best < 0 ? 2 : best_dist > 0;
    return 0;
}

static double scaled_time(const sol_op_class_sum *cls, double roofline_s, long long count)
{
    if (cls->roofline_s > 0)
        return roofline_s * cls->measured_s / cls->roofline_s;
    return cls->count > 0 ? (double)count * cls->measured_s / (double)cls->count : 0;
}

static int missing(const sol_op_class *k, sol_err *err)
{
    return sol_fail(err, SOL_ERR_RUNTIME, "no calibration for %s%s%s %s", sol_op_class_kind_name(k->kind),
                    k->dtype[0] ? " " : "", k->dtype, k->rows == 1 ? "decode" : "prefill");
}

static void count_match(sol_calibrated_step *out, int match)
{
    if (match == 0)
        out->exact++;
    else if (match == 1)
        out->nearest++;
    else
        out->pooled++;
}

/* Adds the time of count ops of class k (roofline_s summed) in group. An
 * unmeasured overhead adds nothing: it is no op the plan needs. */
static int add_class(const sol_calibration *c, const sol_op_class *k, int group, double roofline_s, long long count,
                     sol_calibrated_step *out, sol_err *err)
{
    sol_op_class_sum cls;
    int match;
    if (class_scale(c, k, &cls, &match))
        return k->kind == SOL_CALIB_OVERHEAD ? 0 : missing(k, err);
    double t = scaled_time(&cls, roofline_s, count);
    out->time_s += t;
    if (k->kind == SOL_CALIB_OVERHEAD)
        out->overhead_s += t;
    else
        count_match(out, match);
    if (group >= 0 && group < SOL_GROUP_COUNT)
        out->group_s[group] += t;
    return 0;
}

int sol_calibrated_plan(const sol_calibration *c, const sol_plan *plan, const sol_step_cost *cost,
                        sol_calibrated_step *out, sol_err *err)
{
    memset(out, 0, sizeof *out);
    int rows = plan->params.batch * plan->params.n_tokens, rc = 0;
    for (int i = 0; i < plan->n_ops && !rc; i++) {
        sol_op_class k;
        sol_op_class_of(&plan->ops[i], rows, &k);
        rc = add_class(c, &k, (int)plan->ops[i].group, cost->ops[i].time_s, 1, out, err);
    }
    sol_op_class over = {.kind = SOL_CALIB_OVERHEAD, .rows = rows};
    return rc ? rc : add_class(c, &over, SOL_GROUP_OTHER, 0, plan->n_ops, out, err);
}

int sol_calibrated_table(const sol_calibration *c, const sol_op_table *t, sol_calibrated_step *out, sol_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = 0;
    for (int i = 0; i < t->n && !rc; i++) {
        const sol_op_class_sum *it = &t->items[i];
        rc = add_class(c, &it->key, it->group, it->roofline_s, it->count, out, err);
        out->measured_s += it->measured_s;
        if (it->group >= 0 && it->group < SOL_GROUP_COUNT)
            out->group_measured_s[it->group] += it->measured_s;
    }
    return rc;
}
