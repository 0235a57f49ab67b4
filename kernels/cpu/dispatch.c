/* sol_dot, sol_dequantize and the integer-dot path: route every call through the kernel table of the
 * best instruction set this CPU runs, picked on first use (simd.h). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/quant.h"
#include "kernels/cpu/simd.h"

void sol_dot_rows_ref(sol_dtype t, const void *rows, size_t row_bytes, int nr, const float *x, int64_t n, float *out)
{
    for (int r = 0; r < nr; r++)
        out[r] = sol_dot_ref(t, (const char *)rows + (size_t)r * row_bytes, x, n);
}

static const sol_cpu_kernels scalar_kernels = {"scalar", sol_dot_ref, sol_dot_rows_ref, sol_dequantize_ref, sol_quantize_act_ref,
                                               sol_dot_q8_ref,      sol_cross_dots_ref,
                                               sol_attn_weighted_sum_ref, sol_swiglu_ref, sol_exp_sum_ref,
                                               sol_gemm_panels_ref, sol_pack_inputs_ref};

#if defined(__x86_64__)
#include <cpuid.h>

static const sol_cpu_kernels avx2_kernels = {"avx2", sol_dot_avx2, sol_dot_rows_avx2, sol_dequantize_avx2, sol_quantize_act_avx2,
                                             sol_dot_q8_avx2,      sol_cross_dots_avx2,
                                             sol_attn_weighted_sum_avx2, sol_swiglu_avx2, sol_exp_sum_avx2,
                                             sol_gemm_panels_avx2, sol_pack_inputs_avx2};

/* AVX2, FMA and F16C, and an OS that saves YMM registers. Read from cpuid
 * (what __builtin_cpu_supports does in GCC; clang's builtin lacks "f16c"). */
static int cpu_has_avx2(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    int fma = c >> 12 & 1, osxsave = c >> 27 & 1, avx = c >> 28 & 1, f16c = c >> 29 & 1;
    if (!fma || !osxsave || !avx || !f16c)
        return 0;
    unsigned xcr0_lo, xcr0_hi;
    __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & 6) != 6) /* XMM and YMM state */
        return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    return b >> 5 & 1;
}
#endif

const sol_cpu_kernels *sol_cpu_kernels_get(const char *isa)
{
    if (strcmp(isa, "scalar") == 0)
        return &scalar_kernels;
#if defined(__x86_64__)
    if (strcmp(isa, "avx2") == 0 && cpu_has_avx2())
        return &avx2_kernels;
#endif
    return NULL;
}

/* Threads may race to the first call; each computes the same answer, and the
 * atomic keeps that race defined. Later calls cost one plain load. */
static _Atomic(const sol_cpu_kernels *) active;

const sol_cpu_kernels *sol_cpu_kernels_active(void)
{
    const sol_cpu_kernels *k = atomic_load_explicit(&active, memory_order_acquire);
    if (k)
        return k;
    const char *want = getenv("SOL_CPU_ISA");
    if (want && strcmp(want, "scalar") == 0)
        k = &scalar_kernels;
    if (!k)
        k = sol_cpu_kernels_get("avx2");
    if (!k)
        k = &scalar_kernels;
    atomic_store_explicit(&active, k, memory_order_release);
    return k;
}

float sol_dot(sol_dtype t, const void *row, const float *x, int64_t n)
{
    return sol_cpu_kernels_active()->dot(t, row, x, n);
}

void sol_dequantize(sol_dtype t, const void *src, float *dst, int64_t n)
{
    sol_cpu_kernels_active()->dequantize(t, src, dst, n);
}

void sol_quantize_act(const float *x, sol_q8_block *out, int64_t n)
{
    sol_cpu_kernels_active()->quantize_act(x, out, n);
}

void sol_dot_q8(sol_dtype t, const void *w, size_t row_bytes, int n_rows, const sol_q8_block *x, int64_t x_stride,
                int n_x, int64_t n, float *out, int64_t out_stride)
{
    sol_cpu_kernels_active()->dot_q8(t, w, row_bytes, n_rows, x, x_stride, n_x, n, out, out_stride);
}
