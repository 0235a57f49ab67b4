/* SVG charts (plot.h): the roofline of an analysis and line charts for
 * sweeps, written by hand; the format is small and a dependency is not. */
#include "analyzer/plot.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "util/utf8.h"

#define CANVAS_W 800
#define CANVAS_H 500
#define FONT_PX 12.0
#define MAX_TAKEN 256 /* labels and markers a chart keeps clear of each other */
#define MAX_LINES 256 /* lines that labels keep clear of */
#define MAX_TICKS 40
#define MAX_LOG10_SPAN 15 /* decades; data spread wider loses its low end */
#define MAX_LOG2_SPAN 48
#define MAX_LINEAR 1e300 /* larger magnitudes would overflow the axis span */

static const char *const palette[SOL_PLOT_MAX_SERIES] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                                         "#9467bd", "#8c564b", "#e377c2", "#17becf"};
static const char *const decode_colour = "#1f77b4", *const prefill_colour = "#e6550d";

typedef struct rect {
    double x, y, w, h;
} rect;

typedef enum anchor { ANCHOR_START, ANCHOR_END, ANCHOR_MIDDLE } anchor;

/* Where a label may go: its anchor point and alignment; a spot away from
 * its point has a leader line to it. */
typedef struct spot {
    double x, y;
    anchor align;
    int leader;
} spot;

typedef struct segment {
    double x0, y0, x1, y1;
} segment;

typedef struct axis {
    sol_plot_scale scale;
    double lo, hi;       /* values at the two ends */
    double step;         /* between ticks: a value (linear) or an exponent (log) */
    double px_lo, px_hi; /* where lo and hi are drawn */
} axis;

typedef struct chart {
    FILE *f;
    rect plot;
    axis x, y;
    rect taken[MAX_TAKEN];
    int n_taken;
    segment lines[MAX_LINES];
    int n_lines;
    double marker_x[MAX_TAKEN], marker_y[MAX_TAKEN]; /* centres of the data markers */
    int n_markers;
} chart;

/* ---- text --------------------------------------------------------------- */

static void put_code_point(FILE *f, const char *bytes, int len, uint32_t cp)
{
    switch (cp) {
    case '&': fputs("&amp;", f); return;
    case '<': fputs("&lt;", f); return;
    case '>': fputs("&gt;", f); return;
    case '"': fputs("&quot;", f); return;
    case '\'': fputs("&apos;", f); return;
    }
    /* XML 1.0 has no controls but tab and newlines, nor U+FFFE/U+FFFF */
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0xfffe || cp == 0xffff)
        fputc('?', f);
    else
        fwrite(bytes, 1, (size_t)len, f);
}

/* Text from files as XML character data; bytes that are not UTF-8 become '?'. */
static void put_escaped(FILE *f, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = sol_utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (len == 0) {
            fputc('?', f);
            i++;
            continue;
        }
        put_code_point(f, s + i, len, cp);
        i += (size_t)len;
    }
}

static double text_width(const char *s, double font_px)
{
    int chars = 0;
    for (; *s; s++)
        chars += ((unsigned char)*s & 0xc0) != 0x80;
    return chars * 0.6 * font_px; /* an average sans-serif glyph */
}

static const char *anchor_name(anchor a)
{
    return a == ANCHOR_END ? "end" : a == ANCHOR_MIDDLE ? "middle" : "start";
}

/* attrs: extra attributes we wrote ourselves (size, colour, class). */
static void put_text(FILE *f, double x, double y, anchor align, const char *attrs, const char *s)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s>", x, y, anchor_name(align), attrs);
    put_escaped(f, s);
    fputs("</text>\n", f);
}

static rect text_box(double x, double y, anchor align, const char *s, double font_px)
{
    double w = text_width(s, font_px);
    double left = align == ANCHOR_END ? x - w : align == ANCHOR_MIDDLE ? x - w / 2 : x;
    return (rect){left, y - 0.75 * font_px, w, 0.95 * font_px};
}

/* "1.5k" or, with sep " ", "1.5 k"; small numbers as %g does them. */
static void fmt_si(char *buf, size_t cap, double v, const char *sep)
{
    static const char *const prefixes[] = {"", "k", "M", "G", "T", "P", "E"};
    int p = 0;
    while (fabs(v) >= 999.9995 && p < 6) {
        v /= 1000;
        p++;
    }
    snprintf(buf, cap, "%.3g%s%s", v, p ? sep : "", prefixes[p]);
}

/* Powers of two the way contexts are written: 4096 -> "4k", 131072 -> "128k". */
static void fmt_binary(char *buf, size_t cap, double v)
{
    static const char *const prefixes[] = {"", "k", "M", "G", "T"};
    int p = 0;
    while (v >= 1024 && p < 4) {
        v /= 1024;
        p++;
    }
    snprintf(buf, cap, "%.4g%s", v, prefixes[p]);
}

/* ---- boxes kept clear ----------------------------------------------------- */

static int overlaps(rect a, rect b)
{
    return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

static int contains(rect outer, rect r)
{
    return r.x >= outer.x && r.y >= outer.y && r.x + r.w <= outer.x + outer.w && r.y + r.h <= outer.y + outer.h;
}

static void take(chart *c, rect r)
{
    if (c->n_taken < MAX_TAKEN)
        c->taken[c->n_taken++] = r;
}

static void take_marker(chart *c, double px, double py)
{
    take(c, (rect){px - 5, py - 5, 10, 10});
    if (c->n_markers < MAX_TAKEN) {
        c->marker_x[c->n_markers] = px;
        c->marker_y[c->n_markers++] = py;
    }
}

static double distance_to(rect r, double x, double y)
{
    double dx = fmax(fmax(r.x - x, x - (r.x + r.w)), 0), dy = fmax(fmax(r.y - y, y - (r.y + r.h)), 0);
    return hypot(dx, dy);
}

static void take_line(chart *c, double x0, double y0, double x1, double y1)
{
    if (c->n_lines < MAX_LINES)
        c->lines[c->n_lines++] = (segment){x0, y0, x1, y1};
}

/* Whether s passes through r (Liang-Barsky clipping). */
static int crosses(rect r, segment s)
{
    double dx = s.x1 - s.x0, dy = s.y1 - s.y0, t0 = 0, t1 = 1;
    const double p[4] = {-dx, dx, -dy, dy};
    const double q[4] = {s.x0 - r.x, r.x + r.w - s.x0, s.y0 - r.y, r.y + r.h - s.y0};
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0)
                return 0;
            continue;
        }
        double t = q[i] / p[i];
        if (p[i] < 0 ? t > t1 : t < t0)
            return 0;
        if (p[i] < 0)
            t0 = fmax(t0, t);
        else
            t1 = fmin(t1, t);
    }
    return 1;
}

/* From near the point (clear of its marker) to the label's nearest edge. */
static segment leader_of(rect box, double px, double py)
{
    double ex = fmin(fmax(px, box.x - 2), box.x + box.w + 2), ey = fmin(fmax(py, box.y - 2), box.y + box.h + 2);
    double d = hypot(ex - px, ey - py), start = d > 7 ? 7 / d : 0;
    return (segment){px + (ex - px) * start, py + (ey - py) * start, ex, ey};
}

/* What a label at sp would spoil: text or markers it covers count most,
 * then a label nearer another marker than its own (which reads as that
 * marker's), lines it crosses, its leader's crossings; 0 is a clean spot. */
static int spot_penalty(const chart *c, spot sp, const char *s, double px, double py)
{
    rect r = text_box(sp.x, sp.y, sp.align, s, FONT_PX);
    if (!contains(c->plot, r))
        return 1000000;
    int penalty = 0;
    for (int i = 0; i < c->n_taken; i++)
        penalty += 8 * overlaps(r, c->taken[i]);
    for (int i = 0; i < c->n_lines; i++)
        penalty += 2 * crosses(r, c->lines[i]);
    if (sp.leader) {
        segment leader = leader_of(r, px, py);
        for (int i = 0; i < c->n_taken; i++)
            penalty += 3 * crosses(c->taken[i], leader);
        penalty += 1; /* a leader is worse than a label beside its point */
        return penalty;
    }
    if (isnan(px)) /* a label of no point */
        return penalty;
    double own = distance_to(r, px, py);
    for (int i = 0; i < c->n_markers; i++)
        if (distance_to(r, c->marker_x[i], c->marker_y[i]) + 0.5 < own)
            penalty += 5;
    return penalty;
}

/* Draws s at the spot that spoils least (the first of equals). (px, py):
 * the point leaders go to. */
static void place_text(chart *c, const spot *spots, int n, const char *attrs, const char *s, double px, double py)
{
    int best = 0, best_penalty = -1;
    for (int i = 0; i < n && best_penalty != 0; i++) {
        int penalty = spot_penalty(c, spots[i], s, px, py);
        if (best_penalty < 0 || penalty < best_penalty) {
            best = i;
            best_penalty = penalty;
        }
    }
    rect box = text_box(spots[best].x, spots[best].y, spots[best].align, s, FONT_PX);
    if (spots[best].leader) {
        segment l = leader_of(box, px, py);
        fprintf(c->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-width=\"0.8\"/>\n",
                l.x0, l.y0, l.x1, l.y1);
        take_line(c, l.x0, l.y0, l.x1, l.y1);
    }
    put_text(c->f, spots[best].x, spots[best].y, spots[best].align, attrs, s);
    take(c, box);
}

/* A marker's name beside it (right, above, below, left), else farther
 * away in eight directions with a leader line. */
static void label_point(chart *c, double px, double py, const char *s)
{
    spot spots[8 + 16] = {
        {px + 7, py + 4, ANCHOR_START}, {px + 7, py - 7, ANCHOR_START}, {px + 7, py + 15, ANCHOR_START},
        {px - 7, py + 4, ANCHOR_END},   {px - 7, py - 7, ANCHOR_END},   {px - 7, py + 15, ANCHOR_END},
        {px, py - 10, ANCHOR_MIDDLE},   {px, py + 20, ANCHOR_MIDDLE},
    };
    static const double directions[8][2] = {{1, 0.7}, {0, 1},     {-1, 0.7}, {1, -0.7},
                                            {0, -1},  {-1, -0.7}, {1, 0},    {-1, 0}};
    int n = 8;
    for (int r = 30; r <= 55; r += 25)
        for (int d = 0; d < 8; d++) {
            double dx = directions[d][0], dy = directions[d][1];
            anchor align = dx > 0 ? ANCHOR_START : dx < 0 ? ANCHOR_END : ANCHOR_MIDDLE;
            spots[n++] = (spot){px + r * dx, py + r * dy + 4, align, 1};
        }
    place_text(c, spots, n, " fill=\"#333\"", s, px, py);
}

/* ---- axes ----------------------------------------------------------------- */

static double scaled(sol_plot_scale s, double v)
{
    return s == SOL_PLOT_LOG2 ? log2(v) : s == SOL_PLOT_LOG10 ? log10(v) : v;
}

static double log_base(sol_plot_scale s)
{
    return s == SOL_PLOT_LOG2 ? 2 : 10;
}

/* Whether v has a place on an axis of this scale (log axes: > 0). */
static int drawable(sol_plot_scale s, double v)
{
    if (!isfinite(v))
        return 0;
    return s == SOL_PLOT_LINEAR ? fabs(v) <= MAX_LINEAR : v > 0;
}

static int in_range(const axis *a, double v)
{
    double slack = a->scale == SOL_PLOT_LINEAR ? 1e-9 * (a->hi - a->lo) : 0;
    return drawable(a->scale, v) && v >= a->lo * (a->scale == SOL_PLOT_LINEAR ? 1 : 1 - 1e-9) - slack &&
           v <= a->hi * (a->scale == SOL_PLOT_LINEAR ? 1 : 1 + 1e-9) + slack;
}

/* Every coordinate written comes from here: kept finite, at most a plot's
 * width outside it, whatever v is. */
static double axis_px(const axis *a, double v)
{
    double span = scaled(a->scale, a->hi) - scaled(a->scale, a->lo);
    double t = span > 0 ? (scaled(a->scale, v) - scaled(a->scale, a->lo)) / span : 0.5;
    t = isnan(t) ? 0 : fmin(fmax(t, -1), 2);
    return a->px_lo + t * (a->px_hi - a->px_lo);
}

/* Log axis over [lo, hi] (lo <= hi, both > 0); snap: the ends at whole
 * powers of the base. Ticks at powers, about ten of them at most. */
static void fit_log(axis *a, double lo, double hi, int snap)
{
    double max_span = a->scale == SOL_PLOT_LOG2 ? MAX_LOG2_SPAN : MAX_LOG10_SPAN;
    double limit = a->scale == SOL_PLOT_LOG2 ? 1000 : 300; /* ends stay finite doubles */
    double e_lo = fmin(fmax(scaled(a->scale, lo), -limit), limit);
    double e_hi = fmin(fmax(scaled(a->scale, hi), -limit), limit);
    if (snap) {
        e_lo = floor(e_lo + 1e-9);
        e_hi = ceil(e_hi - 1e-9);
    }
    if (e_hi - e_lo > max_span)
        e_lo = e_hi - max_span;
    if (e_hi - e_lo < 1) { /* one value: a step either side */
        e_lo = floor(e_lo + 1e-9) - (snap ? 1 : 0.5);
        e_hi = ceil(e_hi - 1e-9) + (snap ? 1 : 0.5);
    }
    a->lo = pow(log_base(a->scale), e_lo);
    a->hi = pow(log_base(a->scale), e_hi);
    a->step = ceil((e_hi - e_lo) / (a->scale == SOL_PLOT_LOG2 ? 16 : 10) - 1e-9);
    if (a->step < 1)
        a->step = 1;
}

/* Linear axis: ends at multiples of a 1-2-5 step, about five ticks. */
static void fit_linear(axis *a, double lo, double hi)
{
    if (!(hi > lo)) {
        double pad = lo != 0 ? fabs(lo) * 0.1 : 1;
        lo -= pad;
        hi += pad;
    }
    double raw = fmax((hi - lo) / 5, 1e-290), magnitude = pow(10, floor(log10(raw))); /* no subnormal steps */
    double r = raw / magnitude;
    a->step = (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * magnitude;
    a->lo = floor(lo / a->step) * a->step;
    a->hi = ceil(hi / a->step) * a->step;
}

static int axis_ticks(const axis *a, double *ticks)
{
    int n = 0;
    if (a->scale == SOL_PLOT_LINEAR) {
        double count = round((a->hi - a->lo) / a->step);
        for (int i = 0; i <= count && n < MAX_TICKS; i++) {
            double v = a->lo + i * a->step;
            ticks[n++] = fabs(v) < 1e-9 * a->step ? 0 : v;
        }
        return n;
    }
    double e_hi = scaled(a->scale, a->hi) + 1e-9;
    /* first tick: the first multiple of the step, so ticks stay on round powers */
    double e = ceil((scaled(a->scale, a->lo) - 1e-9) / a->step) * a->step;
    for (; e <= e_hi && n < MAX_TICKS; e += a->step)
        ticks[n++] = pow(log_base(a->scale), e);
    return n;
}

static void tick_label(const axis *a, double v, const char *si_sep, char *buf, size_t cap)
{
    if (a->scale == SOL_PLOT_LOG2)
        fmt_binary(buf, cap, v);
    else
        fmt_si(buf, cap, v, si_sep);
}

static void grid_line(FILE *f, double x1, double y1, double x2, double y2, const char *colour)
{
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1\"/>\n", x1, y1, x2,
            y2, colour);
}

/* Faint lines at 2..9 x 10^k where decades are far enough apart to show them. */
static void minor_grid(chart *c, const axis *a, int vertical)
{
    if (a->scale != SOL_PLOT_LOG10 || a->step != 1)
        return;
    double decade_px = fabs(axis_px(a, 10) - axis_px(a, 1));
    if (decade_px < 40)
        return;
    for (double d = floor(log10(a->lo)); d <= ceil(log10(a->hi)); d++)
        for (int m = 2; m <= 9; m++) {
            double v = m * pow(10, d);
            if (!in_range(a, v))
                continue;
            double p = axis_px(a, v);
            if (vertical)
                grid_line(c->f, p, c->plot.y, p, c->plot.y + c->plot.h, "#f0f0f0");
            else
                grid_line(c->f, c->plot.x, p, c->plot.x + c->plot.w, p, "#f0f0f0");
        }
}

static void draw_x_axis(chart *c, const char *label, const char *si_sep)
{
    double ticks[MAX_TICKS];
    int n = axis_ticks(&c->x, ticks);
    double bottom = c->plot.y + c->plot.h;
    minor_grid(c, &c->x, 1);
    for (int i = 0; i < n; i++) {
        char text[32];
        double px = axis_px(&c->x, ticks[i]);
        grid_line(c->f, px, c->plot.y, px, bottom, "#dddddd");
        tick_label(&c->x, ticks[i], si_sep, text, sizeof text);
        put_text(c->f, px, bottom + 17, ANCHOR_MIDDLE, " class=\"tick\"", text);
    }
    put_text(c->f, c->plot.x + c->plot.w / 2, bottom + 40, ANCHOR_MIDDLE, "", label);
}

static void draw_y_axis(chart *c, const char *label, const char *si_sep)
{
    double ticks[MAX_TICKS];
    int n = axis_ticks(&c->y, ticks);
    minor_grid(c, &c->y, 0);
    for (int i = 0; i < n; i++) {
        char text[32];
        double py = axis_px(&c->y, ticks[i]);
        grid_line(c->f, c->plot.x, py, c->plot.x + c->plot.w, py, "#dddddd");
        tick_label(&c->y, ticks[i], si_sep, text, sizeof text);
        put_text(c->f, c->plot.x - 7, py + 4, ANCHOR_END, " class=\"tick\"", text);
    }
    char attrs[96];
    double mid = c->plot.y + c->plot.h / 2;
    snprintf(attrs, sizeof attrs, " transform=\"rotate(-90 18 %.1f)\"", mid);
    put_text(c->f, 18, mid, ANCHOR_MIDDLE, attrs, label);
}

static void draw_frame(chart *c)
{
    fprintf(c->f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#888\"/>\n",
            c->plot.x, c->plot.y, c->plot.w, c->plot.h);
}

/* ---- the document --------------------------------------------------------- */

static void chart_init(chart *c, FILE *f, sol_plot_scale x_scale, sol_plot_scale y_scale)
{
    memset(c, 0, sizeof *c);
    c->f = f;
    c->plot = (rect){80, 62, CANVAS_W - 80 - 28, CANVAS_H - 62 - 60};
    c->x = (axis){.scale = x_scale, .px_lo = c->plot.x, .px_hi = c->plot.x + c->plot.w};
    c->y = (axis){.scale = y_scale, .px_lo = c->plot.y + c->plot.h, .px_hi = c->plot.y};
}

static void svg_begin(FILE *f, const char *title)
{
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"%.0f\" fill=\"#222\">\n",
            CANVAS_W, CANVAS_H, CANVAS_W, CANVAS_H, FONT_PX);
    fputs("<title>", f);
    put_escaped(f, title);
    fputs("</title>\n", f);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", CANVAS_W, CANVAS_H);
}

/* The title at up to 16 px, smaller when long so it stays on the canvas. */
static void put_title(FILE *f, const char *title, const char *subtitle)
{
    double size = 16, room = CANVAS_W - 24;
    if (text_width(title, size) > room)
        size = fmax(8, room / text_width(title, 1));
    char attrs[64];
    snprintf(attrs, sizeof attrs, " font-size=\"%.1f\" font-weight=\"bold\"", size);
    put_text(f, CANVAS_W / 2.0, 26, ANCHOR_MIDDLE, attrs, title);
    if (subtitle && *subtitle) {
        size = text_width(subtitle, FONT_PX) > room ? fmax(7, room / text_width(subtitle, 1)) : FONT_PX;
        snprintf(attrs, sizeof attrs, " font-size=\"%.1f\" fill=\"#555\"", size);
        put_text(f, CANVAS_W / 2.0, 45, ANCHOR_MIDDLE, attrs, subtitle);
    }
}

static void put_no_data(chart *c)
{
    put_text(c->f, c->plot.x + c->plot.w / 2, c->plot.y + c->plot.h / 2, ANCHOR_MIDDLE,
             " class=\"no-data\" font-size=\"16\" fill=\"#888\"", "no data");
}

static int svg_end(FILE *f, sol_err *err)
{
    fputs("</svg>\n", f);
    if (fflush(f) != 0 || ferror(f))
        return sol_fail(err, SOL_ERR_RUNTIME, "plot: writing the SVG failed");
    return SOL_OK;
}

/* ---- legend --------------------------------------------------------------- */

typedef enum mark_shape { MARK_CIRCLE, MARK_SQUARE, MARK_LINE } mark_shape;

typedef struct legend_entry {
    const char *name;
    const char *colour;
    mark_shape shape;
} legend_entry;

static void put_mark(FILE *f, double x, double y, mark_shape shape, const char *colour, const char *cls)
{
    if (shape == MARK_SQUARE) /* hollow: a circle under it still shows */
        fprintf(f,
                "<rect%s x=\"%.1f\" y=\"%.1f\" width=\"9\" height=\"9\" fill=\"none\" stroke=\"%s\" "
                "stroke-width=\"1.8\"",
                cls, x - 4.5, y - 4.5, colour);
    else
        fprintf(f, "<circle%s cx=\"%.1f\" cy=\"%.1f\" r=\"%s\" fill=\"%s\" stroke=\"#fff\" stroke-width=\"0.8\"", cls,
                x, y, shape == MARK_LINE ? "3" : "4.5", colour);
}

static rect legend_size(const legend_entry *e, int n)
{
    double w = 0;
    for (int i = 0; i < n; i++)
        w = fmax(w, text_width(e[i].name, FONT_PX));
    return (rect){0, 0, w + 44, 10 + 18.0 * n};
}

static void draw_legend(chart *c, rect box, const legend_entry *e, int n)
{
    fprintf(c->f,
            "<g class=\"legend\">\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fff\" "
            "fill-opacity=\"0.9\" stroke=\"#bbb\"/>\n",
            box.x, box.y, box.w, box.h);
    for (int i = 0; i < n; i++) {
        double y = box.y + 14 + 18.0 * i;
        if (e[i].shape == MARK_LINE)
            fprintf(c->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n",
                    box.x + 8, y, box.x + 30, y, e[i].colour);
        put_mark(c->f, box.x + 19, y, e[i].shape, e[i].colour, "");
        fputs("/>\n", c->f);
        put_text(c->f, box.x + 36, y + 4, ANCHOR_START, "", e[i].name);
    }
    fputs("</g>\n", c->f);
    take(c, box);
}

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
    fit_log(&c->x, x_lo, x_hi, 0);
    fit_log(&c->y, y_lo, y_hi, 0);
}

static void put_line(FILE *f, double x1, double y1, double x2, double y2, const char *attrs)
{
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"%s/>\n", x1, y1, x2, y2, attrs);
}

/* The slope up to the highest ceiling; returns where it was drawn. */
static segment draw_slope(chart *c, double bw, double top_peak)
{
    double x0 = fmax(c->x.lo, c->y.lo / bw), x1 = top_peak / bw;
    double px0 = axis_px(&c->x, x0), py0 = axis_px(&c->y, bw * x0);
    double px1 = axis_px(&c->x, x1), py1 = axis_px(&c->y, top_peak);
    put_line(c->f, px0, py0, px1, py1, " class=\"roof\" stroke=\"#222\" stroke-width=\"2\"");
    take_line(c, px0, py0, px1, py1);
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
    double half = text_width(label, FONT_PX) / 2, cx, cy, best_t = along[0];
    segment foot, top;
    int best_hits = -1;
    for (int k = 0; k < 5 && best_hits != 0; k++) {
        slope_label_at(slope, along[k], half, &cx, &cy, &foot, &top);
        int hits = 0;
        for (int i = 0; i < c->n_taken; i++)
            hits += crosses(c->taken[i], foot) + crosses(c->taken[i], top);
        if (best_hits < 0 || hits < best_hits) {
            best_hits = hits;
            best_t = along[k];
        }
    }
    slope_label_at(slope, best_t, half, &cx, &cy, &foot, &top);
    double angle = atan2(slope->y1 - slope->y0, slope->x1 - slope->x0);
    snprintf(attrs, sizeof attrs, " transform=\"rotate(%.1f %.1f %.1f)\" fill=\"#444\"", angle * 180 / M_PI, cx, cy);
    put_text(c->f, cx, cy, ANCHOR_MIDDLE, attrs, label);
    take_line(c, foot.x0, foot.y0, foot.x1, foot.y1);
    take_line(c, top.x0, top.y0, top.x1, top.y1);
}

/* A ceiling from its ridge rightwards; the highest solid, the others dashed. */
static void draw_ceiling(chart *c, const ceiling *ceil, int highest, double bw)
{
    double px = axis_px(&c->x, ceil->flops_per_s / bw), py = axis_px(&c->y, ceil->flops_per_s);
    double right = c->plot.x + c->plot.w;
    put_line(c->f, px, py, right, py,
             highest ? " class=\"roof\" stroke=\"#222\" stroke-width=\"2\""
                     : " class=\"roof\" stroke=\"#222\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"");
    take_line(c, px, py, right, py);
    put_line(c->f, px, py, px, c->plot.y + c->plot.h, " stroke=\"#999\" stroke-dasharray=\"2 3\"");
    fprintf(c->f, "<circle class=\"ridge\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"#222\"/>\n", px, py);
}

/* Dtype and peak over the ceiling's right end (else below it, else further
 * left), the ridge's intensity beside its dot. After the markers: labels
 * keep off them. */
static void label_ceiling(chart *c, const ceiling *ceil, double bw)
{
    double ridge = ceil->flops_per_s / bw;
    double px = axis_px(&c->x, ridge), py = axis_px(&c->y, ceil->flops_per_s), right = c->plot.x + c->plot.w;
    char value[32], label[96];
    sol_fmt_count(value, sizeof value, ceil->flops_per_s, "FLOP/s");
    snprintf(label, sizeof label, "%s %s", ceil->name, value);
    spot ceiling_spots[8] = {{right - 6, py - 6, ANCHOR_END}, {right - 6, py + 15, ANCHOR_END}};
    int n = 2;
    for (double x = right - 86; n < 8 && x - text_width(label, FONT_PX) > px; x -= 80)
        ceiling_spots[n++] = (spot){x, py - 6, ANCHOR_END};
    place_text(c, ceiling_spots, n, " class=\"ceiling\" font-weight=\"bold\"", label, NAN, NAN);
    snprintf(label, sizeof label, ridge >= 10 && ridge < 1e6 ? "ridge %.0f FLOP/B" : "ridge %.3g FLOP/B", ridge);
    const spot ridge_spots[] = {{px - 8, py - 6, ANCHOR_END},
                                {px - 8, py + 16, ANCHOR_END},
                                {px + 8, py + 16, ANCHOR_START},
                                {px - 8, py + 30, ANCHOR_END}};
    place_text(c, ridge_spots, 4, " class=\"ridge-label\" fill=\"#444\"", label, px, py);
}

static void point_tooltip(FILE *f, const group_point *p)
{
    char attained[32], text[160];
    sol_fmt_count(attained, sizeof attained, p->flops / p->time_s, "FLOP/s");
    snprintf(text, sizeof text, "%s %s: %.3g FLOP/B, %s", p->prefill ? "prefill" : "decode", p->name,
             p->flops / p->bytes, attained);
    fputs("><title>", f);
    put_escaped(f, text);
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
        if (!in_range(&c->x, x) || !in_range(&c->y, y))
            continue;
        double px = axis_px(&c->x, x), py = axis_px(&c->y, y);
        put_mark(c->f, px, py, pts[i].prefill ? MARK_SQUARE : MARK_CIRCLE,
                 pts[i].prefill ? prefill_colour : decode_colour,
                 pts[i].prefill ? " class=\"pt-prefill\"" : " class=\"pt-decode\"");
        point_tooltip(c->f, &pts[i]);
        fputs(pts[i].prefill ? "</title></rect>\n" : "</title></circle>\n", c->f);
        take_marker(c, px, py);
    }
}

static void label_points(chart *c, const group_point *pts, int n)
{
    double px[2 * SOL_GROUP_COUNT], py[2 * SOL_GROUP_COUNT];
    int done[2 * SOL_GROUP_COUNT] = {0}; /* -1: not shown; 1: labelled */
    for (int i = 0; i < n; i++) {
        double x = pts[i].flops / pts[i].bytes, y = pts[i].flops / pts[i].time_s;
        done[i] = in_range(&c->x, x) && in_range(&c->y, y) ? 0 : -1;
        px[i] = axis_px(&c->x, x);
        py[i] = axis_px(&c->y, y);
    }
    for (int i = 0; i < n; i++) {
        if (done[i])
            continue;
        char label[256];
        cluster_label(px, py, pts, n, i, done, label, sizeof label);
        label_point(c, px[i], py[i], label);
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
    draw_x_axis(c, "arithmetic intensity (FLOP/byte)", "");
    draw_y_axis(c, "attainable FLOP/s", " ");
    draw_frame(c);
    segment slope = draw_slope(c, bw, ceilings[0].flops_per_s);
    for (int i = 0; i < n_ceilings; i++)
        draw_ceiling(c, &ceilings[i], i == 0, bw);
    const legend_entry legend[] = {{"decode", decode_colour, MARK_CIRCLE}, {"prefill", prefill_colour, MARK_SQUARE}};
    rect box = legend_size(legend, 2);
    box.x = c->plot.x + 10;
    box.y = c->plot.y + 10;
    draw_legend(c, box, legend, 2);
    draw_points(c, pts, n);
    for (int i = 0; i < n_ceilings; i++)
        label_ceiling(c, &ceilings[i], bw);
    label_slope(c, &slope, bw);
    label_points(c, pts, n);
    if (n == 0)
        put_no_data(c);
}

int sol_plot_roofline(FILE *f, const sol_analysis *a, sol_err *err)
{
    if (!f || !a)
        return sol_fail(err, SOL_ERR_USAGE, "plot: no file or no analysis");
    char title[256], subtitle[256];
    roofline_titles(a, title, sizeof title, subtitle, sizeof subtitle);
    chart c;
    chart_init(&c, f, SOL_PLOT_LOG10, SOL_PLOT_LOG10);
    svg_begin(f, title);
    put_title(f, title, subtitle);
    double bw = a->hw.mem_bw.value;
    ceiling ceilings[SOL_PEAK_COUNT];
    int n_ceilings = collect_ceilings(a, bw, ceilings);
    if (n_ceilings > 0 && isfinite(bw) && bw > 0)
        draw_roofline(&c, a, ceilings, n_ceilings);
    else
        put_no_data(&c); /* no roof to draw */
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
    return drawable(s->x_scale, series->x[i]) && drawable(s->y_scale, series->y[i]);
}

/* Where point i of series k is drawn; 0 when it is not. */
static int series_point_px(const chart *c, const sol_plot_xy_spec *s, int k, int i, double *px, double *py)
{
    const sol_plot_series *series = &s->series[k];
    if (!point_drawable(s, series, i) || !in_range(&c->x, series->x[i]) || !in_range(&c->y, series->y[i]))
        return 0;
    *px = axis_px(&c->x, series->x[i]);
    *py = axis_px(&c->y, series->y[i]);
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
        if (drawable(s->x_scale, s->markers[m].x)) {
            *x_lo = fmin(*x_lo, s->markers[m].x);
            *x_hi = fmax(*x_hi, s->markers[m].x);
        }
    return n;
}

static void fit_xy(chart *c, const sol_plot_xy_spec *s, double x_lo, double x_hi, double y_lo, double y_hi)
{
    if (s->x_scale == SOL_PLOT_LINEAR)
        fit_linear(&c->x, x_lo, x_hi);
    else
        fit_log(&c->x, x_lo, x_hi, 1);
    if (s->y_scale == SOL_PLOT_LINEAR) /* from zero: heights compare honestly */
        fit_linear(&c->y, fmin(y_lo, 0), fmax(y_hi * 1.05, 0));
    else
        fit_log(&c->y, y_lo, y_hi, 1);
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
                covered += overlaps(sample, r);
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
            take_line(c, prev_x, prev_y, px, py);
        prev_x = px;
        prev_y = py;
    }
    fputs("</g>\n", c->f);
}

/* A dashed vertical line; its label near the top, beside it, rows apart. */
static void draw_marker(chart *c, const sol_plot_marker *m)
{
    if (!in_range(&c->x, m->x))
        return;
    double px = axis_px(&c->x, m->x), top = c->plot.y;
    put_line(c->f, px, top, px, top + c->plot.h, " class=\"marker\" stroke=\"#555\" stroke-dasharray=\"5 4\"");
    take(c, (rect){px - 1, top, 2, c->plot.h});
    spot spots[12];
    for (int row = 0; row < 6; row++) {
        spots[2 * row] = (spot){px + 5, top + 16 + 16.0 * row, ANCHOR_START};
        spots[2 * row + 1] = (spot){px - 5, top + 16 + 16.0 * row, ANCHOR_END};
    }
    place_text(c, spots, 12, " fill=\"#333\"", m->label ? m->label : "", NAN, NAN);
}

static void draw_xy(chart *c, const sol_plot_xy_spec *s, double x_lo, double x_hi, double y_lo, double y_hi)
{
    fit_xy(c, s, x_lo, x_hi, y_lo, y_hi);
    draw_x_axis(c, s->x_label ? s->x_label : "", " ");
    draw_y_axis(c, s->y_label ? s->y_label : "", " ");
    draw_frame(c);
    legend_entry legend[SOL_PLOT_MAX_SERIES];
    for (int k = 0; k < s->n_series; k++) {
        legend[k] = (legend_entry){s->series[k].name ? s->series[k].name : "", palette[k], MARK_LINE};
        draw_series(c, s, k);
    }
    rect box = place_legend(c, s, legend_size(legend, s->n_series));
    draw_legend(c, box, legend, s->n_series);
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
    chart_init(&c, f, spec->x_scale, spec->y_scale);
    svg_begin(f, title);
    put_title(f, title, NULL);
    double x_lo, x_hi, y_lo, y_hi;
    if (xy_extent(spec, &x_lo, &x_hi, &y_lo, &y_hi) > 0)
        draw_xy(&c, spec, x_lo, x_hi, y_lo, y_hi);
    else
        put_no_data(&c);
    return svg_end(f, err);
}
