/* SVG machinery shared by the charts of plot.c: text, labels placed clear
 * of each other, axes, the document and the legend. Internal to analyzer/. */
#ifndef SOL_ANALYZER_SVG_H
#define SOL_ANALYZER_SVG_H

#include <stdio.h>

#include "analyzer/plot.h"
#include "util/err.h"

#define SVG_FONT_PX 12.0
#define SVG_MAX_TAKEN 256 /* labels and markers a chart keeps clear of each other */
#define SVG_MAX_LINES 256 /* lines that labels keep clear of */

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

/* One chart being written: its plot area, axes, and what labels keep clear of. */
typedef struct chart {
    FILE *f;
    rect plot;
    axis x, y;
    rect taken[SVG_MAX_TAKEN];
    int n_taken;
    segment lines[SVG_MAX_LINES];
    int n_lines;
    double marker_x[SVG_MAX_TAKEN], marker_y[SVG_MAX_TAKEN]; /* centres of the data markers */
    int n_markers;
} chart;

typedef enum mark_shape { MARK_CIRCLE, MARK_SQUARE, MARK_LINE } mark_shape;

typedef struct legend_entry {
    const char *name;
    const char *colour;
    mark_shape shape;
} legend_entry;

/* ---- text and lines: s may come from files (it is escaped); attrs are
 * attributes we wrote ourselves, each with a leading space, or "". */

void svg_escaped(FILE *f, const char *s);
double svg_text_width(const char *s, double font_px); /* an estimate: no font metrics */
void svg_text(FILE *f, double x, double y, anchor align, const char *attrs, const char *s);
void svg_line(FILE *f, double x1, double y1, double x2, double y2, const char *attrs);

/* ---- boxes kept clear: what a chart takes, later labels avoid */

int svg_overlaps(rect a, rect b);
int svg_crosses(rect r, segment s); /* whether s passes through r */
void svg_take(chart *c, rect r);
void svg_take_marker(chart *c, double px, double py); /* a data marker centred there */
void svg_take_line(chart *c, double x0, double y0, double x1, double y1);
/* Draws s at the spot (of n) that spoils least of what is taken, the first
 * of equals; (px, py): the point a leader goes to (NAN: s labels no point). */
void svg_place_text(chart *c, const spot *spots, int n, const char *attrs, const char *s, double px, double py);
/* s beside the marker at (px, py), else farther away with a leader line. */
void svg_label_point(chart *c, double px, double py, const char *s);

/* ---- axes */

int svg_drawable(sol_plot_scale s, double v); /* finite, and > 0 on a log scale */
int svg_in_range(const axis *a, double v);
double svg_axis_px(const axis *a, double v); /* finite whatever v is */
void svg_fit_log(axis *a, double lo, double hi, int snap); /* snap: ends at whole powers */
void svg_fit_linear(axis *a, double lo, double hi);
/* Grid, ticks and label; si_sep goes between a tick's number and its SI
 * prefix ("1.5 k" with " "). */
void svg_draw_x_axis(chart *c, const char *label, const char *si_sep);
void svg_draw_y_axis(chart *c, const char *label, const char *si_sep);
void svg_draw_frame(chart *c);

/* ---- the document: svg_begin, what the chart draws, svg_end */

void svg_chart_init(chart *c, FILE *f, sol_plot_scale x_scale, sol_plot_scale y_scale);
void svg_begin(FILE *f, const char *title); /* title: the document's, not drawn */
void svg_title(FILE *f, const char *title, const char *subtitle); /* drawn; subtitle may be NULL */
void svg_no_data(chart *c);
/* Closes the document and flushes f: SOL_ERR_RUNTIME when writing failed. */
int svg_end(FILE *f, sol_err *err);

/* ---- legend */

/* Leaves the element open: the caller closes it ("/>") or gives it a child. */
void svg_mark(FILE *f, double x, double y, mark_shape shape, const char *colour, const char *cls);
rect svg_legend_size(const legend_entry *e, int n); /* w and h; x and y are 0 */
void svg_draw_legend(chart *c, rect box, const legend_entry *e, int n);

#endif
