/* SVG charts (plot.h): the roofline of an analysis and line charts for
 * sweeps, written by hand with svg.h; the format is small and a dependency
 * is not. */
#include "analyzer/plot.h"

#include <math.h>
#include <string.h>

#include "analyzer/svg.h"

static const char *const palette[SOL_PLOT_MAX_SERIES] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                                         "#9467bd", "#8c564b", "#e377c2", "#17becf"};
static const char *const decode_colour = "#1f77b4", *const prefill_colour = "#e6550d";

/* ---- roofline ------------------------------------------------------------- */

typedef struct group_point {
    const char *name;
    int prefill;
    double bytes, flops, time_s;
} group_point;

/* A ceiling per distinct peak the ops use; peaks of equal value share one
 * ("fp16/bf16"). */
typedef struct ceiling {
    double flops_per_s;
    char name[48];
} ceiling;

static int collect_groups(const sol_plan *plan, const sol_step_cost *cost, int prefill, group_point *out)
{
    group_point sums[SOL_GROUP_COUNT] = {0};
    for (int i = 0; i < plan->n_ops; i++) {
        group_point *g = &sums[plan->ops[i].group];
        g->bytes += cost->ops[i].bytes;
        g->flops += cost->ops[i].flops;
        g->time_s += cost->ops[i].time_s;
    }
    int n = 0;
    for (int g = 0; g < SOL_GROUP_COUNT; g++) {
        group_point *s = &sums[g];
        double intensity = s->flops / s->bytes, attained = s->flops / s->time_s;
        if (!(intensity > 0 && attained > 0 && isfinite(intensity) && isfinite(attained)))
            continue; /* no bytes or no FLOPs (comm): no place on a roofline */
        s->name = sol_op_group_name((sol_op_group)g);
        s->prefill = prefill;
        out[n++] = *s;
    }
    return n;
}

static void mark_peaks_used(const sol_plan *plan, const sol_step_cost *cost, int *used)
{
    for (int i = 0; i < plan->n_ops; i++)
        if (cost->ops[i].flops > 0 && (unsigned)cost->ops[i].peak_used < SOL_PEAK_COUNT)
            used[cost->ops[i].peak_used] = 1;
}

static void add_ceiling(ceiling *out, int *n, sol_peak p, double value)
{
    for (int i = 0; i < *n; i++)
        if (out[i].flops_per_s == value) {
            size_t len = strlen(out[i].name);
            snprintf(out[i].name + len, sizeof out[i].name - len, "/%s", sol_peak_name(p));
            return;
        }
    out[*n].flops_per_s = value;
    snprintf(out[*n].name, sizeof out[*n].name, "%s", sol_peak_name(p));
    for (int i = (*n)++; i > 0 && out[i].flops_per_s > out[i - 1].flops_per_s; i--) { /* highest first */
        ceiling t = out[i];
        out[i] = out[i - 1];
        out[i - 1] = t;
    }
}

/* The ceilings of the peaks the ops use, whose ridges (peak / bw) are numbers. */
static int collect_ceilings(const sol_analysis *a, double bw, ceiling *out)
{
    int used[SOL_PEAK_COUNT] = {0}, n = 0, any = 0;
    mark_peaks_used(&a->decode, &a->decode_cost, used);
    mark_peaks_used(&a->prefill, &a->prefill_cost, used);
    for (int p = 0; p < SOL_PEAK_COUNT; p++)
        any |= used[p];
    if (!any) { /* no op computes: the activations' peak */
        sol_peak p;
        sol_hw_peak(&a->hw, sol_peak_for(a->cfg.atype), &p);
        used[p] = 1;
    }
    for (int p = 0; p < SOL_PEAK_COUNT; p++) {
        double value = a->hw.peak[p].value, ridge = value / bw;
        if (used[p] && isfinite(value) && value > 0 && isfinite(ridge) && ridge > 0)
            add_ceiling(out, &n, (sol_peak)p, value);
    }
    return n;
}

/* Ranges from the points and each ridge (a decade either side), with room. */
static void fit_roofline(chart *c, const group_point *pts, int n, const ceiling *ceilings, int n_ceilings, double bw)
{
    double x_lo = INFINITY, x_hi = 0, y_lo = INFINITY, y_hi = 0;
    for (int i = 0; i < n_ceilings; i++) {
        double peak = ceilings[i].flops_per_s, ridge = peak / bw;
        x_lo = fmin(x_lo, ridge / 10);
        x_hi = fmax(x_hi, ridge * 10);
        y_lo = fmin(y_lo, peak / 100);
        y_hi = fmax(y_hi, peak * 3);
    }
    for (int i = 0; i < n; i++) {
        double x = pts[i].flops / pts[i].bytes, y = pts[i].flops / pts[i].time_s;
        x_lo = fmin(x_lo, x / 3);
        x_hi = fmax(x_hi, x * 5); /* the labels go to the right */
        y_lo = fmin(y_lo, y / 3);
        y_hi = fmax(y_hi, y * 3);
    }
    svg_fit_log(&c->x, x_lo, x_hi, 0);
    svg_fit_log(&c->y, y_lo, y_hi, 0);
}

/* The slope up to the highest ceiling; returns where it was drawn. */
static segment draw_slope(chart *c, double bw, double top_peak)
{
    double x0 = fmax(c->x.lo, c->y.lo / bw), x1 = top_peak / bw;
    double px0 = svg_axis_px(&c->x, x0), py0 = svg_axis_px(&c->y, bw * x0);
    double px1 = svg_axis_px(&c->x, x1), py1 = svg_axis_px(&c->y, top_peak);
    svg_line(c->f, px0, py0, px1, py1, " class=\"roof\" stroke=\"#222\" stroke-width=\"2\"");
    svg_take_line(c, px0, py0, px1, py1);
    return (segment){px0, py0, px1, py1};
}

/* A label of half-width half along the slope at fraction t of its length,
 * just above it: its centre and its foot and top as lines. */
static void slope_label_at(const segment *slope, double t, double half, double *cx, double *cy, segment *foot,
                           segment *top)
{
    double angle = atan2(slope->y1 - slope->y0, slope->x1 - slope->x0);
    double ux = cos(angle), uy = sin(angle), nx = sin(angle), ny = -cos(angle); /* along; up, off the line */
    *cx = slope->x0 + t * (slope->x1 - slope->x0) + 6 * nx;
    *cy = slope->y0 + t * (slope->y1 - slope->y0) + 6 * ny;
    *foot = (segment){*cx - half * ux, *cy - half * uy, *cx + half * ux, *cy + half * uy};
    *top = (segment){foot->x0 + 10 * nx, foot->y0 + 10 * ny, foot->x1 + 10 * nx, foot->y1 + 10 * ny};
}

/* The bandwidth written along the slope where it covers the fewest markers
 * and labels; later labels keep clear of its foot and top. */
static void label_slope(chart *c, const segment *slope, double bw)
{
    static const double along[] = {0.45, 0.3, 0.6, 0.2, 0.75};
    char bw_text[32], label[48], attrs[96];
    sol_fmt_count(bw_text, sizeof bw_text, bw, "B/s");
    snprintf(label, sizeof label, "memory %s", bw_text);
    double half = svg_text_width(label, SVG_FONT_PX) / 2, cx, cy, best_t = along[0];
    segment foot, top;
    int best_hits = -1;
    for (int k = 0; k < 5 && best_hits != 0; k++) {
        slope_label_at(slope, along[k], half, &cx, &cy, &foot, &top);
        int hits = 0;
        for (int i = 0; i < c->n_taken; i++)
            hits += svg_crosses(c->taken[i], foot) + svg_crosses(c->taken[i], top);
        if (best_hits < 0 || hits < best_hits) {
            best_hits = hits;
            best_t = along[k];
        }
    }
    slope_label_at(slope, best_t, half, &cx, &cy, &foot, &top);
    double angle = atan2(slope->y1 - slope->y0, slope->x1 - slope->x0);
    snprintf(attrs, sizeof attrs, " transform=\"rotate(%.1f %.1f %.1f)\" fill=\"#444\"", angle * 180 / M_PI, cx, cy);
    svg_text(c->f, cx, cy, ANCHOR_MIDDLE, attrs, label);
    svg_take_line(c, foot.x0, foot.y0, foot.x1, foot.y1);
    svg_take_line(c, top.x0, top.y0, top.x1, top.y1);
}

/* A ceiling from its ridge rightwards; the highest solid, the others dashed. */
static void draw_ceiling(chart *c, const ceiling *ceil, int highest, double bw)
{
    double px = svg_axis_px(&c->x, ceil->flops_per_s / bw), py = svg_axis_px(&c->y, ceil->flops_per_s);
    double right = c->plot.x + c->plot.w;
    svg_line(c->f, px, py, right, py,
             highest ? " class=\"roof\" stroke=\"#222\" stroke-width=\"2\""
                     : " class=\"roof\" stroke=\"#222\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"");
    svg_take_line(c, px, py, right, py);
    svg_line(c->f, px, py, px, c->plot.y + c->plot.h, " stroke=\"#999\" stroke-dasharray=\"2 3\"");
    fprintf(c->f, "<circle class=\"ridge\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"#222\"/>\n", px, py);
}

/* Dtype and peak over the ceiling's right end (else below it, else further
 * left), the ridge's intensity beside its dot. After the markers: labels
 * keep off them. */
static void label_ceiling(chart *c, const ceiling *ceil, double bw)
{
    double ridge = ceil->flops_per_s / bw;
    double px = svg_axis_px(&c->x, ridge), py = svg_axis_px(&c->y, ceil->flops_per_s), right = c->plot.x + c->plot.w;
    char value[32], label[96];
    sol_fmt_count(value, sizeof value, ceil->flops_per_s, "FLOP/s");
    snprintf(label, sizeof label, "%s %s", ceil->name, value);
    spot ceiling_spots[8] = {{right - 6, py - 6, ANCHOR_END}, {right - 6, py + 15, ANCHOR_END}};
    int n = 2;
    for (double x = right - 86; n < 8 && x - svg_text_width(label, SVG_FONT_PX) > px; x -= 80)
        ceiling_spots[n++] = (spot){x, py - 6, ANCHOR_END};
    svg_place_text(c, ceiling_spots, n, " class=\"ceiling\" font-weight=\"bold\"", label, NAN, NAN);
    snprintf(label, sizeof label, ridge >= 10 && ridge < 1e6 ? "ridge %.0f FLOP/B" : "ridge %.3g FLOP/B", ridge);
    const spot ridge_spots[] = {{px - 8, py - 6, ANCHOR_END},
                                {px - 8, py + 16, ANCHOR_END},
                                {px + 8, py + 16, ANCHOR_START},
                                {px - 8, py + 30, ANCHOR_END}};
    svg_place_text(c, ridge_spots, 4, " class=\"ridge-label\" fill=\"#444\"", label, px, py);
}

static void point_tooltip(FILE *f, const group_point *p)
{
    char attained[32], text[160];
    sol_fmt_count(attained, sizeof attained, p->flops / p->time_s, "FLOP/s");
    snprintf(text, sizeof text, "%s %s: %.3g FLOP/B, %s", p->prefill ? "prefill" : "decode", p->name,
             p->flops / p->bytes, attained);
    fputs("><title>", f);
    svg_escaped(f, text);
}

/* Names of the unlabelled points within a few pixels of point i, once each
 * ("attn.qkv, ffn.down"): coincident markers share one label. Marks them done. */
static void cluster_label(const double *px, const double *py, const group_point *pts, int n, int i, int *done,
                          char *label, size_t cap)
{
    const char *names[2 * SOL_GROUP_COUNT];
    int n_names = 0;
    label[0] = 0;
    for (int j = i; j < n; j++) {
        if (done[j] || fabs(px[j] - px[i]) > 4 || fabs(py[j] - py[i]) > 4)
            continue;
        done[j] = 1;
        int seen = 0;
        for (int k = 0; k < n_names; k++)
            seen |= !strcmp(names[k], pts[j].name);
        if (seen)
            continue;
        names[n_names++] = pts[j].name;
        size_t len = strlen(label);
        snprintf(label + len, cap - len, "%s%s", len ? ", " : "", pts[j].name);
    }
}

/* Markers before any label, so that no label covers another group's marker. */
static void draw_points(chart *c, const group_point *pts, int n)
{
    for (int i = 0; i < n; i++) {
        double x = pts[i].flops / pts[i].bytes, y = pts[i].flops / pts[i].time_s;
        if (!svg_in_range(&c->x, x) || !svg_in_range(&c->y, y))
            continue;
        double px = svg_axis_px(&c->x, x), py = svg_axis_px(&c->y, y);
        svg_mark(c->f, px, py, pts[i].prefill ? MARK_SQUARE : MARK_CIRCLE,
                 pts[i].prefill ? prefill_colour : decode_colour,
                 pts[i].prefill ? " class=\"pt-prefill\"" : " class=\"pt-decode\"");
        point_tooltip(c->f, &pts[i]);
        fputs(pts[i].prefill ? "</title></rect>\n" : "</title></circle>\n", c->f);
        svg_take_marker(c, px, py);
    }
}

static void label_points(chart *c, const group_point *pts, int n)
{
    double px[2 * SOL_GROUP_COUNT], py[2 * SOL_GROUP_COUNT];
    int done[2 * SOL_GROUP_COUNT] = {0}; /* -1: not shown; 1: labelled */
    for (int i = 0; i < n; i++) {
        double x = pts[i].flops / pts[i].bytes, y = pts[i].flops / pts[i].time_s;
        done[i] = svg_in_range(&c->x, x) && svg_in_range(&c->y, y) ? 0 : -1;
        px[i] = svg_axis_px(&c->x, x);
        py[i] = svg_axis_px(&c->y, y);
    }
    for (int i = 0; i < n; i++) {
        if (done[i])
            continue;
        char label[256];
        cluster_label(px, py, pts, n, i, done, label, sizeof label);
        svg_label_point(c, px[i], py[i], label);
    }
}

static void roofline_titles(const sol_analysis *a, char *title, size_t title_cap, char *sub, size_t sub_cap)
{
    const sol_analysis_config *cfg = &a->cfg;
    snprintf(title, title_cap, "%s on %s", a->model.name, a->hw.display_name[0] ? a->hw.display_name : a->hw.name);
    int n = snprintf(sub, sub_cap,
                     "decode: batch %d, context %lld | prefill: %d tokens x batch %d | weights %s, "
                     "activations %s",
                     cfg->batch, (long long)cfg->ctx, cfg->prompt, cfg->batch, sol_dtype_name(cfg->wtype),
                     sol_dtype_name(cfg->atype));
    if (cfg->tp > 1 && n > 0 && (size_t)n < sub_cap)
        snprintf(sub + n, sub_cap - (size_t)n, " | tensor parallel x%d", cfg->tp);
}

static void draw_roofline(chart *c, const sol_analysis *a, const ceiling *ceilings, int n_ceilings)
{
    group_point pts[2 * SOL_GROUP_COUNT];
    int n = collect_groups(&a->decode, &a->decode_cost, 0, pts);
    n += collect_groups(&a->prefill, &a->prefill_cost, 1, pts + n);
    double bw = a->hw.mem_bw.value;
    fit_roofline(c, pts, n, ceilings, n_ceilings, bw);
    svg_draw_x_axis(c, "arithmetic intensity (FLOP/byte)", "");
    svg_draw_y_axis(c, "attainable FLOP/s", " ");
    svg_draw_frame(c);
    segment slope = draw_slope(c, bw, ceilings[0].flops_per_s);
    for (int i = 0; i < n_ceilings; i++)
        draw_ceiling(c, &ceilings[i], i == 0, bw);
    const legend_entry legend[] = {{"decode", decode_colour, MARK_CIRCLE}, {"prefill", prefill_colour, MARK_SQUARE}};
    rect box = svg_legend_size(legend, 2);
    box.x = c->plot.x + 10;
    box.y = c->plot.y + 10;
    svg_draw_legend(c, box, legend, 2);
    draw_points(c, pts, n);
    for (int i = 0; i < n_ceilings; i++)
        label_ceiling(c, &ceilings[i], bw);
    label_slope(c, &slope, bw);
    label_points(c, pts, n);
    if (n == 0)
        svg_no_data(c);
}

int sol_plot_roofline(FILE *f, const sol_analysis *a, sol_err *err)
{
    if (!f || !a)
        return sol_fail(err, SOL_ERR_USAGE, "plot: no file or no analysis");
    char title[256], subtitle[256];
    roofline_titles(a, title, sizeof title, subtitle, sizeof subtitle);
    chart c;
    svg_chart_init(&c, f, SOL_PLOT_LOG10, SOL_PLOT_LOG10);
    svg_begin(f, title);
    svg_title(f, title, subtitle);
    double bw = a->hw.mem_bw.value;
    ceiling ceilings[SOL_PEAK_COUNT];
    int n_ceilings = collect_ceilings(a, bw, ceilings);
    if (n_ceilings > 0 && isfinite(bw) && bw > 0)
        draw_roofline(&c, a, ceilings, n_ceilings);
    else
        svg_no_data(&c); /* no roof to draw */
    return svg_end(f, err);
}

/* ---- line charts ---------------------------------------------------------- */

static int check_spec(const sol_plot_xy_spec *s, sol_err *err)
{
    if (s->n_series < 0 || s->n_series > SOL_PLOT_MAX_SERIES)
        return sol_fail(err, SOL_ERR_USAGE, "plot: %d series (at most %d)", s->n_series, SOL_PLOT_MAX_SERIES);
    if ((s->n_series > 0 && !s->series) || s->n_markers < 0 || (s->n_markers > 0 && !s->markers))
        return sol_fail(err, SOL_ERR_USAGE, "plot: series or markers missing");
    for (int i = 0; i < s->n_series; i++)
        if (s->series[i].n < 0 || (s->series[i].n > 0 && (!s->series[i].x || !s->series[i].y)))
            return sol_fail(err, SOL_ERR_USAGE, "plot: series %d has no points", i);
    if ((unsigned)s->x_scale > SOL_PLOT_LOG10 || (unsigned)s->y_scale > SOL_PLOT_LOG10)
        return sol_fail(err, SOL_ERR_USAGE, "plot: unknown axis scale");
    return SOL_OK;
}

static int point_drawable(const sol_plot_xy_spec *s, const sol_plot_series *series, int i)
{
    return svg_drawable(s->x_scale, series->x[i]) && svg_drawable(s->y_scale, series->y[i]);
}

/* Where point i of series k is drawn; 0 when it is not. */
static int series_point_px(const chart *c, const sol_plot_xy_spec *s, int k, int i, double *px, double *py)
{
    const sol_plot_series *series = &s->series[k];
    if (!point_drawable(s, series, i) || !svg_in_range(&c->x, series->x[i]) || !svg_in_range(&c->y, series->y[i]))
        return 0;
    *px = svg_axis_px(&c->x, series->x[i]);
    *py = svg_axis_px(&c->y, series->y[i]);
    return 1;
}

/* Data extents; returns the number of drawable points. Marker lines widen x. */
static int xy_extent(const sol_plot_xy_spec *s, double *x_lo, double *x_hi, double *y_lo, double *y_hi)
{
    int n = 0;
    *x_lo = *y_lo = INFINITY;
    *x_hi = *y_hi = -INFINITY;
    for (int k = 0; k < s->n_series; k++)
        for (int i = 0; i < s->series[k].n; i++) {
            if (!point_drawable(s, &s->series[k], i))
                continue;
            *x_lo = fmin(*x_lo, s->series[k].x[i]);
            *x_hi = fmax(*x_hi, s->series[k].x[i]);
            *y_lo = fmin(*y_lo, s->series[k].y[i]);
            *y_hi = fmax(*y_hi, s->series[k].y[i]);
            n++;
        }
    for (int m = 0; n > 0 && m < s->n_markers; m++)
        if (svg_drawable(s->x_scale, s->markers[m].x)) {
            *x_lo = fmin(*x_lo, s->markers[m].x);
            *x_hi = fmax(*x_hi, s->markers[m].x);
        }
    return n;
}

static void fit_xy(chart *c, const sol_plot_xy_spec *s, double x_lo, double x_hi, double y_lo, double y_hi)
{
    if (s->x_scale == SOL_PLOT_LINEAR)
        svg_fit_linear(&c->x, x_lo, x_hi);
    else
        svg_fit_log(&c->x, x_lo, x_hi, 1);
    if (s->y_scale == SOL_PLOT_LINEAR) /* from zero: heights compare honestly */
        svg_fit_linear(&c->y, fmin(y_lo, 0), fmax(y_hi * 1.05, 0));
    else
        svg_fit_log(&c->y, y_lo, y_hi, 1);
}

/* How much of the data a legend at r would hide: points and samples along lines. */
static int legend_cover(const chart *c, const sol_plot_xy_spec *s, rect r)
{
    int covered = 0;
    for (int k = 0; k < s->n_series; k++) {
        double px, py, prev_x = NAN, prev_y = NAN;
        for (int i = 0; i < s->series[k].n; i++) {
            if (!series_point_px(c, s, k, i, &px, &py))
                continue;
            if (isnan(prev_x)) { /* the first point: no segment before it */
                prev_x = px;
                prev_y = py;
            }
            for (int t = 0; t <= 8; t++) {
                rect sample = {prev_x + (px - prev_x) * t / 8.0 - 4, prev_y + (py - prev_y) * t / 8.0 - 4, 8, 8};
                covered += svg_overlaps(sample, r);
            }
            prev_x = px;
            prev_y = py;
        }
    }
    return covered;
}

/* The corner of the plot where the legend hides the least. */
static rect place_legend(const chart *c, const sol_plot_xy_spec *s, rect size)
{
    const rect *p = &c->plot;
    double left = p->x + 10, right = p->x + p->w - 10 - size.w, top = p->y + 10, bottom = p->y + p->h - 10 - size.h;
    const double corners[4][2] = {{left, top}, {right, top}, {right, bottom}, {left, bottom}};
    rect best = size;
    int best_cover = -1;
    for (int i = 0; i < 4; i++) {
        rect r = {corners[i][0], corners[i][1], size.w, size.h};
        int cover = legend_cover(c, s, r);
        if (best_cover < 0 || cover < best_cover) {
            best = r;
            best_cover = cover;
        }
    }
    return best;
}

/* The points in order, joined, with a dot on each; labels keep off the lines. */
static void draw_series(chart *c, const sol_plot_xy_spec *s, int k)
{
    double px, py, prev_x = NAN, prev_y = NAN;
    fprintf(c->f,
            "<g class=\"series\" fill=\"%s\">\n<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
            "stroke-linejoin=\"round\" points=\"",
            palette[k], palette[k]);
    for (int i = 0, first = 1; i < s->series[k].n; i++)
        if (series_point_px(c, s, k, i, &px, &py)) {
            fprintf(c->f, "%s%.1f,%.1f", first ? "" : " ", px, py);
            first = 0;
        }
    fputs("\"/>\n", c->f);
    for (int i = 0; i < s->series[k].n; i++) {
        if (!series_point_px(c, s, k, i, &px, &py))
            continue;
        fprintf(c->f, "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\"/>\n", px, py);
        if (!isnan(prev_x))
            svg_take_line(c, prev_x, prev_y, px, py);
        prev_x = px;
        prev_y = py;
    }
    fputs("</g>\n", c->f);
}

/* A dashed vertical line; its label near the top, beside it, rows apart. */
static void draw_marker(chart *c, const sol_plot_marker *m)
{
    if (!svg_in_range(&c->x, m->x))
        return;
    double px = svg_axis_px(&c->x, m->x), top = c->plot.y;
    svg_line(c->f, px, top, px, top + c->plot.h, " class=\"marker\" stroke=\"#555\" stroke-dasharray=\"5 4\"");
    svg_take(c, (rect){px - 1, top, 2, c->plot.h});
    spot spots[12];
    for (int row = 0; row < 6; row++) {
        spots[2 * row] = (spot){px + 5, top + 16 + 16.0 * row, ANCHOR_START};
        spots[2 * row + 1] = (spot){px - 5, top + 16 + 16.0 * row, ANCHOR_END};
    }
    svg_place_text(c, spots, 12, " fill=\"#333\"", m->label ? m->label : "", NAN, NAN);
}

static void draw_xy(chart *c, const sol_plot_xy_spec *s, double x_lo, double x_hi, double y_lo, double y_hi)
{
    fit_xy(c, s, x_lo, x_hi, y_lo, y_hi);
    svg_draw_x_axis(c, s->x_label ? s->x_label : "", " ");
    svg_draw_y_axis(c, s->y_label ? s->y_label : "", " ");
    svg_draw_frame(c);
    legend_entry legend[SOL_PLOT_MAX_SERIES];
    for (int k = 0; k < s->n_series; k++) {
        legend[k] = (legend_entry){s->series[k].name ? s->series[k].name : "", palette[k], MARK_LINE};
        draw_series(c, s, k);
    }
    rect box = place_legend(c, s, svg_legend_size(legend, s->n_series));
    svg_draw_legend(c, box, legend, s->n_series);
    for (int m = 0; m < s->n_markers; m++)
        draw_marker(c, &s->markers[m]);
}

int sol_plot_xy(FILE *f, const sol_plot_xy_spec *spec, sol_err *err)
{
    if (!f || !spec)
        return sol_fail(err, SOL_ERR_USAGE, "plot: no file or no chart");
    int rc = check_spec(spec, err);
    if (rc)
        return rc;
    const char *title = spec->title ? spec->title : "";
    chart c;
    svg_chart_init(&c, f, spec->x_scale, spec->y_scale);
    svg_begin(f, title);
    svg_title(f, title, NULL);
    double x_lo, x_hi, y_lo, y_hi;
    if (xy_extent(spec, &x_lo, &x_hi, &y_lo, &y_hi) > 0)
        draw_xy(&c, spec, x_lo, x_hi, y_lo, y_hi);
    else
        svg_no_data(&c);
    return svg_end(f, err);
}
