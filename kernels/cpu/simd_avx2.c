/* AVX2 + FMA + F16C kernels for every stored weight type: weights decoded in
 * registers, activations kept f32, several independent accumulators. Compiled
 * per function (target attribute), so the rest of the build stays baseline
 * x86-64 and dispatch.c calls these only on a CPU that has all three. */
#include "kernels/cpu/simd.h"

#if defined(__x86_64__)

#include <assert.h>
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/avx2_util.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/quant.h"
#include "util/fp8.h"

#define QK 32    /* elements of a Q8_0, Q4_0 or Q4_1 block */
#define QK_K 256 /* elements of a Q4_K or Q6_K super-block */

AVX2 static inline float hsum4(__m256 a, __m256 b, __m256 c, __m256 d)
{
    return hsum(_mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d)));
}

/* 8 bytes at p zero-extended to 8 int32 lanes. */
AVX2 static inline __m256i bytes_u32(const uint8_t *p)
{
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

/* 8 bytes at p sign-extended, as floats. */
AVX2 static inline __m256 bytes_i8_ps(const uint8_t *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

/* Nibble codes of 8 elements: the low or the high nibbles of 8 bytes at p. */
AVX2 static inline __m256i nibbles_lo(const uint8_t *p)
{
    return _mm256_and_si256(bytes_u32(p), _mm256_set1_epi32(0xf));
}

AVX2 static inline __m256i nibbles_hi(const uint8_t *p) { return _mm256_srli_epi32(bytes_u32(p), 4); }

/* ---- plain floats -------------------------------------------------------- */

/* 8 (4) elements of row p (type t) from element i, as f32. */
AVX2 static inline __m256 load8_f32(const uint8_t *p, int64_t i)
{
    return _mm256_loadu_ps((const float *)(p + 4 * i));
}

AVX2 static inline __m128 load4_f32(const uint8_t *p, int64_t i) { return _mm_loadu_ps((const float *)(p + 4 * i)); }

AVX2 static inline __m256 load8_f16(const uint8_t *p, int64_t i)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i)));
}

AVX2 static inline __m128 load4_f16(const uint8_t *p, int64_t i)
{
    return _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(p + 2 * i)));
}

AVX2 static inline __m256 load8_bf16(const uint8_t *p, int64_t i)
{
    __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p + 2 * i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

AVX2 static inline __m128 load4_bf16(const uint8_t *p, int64_t i)
{
    __m128i wide = _mm_cvtepu16_epi32(_mm_loadl_epi64((const __m128i *)(p + 2 * i)));
    return _mm_castsi128_ps(_mm_slli_epi32(wide, 16));
}

/* FP8 e4m3 (util/fp8.h) through F16C rather than a table gather: its
 * exponent and mantissa bits moved into an f16's make the same value times
 * 2^-8 (the biases, 7 and 15, differ by 8), subnormals included, and one
 * exact multiply finishes it. Every f32 involved is normal, so no
 * denormal-operand slow path. The codes are sign-extended to 16 bits, which
 * puts the sign in bit 15; the shift also moves a copy of it into bit 14,
 * which the mask drops. Only the NaN codes 0x7F and 0xFF read wrong that
 * way (+-480): a rarely taken branch blends the reference's quiet NaN in. */
#define E4M3_F16_MASK ((short)0xbf80)

AVX2 static inline __m256 f16_times_256(__m128i h)
{
    return _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_set1_ps(256.0f));
}

/* Whether any code of b (16 bytes) is a NaN: adding 1 to the low 7 bits
 * carries into bit 7 only for 0x7F. */
AVX2 static inline int e4m3_any_nan(__m128i b)
{
    __m128i t = _mm_add_epi8(_mm_and_si128(b, _mm_set1_epi8(0x7f)), _mm_set1_epi8(1));
    return _mm_movemask_epi8(t) != 0;
}

/* 8 codes at p + i; NaN codes as the reference decodes them. */
AVX2 static inline __m256 load8_fp8(const uint8_t *p, int64_t i)
{
    __m128i b = _mm_loadl_epi64((const __m128i *)(p + i));
    __m128i h = _mm_and_si128(_mm_slli_epi16(_mm_cvtepi8_epi16(b), 7), _mm_set1_epi16(E4M3_F16_MASK));
    __m256 v = f16_times_256(h);
    if (__builtin_expect(!e4m3_any_nan(b), 1)) /* the 8 bytes above are zeros: never NaN */
        return v;
    __m128i nan8 = _mm_cmpeq_epi8(_mm_and_si128(b, _mm_set1_epi8(0x7f)), _mm_set1_epi8(0x7f));
    __m256 quiet_nan = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fc00000));
    __m256 nan = _mm256_or_ps(_mm256_and_ps(v, _mm256_set1_ps(-0.0f)), quiet_nan); /* with v's sign */
    return _mm256_blendv_ps(v, nan, _mm256_castsi256_ps(_mm256_cvtepi8_epi32(nan8)));
}

/* 16 codes at p + i as w[0..1], 8 each: the decode above on 16 lanes at once,
 * falling back to it 8 at a time where a NaN code is among them. */
AVX2 static inline void load16_fp8(const uint8_t *p, int64_t i, __m256 w[2])
{
    __m128i b = _mm_loadu_si128((const __m128i *)(p + i));
    if (__builtin_expect(e4m3_any_nan(b), 0)) {
        w[0] = load8_fp8(p, i);
        w[1] = load8_fp8(p, i + 8);
        return;
    }
    __m256i h = _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(b), 7), _mm256_set1_epi16(E4M3_F16_MASK));
    w[0] = f16_times_256(_mm256_castsi256_si128(h));
    w[1] = f16_times_256(_mm256_extracti128_si256(h, 1));
}

/* 32 elements a step into four accumulators (the decode, not the loads, is
 * the limit: a quarter of F16's bytes per element), then 8 at a time, then
 * the scalar tail (any n). */
AVX2 static float dot_fp8(const uint8_t *p, const float *x, int64_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 w[4];
        load16_fp8(p, i, w);
        load16_fp8(p, i + 16, w + 2);
        a0 = _mm256_fmadd_ps(w[0], _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(load8_fp8(p, i), _mm256_loadu_ps(x + i), a0);
    float sum = hsum4(a0, a1, a2, a3);
    for (; i < n; i++)
        sum += sol_e4m3_to_f32(p[i]) * x[i];
    return sum;
}

/* One dot per plain type. The activations are most of what it loads (8
 * elements: 32 bytes of x against 16 of f16 weights), and the loads are its
 * limit: two a cycle, where a 32-byte load that crosses a cache line takes
 * two turns. x from malloc is only 16-byte aligned, so every other load of
 * it would cross: F16 on Zen 4, cache-resident, took 1.5 cycles per 8
 * elements that way, 1.1 with x and the weights aligned. So the elements
 * before x's next 32-byte boundary go first, singly up to 16 bytes and then
 * 4 at once; then 32 a step into four accumulators on aligned x, then 8 at a
 * time, then the scalar tail (any n). That may leave the weights unaligned
 * instead, which costs less (1.25 cycles): their 16-byte loads cross a line
 * one time in four. */
#define DOT_PLAIN(name, load8, load4, scalar_at)                                                   \
    AVX2 static float name(const uint8_t *p, const float *x, int64_t n)                            \
    {                                                                                              \
        float head = 0;                                                                            \
        int64_t i = 0;                                                                             \
        for (; i < n && ((uintptr_t)(x + i) & 15); i++)                                            \
            head += scalar_at * x[i];                                                              \
        __m128 head4 = _mm_setzero_ps();                                                           \
        if (i + 4 <= n && ((uintptr_t)(x + i) & 31)) {                                             \
            head4 = _mm_mul_ps(load4(p, i), _mm_loadu_ps(x + i));                                  \
            i += 4;                                                                                \
        }                                                                                          \
        __m256 a0 = _mm256_setr_m128(head4, _mm_setzero_ps()), a1 = _mm256_setzero_ps();           \
        __m256 a2 = a1, a3 = a1;                                                                   \
        for (; i + 32 <= n; i += 32) {                                                             \
            a0 = _mm256_fmadd_ps(load8(p, i), _mm256_loadu_ps(x + i), a0);                         \
            a1 = _mm256_fmadd_ps(load8(p, i + 8), _mm256_loadu_ps(x + i + 8), a1);                 \
            a2 = _mm256_fmadd_ps(load8(p, i + 16), _mm256_loadu_ps(x + i + 16), a2);               \
            a3 = _mm256_fmadd_ps(load8(p, i + 24), _mm256_loadu_ps(x + i + 24), a3);               \
        }                                                                                          \
        for (; i + 8 <= n; i += 8)                                                                 \
            a0 = _mm256_fmadd_ps(load8(p, i), _mm256_loadu_ps(x + i), a0);                         \
        float sum = hsum4(a0, a1, a2, a3) + head;                                                  \
        for (; i < n; i++)                                                                         \
            sum += scalar_at * x[i];                                                               \
        return sum;                                                                                \
    }

DOT_PLAIN(dot_f32, load8_f32, load4_f32, load_f32(p + 4 * i))
DOT_PLAIN(dot_f16, load8_f16, load4_f16, sol_f16_to_f32(load_u16(p + 2 * i)))
DOT_PLAIN(dot_bf16, load8_bf16, load4_bf16, sol_bf16_to_f32(load_u16(p + 2 * i)))

/* Several rows of one plain type against one x (decode's matvec): each x
 * vector loaded once serves every row, where one row at a time loads x once
 * per row: on rows longer than L1 holds x for (the down projection's 8192
 * f32 = 32 KiB), the per-row dot ran at half the bandwidth of the others. */
#define DOT_ROWS(name, load8, scalar_of)                                                           \
    AVX2 static inline __attribute__((always_inline)) void name##_n(                               \
        const uint8_t *p, size_t row_bytes, const int nr, const float *x, int64_t n, float *out)  \
    {                                                                                              \
        __m256 a[4][2];                                                                            \
        _Pragma("GCC unroll 4") for (int r = 0; r < nr; r++) a[r][0] = a[r][1] = _mm256_setzero_ps(); \
        int64_t i = 0;                                                                             \
        for (; i + 16 <= n; i += 16) {                                                             \
            __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);                   \
            _Pragma("GCC unroll 4") for (int r = 0; r < nr; r++) {                                 \
                a[r][0] = _mm256_fmadd_ps(load8(p + r * row_bytes, i), x0, a[r][0]);               \
                a[r][1] = _mm256_fmadd_ps(load8(p + r * row_bytes, i + 8), x1, a[r][1]);           \
            }                                                                                      \
        }                                                                                          \
        for (; i + 8 <= n; i += 8) {                                                               \
            __m256 x0 = _mm256_loadu_ps(x + i);                                                    \
            _Pragma("GCC unroll 4") for (int r = 0; r < nr; r++)                                   \
                a[r][0] = _mm256_fmadd_ps(load8(p + r * row_bytes, i), x0, a[r][0]);               \
        }                                                                                          \
        _Pragma("GCC unroll 4") for (int r = 0; r < nr; r++) {                                     \
            float sum = hsum(_mm256_add_ps(a[r][0], a[r][1]));                                     \
            for (int64_t j = i; j < n; j++)                                                        \
                sum += scalar_of(p + r * row_bytes, j) * x[j];                                     \
            out[r] = sum;                                                                          \
        }                                                                                          \
    }                                                                                              \
    AVX2 static void name(const uint8_t *p, size_t row_bytes, int nr, const float *x, int64_t n, float *out) \
    {                                                                                              \
        switch (nr) {                                                                              \
        case 4: name##_n(p, row_bytes, 4, x, n, out); break;                                       \
        case 3: name##_n(p, row_bytes, 3, x, n, out); break;                                       \
        case 2: name##_n(p, row_bytes, 2, x, n, out); break;                                       \
        default: name##_n(p, row_bytes, 1, x, n, out); break;                                     \
        }                                                                                          \
    }

static inline float f32_at(const uint8_t *p, int64_t i) { return load_f32(p + 4 * i); }
static inline float f16_at(const uint8_t *p, int64_t i) { return sol_f16_to_f32(load_u16(p + 2 * i)); }
static inline float bf16_at(const uint8_t *p, int64_t i) { return sol_bf16_to_f32(load_u16(p + 2 * i)); }
static inline float fp8_at(const uint8_t *p, int64_t i) { return sol_e4m3_to_f32(p[i]); }

DOT_ROWS(rows_f32, load8_f32, f32_at)
DOT_ROWS(rows_f16, load8_f16, f16_at)
DOT_ROWS(rows_bf16, load8_bf16, bf16_at)
DOT_ROWS(rows_fp8, load8_fp8, fp8_at)

void sol_dot_rows_avx2(sol_dtype t, const void *rows, size_t row_bytes, int nr, const float *x, int64_t n, float *out)
{
    const uint8_t *p = rows;
    assert(nr >= 1 && nr <= SOL_DOT_ROWS_MAX);
    if (nr == 1) { /* the single-row dot keeps four FMA chains (two here would be its latency limit) */
        out[0] = sol_dot_avx2(t, rows, x, n);
        return;
    }
    switch (t) {
    case SOL_DT_F32: rows_f32(p, row_bytes, nr, x, n, out); return;
    case SOL_DT_F16: rows_f16(p, row_bytes, nr, x, n, out); return;
    case SOL_DT_BF16: rows_bf16(p, row_bytes, nr, x, n, out); return;
    case SOL_DT_FP8: rows_fp8(p, row_bytes, nr, x, n, out); return;
    default:
        for (int r = 0; r < nr; r++)
            out[r] = sol_dot_avx2(t, p + (size_t)r * row_bytes, x, n);
    }
}

/* ---- Q8_0: f16 d, 32 x int8; sum d * (q . x) ------------------------------ */

AVX2 static float dot_q8_0(const uint8_t *b, const float *x, int64_t n)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    int64_t i = 0;
    /* Two blocks a step: each block's q.x is a short chain of its own, and
     * the two running totals keep the scale FMAs from waiting on each other. */
    for (; i + 2 * QK <= n; i += 2 * QK, b += 2 * 34, x += 2 * QK) {
        __m256 s0 = _mm256_mul_ps(bytes_i8_ps(b + 2), _mm256_loadu_ps(x));
        __m256 s1 = _mm256_mul_ps(bytes_i8_ps(b + 2 + 34), _mm256_loadu_ps(x + 32));
        s0 = _mm256_fmadd_ps(bytes_i8_ps(b + 10), _mm256_loadu_ps(x + 8), s0);
        s1 = _mm256_fmadd_ps(bytes_i8_ps(b + 10 + 34), _mm256_loadu_ps(x + 40), s1);
        s0 = _mm256_fmadd_ps(bytes_i8_ps(b + 18), _mm256_loadu_ps(x + 16), s0);
        s1 = _mm256_fmadd_ps(bytes_i8_ps(b + 18 + 34), _mm256_loadu_ps(x + 48), s1);
        s0 = _mm256_fmadd_ps(bytes_i8_ps(b + 26), _mm256_loadu_ps(x + 24), s0);
        s1 = _mm256_fmadd_ps(bytes_i8_ps(b + 26 + 34), _mm256_loadu_ps(x + 56), s1);
        acc0 = _mm256_fmadd_ps(load_scale(b), s0, acc0);
        acc1 = _mm256_fmadd_ps(load_scale(b + 34), s1, acc1);
    }
    if (i < n) {
        __m256 s = _mm256_mul_ps(bytes_i8_ps(b + 2), _mm256_loadu_ps(x));
        s = _mm256_fmadd_ps(bytes_i8_ps(b + 10), _mm256_loadu_ps(x + 8), s);
        s = _mm256_fmadd_ps(bytes_i8_ps(b + 18), _mm256_loadu_ps(x + 16), s);
        s = _mm256_fmadd_ps(bytes_i8_ps(b + 26), _mm256_loadu_ps(x + 24), s);
        acc0 = _mm256_fmadd_ps(load_scale(b), s, acc0);
    }
    return hsum(_mm256_add_ps(acc0, acc1));
}

/* ---- Q4_0: f16 d, 16 bytes of nibbles (low: elements 0-15, high: 16-31);
 * w = d*(q - 8), rebuilt by one FMA as d*q - 8d, which is exact. ---------- */

/* Codes q - 8 of elements 8*part .. 8*part+7 of the block whose nibbles start
 * at qs, as floats. */
AVX2 static inline __m256 q4_0_codes(const uint8_t *qs, int part)
{
    __m256i q = part < 2 ? nibbles_lo(qs + 8 * part) : nibbles_hi(qs + 8 * (part - 2));
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(q, _mm256_set1_epi32(8)));
}

AVX2 static float dot_q4_0(const uint8_t *b, const float *x, int64_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t i = 0; i < n; i += QK, b += 18, x += QK) {
        __m256 d = load_scale(b), off = _mm256_mul_ps(d, _mm256_set1_ps(8));
        const uint8_t *qs = b + 2;
        __m256 w0 = _mm256_fmsub_ps(_mm256_cvtepi32_ps(nibbles_lo(qs)), d, off);
        __m256 w1 = _mm256_fmsub_ps(_mm256_cvtepi32_ps(nibbles_lo(qs + 8)), d, off);
        __m256 w2 = _mm256_fmsub_ps(_mm256_cvtepi32_ps(nibbles_hi(qs)), d, off);
        __m256 w3 = _mm256_fmsub_ps(_mm256_cvtepi32_ps(nibbles_hi(qs + 8)), d, off);
        a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x), a0);
        a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + 8), a1);
        a2 = _mm256_fmadd_ps(w2, _mm256_loadu_ps(x + 16), a2);
        a3 = _mm256_fmadd_ps(w3, _mm256_loadu_ps(x + 24), a3);
    }
    return hsum4(a0, a1, a2, a3);
}

/* ---- Q4_1: f16 d, f16 m, nibbles as Q4_0; w = d*q + m --------------------
 * Each weight is rebuilt with one FMA, the same single rounding as the
 * reference, so the error is that of an f32 dot over the dequantized row.
 * (d.(q.x) + m.sum(x) takes as many operations: the sum of x costs the FMA it
 * saves.) d and m are loaded and converted together: per-block scale handling
 * is a fair share of the work at 32 elements a block. */

AVX2 static float dot_q4_1(const uint8_t *b, const float *x, int64_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t i = 0; i < n; i += QK, b += 20, x += QK) {
        __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128((int)load_u32(b)));
        __m256 d = _mm256_broadcastss_ps(dm), m = _mm256_broadcastss_ps(_mm_movehdup_ps(dm));
        const uint8_t *qs = b + 4;
        __m256 w0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(nibbles_lo(qs)), d, m);
        __m256 w1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(nibbles_lo(qs + 8)), d, m);
        __m256 w2 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(nibbles_hi(qs)), d, m);
        __m256 w3 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(nibbles_hi(qs + 8)), d, m);
        a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x), a0);
        a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + 8), a1);
        a2 = _mm256_fmadd_ps(w2, _mm256_loadu_ps(x + 16), a2);
        a3 = _mm256_fmadd_ps(w3, _mm256_loadu_ps(x + 24), a3);
    }
    return hsum4(a0, a1, a2, a3);
}

/* ---- Q4_K: f16 d, f16 dmin, 12 bytes of 6-bit scales and mins, 128 bytes of
 * nibbles; sub-block j: w = d*sc[j]*q - dmin*m[j] -------------------------- */

/* Steps d*sc[j] and offsets dmin*m[j] of one super-block (both exact). */
AVX2 static inline void q4_k_steps(const uint8_t *b, float step[8], float offset[8])
{
    uint64_t sc, m;
    q4_k_scale_bytes(b + 4, &sc, &m);
    __m256 sc_f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)sc)));
    __m256 m_f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)m)));
    _mm256_storeu_ps(step, _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(load_u16(b))), sc_f));
    _mm256_storeu_ps(offset, _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(load_u16(b + 2))), m_f));
}

/* 8 weights step*q - offset from nibble codes q: one FMA, the reference's
 * single rounding (step*q is exact). */
AVX2 static inline __m256 q4_k_weights(__m256i q, __m256 step, __m256 offset)
{
    return _mm256_fmsub_ps(_mm256_cvtepi32_ps(q), step, offset);
}

/* One sub-block of 32 into a0..a3: the low (high = 0) or high nibbles of the
 * 32 bytes at qs against x at xs. */
#define Q4_K_SUB(qs, high, st, off, xs)                                                            \
    do {                                                                                           \
        __m256i q0 = high ? nibbles_hi(qs) : nibbles_lo(qs);                                       \
        __m256i q1 = high ? nibbles_hi(qs + 8) : nibbles_lo(qs + 8);                               \
        __m256i q2 = high ? nibbles_hi(qs + 16) : nibbles_lo(qs + 16);                             \
        __m256i q3 = high ? nibbles_hi(qs + 24) : nibbles_lo(qs + 24);                             \
        a0 = _mm256_fmadd_ps(q4_k_weights(q0, st, off), _mm256_loadu_ps(xs), a0);                 \
        a1 = _mm256_fmadd_ps(q4_k_weights(q1, st, off), _mm256_loadu_ps(xs + 8), a1);             \
        a2 = _mm256_fmadd_ps(q4_k_weights(q2, st, off), _mm256_loadu_ps(xs + 16), a2);            \
        a3 = _mm256_fmadd_ps(q4_k_weights(q3, st, off), _mm256_loadu_ps(xs + 24), a3);            \
    } while (0)

AVX2 static float dot_q4_k(const uint8_t *b, const float *x, int64_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t i = 0; i < n; i += QK_K, b += 144, x += QK_K) {
        float step[8], offset[8];
        q4_k_steps(b, step, offset);
        for (int g = 0; g < 4; g++) { /* sub-blocks 2g (low nibbles) and 2g+1 (high) */
            const uint8_t *qs = b + 16 + 32 * g;
            const float *xs = x + 64 * g;
            int j = 2 * g;
            Q4_K_SUB(qs, 0, _mm256_broadcast_ss(step + j), _mm256_broadcast_ss(offset + j), xs);
            Q4_K_SUB(qs, 1, _mm256_broadcast_ss(step + j + 1), _mm256_broadcast_ss(offset + j + 1), xs + 32);
        }
    }
    return hsum4(a0, a1, a2, a3);
}

/* ---- Q6_K: ql[128] low 4 bits, qh[64] high 2 bits, 16 int8 scales, f16 d;
 * w = d*scale[e/16]*(q - 32). Element e = 128h + 32k + l: low bits in
 * ql[64h + 32(k&1) + l] (high nibble when k >= 2), high bits at bit 2k of
 * qh[32h + l]. ------------------------------------------------------------- */

/* The 32 codes q - 32 (int8) of quarter k of half h, from the 32 bytes of
 * ql and of qh that half reads. */
AVX2 static inline __m256i q6_k_codes(__m256i ql, __m256i qh, int k)
{
    return _mm256_sub_epi8(q6_k_codes_u(ql, qh, k), _mm256_set1_epi8(32));
}

/* Codes 8c..8c+7 of 32 int8 codes, as floats. */
AVX2 static inline __m256 i8_part_ps(__m256i codes, int c)
{
    __m128i half = c < 2 ? _mm256_castsi256_si128(codes) : _mm256_extracti128_si256(codes, 1);
    if (c & 1)
        half = _mm_srli_si128(half, 8);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(half));
}

/* The 16 steps d*scale[k] of a super-block (exact). */
AVX2 static inline void q6_k_steps(const uint8_t *b, float step[16])
{
    __m256 d = load_scale(b + 208);
    _mm256_storeu_ps(step, _mm256_mul_ps(d, bytes_i8_ps(b + 192)));
    _mm256_storeu_ps(step + 8, _mm256_mul_ps(d, bytes_i8_ps(b + 200)));
}

AVX2 static float dot_q6_k(const uint8_t *b, const float *x, int64_t n)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (int64_t i = 0; i < n; i += QK_K, b += 210, x += QK_K) {
        const uint8_t *ql = b, *qh = b + 128;
        float step[16];
        q6_k_steps(b, step);
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256i ql0 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h));
            __m256i ql1 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h + 32));
            __m256i qhv = _mm256_loadu_si256((const __m256i *)(qh + 32 * h));
#pragma GCC unroll 4 /* so that k, and the shifts it picks, are constants */
            for (int k = 0; k < 4; k++) {
                __m256i codes = q6_k_codes(k & 1 ? ql1 : ql0, qhv, k);
                const float *xs = x + 128 * h + 32 * k;
                int s = 8 * h + 2 * k; /* elements 0-15 take scale s, 16-31 scale s+1 */
                __m256 lo = _mm256_mul_ps(i8_part_ps(codes, 0), _mm256_loadu_ps(xs));
                __m256 hi = _mm256_mul_ps(i8_part_ps(codes, 2), _mm256_loadu_ps(xs + 16));
                lo = _mm256_fmadd_ps(i8_part_ps(codes, 1), _mm256_loadu_ps(xs + 8), lo);
                hi = _mm256_fmadd_ps(i8_part_ps(codes, 3), _mm256_loadu_ps(xs + 24), hi);
                acc0 = _mm256_fmadd_ps(_mm256_broadcast_ss(step + s), lo, acc0);
                acc1 = _mm256_fmadd_ps(_mm256_broadcast_ss(step + s + 1), hi, acc1);
            }
        }
    }
    return hsum(_mm256_add_ps(acc0, acc1));
}

float sol_dot_avx2(sol_dtype t, const void *row, const float *x, int64_t n)
{
    const uint8_t *p = row;
    assert(sol_cpu_reads(t) && n % sol_dtype_block_elems(t) == 0);
    switch (t) {
    case SOL_DT_F32: return dot_f32(p, x, n);
    case SOL_DT_F16: return dot_f16(p, x, n);
    case SOL_DT_BF16: return dot_bf16(p, x, n);
    case SOL_DT_FP8: return dot_fp8(p, x, n);
    case SOL_DT_Q8_0: return dot_q8_0(p, x, n);
    case SOL_DT_Q4_0: return dot_q4_0(p, x, n);
    case SOL_DT_Q4_1: return dot_q4_1(p, x, n);
    case SOL_DT_Q4_K: return dot_q4_k(p, x, n);
    case SOL_DT_Q6_K: return dot_q6_k(p, x, n);
    default: return sol_dot_ref(t, row, x, n);
    }
}

/* ---- dequantization: bit-identical to the reference ----------------------
 * Every weight is an exact product plus at most one rounding (Q4_1's + m,
 * Q4_K's - offset), done here by the same operations in the same order. */

/* F16 via F16C, except that the hardware quiets a signalling NaN: a group of
 * 8 holding an all-ones exponent (inf or NaN) goes the portable way. */
AVX2 static void dequant_f16(const uint8_t *p, float *y, int64_t n)
{
    const __m128i exp_mask = _mm_set1_epi16(0x7c00);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(p + 2 * i));
        __m128i special = _mm_cmpeq_epi16(_mm_and_si128(h, exp_mask), exp_mask);
        if (_mm_testz_si128(special, special))
            _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h));
        else
            for (int k = 0; k < 8; k++)
                y[i + k] = sol_f16_to_f32(load_u16(p + 2 * (i + k)));
    }
    for (; i < n; i++)
        y[i] = sol_f16_to_f32(load_u16(p + 2 * i));
}

AVX2 static void dequant_bf16(const uint8_t *p, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, load8_bf16(p, i));
    for (; i < n; i++)
        y[i] = sol_bf16_to_f32(load_u16(p + 2 * i));
}

AVX2 static void dequant_fp8(const uint8_t *p, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 w[2];
        load16_fp8(p, i, w);
        _mm256_storeu_ps(y + i, w[0]);
        _mm256_storeu_ps(y + i + 8, w[1]);
    }
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, load8_fp8(p, i));
    for (; i < n; i++)
        y[i] = sol_e4m3_to_f32(p[i]);
}

AVX2 static void dequant_q8_0(const uint8_t *b, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i += QK, b += 34, y += QK) {
        __m256 d = load_scale(b);
        for (int c = 0; c < 4; c++)
            _mm256_storeu_ps(y + 8 * c, _mm256_mul_ps(d, bytes_i8_ps(b + 2 + 8 * c)));
    }
}

AVX2 static void dequant_q4_0(const uint8_t *b, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i += QK, b += 18, y += QK) {
        __m256 d = load_scale(b);
        for (int c = 0; c < 4; c++)
            _mm256_storeu_ps(y + 8 * c, _mm256_mul_ps(d, q4_0_codes(b + 2, c)));
    }
}

AVX2 static void dequant_q4_1(const uint8_t *b, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i += QK, b += 20, y += QK) {
        __m256 d = load_scale(b), m = load_scale(b + 2);
        const uint8_t *qs = b + 4;
        __m256i q[4] = {nibbles_lo(qs), nibbles_lo(qs + 8), nibbles_hi(qs), nibbles_hi(qs + 8)};
        for (int c = 0; c < 4; c++)
            _mm256_storeu_ps(y + 8 * c, _mm256_add_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(q[c])), m));
    }
}

AVX2 static void dequant_q4_k(const uint8_t *b, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i += QK_K, b += 144, y += QK_K) {
        float step[8], offset[8];
        q4_k_steps(b, step, offset);
        for (int j = 0; j < 8; j++) {
            const uint8_t *qs = b + 16 + 32 * (j / 2);
            __m256 st = _mm256_set1_ps(step[j]), off = _mm256_set1_ps(offset[j]);
            for (int c = 0; c < 4; c++) {
                __m256i q = j % 2 ? nibbles_hi(qs + 8 * c) : nibbles_lo(qs + 8 * c);
                __m256 v = _mm256_mul_ps(st, _mm256_cvtepi32_ps(q)); /* exact */
                _mm256_storeu_ps(y + 32 * j + 8 * c, _mm256_sub_ps(v, off));
            }
        }
    }
}

AVX2 static void dequant_q6_k(const uint8_t *b, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i += QK_K, b += 210, y += QK_K) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *scales = (const int8_t *)(b + 192);
        float d = _cvtsh_ss(load_u16(b + 208));
        for (int h = 0; h < 2; h++) {
            __m256i ql0 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h));
            __m256i ql1 = _mm256_loadu_si256((const __m256i *)(ql + 64 * h + 32));
            __m256i qhv = _mm256_loadu_si256((const __m256i *)(qh + 32 * h));
            for (int k = 0; k < 4; k++) {
                __m256i codes = q6_k_codes(k & 1 ? ql1 : ql0, qhv, k);
                float *ys = y + 128 * h + 32 * k;
                int s = 8 * h + 2 * k;
                for (int c = 0; c < 4; c++) {
                    __m256 step = _mm256_set1_ps(d * (float)scales[s + c / 2]); /* exact */
                    _mm256_storeu_ps(ys + 8 * c, _mm256_mul_ps(step, i8_part_ps(codes, c)));
                }
            }
        }
    }
}

void sol_dequantize_avx2(sol_dtype t, const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    assert(sol_cpu_reads(t) && n % sol_dtype_block_elems(t) == 0);
    switch (t) {
    case SOL_DT_F32: memcpy(dst, src, (size_t)n * sizeof(float)); return;
    case SOL_DT_F16: dequant_f16(p, dst, n); return;
    case SOL_DT_BF16: dequant_bf16(p, dst, n); return;
    case SOL_DT_FP8: dequant_fp8(p, dst, n); return;
    case SOL_DT_Q8_0: dequant_q8_0(p, dst, n); return;
    case SOL_DT_Q4_0: dequant_q4_0(p, dst, n); return;
    case SOL_DT_Q4_1: dequant_q4_1(p, dst, n); return;
    case SOL_DT_Q4_K: dequant_q4_k(p, dst, n); return;
    case SOL_DT_Q6_K: dequant_q6_k(p, dst, n); return;
    default: sol_dequantize_ref(t, src, dst, n); return;
    }
}

#endif
