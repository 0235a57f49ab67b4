/* The SVG machinery the charts in plot.c share (svg.h): text, labels
 * placed clear of each other, axes, the document and the legend. */
#include "analyzer/svg.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "util/utf8.h"

#define CANVAS_W 800
#define CANVAS_H 500
#define MAX_TICKS 40
#define MAX_LOG10_SPAN 15 /* decades; data spread wider loses its low end */
#define MAX_LOG2_SPAN 48
#define MAX_LINEAR 1e300 /* larger magnitudes would overflow the axis span */

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
void svg_escaped(FILE *f, const char *s)
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

double svg_text_width(const char *s, double font_px)
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
void svg_text(FILE *f, double x, double y, anchor align, const char *attrs, const char *s)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s>", x, y, anchor_name(align), attrs);
    svg_escaped(f, s);
    fputs("</text>\n", f);
}

void svg_line(FILE *f, double x1, double y1, double x2, double y2, const char *attrs)
{
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"%s/>\n", x1, y1, x2, y2, attrs);
}

static rect text_box(double x, double y, anchor align, const char *s, double font_px)
{
    double w = svg_text_width(s, font_px);
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

int svg_overlaps(rect a, rect b)
{
    return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

static int contains(rect outer, rect r)
{
    return r.x >= outer.x && r.y >= outer.y && r.x + r.w <= outer.x + outer.w && r.y + r.h <= outer.y + outer.h;
}

void svg_take(chart *c, rect r)
{
    if (c->n_taken < SVG_MAX_TAKEN)
        c->taken[c->n_taken++] = r;
}

void svg_take_marker(chart *c, double px, double py)
{
    svg_take(c, (rect){px - 5, py - 5, 10, 10});
    if (c->n_markers < SVG_MAX_TAKEN) {
        c->marker_x[c->n_markers] = px;
        c->marker_y[c->n_markers++] = py;
    }
}

static double distance_to(rect r, double x, double y)
{
    double dx = fmax(fmax(r.x - x, x - (r.x + r.w)), 0), dy = fmax(fmax(r.y - y, y - (r.y + r.h)), 0);
    return hypot(dx, dy);
}

void svg_take_line(chart *c, double x0, double y0, double x1, double y1)
{
    if (c->n_lines < SVG_MAX_LINES)
        c->lines[c->n_lines++] = (segment){x0, y0, x1, y1};
}

/* Whether s passes through r (Liang-Barsky clipping). */
int svg_crosses(rect r, segment s)
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
    rect r = text_box(sp.x, sp.y, sp.align, s, SVG_FONT_PX);
    if (!contains(c->plot, r))
        return 1000000;
    int penalty = 0;
    for (int i = 0; i < c->n_taken; i++)
        penalty += 8 * svg_overlaps(r, c->taken[i]);
    for (int i = 0; i < c->n_lines; i++)
        penalty += 2 * svg_crosses(r, c->lines[i]);
    if (sp.leader) {
        segment leader = leader_of(r, px, py);
        for (int i = 0; i < c->n_taken; i++)
            penalty += 3 * svg_crosses(c->taken[i], leader);
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
void svg_place_text(chart *c, const spot *spots, int n, const char *attrs, const char *s, double px, double py)
{
    int best = 0, best_penalty = -1;
    for (int i = 0; i < n && best_penalty != 0; i++) {
        int penalty = spot_penalty(c, spots[i], s, px, py);
        if (best_penalty < 0 || penalty < best_penalty) {
            best = i;
            best_penalty = penalty;
        }
    }
    rect box = text_box(spots[best].x, spots[best].y, spots[best].align, s, SVG_FONT_PX);
    if (spots[best].leader) {
        segment l = leader_of(box, px, py);
        fprintf(c->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-width=\"0.8\"/>\n",
                l.x0, l.y0, l.x1, l.y1);
        svg_take_line(c, l.x0, l.y0, l.x1, l.y1);
    }
    svg_text(c->f, spots[best].x, spots[best].y, spots[best].align, attrs, s);
    svg_take(c, box);
}

/* A marker's name beside it (right, above, below, left), else farther
 * away in eight directions with a leader line. */
void svg_label_point(chart *c, double px, double py, const char *s)
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
    svg_place_text(c, spots, n, " fill=\"#333\"", s, px, py);
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
int svg_drawable(sol_plot_scale s, double v)
{
    if (!isfinite(v))
        return 0;
    return s == SOL_PLOT_LINEAR ? fabs(v) <= MAX_LINEAR : v > 0;
}

int svg_in_range(const axis *a, double v)
{
    double slack = a->scale == SOL_PLOT_LINEAR ? 1e-9 * (a->hi - a->lo) : 0;
    return svg_drawable(a->scale, v) && v >= a->lo * (a->scale == SOL_PLOT_LINEAR ? 1 : 1 - 1e-9) - slack &&
           v <= a->hi * (a->scale == SOL_PLOT_LINEAR ? 1 : 1 + 1e-9) + slack;
}

/* Every coordinate written comes from here: kept finite, at most a plot's
 * width outside it, whatever v is. */
double svg_axis_px(const axis *a, double v)
{
    double span = scaled(a->scale, a->hi) - scaled(a->scale, a->lo);
    double t = span > 0 ? (scaled(a->scale, v) - scaled(a->scale, a->lo)) / span : 0.5;
    t = isnan(t) ? 0 : fmin(fmax(t, -1), 2);
    return a->px_lo + t * (a->px_hi - a->px_lo);
}

/* Log axis over [lo, hi] (lo <= hi, both > 0); snap: the ends at whole
 * powers of the base. Ticks at powers, about ten of them at most. */
void svg_fit_log(axis *a, double lo, double hi, int snap)
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
void svg_fit_linear(axis *a, double lo, double hi)
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
    double decade_px = fabs(svg_axis_px(a, 10) - svg_axis_px(a, 1));
    if (decade_px < 40)
        return;
    for (double d = floor(log10(a->lo)); d <= ceil(log10(a->hi)); d++)
        for (int m = 2; m <= 9; m++) {
            double v = m * pow(10, d);
            if (!svg_in_range(a, v))
                continue;
            double p = svg_axis_px(a, v);
            if (vertical)
                grid_line(c->f, p, c->plot.y, p, c->plot.y + c->plot.h, "#f0f0f0");
            else
                grid_line(c->f, c->plot.x, p, c->plot.x + c->plot.w, p, "#f0f0f0");
        }
}

void svg_draw_x_axis(chart *c, const char *label, const char *si_sep)
{
    double ticks[MAX_TICKS];
    int n = axis_ticks(&c->x, ticks);
    double bottom = c->plot.y + c->plot.h;
    minor_grid(c, &c->x, 1);
    for (int i = 0; i < n; i++) {
        char text[32];
        double px = svg_axis_px(&c->x, ticks[i]);
        grid_line(c->f, px, c->plot.y, px, bottom, "#dddddd");
        tick_label(&c->x, ticks[i], si_sep, text, sizeof text);
        svg_text(c->f, px, bottom + 17, ANCHOR_MIDDLE, " class=\"tick\"", text);
    }
    svg_text(c->f, c->plot.x + c->plot.w / 2, bottom + 40, ANCHOR_MIDDLE, "", label);
}

void svg_draw_y_axis(chart *c, const char *label, const char *si_sep)
{
    double ticks[MAX_TICKS];
    int n = axis_ticks(&c->y, ticks);
    minor_grid(c, &c->y, 0);
    for (int i = 0; i < n; i++) {
        char text[32];
        double py = svg_axis_px(&c->y, ticks[i]);
        grid_line(c->f, c->plot.x, py, c->plot.x + c->plot.w, py, "#dddddd");
        tick_label(&c->y, ticks[i], si_sep, text, sizeof text);
        svg_text(c->f, c->plot.x - 7, py + 4, ANCHOR_END, " class=\"tick\"", text);
    }
    char attrs[96];
    double mid = c->plot.y + c->plot.h / 2;
    snprintf(attrs, sizeof attrs, " transform=\"rotate(-90 18 %.1f)\"", mid);
    svg_text(c->f, 18, mid, ANCHOR_MIDDLE, attrs, label);
}

void svg_draw_frame(chart *c)
{
    fprintf(c->f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#888\"/>\n",
            c->plot.x, c->plot.y, c->plot.w, c->plot.h);
}

/* ---- the document --------------------------------------------------------- */

void svg_chart_init(chart *c, FILE *f, sol_plot_scale x_scale, sol_plot_scale y_scale)
{
    memset(c, 0, sizeof *c);
    c->f = f;
    c->plot = (rect){80, 62, CANVAS_W - 80 - 28, CANVAS_H - 62 - 60};
    c->x = (axis){.scale = x_scale, .px_lo = c->plot.x, .px_hi = c->plot.x + c->plot.w};
    c->y = (axis){.scale = y_scale, .px_lo = c->plot.y + c->plot.h, .px_hi = c->plot.y};
}

void svg_begin(FILE *f, const char *title)
{
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"%.0f\" fill=\"#222\">\n",
            CANVAS_W, CANVAS_H, CANVAS_W, CANVAS_H, SVG_FONT_PX);
    fputs("<title>", f);
    svg_escaped(f, title);
    fputs("</title>\n", f);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", CANVAS_W, CANVAS_H);
}

/* The title at up to 16 px, smaller when long so it stays on the canvas. */
void svg_title(FILE *f, const char *title, const char *subtitle)
{
    double size = 16, room = CANVAS_W - 24;
    if (svg_text_width(title, size) > room)
        size = fmax(8, room / svg_text_width(title, 1));
    char attrs[64];
    snprintf(attrs, sizeof attrs, " font-size=\"%.1f\" font-weight=\"bold\"", size);
    svg_text(f, CANVAS_W / 2.0, 26, ANCHOR_MIDDLE, attrs, title);
    if (subtitle && *subtitle) {
        size = svg_text_width(subtitle, SVG_FONT_PX) > room ? fmax(7, room / svg_text_width(subtitle, 1)) : SVG_FONT_PX;
        snprintf(attrs, sizeof attrs, " font-size=\"%.1f\" fill=\"#555\"", size);
        svg_text(f, CANVAS_W / 2.0, 45, ANCHOR_MIDDLE, attrs, subtitle);
    }
}

void svg_no_data(chart *c)
{
    svg_text(c->f, c->plot.x + c->plot.w / 2, c->plot.y + c->plot.h / 2, ANCHOR_MIDDLE,
             " class=\"no-data\" font-size=\"16\" fill=\"#888\"", "no data");
}

int svg_end(FILE *f, sol_err *err)
{
    fputs("</svg>\n", f);
    if (fflush(f) != 0 || ferror(f))
        return sol_fail(err, SOL_ERR_RUNTIME, "plot: writing the SVG failed");
    return SOL_OK;
}

/* ---- legend --------------------------------------------------------------- */

void svg_mark(FILE *f, double x, double y, mark_shape shape, const char *colour, const char *cls)
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

rect svg_legend_size(const legend_entry *e, int n)
{
    double w = 0;
    for (int i = 0; i < n; i++)
        w = fmax(w, svg_text_width(e[i].name, SVG_FONT_PX));
    return (rect){0, 0, w + 44, 10 + 18.0 * n};
}

void svg_draw_legend(chart *c, rect box, const legend_entry *e, int n)
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
        svg_mark(c->f, box.x + 19, y, e[i].shape, e[i].colour, "");
        fputs("/>\n", c->f);
        svg_text(c->f, box.x + 36, y + 4, ANCHOR_START, "", e[i].name);
    }
    fputs("</g>\n", c->f);
    svg_take(c, box);
}
