/* Rows of the CPU backend's KV cache in the cache's type: f32, f16, fp8
 * (e4m3) or GGUF Q8_0 / Q4_0 blocks, written here and read back by sol_dot
 * and sol_dequantize (quant.h). */
#ifndef SOL_KERNELS_CPU_KV_QUANT_H
#define SOL_KERNELS_CPU_KV_QUANT_H

#include <stdint.h>

#include "util/dtype.h"

/* True for the types sol_kv_store_row writes: F32, F16, FP8, Q8_0, Q4_0. */
int sol_kv_store_supported(sol_dtype type);

/* dst = the n floats of src as one row of `type` (sol_row_bytes(type, n)
 * bytes, no alignment needed): f32 copied, f16 and fp8 rounded to nearest
 * even (fp8 saturating at +-448, util/fp8.h), Q8_0 and Q4_0 blocks
 * bit-identical to gguf-py 0.19's quantisers (which mirror ggml's
 * quantize_row_*_ref), so a numpy reference reproduces the cache exactly.
 * Returns 0, or -1 (dst untouched) when the type is not one
 * sol_kv_store_supported names or n is not a whole number of its blocks. */
int sol_kv_store_row(sol_dtype type, const float *src, void *dst, int64_t n);

#endif
