/* The quantised KV cache's primitives: fp8 e4m3 conversion (every code, ties,
 * saturation, the OCP spec's values), fp8 rows through both kernel tables,
 * and sol_kv_store_row: bytes identical to gguf-py's quantisers
 * (tests/unit/kv_quant_fixture.h), round-trip error within the bound derived
 * from each format's rule, zero rows and a row with one huge value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_RNG_SEED 0x452821e638d01377ull
#include "tests/unit/kernel_test.h"

#include "kernels/cpu/half.h"
#include "kernels/cpu/kv_quant.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/simd.h"
#include "tests/unit/kv_quant_fixture.h"
#include "util/dtype.h"
#include "util/fp8.h"

static sol_dtype kv_types[] = {SOL_DT_F32, SOL_DT_F16, SOL_DT_FP8, SOL_DT_Q8_0, SOL_DT_Q4_0};

static sol_dtype type_of(void **state) { return *(sol_dtype *)*state; }

static int e4m3_is_nan(uint8_t b) { return (b & 0x7f) == 0x7f; }

/* The value of code b by the format's definition, in double. */
static double e4m3_value(uint8_t b)
{
    int exp = (b >> 3) & 0xf, man = b & 7;
    double sign = b & 0x80 ? -1 : 1;
    return exp == 0 ? sign * ldexp(man, -9) : sign * ldexp(8 + man, exp - 10);
}

/* ---- fp8 e4m3 conversion -------------------------------------------------- */

/* The OCP 8-bit floating point spec's (v1.0, table 1) e4m3 values. */
static void test_fp8_published_values(void **state)
{
    (void)state;
    static const struct {
        float f;
        uint8_t code;
    } cases[] = {
        {448.0f, 0x7e},      /* the largest normal, S.1111.110 */
        {-448.0f, 0xfe},
        {0x1p-9f, 0x01},     /* the smallest subnormal, S.0000.001 */
        {0x1.cp-7f, 0x07},   /* the largest subnormal, 0.875 * 2^-6 */
        {0x1p-6f, 0x08},     /* the smallest normal, S.0001.000 */
        {1.0f, 0x38},
        {-2.0f, 0xc0},
        {1.125f, 0x39},
        {0.0f, 0x00},
        {-0.0f, 0x80},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t b = sol_f32_to_e4m3(cases[i].f);
        if (b != cases[i].code)
            fail_msg("%a -> 0x%02x, want 0x%02x", cases[i].f, b, cases[i].code);
        float back = sol_e4m3_to_f32(cases[i].code);
        assert_true(back == cases[i].f && !signbit(back) == !signbit(cases[i].f));
    }
    assert_true(isnan(sol_e4m3_to_f32(0x7f)) && !signbit(sol_e4m3_to_f32(0x7f)));
    assert_true(isnan(sol_e4m3_to_f32(0xff)) && signbit(sol_e4m3_to_f32(0xff)));
}

/* Every code decodes to its defined value and encodes back to itself; the
 * two NaN codes decode to NaN and encode to 0x7F. */
static void test_fp8_exhaustive(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        uint8_t b = (uint8_t)c;
        float f = sol_e4m3_to_f32(b);
        if (e4m3_is_nan(b)) {
            assert_true(isnan(f));
            assert_int_equal(sol_f32_to_e4m3(f), 0x7f);
            continue;
        }
        double want = e4m3_value(b);
        if ((double)f != want || !signbit(f) != !(b & 0x80))
            fail_msg("e4m3 0x%02x: %a, want %a", b, f, want);
        if (sol_f32_to_e4m3(f) != b)
            fail_msg("e4m3 0x%02x -> %a -> 0x%02x", b, f, sol_f32_to_e4m3(f));
    }
}

/* Between each pair of neighbouring codes: the midpoint (exact in f32) goes
 * to the even code, the floats either side of it to the nearer one. */
static void test_fp8_ties_to_even(void **state)
{
    (void)state;
    for (int c = 0; c < 0x7e; c++)
        for (int neg = 0; neg < 2; neg++) {
            uint8_t lo = (uint8_t)(c | neg << 7), hi = (uint8_t)(c + 1) | (uint8_t)(neg << 7);
            float mid = (float)((e4m3_value(lo) + e4m3_value(hi)) / 2);
            assert_true((double)mid == (e4m3_value(lo) + e4m3_value(hi)) / 2);
            uint8_t even = c & 1 ? hi : lo;
            float toward_lo = nextafterf(mid, neg ? INFINITY : -INFINITY);
            float toward_hi = nextafterf(mid, neg ? -INFINITY : INFINITY);
            if (sol_f32_to_e4m3(mid) != even)
                fail_msg("tie %a -> 0x%02x, want the even 0x%02x", mid, sol_f32_to_e4m3(mid), even);
            assert_int_equal(sol_f32_to_e4m3(toward_lo), lo);
            assert_int_equal(sol_f32_to_e4m3(toward_hi), hi);
        }
    assert_int_equal(sol_f32_to_e4m3(0x1p-10f), 0x00); /* half the smallest subnormal: to 0 */
    assert_int_equal(sol_f32_to_e4m3(-0x1p-10f), 0x80);
    assert_int_equal(sol_f32_to_e4m3(0x1.8p-9f), 0x02); /* 1.5 * 2^-9: to 2 */
    assert_int_equal(sol_f32_to_e4m3(0x1.ep-7f), 0x08); /* 7.5 * 2^-9: up into the normals */
    assert_int_equal(sol_f32_to_e4m3(1.0625f), 0x38);   /* 1 + 1/16: to 1 */
    assert_int_equal(sol_f32_to_e4m3(1.1875f), 0x3a);   /* 1 + 3/16: to 1.25 */
    assert_int_equal(sol_f32_to_e4m3(FLT_TRUE_MIN), 0x00);
}

/* Finite values beyond 448 (and infinities) saturate; NaN of either sign
 * gives 0x7F. 464, the tie between 448 and the 480 the format lacks, rounds
 * to 448 even without saturation. */
static void test_fp8_saturation_and_nan(void **state)
{
    (void)state;
    static const float big[] = {448.0f, 449.0f, 463.99f, 464.0f, 465.0f, 480.0f, 512.0f, 1e6f, FLT_MAX, INFINITY};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        assert_int_equal(sol_f32_to_e4m3(big[i]), 0x7e);
        assert_int_equal(sol_f32_to_e4m3(-big[i]), 0xfe);
    }
    assert_int_equal(sol_f32_to_e4m3(NAN), 0x7f);
    assert_int_equal(sol_f32_to_e4m3(-NAN), 0x7f);
    assert_int_equal(sol_f32_to_e4m3(sol_f32_from_bits(0x7f800001)), 0x7f); /* signalling */
    assert_int_equal(sol_f32_to_e4m3(440.0f), 0x7e);                        /* nearer 448 than 416 */
    assert_int_equal(sol_f32_to_e4m3(431.0f), 0x7d);                        /* nearer 416 */
}

/* Nearest of the finite codes (even on a tie) for 2^18 random f32 within
 * the format's range, found by search over all 127 magnitudes. */
static void test_fp8_rounds_to_nearest(void **state)
{
    (void)state;
    for (int n = 0; n < (1 << 18); n++) {
        uint32_t bits = (uint32_t)rng_u64();
        /* |x| in [2^-12, 448]: subnormals, normals, the top binade */
        bits = (bits & 0x80000000u) | (0x39800000u + (bits & 0x7fffffff) % (0x43e00001u - 0x39800000u));
        float f = sol_f32_from_bits(bits);
        uint8_t b = sol_f32_to_e4m3(f);
        double a = fabs((double)f), best = INFINITY;
        int best_code = -1;
        for (int c = 0; c <= 0x7e; c++) {
            double err = fabs(a - e4m3_value((uint8_t)c));
            if (err < best || (err == best && !(c & 1))) {
                best = err;
                best_code = c;
            }
        }
        if (b != (uint8_t)(best_code | (signbit(f) ? 0x80 : 0)))
            fail_msg("%a -> 0x%02x, nearest 0x%02x", f, b, best_code);
    }
}

/* ---- fp8 rows through the kernel tables ------------------------------------ */

/* Every code at every phase of the kernels' 8- and 4-wide steps: each
 * table's dequantize is the decode function bit for bit (NaNs included),
 * on rows that start at any byte. */
static void test_fp8_dequantize_tables(void **state)
{
    (void)state;
    const sol_cpu_kernels *tables[2] = {sol_cpu_kernels_get("scalar"), sol_cpu_kernels_get("avx2")};
    uint8_t row[256 + 16];
    float out[256 + 16];
    for (int k = 0; k < 2; k++) {
        if (!tables[k]) {
            print_message("no AVX2+FMA+F16C here: the avx2 table is not checked\n");
            continue;
        }
        for (int shift = 0; shift < 8; shift++)
            for (int64_t n = 250; n <= 258; n++) {
                for (int64_t i = 0; i < n; i++)
                    row[shift + i] = (uint8_t)(i * 37 + shift);
                tables[k]->dequantize(SOL_DT_FP8, row + shift, out, n);
                for (int64_t i = 0; i < n; i++)
                    if (sol_f32_bits(out[i]) != sol_f32_bits(sol_e4m3_to_f32(row[shift + i])))
                        fail_msg("%s: code 0x%02x -> 0x%08x, decode 0x%08x", tables[k]->isa, row[shift + i],
                                 sol_f32_bits(out[i]), sol_f32_bits(sol_e4m3_to_f32(row[shift + i])));
            }
    }
    sol_dequantize(SOL_DT_FP8, row, out, 8); /* the dispatched one too */
    for (int i = 0; i < 8; i++)
        assert_true(sol_f32_bits(out[i]) == sol_f32_bits(sol_e4m3_to_f32(row[i])));
}

/* dot, dot_rows (1..4 rows) and the dispatched sol_dot against the float64
 * dot of the decoded row: within the float-summation bound (n + 2) 2^-24
 * sum |w x|, on awkward lengths and unaligned rows. A NaN code makes NaN. */
static void test_fp8_dot_tables(void **state)
{
    (void)state;
    const sol_cpu_kernels *tables[2] = {sol_cpu_kernels_get("scalar"), sol_cpu_kernels_get("avx2")};
    enum { N_MAX = 300, ROWS = 4 };
    static uint8_t rows[ROWS][N_MAX + 1];
    float x[N_MAX], w[N_MAX], out[ROWS];
    const int64_t lengths[] = {1, 7, 31, 32, 64, 100, 128, 255, 300};
    for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++) {
        int64_t n = lengths[l];
        double want[ROWS], tol[ROWS];
        for (int64_t i = 0; i < n; i++)
            x[i] = rng_normal();
        for (int r = 0; r < ROWS; r++) {
            for (int64_t i = 0; i < n; i++) {
                uint8_t b;
                do
                    b = (uint8_t)rng_u64();
                while (e4m3_is_nan(b));
                rows[r][1 + i] = b;
            }
            double sum = 0, mag = 0;
            for (int64_t i = 0; i < n; i++) {
                w[i] = sol_e4m3_to_f32(rows[r][1 + i]);
                sum += (double)w[i] * x[i];
                mag += fabs((double)w[i] * x[i]);
            }
            want[r] = sum;
            tol[r] = (double)(n + 2) * 0x1p-24 * mag;
        }
        for (int k = 0; k < 2; k++) {
            if (!tables[k])
                continue;
            for (int nr = 1; nr <= ROWS; nr++) {
                tables[k]->dot_rows(SOL_DT_FP8, rows[0] + 1, sizeof rows[0], nr, x, n, out);
                for (int r = 0; r < nr; r++) {
                    double one = tables[k]->dot(SOL_DT_FP8, rows[r] + 1, x, n);
                    if (fabs(out[r] - want[r]) > tol[r] || fabs(one - want[r]) > tol[r])
                        fail_msg("%s n=%lld row %d of %d: dot_rows %.9g, dot %.9g, float64 %.9g (tolerance %.3g)",
                                 tables[k]->isa, (long long)n, r, nr, out[r], one, want[r], tol[r]);
                }
            }
        }
        assert_true(fabs(sol_dot(SOL_DT_FP8, rows[0] + 1, x, n) - want[0]) <= tol[0]);
    }
    /* x is normal(0, 1) here, so only the NaN can make the sum NaN */
    rows[0][1 + 5] = 0xff;
    for (int k = 0; k < 2; k++)
        if (tables[k])
            assert_true(isnan(tables[k]->dot(SOL_DT_FP8, rows[0] + 1, x, 64)));
}

/* ---- sol_kv_store_row ------------------------------------------------------ */

static const uint8_t *fixture_bytes(sol_dtype t)
{
    switch (t) {
    case SOL_DT_F16: return kv_fixture_f16;
    case SOL_DT_FP8: return kv_fixture_fp8;
    case SOL_DT_Q8_0: return kv_fixture_q8_0;
    case SOL_DT_Q4_0: return kv_fixture_q4_0;
    default: return NULL;
    }
}

/* The same bytes as gguf-py (fp8: ml_dtypes) for the fixture's row: normal
 * blocks, f16-subnormal and f32-subnormal scales, ties, zeros with -0.0
 * first, infinities and NaN (tests/ref/gen_kv_quant_fixture.py). */
static void test_kv_store_matches_gguf_py(void **state)
{
    sol_dtype t = type_of(state);
    float src[KV_FIXTURE_N];
    for (int i = 0; i < KV_FIXTURE_N; i++)
        src[i] = sol_f32_from_bits(kv_fixture_src[i]);
    size_t bytes = sol_row_bytes(t, KV_FIXTURE_N);
    uint8_t *out = malloc(bytes + 1);
    assert_int_equal(sol_kv_store_row(t, src, out + 1, KV_FIXTURE_N), 0); /* dst needs no alignment */
    const uint8_t *want = fixture_bytes(t);
    for (size_t i = 0; i < bytes; i++)
        if (out[1 + i] != want[i])
            fail_msg("%s byte %zu (block %zu): sol 0x%02x, reference 0x%02x", sol_dtype_name(t), i,
                     i / (bytes / (KV_FIXTURE_N / 32)), out[1 + i], want[i]);
    free(out);
}

/* The largest error element i of row x may have after storing in t, where
 * row holds the stored bytes. Block types: from the quantiser's own rule,
 * d the f32 scale it computes, d16 the f16 it stores, q the code (the
 * dequantised d16 * q is exact: an f16 times a small integer):
 * - Q8_0: q rounds x * fl(1/d), within 127 * 2^-23 of x/d, so |x - d q| <=
 *   d (1/2 + 2^-16); then |q| |d - d16| for the stored scale.
 * - Q4_0: code q - 8 rounds t = x/d (in [-8, 8]) the same way, except that
 *   t beyond 7.5 (the opposite sign to the largest value) is capped at 7:
 *   |x - d (q - 8)| <= |d| (max(1/2, t - 7) + 2^-16); then 8 |d - d16|.
 * - FP8: half a unit in the last place (2^-4 |x|), 2^-10 among the
 *   subnormals; beyond 448 the distance to 448.
 * - F16: half an ulp, 2^-25 among the subnormals. */
static double store_bound(sol_dtype t, const float *x, int64_t i, const uint8_t *row)
{
    const float *b = x + i / 32 * 32;
    switch (t) {
    case SOL_DT_F32: return 0;
    case SOL_DT_F16: return 0x1p-11 * fabs(x[i]) + 0x1p-25;
    case SOL_DT_FP8:
        return fabs(x[i]) > 448 ? fabs(x[i]) - 448 : fmax(0x1p-4 * fabs(x[i]), 0x1p-10);
    case SOL_DT_Q8_0: {
        const uint8_t *blk = row + i / 32 * 34;
        float amax = 0;
        for (int k = 0; k < 32; k++)
            amax = fmaxf(amax, fabsf(b[k]));
        double d = amax / 127, d16 = sol_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
        int q = (int8_t)blk[2 + i % 32];
        return d * (0.5 + 0x1p-16) + abs(q) * fabs(d - d16);
    }
    case SOL_DT_Q4_0: {
        const uint8_t *blk = row + i / 32 * 18;
        float max = b[0];
        for (int k = 1; k < 32; k++)
            if (fabsf(b[k]) > fabsf(max))
                max = b[k];
        double d = max / -8.0f, d16 = sol_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
        double t_code = d != 0 ? x[i] / d : 0;
        return fabs(d) * (fmax(0.5, t_code - 7) + 0x1p-16) + 8 * fabs(d - d16);
    }
    default: fail_msg("no bound for %s", sol_dtype_name(t)); return 0;
    }
}

/* Stores x (n elements) in t and reads it back through both tables' dequantize
 * (bit-identical) and the dispatched one; every element within its bound.
 * Returns the largest error / bound. */
static double check_round_trip(sol_dtype t, const float *x, int64_t n, float *y)
{
    size_t bytes = sol_row_bytes(t, n);
    uint8_t *row = malloc(bytes);
    float *y2 = malloc(sizeof(float) * (size_t)n);
    assert_int_equal(sol_kv_store_row(t, x, row, n), 0);
    sol_dequantize(t, row, y, n);
    const sol_cpu_kernels *tables[2] = {sol_cpu_kernels_get("scalar"), sol_cpu_kernels_get("avx2")};
    for (int k = 0; k < 2; k++)
        if (tables[k]) {
            tables[k]->dequantize(t, row, y2, n);
            assert_memory_equal(y, y2, sizeof(float) * (size_t)n);
        }
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double err = fabs((double)x[i] - y[i]), bound = store_bound(t, x, i, row);
        if (!(err <= bound))
            fail_msg("%s element %lld: %.9g -> %.9g, error %.3g > bound %.3g", sol_dtype_name(t), (long long)i,
                     x[i], y[i], err, bound);
        if (bound > 0)
            worst = fmax(worst, err / bound);
    }
    free(row);
    free(y2);
    return worst;
}

#define N_ROW 4096 /* 32 heads of 128 */

/* Random rows at several scales, f16-subnormal block scales included, and
 * blocks of mixed magnitude. */
static void test_kv_store_round_trip(void **state)
{
    sol_dtype t = type_of(state);
    float *x = malloc(sizeof(float) * N_ROW), *y = malloc(sizeof(float) * N_ROW);
    const float scales[] = {1.0f, 1e-3f, 1e-5f, 30.0f};
    double worst = 0;
    for (size_t s = 0; s < sizeof scales / sizeof scales[0] + 1; s++) {
        for (int i = 0; i < N_ROW; i++)
            x[i] = s < sizeof scales / sizeof scales[0] ? rng_normal() * scales[s]
                                                        : rng_normal() * powf(10, (float)((i / 32 * 5) % 7) - 4);
        worst = fmax(worst, check_round_trip(t, x, N_ROW, y));
    }
    print_message("%s: largest error %.3f of the bound\n", sol_dtype_name(t), worst);
    free(x);
    free(y);
}

/* An all-zero row reads back as zeros. The bytes are zeros too, except Q4_0's:
 * d = 0 / -8 is -0.0 (f16 0x8000) and every code is 8. */
static void test_kv_store_zero_row(void **state)
{
    sol_dtype t = type_of(state);
    enum { N = 256 };
    float x[N] = {0}, y[N];
    uint8_t row[4 * N];
    size_t bytes = sol_row_bytes(t, N);
    assert_int_equal(sol_kv_store_row(t, x, row, N), 0);
    for (size_t i = 0; i < bytes; i++) {
        uint8_t want = t != SOL_DT_Q4_0 ? 0 : i % 18 == 0 ? 0x00 : i % 18 == 1 ? 0x80 : 0x88;
        if (row[i] != want)
            fail_msg("%s byte %zu: 0x%02x, want 0x%02x", sol_dtype_name(t), i, row[i], want);
    }
    sol_dequantize(t, row, y, N);
    for (int i = 0; i < N; i++)
        assert_true(y[i] == 0.0f);
}

/* One value 1e4 among normal(0, 1) ones: every element within its bound
 * (Q8_0 and Q4_0 flush most of its block to the code of 0), fp8 saturates
 * it to 448, and the other blocks are untouched by it. */
static void test_kv_store_huge_value(void **state)
{
    sol_dtype t = type_of(state);
    enum { N = 128, AT = 45 };
    float x[N], y[N], alone[N];
    for (int i = 0; i < N; i++)
        x[i] = rng_normal();
    memcpy(alone, x, sizeof x);
    x[AT] = 1e4f;
    check_round_trip(t, x, N, y);
    if (t == SOL_DT_FP8)
        assert_true(y[AT] == 448.0f);
    else
        assert_true(fabsf(y[AT] - 1e4f) <= 1e4f * 0x1p-10); /* the block's scale is set by it */
    float y_alone[N];
    check_round_trip(t, alone, N, y_alone);
    for (int i = 0; i < N; i++)
        if (i / 32 != AT / 32)
            assert_true(sol_f32_bits(y[i]) == sol_f32_bits(y_alone[i]));
}

/* Attention reads a head at a time: sol_dot over each head's part of a
 * stored row (at sol_row_bytes of its offset) is the float64 dot of the
 * dequantised head, within the summation bound, through both tables. */
static void test_kv_store_heads_through_dot(void **state)
{
    sol_dtype t = type_of(state);
    enum { HEADS = 4, HEAD_DIM = 64, WIDTH = HEADS * HEAD_DIM };
    float src[WIDTH], q[HEAD_DIM], v[HEAD_DIM];
    uint8_t row[4 * WIDTH];
    for (int i = 0; i < WIDTH; i++)
        src[i] = rng_normal();
    for (int i = 0; i < HEAD_DIM; i++)
        q[i] = rng_normal();
    assert_int_equal(sol_kv_store_row(t, src, row, WIDTH), 0);
    const sol_cpu_kernels *tables[2] = {sol_cpu_kernels_get("scalar"), sol_cpu_kernels_get("avx2")};
    for (int h = 0; h < HEADS; h++) {
        const uint8_t *head = row + sol_row_bytes(t, (int64_t)h * HEAD_DIM);
        sol_dequantize(t, head, v, HEAD_DIM);
        double want = 0, mag = 0;
        for (int i = 0; i < HEAD_DIM; i++) {
            want += (double)v[i] * q[i];
            mag += fabs((double)v[i] * q[i]);
        }
        double tol = (HEAD_DIM + 2) * 0x1p-24 * mag;
        for (int k = 0; k < 2; k++)
            if (tables[k])
                assert_true(fabs(tables[k]->dot(t, head, q, HEAD_DIM) - want) <= tol);
    }
}

/* Types it does not store and partial blocks are refused with dst untouched;
 * fp8 is one byte an element; fp8 is read by the kernels but is no weight
 * type. */
static void test_kv_store_support(void **state)
{
    (void)state;
    float x[64] = {1.0f};
    uint8_t row[256];
    for (int t = 0; t < SOL_DT_COUNT; t++) {
        int want = t == SOL_DT_F32 || t == SOL_DT_F16 || t == SOL_DT_FP8 || t == SOL_DT_Q8_0 || t == SOL_DT_Q4_0;
        assert_int_equal(sol_kv_store_supported((sol_dtype)t), want);
        if (want)
            continue;
        memset(row, 0xa5, sizeof row);
        assert_int_equal(sol_kv_store_row((sol_dtype)t, x, row, 32), -1);
        assert_true(row[0] == 0xa5 && row[sizeof row - 1] == 0xa5);
    }
    memset(row, 0xa5, sizeof row);
    assert_int_equal(sol_kv_store_row(SOL_DT_Q8_0, x, row, 48), -1);
    assert_int_equal(sol_kv_store_row(SOL_DT_Q4_0, x, row, 16), -1);
    assert_true(row[0] == 0xa5);
    assert_int_equal(sol_kv_store_row(SOL_DT_FP8, x, row, 3), 0); /* plain types: any n */
    assert_int_equal(row[0], 0x38);
    assert_int_equal(row[3], 0xa5);

    assert_int_equal(sol_row_bytes(SOL_DT_FP8, 4096), 4096);
    assert_true(sol_dtype_bytes(SOL_DT_FP8, 4096, 0) == 4096);
    assert_int_equal(sol_row_bytes(SOL_DT_Q8_0, 4096), 128 * 34);
    assert_int_equal(sol_row_bytes(SOL_DT_Q4_0, 4096), 128 * 18);
    assert_true(sol_cpu_reads(SOL_DT_FP8));
    assert_false(sol_cpu_supports(SOL_DT_FP8));
    assert_false(sol_cpu_reads(SOL_DT_INT8));
}

/* One test per KV type, named "fn(type)". */
#define ONE(fn, i, name) {#fn "(" name ")", fn, NULL, NULL, &kv_types[i]}
#define BYTES_TYPES(fn) ONE(fn, 1, "f16"), ONE(fn, 2, "fp8"), ONE(fn, 3, "q8_0"), ONE(fn, 4, "q4_0")
#define KV_TYPES(fn) ONE(fn, 0, "f32"), BYTES_TYPES(fn)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp8_published_values),
        cmocka_unit_test(test_fp8_exhaustive),
        cmocka_unit_test(test_fp8_ties_to_even),
        cmocka_unit_test(test_fp8_saturation_and_nan),
        cmocka_unit_test(test_fp8_rounds_to_nearest),
        cmocka_unit_test(test_fp8_dequantize_tables),
        cmocka_unit_test(test_fp8_dot_tables),
        BYTES_TYPES(test_kv_store_matches_gguf_py),
        KV_TYPES(test_kv_store_round_trip),
        KV_TYPES(test_kv_store_zero_row),
        KV_TYPES(test_kv_store_huge_value),
        KV_TYPES(test_kv_store_heads_through_dot),
        cmocka_unit_test(test_kv_store_support),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
