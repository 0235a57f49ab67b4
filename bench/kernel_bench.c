/* Throughput of sol_dot per weight type, scalar reference vs SIMD side by side
 * in one run, then f32 activations vs the integer-dot path (act_q8.h) for the
 * types that have it: one thread, a matrix several times the last-level
 * cache (what DRAM lets decode reach), or with --resident a matrix that
 * fits in L2 read over and over (what the kernel itself can compute, which
 * must exceed one core's share of DRAM bandwidth for decode to stay
 * memory-bound). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cpu/act_q8.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/simd.h"
#include "util/clock.h"

static const sol_dtype all_types[] = {SOL_DT_F32,  SOL_DT_F16,  SOL_DT_BF16, SOL_DT_Q8_0,
                                      SOL_DT_Q4_0, SOL_DT_Q4_1, SOL_DT_Q4_K, SOL_DT_Q6_K};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_u64(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static float rng_float(void) { return (float)((double)(rng_u64() >> 11) * 0x1p-53 * 2 - 1); }


static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

/* Plain floats from [-1, 1); blocks of random bytes with f16 scales near
 * 0.01 (all codes occur; the values do not matter for speed, only that no
 * NaN or subnormal slows either path). */
static void fill(sol_dtype t, uint8_t *w, int64_t rows, int64_t cols, size_t row_bytes)
{
    if (t == SOL_DT_F32 || t == SOL_DT_F16 || t == SOL_DT_BF16) {
        float *v = malloc(sizeof(float) * (size_t)cols);
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t c = 0; c < cols; c++)
                v[c] = rng_float();
            sol_quantize(t, v, w + (size_t)r * row_bytes, cols);
        }
        free(v);
        return;
    }
    size_t bytes = row_bytes * (size_t)rows, block = (size_t)sol_dtype_block_bytes(t);
    for (size_t i = 0; i < bytes; i += 8) {
        uint64_t v = rng_u64();
        memcpy(w + i, &v, bytes - i < 8 ? bytes - i : 8);
    }
    for (size_t off = 0; off < bytes; off += block) {
        uint16_t d = sol_f32_to_f16(0.01f * (1 + rng_float() / 2));
        uint16_t m = sol_f32_to_f16(-0.08f * (1 + rng_float() / 2));
        switch (t) {
        case SOL_DT_Q8_0:
        case SOL_DT_Q4_0: put_u16(w + off, d); break;
        case SOL_DT_Q4_1:
        case SOL_DT_Q4_K:
            put_u16(w + off, d);
            put_u16(w + off + 2, m);
            break;
        case SOL_DT_Q6_K: put_u16(w + off + 208, d); break;
        default: break;
        }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* True when the comma-separated filter (empty: every type) names t. */
static int type_selected(const char *types_arg, sol_dtype t)
{
    if (!types_arg[0])
        return 1;
    char list[260], needle[32];
    snprintf(list, sizeof list, ",%s,", types_arg);
    snprintf(needle, sizeof needle, ",%s,", sol_dtype_name(t));
    return strstr(list, needle) != NULL;
}

/* Times the matrix is read per pass: 1, or with --resident enough to make a
 * pass long against the clock's resolution. */
static int loops = 1;

/* One pass: every row's dot with x, loops times; returns seconds. */
static double pass(const sol_cpu_kernels *k, sol_dtype t, const uint8_t *w, int64_t rows, int64_t cols,
                   size_t row_bytes, const float *x, float *y)
{
    double start = sol_now_s();
    for (int l = 0; l < loops; l++)
        for (int64_t r = 0; r < rows; r++)
            y[r] = k->dot(t, w + (size_t)r * row_bytes, x, cols);
    return sol_now_s() - start;
}

/* One pass of the integer-dot path: x quantised once, then every row's dot
 * in tiles of tile_rows rows and one input (the last tile may be shorter),
 * loops times. */
static double pass_q8(const sol_cpu_kernels *k, sol_dtype t, const uint8_t *w, int64_t rows, int64_t cols,
                      size_t row_bytes, const float *x, sol_q8_block *xq, int tile_rows, float *y)
{
    double start = sol_now_s();
    k->quantize_act(x, xq, cols);
    for (int l = 0; l < loops; l++)
        for (int64_t r = 0; r < rows; r += tile_rows) {
            int n_rows = rows - r < tile_rows ? (int)(rows - r) : tile_rows;
            k->dot_q8(t, w + (size_t)r * row_bytes, row_bytes, n_rows, xq, 0, 1, cols, y + r, 0);
        }
    return sol_now_s() - start;
}

/* Bytes one pass reads: the matrix, loops times. */
static double pass_bytes(size_t bytes) { return (double)bytes * loops; }

/* Largest |b - a| relative to the RMS of a (a single dot near zero would make
 * a per-row ratio meaningless). */
static double max_diff_over_rms(const float *a, const float *b, int64_t n)
{
    double max_diff = 0, sum_sq = 0;
    for (int64_t i = 0; i < n; i++) {
        sum_sq += (double)a[i] * a[i];
        max_diff = fmax(max_diff, fabs((double)b[i] - a[i]));
    }
    return max_diff / (sqrt(sum_sq / (double)n) + 1e-30);
}

static void sort_cell(double *gbs, int reps, char *cell, size_t cell_size, double *median)
{
    qsort(gbs, (size_t)reps, sizeof(double), cmp_double);
    *median = gbs[reps / 2];
    snprintf(cell, cell_size, "%7.2f (%6.2f-%6.2f)", *median, gbs[0], gbs[reps - 1]);
}

/* f32 activations (sol_dot per row) against the integer-dot path (act_q8.h)
 * on the best kernel table, for the weight types that have it: GB/s of
 * weight bytes, the quantisation of x counted in each q8 pass. */
static void bench_q8(const sol_cpu_kernels *k, sol_dtype t, int64_t cols, double mib, int reps, const float *x)
{
    enum { F32, Q8_1, Q8_2, Q8_4, VARIANTS };
    size_t row_bytes = sol_row_bytes(t, cols);
    int64_t rows = (int64_t)ceil(mib * 1048576.0 / (double)row_bytes);
    size_t bytes = row_bytes * (size_t)rows;
    uint8_t *w = malloc(bytes);
    sol_q8_block *xq = malloc(sizeof(sol_q8_block) * (size_t)(cols / SOL_Q8_BLOCK));
    float *y[VARIANTS];
    double *gbs[VARIANTS];
    int allocated = w && xq;
    for (int v = 0; v < VARIANTS; v++) {
        y[v] = malloc(sizeof(float) * (size_t)rows);
        gbs[v] = malloc(sizeof(double) * (size_t)reps);
        allocated = allocated && y[v] && gbs[v];
    }
    if (!allocated) {
        fprintf(stderr, "out of memory for %s\n", sol_dtype_name(t));
        exit(1);
    }
    fill(t, w, rows, cols, row_bytes);
    for (int rep = -1; rep < reps; rep++) { /* rep -1: warm-up */
        double s[VARIANTS] = {pass(k, t, w, rows, cols, row_bytes, x, y[F32]),
                              pass_q8(k, t, w, rows, cols, row_bytes, x, xq, 1, y[Q8_1]),
                              pass_q8(k, t, w, rows, cols, row_bytes, x, xq, 2, y[Q8_2]),
                              pass_q8(k, t, w, rows, cols, row_bytes, x, xq, 4, y[Q8_4])};
        for (int v = 0; rep >= 0 && v < VARIANTS; v++)
            gbs[v][rep] = pass_bytes(bytes) / s[v] / 1e9;
    }
    char cell[VARIANTS][64];
    double med[VARIANTS];
    for (int v = 0; v < VARIANTS; v++)
        sort_cell(gbs[v], reps, cell[v], sizeof cell[v], &med[v]);
    /* the f32 path differs by the rounding of x to 8 bits */
    printf("%-6s %7lld %9.1f | %-26s | %-26s | %-26s | %-26s | %5.2fx %5.2fx %5.2fx | %.2g\n", sol_dtype_name(t),
           (long long)rows, (double)bytes / 1048576.0, cell[F32], cell[Q8_1], cell[Q8_2], cell[Q8_4],
           med[Q8_1] / med[F32], med[Q8_2] / med[F32], med[Q8_4] / med[F32], max_diff_over_rms(y[F32], y[Q8_1], rows));
    fflush(stdout);
    for (int v = 0; v < VARIANTS; v++) {
        free(y[v]);
        free(gbs[v]);
    }
    free(xq);
    free(w);
}

static void usage(void)
{
    fprintf(stderr, "usage: kernel_bench [--cols N] [--mib MiB] [--reps N] [--types f32,q4_0,...] [--resident]\n"
                    "  sol_dot GB/s per weight type, one thread, every available kernel table side\n"
                    "  by side; then, for the types with integer dots, f32 activations vs 8-bit\n"
                    "  ones (sol_dot_q8, 1, 2 and 4 rows a call) on the best table; rows chosen so\n"
                    "  the matrix holds at least MiB (default 128: DRAM-bound).\n"
                    "  --resident: a matrix of 0.5 MiB unless --mib says otherwise, which stays in\n"
                    "  L2, read repeatedly (>= 256 MiB a pass): the kernels' compute throughput.\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int64_t cols = 4096;
    double mib = 128;
    int reps = 7, resident = 0, mib_given = 0;
    char types_arg[256] = "";
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--cols") == 0)
            cols = atoll(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--mib") == 0) {
            mib = atof(argv[++i]);
            mib_given = 1;
        } else if (strcmp(argv[i], "--resident") == 0)
            resident = 1;
        else if (i + 1 < argc && strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--types") == 0)
            snprintf(types_arg, sizeof types_arg, "%s", argv[++i]);
        else
            usage();
    }
    if (cols <= 0 || cols % 256 != 0 || reps < 1 || mib <= 0)
        usage();
    if (resident) {
        if (!mib_given)
            mib = 0.5;
        loops = (int)ceil(256 / mib);
    }

    const sol_cpu_kernels *tables[2] = {sol_cpu_kernels_get("scalar"), sol_cpu_kernels_get("avx2")};
    int n_tables = tables[1] ? 2 : 1;
    if (!tables[1])
        printf("(no AVX2+FMA+F16C here: scalar only)\n");
    printf("sol_dot, 1 thread, %lld cols, >= %g MiB per matrix%s, median of %d passes after 1 warm-up "
           "(passes alternate between kernels)\n",
           (long long)cols, mib, resident ? " read repeatedly (cache-resident)" : "", reps);
    printf("%-6s %7s %9s | %-26s | %-26s | %7s | %s\n", "type", "rows", "MiB", "scalar GB/s med (min-max)",
           "avx2 GB/s med (min-max)", "speedup", "max diff / rms");

    float *x = malloc(sizeof(float) * (size_t)cols);
    for (int64_t c = 0; c < cols; c++)
        x[c] = rng_float();
    for (size_t ti = 0; ti < sizeof all_types / sizeof all_types[0]; ti++) {
        sol_dtype t = all_types[ti];
        if (!type_selected(types_arg, t))
            continue;
        size_t row_bytes = sol_row_bytes(t, cols);
        int64_t rows = (int64_t)ceil(mib * 1048576.0 / (double)row_bytes);
        size_t bytes = row_bytes * (size_t)rows;
        uint8_t *w = malloc(bytes);
        float *y[2] = {malloc(sizeof(float) * (size_t)rows), malloc(sizeof(float) * (size_t)rows)};
        if (!w || !y[0] || !y[1]) {
            fprintf(stderr, "out of memory for %s\n", sol_dtype_name(t));
            return 1;
        }
        fill(t, w, rows, cols, row_bytes);

        double *gbs[2] = {malloc(sizeof(double) * (size_t)reps), malloc(sizeof(double) * (size_t)reps)};
        for (int k = 0; k < n_tables; k++)
            pass(tables[k], t, w, rows, cols, row_bytes, x, y[k]); /* warm-up */
        for (int rep = 0; rep < reps; rep++)
            for (int k = 0; k < n_tables; k++)
                gbs[k][rep] = pass_bytes(bytes) / pass(tables[k], t, w, rows, cols, row_bytes, x, y[k]) / 1e9;

        /* largest difference between the tables */
        double max_rel = n_tables == 2 ? max_diff_over_rms(y[0], y[1], rows) : 0;
        char cell[2][64] = {"-", "-"};
        double med[2] = {0, 0};
        for (int k = 0; k < n_tables; k++)
            sort_cell(gbs[k], reps, cell[k], sizeof cell[k], &med[k]);
        printf("%-6s %7lld %9.1f | %-26s | %-26s | %6.2fx | %.2g\n", sol_dtype_name(t), (long long)rows,
               (double)bytes / 1048576.0, cell[0], cell[1], n_tables == 2 ? med[1] / med[0] : 1.0, max_rel);
        fflush(stdout);
        free(gbs[0]);
        free(gbs[1]);
        free(w);
        free(y[0]);
        free(y[1]);
    }

    const sol_cpu_kernels *best = tables[n_tables - 1];
    printf("\nf32 activations (sol_dot per row) vs the integer-dot path (x quantised once per pass, then "
           "sol_dot_q8 tiles of 1, 2 or 4 rows x 1 input), %s kernels, GB/s of weight bytes\n",
           best->isa);
    printf("%-6s %7s %9s | %-26s | %-26s | %-26s | %-26s | %-19s | %s\n", "type", "rows", "MiB",
           "f32-x GB/s med (min-max)", "q8 1x1 GB/s med (min-max)", "q8 2x1 GB/s med (min-max)",
           "q8 4x1 GB/s med (min-max)", "q8 / f32", "max diff / rms");
    for (size_t ti = 0; ti < sizeof all_types / sizeof all_types[0]; ti++)
        if (sol_act_q8_applies(all_types[ti]) && type_selected(types_arg, all_types[ti]))
            bench_q8(best, all_types[ti], cols, mib, reps, x);
    free(x);
    return 0;
}
