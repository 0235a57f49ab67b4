// The elementwise formulas of the ABI 4 ops (GeGLU's gelu, the soft-cap of
// Gemma-2's attention scores and final logits), written as the CPU backend
// writes them (kernels/cpu/cpu_backend.c gelu_tanh and cpu_softcap,
// kernels/cpu/attention.c capped), in float. __host__ __device__, so the
// host test (tests/cuda/test_elementwise.cu) holds them to the CPU's
// expressions and to a double reference without a GPU. On the device nvcc
// may contract a product and a sum into one FMA and tanhf is CUDA's (2 ulp):
// the results move by float rounding, not by formula.
#ifndef SOL_KERNELS_CUDA_ELEMENTWISE_CUH
#define SOL_KERNELS_CUDA_ELEMENTWISE_CUH

#ifndef __CUDACC_RTC__ // NVRTC (attention_decode.cuh) has tanhf built in
#include <cmath>
#endif

// gelu with the tanh approximation (docs/FAMILIES.md):
// 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))).
__host__ __device__ inline float sol_gelu_tanh(float u)
{
    const float k = 0.7978845608028654f; // sqrt(2 / pi)
    return 0.5f * u * (1.0f + tanhf(k * (u + 0.044715f * u * u * u)));
}

// A score or logit soft-capped: cap * tanh(s / cap). Only for cap > 0; the
// callers test it, so an uncapped model's arithmetic is untouched.
__host__ __device__ inline float sol_softcapped(float s, float cap) { return cap * tanhf(s / cap); }

#endif
