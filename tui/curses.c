/* The ncurses renderer: draws a frame into the panes the layout gives,
 * one window per pane, wnoutrefresh each and one doupdate. It only draws:
 * the numbers come from the frame model, the geometry from the layout. */
#include <curses.h>
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tui/tui.h"

enum pane { PANE_MESSAGE, PANE_HEADER, PANE_MAIN, PANE_SPARK, PANE_TEXT, PANE_STATUS, PANE_HELP, PANE_COUNT };

enum style { ST_NORMAL, ST_TITLE, ST_HEADING, ST_GOOD, ST_WARN, ST_BAD, ST_DIM, ST_ROOF, ST_MARKER, ST_BOLD };
enum { PAIR_TITLE = 1, PAIR_HEADING, PAIR_GOOD, PAIR_WARN, PAIR_BAD, PAIR_ROOF, PAIR_MARKER };

typedef struct glyphs {
    const char *bar_full, *bar_part[8];
    const char *spark[9];
    const char *axis_x, *axis_y, *origin, *tick_x, *tick_y, *slope, *roof;
    const char *sep, *sort_mark;
} glyphs;

static const glyphs utf8_glyphs = {
    "\u2588",
    {"", "\u258F", "\u258E", "\u258D", "\u258C", "\u258B", "\u258A", "\u2589"},
    {" ", "\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588"},
    "\u2500", "\u2502", "\u2514", "\u252C", "\u2524", "\u2571", "\u2500",
    " \u00B7 ", "\u25BE",
};

/* ASCII: half a cell or more of a bar rounds up to a full '#'. */
static const glyphs ascii_glyphs = {
    "#",
    {"", "", "", "", "#", "#", "#", "#"},
    {" ", "_", ".", "-", "~", "=", "+", "*", "#"},
    "-", "|", "+", "+", "+", "/", "-",
    " | ", "*",
};

struct sol_tui {
    SCREEN *screen;
    int color, utf8;
    const glyphs *g;
    WINDOW *input; /* never drawn on: reading keys from it refreshes nothing */
    WINDOW *win[PANE_COUNT];
    sol_rect rect[PANE_COUNT];
    sol_cell *cells;
    size_t cells_cap;
};

static attr_t style(const sol_tui *t, enum style s)
{
    if (!t->color) {
        switch (s) {
        case ST_TITLE: return A_REVERSE;
        case ST_HEADING: return A_REVERSE;
        case ST_BAD: return A_BOLD;
        case ST_DIM: return A_DIM;
        case ST_ROOF: return A_BOLD;
        case ST_MARKER: return A_BOLD;
        case ST_BOLD: return A_BOLD;
        default: return A_NORMAL;
        }
    }
    switch (s) {
    case ST_TITLE: return COLOR_PAIR(PAIR_TITLE);
    case ST_HEADING: return COLOR_PAIR(PAIR_HEADING);
    case ST_GOOD: return COLOR_PAIR(PAIR_GOOD) | A_BOLD;
    case ST_WARN: return COLOR_PAIR(PAIR_WARN) | A_BOLD;
    case ST_BAD: return COLOR_PAIR(PAIR_BAD) | A_BOLD;
    case ST_DIM: return A_DIM;
    case ST_ROOF: return COLOR_PAIR(PAIR_ROOF) | A_BOLD;
    case ST_MARKER: return COLOR_PAIR(PAIR_MARKER) | A_BOLD;
    case ST_BOLD: return A_BOLD;
    default: return A_NORMAL;
    }
}

/* How close to SOL reads: green from 50%, yellow from 20%, else red. */
static enum style level(double pct) { return pct >= 50 ? ST_GOOD : pct >= 20 ? ST_WARN : ST_BAD; }

/* Draws s at (y, x), clipped to column limit and to the window; returns
 * the column after it. */
static int put_upto(const sol_tui *t, WINDOW *w, int y, int x, const char *s, attr_t a, int limit)
{
    int maxy = getmaxy(w), maxx = getmaxx(w);
    if (limit < maxx)
        maxx = limit;
    if (y < 0 || y >= maxy || x < 0)
        return x;
    size_t n = strlen(s), i = 0;
    wattrset(w, a);
    while (i < n && x < maxx) {
        uint32_t cp;
        int k = sol_text_next(s + i, n - i, &cp), cw;
        if (k <= 0) {
            k = 1;
            cp = '?';
        }
        cw = sol_codepoint_width(cp);
        if (cw == 0) {
            i += (size_t)k;
            continue;
        }
        if (x + cw > maxx)
            break;
        if (cp < 0x80)
            mvwaddch(w, y, x, (chtype)cp);
        else if (t->utf8)
            mvwaddnstr(w, y, x, s + i, k);
        else
            mvwaddch(w, y, x, '?'), cw = 1;
        x += cw;
        i += (size_t)k;
    }
    wattrset(w, A_NORMAL);
    return x;
}

static int put(const sol_tui *t, WINDOW *w, int y, int x, const char *s, attr_t a)
{
    return put_upto(t, w, y, x, s, a, getmaxx(w));
}

static int fill(const sol_tui *t, WINDOW *w, int y, int x, int n, const char *glyph, attr_t a)
{
    for (int i = 0; i < n; i++)
        x = put(t, w, y, x, glyph, a);
    return x;
}

/* "[████▌    ]" in width cells; returns the column after it. */
static int bar(const sol_tui *t, WINDOW *w, int y, int x, int width, double fraction, attr_t a)
{
    if (width < 3)
        return x;
    int inner = width - 2, e = sol_bar_eighths(fraction, inner);
    int full = e / 8, part = e % 8;
    x = put(t, w, y, x, "[", A_NORMAL);
    int end = x + inner;
    x = fill(t, w, y, x, full, t->g->bar_full, a);
    if (part && t->g->bar_part[part][0])
        x = put(t, w, y, x, t->g->bar_part[part], a);
    x = fill(t, w, y, x, end - x, " ", A_NORMAL);
    return put(t, w, y, x, "]", A_NORMAL);
}

static WINDOW *pane(sol_tui *t, int id, sol_rect r)
{
    if (sol_rect_empty(r)) {
        if (t->win[id])
            delwin(t->win[id]);
        t->win[id] = NULL;
        return NULL;
    }
    if (!t->win[id] || memcmp(&t->rect[id], &r, sizeof r) != 0) {
        if (t->win[id])
            delwin(t->win[id]);
        t->win[id] = newwin(r.h, r.w, r.y, r.x);
        t->rect[id] = r;
    }
    if (t->win[id])
        werase(t->win[id]);
    return t->win[id];
}

/* ---- panes ---------------------------------------------------------------- */

/* " tok/s  9.42 now  196.36 at SOL  [bar]  4.8% of SOL": the bars of both
 * headline rows are bar_w wide so they line up. */
static void draw_headline(const sol_tui *t, WINDOW *w, int y, const char *label, double now, double ref,
                          const char *ref_name, double pct, const char *tail, int bar_w)
{
    char left[96];
    snprintf(left, sizeof left, " %-6s %9.2f now %9.2f %-8s", label, now, ref, ref_name);
    int x = put(t, w, y, 0, left, A_NORMAL);
    if (bar_w >= 6)
        x = bar(t, w, y, x, bar_w, pct / 100, style(t, level(pct)));
    put(t, w, y, x, tail, style(t, level(pct)));
}

/* --counters: the counted DRAM GB/s of the latest counted step beside the
 * plan's GB/s, appended to the GB/s row's tail. */
static void counted_tail(const sol_frame_info *in, const sol_frame *f, char *tail, size_t cap)
{
    size_t n = strlen(tail);
    if (!in->counters)
        return;
    if (f->counters_off)
        snprintf(tail + n, cap - n, " | counters off");
    else if (f->counted_step > 0)
        snprintf(tail + n, cap - n, " | counted %.1f GB/s at step %llu", f->counted_gbs,
                 (unsigned long long)f->counted_step);
    else
        snprintf(tail + n, cap - n, " | counted: none yet");
}

static void draw_header(sol_tui *t, WINDOW *w, const sol_frame *f)
{
    const sol_frame_info *in = f->info;
    const char *sep = t->g->sep;
    int width = getmaxx(w);
    char buf[512], right[96];
    attr_t title = style(t, ST_TITLE);
    fill(t, w, 0, 0, width, " ", title);
    snprintf(right, sizeof right, " %s %d/%d tok ", sol_phase_name(f->phase), f->generated, in->n_target);
    int right_x = width - sol_text_width(right); /* the state first; the names give way */
    put(t, w, 0, right_x, right, title | A_BOLD);
    if (in->threads > 0)
        snprintf(buf, sizeof buf, " sol run%s%s%s%s backend, %d threads%s", sep, in->model, sep, in->backend,
                 in->threads, sep);
    else /* a device backend */
        snprintf(buf, sizeof buf, " sol run%s%s%s%s backend%s", sep, in->model, sep, in->backend, sep);
    char device[sizeof in->device];
    int room = right_x - 1 - sol_text_width(buf); /* the device's middle gives way first */
    sol_text_elide(in->device, room > 24 ? room : 24, device, sizeof device);
    snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s", device);
    put_upto(t, w, 0, 0, buf, title | A_BOLD, right_x - 1);
    char tuned[24];
    if (in->tuned_shapes >= 0)
        snprintf(tuned, sizeof tuned, "%d/%d", in->tuned_shapes, in->tuned_total);
    else
        snprintf(tuned, sizeof tuned, "n/a");
    snprintf(buf, sizeof buf, " KV %s %s%sweights %s%sact %s%spos %lld/%lld%stuned shapes %s%sstep %llu", in->kv,
             in->kvtype, sep, in->wtype, sep, in->atype, sep, (long long)f->pos, (long long)in->ctx, sep, tuned, sep,
             (unsigned long long)f->step);
    put(t, w, 1, 0, buf, A_NORMAL);
    if (f->window_steps == 0) {
        snprintf(buf, sizeof buf, " prefilling %d prompt tokens...", in->n_prompt);
        put(t, w, 2, 0, buf, style(t, ST_DIM));
        return;
    }
    char tail_sol[64], tail_bw[128];
    snprintf(tail_sol, sizeof tail_sol, " %5.1f%% of SOL%s", f->sol_pct, f->prefill_rows ? " (prefill)" : "");
    if (width >= 110) /* the per-op sum beside the fused bound */
        snprintf(tail_sol + strlen(tail_sol), sizeof tail_sol - strlen(tail_sol), ", unfused %.1f",
                 f->unfused_tok_s);
    snprintf(tail_bw, sizeof tail_bw, " %5.1f%% of ceiling%s%s%s", f->bw_pct, width >= 110 ? " (" : "",
             width >= 110 ? in->mem_bw_source : "", width >= 110 ? ")" : "");
    counted_tail(in, f, tail_bw, sizeof tail_bw);
    int tail_w = sol_text_width(tail_sol), bw_w = sol_text_width(tail_bw);
    if (bw_w > tail_w)
        tail_w = bw_w;
    int bar_w = width - 40 - tail_w - 1; /* 40: the label and numbers */
    if (bar_w > 52)
        bar_w = 52;
    draw_headline(t, w, 2, f->prefill_rows ? "pp t/s" : "tok/s", f->tok_s, f->sol_tok_s, "at SOL", f->sol_pct,
                  tail_sol, bar_w);
    draw_headline(t, w, 3, "GB/s", f->gbs, in->mem_bw / 1e9, "ceiling", f->bw_pct, tail_bw, bar_w);
}

static int sort_column(sol_sort s, sol_col c)
{
    switch (s) {
    case SOL_SORT_PLAN: return c == SOL_COL_GROUP;
    case SOL_SORT_TIME: return c == SOL_COL_ACTUAL;
    case SOL_SORT_SOL: return c == SOL_COL_PCT;
    case SOL_SORT_GAP: return c == SOL_COL_ACTUAL || c == SOL_COL_SOL;
    default: return 0;
    }
}

static void draw_row(sol_tui *t, WINDOW *w, int y, const sol_frame *f, const sol_frame_row *row,
                     const sol_table_layout *tl, attr_t a)
{
    const sol_frame_totals *tot = row ? &row->t : &f->total;
    double pct = sol_frame_sol_percent(tot);
    char cell[48];
    for (int i = 0; i < tl->n; i++) {
        sol_col c = tl->cols[i].col;
        int x = 1 + tl->cols[i].x, cw = tl->cols[i].w;
        if (c == SOL_COL_BAR) {
            bar(t, w, y, x, cw, pct / 100, style(t, level(pct)));
            continue;
        }
        sol_table_cell(f, row, c, cell, sizeof cell);
        int pad = sol_col_right_aligned(c) ? cw - sol_text_width(cell) : 0;
        attr_t ca = c == SOL_COL_PCT ? style(t, level(pct)) : a;
        put(t, w, y, x + (pad > 0 ? pad : 0), cell, ca);
    }
}

static void draw_table(sol_tui *t, WINDOW *w, const sol_frame *f)
{
    int h = getmaxy(w), width = getmaxx(w);
    sol_table_layout tl;
    sol_table_layout_compute(width - 2, &tl);
    attr_t head = style(t, ST_HEADING);
    fill(t, w, 0, 0, width, " ", head);
    for (int i = 0; i < tl.n; i++) {
        sol_col c = tl.cols[i].col;
        char text[32];
        if (c == SOL_COL_BAR)
            snprintf(text, sizeof text, "%s", tl.cols[i].w >= 14 ? "0 .. 100% SOL" : "");
        else
            snprintf(text, sizeof text, "%s%s", sol_col_heading(c), sort_column(f->sort, c) ? t->g->sort_mark : "");
        int pad = sol_col_right_aligned(c) ? tl.cols[i].w - sol_text_width(text) : 0;
        put(t, w, 0, 1 + tl.cols[i].x + (pad > 0 ? pad : 0), text, head | A_BOLD);
    }
    if (f->n_rows == 0) {
        put(t, w, 1, 1, "waiting for the first step...", style(t, ST_DIM));
        return;
    }
    int y = 1;
    for (int i = 0; i < f->n_rows && y < h - 1; i++, y++)
        draw_row(t, w, y, f, &f->rows[i], &tl, A_NORMAL);
    if (y < h)
        draw_row(t, w, y, f, NULL, &tl, style(t, ST_BOLD));
}

static const char *cell_glyph(const sol_tui *t, const sol_cell *c, char *one)
{
    switch (c->kind) {
    case SOL_CELL_TEXT:
    case SOL_CELL_MARKER: one[0] = c->ch, one[1] = '\0'; return one;
    case SOL_CELL_AXIS_X: return t->g->axis_x;
    case SOL_CELL_AXIS_Y: return t->g->axis_y;
    case SOL_CELL_ORIGIN: return t->g->origin;
    case SOL_CELL_TICK_X: return t->g->tick_x;
    case SOL_CELL_TICK_Y: return t->g->tick_y;
    case SOL_CELL_SLOPE: return t->g->slope;
    case SOL_CELL_ROOF: return t->g->roof;
    default: return NULL;
    }
}

static double group_pct(const sol_frame *f, char key)
{
    for (int i = 0; i < f->n_rows; i++)
        if (sol_group_key(f->rows[i].group) == key)
            return sol_frame_sol_percent(&f->rows[i].t);
    return 0;
}

/* Markers in their group's % SOL colour, the roof bright, axes dim. */
static attr_t cell_style(const sol_tui *t, const sol_frame *f, const sol_cell *cell)
{
    switch (cell->kind) {
    case SOL_CELL_MARKER: return style(t, level(group_pct(f, cell->ch))) | A_BOLD;
    case SOL_CELL_SLOPE:
    case SOL_CELL_ROOF: return style(t, ST_ROOF);
    case SOL_CELL_TEXT: return A_NORMAL;
    default: return style(t, ST_DIM);
    }
}

static void draw_roofline(sol_tui *t, WINDOW *w, const sol_frame *f, const sol_layout *L)
{
    sol_rect c = L->chart, g = L->legend;
    int cy = c.y - L->main.y, cx = c.x - L->main.x;
    attr_t head = style(t, ST_HEADING);
    fill(t, w, cy, cx, c.w, " ", head);
    put(t, w, cy, cx, " roofline: achieved FLOP/s over FLOP/byte (log-log)", head | A_BOLD);
    int h = c.h - 1;
    size_t need = (size_t)(h > 0 ? h : 0) * (size_t)c.w;
    if (need > t->cells_cap) {
        sol_cell *cells = realloc(t->cells, need * sizeof *cells);
        if (!cells)
            return;
        t->cells = cells;
        t->cells_cap = need;
    }
    if (h > 0) {
        sol_roofline_raster(f, h, c.w, t->cells);
        char one[2];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < c.w; x++) {
                const sol_cell *cell = &t->cells[(size_t)y * c.w + x];
                const char *glyph = cell_glyph(t, cell, one);
                if (!glyph)
                    continue;
                put(t, w, cy + 1 + y, cx + x, glyph, cell_style(t, f, cell));
            }
    }
    /* legend */
    int gy = g.y - L->main.y, gx = g.x - L->main.x;
    char buf[64];
    fill(t, w, gy, gx, g.w, " ", head);
    put(t, w, gy, gx, " op group    % SOL", head | A_BOLD);
    int y = gy + 1;
    for (int i = 0; i < f->n_rows && y < gy + g.h; i++) {
        const sol_frame_row *r = &f->rows[i];
        double pct = sol_frame_sol_percent(&r->t);
        snprintf(buf, sizeof buf, "%c", sol_group_key(r->group));
        int x = put(t, w, y, gx + 1, buf, style(t, level(pct)) | A_BOLD);
        snprintf(buf, sizeof buf, " %-11s%5.1f%%", sol_op_group_name(r->group), pct);
        put(t, w, y++, x, buf, A_NORMAL);
    }
    const sol_frame_info *in = f->info;
    char peak[32];
    sol_fmt_count(peak, sizeof peak, in->peak_flops, "FLOP/s");
    const char *notes[4];
    char n0[48], n1[48], n2[48];
    snprintf(n0, sizeof n0, " %s %.1f GB/s", t->g->slope, in->mem_bw / 1e9);
    snprintf(n1, sizeof n1, " %s %s %s", t->g->roof, peak, in->peak_name);
    snprintf(n2, sizeof n2, " ridge %.1f FLOP/B", in->peak_flops / in->mem_bw);
    notes[0] = n0, notes[1] = n1, notes[2] = n2, notes[3] = " ceilings: cpu entry";
    y++;
    for (int i = 0; i < 4 && y < gy + g.h; i++)
        put(t, w, y++, gx, notes[i], i < 2 ? style(t, ST_ROOF) : style(t, ST_DIM));
}

static void draw_spark(sol_tui *t, WINDOW *w, const sol_frame *f)
{
    int width = getmaxx(w);
    int x = put(t, w, 0, 0, " tok/s ", style(t, ST_BOLD));
    if (f->n_history == 0) {
        put(t, w, 0, x, "history appears with the first decoded tokens", style(t, ST_DIM));
        return;
    }
    double max = 0, last = f->history[f->n_history - 1];
    for (int i = 0; i < f->n_history; i++)
        if (f->history[i] > max)
            max = f->history[i];
    char tail[64];
    snprintf(tail, sizeof tail, " last %.1f  max %.1f", last, max);
    int room = width - x - sol_text_width(tail) - 1;
    unsigned char levels[SOL_FRAME_HISTORY];
    int n = sol_sparkline(f->history, f->n_history, room < SOL_FRAME_HISTORY ? room : SOL_FRAME_HISTORY, levels);
    for (int i = 0; i < n; i++)
        x = put(t, w, 0, x, t->g->spark[levels[i]], style(t, ST_ROOF));
    put(t, w, 0, x, tail, style(t, ST_DIM));
}

static void draw_text(sol_tui *t, WINDOW *w, const sol_frame *f)
{
    int h = getmaxy(w), width = getmaxx(w);
    char buf[96];
    attr_t head = style(t, ST_HEADING);
    fill(t, w, 0, 0, width, " ", head);
    snprintf(buf, sizeof buf, " generated text (%d tokens)", f->generated);
    put(t, w, 0, 0, buf, head | A_BOLD);
    int max_lines = h - 1;
    if (max_lines <= 0 || width < 3)
        return;
    sol_text_line *lines = malloc((size_t)max_lines * sizeof *lines);
    size_t cap = (size_t)width * 4 + 8;
    char *out = malloc(cap);
    if (lines && out) {
        const char *text = f->text ? f->text : "";
        size_t len = f->text ? f->text_len : 0, prompt = f->prompt_len < len ? f->prompt_len : len;
        int n = sol_text_wrap(text, len, width - 2, lines, max_lines);
        for (int i = 0; i < n; i++) {
            /* the prompt dim, then what the model wrote */
            size_t end = lines[i].off + lines[i].len;
            size_t cut = prompt < lines[i].off ? lines[i].off : prompt < end ? prompt : end;
            sol_text_line said = {lines[i].off, cut - lines[i].off}, rest = {cut, end - cut};
            sol_text_render(text, &said, t->utf8, out, cap);
            int x = put(t, w, 1 + i, 1, out, style(t, ST_DIM));
            sol_text_render(text, &rest, t->utf8, out, cap);
            put(t, w, 1 + i, x, out, A_NORMAL);
        }
    }
    free(lines);
    free(out);
}

static void draw_status(sol_tui *t, WINDOW *w, const sol_frame *f)
{
    int width = getmaxx(w);
    attr_t bar_attr = style(t, ST_TITLE);
    fill(t, w, 0, 0, width, " ", bar_attr);
    static const char *const keys[][2] = {
        {"q", "quit"}, {"p", "pause"}, {"s", "sort"}, {"r", "roofline"}, {"h", "help"}};
    int x = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        x = put(t, w, 0, x + 1, keys[i][0], bar_attr | A_BOLD);
        const char *label = i == 1 && f->phase == SOL_PHASE_PAUSED ? "resume"
                            : i == 3 && f->view == SOL_VIEW_ROOFLINE ? "table"
                                                                     : keys[i][1];
        x = put(t, w, 0, x + 1, label, bar_attr);
        x++;
    }
    char right[96];
    const char *note = f->phase == SOL_PHASE_PAUSED   ? "PAUSED  "
                       : f->phase == SOL_PHASE_DONE    ? "done: q quits  "
                       : f->phase == SOL_PHASE_STOPPING ? "stopping...  "
                                                        : "";
    snprintf(right, sizeof right, "%ssort: %s ", note, sol_sort_name(f->sort));
    int rx = width - sol_text_width(right);
    if (rx > x)
        put(t, w, 0, rx, right, bar_attr | (note[0] ? A_BOLD : 0));
}

static void draw_help(sol_tui *t, WINDOW *w)
{
    static const char *const lines[] = {
        "sol run: live roofline view",
        "",
        "q        quit: stop generating, print the summary",
        "p        pause / resume decoding",
        "s        sort the table: plan, time, % SOL, lost",
        "r        switch between the op table and the roofline",
        "h ?      this help (any key closes it)",
        "",
        "SOL      time per token at the speed of light",
        "actual   measured time per token (last 8 tokens)",
        "share    of the measured token time",
        "GB/s     plan bytes / measured time (GFLOP/s alike)",
        "counted  --counters: DRAM bytes CUPTI counted / that step's time",
        "bound    what limits the op at SOL",
        "% SOL    SOL time / measured time; 100% = roofline",
        "",
        "roofline: the slope is memory bandwidth, the flat",
        "line peak FLOP/s; markers sit at (FLOP/byte,",
        "achieved FLOP/s) of each op group",
    };
    if (t->utf8)
        box(w, 0, 0);
    else
        wborder(w, '|', '|', '-', '-', '+', '+', '+', '+');
    int h = getmaxy(w);
    for (size_t i = 0; i < sizeof lines / sizeof lines[0] && (int)i + 1 < h - 1; i++)
        put(t, w, 1 + (int)i, 2, lines[i], i == 0 ? style(t, ST_BOLD) : A_NORMAL);
}

static void draw_too_small(sol_tui *t, WINDOW *w, const sol_layout *L)
{
    char a[64], b[64];
    snprintf(a, sizeof a, "terminal too small: %dx%d", L->cols, L->rows);
    snprintf(b, sizeof b, "sol run needs %dx%d", SOL_TUI_MIN_COLS, SOL_TUI_MIN_ROWS);
    const char *lines[] = {a, b, "q quits"};
    int y0 = L->rows / 2 - 1;
    for (int i = 0; i < 3; i++) {
        int x = (L->cols - sol_text_width(lines[i])) / 2;
        put(t, w, y0 + i, x > 0 ? x : 0, lines[i], i == 0 ? style(t, ST_BOLD) : A_NORMAL);
    }
}

void sol_tui_draw(sol_tui *t, const sol_frame *f)
{
    int rows, cols;
    getmaxyx(stdscr, rows, cols);
    sol_layout L;
    sol_layout_compute(rows, cols, f, &L);
    /* the background first, so a pane that went away leaves nothing behind */
    werase(stdscr);
    wnoutrefresh(stdscr);
    WINDOW *w;
    if ((w = pane(t, PANE_MESSAGE, L.message))) {
        draw_too_small(t, w, &L);
        wnoutrefresh(w);
    }
    if ((w = pane(t, PANE_HEADER, L.header))) {
        draw_header(t, w, f);
        wnoutrefresh(w);
    }
    if ((w = pane(t, PANE_MAIN, L.main))) {
        if (f->view == SOL_VIEW_ROOFLINE)
            draw_roofline(t, w, f, &L);
        else
            draw_table(t, w, f);
        wnoutrefresh(w);
    }
    if ((w = pane(t, PANE_SPARK, L.spark))) {
        draw_spark(t, w, f);
        wnoutrefresh(w);
    }
    if ((w = pane(t, PANE_TEXT, L.text))) {
        draw_text(t, w, f);
        wnoutrefresh(w);
    }
    if ((w = pane(t, PANE_STATUS, L.status))) {
        draw_status(t, w, f);
        wnoutrefresh(w);
    }
    if ((w = pane(t, PANE_HELP, L.help))) {
        draw_help(t, w);
        wnoutrefresh(w);
    }
    doupdate();
}

int sol_tui_key(sol_tui *t, int timeout_ms)
{
    wtimeout(t->input, timeout_ms);
    int ch = wgetch(t->input);
    return ch == ERR ? -1 : ch;
}

int sol_tui_open(const sol_tui_options *opts, sol_tui **out, sol_err *err)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
        return sol_fail(err, SOL_ERR_USAGE, "--tui needs a terminal on stdin and stdout (use --plain or --json)");
    sol_tui *t = calloc(1, sizeof *t);
    if (!t)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    setlocale(LC_CTYPE, "");
    const char *codeset = nl_langinfo(CODESET);
    t->utf8 = !opts->ascii && codeset && strcmp(codeset, "UTF-8") == 0;
    t->g = t->utf8 ? &utf8_glyphs : &ascii_glyphs;
    t->screen = newterm(NULL, stdout, stdin);
    if (!t->screen) {
        const char *term = getenv("TERM");
        free(t);
        return sol_fail(err, SOL_ERR_RUNTIME, "cannot drive the terminal \"%s\" (TERM); use --plain",
                        term ? term : "");
    }
    set_term(t->screen);
    cbreak();
    noecho();
    nonl();
    curs_set(0);
    set_escdelay(25);
    t->color = opts->color && has_colors();
    if (t->color) {
        start_color();
        use_default_colors();
        init_pair(PAIR_TITLE, COLOR_BLACK, COLOR_CYAN);
        init_pair(PAIR_HEADING, COLOR_BLACK, COLOR_GREEN);
        init_pair(PAIR_GOOD, COLOR_GREEN, -1);
        init_pair(PAIR_WARN, COLOR_YELLOW, -1);
        init_pair(PAIR_BAD, COLOR_RED, -1);
        init_pair(PAIR_ROOF, COLOR_CYAN, -1);
        init_pair(PAIR_MARKER, COLOR_MAGENTA, -1);
    }
    t->input = newwin(1, 1, 0, 0);
    if (!t->input) {
        sol_tui_close(t);
        return sol_fail(err, SOL_ERR_RUNTIME, "ncurses: cannot create a window");
    }
    keypad(t->input, TRUE);
    wnoutrefresh(t->input); /* untouched from now on */
    *out = t;
    return 0;
}

void sol_tui_close(sol_tui *t)
{
    if (!t)
        return;
    for (int i = 0; i < PANE_COUNT; i++)
        if (t->win[i])
            delwin(t->win[i]);
    if (t->input)
        delwin(t->input);
    curs_set(1);
    endwin();
    delscreen(t->screen);
    free(t->cells);
    free(t);
}
