/* Activations quantised to 8 bits for the integer dot products of the
 * quantised weight types (Q8_0, Q4_0, Q4_1, Q4_K, Q6_K): each run of 32
 * activations becomes 32 int8 codes and one f32 step, so a weight block times
 * an activation block is an exact integer sum scaled once, which AVX2 does
 * two to four times faster than converting the weights to f32.
 *
 * Quantisation (what tests/ref/ref_forward.py mirrors): for each block,
 * d = max|x| / 127, q = round-half-even(x / d) computed as x * (1 / d) in f32,
 * d = 0 and q = 0 for an all-zero block. sum = d * (sum of q), kept for the
 * weight types whose values carry an offset (Q4_0's 8, Q4_1's min, Q4_K's
 * mins). The result is the dot of the weights with the dequantised codes
 * q * d; it differs from the f32 dot by the activation rounding (about 0.5%
 * relative per block), so f32 activations stay available. */
#ifndef SOL_KERNELS_CPU_ACT_Q8_H
#define SOL_KERNELS_CPU_ACT_Q8_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/cpu.h"
#include "util/dtype.h"

#define SOL_Q8_BLOCK 32

typedef struct sol_q8_block {
    float d;   /* step: value = q * d */
    float sum; /* d * (q[0] + ... + q[31]) */
    int8_t q[SOL_Q8_BLOCK];
} sol_q8_block;

/* 1 when the integer dot exists for weights of type t. */
int sol_act_q8_applies(sol_dtype t);

/* The CPU backend's integer dots serve matmuls of fewer input rows than
 * this: from 32 rows the f32 GEMM on dequantised weights (gemm.c) is faster
 * with AVX2 (crossover between 24 and 48 rows for every integer-dot type on
 * 2 threads, `sol tune --shape` side by side), and exact. */
#define SOL_INT8_DOTS_BELOW SOL_CPU_INT8_DOTS_BELOW

/* The largest weight-row and input counts of one sol_dot_q8 call, and the
 * largest product of the two (the accumulators must fit in registers). */
#define SOL_Q8_MAX_ROWS 4
#define SOL_Q8_MAX_INPUTS 4
#define SOL_Q8_MAX_TILE SOL_CPU_Q8_MAX_TILE

/* Contracts (assert): n is a multiple of SOL_Q8_BLOCK and of t's block;
 * 1 <= n_rows <= SOL_Q8_MAX_ROWS, 1 <= n_x <= SOL_Q8_MAX_INPUTS,
 * n_rows * n_x <= SOL_Q8_MAX_TILE. Pointers need no alignment. */

/* out[0 .. n/32) = the blocks of x[0 .. n). */
void sol_quantize_act(const float *x, sol_q8_block *out, int64_t n);

/* sol_act_q8_round_trip: kernels/cpu.h */

/* A tile of dot products: out[i * out_stride + r] = dot(weight row r, input i)
 * for r < n_rows, i < n_x. Weight row r starts at w + r * row_bytes; input i
 * at x + i * x_stride (in blocks). */
void sol_dot_q8(sol_dtype t, const void *w, size_t row_bytes, int n_rows, const sol_q8_block *x, int64_t x_stride,
                int n_x, int64_t n, float *out, int64_t out_stride);

/* The reference versions (act_q8_ref.c) and the AVX2 ones (act_q8_avx2.c,
 * only on a CPU with AVX2 + FMA + F16C). The AVX2 quantisation is
 * bit-identical to the reference; the dots differ only in the order of
 * float additions. */
void sol_quantize_act_ref(const float *x, sol_q8_block *out, int64_t n);
void sol_dot_q8_ref(sol_dtype t, const void *w, size_t row_bytes, int n_rows, const sol_q8_block *x, int64_t x_stride,
                    int n_x, int64_t n, float *out, int64_t out_stride);
void sol_quantize_act_avx2(const float *x, sol_q8_block *out, int64_t n);
void sol_dot_q8_avx2(sol_dtype t, const void *w, size_t row_bytes, int n_rows, const sol_q8_block *x,
                     int64_t x_stride, int n_x, int64_t n, float *out, int64_t out_stride);

#endif
