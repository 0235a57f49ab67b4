/* Charts as SVG, written directly: the roofline of an analysis (one point
 * per op group, decode and prefill) and line charts for sweeps (tok/s
 * against batch or context). Library code: writes to the FILE it is given. */
#ifndef SOL_ANALYZER_PLOT_H
#define SOL_ANALYZER_PLOT_H

#include <stdio.h>

#include "analyzer/analyzer.h"
#include "util/err.h"

/* Log-log roofline of a->hw: memory slope, the compute ceiling of each peak
 * the plan's ops use (labelled with dtype, value and ridge point), one
 * marker per op group and phase at (group FLOPs / group bytes, group FLOPs /
 * group unfused time). Groups without bytes or FLOPs are left out.
 * Returns 0, SOL_ERR_USAGE for a NULL argument, SOL_ERR_RUNTIME when
 * writing fails. */
int sol_plot_roofline(FILE *f, const sol_analysis *a, sol_err *err);

typedef enum sol_plot_scale {
    SOL_PLOT_LINEAR,
    SOL_PLOT_LOG2,  /* ticks at powers of two: batch sizes, contexts */
    SOL_PLOT_LOG10, /* ticks at powers of ten */
} sol_plot_scale;

#define SOL_PLOT_MAX_SERIES 8

/* n points (x[i], y[i]), drawn in order; points a log axis cannot show
 * (<= 0) and non-finite ones are skipped. */
typedef struct sol_plot_series {
    const char *name;
    const double *x, *y;
    int n;
} sol_plot_series;

/* A vertical line at x with a label ("compute-bound from batch 96"). */
typedef struct sol_plot_marker {
    double x;
    const char *label;
} sol_plot_marker;

/* Everything is the caller's; text may come from files (it is escaped). */
typedef struct sol_plot_xy_spec {
    const char *title;
    const char *x_label, *y_label;
    sol_plot_scale x_scale, y_scale;
    const sol_plot_series *series;
    int n_series; /* at most SOL_PLOT_MAX_SERIES */
    const sol_plot_marker *markers;
    int n_markers;
} sol_plot_xy_spec;

/* A line chart with a legend; with no drawable point, a valid SVG that says
 * "no data". Returns 0, SOL_ERR_USAGE for a malformed spec, SOL_ERR_RUNTIME
 * when writing fails. */
int sol_plot_xy(FILE *f, const sol_plot_xy_spec *spec, sol_err *err);

#endif
