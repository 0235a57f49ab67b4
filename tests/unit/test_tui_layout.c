/* The live view's layout over many terminal sizes: every pane inside the
 * screen, no two overlapping, each present when it fits, "too small" below
 * the minimum; and the op table's columns for every width. */
#include <stdio.h>

#include "tests/unit/helpers.h"
#include "tui/tui.h"

static const int sizes[][2] = {
    /* rows, cols */
    {0, 0},    {1, 1},    {5, 200},  {10, 40},  {15, 80},  {16, 59},  {24, 59},  {15, 60},  /* too small */
    {16, 60},  {17, 61},  {24, 80},  {25, 80},  {30, 100}, {40, 120}, {23, 139}, {23, 140}, /* usual */
    {24, 300}, {40, 400}, {16, 500},                                                       /* very wide */
    {200, 80}, {300, 60}, {120, 100}, {1000, 60},                                          /* very tall */
    {100, 250}, {60, 160}, {50, 200},
};
#define N_SIZES ((int)(sizeof sizes / sizeof sizes[0]))

static int inside(sol_rect r, int rows, int cols)
{
    return r.y >= 0 && r.x >= 0 && r.y + r.h <= rows && r.x + r.w <= cols;
}

static int overlap(sol_rect a, sol_rect b)
{
    if (sol_rect_empty(a) || sol_rect_empty(b))
        return 0;
    return a.y < b.y + b.h && b.y < a.y + a.h && a.x < b.x + b.w && b.x < a.x + a.w;
}

static int contains(sol_rect outer, sol_rect in)
{
    return in.y >= outer.y && in.x >= outer.x && in.y + in.h <= outer.y + outer.h && in.x + in.w <= outer.x + outer.w;
}

static sol_frame frame_with(int n_rows, sol_view view, int help)
{
    sol_frame f;
    memset(&f, 0, sizeof f);
    f.n_rows = n_rows;
    f.view = view;
    f.help = help;
    return f;
}

static void check_one(int rows, int cols, const sol_frame *f)
{
    sol_layout L;
    sol_layout_compute(rows, cols, f, &L);
    char where[96];
    snprintf(where, sizeof where, "%dx%d, %d rows, %s, help %d", cols, rows, f->n_rows,
             f->view == SOL_VIEW_ROOFLINE ? "roofline" : "table", f->help);
    int small = rows < SOL_TUI_MIN_ROWS || cols < SOL_TUI_MIN_COLS;
    if (L.too_small != small)
        fail_msg("%s: too_small = %d", where, L.too_small);
    if (small) {
        sol_rect others[] = {L.header, L.main, L.chart, L.legend, L.spark, L.text, L.status, L.help};
        for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
            if (!sol_rect_empty(others[i]))
                fail_msg("%s: pane %zu shown on the too-small screen", where, i);
        if (rows > 0 && cols > 0 && (!inside(L.message, rows, cols) || sol_rect_empty(L.message)))
            fail_msg("%s: the message does not cover the screen", where);
        return;
    }
    sol_rect panes[] = {L.header, L.main, L.spark, L.text, L.status};
    const char *names[] = {"header", "main", "spark", "text", "status"};
    for (int i = 0; i < 5; i++) {
        if (!sol_rect_empty(panes[i]) && !inside(panes[i], rows, cols))
            fail_msg("%s: %s {%d,%d,%d,%d} leaves the screen", where, names[i], panes[i].y, panes[i].x, panes[i].h,
                     panes[i].w);
        for (int j = i + 1; j < 5; j++)
            if (overlap(panes[i], panes[j]))
                fail_msg("%s: %s overlaps %s", where, names[i], names[j]);
    }
    /* always there: header on top, status at the bottom, the main pane */
    if (L.header.y != 0 || L.header.w != cols || L.header.h != 4)
        fail_msg("%s: header misplaced", where);
    if (L.status.y != rows - 1 || L.status.w != cols || L.status.h != 1)
        fail_msg("%s: status bar misplaced", where);
    if (sol_rect_empty(L.main))
        fail_msg("%s: no main pane", where);
    int avail = rows - 5, table_h = (f->n_rows > 0 ? f->n_rows : 1) + 2;
    if (f->view == SOL_VIEW_ROOFLINE) {
        if (!contains(L.main, L.chart) || !contains(L.main, L.legend) || overlap(L.chart, L.legend))
            fail_msg("%s: chart/legend outside main or overlapping", where);
        if (L.chart.h < 8 || L.chart.w < 30 || L.legend.w < 18)
            fail_msg("%s: chart %dx%d, legend %d wide: too cramped", where, L.chart.w, L.chart.h, L.legend.w);
    } else {
        if (!sol_rect_empty(L.chart) || !sol_rect_empty(L.legend))
            fail_msg("%s: chart in the table view", where);
        int want = table_h < avail ? table_h : avail;
        if (L.main.h < want)
            fail_msg("%s: table has %d rows, %d fit", where, L.main.h, want);
    }
    /* panes present when they fit */
    if (cols >= 140) {
        if (sol_rect_empty(L.text) || L.text.h != avail || L.text.x < L.main.x + L.main.w)
            fail_msg("%s: wide screen lacks the side text pane", where);
        if (sol_rect_empty(L.spark) && (f->view == SOL_VIEW_ROOFLINE || avail >= table_h + 1))
            fail_msg("%s: sparkline fits but is missing", where);
    } else if (f->view == SOL_VIEW_TABLE) {
        if (avail >= table_h + 1 && sol_rect_empty(L.spark))
            fail_msg("%s: sparkline fits but is missing", where);
        if (avail >= table_h + 1 + 3 && sol_rect_empty(L.text))
            fail_msg("%s: text pane fits but is missing", where);
    } else if (avail >= 8 + 1 + 3 && (sol_rect_empty(L.spark) || sol_rect_empty(L.text))) {
        fail_msg("%s: roofline view drops the sparkline or text though they fit", where);
    }
    if (f->help) {
        if (sol_rect_empty(L.help) || !inside(L.help, rows, cols) || L.help.h < 10)
            fail_msg("%s: help overlay missing or outside", where);
    } else if (!sol_rect_empty(L.help)) {
        fail_msg("%s: help overlay without help", where);
    }
}

static void test_layout_every_size(void **state)
{
    (void)state;
    static const int row_counts[] = {0, 1, 7, 9};
    for (int s = 0; s < N_SIZES; s++)
        for (int v = 0; v < 2; v++)
            for (int h = 0; h < 2; h++)
                for (size_t n = 0; n < sizeof row_counts / sizeof row_counts[0]; n++) {
                    sol_frame f = frame_with(row_counts[n], v ? SOL_VIEW_ROOFLINE : SOL_VIEW_TABLE, h);
                    check_one(sizes[s][0], sizes[s][1], &f);
                }
    /* and every size in a band around the minimum and the wide switch */
    for (int rows = 12; rows <= 45; rows++)
        for (int cols = 50; cols <= 170; cols += 3) {
            sol_frame f = frame_with(7, (rows + cols) % 2 ? SOL_VIEW_ROOFLINE : SOL_VIEW_TABLE, rows % 5 == 0);
            check_one(rows, cols, &f);
        }
}

/* The usual 80x24 terminal shows everything at once: header, all seven
 * SmolLM2 groups with a total, the sparkline and a text pane. */
static void test_layout_80x24(void **state)
{
    (void)state;
    sol_frame f = frame_with(7, SOL_VIEW_TABLE, 0);
    sol_layout L;
    sol_layout_compute(24, 80, &f, &L);
    assert_int_equal(L.main.y, 4);
    assert_int_equal(L.main.h, 9);
    assert_int_equal(L.spark.y, 13);
    assert_int_equal(L.text.y, 14);
    assert_int_equal(L.text.h, 9);
    assert_int_equal(L.text.w, 80);
    f.view = SOL_VIEW_ROOFLINE;
    sol_layout_compute(24, 80, &f, &L);
    assert_true(L.chart.h >= 12);
    assert_true(L.text.h >= 3);
}

static void test_table_columns(void **state)
{
    (void)state;
    for (int width = 0; width <= 400; width++) {
        sol_table_layout tl;
        sol_table_layout_compute(width, &tl);
        int have[SOL_COL_COUNT] = {0};
        int end = 0;
        for (int i = 0; i < tl.n; i++) {
            if (tl.cols[i].x < end || tl.cols[i].w <= 0 || tl.cols[i].x + tl.cols[i].w > width)
                fail_msg("width %d: column %d at %d+%d overlaps or leaves", width, (int)tl.cols[i].col, tl.cols[i].x,
                         tl.cols[i].w);
            if (i > 0 && tl.cols[i].col <= tl.cols[i - 1].col)
                fail_msg("width %d: columns out of order", width);
            end = tl.cols[i].x + tl.cols[i].w + 1;
            have[tl.cols[i].col] = 1;
        }
        if (width >= 56) /* group, SOL, actual, % SOL and the bar always fit the minimum screen */
            for (int c = 0; c < SOL_COL_COUNT; c++)
                if ((c == SOL_COL_GROUP || c == SOL_COL_SOL || c == SOL_COL_ACTUAL || c == SOL_COL_PCT ||
                     c == SOL_COL_BAR) && !have[c])
                    fail_msg("width %d lacks essential column %d", width, c);
        if (width >= 77)
            for (int c = 0; c < SOL_COL_COUNT; c++)
                if (!have[c])
                    fail_msg("width %d lacks column %d", width, c);
    }
}

static void test_table_cells(void **state)
{
    (void)state;
    sol_frame f = frame_with(1, SOL_VIEW_TABLE, 0);
    f.window_steps = 2;
    f.rows[0].group = SOL_GROUP_FFN_DOWN;
    f.rows[0].t = (sol_frame_totals){.n_ops = 60, .predicted_s = 2e-3, .achieved_s = 8e-3, .bytes = 40e6,
                                     .flops = 80e6, .bound_s = {2e-3, 0, 0}};
    f.rows[0].share = 0.25;
    f.total = f.rows[0].t;
    char buf[32];
    sol_table_cell(&f, &f.rows[0], SOL_COL_GROUP, buf, sizeof buf);
    assert_string_equal(buf, "ffn.down");
    sol_table_cell(&f, &f.rows[0], SOL_COL_SOL, buf, sizeof buf); /* per step: 2 steps summed */
    assert_string_equal(buf, "1.00 ms");
    sol_table_cell(&f, &f.rows[0], SOL_COL_ACTUAL, buf, sizeof buf);
    assert_string_equal(buf, "4.00 ms");
    sol_table_cell(&f, &f.rows[0], SOL_COL_SHARE, buf, sizeof buf);
    assert_string_equal(buf, "25.0%");
    sol_table_cell(&f, &f.rows[0], SOL_COL_GBS, buf, sizeof buf); /* 40 MB in 8 ms */
    assert_string_equal(buf, "5.00");
    sol_table_cell(&f, &f.rows[0], SOL_COL_GFLOPS, buf, sizeof buf);
    assert_string_equal(buf, "10.0");
    sol_table_cell(&f, &f.rows[0], SOL_COL_BOUND, buf, sizeof buf);
    assert_string_equal(buf, "memory");
    sol_table_cell(&f, &f.rows[0], SOL_COL_PCT, buf, sizeof buf);
    assert_string_equal(buf, "25.0%");
    sol_table_cell(&f, NULL, SOL_COL_GROUP, buf, sizeof buf);
    assert_string_equal(buf, "total");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_every_size),
        cmocka_unit_test(test_layout_80x24),
        cmocka_unit_test(test_table_columns),
        cmocka_unit_test(test_table_cells),
    };
    return cmocka_run_group_tests_name("tui_layout", tests, NULL, NULL);
}
