/* The integer-dot path (act_q8.h): the AVX2 activation quantiser bit for bit
 * against the reference; the AVX2 tiles of every weight type and every tile
 * shape against the reference within a float-summation tolerance, on awkward
 * lengths, unaligned rows and inputs and strides wider than the tile; and the
 * reference itself against a float64 dot of the dequantised weights and
 * activations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_RNG_SEED 0x452821e638d01377ull
#include "tests/unit/kernel_test.h"

#include "kernels/cpu/act_q8.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/simd.h"

static sol_dtype types[] = {SOL_DT_Q8_0, SOL_DT_Q4_0, SOL_DT_Q4_1, SOL_DT_Q4_K, SOL_DT_Q6_K};

static sol_dtype type_of(void **state) { return *(sol_dtype *)*state; }

/* ---- activation quantisation: bit for bit ---------------------------------- */

/* One block of 32 activations of the given kind. */
enum { BLK_NORMAL, BLK_ZERO, BLK_TIES, BLK_HUGE, BLK_TINY, BLK_MIXED, BLK_ONE_HOT, BLK_KINDS };

static void fill_block(float *x, int kind)
{
    switch (kind) {
    case BLK_NORMAL:
        for (int i = 0; i < SOL_Q8_BLOCK; i++)
            x[i] = rng_normal();
        return;
    case BLK_ZERO: /* d = 0, q = 0; -0.0 included */
        for (int i = 0; i < SOL_Q8_BLOCK; i++)
            x[i] = i % 3 ? 0.0f : -0.0f;
        return;
    case BLK_TIES: { /* amax = 127 * 2^e, so 1/d = 2^-e is exact and k + 0.5 steps are exact ties */
        float step = ldexpf(1.0f, (int)(rng_u64() % 41) - 20);
        x[0] = (rng_u64() & 1 ? 127 : -127) * step;
        for (int i = 1; i < SOL_Q8_BLOCK; i++) {
            int k = (int)(rng_u64() % 253) - 126; /* -126 .. 126: k + 0.5 stays within 127 */
            x[i] = ((float)k + (i % 4 ? 0.5f : 0.0f)) * step;
        }
        return;
    }
    case BLK_HUGE:
        for (int i = 0; i < SOL_Q8_BLOCK; i++)
            x[i] = rng_normal() * 1e37f;
        return;
    case BLK_TINY: /* amax 1e-36: d is an f32 subnormal, 1/d still finite */
        x[0] = rng_u64() & 1 ? 1e-36f : -1e-36f;
        for (int i = 1; i < SOL_Q8_BLOCK; i++)
            x[i] = (float)(2 * rng_uniform() - 1) * 1e-36f;
        return;
    case BLK_MIXED: /* most codes round to zero */
        for (int i = 0; i < SOL_Q8_BLOCK; i++)
            x[i] = rng_normal() * (i % 7 ? 1e-6f : 1e3f);
        return;
    default: /* one non-zero value */
        memset(x, 0, sizeof(float) * SOL_Q8_BLOCK);
        x[rng_u64() % SOL_Q8_BLOCK] = rng_normal();
        return;
    }
}

static void check_quantize(const sol_cpu_kernels *k, const float *x, int64_t n)
{
    int64_t blocks = n / SOL_Q8_BLOCK;
    sol_q8_block *want = malloc(sizeof *want * (size_t)blocks), *got = malloc(sizeof *got * (size_t)blocks);
    memset(got, 0x5a, sizeof *got * (size_t)blocks);
    sol_quantize_act_ref(x, want, n);
    k->quantize_act(x, got, n);
    for (int64_t b = 0; b < blocks; b++) {
        if (sol_f32_bits(got[b].d) != sol_f32_bits(want[b].d) ||
            sol_f32_bits(got[b].sum) != sol_f32_bits(want[b].sum))
            fail_msg("block %lld of %lld: d %a sum %a, reference d %a sum %a", (long long)b, (long long)blocks,
                     got[b].d, got[b].sum, want[b].d, want[b].sum);
        for (int i = 0; i < SOL_Q8_BLOCK; i++)
            if (got[b].q[i] != want[b].q[i])
                fail_msg("block %lld element %d (x = %a): q %d, reference %d", (long long)b, i,
                         x[b * SOL_Q8_BLOCK + i], got[b].q[i], want[b].q[i]);
    }
    free(want);
    free(got);
}

/* Every kind of block alone, then long runs of mixed kinds read from an
 * address that is not 32-byte aligned. */
static void test_quantize_bit_exact(void **state)
{
    (void)state;
    const sol_cpu_kernels *k = avx2_or_skip();
    float block[SOL_Q8_BLOCK];
    for (int kind = 0; kind < BLK_KINDS; kind++)
        for (int rep = 0; rep < 50; rep++) {
            fill_block(block, kind);
            check_quantize(k, block, SOL_Q8_BLOCK);
        }
    enum { BLOCKS = 300 };
    float *buf = malloc(sizeof(float) * (BLOCKS * SOL_Q8_BLOCK + 1)), *x = buf + 1;
    for (int b = 0; b < BLOCKS; b++)
        fill_block(x + b * SOL_Q8_BLOCK, (int)(rng_u64() % BLK_KINDS));
    for (int64_t n = SOL_Q8_BLOCK; n <= BLOCKS * SOL_Q8_BLOCK; n += 37 * SOL_Q8_BLOCK)
        check_quantize(k, x, n);
    check_quantize(k, x, BLOCKS * SOL_Q8_BLOCK);
    free(buf);
}

/* The ties go to the even code, the largest magnitude to +-127, and the
 * recorded sum is d times the sum of the codes. */
static void test_quantize_reference_rules(void **state)
{
    (void)state;
    float x[SOL_Q8_BLOCK] = {0};
    x[0] = 127; /* d = 1 */
    x[1] = 2.5f;
    x[2] = 3.5f;
    x[3] = -2.5f;
    x[4] = -0.5f;
    x[5] = 0.5f;
    x[6] = -127;
    sol_q8_block b;
    sol_quantize_act_ref(x, &b, SOL_Q8_BLOCK);
    assert_true(b.d == 1.0f);
    int8_t want[7] = {127, 2, 4, -2, 0, 0, -127};
    for (int i = 0; i < 7; i++)
        assert_int_equal(b.q[i], want[i]);
    assert_true(b.sum == 4.0f);
    memset(x, 0, sizeof x);
    sol_quantize_act_ref(x, &b, SOL_Q8_BLOCK);
    assert_true(b.d == 0 && b.sum == 0);
}

/* ---- the dots ----------------------------------------------------------------- */

/* The constant part of element l's value (Q4_0's -8 d, Q4_1's min, Q4_K's
 * -dmin * m[j]; 0 for Q8_0 and Q6_K, whose codes are signed), read from the
 * block layout independently of the kernels. */
static double value_offset(sol_dtype t, const uint8_t *row, int64_t l)
{
    switch (t) {
    case SOL_DT_Q4_0: return -8.0 * sol_f16_to_f32((uint16_t)(row[18 * (l / 32)] | row[18 * (l / 32) + 1] << 8));
    case SOL_DT_Q4_1: {
        const uint8_t *b = row + 20 * (l / 32);
        return sol_f16_to_f32((uint16_t)(b[2] | b[3] << 8));
    }
    case SOL_DT_Q4_K: {
        const uint8_t *b = row + 144 * (l / 256);
        uint8_t sc[8], m[8];
        sol_q4_k_scales(b + 4, sc, m);
        return -(double)sol_f16_to_f32((uint16_t)(b[2] | b[3] << 8)) * m[(l % 256) / 32];
    }
    default: return 0;
    }
}

/* A finite f16 scale, log-uniform in [2^-15, 2^-3], random sign. */
static uint16_t random_scale(void)
{
    float mag = ldexpf((float)(1 + rng_uniform()), -4 - (int)(rng_u64() % 12));
    return sol_f32_to_f16(rng_u64() & 1 ? -mag : mag);
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

/* A row of n weights: from sol_quantize of random floats (with a mean for
 * the types that have a min), or (raw) random bytes with finite random f16
 * scales written over the scale fields, so every code occurs (Q8_0's -128,
 * Q6_K's 0 and scale -128 included). */
static void random_row(sol_dtype t, uint8_t *row, int64_t n, int raw)
{
    if (!raw) {
        float *v = malloc(sizeof(float) * (size_t)n);
        float scale = (float)(0.01 + rng_uniform());
        for (int64_t i = 0; i < n; i++)
            v[i] = rng_normal() * scale + (t == SOL_DT_Q4_1 || t == SOL_DT_Q4_K ? 0.3f * scale : 0.0f);
        sol_quantize(t, v, row, n);
        free(v);
        return;
    }
    size_t bytes = sol_row_bytes(t, n), block = (size_t)sol_dtype_block_bytes(t);
    for (size_t i = 0; i < bytes; i++)
        row[i] = (uint8_t)rng_u64();
    for (size_t off = 0; off < bytes; off += block)
        switch (t) {
        case SOL_DT_Q8_0:
        case SOL_DT_Q4_0: put_u16(row + off, random_scale()); break;
        case SOL_DT_Q4_1:
        case SOL_DT_Q4_K:
            put_u16(row + off, random_scale());
            put_u16(row + off + 2, random_scale());
            break;
        default: put_u16(row + off + 208, random_scale()); break;
        }
}

/* n activations quantised by the reference: mostly normal blocks, some
 * all-zero, one-hot, mostly-zero or 1e4 times larger. */
static void random_input(sol_q8_block *x, int64_t n)
{
    float *v = malloc(sizeof(float) * (size_t)n);
    for (int64_t b = 0; b < n / SOL_Q8_BLOCK; b++) {
        uint64_t pick = rng_u64() % 16;
        int kind = pick == 0 ? BLK_ZERO : pick == 1 ? BLK_MIXED : pick == 2 ? BLK_ONE_HOT : BLK_NORMAL;
        fill_block(v + b * SOL_Q8_BLOCK, kind);
        if (pick == 3)
            for (int i = 0; i < SOL_Q8_BLOCK; i++)
                v[b * SOL_Q8_BLOCK + i] *= 1e4f;
    }
    sol_quantize_act_ref(v, x, n);
    free(v);
}

/* Scale of the float rounding in a dot of one row with one input: the sum,
 * over elements, of |code part| * |q| * x.d plus |offset| * |q| * x.d (what
 * the chunk terms x.d * step * (code . q) and offset * x.sum are made of),
 * and the float64 dot of the dequantised row with q * d. */
static void exact_dot(sol_dtype t, const uint8_t *row, const float *deq, const sol_q8_block *x, int64_t n,
                      double *dot, double *magnitude)
{
    double sum = 0, mag = 0;
    for (int64_t l = 0; l < n; l++) {
        const sol_q8_block *b = &x[l / SOL_Q8_BLOCK];
        double q = b->q[l % SOL_Q8_BLOCK], off = value_offset(t, row, l);
        sum += (double)deq[l] * (q * b->d);
        mag += (fabs(deq[l] - off) + fabs(off)) * fabs(q) * b->d;
    }
    *dot = sum;
    *magnitude = mag;
}

#define REL_TOL 1e-5

static double worst_avx2[SOL_DT_COUNT], worst_ref[SOL_DT_COUNT]; /* largest error / tolerance seen */

typedef struct {
    sol_dtype t;
    int64_t n;
    int rows, inputs;
    size_t row_bytes;      /* wider than the row: every row at another alignment */
    int64_t x_stride;      /* in blocks, wider than the row */
    int64_t out_stride;    /* wider than the tile */
    uint8_t *w;            /* row 0, one byte past an allocation's start */
    sol_q8_block *x;       /* aligned, for the reference */
    uint8_t *x_unaligned;  /* the same blocks one byte off, for the AVX2 kernels */
    float *deq;            /* rows * n dequantised weights */
} dot_case;

static dot_case make_case(sol_dtype t, int64_t n, int rows, int inputs, int raw)
{
    dot_case c = {t, n, rows, inputs, sol_row_bytes(t, n) + 3, n / SOL_Q8_BLOCK + 2, rows + 3, NULL, NULL, NULL,
                  NULL};
    uint8_t *wbuf = malloc(c.row_bytes * (size_t)rows + 1);
    c.w = wbuf + 1;
    c.deq = malloc(sizeof(float) * (size_t)(rows * n));
    for (int r = 0; r < rows; r++) {
        random_row(t, c.w + (size_t)r * c.row_bytes, n, raw);
        sol_dequantize_ref(t, c.w + (size_t)r * c.row_bytes, c.deq + (size_t)r * n, n);
    }
    size_t x_bytes = sizeof(sol_q8_block) * (size_t)(c.x_stride * inputs);
    c.x = malloc(x_bytes);
    memset(c.x, 0x77, x_bytes); /* the gaps between inputs: never read */
    for (int i = 0; i < inputs; i++)
        random_input(c.x + i * c.x_stride, n);
    uint8_t *xbuf = malloc(x_bytes + 1);
    memcpy(xbuf + 1, c.x, x_bytes);
    c.x_unaligned = xbuf + 1;
    return c;
}

static void free_case(dot_case *c)
{
    free(c->w - 1);
    free(c->x);
    free(c->x_unaligned - 1);
    free(c->deq);
}

/* One tile through both tables: every output within REL_TOL of the pair's
 * magnitude, the reference within it of float64; outside the tile, nothing
 * written. */
static void check_tile(const sol_cpu_kernels *k, const dot_case *c, const char *what)
{
    size_t out_len = (size_t)(c->out_stride * c->inputs);
    float *got = malloc(sizeof(float) * out_len), *want = malloc(sizeof(float) * out_len);
    for (size_t o = 0; o < out_len; o++)
        got[o] = want[o] = -12345.0f;
    sol_dot_q8_ref(c->t, c->w, c->row_bytes, c->rows, c->x, c->x_stride, c->inputs, c->n, want, c->out_stride);
    k->dot_q8(c->t, c->w, c->row_bytes, c->rows, (const sol_q8_block *)c->x_unaligned, c->x_stride, c->inputs, c->n,
              got, c->out_stride);
    for (size_t o = 0; o < out_len; o++)
        if ((int64_t)(o % (size_t)c->out_stride) >= c->rows && (got[o] != -12345.0f || want[o] != -12345.0f))
            fail_msg("%s %s n=%lld tile %dx%d: wrote outside the tile at %zu", sol_dtype_name(c->t), what,
                     (long long)c->n, c->rows, c->inputs, o);
    for (int r = 0; r < c->rows; r++)
        for (int i = 0; i < c->inputs; i++) {
            const uint8_t *row = c->w + (size_t)r * c->row_bytes;
            double exact, mag;
            exact_dot(c->t, row, c->deq + (size_t)r * c->n, c->x + i * c->x_stride, c->n, &exact, &mag);
            double tol = REL_TOL * mag;
            float g = got[i * c->out_stride + r], w = want[i * c->out_stride + r];
            if (!(fabs((double)g - w) <= tol) || !(fabs((double)w - exact) <= tol))
                fail_msg("%s %s n=%lld tile %dx%d row %d input %d: avx2 %.9g, reference %.9g, float64 %.9g, "
                         "tolerance %.3g",
                         sol_dtype_name(c->t), what, (long long)c->n, c->rows, c->inputs, r, i, g, w, exact, tol);
            if (tol > 0) {
                worst_avx2[c->t] = fmax(worst_avx2[c->t], fabs((double)g - w) / tol);
                worst_ref[c->t] = fmax(worst_ref[c->t], fabs((double)w - exact) / tol);
            }
        }
    free(want);
    free(got);
}

/* Every tile shape (rows x inputs <= 8) at lengths of 1, 3, 8, 9 and 88
 * blocks (K types: 1, 2, 3, 5 and 11 super-blocks), rows from sol_quantize
 * and from random bytes. */
static void test_dot_q8_matches_reference(void **state)
{
    const sol_cpu_kernels *k = avx2_or_skip();
    sol_dtype t = type_of(state);
    enum { LENGTHS = 5 };
    const int64_t lengths_32[LENGTHS] = {32, 96, 256, 288, 2816}, lengths_256[LENGTHS] = {256, 512, 768, 1280, 2816};
    const int64_t *lengths = sol_dtype_block_elems(t) == 256 ? lengths_256 : lengths_32;
    for (int l = 0; l < LENGTHS; l++)
        for (int rows = 1; rows <= SOL_Q8_MAX_ROWS; rows++)
            for (int inputs = 1; inputs <= SOL_Q8_MAX_INPUTS && rows * inputs <= SOL_Q8_MAX_TILE; inputs++)
                for (int raw = 0; raw <= 1; raw++) {
                    dot_case c = make_case(t, lengths[l], rows, inputs, raw);
                    check_tile(k, &c, raw ? "random bytes" : "sol_quantize");
                    free_case(&c);
                }
    print_message("%s: largest |avx2 - reference| %.2e, |reference - float64| %.2e of the tolerance\n",
                  sol_dtype_name(t), worst_avx2[t], worst_ref[t]);
}

/* sol_dot_q8 and sol_quantize_act are the active table's, bit for bit. */
static void test_dispatched(void **state)
{
    (void)state;
    const sol_cpu_kernels *active = sol_cpu_kernels_active();
    assert_non_null(active->quantize_act);
    assert_non_null(active->dot_q8);
    enum { N = 512 };
    float v[N];
    for (int i = 0; i < N; i++)
        v[i] = rng_normal();
    sol_q8_block a[N / SOL_Q8_BLOCK], b[N / SOL_Q8_BLOCK];
    sol_quantize_act(v, a, N);
    active->quantize_act(v, b, N);
    assert_memory_equal(a, b, sizeof a);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        dot_case c = make_case(types[ti], N, 2, 2, 0);
        float got[2 * 5], want[2 * 5];
        sol_dot_q8(c.t, c.w, c.row_bytes, 2, c.x, c.x_stride, 2, N, got, c.out_stride);
        active->dot_q8(c.t, c.w, c.row_bytes, 2, c.x, c.x_stride, 2, N, want, c.out_stride);
        for (int i = 0; i < 2; i++)
            for (int r = 0; r < 2; r++)
                assert_true(sol_f32_bits(got[i * c.out_stride + r]) == sol_f32_bits(want[i * c.out_stride + r]));
        free_case(&c);
    }
}

#define ONE(fn, i, name) {#fn "(" name ")", fn, NULL, NULL, &types[i]}
#define PER_TYPE(fn) ONE(fn, 0, "q8_0"), ONE(fn, 1, "q4_0"), ONE(fn, 2, "q4_1"), ONE(fn, 3, "q4_k"), ONE(fn, 4, "q6_k")

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize_reference_rules),
        cmocka_unit_test(test_quantize_bit_exact),
        PER_TYPE(test_dot_q8_matches_reference),
        cmocka_unit_test(test_dispatched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
