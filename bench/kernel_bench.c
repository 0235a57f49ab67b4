/* Throughput of sol_dot per weight type, scalar reference vs SIMD side by side
 * in one run: one thread, a matrix several times the last-level cache. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* One pass: every row's dot with x; returns seconds. */
static double pass(const sol_cpu_kernels *k, sol_dtype t, const uint8_t *w, int64_t rows, int64_t cols,
                   size_t row_bytes, const float *x, float *y)
{
    double start = sol_now_s();
    for (int64_t r = 0; r < rows; r++)
        y[r] = k->dot(t, w + (size_t)r * row_bytes, x, cols);
    return sol_now_s() - start;
}

static void usage(void)
{
    fprintf(stderr, "usage: kernel_bench [--cols N] [--mib MiB] [--reps N] [--types f32,q4_0,...]\n"
                    "  sol_dot GB/s per weight type, one thread, every available kernel table side\n"
                    "  by side; rows chosen so the matrix holds at least MiB (default 128).\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int64_t cols = 4096;
    double mib = 128;
    int reps = 7;
    char types_arg[256] = "";
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--cols") == 0)
            cols = atoll(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--mib") == 0)
            mib = atof(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--types") == 0)
            snprintf(types_arg, sizeof types_arg, "%s", argv[++i]);
        else
            usage();
    }
    if (cols <= 0 || cols % 256 != 0 || reps < 1 || mib <= 0)
        usage();

    const sol_cpu_kernels *tables[2] = {sol_cpu_kernels_get("scalar"), sol_cpu_kernels_get("avx2")};
    int n_tables = tables[1] ? 2 : 1;
    if (!tables[1])
        printf("(no AVX2+FMA+F16C here: scalar only)\n");
    printf("sol_dot, 1 thread, %lld cols, >= %.0f MiB per matrix, median of %d passes after 1 warm-up "
           "(passes alternate between kernels)\n",
           (long long)cols, mib, reps);
    printf("%-6s %7s %9s | %-26s | %-26s | %7s | %s\n", "type", "rows", "MiB", "scalar GB/s med (min-max)",
           "avx2 GB/s med (min-max)", "speedup", "max diff / rms");

    float *x = malloc(sizeof(float) * (size_t)cols);
    for (int64_t c = 0; c < cols; c++)
        x[c] = rng_float();
    for (size_t ti = 0; ti < sizeof all_types / sizeof all_types[0]; ti++) {
        sol_dtype t = all_types[ti];
        if (types_arg[0]) { /* comma-separated filter */
            char list[260];
            snprintf(list, sizeof list, ",%s,", types_arg);
            char needle[32];
            snprintf(needle, sizeof needle, ",%s,", sol_dtype_name(t));
            if (!strstr(list, needle))
                continue;
        }
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
                gbs[k][rep] = (double)bytes / pass(tables[k], t, w, rows, cols, row_bytes, x, y[k]) / 1e9;

        /* largest difference between the tables, relative to the outputs' RMS
         * (a single dot near zero would make a per-row ratio meaningless) */
        double max_rel = 0, sum_sq = 0;
        if (n_tables == 2) {
            for (int64_t r = 0; r < rows; r++) {
                sum_sq += (double)y[0][r] * y[0][r];
                max_rel = fmax(max_rel, fabs((double)y[1][r] - y[0][r]));
            }
            max_rel /= sqrt(sum_sq / (double)rows) + 1e-30;
        }
        char cell[2][64] = {"-", "-"};
        double med[2] = {0, 0};
        for (int k = 0; k < n_tables; k++) {
            qsort(gbs[k], (size_t)reps, sizeof(double), cmp_double);
            med[k] = gbs[k][reps / 2];
            snprintf(cell[k], sizeof cell[k], "%7.2f (%6.2f-%6.2f)", med[k], gbs[k][0], gbs[k][reps - 1]);
        }
        printf("%-6s %7lld %9.1f | %-26s | %-26s | %6.2fx | %.2g\n", sol_dtype_name(t), (long long)rows,
               (double)bytes / 1048576.0, cell[0], cell[1], n_tables == 2 ? med[1] / med[0] : 1.0, max_rel);
        fflush(stdout);
        free(gbs[0]);
        free(gbs[1]);
        free(w);
        free(y[0]);
        free(y[1]);
    }
    free(x);
    return 0;
}
