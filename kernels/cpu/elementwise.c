/* Elementwise kernels of the CPU backend that are worth vectorising: SwiGLU
 * (silu(gate) * up) and the softmax weights of attention spend their time in
 * exp, which the AVX2 versions compute with a polynomial instead of one libm
 * call per element. */
#include <math.h>

#include "kernels/cpu/simd.h"

void sol_swiglu_ref(float *gate, const float *up, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

float sol_exp_sum_ref(float *s, int n, float max)
{
    float sum = 0;
    for (int j = 0; j < n; j++) {
        s[j] = s[j] == -INFINITY ? 0.0f : expf(s[j] - max);
        sum += s[j];
    }
    return sum;
}

#if defined(__x86_64__)
#include "kernels/cpu/avx2_util.h"

/* exp(x) for x in [-87, 88] (clamped outside): x = n ln2 + r with |r| <=
 * ln2 / 2, exp(r) by its degree-6 Taylor polynomial (relative error below
 * 3e-7 there), 2^n put into the exponent bits. ln2 is split in a high part
 * exact in float and a low part, so r carries no rounding of n ln2. */
AVX2 static inline __m256 exp_ps(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
}

AVX2 void sol_swiglu_avx2(float *gate, const float *up, int64_t n)
{
    int64_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, exp_ps(_mm256_sub_ps(zero, g))));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
    }
    sol_swiglu_ref(gate + i, up + i, n - i);
}

AVX2 float sol_exp_sum_avx2(float *s, int n, float max)
{
    int j = 0;
    const __m256 m = _mm256_set1_ps(max), minus_inf = _mm256_set1_ps(-INFINITY);
    __m256 acc = _mm256_setzero_ps();
    for (; j + 8 <= n; j += 8) {
        __m256 x = _mm256_loadu_ps(s + j);
        __m256 e = _mm256_andnot_ps(_mm256_cmp_ps(x, minus_inf, _CMP_EQ_OQ), exp_ps(_mm256_sub_ps(x, m)));
        _mm256_storeu_ps(s + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    return hsum(acc) + sol_exp_sum_ref(s + j, n - j, max);
}
#endif
