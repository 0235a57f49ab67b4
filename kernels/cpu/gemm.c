/* Prefill matmuls of f32 inputs (simd.h gemm_panels). The inputs are packed
 * once per matmul into panels of 16 side by side (one 64-byte line per
 * column), the weight rows are used as dequantised, row by row: a register
 * tile of 6 weight rows x 16 inputs takes two vector loads of the panel and
 * six broadcasts of weights for twelve FMAs per column. Columns go in chunks
 * (GEMM_CHUNK) so a chunk of every input stays in L2 while the rows pass. */
#include <string.h>

#include "kernels/cpu/simd.h"

void sol_pack_panel(const float *rows, int nr, int64_t n, float *panel)
{
    for (int64_t k = 0; k < n; k++) {
        float *line = panel + k * SOL_PANEL_ROWS;
        for (int r = 0; r < nr; r++)
            line[r] = rows[(size_t)r * (size_t)n + (size_t)k];
        for (int r = nr; r < SOL_PANEL_ROWS; r++)
            line[r] = 0;
    }
}

void sol_pack_inputs_ref(const float *x, int m, int64_t n, float *xp)
{
    for (int i = 0; i < m; i += SOL_PANEL_ROWS)
        sol_pack_panel(x + (size_t)i * (size_t)n, m - i < SOL_PANEL_ROWS ? m - i : SOL_PANEL_ROWS, n,
                       xp + (size_t)i * (size_t)n);
}

void sol_gemm_panels_ref(const float *xp, int m, const float *w, int nr, int64_t w_stride, int64_t n, float *y,
                         int64_t y_stride)
{
    for (int i = 0; i < m; i++) {
        const float *panel = xp + (size_t)(i / SOL_PANEL_ROWS) * (size_t)n * SOL_PANEL_ROWS;
        for (int r = 0; r < nr; r++) {
            float sum = 0;
            for (int64_t k = 0; k < n; k++)
                sum += panel[k * SOL_PANEL_ROWS + i % SOL_PANEL_ROWS] * w[(size_t)r * (size_t)w_stride + (size_t)k];
            y[(size_t)i * (size_t)y_stride + (size_t)r] = sum;
        }
    }
}

#if defined(__x86_64__)
#include "kernels/cpu/avx2_util.h"

#define TILE_ROWS 6
#define GEMM_CHUNK 2048 /* columns per pass: 16 inputs x 2048 x 4 B = 128 KiB of panel */

/* rows (1..6, a constant where inlined) weight rows against one panel's
 * inputs (mi of 16 valid), columns [0, kn) of the chunk; adds into y unless
 * first. Twelve accumulators, two input vectors, one broadcast: 15 of 16
 * registers. */
AVX2 static inline __attribute__((always_inline)) void tile(const float *panel, const float *w, int64_t w_stride,
                                                            int64_t kn, float *y, int64_t y_stride, const int rows,
                                                            int mi, int first)
{
    __m256 acc[TILE_ROWS][2];
#pragma GCC unroll 6
    for (int j = 0; j < rows; j++)
        acc[j][0] = acc[j][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kn; k++) {
        __m256 x0 = _mm256_load_ps(panel + k * SOL_PANEL_ROWS), x1 = _mm256_load_ps(panel + k * SOL_PANEL_ROWS + 8);
#pragma GCC unroll 6
        for (int j = 0; j < rows; j++) {
            __m256 wj = _mm256_broadcast_ss(w + j * w_stride + k);
            acc[j][0] = _mm256_fmadd_ps(wj, x0, acc[j][0]);
            acc[j][1] = _mm256_fmadd_ps(wj, x1, acc[j][1]);
        }
    }
    /* acc[j] holds row j for 16 inputs; y is input-major: scatter */
#pragma GCC unroll 6
    for (int j = 0; j < rows; j++) {
        float v[SOL_PANEL_ROWS];
        _mm256_storeu_ps(v, acc[j][0]);
        _mm256_storeu_ps(v + 8, acc[j][1]);
        for (int i = 0; i < mi; i++)
            y[i * y_stride + j] = first ? v[i] : y[i * y_stride + j] + v[i];
    }
}

AVX2 static void tile_rows(const float *panel, const float *w, int64_t w_stride, int64_t kn, float *y,
                           int64_t y_stride, int rows, int mi, int first)
{
    switch (rows) {
    case 6: tile(panel, w, w_stride, kn, y, y_stride, 6, mi, first); break;
    case 5: tile(panel, w, w_stride, kn, y, y_stride, 5, mi, first); break;
    case 4: tile(panel, w, w_stride, kn, y, y_stride, 4, mi, first); break;
    case 3: tile(panel, w, w_stride, kn, y, y_stride, 3, mi, first); break;
    case 2: tile(panel, w, w_stride, kn, y, y_stride, 2, mi, first); break;
    default: tile(panel, w, w_stride, kn, y, y_stride, 1, mi, first); break;
    }
}

/* 8 rows x 8 values from rows (n apart) to 8 panel lines (16 apart). */
AVX2 static inline void transpose_8x8(const float *rows, int64_t n, float *lines)
{
    __m256 r[8], t[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        r[i] = _mm256_loadu_ps(rows + i * n);
#pragma GCC unroll 4
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 2
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        _mm256_store_ps(lines + i * SOL_PANEL_ROWS, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
        _mm256_store_ps(lines + (i + 4) * SOL_PANEL_ROWS, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
    }
}

/* Whole panels by 8 x 8 transposes, 8 columns at a time; a last partial
 * panel and the columns past a multiple of 8 by the reference. */
AVX2 void sol_pack_inputs_avx2(const float *x, int m, int64_t n, float *xp)
{
    int whole = m / SOL_PANEL_ROWS * SOL_PANEL_ROWS;
    int64_t n8 = n / 8 * 8;
    for (int i = 0; i < whole; i += SOL_PANEL_ROWS) {
        const float *rows = x + (size_t)i * (size_t)n;
        float *panel = xp + (size_t)i * (size_t)n;
        for (int64_t k = 0; k < n8; k += 8) {
            transpose_8x8(rows + k, n, panel + k * SOL_PANEL_ROWS);
            transpose_8x8(rows + 8 * n + k, n, panel + k * SOL_PANEL_ROWS + 8);
        }
        for (int64_t k = n8; k < n; k++)
            for (int r = 0; r < SOL_PANEL_ROWS; r++)
                panel[k * SOL_PANEL_ROWS + r] = rows[(size_t)r * (size_t)n + (size_t)k];
    }
    if (whole < m)
        sol_pack_panel(x + (size_t)whole * (size_t)n, m - whole, n, xp + (size_t)whole * (size_t)n);
}

/* Chunks of columns outside, then 6-row groups, then the input panels: a
 * group's chunk (at most 48 KiB) is reused by every panel from L1/L2. */
AVX2 void sol_gemm_panels_avx2(const float *xp, int m, const float *w, int nr, int64_t w_stride, int64_t n, float *y,
                               int64_t y_stride)
{
    int n_panels = (m + SOL_PANEL_ROWS - 1) / SOL_PANEL_ROWS;
    for (int64_t k0 = 0; k0 < n; k0 += GEMM_CHUNK) {
        int64_t kn = n - k0 < GEMM_CHUNK ? n - k0 : GEMM_CHUNK;
        for (int r = 0; r < nr; r += TILE_ROWS) {
            int rows = nr - r < TILE_ROWS ? nr - r : TILE_ROWS;
            for (int p = 0; p < n_panels; p++) {
                int mi = m - p * SOL_PANEL_ROWS < SOL_PANEL_ROWS ? m - p * SOL_PANEL_ROWS : SOL_PANEL_ROWS;
                const float *panel = xp + ((size_t)p * (size_t)n + (size_t)k0) * SOL_PANEL_ROWS;
                tile_rows(panel, w + (size_t)r * (size_t)w_stride + (size_t)k0, w_stride, kn,
                          y + (size_t)p * SOL_PANEL_ROWS * (size_t)y_stride + (size_t)r, y_stride, rows, mi, k0 == 0);
            }
        }
    }
}
#endif
