/* Products of small blocks of f32 rows: every dot between a tile of rows
 * and a block of rows (attention's scores, prefill matmuls of float
 * weights), and the weighted sum of a block of rows into accumulators
 * (attention's values). The reference is plain C; the AVX2 versions keep
 * four rows of the tile in registers so each vector loaded from the block
 * serves four of them. */
#include "kernels/cpu/simd.h"

#include <assert.h>

void sol_cross_dots_ref(const float *q, int nq, const float *k, int nk, int dh, float *s, int s_stride)
{
    for (int i = 0; i < nq; i++)
        for (int j = 0; j < nk; j++) {
            float sum = 0;
            for (int d = 0; d < dh; d++)
                sum += q[(size_t)i * dh + d] * k[(size_t)j * dh + d];
            s[(size_t)i * s_stride + j] = sum;
        }
}

void sol_attn_weighted_sum_ref(const float *w, int w_stride, int nq, const float *v, int nk, int dh, float *acc)
{
    for (int i = 0; i < nq; i++)
        for (int j = 0; j < nk; j++) {
            float wj = w[(size_t)i * w_stride + j];
            for (int d = 0; d < dh; d++)
                acc[(size_t)i * dh + d] += wj * v[(size_t)j * dh + d];
        }
}

#if defined(__x86_64__)
#include "kernels/cpu/avx2_util.h"

/* Four queries against one key: the key vector is loaded once per 8 floats. */
AVX2 static void scores_4x1(const float *q, int dh, const float *k, float out[4])
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int d = 0; d < dh; d += 8) {
        __m256 kv = _mm256_loadu_ps(k + d);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), kv, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + dh + d), kv, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 2 * dh + d), kv, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q + 3 * dh + d), kv, a3);
    }
    out[0] = hsum(a0);
    out[1] = hsum(a1);
    out[2] = hsum(a2);
    out[3] = hsum(a3);
}

/* Four rows against two: six loads feed eight FMAs. */
AVX2 static void scores_4x2(const float *q, int dh, const float *k, float out[8])
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int d = 0; d < dh; d += 8) {
        __m256 k0 = _mm256_loadu_ps(k + d), k1 = _mm256_loadu_ps(k + dh + d);
        __m256 q0 = _mm256_loadu_ps(q + d), q1 = _mm256_loadu_ps(q + dh + d);
        __m256 q2 = _mm256_loadu_ps(q + 2 * dh + d), q3 = _mm256_loadu_ps(q + 3 * dh + d);
        a0 = _mm256_fmadd_ps(q0, k0, a0);
        a1 = _mm256_fmadd_ps(q1, k0, a1);
        a2 = _mm256_fmadd_ps(q2, k0, a2);
        a3 = _mm256_fmadd_ps(q3, k0, a3);
        b0 = _mm256_fmadd_ps(q0, k1, b0);
        b1 = _mm256_fmadd_ps(q1, k1, b1);
        b2 = _mm256_fmadd_ps(q2, k1, b2);
        b3 = _mm256_fmadd_ps(q3, k1, b3);
    }
    out[0] = hsum(a0);
    out[1] = hsum(a1);
    out[2] = hsum(a2);
    out[3] = hsum(a3);
    out[4] = hsum(b0);
    out[5] = hsum(b1);
    out[6] = hsum(b2);
    out[7] = hsum(b3);
}

AVX2 static float score_1x1(const float *q, int dh, const float *k)
{
    __m256 a = _mm256_setzero_ps();
    for (int d = 0; d < dh; d += 8)
        a = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(k + d), a);
    return hsum(a);
}

/* dh a multiple of 8 (else the reference). */
AVX2 void sol_cross_dots_avx2(const float *q, int nq, const float *k, int nk, int dh, float *s, int s_stride)
{
    if (dh % 8) {
        sol_cross_dots_ref(q, nq, k, nk, dh, s, s_stride);
        return;
    }
    int i = 0;
    for (; i + 4 <= nq; i += 4) {
        int j = 0;
        for (; j + 2 <= nk; j += 2) {
            float out[8];
            scores_4x2(q + (size_t)i * dh, dh, k + (size_t)j * dh, out);
            for (int r = 0; r < 4; r++) {
                s[(size_t)(i + r) * s_stride + j] = out[r];
                s[(size_t)(i + r) * s_stride + j + 1] = out[4 + r];
            }
        }
        for (; j < nk; j++) {
            float out[4];
            scores_4x1(q + (size_t)i * dh, dh, k + (size_t)j * dh, out);
            for (int r = 0; r < 4; r++)
                s[(size_t)(i + r) * s_stride + j] = out[r];
        }
    }
    for (; i < nq; i++)
        for (int j = 0; j < nk; j++)
            s[(size_t)i * s_stride + j] = score_1x1(q + (size_t)i * dh, dh, k + (size_t)j * dh);
}

/* nr (1..4, a constant where inlined) queries' accumulators over 16
 * dimensions at a time (8 registers) stay put while every value row streams
 * past once: two loads and nr broadcasts feed 2 nr independent FMA chains.
 * (Rows one at a time, as a remainder used to go, made one chain of
 * dependent FMAs per 8 dimensions: latency-bound, and decode's 3 query
 * heads per KV head of SmolLM2 always took it.) */
AVX2 static inline __attribute__((always_inline)) void weighted_rows(const float *w, int w_stride, const int nr,
                                                                     const float *v, int nk, int dh, float *acc)
{
    int d = 0;
    for (; d + 16 <= dh; d += 16) {
        __m256 a[4][2];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            a[r][0] = _mm256_loadu_ps(acc + (size_t)r * dh + d);
            a[r][1] = _mm256_loadu_ps(acc + (size_t)r * dh + d + 8);
        }
        for (int j = 0; j < nk; j++) {
            __m256 v0 = _mm256_loadu_ps(v + (size_t)j * dh + d), v1 = _mm256_loadu_ps(v + (size_t)j * dh + d + 8);
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                __m256 wj = _mm256_broadcast_ss(w + (size_t)r * w_stride + j);
                a[r][0] = _mm256_fmadd_ps(wj, v0, a[r][0]);
                a[r][1] = _mm256_fmadd_ps(wj, v1, a[r][1]);
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            _mm256_storeu_ps(acc + (size_t)r * dh + d, a[r][0]);
            _mm256_storeu_ps(acc + (size_t)r * dh + d + 8, a[r][1]);
        }
    }
    if (d < dh) { /* the last 8 */
        __m256 a[4];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            a[r] = _mm256_loadu_ps(acc + (size_t)r * dh + d);
        for (int j = 0; j < nk; j++) {
            __m256 v0 = _mm256_loadu_ps(v + (size_t)j * dh + d);
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++)
                a[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(w + (size_t)r * w_stride + j), v0, a[r]);
        }
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            _mm256_storeu_ps(acc + (size_t)r * dh + d, a[r]);
    }
}

AVX2 void sol_attn_weighted_sum_avx2(const float *w, int w_stride, int nq, const float *v, int nk, int dh, float *acc)
{
    if (dh % 8) {
        sol_attn_weighted_sum_ref(w, w_stride, nq, v, nk, dh, acc);
        return;
    }
    for (int i = 0; i < nq; i += 4) {
        const float *wi = w + (size_t)i * w_stride;
        float *ai = acc + (size_t)i * dh;
        switch (nq - i < 4 ? nq - i : 4) {
        case 4: weighted_rows(wi, w_stride, 4, v, nk, dh, ai); break;
        case 3: weighted_rows(wi, w_stride, 3, v, nk, dh, ai); break;
        case 2: weighted_rows(wi, w_stride, 2, v, nk, dh, ai); break;
        default: weighted_rows(wi, w_stride, 1, v, nk, dh, ai); break;
        }
    }
}
#endif
