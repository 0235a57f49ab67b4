/* Layout: where each pane of the live view goes, as a pure function of the
 * terminal size and the frame (rows in the table, view, help), and which
 * op-table columns fit a width. Tested over many sizes without a terminal. */
#include <stdio.h>
#include <string.h>

#include "tui/tui.h"

enum {
    HEADER_ROWS = 4,
    STATUS_ROWS = 1,
    SPARK_ROWS = 1,
    TEXT_MIN_ROWS = 3,  /* a heading and two lines */
    CHART_MIN_ROWS = 8, /* title, 5 plot rows, axis, labels */
    CHART_MAX_ROWS = 30,
    WIDE_COLS = 140,    /* from here on the text pane sits beside the table */
    LEFT_MIN_COLS = 88,
    LEFT_MAX_COLS = 120,
    HELP_ROWS = 21,
    HELP_COLS = 66,
};

int sol_rect_empty(sol_rect r) { return r.h <= 0 || r.w <= 0; }

static sol_rect rect(int y, int x, int h, int w)
{
    if (h <= 0 || w <= 0)
        return (sol_rect){0, 0, 0, 0};
    return (sol_rect){y, x, h, w};
}

static int clamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Splits the main pane into chart and legend in the roofline view. */
static void split_roofline(sol_layout *L)
{
    sol_rect m = L->main;
    int legend_w = m.w >= 100 ? 24 : 21;
    L->chart = rect(m.y, m.x, m.h, m.w - legend_w - 1);
    L->legend = rect(m.y, m.x + m.w - legend_w, m.h, legend_w);
}

void sol_layout_compute(int rows, int cols, const sol_frame *f, sol_layout *L)
{
    memset(L, 0, sizeof *L);
    L->rows = rows;
    L->cols = cols;
    if (rows < SOL_TUI_MIN_ROWS || cols < SOL_TUI_MIN_COLS) {
        L->too_small = 1;
        L->message = rect(0, 0, rows, cols);
        return;
    }
    int roofline = f && f->view == SOL_VIEW_ROOFLINE;
    int n_rows = f && f->n_rows > 0 ? f->n_rows : 1;
    int table_h = n_rows + 2; /* heading, one row per group, total */
    L->header = rect(0, 0, HEADER_ROWS, cols);
    L->status = rect(rows - STATUS_ROWS, 0, STATUS_ROWS, cols);
    int top = HEADER_ROWS, avail = rows - HEADER_ROWS - STATUS_ROWS;

    if (cols >= WIDE_COLS) {
        /* table (or chart) and sparkline on the left, text on the right */
        int left_w = clamp(cols * 3 / 5, LEFT_MIN_COLS, LEFT_MAX_COLS);
        int main_h = roofline ? clamp(avail - SPARK_ROWS, 1, CHART_MAX_ROWS + 10) : clamp(table_h, 1, avail);
        L->main = rect(top, 0, main_h, left_w);
        if (avail - main_h >= SPARK_ROWS)
            L->spark = rect(top + main_h, 0, SPARK_ROWS, left_w);
        L->text = rect(top, left_w + 1, avail, cols - left_w - 1);
    } else {
        int main_h;
        if (roofline) {
            main_h = clamp(avail - SPARK_ROWS - TEXT_MIN_ROWS, 0, CHART_MAX_ROWS);
            if (main_h < CHART_MIN_ROWS)
                main_h = avail - SPARK_ROWS; /* the chart first, then the sparkline; text goes */
            if (main_h < CHART_MIN_ROWS)
                main_h = avail;
        } else {
            main_h = table_h < avail ? table_h : avail;
        }
        int rest = avail - main_h;
        L->main = rect(top, 0, main_h, cols);
        if (rest >= SPARK_ROWS) {
            L->spark = rect(top + main_h, 0, SPARK_ROWS, cols);
            rest -= SPARK_ROWS;
        }
        if (rest >= TEXT_MIN_ROWS)
            L->text = rect(rows - STATUS_ROWS - rest, 0, rest, cols);
    }
    if (roofline)
        split_roofline(L);
    if (f && f->help) {
        int h = HELP_ROWS < rows - 2 ? HELP_ROWS : rows - 2;
        int w = HELP_COLS < cols - 4 ? HELP_COLS : cols - 4;
        L->help = rect((rows - h) / 2, (cols - w) / 2, h, w);
    }
}

/* ---- the op table's columns --------------------------------------------- */

static const struct {
    const char *heading;
    int width, right;
} columns[SOL_COL_COUNT] = {
    [SOL_COL_GROUP] = {"op group", 11, 0}, [SOL_COL_SOL] = {"SOL", 9, 1},
    [SOL_COL_ACTUAL] = {"actual", 9, 1},   [SOL_COL_SHARE] = {"share", 6, 1},
    [SOL_COL_GBS] = {"GB/s", 6, 1},        [SOL_COL_GFLOPS] = {"GFLOP/s", 7, 1},
    [SOL_COL_BOUND] = {"bound", 7, 0},     [SOL_COL_PCT] = {"% SOL", 6, 1},
    [SOL_COL_BAR] = {"", 8, 0},
};
enum { BAR_MAX = 42 };

const char *sol_col_heading(sol_col c) { return (unsigned)c < SOL_COL_COUNT ? columns[c].heading : ""; }
int sol_col_right_aligned(sol_col c) { return (unsigned)c < SOL_COL_COUNT && columns[c].right; }

void sol_table_layout_compute(int width, sol_table_layout *out)
{
    static const sol_col drop_order[] = {SOL_COL_BOUND, SOL_COL_GFLOPS, SOL_COL_GBS, SOL_COL_SHARE, SOL_COL_BAR};
    int shown[SOL_COL_COUNT];
    for (int c = 0; c < SOL_COL_COUNT; c++)
        shown[c] = 1;
    for (size_t d = 0;; d++) {
        int need = -1; /* one space between columns */
        for (int c = 0; c < SOL_COL_COUNT; c++)
            if (shown[c])
                need += columns[c].width + 1;
        if (need <= width || d == sizeof drop_order / sizeof drop_order[0])
            break;
        shown[drop_order[d]] = 0;
    }
    memset(out, 0, sizeof *out);
    int x = 0;
    for (int c = 0; c < SOL_COL_COUNT; c++) {
        if (!shown[c])
            continue;
        int w = columns[c].width;
        if (c == SOL_COL_BAR)
            w = clamp(width - x, columns[c].width, BAR_MAX);
        if (x + w > width)
            break; /* narrower than the essential columns: keep what fits */
        out->cols[out->n].col = (sol_col)c;
        out->cols[out->n].x = x;
        out->cols[out->n].w = w;
        out->n++;
        x += w + 1;
    }
}

static void fmt_rate(char *buf, int cap, double v)
{
    snprintf(buf, (size_t)cap, v < 10 ? "%.2f" : v < 1000 ? "%.1f" : "%.0f", v);
}

void sol_table_cell(const sol_frame *f, const sol_frame_row *row, sol_col c, char *buf, int cap)
{
    const sol_frame_totals *t = row ? &row->t : &f->total;
    double steps = f->window_steps > 0 ? f->window_steps : 1; /* times per step (= per token when decoding) */
    buf[0] = '\0';
    switch (c) {
    case SOL_COL_GROUP: snprintf(buf, (size_t)cap, "%s", row ? sol_op_group_name(row->group) : "total"); break;
    case SOL_COL_SOL: sol_fmt_time(buf, cap, t->predicted_s / steps); break;
    case SOL_COL_ACTUAL: sol_fmt_time(buf, cap, t->achieved_s / steps); break;
    case SOL_COL_SHARE: snprintf(buf, (size_t)cap, "%.1f%%", row ? 100 * row->share : 100.0); break;
    case SOL_COL_GBS: fmt_rate(buf, cap, sol_frame_gbs(t)); break;
    case SOL_COL_GFLOPS: fmt_rate(buf, cap, sol_frame_gflops(t)); break;
    case SOL_COL_BOUND: snprintf(buf, (size_t)cap, "%s", sol_bound_name(sol_frame_bound(t))); break;
    case SOL_COL_PCT: snprintf(buf, (size_t)cap, "%.1f%%", sol_frame_sol_percent(t)); break;
    default: break;
    }
}
