/* The reference integer dots (act_q8.h): each 32-element chunk of a weight
 * row is decoded to integer codes with the float factors that turn code sums
 * back into values, then multiplied with an activation block in exact int32
 * arithmetic. Plain C; what the AVX2 kernels are checked against. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/act_q8.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/quant.h"

int sol_act_q8_applies(sol_dtype t)
{
    return t == SOL_DT_Q8_0 || t == SOL_DT_Q4_0 || t == SOL_DT_Q4_1 || t == SOL_DT_Q4_K || t == SOL_DT_Q6_K;
}

void sol_quantize_act_ref(const float *x, sol_q8_block *out, int64_t n)
{
    assert(n % SOL_Q8_BLOCK == 0);
    for (int64_t b = 0; b < n / SOL_Q8_BLOCK; b++, x += SOL_Q8_BLOCK) {
        float amax = 0;
        for (int i = 0; i < SOL_Q8_BLOCK; i++)
            amax = fmaxf(amax, fabsf(x[i]));
        float d = amax / 127, id = d != 0 ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int i = 0; i < SOL_Q8_BLOCK; i++) {
            int q = (int)nearbyintf(x[i] * id); /* the default mode: half to even */
            out[b].q[i] = (int8_t)q;
            sum += q;
        }
        out[b].d = d;
        out[b].sum = d * (float)sum;
    }
}

int sol_act_q8_round_trip(const float *x, float *out, int64_t n)
{
    assert(n % SOL_Q8_BLOCK == 0);
    sol_q8_block *blocks = malloc((size_t)(n / SOL_Q8_BLOCK) * sizeof *blocks);
    if (!blocks)
        return -1;
    sol_quantize_act_ref(x, blocks, n);
    for (int64_t i = 0; i < n; i++)
        out[i] = blocks[i / SOL_Q8_BLOCK].d * (float)blocks[i / SOL_Q8_BLOCK].q[i % SOL_Q8_BLOCK];
    free(blocks);
    return 0;
}

/* One 32-element chunk of a weight row: value[i] = step[i / 16] * code[i]
 * + offset, so chunk . x = x.d * (step[0] * sum0 + step[1] * sum1)
 * + offset * x.sum with sum0, sum1 the integer code products of each half. */
typedef struct {
    int code[SOL_Q8_BLOCK];
    float step[2];
    float offset;
} chunk;

static float f16_at(const uint8_t *p) { return sol_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

static void decode_chunk(sol_dtype t, const uint8_t *row, int64_t c, chunk *k)
{
    switch (t) {
    case SOL_DT_Q8_0: { /* 34 bytes: d, 32 int8 */
        const uint8_t *b = row + 34 * c;
        k->step[0] = k->step[1] = f16_at(b);
        k->offset = 0;
        for (int i = 0; i < 32; i++)
            k->code[i] = (int8_t)b[2 + i];
        return;
    }
    case SOL_DT_Q4_0:   /* 18 bytes: d, 16 bytes of nibbles; value = d * (q - 8) */
    case SOL_DT_Q4_1: { /* 20 bytes: d, min, 16 bytes; value = d * q + min */
        const uint8_t *b = row + (t == SOL_DT_Q4_0 ? 18 : 20) * c, *qs = b + (t == SOL_DT_Q4_0 ? 2 : 4);
        float d = f16_at(b);
        k->step[0] = k->step[1] = d;
        k->offset = t == SOL_DT_Q4_0 ? -8 * d : f16_at(b + 2);
        for (int i = 0; i < 16; i++) {
            k->code[i] = qs[i] & 0xf;
            k->code[i + 16] = qs[i] >> 4;
        }
        return;
    }
    case SOL_DT_Q4_K: { /* 144 bytes per 256: d, dmin, 12 scale bytes, 128 bytes */
        const uint8_t *b = row + 144 * (c / 8);
        int j = (int)(c % 8);
        uint8_t sc[8], m[8];
        sol_q4_k_scales(b + 4, sc, m);
        k->step[0] = k->step[1] = f16_at(b) * (float)sc[j];
        k->offset = -f16_at(b + 2) * (float)m[j];
        const uint8_t *qs = b + 16 + 32 * (j / 2);
        for (int i = 0; i < 32; i++)
            k->code[i] = (qs[i] >> (4 * (j % 2))) & 0xf;
        return;
    }
    case SOL_DT_Q6_K: { /* 210 bytes per 256: ql[128], qh[64], int8 scales[16], d */
        const uint8_t *b = row + 210 * (c / 8), *ql = b, *qh = b + 128;
        const int8_t *scales = (const int8_t *)(b + 192);
        int h = (int)(c % 8) / 4, q = (int)(c % 8) % 4;
        float d = f16_at(b + 208);
        k->step[0] = d * (float)scales[8 * h + 2 * q];
        k->step[1] = d * (float)scales[8 * h + 2 * q + 1];
        k->offset = 0;
        for (int l = 0; l < 32; l++) {
            int low = (ql[64 * h + 32 * (q & 1) + l] >> (q < 2 ? 0 : 4)) & 0xf;
            int high = (qh[32 * h + l] >> (2 * q)) & 3;
            k->code[l] = (low | high << 4) - 32;
        }
        return;
    }
    default: assert(!"no integer dot for this type"); return;
    }
}

static float chunk_dot(const chunk *k, const sol_q8_block *x)
{
    int sum[2] = {0, 0};
    for (int i = 0; i < SOL_Q8_BLOCK; i++)
        sum[i / 16] += k->code[i] * x->q[i];
    return x->d * (k->step[0] * (float)sum[0] + k->step[1] * (float)sum[1]) + k->offset * x->sum;
}

void sol_dot_q8_ref(sol_dtype t, const void *w, size_t row_bytes, int n_rows, const sol_q8_block *x, int64_t x_stride,
                    int n_x, int64_t n, float *out, int64_t out_stride)
{
    assert(sol_act_q8_applies(t) && n % sol_dtype_block_elems(t) == 0 && n % SOL_Q8_BLOCK == 0);
    assert(n_rows >= 1 && n_rows <= SOL_Q8_MAX_ROWS && n_x >= 1 && n_x <= SOL_Q8_MAX_INPUTS &&
           n_rows * n_x <= SOL_Q8_MAX_TILE);
    for (int r = 0; r < n_rows; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int i = 0; i < n_x; i++) {
            float sum = 0;
            for (int64_t c = 0; c < n / SOL_Q8_BLOCK; c++) {
                chunk k;
                decode_chunk(t, row, c, &k);
                sum += chunk_dot(&k, &x[i * x_stride + c]);
            }
            out[i * out_stride + r] = sum;
        }
    }
}
