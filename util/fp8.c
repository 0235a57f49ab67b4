/* See fp8.h. Bit twiddling on the f32 encoding, as kernels/cpu/half.h does
 * for f16, so the result does not depend on the FPU's rounding mode. */
#include "util/fp8.h"

#include <string.h>

#define E4M3_MAX 0x7E  /* 448 = 1.75 * 2^8 */
#define E4M3_NAN 0x7F
#define F32_TO_E4M3_BIAS 120 /* 127 - 7 */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* |x| (as bits ax) below 2^-6, the smallest normal: a subnormal m * 2^-9
 * with m = |x| * 2^9 rounded to nearest even (8 is the smallest normal's
 * code, so rounding up into it is right). */
static uint8_t e4m3_subnormal(uint32_t ax)
{
    uint32_t exp = ax >> 23;
    if (exp < 117) /* below 2^-10, half the smallest subnormal */
        return 0;
    uint32_t man = (ax & 0x7fffff) | 0x800000; /* |x| = man * 2^(exp - 150) */
    uint32_t shift = 141 - exp;                /* |x| * 2^9 = man >> shift: 21..24 */
    uint32_t m = man >> shift;
    uint32_t rest = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (m & 1)))
        m++;
    return (uint8_t)m;
}

uint8_t sol_f32_to_e4m3(float x)
{
    uint32_t bits = f32_bits(x);
    uint8_t sign = (uint8_t)((bits >> 24) & 0x80);
    uint32_t ax = bits & 0x7fffffff;
    if (ax > 0x7f800000)
        return E4M3_NAN;
    if (ax < (uint32_t)(F32_TO_E4M3_BIAS + 1) << 23)
        return (uint8_t)(sign | e4m3_subnormal(ax));
    /* Normal: drop 20 of the 23 mantissa bits, to nearest even; a carry into
     * the exponent is right. Infinity and huge values land far above 0x7E
     * (no overflow: ax + 2^19 < 2^32). */
    uint32_t rounded = (ax + 0x7ffff + ((ax >> 20) & 1)) >> 20;
    uint32_t code = rounded - (F32_TO_E4M3_BIAS << 3);
    return (uint8_t)(sign | (code > E4M3_MAX ? E4M3_MAX : code));
}

float sol_e4m3_to_f32(uint8_t b)
{
    uint32_t sign = (uint32_t)(b & 0x80) << 24;
    uint32_t exp = (b >> 3) & 0xf, man = b & 7;
    if ((b & 0x7f) == E4M3_NAN)
        return f32_from_bits(sign | 0x7fc00000);
    if (exp == 0) { /* man * 2^-9, exact */
        float v = (float)man * 0x1p-9f;
        return sign ? -v : v;
    }
    return f32_from_bits(sign | (exp + F32_TO_E4M3_BIAS) << 23 | man << 20);
}
