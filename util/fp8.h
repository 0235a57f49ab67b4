/* OCP float8 e4m3 ("fn": 1 sign, 4 exponent bits of bias 7, 3 mantissa
 * bits; no infinities, 0x7F and 0xFF are NaN, largest finite 448), the byte
 * format of an fp8 KV cache. One byte per element, no scale. */
#ifndef SOL_UTIL_FP8_H
#define SOL_UTIL_FP8_H

#include <stdint.h>

/* Round to nearest, ties to even. Saturating, as CUDA's __NV_SATFINITE
 * conversion: anything beyond +-448 (infinities too) becomes +-448, where
 * the format has no infinity to round to. NaN gives 0x7F; values below half
 * the smallest subnormal (2^-10, a tie, goes to even) give +-0. */
uint8_t sol_f32_to_e4m3(float x);

/* Exact; 0x7F and 0xFF give a quiet NaN with the code's sign. */
float sol_e4m3_to_f32(uint8_t b);

#endif
