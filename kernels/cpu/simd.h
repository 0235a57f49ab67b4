/* Kernel dispatch for the CPU backend: one table of kernels per instruction
 * set, the best one this CPU runs chosen once, behind sol_dot/sol_dequantize. */
#ifndef SOL_KERNELS_CPU_SIMD_H
#define SOL_KERNELS_CPU_SIMD_H

#include <stdint.h>

#include "kernels/cpu/act_q8.h"
#include "util/dtype.h"

/* Same contracts as sol_dot and sol_dequantize in quant.h. Every table's
 * dequantize is bit-identical to the reference; dots differ only in the order
 * of float additions. */
typedef struct sol_cpu_kernels {
    const char *isa; /* "scalar" or "avx2" (AVX2 + FMA + F16C) */
    float (*dot)(sol_dtype t, const void *row, const float *x, int64_t n);
    /* out[r] = row r . x for nr (1..SOL_DOT_ROWS_MAX) rows row_bytes apart:
     * the decode matvec with f32 activations, x read once for all rows */
    void (*dot_rows)(sol_dtype t, const void *rows, size_t row_bytes, int nr, const float *x, int64_t n, float *out);
    void (*dequantize)(sol_dtype t, const void *src, float *dst, int64_t n);
    /* the integer-dot path (act_q8.h) */
    void (*quantize_act)(const float *x, sol_q8_block *out, int64_t n);
    void (*dot_q8)(sol_dtype t, const void *w, size_t row_bytes, int n_rows, const sol_q8_block *x, int64_t x_stride,
                   int n_x, int64_t n, float *out, int64_t out_stride);
    /* products of small blocks of f32 rows (block_dots.c), rows of dh
     * contiguous: s[i * s_stride + j] = q_i . k_j for every pair (attention
     * scores; prefill matmuls of float weights), and
     * acc_i += sum_j w[i * w_stride + j] v_j (attention's weighted sums) */
    void (*cross_dots)(const float *q, int nq, const float *k, int nk, int dh, float *s, int s_stride);
    void (*attn_weighted_sum)(const float *w, int w_stride, int nq, const float *v, int nk, int dh, float *acc);
    /* gate[i] = silu(gate[i]) * up[i] (elementwise.c) */
    void (*swiglu)(float *gate, const float *up, int64_t n);
    /* s[j] = exp(s[j] - max), 0 where s[j] is -inf; returns their sum
     * (attention's softmax weights; elementwise.c) */
    float (*exp_sum)(float *s, int n, float max);
    /* Prefill matmul (gemm.c): y[i * y_stride + r] = x_i . w_r for inputs
     * i < m, packed (sol_pack_inputs), and nr weight rows of n columns,
     * w_stride apart. */
    void (*gemm_panels)(const float *xp, int m, const float *w, int nr, int64_t w_stride, int64_t n, float *y,
                        int64_t y_stride);
    /* m rows of n values into gemm_panels' layout (sol_pack_panel) */
    void (*pack_inputs)(const float *x, int m, int64_t n, float *xp);
} sol_cpu_kernels;

#define SOL_DOT_ROWS_MAX 4
void sol_dot_rows_ref(sol_dtype t, const void *rows, size_t row_bytes, int nr, const float *x, int64_t n, float *out);
void sol_dot_rows_avx2(sol_dtype t, const void *rows, size_t row_bytes, int nr, const float *x, int64_t n, float *out);

/* Inputs packed for gemm_panels: panels of SOL_PANEL_ROWS rows of n
 * values side by side, value k of row r at panel[k * SOL_PANEL_ROWS + r]
 * (rows past the last zero); xp holds ceil(m / 16) panels, 32-byte aligned.
 * The matmul dequantises SOL_GEMM_ROWS weight rows per call. */
#define SOL_PANEL_ROWS 16
#define SOL_GEMM_ROWS 12
void sol_pack_panel(const float *rows, int nr, int64_t n, float *panel);
void sol_pack_inputs_ref(const float *x, int m, int64_t n, float *xp);
void sol_pack_inputs_avx2(const float *x, int m, int64_t n, float *xp);
static inline size_t sol_packed_floats(int m, int64_t n)
{
    return (size_t)((m + SOL_PANEL_ROWS - 1) / SOL_PANEL_ROWS) * SOL_PANEL_ROWS * (size_t)n;
}

/* The table sol_dot and sol_dequantize use: the first call picks the best
 * instruction set this CPU supports, or the reference one when the environment
 * says SOL_CPU_ISA=scalar (SOL_CPU_ISA=avx2 on a CPU without it also falls back
 * to the reference; other values are ignored). */
const sol_cpu_kernels *sol_cpu_kernels_active(void);

/* The table of the named instruction set, or NULL when this build or this CPU
 * lacks it; for tests and benchmarks that compare them side by side. */
const sol_cpu_kernels *sol_cpu_kernels_get(const char *isa);

/* The reference kernels (quant.c): plain C, what every other table is checked
 * against. */
float sol_dot_ref(sol_dtype t, const void *row, const float *x, int64_t n);
void sol_dequantize_ref(sol_dtype t, const void *src, float *dst, int64_t n);

void sol_cross_dots_ref(const float *q, int nq, const float *k, int nk, int dh, float *s, int s_stride);
void sol_attn_weighted_sum_ref(const float *w, int w_stride, int nq, const float *v, int nk, int dh, float *acc);
void sol_cross_dots_avx2(const float *q, int nq, const float *k, int nk, int dh, float *s, int s_stride);
void sol_attn_weighted_sum_avx2(const float *w, int w_stride, int nq, const float *v, int nk, int dh, float *acc);

void sol_gemm_panels_ref(const float *xp, int m, const float *w, int nr, int64_t w_stride, int64_t n, float *y,
                         int64_t y_stride);
void sol_gemm_panels_avx2(const float *xp, int m, const float *w, int nr, int64_t w_stride, int64_t n, float *y,
                          int64_t y_stride);

void sol_swiglu_ref(float *gate, const float *up, int64_t n);
void sol_swiglu_avx2(float *gate, const float *up, int64_t n);
float sol_exp_sum_ref(float *s, int n, float max);
float sol_exp_sum_avx2(float *s, int n, float max);

/* The AVX2 + FMA + F16C kernels (simd_avx2.c); call only when the CPU has
 * all three. They handle every type sol_cpu_reads. */
float sol_dot_avx2(sol_dtype t, const void *row, const float *x, int64_t n);
void sol_dequantize_avx2(sol_dtype t, const void *src, float *dst, int64_t n);

#endif
