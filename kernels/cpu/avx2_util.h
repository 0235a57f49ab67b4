/* Small AVX2 helpers shared by the f32-activation kernels (simd_avx2.c) and
 * the integer-dot kernels (act_q8_avx2.c): unaligned scalar loads, f16
 * scales, horizontal sums and the unpacking of the Q4_K and Q6_K block
 * layouts. Every function carries the target attribute itself, so including
 * this header keeps a file baseline x86-64 outside the functions that use it. */
#ifndef SOL_KERNELS_CPU_AVX2_UTIL_H
#define SOL_KERNELS_CPU_AVX2_UTIL_H

#if defined(__x86_64__)

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))

/* Every row pointer may be unaligned (GGUF packs tensors at 32 bytes but
 * rows, and blocks within them, at any byte), so all loads are unaligned and
 * scalar loads go through memcpy. */

static inline uint16_t load_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static inline uint32_t load_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline float load_f32(const uint8_t *p)
{
    float f;
    memcpy(&f, p, sizeof f);
    return f;
}

/* A block's f16 scale, broadcast. Exact, like sol_f16_to_f32 (a signalling
 * NaN comes back quiet, which no product of it can tell apart). */
AVX2 static inline __m256 load_scale(const uint8_t *p)
{
    return _mm256_cvtph_ps(_mm_set1_epi16((short)load_u16(p)));
}

AVX2 static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Q4_K: the 8 six-bit scales and the 8 mins packed in a super-block's 12
 * scale bytes (the bytes after d and dmin), as 8 bytes each (byte j of *sc
 * is sc[j]), unpacked four at a time from little-endian words: bytes 0-3
 * hold sc[0..3] (low 6 bits) and the top bits of sc[4..7], bytes 4-7 the
 * same for m, bytes 8-11 the low nibbles of sc[4..7] and m[4..7]. Same values
 * as sol_q4_k_scales, without a call in the middle of a vector loop. */
static inline void q4_k_scale_bytes(const uint8_t *packed, uint64_t *sc, uint64_t *m)
{
    uint32_t s[3];
    memcpy(s, packed, sizeof s);
    uint32_t sc_lo = s[0] & 0x3f3f3f3f, m_lo = s[1] & 0x3f3f3f3f;
    uint32_t sc_hi = (s[2] & 0x0f0f0f0f) | ((s[0] >> 6) & 0x03030303) << 4;
    uint32_t m_hi = ((s[2] >> 4) & 0x0f0f0f0f) | ((s[1] >> 6) & 0x03030303) << 4;
    *sc = sc_lo | (uint64_t)sc_hi << 32;
    *m = m_lo | (uint64_t)m_hi << 32;
}

/* Q6_K: the 32 six-bit codes 0..63 (stored value + 32) of quarter k of a
 * half super-block, from the 32 bytes of ql and of qh that half reads: low
 * 4 bits from ql (the high nibbles when k >= 2, ql being the second 32 bytes
 * of the half when k is odd), high 2 bits from bits 2k, 2k+1 of qh. */
AVX2 static inline __m256i q6_k_codes_u(__m256i ql, __m256i qh, int k)
{
    const __m256i low4 = _mm256_set1_epi8(0x0f), high2 = _mm256_set1_epi8(0x30);
    __m256i low = k < 2 ? _mm256_and_si256(ql, low4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), low4);
    /* bits 2k, 2k+1 of qh moved to bits 4, 5 (16-bit shifts: the mask drops
     * what crosses from the neighbouring byte) */
    __m256i high;
    switch (k) {
    case 0: high = _mm256_slli_epi16(qh, 4); break;
    case 1: high = _mm256_slli_epi16(qh, 2); break;
    case 2: high = qh; break;
    default: high = _mm256_srli_epi16(qh, 2); break;
    }
    return _mm256_or_si256(low, _mm256_and_si256(high, high2));
}

#endif
#endif
