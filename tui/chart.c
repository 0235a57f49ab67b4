/* Charts as pure rasters: the log-log roofline (cells a renderer maps to
 * glyphs), sparkline levels and bar fills. No terminal here, so the
 * geometry is unit-tested. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tui/tui.h"

/* '1'..'9', then '0' for the tenth group (and anything unknown). */
char sol_group_key(sol_op_group g)
{
    int i = (unsigned)g < SOL_GROUP_COUNT ? (int)g : SOL_GROUP_OTHER;
    return i < 9 ? (char)('1' + i) : '0';
}

enum { Y_LABEL_COLS = 5 }; /* "100G" and a space; the y axis is the next column */

typedef struct {
    int h, w;     /* whole raster */
    int ph, pw;   /* plot area: rows 0..ph-1, columns x0..x0+pw-1 */
    int x0;
    double lx_lo, lx_hi, ly_lo, ly_hi; /* log10 ranges */
    sol_cell *cells;
} raster;

static sol_cell *at(raster *r, int y, int x) { return &r->cells[(size_t)y * r->w + x]; }

static int col_of(const raster *r, double x)
{
    double t = (log10(x) - r->lx_lo) / (r->lx_hi - r->lx_lo);
    return r->x0 + (int)lround(t * (r->pw - 1));
}

static int row_of(const raster *r, double y)
{
    double t = (log10(y) - r->ly_lo) / (r->ly_hi - r->ly_lo);
    return (r->ph - 1) - (int)lround(t * (r->ph - 1));
}

static int in_plot(const raster *r, int y, int x) { return y >= 0 && y < r->ph && x >= r->x0 && x < r->x0 + r->pw; }

/* Writes text at (y, x) when every cell it covers is empty and no other
 * label touches it. */
static int label(raster *r, int y, int x, const char *text)
{
    int n = (int)strlen(text);
    if (y < 0 || y >= r->h || x < 0 || x + n > r->w)
        return 0;
    for (int i = 0; i < n; i++)
        if (at(r, y, x + i)->kind != SOL_CELL_EMPTY)
            return 0;
    if ((x > 0 && at(r, y, x - 1)->kind == SOL_CELL_TEXT) || (x + n < r->w && at(r, y, x + n)->kind == SOL_CELL_TEXT))
        return 0;
    for (int i = 0; i < n; i++)
        *at(r, y, x + i) = (sol_cell){SOL_CELL_TEXT, text[i]};
    return 1;
}

/* "1G", "10G", "100G", "1T" for 10^k (k >= 0), "0.1".. below 1. */
static void decade_si(char *buf, int cap, int k)
{
    static const char prefixes[] = " kMGTPE";
    if (k < 0) {
        snprintf(buf, (size_t)cap, "%g", pow(10, k));
        return;
    }
    int p = k / 3 < 6 ? k / 3 : 6;
    int mant = 1;
    for (int i = 0; i < k - 3 * p; i++)
        mant *= 10;
    if (p == 0)
        snprintf(buf, (size_t)cap, "%d", mant);
    else
        snprintf(buf, (size_t)cap, "%d%c", mant, prefixes[p]);
}

int sol_roofline_raster(const sol_frame *f, int h, int w, sol_cell *cells)
{
    raster r = {.h = h, .w = w, .cells = cells, .x0 = Y_LABEL_COLS + 1};
    if (h <= 0 || w <= 0)
        return 0;
    memset(cells, 0, (size_t)h * (size_t)w * sizeof *cells);
    r.ph = h - 2;
    r.pw = w - r.x0;
    const sol_frame_info *info = f->info;
    if (r.ph < 4 || r.pw < 10 || !info || info->mem_bw <= 0 || info->peak_flops <= 0) {
        label(&r, 0, 0, "no room for the chart");
        return 0;
    }
    double bw = info->mem_bw, peak = info->peak_flops, ridge = peak / bw;

    /* ranges: every marker, the ridge and a decade of slope on each side */
    double i_lo = ridge, i_hi = ridge, p_lo = peak, p_hi = peak;
    for (int i = 0; i < f->n_rows; i++) {
        const sol_frame_totals *t = &f->rows[i].t;
        if (t->bytes <= 0 || t->flops <= 0 || t->achieved_s <= 0)
            continue;
        double x = sol_frame_intensity(t), y = t->flops / t->achieved_s;
        i_lo = fmin(i_lo, x), i_hi = fmax(i_hi, x);
        p_lo = fmin(p_lo, y), p_hi = fmax(p_hi, y);
    }
    r.lx_lo = floor(log10(fmin(i_lo, ridge / 10) * 0.8));
    r.lx_hi = ceil(log10(fmax(i_hi, ridge) * 4));
    r.ly_hi = ceil(log10(fmax(p_hi, peak) * 1.5));
    r.ly_lo = floor(log10(fmin(p_lo, bw * pow(10, r.lx_lo)) * 0.8));
    if (r.lx_hi - r.lx_lo < 2)
        r.lx_hi = r.lx_lo + 2;
    if (r.ly_hi - r.ly_lo < 2)
        r.ly_lo = r.ly_hi - 2;

    /* axes */
    int axis_y = r.ph, axis_x = r.x0 - 1;
    for (int y = 0; y < r.ph; y++)
        *at(&r, y, axis_x) = (sol_cell){SOL_CELL_AXIS_Y, 0};
    for (int x = r.x0; x < w; x++)
        *at(&r, axis_y, x) = (sol_cell){SOL_CELL_AXIS_X, 0};
    *at(&r, axis_y, axis_x) = (sol_cell){SOL_CELL_ORIGIN, 0};
    char buf[32];
    int last_label_row = -2;
    for (int k = (int)r.ly_hi; k >= (int)r.ly_lo; k--) {
        int y = row_of(&r, pow(10, k));
        if (y < 0 || y >= r.ph)
            continue;
        *at(&r, y, axis_x) = (sol_cell){SOL_CELL_TICK_Y, 0};
        if (y - last_label_row >= 2) {
            decade_si(buf, sizeof buf, k);
            int n = (int)strlen(buf);
            if (n <= Y_LABEL_COLS && label(&r, y, Y_LABEL_COLS - n, buf))
                last_label_row = y;
        }
    }
    int last_label_end = -1;
    for (int k = (int)r.lx_lo; k <= (int)r.lx_hi; k++) {
        int x = col_of(&r, pow(10, k));
        if (x < r.x0 || x >= w)
            continue;
        *at(&r, axis_y, x) = (sol_cell){SOL_CELL_TICK_X, 0};
        decade_si(buf, sizeof buf, k);
        int n = (int)strlen(buf), lx = x - n / 2;
        if (lx < r.x0 - 1)
            lx = r.x0 - 1;
        if (lx + n > w)
            lx = w - n;
        if (lx > last_label_end && label(&r, h - 1, lx, buf))
            last_label_end = lx + n;
    }
    if (w - last_label_end > 10)
        label(&r, h - 1, w - 9, "FLOP/byte");

    /* the roof: one cell per column, joined vertically where it climbs fast */
    int prev = -1;
    for (int x = r.x0; x < r.x0 + r.pw; x++) {
        double t = (double)(x - r.x0) / (r.pw - 1);
        double xi = pow(10, r.lx_lo + t * (r.lx_hi - r.lx_lo));
        int slope = bw * xi < peak;
        int y = row_of(&r, slope ? bw * xi : peak);
        int from = prev >= 0 && prev - 1 > y ? prev - 1 : y;
        for (int yy = from; yy >= y; yy--)
            if (in_plot(&r, yy, x))
                *at(&r, yy, x) = (sol_cell){slope ? SOL_CELL_SLOPE : SOL_CELL_ROOF, 0};
        prev = y;
    }

    /* markers: the group's key at (intensity, achieved FLOP/s), nudged
     * next to an earlier marker that took the same cell */
    int drawn = 0;
    for (int i = 0; i < f->n_rows; i++) {
        const sol_frame_totals *t = &f->rows[i].t;
        if (t->bytes <= 0 || t->flops <= 0 || t->achieved_s <= 0)
            continue;
        int y = row_of(&r, t->flops / t->achieved_s), x = col_of(&r, sol_frame_intensity(t));
        static const int nudge[][2] = {{0, 0}, {0, 1}, {0, -1}, {-1, 0}, {1, 0}, {0, 2}, {-1, 1}, {1, 1}};
        for (size_t k = 0; k < sizeof nudge / sizeof nudge[0]; k++) {
            int yy = y + nudge[k][0], xx = x + nudge[k][1];
            if (in_plot(&r, yy, xx) && at(&r, yy, xx)->kind != SOL_CELL_MARKER) {
                *at(&r, yy, xx) = (sol_cell){SOL_CELL_MARKER, sol_group_key(f->rows[i].group)};
                drawn++;
                break;
            }
        }
    }

    /* name the ceilings where there is room: the compute roof above its
     * right end, the bandwidth along the slope */
    char peak_text[48], bw_text[32];
    sol_fmt_count(peak_text, sizeof peak_text, peak, "FLOP/s");
    snprintf(bw_text, sizeof bw_text, "%.1f GB/s", bw / 1e9);
    int peak_y = row_of(&r, peak);
    int n = (int)strlen(peak_text);
    if (!label(&r, peak_y - 1, r.x0 + r.pw - n, peak_text))
        label(&r, peak_y + 1, r.x0 + r.pw - n, peak_text);
    int ridge_x = col_of(&r, ridge);
    for (int x = r.x0 + 1; x < ridge_x; x++) {
        double t = (double)(x - r.x0) / (r.pw - 1);
        int y = row_of(&r, bw * pow(10, r.lx_lo + t * (r.lx_hi - r.lx_lo)));
        if (y >= 2 && label(&r, y - 1, x + 1, bw_text))
            break;
    }
    return drawn;
}

int sol_sparkline(const double *values, int n, int width, unsigned char *levels)
{
    int count = n < width ? n : width;
    if (count <= 0)
        return 0;
    const double *v = values + (n - count);
    double max = 0;
    for (int i = 0; i < count; i++)
        if (v[i] > max)
            max = v[i];
    for (int i = 0; i < count; i++) {
        int level = max > 0 ? (int)lround(8 * v[i] / max) : 0;
        if (level < 1 && v[i] > 0)
            level = 1;
        levels[i] = (unsigned char)(level < 0 ? 0 : level > 8 ? 8 : level);
    }
    return count;
}

int sol_bar_eighths(double fraction, int width)
{
    if (!(fraction > 0) || width <= 0)
        return 0;
    if (fraction > 1)
        fraction = 1;
    return (int)lround(fraction * width * 8);
}
