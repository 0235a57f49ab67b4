/* The frame model: a step's measured op times joined with the analyzer's
 * prediction and summed per op group, a window of recent decode steps, and
 * the numbers one screen shows. Pure data; no terminal, no engine. */
#include <stdlib.h>
#include <string.h>

#include "tui/tui.h"

const char *sol_phase_name(sol_phase p)
{
    switch (p) {
    case SOL_PHASE_PREFILL: return "prefill";
    case SOL_PHASE_DECODE: return "decoding";
    case SOL_PHASE_PAUSED: return "paused";
    case SOL_PHASE_STOPPING: return "stopping";
    case SOL_PHASE_DONE: return "done";
    case SOL_PHASE_FAILED: return "failed";
    }
    return "?";
}

const char *sol_sort_name(sol_sort s)
{
    static const char *const names[SOL_SORT_COUNT] = {"plan", "time", "% SOL", "lost"};
    return s >= 0 && s < SOL_SORT_COUNT ? names[s] : "?";
}

void sol_frame_totals_add(sol_frame_totals *sum, const sol_frame_totals *t)
{
    sum->n_ops += t->n_ops;
    sum->predicted_s += t->predicted_s;
    sum->fused_s += t->fused_s;
    sum->achieved_s += t->achieved_s;
    sum->bytes += t->bytes;
    sum->flops += t->flops;
    for (int b = 0; b < 3; b++)
        sum->bound_s[b] += t->bound_s[b];
}

static void add_op(sol_frame_totals *t, const sol_op_cost *c, double achieved_s)
{
    t->n_ops++;
    t->predicted_s += c->time_s;
    t->achieved_s += achieved_s;
    t->bytes += c->bytes;
    t->flops += c->flops;
    if ((int)c->bound >= 0 && (int)c->bound < 3)
        t->bound_s[c->bound] += c->time_s;
}

int sol_frame_step_build(const sol_plan *plan, const sol_step_cost *cost, const sol_step_timing *timing,
                         sol_frame_op *ops, int ops_cap, sol_frame_step *out, sol_err *err)
{
    memset(out, 0, sizeof *out);
    if (timing->n_ops != plan->n_ops || !timing->op_s)
        return sol_fail(err, SOL_ERR_RUNTIME, "timing snapshot of step %llu holds %d op times, the plan has %d ops",
                        (unsigned long long)timing->step, timing->n_ops, plan->n_ops);
    out->step = timing->step;
    out->pos = timing->pos;
    out->n_tokens = timing->n_tokens;
    out->prefill = timing->n_tokens > 1;
    out->step_s = timing->total_s;
    out->ops_step = timing->ops_timed ? timing->step : 0;
    out->counted_step = timing->counted_step;
    out->counted_bytes = timing->dram_read_bytes + timing->dram_write_bytes;
    out->counted_step_s = timing->counted_step_s;
    out->total.fused_s = cost->sol_time_s;
    out->ops = ops;
    for (int i = 0; i < plan->n_ops; i++) {
        const sol_op *op = &plan->ops[i];
        const sol_op_cost *c = &cost->ops[i];
        double achieved = timing->op_s[i];
        int g = (int)op->group >= 0 && op->group < SOL_GROUP_COUNT ? (int)op->group : SOL_GROUP_OTHER;
        add_op(&out->groups[g], c, achieved);
        add_op(&out->total, c, achieved);
        if (ops && out->n_ops < ops_cap) {
            sol_frame_op *o = &ops[out->n_ops++];
            memcpy(o->name, op->name, sizeof o->name);
            o->name[sizeof o->name - 1] = '\0';
            o->layer = op->layer;
            o->group = (sol_op_group)g;
            o->bound = c->bound;
            o->achieved_s = achieved;
            o->predicted_s = c->time_s;
            o->bytes = c->bytes;
            o->flops = c->flops;
        }
    }
    return 0;
}

double sol_frame_sol_percent(const sol_frame_totals *t)
{
    double sol_s = t->fused_s > 0 ? t->fused_s : t->predicted_s;
    return t->achieved_s > 0 ? 100.0 * sol_s / t->achieved_s : 0;
}

double sol_frame_gbs(const sol_frame_totals *t) { return t->achieved_s > 0 ? t->bytes / t->achieved_s / 1e9 : 0; }

double sol_frame_gflops(const sol_frame_totals *t) { return t->achieved_s > 0 ? t->flops / t->achieved_s / 1e9 : 0; }

double sol_frame_intensity(const sol_frame_totals *t) { return t->bytes > 0 ? t->flops / t->bytes : 0; }

sol_bound sol_frame_bound(const sol_frame_totals *t)
{
    sol_bound best = SOL_BOUND_MEMORY;
    for (int b = 1; b < 3; b++)
        if (t->bound_s[b] > t->bound_s[best])
            best = (sol_bound)b;
    return best;
}

/* ---- feed --------------------------------------------------------------- */

void sol_frame_feed_init(sol_frame_feed *feed) { memset(feed, 0, sizeof *feed); }

void sol_frame_feed_push(sol_frame_feed *feed, const sol_frame_step *step)
{
    feed->last = *step;
    feed->last.ops = NULL; /* the detail lives in the caller's buffer */
    feed->last.n_ops = 0;
    feed->has_last = 1;
    if (step->prefill)
        return; /* prefill chunks are shown until the first decode step, never averaged */
    feed->window[feed->window_next] = feed->last;
    feed->window_next = (feed->window_next + 1) % SOL_FRAME_WINDOW;
    if (feed->n_window < SOL_FRAME_WINDOW)
        feed->n_window++;
    feed->history[feed->history_next] = step->step_s > 0 ? 1.0 / step->step_s : 0;
    feed->history_next = (feed->history_next + 1) % SOL_FRAME_HISTORY;
    if (feed->n_history < SOL_FRAME_HISTORY)
        feed->n_history++;
    feed->decode_steps++;
}

/* ---- frame -------------------------------------------------------------- */

void sol_frame_build(const sol_frame_feed *feed, const sol_frame_info *info, sol_frame *f)
{
    f->info = info;
    f->total = (sol_frame_totals){0};
    f->n_rows = 0;
    f->window_steps = f->window_tokens = 0;
    f->prefill_rows = 0;
    f->tok_s = f->sol_tok_s = f->unfused_tok_s = f->gbs = f->sol_pct = f->bw_pct = 0;
    f->step = 0;
    f->pos = 0;
    f->counted_step = 0;
    f->counted_gbs = 0;
    f->counters_off = feed->has_last && feed->last.counters_off;
    if (feed->has_last && feed->last.counted_step > 0 && feed->last.counted_step_s > 0) {
        f->counted_step = feed->last.counted_step;
        f->counted_gbs = feed->last.counted_bytes / feed->last.counted_step_s / 1e9;
    }
    sol_frame_totals groups[SOL_GROUP_COUNT] = {{0}};
    if (feed->n_window > 0) {
        for (int i = 0; i < feed->n_window; i++) {
            const sol_frame_step *s = &feed->window[i];
            sol_frame_totals_add(&f->total, &s->total);
            for (int g = 0; g < SOL_GROUP_COUNT; g++)
                sol_frame_totals_add(&groups[g], &s->groups[g]);
            f->window_tokens += s->n_tokens;
        }
        f->window_steps = feed->n_window;
    } else if (feed->has_last) {
        f->total = feed->last.total;
        memcpy(groups, feed->last.groups, sizeof groups);
        f->window_steps = 1;
        f->window_tokens = feed->last.n_tokens;
        f->prefill_rows = 1;
    }
    if (feed->has_last) {
        f->step = feed->last.step;
        f->pos = feed->last.pos + feed->last.n_tokens;
    }
    for (int g = 0; g < SOL_GROUP_COUNT; g++) {
        if (groups[g].n_ops == 0)
            continue;
        sol_frame_row *r = &f->rows[f->n_rows++];
        r->group = (sol_op_group)g;
        r->t = groups[g];
        r->share = f->total.achieved_s > 0 ? groups[g].achieved_s / f->total.achieved_s : 0;
    }
    if (f->total.achieved_s > 0) {
        f->tok_s = f->window_tokens / f->total.achieved_s;
        f->gbs = sol_frame_gbs(&f->total);
        f->sol_pct = sol_frame_sol_percent(&f->total);
        if (info && info->mem_bw > 0)
            f->bw_pct = 100.0 * f->gbs * 1e9 / info->mem_bw;
    }
    if (f->total.fused_s > 0)
        f->sol_tok_s = f->window_tokens / f->total.fused_s;
    if (f->total.predicted_s > 0)
        f->unfused_tok_s = f->window_tokens / f->total.predicted_s;
    /* history, oldest first */
    f->n_history = feed->n_history;
    int first = (feed->history_next - feed->n_history + SOL_FRAME_HISTORY) % SOL_FRAME_HISTORY;
    for (int i = 0; i < feed->n_history; i++)
        f->history[i] = feed->history[(first + i) % SOL_FRAME_HISTORY];
    sol_frame_sort(f);
}

static double sort_key(const sol_frame_row *r, sol_sort s)
{
    switch (s) {
    case SOL_SORT_TIME: return -r->t.achieved_s;                      /* slowest first */
    case SOL_SORT_SOL: return sol_frame_sol_percent(&r->t);           /* furthest from SOL first */
    case SOL_SORT_GAP: return -(r->t.achieved_s - r->t.predicted_s); /* most time lost first */
    default: return (double)r->group;
    }
}

void sol_frame_sort(sol_frame *f)
{
    /* insertion sort: at most SOL_GROUP_COUNT rows, stable (ties keep plan order) */
    for (int i = 1; i < f->n_rows; i++) {
        sol_frame_row r = f->rows[i];
        double k = sort_key(&r, f->sort);
        int j = i - 1;
        while (j >= 0 && (sort_key(&f->rows[j], f->sort) > k ||
                          (sort_key(&f->rows[j], f->sort) == k && f->rows[j].group > r.group))) {
            f->rows[j + 1] = f->rows[j];
            j--;
        }
        f->rows[j + 1] = r;
    }
}
