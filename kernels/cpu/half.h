/* IEEE half (f16) and bfloat16 <-> f32 conversion, portable bit twiddling.
 * f16/bf16 -> f32 is exact; f32 -> f16/bf16 rounds to nearest, ties to even. */
#ifndef SOL_KERNELS_CPU_HALF_H
#define SOL_KERNELS_CPU_HALF_H

#include <stdint.h>
#include <string.h>

/* No F16C path yet: these are what the tests check, and a hardware path
 * (vcvtph2ps) would differ only on signalling NaNs, which it quiets. */

static inline uint32_t sol_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float sol_f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Exact. NaNs keep sign and payload (a signalling NaN stays signalling). */
static inline float sol_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) /* inf or NaN */
        return sol_f32_from_bits(sign | 0x7f800000 | (man << 13));
    if (exp != 0) /* normal: rebias 15 -> 127 */
        return sol_f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
    if (man == 0)
        return sol_f32_from_bits(sign);
    /* Subnormal man * 2^-24: shift until the leading one reaches bit 10. */
    uint32_t shift = 0;
    while (!(man & 0x400)) {
        man <<= 1;
        shift++;
    }
    return sol_f32_from_bits(sign | ((113 - shift) << 23) | ((man & 0x3ff) << 13));
}

/* Round to nearest even; overflow gives inf; NaN stays NaN (quieted, top
 * payload bits kept), as x86 F16C does. */
static inline uint16_t sol_f32_to_f16(float f)
{
    uint32_t x = sol_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffff;
    if (ax > 0x7f800000) /* NaN */
        return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
    if (ax >= 0x477ff000) /* >= 65520: ties to even round up to 2^16, i.e. inf */
        return (uint16_t)(sign | 0x7c00);
    if (ax >= 0x38800000) { /* >= 2^-14: normal f16; a carry into the exponent is right */
        uint32_t lsb = (ax >> 13) & 1;
        return (uint16_t)(sign | ((ax - 0x38000000 + 0xfff + lsb) >> 13));
    }
    uint32_t exp = ax >> 23;
    if (exp < 102) /* < 2^-25: rounds to zero */
        return sign;
    /* Subnormal f16: the value in units of 2^-24 is man >> shift, rounded. */
    uint32_t man = (ax & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - exp; /* 14..24 */
    uint32_t h = man >> shift;
    uint32_t rest = man & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (h & 1)))
        h++; /* may become 0x400, the smallest normal: correct */
    return (uint16_t)(sign | h);
}

/* Exact: bf16 is the top half of an f32. */
static inline float sol_bf16_to_f32(uint16_t b)
{
    return sol_f32_from_bits((uint32_t)b << 16);
}

/* Round to nearest even; NaN stays NaN (quiet bit set, as ggml does). */
static inline uint16_t sol_f32_to_bf16(float f)
{
    uint32_t x = sol_f32_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000)
        return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

#endif
