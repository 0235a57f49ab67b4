/* The public interface of tui/: the live view of `sol run`. A frame model
 * (pure data joined from the engine's timing snapshot and the analyzer's
 * prediction), a layout (a pure function of terminal size and frame), and
 * renderers that only draw it: ncurses, a plain stats line, JSON lines. */
#ifndef SOL_TUI_TUI_H
#define SOL_TUI_TUI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "analyzer/analyzer.h"
#include "engine/timing.h"
#include "models/plan.h"

/* ---- frame model ------------------------------------------------------ */

/* Sums over a set of ops (a group, a step, or a window of steps). */
typedef struct sol_frame_totals {
    int n_ops;
    double predicted_s; /* the analyzer's time: the sum of the ops' own rooflines */
    double fused_s;     /* steps' totals only: the whole step's bound (fused), the speed
                           of light that % SOL uses where set; 0 for op groups */
    double achieved_s;  /* measured */
    double bytes, flops;
    double bound_s[3];  /* predicted seconds of ops bound by memory, compute, comm */
} sol_frame_totals;

typedef struct sol_frame_op {
    char name[24];
    int layer;
    sol_op_group group;
    sol_bound bound;
    double achieved_s, predicted_s, bytes, flops;
} sol_frame_op;

/* One executed step: the timing snapshot joined op by op with the plan's
 * prediction. ops is optional per-op detail in a caller-owned buffer. */
typedef struct sol_frame_step {
    uint64_t step;
    int64_t pos;
    int n_tokens;
    int prefill;   /* a prompt step (set by the caller: a 1-token prompt looks like decode) */
    double step_s; /* the engine's step time (the sum of its op times) */
    uint64_t ops_step; /* the step whose op times these are: this one, or for a
                        * step run as a CUDA graph its latest profiled one (0: none) */
    /* --counters: the latest counted step's DRAM bytes (read + written) and
     * its step time (sol_step_timing's counted_*; counted_step 0: none yet),
     * and whether counting turned off (set by the caller) */
    uint64_t counted_step;
    double counted_bytes, counted_step_s;
    int counters_off;
    sol_frame_totals total;
    sol_frame_totals groups[SOL_GROUP_COUNT];
    sol_frame_op *ops;
    int n_ops;
} sol_frame_step;

/* Joins timing (a snapshot of the step that ran plan) with cost; ops may
 * be NULL (no per-op detail). Fails when the snapshot does not hold one
 * time per plan op. */
int sol_frame_step_build(const sol_plan *plan, const sol_step_cost *cost, const sol_step_timing *timing,
                         sol_frame_op *ops, int ops_cap, sol_frame_step *out, sol_err *err);
void sol_frame_totals_add(sol_frame_totals *sum, const sol_frame_totals *t);
/* 100 * predicted / achieved (0 when nothing was measured). */
double sol_frame_sol_percent(const sol_frame_totals *t);
double sol_frame_gbs(const sol_frame_totals *t);    /* achieved GB/s */
double sol_frame_gflops(const sol_frame_totals *t); /* achieved GFLOP/s */
double sol_frame_intensity(const sol_frame_totals *t); /* FLOP per byte */
sol_bound sol_frame_bound(const sol_frame_totals *t);  /* what most predicted time is bound by */

/* Recent steps, as the view needs them: a window of decode steps for the
 * table and a tok/s history for the sparkline. Pure data, no locking. */
#define SOL_FRAME_WINDOW 8
#define SOL_FRAME_HISTORY 256
typedef struct sol_frame_feed {
    sol_frame_step window[SOL_FRAME_WINDOW]; /* last decode steps, no per-op detail */
    int n_window, window_next;
    sol_frame_step last; /* the latest step, prefill or decode */
    int has_last;
    double history[SOL_FRAME_HISTORY]; /* tok/s of each decode step, a ring */
    int n_history, history_next;
    int decode_steps;
} sol_frame_feed;

void sol_frame_feed_init(sol_frame_feed *feed);
void sol_frame_feed_push(sol_frame_feed *feed, const sol_frame_step *step);

/* What does not change during a run. */
typedef struct sol_frame_info {
    char model[96];
    char backend[16];
    char device[128];
    char kv[64];
    char wtype[12], atype[12], kvtype[12];
    int threads;
    int tuned_shapes, tuned_total; /* decode matmul shapes with tuned parameters, of all (-1: unknown) */
    int counters;      /* --counters: the header shows counted DRAM GB/s */
    int64_t ctx;       /* cache capacity in tokens */
    int n_prompt, n_target;
    double mem_bw;     /* ceiling, bytes/s */
    char mem_bw_source[16];
    double peak_flops; /* ceiling for the plan's compute type, FLOP/s */
    char peak_name[8];
    char peak_source[16];
    char prompt[512];  /* the user's prompt, shown before the text (cut when longer) */
} sol_frame_info;

typedef enum sol_phase {
    SOL_PHASE_PREFILL,
    SOL_PHASE_DECODE,
    SOL_PHASE_PAUSED,
    SOL_PHASE_STOPPING,
    SOL_PHASE_DONE,
    SOL_PHASE_FAILED,
} sol_phase;
const char *sol_phase_name(sol_phase p);

typedef enum sol_view { SOL_VIEW_TABLE, SOL_VIEW_ROOFLINE } sol_view;
typedef enum sol_sort { SOL_SORT_PLAN, SOL_SORT_TIME, SOL_SORT_SOL, SOL_SORT_GAP, SOL_SORT_COUNT } sol_sort;
const char *sol_sort_name(sol_sort s);

typedef struct sol_frame_row {
    sol_op_group group;
    sol_frame_totals t;
    double share; /* of the window's achieved time */
} sol_frame_row;

/* Everything one screen shows. */
typedef struct sol_frame {
    const sol_frame_info *info;
    sol_phase phase;
    sol_view view;
    sol_sort sort;
    int help;
    int prefill_rows;  /* rows come from the prefill (no decode step yet) */
    int window_steps;  /* steps summed in rows/total */
    int window_tokens;
    uint64_t step;
    int64_t pos;       /* tokens in the cache */
    int generated;
    sol_frame_totals total;
    sol_frame_row rows[SOL_GROUP_COUNT];
    int n_rows;
    double tok_s, sol_tok_s; /* measured and predicted (the fused step bound) over the window */
    double unfused_tok_s;    /* predicted by the per-op sum */
    double gbs;              /* achieved GB/s */
    double sol_pct;          /* 100 * predicted / achieved */
    double bw_pct;           /* achieved bandwidth / ceiling */
    uint64_t counted_step;   /* --counters: the step counted_gbs is of (0: none yet) */
    double counted_gbs;      /* counted DRAM bytes / that step's time */
    int counters_off;
    double history[SOL_FRAME_HISTORY]; /* tok/s, oldest first */
    int n_history;
    const char *text; /* the prompt, then the generated bytes (UTF-8 as the model made them) */
    size_t text_len;
    size_t prompt_len; /* text[0, prompt_len) is the prompt */
} sol_frame;

/* Fills numbers, rows and history from feed; phase, view, sort, help,
 * generated and text are the caller's (set before or after). */
void sol_frame_build(const sol_frame_feed *feed, const sol_frame_info *info, sol_frame *f);
/* Orders f->rows by f->sort (plan order, achieved time, % SOL, lost time). */
void sol_frame_sort(sol_frame *f);

/* ---- layout ------------------------------------------------------------ */

enum { SOL_TUI_MIN_ROWS = 16, SOL_TUI_MIN_COLS = 60 };

typedef struct sol_rect {
    int y, x, h, w; /* h == 0 or w == 0: the pane is not shown */
} sol_rect;

typedef struct sol_layout {
    int rows, cols;
    int too_small; /* only `message` is shown */
    sol_rect message;
    sol_rect header;
    sol_rect main;          /* the table, or the roofline chart + legend */
    sol_rect chart, legend; /* inside main in the roofline view */
    sol_rect spark;
    sol_rect text;
    sol_rect status;
    sol_rect help;          /* an overlay on top of the others */
} sol_layout;

void sol_layout_compute(int rows, int cols, const sol_frame *f, sol_layout *out);
int sol_rect_empty(sol_rect r);

typedef enum sol_col {
    SOL_COL_GROUP,
    SOL_COL_SOL,
    SOL_COL_ACTUAL,
    SOL_COL_SHARE,
    SOL_COL_GBS,
    SOL_COL_GFLOPS,
    SOL_COL_BOUND,
    SOL_COL_PCT,
    SOL_COL_BAR,
    SOL_COL_COUNT
} sol_col;

typedef struct sol_table_layout {
    int n;
    struct {
        sol_col col;
        int x, w;
    } cols[SOL_COL_COUNT];
} sol_table_layout;

/* The op table's columns that fit in width, left to right; the least
 * needed (bound, GFLOP/s, GB/s, share) go first when space is short. */
void sol_table_layout_compute(int width, sol_table_layout *out);
const char *sol_col_heading(sol_col c);
int sol_col_right_aligned(sol_col c);
/* The text of one cell of a row (or of the total when row is NULL). */
void sol_table_cell(const sol_frame *f, const sol_frame_row *row, sol_col c, char *buf, int cap);

/* ---- charts (pure rasters; renderers pick the glyphs) ---------------------- */

typedef enum sol_cell_kind {
    SOL_CELL_EMPTY,
    SOL_CELL_TEXT,   /* ch is an ASCII label character */
    SOL_CELL_AXIS_X,
    SOL_CELL_AXIS_Y,
    SOL_CELL_ORIGIN,
    SOL_CELL_TICK_X,
    SOL_CELL_TICK_Y,
    SOL_CELL_SLOPE,  /* the bandwidth roof */
    SOL_CELL_ROOF,   /* the compute ceiling */
    SOL_CELL_MARKER, /* ch is the group's key (sol_group_key) */
} sol_cell_kind;

typedef struct sol_cell {
    unsigned char kind;
    char ch;
} sol_cell;

/* The marker key of a group in the chart and legend: '1'..'9'. */
char sol_group_key(sol_op_group g);

/* Rasterises the log-log roofline of f into h x w cells (row 0 at the
 * top): FLOP/s over FLOP/byte, the bandwidth slope and the compute ceiling
 * of f->info, and one marker per row at (intensity, achieved FLOP/s).
 * Returns the markers drawn (0 when there is nothing to plot yet). */
int sol_roofline_raster(const sol_frame *f, int h, int w, sol_cell *cells);

/* Sparkline levels 0..8 of the last `width` values (scaled to their max);
 * returns the number of levels written (<= width, right-aligned by caller). */
int sol_sparkline(const double *values, int n, int width, unsigned char *levels);
/* Eighths of a width-cell bar filled by fraction (clamped to 0..1). */
int sol_bar_eighths(double fraction, int width);

/* ---- text ------------------------------------------------------------------ */

typedef struct sol_text_line {
    size_t off, len; /* bytes of the text */
} sol_text_line;

/* Display columns of code point cp (0 for combining marks and controls,
 * 2 for wide East Asian and emoji). */
int sol_codepoint_width(uint32_t cp);
/* Decodes one UTF-8 sequence at s (n bytes left): returns its length, or
 * 0 when incomplete at the end, or -1 when invalid (one byte to skip). */
int sol_text_next(const char *s, size_t n, uint32_t *cp);
/* Bytes of s that end on a complete sequence (a token may end mid-character). */
size_t sol_text_complete(const char *s, size_t n);
/* Copies s to out as valid UTF-8 (U+FFFD for invalid bytes); returns the
 * length written (out holds at most cap - 1 bytes and a NUL). */
size_t sol_text_sanitize(const char *s, size_t n, char *out, size_t cap);
/* Word-wraps text to width columns and keeps the last max_lines lines in
 * lines (oldest first); returns how many were kept. */
int sol_text_wrap(const char *text, size_t n, int width, sol_text_line *lines, int max_lines);
/* The printable form of a line: UTF-8 (utf8) or ASCII with '?' for what
 * ASCII cannot show; controls dropped, tabs as spaces. Returns its columns. */
int sol_text_render(const char *text, const sol_text_line *line, int utf8, char *out, size_t cap);
/* Display columns of a UTF-8 string. */
int sol_text_width(const char *s);
/* s in at most `width` columns: unchanged when it fits, else its head and
 * its tail joined by "~" (the ends of a name say the most). Returns the
 * columns written. */
int sol_text_elide(const char *s, int width, char *out, size_t cap);

/* ---- non-interactive renderers ------------------------------------------------ */

/* One --plain stats line over `span` (the decode steps since the last). */
void sol_plain_line(char *buf, size_t cap, int token, int target, const sol_frame_totals *span, int span_tokens,
                    const sol_frame_info *info);
/* One --json line: token index, id and text, and the step that sampled it
 * (per-op times and group totals). */
cJSON *sol_json_token(const sol_frame_step *step, int index, int32_t id, const char *text, size_t text_len);

/* ---- the ncurses view -------------------------------------------------------- */

typedef struct sol_tui_options {
    int color; /* 0: --no-color or NO_COLOR */
    int ascii; /* force ASCII glyphs (else: UTF-8 when the locale is) */
} sol_tui_options;

typedef struct sol_tui sol_tui;
/* Takes over the terminal (stdin/stdout); fails when it is not one. */
int sol_tui_open(const sol_tui_options *opts, sol_tui **out, sol_err *err);
/* Restores the terminal. */
void sol_tui_close(sol_tui *t);
/* Waits up to timeout_ms for a key; -1 when none. */
int sol_tui_key(sol_tui *t, int timeout_ms);
/* Draws f (wnoutrefresh per pane, one doupdate). */
void sol_tui_draw(sol_tui *t, const sol_frame *f);

/* A live session: the decode thread pushes steps and text, the UI thread
 * (sol_live_run) owns the terminal and redraws at most every 100 ms. The
 * decode thread only ever takes a short lock to copy data in. */
typedef struct sol_live sol_live;
int sol_live_open(const sol_frame_info *info, const sol_tui_options *opts, sol_live **out, sol_err *err);
void sol_live_close(sol_live *l); /* restores the terminal; safe to call twice */
/* decode thread */
void sol_live_push_step(sol_live *l, const sol_frame_step *step);
void sol_live_push_text(sol_live *l, const char *bytes, size_t n, int generated);
/* Between tokens: blocks while paused; returns 1 when the user quit. */
int sol_live_gate(sol_live *l);
/* Decoding ended (failed: with an error); the UI returns once the user quits. */
void sol_live_finish(sol_live *l, int failed);
/* UI thread: runs until the user quits after decoding ended, or decoding
 * failed. interrupted, when not NULL, is polled (a signal handler's flag)
 * and acts like q. Returns 1 when the user stopped generation early. */
int sol_live_run(sol_live *l, volatile sig_atomic_t *interrupted);

#endif
