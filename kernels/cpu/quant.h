/* CPU kernels for the stored weight types: ggml's block layouts
 * (little-endian), dequantize, reference quantizers, dot products, matvec.
 * sol_dot / sol_dequantize dispatch to AVX2 or the reference versions. */
#ifndef SOL_KERNELS_CPU_QUANT_H
#define SOL_KERNELS_CPU_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "util/dtype.h"

/* Contract for every function below: t is supported (sol_cpu_supports) and n
 * or cols is a multiple of sol_dtype_block_elems(t); violations assert.
 * Pointers need no alignment. Single-threaded; callers split rows. */

/* Bytes of one row of `cols` elements of type t (cols a multiple of the block). */
size_t sol_row_bytes(sol_dtype t, int64_t cols);

/* True when the CPU backend can compute with t (F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q4_K Q6_K). */
int sol_cpu_supports(sol_dtype t);

/* dst[0..n) = dequantized src. Bit-identical to gguf-py (ggml) dequantization. */
void sol_dequantize(sol_dtype t, const void *src, float *dst, int64_t n);

/* dst = quantized src, n elements, finite inputs. F16/BF16 round to nearest
 * even; Q8_0, Q4_0 and Q4_1 give the bytes of ggml's reference quantizers;
 * Q4_K and Q6_K use sol's own rule (see quant.c). For every type, quantizing
 * dequantized data again reproduces the same values. */
void sol_quantize(sol_dtype t, const float *src, void *dst, int64_t n);

/* Dot product of one stored row (n elements of type t) with f32 x. */
float sol_dot(sol_dtype t, const void *row, const float *x, int64_t n);

/* y[r] = dot(row r, x), r in [0, rows); rows are sol_row_bytes(t, cols) apart. */
void sol_matvec(sol_dtype t, const void *w, const float *x, float *y, int64_t rows,
                int64_t cols);

/* Q4_K: the 8 six-bit scales and mins packed in a super-block's 12 scale
 * bytes (the bytes after d and dmin). */
void sol_q4_k_scales(const uint8_t *packed, uint8_t sc[8], uint8_t m[8]);

#endif
