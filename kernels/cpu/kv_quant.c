/* See kv_quant.h. The block quantisers are gguf-py 0.19's (gguf/quants.py,
 * numpy, all in f32), statement for statement, rather than quant.c's ggml
 * ones: the two differ on one input, a Q4_0 block of zeros whose first is
 * -0.0 (gguf-py takes the block's first element as its largest, ggml starts
 * from +0.0), and the numpy reference the cache is checked against runs
 * gguf-py. */
#include "kernels/cpu/kv_quant.h"

#include <math.h>
#include <string.h>

#include "kernels/cpu/half.h"
#include "util/fp8.h"

#define QK 32 /* elements of a Q8_0 or Q4_0 block */
#define Q8_0_BYTES 34
#define Q4_0_BYTES 18

static void store_f16(uint8_t *p, float f)
{
    uint16_t h = sol_f32_to_f16(f);
    p[0] = (uint8_t)(h & 0xff);
    p[1] = (uint8_t)(h >> 8);
}

/* A code computed in float to an integer, as numpy's astype does on x86.
 * The value is only non-finite where the block's scale is so small that its
 * inverse overflowed (|max| below ~1e-36; the stored f16 scale is then 0 and
 * every element reads back 0 whatever its code): C leaves that conversion
 * undefined, numpy gives 0. */
static int code_of(float v) { return isfinite(v) ? (int)v : 0; }

/* Q8_0: d = max|x| / 127, q = np_roundf(x * (1/d)) (half away from zero,
 * what roundf does), d stored as f16. A NaN wins the max, as in numpy, so
 * the block reads back NaN instead of hiding it. */
static void store_q8_0(const float *x, uint8_t *b)
{
    float amax = 0;
    for (int i = 0; i < QK; i++) {
        float a = fabsf(x[i]);
        if (a > amax || isnan(a))
            amax = isnan(amax) ? amax : a;
    }
    float d = amax / 127;
    float id = d != 0 ? 1.0f / d : 0.0f;
    store_f16(b, d);
    for (int i = 0; i < QK; i++) {
        float v = x[i] * id;
        b[2 + i] = (uint8_t)(int8_t)code_of(roundf(v));
    }
}

/* Q4_0's code of one element: trunc(x * id + 8.5) in f32, cast to uint8
 * (modular, as numpy's astype), clipped to 15. */
static uint8_t q4_0_code(float x, float id)
{
    float v = x * id;
    v = v + 8.5f;
    uint8_t q = (uint8_t)code_of(truncf(v));
    return q > 15 ? 15 : q;
}

/* Q4_0: max = the element of largest magnitude, the first on ties (numpy's
 * argmax of |x|, so an all-zero block's is its first element, sign and
 * all, and the first NaN beats any number); d = max / -8, stored as f16.
 * Byte j holds element j's code in its low nibble and element j+16's in its
 * high one. */
static void store_q4_0(const float *x, uint8_t *b)
{
    float max = x[0];
    for (int i = 1; i < QK && !isnan(max); i++)
        if (fabsf(x[i]) > fabsf(max) || isnan(x[i]))
            max = x[i];
    float d = max / -8;
    float id = d != 0 ? 1.0f / d : 0.0f;
    store_f16(b, d);
    for (int i = 0; i < QK / 2; i++)
        b[2 + i] = (uint8_t)(q4_0_code(x[i], id) | q4_0_code(x[i + QK / 2], id) << 4);
}

static int block_elems(sol_dtype type) { return type == SOL_DT_Q8_0 || type == SOL_DT_Q4_0 ? QK : 1; }

int sol_kv_store_supported(sol_dtype type)
{
    return type == SOL_DT_F32 || type == SOL_DT_F16 || type == SOL_DT_FP8 || type == SOL_DT_Q8_0 ||
           type == SOL_DT_Q4_0;
}

int sol_kv_store_row(sol_dtype type, const float *src, void *dst, int64_t n)
{
    uint8_t *p = dst;
    if (!sol_kv_store_supported(type) || n < 0 || n % block_elems(type) != 0)
        return -1;
    switch (type) {
    case SOL_DT_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        break;
    case SOL_DT_F16:
        for (int64_t i = 0; i < n; i++)
            store_f16(p + 2 * i, src[i]);
        break;
    case SOL_DT_FP8:
        for (int64_t i = 0; i < n; i++)
            p[i] = sol_f32_to_e4m3(src[i]);
        break;
    case SOL_DT_Q8_0:
        for (int64_t i = 0; i < n; i += QK)
            store_q8_0(src + i, p + i / QK * Q8_0_BYTES);
        break;
    default: /* Q4_0 */
        for (int64_t i = 0; i < n; i += QK)
            store_q4_0(src + i, p + i / QK * Q4_0_BYTES);
        break;
    }
    return 0;
}
