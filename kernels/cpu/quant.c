/* Reference kernels for ggml's block formats: one dequantizer and one quantizer
 * per block type behind a switch, plain C meant to be checked against, not fast.
 * Blocks are read byte by byte (little-endian), so no pointer needs alignment. */
#include "kernels/cpu/quant.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#include "kernels/cpu/half.h"
#include "kernels/cpu/simd.h"
#include "util/fp8.h"

#define QK 32    /* elements of a Q8_0, Q4_0 or Q4_1 block */
#define QK_K 256 /* elements of a Q4_K or Q6_K super-block */

/* Where a result must match ggml's bit for bit, each rounding gets its own
 * statement, so a compiler that contracts within expressions (clang's default)
 * cannot fuse it into an fma; -std=c11 keeps GCC from contracting at all. */

static uint16_t load_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static float load_f16(const uint8_t *p) { return sol_f16_to_f32(load_u16(p)); }

static void store_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

/* Smallest non-negative f16 h with f16(h) * mult >= target, target >= 0. The
 * product of an f16 and a small integer mult is exact in f32. */
static uint16_t f16_scale_at_least(float target, float mult)
{
    uint16_t h = target > 0 ? sol_f32_to_f16(target / mult) : 0;
    while (h > 0 && sol_f16_to_f32((uint16_t)(h - 1)) * mult >= target)
        h--;
    while (h < 0x7c00 && sol_f16_to_f32(h) * mult < target)
        h++;
    return h;
}

/* ---- Q8_0: 34 bytes = f16 d, 32 x int8 q; x = d*q ------------------------ */

static void dequant_q8_0(const uint8_t *b, float *y)
{
    float d = load_f16(b);
    for (int i = 0; i < QK; i++)
        y[i] = d * (float)(int8_t)b[2 + i];
}

/* ggml's reference: d = max|x| / 127, q = round(x * (1/d)), half away from zero. */
static void quant_q8_0(const float *x, uint8_t *b)
{
    float amax = 0;
    for (int i = 0; i < QK; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    float d = amax / 127;
    float id = d != 0 ? 1.0f / d : 0.0f;
    store_u16(b, sol_f32_to_f16(d));
    for (int i = 0; i < QK; i++) {
        float v = x[i] * id;
        b[2 + i] = (uint8_t)(int8_t)roundf(v);
    }
}

/* ---- Q4_0: 18 bytes = f16 d, 16 bytes of nibbles; x = d*(q-8) ------------
 * Byte i holds element i in its low nibble and element i+16 in its high one. */

static void dequant_q4_0(const uint8_t *b, float *y)
{
    float d = load_f16(b);
    const uint8_t *qs = b + 2;
    for (int i = 0; i < QK / 2; i++) {
        y[i] = d * (float)((qs[i] & 0xf) - 8);
        y[i + QK / 2] = d * (float)((qs[i] >> 4) - 8);
    }
}

static int q4_0_code(float x, float id)
{
    float v = x * id;
    int q = (int)(v + 8.5f);
    return q > 15 ? 15 : q;
}

/* ggml's reference: d = (the value of largest magnitude) / -8, so that value
 * gets code 0 exactly; q = trunc(x/d + 8.5) capped at 15. */
static void quant_q4_0(const float *x, uint8_t *b)
{
    float amax = 0, max = 0;
    for (int i = 0; i < QK; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    float d = max / -8;
    float id = d != 0 ? 1.0f / d : 0.0f;
    store_u16(b, sol_f32_to_f16(d));
    for (int i = 0; i < QK / 2; i++)
        b[2 + i] = (uint8_t)(q4_0_code(x[i], id) | q4_0_code(x[i + QK / 2], id) << 4);
}

/* ---- Q4_1: 20 bytes = f16 d, f16 m, 16 bytes of nibbles as Q4_0; x = d*q + m */

static void dequant_q4_1(const uint8_t *b, float *y)
{
    float d = load_f16(b), m = load_f16(b + 2);
    const uint8_t *qs = b + 4;
    for (int i = 0; i < QK / 2; i++) {
        y[i] = d * (float)(qs[i] & 0xf) + m;
        y[i + QK / 2] = d * (float)(qs[i] >> 4) + m;
    }
}

static int q4_1_code(float x, float min, float id)
{
    float v = (x - min) * id;
    int q = (int)(v + 0.5f);
    return q > 15 ? 15 : q;
}

/* ggml's reference: m = min, d = (max - min) / 15, q = trunc((x-m)/d + 0.5). */
static void quant_q4_1(const float *x, uint8_t *b)
{
    float min = x[0], max = x[0];
    for (int i = 1; i < QK; i++) {
        min = fminf(min, x[i]);
        max = fmaxf(max, x[i]);
    }
    float d = (max - min) / 15;
    float id = d != 0 ? 1.0f / d : 0.0f;
    store_u16(b, sol_f32_to_f16(d));
    store_u16(b + 2, sol_f32_to_f16(min));
    for (int i = 0; i < QK / 2; i++)
        b[4 + i] = (uint8_t)(q4_1_code(x[i], min, id) | q4_1_code(x[i + QK / 2], min, id) << 4);
}

/* ---- Q4_K: 144 bytes = f16 d, f16 dmin, 12 bytes of scales, 128 of nibbles.
 * Eight sub-blocks of 32 with 6-bit scale sc[j] and min m[j]:
 * x = d*sc[j]*q - dmin*m[j], q in 0..15. Sub-blocks 2g and 2g+1 share the 32
 * bytes qs[32g..32g+31]: 2g in the low nibbles, 2g+1 in the high ones.
 * Scale bytes: 0-3 low 6 bits sc[0..3], top 2 bits = bits 4-5 of sc[4..7];
 * 4-7 the same for m; 8-11 low nibble bits 0-3 of sc[4..7], high nibble of m[4..7]. */

#define Q4_K_MAX 63 /* largest 6-bit scale or min */

void sol_q4_k_scales(const uint8_t *s, uint8_t sc[8], uint8_t m[8])
{
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (uint8_t)((s[j + 8] & 0xf) | (s[j] >> 6) << 4);
        m[j + 4] = (uint8_t)((s[j + 8] >> 4) | (s[j + 4] >> 6) << 4);
    }
}

static void q4_k_pack_scales(const uint8_t sc[8], const uint8_t m[8], uint8_t *s)
{
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)(m[j] | (m[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 0xf) | (m[j + 4] & 0xf) << 4);
    }
}

static void dequant_q4_k(const uint8_t *b, float *y)
{
    float d = load_f16(b), dmin = load_f16(b + 2);
    uint8_t sc[8], m[8];
    sol_q4_k_scales(b + 4, sc, m);
    for (int j = 0; j < 8; j++) {
        const uint8_t *qs = b + 16 + 32 * (j / 2);
        int shift = 4 * (j % 2);
        float step = d * (float)sc[j];     /* exact */
        float offset = dmin * (float)m[j]; /* exact */
        for (int i = 0; i < 32; i++) {
            float v = step * (float)((qs[i] >> shift) & 0xf); /* exact */
            y[32 * j + i] = v - offset;
        }
    }
}

/* Codes of one sub-block at (step, offset), rounding to nearest; the element
 * force_lo (if >= 0) gets code 0 and force_hi code 15. Returns the largest
 * error, measured on exactly what the dequantizer will compute. */
static float q4_k_codes(const float *x, float step, float offset, int force_lo,
                        int force_hi, uint8_t *q)
{
    float worst = 0;
    for (int i = 0; i < 32; i++) {
        float v = step > 0 ? (x[i] + offset) / step : 0;
        if (!(v > 0))
            v = 0;
        else if (v > 15)
            v = 15;
        int c = i == force_lo ? 0 : i == force_hi ? 15 : (int)roundf(v);
        float r = step * (float)c; /* exact */
        r -= offset;
        worst = fmaxf(worst, fabsf(x[i] - r));
        q[i] = (uint8_t)c;
    }
    return worst;
}

/* True when, at super-scale d, every sub-block's largest value fits under
 * code 15 at scale 63. */
static int q4_k_fits(float d, const float hi[8], const float offset[8])
{
    float reach = (float)(15 * Q4_K_MAX) * d; /* exact */
    for (int j = 0; j < 8; j++)
        if (reach - offset[j] < hi[j])
            return 0;
    return 1;
}

/* The smallest f16 d at which every sub-block fits; *top = the sub-block that
 * rules out the next smaller d (preferring one whose largest value already
 * sits at code 15 of scale 63), -1 when d is 0. */
static uint16_t q4_k_super_scale(const float hi[8], const float offset[8], int *top)
{
    float need = 0;
    for (int j = 0; j < 8; j++)
        need = fmaxf(need, hi[j] + offset[j]);
    uint16_t d_h = need > 0 ? sol_f32_to_f16(need / (15 * Q4_K_MAX)) : 0;
    while (d_h > 0 && q4_k_fits(sol_f16_to_f32((uint16_t)(d_h - 1)), hi, offset))
        d_h--;
    while (d_h < 0x7c00 && !q4_k_fits(sol_f16_to_f32(d_h), hi, offset))
        d_h++;

    *top = -1;
    if (d_h == 0)
        return 0;
    float reach = (float)(15 * Q4_K_MAX) * sol_f16_to_f32(d_h);                      /* exact */
    float reach_below = (float)(15 * Q4_K_MAX) * sol_f16_to_f32((uint16_t)(d_h - 1)); /* exact */
    int top_exact = 0;
    for (int j = 0; j < 8; j++) {
        int rules_out = reach_below - offset[j] < hi[j];
        int exact = hi[j] == reach - offset[j];
        if (rules_out && (*top < 0 || (exact && !top_exact))) {
            *top = j;
            top_exact = exact;
        }
    }
    return d_h;
}

/* sol's Q4_K rule (ggml's own reference searches further; this one is simple,
 * has a stated bound, and re-quantizing its output gives the same values):
 * - lo[j] = min(0, min x), hi[j] = max x; dmin is the smallest f16 whose
 *   63 multiple covers the largest -lo; m[j] the smallest min covering -lo[j];
 *   the sub-block's smallest element, if negative, gets code 0 (so m[j]
 *   comes back when re-quantized);
 * - d is the smallest f16 at which scale 63 covers every hi[j]; the sub-block
 *   that needs it takes scale 63 with its largest element at code 15 (so d
 *   comes back);
 * - every other sub-block takes the scale in [smallest covering, 63] with the
 *   smallest largest error (an exact fit, when there is one).
 * Bound: |x - y| <= max(d*sc_cover/2, dmin) <= ~1.04 * R / 30, R the largest
 * sub-block range hi - lo (plus 945 * 2^-24 when d is an f16 subnormal). */
static void quant_q4_k(const float *x, uint8_t *b)
{
    float lo[8], hi[8], offset[8];
    int lo_at[8], hi_at[8];
    uint8_t sc[8], m[8], q[QK_K];
    float mn_max = 0;
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        lo[j] = 0;
        lo_at[j] = -1;
        hi[j] = xs[0];
        hi_at[j] = 0;
        for (int i = 0; i < 32; i++) {
            if (xs[i] < lo[j]) {
                lo[j] = xs[i];
                lo_at[j] = i;
            }
            if (xs[i] >= hi[j]) { /* the last largest, so never lo_at */
                hi[j] = xs[i];
                hi_at[j] = i;
            }
        }
        mn_max = fmaxf(mn_max, -lo[j]);
    }

    uint16_t dmin_h = f16_scale_at_least(mn_max, Q4_K_MAX);
    float dmin = sol_f16_to_f32(dmin_h);
    for (int j = 0; j < 8; j++) {
        int mj = 0;
        while (mj < Q4_K_MAX && dmin * (float)mj < -lo[j])
            mj++;
        m[j] = (uint8_t)mj;
        offset[j] = dmin * (float)mj;
    }

    int top;
    uint16_t d_h = q4_k_super_scale(hi, offset, &top);
    float d = sol_f16_to_f32(d_h);
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        uint8_t *qj = q + 32 * j;
        if (d_h == 0 || j == top) {
            sc[j] = d_h == 0 ? 0 : Q4_K_MAX;
            q4_k_codes(xs, d * (float)sc[j], offset[j], lo_at[j], j == top ? hi_at[j] : -1, qj);
            continue;
        }
        int s = 0;
        while (s < Q4_K_MAX && (float)15 * d * (float)s - offset[j] < hi[j])
            s++;
        float best = INFINITY;
        for (; s <= Q4_K_MAX && best > 0; s++) {
            uint8_t trial[32];
            float err = q4_k_codes(xs, d * (float)s, offset[j], lo_at[j], -1, trial);
            if (err < best) {
                best = err;
                sc[j] = (uint8_t)s;
                memcpy(qj, trial, sizeof trial);
            }
        }
    }

    store_u16(b, d_h);
    store_u16(b + 2, dmin_h);
    q4_k_pack_scales(sc, m, b + 4);
    for (int g = 0; g < 4; g++)
        for (int i = 0; i < 32; i++)
            b[16 + 32 * g + i] = (uint8_t)(q[64 * g + i] | q[64 * g + 32 + i] << 4);
}

/* ---- Q6_K: 210 bytes = 128 bytes ql (low 4 bits), 64 bytes qh (high 2
 * bits), 16 int8 scales (one per 16 elements), f16 d; x = d*scale*(q-32).
 * Element e = 128h + 32k + l (half h, quarter k, l < 32): low bits in
 * ql[64h + 32(k&1) + l] (low nibble for k < 2, high for k >= 2), high bits at
 * bit 2k of qh[32h + l]; scale e/16. */

#define Q6_K_SCALE_MAX 127
#define Q6_K_CODE_MAX 31 /* sol writes codes -31..31 (q-32); readers take -32 too */

static void dequant_q6_k(const uint8_t *b, float *y)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *scales = (const int8_t *)(b + 192);
    float d = load_f16(b + 208);
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) {
                int e = 128 * h + 32 * k + l;
                int low = (ql[64 * h + 32 * (k & 1) + l] >> (k < 2 ? 0 : 4)) & 0xf;
                int high = (qh[32 * h + l] >> (2 * k)) & 3;
                float step = d * (float)scales[e / 16]; /* exact */
                y[e] = step * (float)((low | high << 4) - 32);
            }
}

/* Codes (q-32) of one 16-element sub-block at step, rounding to nearest; the
 * element force (if >= 0) gets +-31. Returns the largest error. */
static float q6_k_codes(const float *x, float step, int force, int8_t *c)
{
    float worst = 0;
    for (int i = 0; i < 16; i++) {
        float v = step > 0 ? x[i] / step : 0;
        if (!(v > -Q6_K_CODE_MAX))
            v = -Q6_K_CODE_MAX;
        else if (v > Q6_K_CODE_MAX)
            v = Q6_K_CODE_MAX;
        int code = (int)roundf(v);
        if (i == force)
            code = x[i] < 0 ? -Q6_K_CODE_MAX : Q6_K_CODE_MAX;
        worst = fmaxf(worst, fabsf(x[i] - step * (float)code)); /* step*code exact */
        c[i] = (int8_t)code;
    }
    return worst;
}

/* sol's Q6_K rule, symmetric, the same idea as Q4_K's:
 * - A[j] = max |x| of sub-block j; d is the smallest f16 with 31*127*d >= max A;
 * - the first sub-block with the largest A takes scale 127 and its largest
 *   element code +-31 (so d comes back when re-quantized);
 * - every other sub-block takes the scale in [smallest covering, 127] with
 *   the smallest largest error.
 * Bound: |x - y| <= d*s_cover/2 <= ~1.01 * max A / 62 (plus 3937 * 2^-24 when
 * d is an f16 subnormal). */
static void quant_q6_k(const float *x, uint8_t *b)
{
    float amax[16];
    int amax_at[16], top = 0;
    for (int j = 0; j < 16; j++) {
        amax[j] = 0;
        amax_at[j] = 0;
        for (int i = 0; i < 16; i++)
            if (fabsf(x[16 * j + i]) > amax[j]) {
                amax[j] = fabsf(x[16 * j + i]);
                amax_at[j] = i;
            }
        if (amax[j] > amax[top])
            top = j;
    }
    const float code_scale_max = (float)(Q6_K_CODE_MAX * Q6_K_SCALE_MAX);
    uint16_t d_h = f16_scale_at_least(amax[top], code_scale_max);
    float d = sol_f16_to_f32(d_h);

    int8_t scales[16], c[QK_K];
    for (int j = 0; j < 16; j++) {
        const float *xs = x + 16 * j;
        if (d_h == 0 || j == top) {
            scales[j] = d_h == 0 ? 0 : Q6_K_SCALE_MAX;
            q6_k_codes(xs, d * (float)scales[j], d_h == 0 ? -1 : amax_at[j], c + 16 * j);
            continue;
        }
        int s = 0;
        while (s < Q6_K_SCALE_MAX && (float)Q6_K_CODE_MAX * d * (float)s < amax[j])
            s++;
        float best = INFINITY;
        for (; s <= Q6_K_SCALE_MAX && best > 0; s++) {
            int8_t trial[16];
            float err = q6_k_codes(xs, d * (float)s, -1, trial);
            if (err < best) {
                best = err;
                scales[j] = (int8_t)s;
                memcpy(c + 16 * j, trial, sizeof trial);
            }
        }
    }

    uint8_t *ql = b, *qh = b + 128;
    memset(b, 0, 192);
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) {
                int q = c[128 * h + 32 * k + l] + 32;
                ql[64 * h + 32 * (k & 1) + l] |= (uint8_t)((q & 0xf) << (k < 2 ? 0 : 4));
                qh[32 * h + l] |= (uint8_t)((q >> 4) << (2 * k));
            }
    memcpy(b + 192, scales, 16);
    store_u16(b + 208, d_h);
}

/* ---- dispatch ------------------------------------------------------------ */

typedef struct block_type {
    int elems, bytes;
    void (*dequant)(const uint8_t *block, float *y);
    void (*quant)(const float *x, uint8_t *block);
} block_type;

/* The block format of t, or NULL for the plain float types. */
static const block_type *block_type_of(sol_dtype t)
{
    static const block_type q8_0 = {QK, 34, dequant_q8_0, quant_q8_0};
    static const block_type q4_0 = {QK, 18, dequant_q4_0, quant_q4_0};
    static const block_type q4_1 = {QK, 20, dequant_q4_1, quant_q4_1};
    static const block_type q4_k = {QK_K, 144, dequant_q4_k, quant_q4_k};
    static const block_type q6_k = {QK_K, 210, dequant_q6_k, quant_q6_k};
    switch (t) {
    case SOL_DT_Q8_0: return &q8_0;
    case SOL_DT_Q4_0: return &q4_0;
    case SOL_DT_Q4_1: return &q4_1;
    case SOL_DT_Q4_K: return &q4_k;
    case SOL_DT_Q6_K: return &q6_k;
    default: return NULL;
    }
}

int sol_format_supported(sol_dtype t)
{
    return t == SOL_DT_F32 || t == SOL_DT_F16 || t == SOL_DT_BF16 || block_type_of(t) != NULL;
}

int sol_cpu_supports(sol_dtype t) { return sol_format_supported(t); }

int sol_cpu_reads(sol_dtype t) { return sol_cpu_supports(t) || t == SOL_DT_FP8; }

size_t sol_row_bytes(sol_dtype t, int64_t cols)
{
    int64_t elems = sol_dtype_block_elems(t);
    assert(cols % elems == 0);
    return (size_t)ceil((double)(cols / elems) * sol_dtype_block_bytes(t));
}

static float load_f32(const uint8_t *p)
{
    float f;
    memcpy(&f, p, sizeof f);
    return f;
}

/* sol_dequantize (dispatch.c) calls this or a table of faster kernels. */
void sol_dequantize_ref(sol_dtype t, const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    assert(sol_cpu_reads(t) && n % sol_dtype_block_elems(t) == 0);
    switch (t) {
    case SOL_DT_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    case SOL_DT_F16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = load_f16(p + 2 * i);
        return;
    case SOL_DT_BF16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = sol_bf16_to_f32(load_u16(p + 2 * i));
        return;
    case SOL_DT_FP8:
        for (int64_t i = 0; i < n; i++)
            dst[i] = sol_e4m3_to_f32(p[i]);
        return;
    default: {
        const block_type *bt = block_type_of(t);
        for (int64_t i = 0; i < n; i += bt->elems, p += bt->bytes)
            bt->dequant(p, dst + i);
    }
    }
}

void sol_quantize(sol_dtype t, const float *src, void *dst, int64_t n)
{
    uint8_t *p = dst;
    assert(sol_cpu_supports(t) && n % sol_dtype_block_elems(t) == 0);
    switch (t) {
    case SOL_DT_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    case SOL_DT_F16:
        for (int64_t i = 0; i < n; i++)
            store_u16(p + 2 * i, sol_f32_to_f16(src[i]));
        return;
    case SOL_DT_BF16:
        for (int64_t i = 0; i < n; i++)
            store_u16(p + 2 * i, sol_f32_to_bf16(src[i]));
        return;
    default: {
        const block_type *bt = block_type_of(t);
        for (int64_t i = 0; i < n; i += bt->elems, p += bt->bytes)
            bt->quant(src + i, p);
    }
    }
}

/* One float accumulator per block, summed into a float total: the order a
 * vectorised kernel would also use. sol_dot (dispatch.c) calls this or a
 * table of faster kernels. */
float sol_dot_ref(sol_dtype t, const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    float sum = 0;
    assert(sol_cpu_reads(t) && n % sol_dtype_block_elems(t) == 0);
    switch (t) {
    case SOL_DT_F32:
        for (int64_t i = 0; i < n; i++)
            sum += load_f32(p + 4 * i) * x[i];
        return sum;
    case SOL_DT_FP8:
        for (int64_t i = 0; i < n; i++)
            sum += sol_e4m3_to_f32(p[i]) * x[i];
        return sum;
    case SOL_DT_F16:
        for (int64_t i = 0; i < n; i++)
            sum += load_f16(p + 2 * i) * x[i];
        return sum;
    case SOL_DT_BF16:
        for (int64_t i = 0; i < n; i++)
            sum += sol_bf16_to_f32(load_u16(p + 2 * i)) * x[i];
        return sum;
    default: {
        const block_type *bt = block_type_of(t);
        float w[QK_K];
        for (int64_t i = 0; i < n; i += bt->elems, p += bt->bytes) {
            bt->dequant(p, w);
            float block_sum = 0;
            for (int k = 0; k < bt->elems; k++)
                block_sum += w[k] * x[i + k];
            sum += block_sum;
        }
        return sum;
    }
    }
}

void sol_matvec(sol_dtype t, const void *w, const float *x, float *y, int64_t rows,
                int64_t cols)
{
    size_t row_bytes = sol_row_bytes(t, cols);
    const uint8_t *p = w;
    for (int64_t r = 0; r < rows; r++)
        y[r] = sol_dot(t, p + (size_t)r * row_bytes, x, cols);
}
