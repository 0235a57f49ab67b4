// The stored weight formats on the GPU: groups of 8 consecutive elements
// of one row decoded to f32, for every type the CUDA backend runs (F32 F16
// BF16 Q8_0 Q4_0 Q4_1 Q4_K Q6_K; ggml's block layouts, as in
// kernels/cpu/quant.c). __host__ __device__, so the same code is checked on
// the CPU against gguf-py's dequantization (tests/cuda/test_dequant.cu),
// bit for bit: every product below is exact in f32 and each element is
// rounded once, as gguf-py rounds it.
#ifndef SOL_KERNELS_CUDA_DEQUANT_CUH
#define SOL_KERNELS_CUDA_DEQUANT_CUH

#include <cstdint>
#include <cstring>

extern "C" {
#include "util/dtype.h"
}

#define SOL_HD __host__ __device__ inline

SOL_HD float sol_f32_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

// IEEE half to float, exact for every value (subnormals, infinities, NaN).
SOL_HD float sol_half_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ffu;
    if (exp == 0x1f)
        return sol_f32_bits(sign | 0x7f800000u | man << 13);
    if (exp != 0)
        return sol_f32_bits(sign | (exp + 112) << 23 | man << 13);
    float v = (float)man * 5.9604644775390625e-8f; // man x 2^-24, exact
    return sign ? -v : v;
}

SOL_HD uint16_t sol_load_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
SOL_HD float sol_load_half(const uint8_t *p) { return sol_half_to_f32(sol_load_u16(p)); }

// Bytes of one block and elements per block of the types decoded here
// (0 for others); constexpr, so kernels size their tiles with them.
SOL_HD constexpr int sol_cuda_block_bytes(sol_dtype t)
{
    switch (t) {
    case SOL_DT_F32: return 4;
    case SOL_DT_F16:
    case SOL_DT_BF16: return 2;
    case SOL_DT_Q8_0: return 34;
    case SOL_DT_Q4_0: return 18;
    case SOL_DT_Q4_1: return 20;
    case SOL_DT_Q4_K: return 144;
    case SOL_DT_Q6_K: return 210;
    default: return 0;
    }
}

SOL_HD constexpr int sol_cuda_block_elems(sol_dtype t)
{
    switch (t) {
    case SOL_DT_F32:
    case SOL_DT_F16:
    case SOL_DT_BF16: return 1;
    case SOL_DT_Q8_0:
    case SOL_DT_Q4_0:
    case SOL_DT_Q4_1: return 32;
    case SOL_DT_Q4_K:
    case SOL_DT_Q6_K: return 256;
    default: return 0;
    }
}

// Element i of a row of a plain type (F32, F16, BF16).
SOL_HD float sol_dq_plain(sol_dtype t, const uint8_t *row, int64_t i)
{
    if (t == SOL_DT_F32) {
        uint32_t u;
        memcpy(&u, row + 4 * i, 4);
        return sol_f32_bits(u);
    }
    uint16_t h = sol_load_u16(row + 2 * i);
    return t == SOL_DT_F16 ? sol_half_to_f32(h) : sol_f32_bits((uint32_t)h << 16);
}

// Q4_K's 6-bit scale and min of sub-block j (0..7) from its 12 packed bytes.
SOL_HD void sol_q4_k_scale(const uint8_t *s, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xf) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

// Elements 8g .. 8g+7 of a row of type t (cols a multiple of the block,
// and of 8 for plain types) into y.
SOL_HD void sol_dq8(sol_dtype t, const uint8_t *row, int64_t g, float y[8])
{
    switch (t) {
    case SOL_DT_Q8_0: {
        const uint8_t *b = row + 34 * (g / 4);
        const int8_t *q = (const int8_t *)(b + 2 + 8 * (g % 4));
        float d = sol_load_half(b);
        for (int i = 0; i < 8; i++)
            y[i] = d * (float)q[i];
        return;
    }
    case SOL_DT_Q4_0:
    case SOL_DT_Q4_1: {
        int bytes = t == SOL_DT_Q4_0 ? 18 : 20, k = (int)(g % 4);
        const uint8_t *b = row + bytes * (g / 4);
        const uint8_t *qs = b + (t == SOL_DT_Q4_0 ? 2 : 4) + 8 * (k % 2); // elements 16..31: high nibbles
        int shift = k < 2 ? 0 : 4;
        float d = sol_load_half(b);
        for (int i = 0; i < 8; i++) {
            int q = (qs[i] >> shift) & 0xf;
            y[i] = t == SOL_DT_Q4_0 ? d * (float)(q - 8) : d * (float)q + sol_load_half(b + 2);
        }
        return;
    }
    case SOL_DT_Q4_K: {
        const uint8_t *b = row + 144 * (g / 32);
        int e = (int)(g % 32) * 8, j = e / 32; // sub-block of 32
        const uint8_t *qs = b + 16 + 32 * (j / 2) + e % 32;
        int sc, m, shift = 4 * (j % 2);
        sol_q4_k_scale(b + 4, j, &sc, &m);
        float step = sol_load_half(b) * (float)sc, offset = sol_load_half(b + 2) * (float)m;
        for (int i = 0; i < 8; i++)
            y[i] = step * (float)((qs[i] >> shift) & 0xf) - offset;
        return;
    }
    case SOL_DT_Q6_K: {
        const uint8_t *b = row + 210 * (g / 32);
        int e = (int)(g % 32) * 8, h = e / 128, k = (e % 128) / 32, l = e % 32;
        const uint8_t *ql = b + 64 * h + 32 * (k & 1) + l, *qh = b + 128 + 32 * h + l;
        float step = sol_load_half(b + 208) * (float)(int8_t)b[192 + e / 16];
        for (int i = 0; i < 8; i++) {
            int low = (ql[i] >> (k < 2 ? 0 : 4)) & 0xf, high = (qh[i] >> (2 * k)) & 3;
            y[i] = step * (float)((low | high << 4) - 32);
        }
        return;
    }
    default:
        for (int i = 0; i < 8; i++)
            y[i] = sol_dq_plain(t, row, 8 * g + i);
        return;
    }
}

#endif
