/* The stored weight formats on the host: ggml's block layouts
 * (little-endian), row sizes, dequantization and reference quantizers.
 * What the engine needs to read a file and `sol synth` to write one,
 * whatever backend computes; implemented in kernels/cpu/quant.c. */
#ifndef SOL_KERNELS_FORMATS_H
#define SOL_KERNELS_FORMATS_H

#include <stddef.h>
#include <stdint.h>

#include "util/dtype.h"

/* Contract for every function below: t is supported (sol_format_supported)
 * and n or cols is a multiple of sol_dtype_block_elems(t); violations
 * assert. Pointers need no alignment. */

/* True for the types converted here (F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q4_K Q6_K). */
int sol_format_supported(sol_dtype t);

/* Bytes of one row of `cols` elements of type t (cols a multiple of the block). */
size_t sol_row_bytes(sol_dtype t, int64_t cols);

/* dst[0..n) = dequantized src. Bit-identical to gguf-py (ggml) dequantization.
 * The CPU's also reads FP8 KV rows (sol_cpu_reads, kernels/cpu/quant.h). */
void sol_dequantize(sol_dtype t, const void *src, float *dst, int64_t n);

/* dst = quantized src, n elements, finite inputs. F16/BF16 round to nearest
 * even; Q8_0, Q4_0 and Q4_1 give the bytes of ggml's reference quantizers;
 * Q4_K and Q6_K use sol's own rule (see quant.c). For every type, quantizing
 * dequantized data again reproduces the same values. */
void sol_quantize(sol_dtype t, const float *src, void *dst, int64_t n);

#endif
