/* CPU kernels for the stored weight types (kernels/formats.h has the
 * formats' conversions): dot products, matvec. sol_dot / sol_dequantize
 * dispatch to AVX2 or the reference versions. */
#ifndef SOL_KERNELS_CPU_QUANT_H
#define SOL_KERNELS_CPU_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/formats.h"
#include "util/dtype.h"

/* Contract: as in kernels/formats.h; single-threaded, callers split rows. */

/* True when the CPU backend can compute with t: the types of sol_format_supported. */
int sol_cpu_supports(sol_dtype t);

/* True for the row types sol_dot and sol_dequantize read: those of
 * sol_cpu_supports plus FP8 (e4m3, util/fp8.h), which only a KV cache stores
 * (kv_quant.h), so the weight paths never see it. */
int sol_cpu_reads(sol_dtype t);

/* Dot product of one stored row (n elements of type t, sol_cpu_reads) with f32 x. */
float sol_dot(sol_dtype t, const void *row, const float *x, int64_t n);

/* y[r] = dot(row r, x), r in [0, rows); rows are sol_row_bytes(t, cols) apart. */
void sol_matvec(sol_dtype t, const void *w, const float *x, float *y, int64_t rows,
                int64_t cols);

/* Q4_K: the 8 six-bit scales and mins packed in a super-block's 12 scale
 * bytes (the bytes after d and dmin). */
void sol_q4_k_scales(const uint8_t *packed, uint8_t sc[8], uint8_t m[8]);

#endif
