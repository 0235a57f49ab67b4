/* CPU reference kernels: dequantization bit-identical to gguf-py (fixtures from
 * tests/ref/gen_quant_fixtures.py), dots against float64, quantizer bounds, f16/bf16. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_RNG_SEED 0x9e3779b97f4a7c15ull
#include "tests/unit/kernel_test.h"

#include "kernels/cpu/half.h"
#include "kernels/cpu/quant.h"

static sol_dtype types[] = {SOL_DT_F32,  SOL_DT_F16,  SOL_DT_BF16, SOL_DT_Q8_0,
                            SOL_DT_Q4_0, SOL_DT_Q4_1, SOL_DT_Q4_K, SOL_DT_Q6_K};

static sol_dtype type_of(void **state) { return *(sol_dtype *)*state; }

/* ---- fixtures ------------------------------------------------------------- */

typedef struct fixture {
    uint32_t ggml_type, n_src, n_total;
    float *src, *deq;
    uint8_t *raw;
    size_t raw_bytes;
    void *data;
} fixture;

static uint32_t u32_at(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Loads tests/fixtures/quant/<type>.bin (format in gen_quant_fixtures.py). */
static fixture load_fixture(sol_dtype t)
{
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/quant/%s.bin", sol_dtype_name(t));
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s (run the tests from the repo root)", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc((size_t)size);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
    fclose(f);

    assert_true(size >= 20 && memcmp(data, "SQFX", 4) == 0 && u32_at(data + 4) == 1);
    fixture fx = {.ggml_type = u32_at(data + 8), .n_src = u32_at(data + 12),
                  .n_total = u32_at(data + 16), .data = data};
    assert_int_equal(fx.ggml_type, sol_dtype_to_ggml(t));
    fx.raw_bytes = sol_row_bytes(t, fx.n_total);
    size_t want = 20 + 4 * (size_t)fx.n_src + fx.raw_bytes + 4 * (size_t)fx.n_total;
    assert_int_equal((size_t)size, want);
    /* Copied out so every array is aligned (the file packs them). */
    fx.src = malloc(4 * (size_t)fx.n_src + 1);
    fx.raw = malloc(fx.raw_bytes);
    fx.deq = malloc(4 * (size_t)fx.n_total);
    memcpy(fx.src, data + 20, 4 * (size_t)fx.n_src);
    memcpy(fx.raw, data + 20 + 4 * (size_t)fx.n_src, fx.raw_bytes);
    memcpy(fx.deq, data + 20 + 4 * (size_t)fx.n_src + fx.raw_bytes, 4 * (size_t)fx.n_total);
    return fx;
}

static void free_fixture(fixture *fx)
{
    free(fx->src);
    free(fx->raw);
    free(fx->deq);
    free(fx->data);
}

/* Bit-identical, NaN payloads included: every supported type's dequantization
 * is exact products plus at most one rounding, so float order cannot differ. */
static void test_dequantize_matches_gguf_py(void **state)
{
    sol_dtype t = type_of(state);
    fixture fx = load_fixture(t);
    float *out = malloc(4 * (size_t)fx.n_total);
    sol_dequantize(t, fx.raw, out, fx.n_total);
    for (uint32_t i = 0; i < fx.n_total; i++)
        if (sol_f32_bits(out[i]) != sol_f32_bits(fx.deq[i]))
            fail_msg("%s element %u: sol %.9g (0x%08x), gguf-py %.9g (0x%08x)", sol_dtype_name(t),
                     i, out[i], sol_f32_bits(out[i]), fx.deq[i], sol_f32_bits(fx.deq[i]));
    free(out);
    free_fixture(&fx);
}

/* Q8_0, Q4_0, Q4_1, F16 and BF16 quantize to the same bytes as gguf-py, whose
 * quantizers reproduce ggml's reference ones. */
static void test_quantize_matches_gguf_py(void **state)
{
    sol_dtype t = type_of(state);
    fixture fx = load_fixture(t);
    assert_true(fx.n_src > 0);
    size_t bytes = sol_row_bytes(t, fx.n_src);
    uint8_t *out = malloc(bytes);
    sol_quantize(t, fx.src, out, fx.n_src);
    for (size_t i = 0; i < bytes; i++)
        if (out[i] != fx.raw[i])
            fail_msg("%s byte %zu: sol 0x%02x, gguf-py 0x%02x", sol_dtype_name(t), i, out[i],
                     fx.raw[i]);
    free(out);
    free_fixture(&fx);
}

/* ---- dot and matvec -------------------------------------------------------- */

/* |sol_dot - exact| <= (n + 2) * 2^-24 * sum |w_i x_i|: the bound on float
 * accumulation (n products and additions, each one rounding), with w the
 * dequantized row, so quantization error does not enter. */
static void check_matvec(sol_dtype t, int64_t rows, int64_t cols)
{
    size_t row_bytes = sol_row_bytes(t, cols);
    float *src = malloc(sizeof(float) * (size_t)(rows * cols));
    uint8_t *w = malloc(row_bytes * (size_t)rows);
    uint8_t *odd = malloc(row_bytes + 1);
    float *x = malloc(sizeof(float) * (size_t)cols), *row = malloc(sizeof(float) * (size_t)cols);
    float *y = malloc(sizeof(float) * (size_t)rows);
    for (int64_t i = 0; i < rows * cols; i++)
        src[i] = rng_normal() * (float)(1 + i % 7);
    for (int64_t c = 0; c < cols; c++)
        x[c] = rng_normal();
    for (int64_t r = 0; r < rows; r++)
        sol_quantize(t, src + r * cols, w + (size_t)r * row_bytes, cols);

    sol_matvec(t, w, x, y, rows, cols);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *wr = w + (size_t)r * row_bytes;
        sol_dequantize(t, wr, row, cols);
        double exact = 0, magnitude = 0;
        for (int64_t c = 0; c < cols; c++) {
            exact += (double)row[c] * x[c];
            magnitude += fabs((double)row[c] * x[c]);
        }
        double tol = (double)(cols + 2) * 0x1p-24 * magnitude;
        if (fabs(y[r] - exact) > tol)
            fail_msg("%s %lldx%lld row %lld: %.9g, float64 %.9g, tolerance %.3g", sol_dtype_name(t),
                     (long long)rows, (long long)cols, (long long)r, y[r], exact, tol);
        assert_true(sol_f32_bits(y[r]) == sol_f32_bits(sol_dot(t, wr, x, cols)));
        memcpy(odd + 1, wr, row_bytes); /* no alignment needed */
        assert_true(sol_f32_bits(y[r]) == sol_f32_bits(sol_dot(t, odd + 1, x, cols)));
    }
    free(src);
    free(w);
    free(odd);
    free(x);
    free(row);
    free(y);
}

static void test_dot_and_matvec(void **state)
{
    sol_dtype t = type_of(state);
    int64_t block = sol_dtype_block_elems(t);
    int64_t cols[2] = {block == 1 ? 37 : block * 3, block == 1 ? 96 : block * 5};
    if (block == 256) {
        cols[0] = 256;
        cols[1] = 512;
    }
    for (int i = 0; i < 2; i++) {
        check_matvec(t, 7, cols[i]);
        check_matvec(t, 13, cols[i]);
    }
    assert_true(sol_dot(t, NULL, NULL, 0) == 0);
}

/* ---- quantize round trip ----------------------------------------------------- */

#define N_ROUND 2048 /* eight K-quant super-blocks */

/* Test inputs: normal values at four scales (0.001 and 0.0001 give f16-subnormal
 * block scales), all-positive, and blocks of mixed magnitude with zero and
 * constant runs. */
static void round_trip_inputs(int kind, float *x)
{
    for (int i = 0; i < N_ROUND; i++) {
        switch (kind) {
        case 0: x[i] = rng_normal(); break;
        case 1: x[i] = rng_normal() * 1e-3f; break;
        case 2: x[i] = rng_normal() * 100; break;
        case 3: x[i] = (float)rng_uniform(); break;
        case 4: x[i] = rng_normal() * 1e-4f; break;
        default: x[i] = rng_normal() * powf(10, (float)((i / 16 * 7) % 6) - 3); break;
        }
    }
    if (kind == 5) {
        for (int i = 0; i < 256; i++)
            x[256 + i] = 0; /* a zero super-block */
        for (int i = 0; i < 32; i++) {
            x[512 + i] = -0.75f; /* constant negative sub-block */
            x[576 + i] = 2.5f;   /* constant positive */
            x[640 + i] = 0;      /* zero sub-block beside non-zero ones */
        }
    }
}

/* The largest error sol allows for element i of x (n elements); documented in
 * quant.c per type. */
static double error_bound(sol_dtype t, const float *x, int i)
{
    int block = sol_dtype_block_elems(t);
    const float *b = x + i / block * block;
    double amax = 0, min = b[0], max = b[0], range = 0;
    for (int k = 0; k < block; k++) {
        amax = fmax(amax, fabs(b[k]));
        min = fmin(min, b[k]);
        max = fmax(max, b[k]);
    }
    switch (t) {
    case SOL_DT_F32: return 0;
    case SOL_DT_F16: return 0x1p-11 * fabs(x[i]) + 0x1p-25; /* half an ulp, subnormals */
    case SOL_DT_BF16: return 0x1p-8 * fabs(x[i]);
    /* Half a step, plus d's f16 rounding over 127 steps. */
    case SOL_DT_Q8_0: return (0.5 + 127 * 0x1p-11) * amax / 127 + 127 * 0x1p-25;
    /* A full step: a value of opposite sign to the largest one caps at code 15. */
    case SOL_DT_Q4_0: return (1 + 8 * 0x1p-11) * amax / 8 + 8 * 0x1p-25;
    case SOL_DT_Q4_1:
        return (0.5 + 15 * 0x1p-11) * (max - min) / 15 + 0x1p-11 * fabs(min) + 16 * 0x1p-25;
    case SOL_DT_Q4_K:
        for (int j = 0; j < 8; j++) { /* the largest sub-block range hi - min(0, lo) */
            double lo = 0, hi = b[32 * j];
            for (int k = 0; k < 32; k++) {
                lo = fmin(lo, b[32 * j + k]);
                hi = fmax(hi, b[32 * j + k]);
            }
            range = fmax(range, hi - lo);
        }
        return 1.04 * range / 30 + 945 * 0x1p-24;
    case SOL_DT_Q6_K: return 1.01 * amax / 62 + 3937 * 0x1p-24;
    default: fail_msg("no bound for %s", sol_dtype_name(t)); return 0;
    }
}

/* Error within the bound; quantizing the dequantized values again reproduces
 * the same values (for the non-K types the same bytes; K-quants may pick another
 * scale that fits exactly). */
static void test_quantize_round_trip(void **state)
{
    sol_dtype t = type_of(state);
    size_t bytes = sol_row_bytes(t, N_ROUND);
    float *x = malloc(sizeof(float) * N_ROUND), *y = malloc(sizeof(float) * N_ROUND);
    float *y2 = malloc(sizeof(float) * N_ROUND);
    uint8_t *q = malloc(bytes), *q2 = malloc(bytes);
    double worst_ratio = 0;
    for (int kind = 0; kind < 6; kind++) {
        round_trip_inputs(kind, x);
        sol_quantize(t, x, q, N_ROUND);
        sol_dequantize(t, q, y, N_ROUND);
        for (int i = 0; i < N_ROUND; i++) {
            double err = fabs((double)x[i] - y[i]), bound = error_bound(t, x, i);
            if (!(err <= bound))
                fail_msg("%s inputs %d element %d: %.9g -> %.9g, error %.3g > bound %.3g",
                         sol_dtype_name(t), kind, i, x[i], y[i], err, bound);
            if (bound > 0)
                worst_ratio = fmax(worst_ratio, err / bound);
        }

        sol_quantize(t, y, q2, N_ROUND);
        sol_dequantize(t, q2, y2, N_ROUND);
        for (int i = 0; i < N_ROUND; i++)
            if (y[i] != y2[i])
                fail_msg("%s inputs %d element %d: re-quantized %.9g -> %.9g", sol_dtype_name(t),
                         kind, i, y[i], y2[i]);
        if (t != SOL_DT_Q4_K && t != SOL_DT_Q6_K)
            assert_memory_equal(q, q2, bytes);
    }
    print_message("%s: largest error %.3f of the bound\n", sol_dtype_name(t), worst_ratio);
    free(x);
    free(y);
    free(y2);
    free(q);
    free(q2);
}

/* ---- f16 and bf16 ------------------------------------------------------------ */

static int f16_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }

/* Every f16 converts exactly (checked against ldexp) and back to itself; NaNs
 * stay NaN with their sign, quiet ones bit for bit. */
static void test_f16_exhaustive(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = sol_f16_to_f32((uint16_t)h);
        int exp = (h >> 10) & 0x1f, man = h & 0x3ff;
        double sign = (h & 0x8000) ? -1 : 1;
        uint16_t back = sol_f32_to_f16(f);
        if (exp == 0x1f && man) {
            assert_true(isnan(f) && f16_is_nan(back) && (back & 0x8000) == (h & 0x8000));
            if (man & 0x200)
                assert_int_equal(back, h);
            continue;
        }
        double want = exp == 0x1f ? sign * INFINITY
                      : exp == 0  ? sign * ldexp(man, -24)
                                  : sign * ldexp(man + 1024, exp - 25);
        if ((double)f != want || !signbit(f) != !signbit(want))
            fail_msg("f16 0x%04x: %.9g, want %.9g", h, f, want);
        if (back != h)
            fail_msg("f16 0x%04x -> %.9g -> 0x%04x", h, f, back);
    }
}

/* Nearest of the two neighbouring f16 values, the even one on a tie: checked on
 * 2^20 random f32 bit patterns within the f16 range. */
static void test_f16_rounds_to_nearest_even(void **state)
{
    (void)state;
    for (int n = 0; n < (1 << 20); n++) {
        uint32_t bits = (uint32_t)rng_u64();
        bits = (bits & 0x80000000u) | (0x30000000u + (bits & 0x7fffffff) % (0x477fe000u - 0x30000000u));
        float f = sol_f32_from_bits(bits);
        uint16_t h = sol_f32_to_f16(f);
        double a = fabs((double)f), got = fabs((double)sol_f16_to_f32(h));
        uint16_t mag = h & 0x7fff;
        double down = got <= a ? got : fabs((double)sol_f16_to_f32((uint16_t)(mag - 1)));
        double up = got >= a ? got : fabs((double)sol_f16_to_f32((uint16_t)(mag + 1)));
        assert_true(down <= a && a <= up);
        double err = fabs(a - got), other = got == down ? up - a : a - down;
        if (err > other || (err == other && (mag & 1) && up != down))
            fail_msg("f32 0x%08x -> f16 0x%04x (not nearest even)", bits, h);
    }
}

static void test_f16_known_values(void **state)
{
    (void)state;
    static const struct {
        uint32_t f32;
        uint16_t f16;
    } cases[] = {
        {0x3f800000, 0x3c00}, /* 1 */
        {0xc0200000, 0xc100}, /* -2.5 */
        {0x477fe000, 0x7bff}, /* 65504, the largest f16 */
        {0x477fefff, 0x7bff}, /* just below 65520 */
        {0x477ff000, 0x7c00}, /* 65520: tie, to even = overflow to inf */
        {0x7f7fffff, 0x7c00}, /* FLT_MAX */
        {0xff800000, 0xfc00}, /* -inf */
        {0x80000000, 0x8000}, /* -0 */
        {0x33800000, 0x0001}, /* 2^-24, the smallest subnormal */
        {0x33000000, 0x0000}, /* 2^-25: tie between 0 and 2^-24, to even */
        {0x33000001, 0x0001}, /* just above it */
        {0x33c00000, 0x0002}, /* 1.5 * 2^-24: tie, to even */
        {0x34200000, 0x0002}, /* 2.5 * 2^-24: tie, to even */
        {0x387fc000, 0x03ff}, /* 1023 * 2^-24, the largest subnormal */
        {0x387fe000, 0x0400}, /* 1023.5 * 2^-24: tie, to even = the smallest normal */
        {0x38800000, 0x0400}, /* 2^-14 */
        {0x3f801000, 0x3c00}, /* 1 + 2^-11: tie, to even */
        {0x3f803000, 0x3c02}, /* 1 + 3 * 2^-11: tie, to even */
        {0x3f801001, 0x3c01}, /* just above the tie */
        {0x3f7ff000, 0x3c00}, /* 1 - 2^-12: tie, rounds up into the next binade */
        {0x7fc00000, 0x7e00}, /* quiet NaN */
        {0x7f800001, 0x7e00}, /* signalling NaN, payload below f16's: quieted */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t h = sol_f32_to_f16(sol_f32_from_bits(cases[i].f32));
        if (h != cases[i].f16)
            fail_msg("f32 0x%08x -> f16 0x%04x, want 0x%04x", cases[i].f32, h, cases[i].f16);
    }
}

/* bf16 -> f32 is the top half; every bf16 comes back, NaNs as NaN. */
static void test_bf16_exhaustive(void **state)
{
    (void)state;
    for (uint32_t b = 0; b < 65536; b++) {
        float f = sol_bf16_to_f32((uint16_t)b);
        assert_int_equal(sol_f32_bits(f), b << 16);
        uint16_t back = sol_f32_to_bf16(f);
        if ((b & 0x7f80) == 0x7f80 && (b & 0x7f)) {
            assert_true((back & 0x7f80) == 0x7f80 && (back & 0x7f) && (back & 0x8000) == (b & 0x8000));
            continue;
        }
        assert_int_equal(back, b);
    }
}

static void test_bf16_known_values(void **state)
{
    (void)state;
    static const struct {
        uint32_t f32;
        uint16_t bf16;
    } cases[] = {
        {0x3f800000, 0x3f80}, /* 1 */
        {0xc0200000, 0xc020}, /* -2.5 */
        {0x3f808000, 0x3f80}, /* 1 + 2^-8: tie, to even */
        {0x3f818000, 0x3f82}, /* 1 + 3 * 2^-8: tie, to even */
        {0x3f808001, 0x3f81}, /* just above the tie */
        {0x3f807fff, 0x3f80}, /* just below */
        {0x7f7fffff, 0x7f80}, /* FLT_MAX rounds to inf */
        {0x7f7f7fff, 0x7f7f}, /* the largest value that stays finite */
        {0xff800000, 0xff80}, /* -inf */
        {0x00000001, 0x0000}, /* the smallest f32 subnormal */
        {0x00008000, 0x0000}, /* tie, to even */
        {0x00018000, 0x0002}, /* tie, to even */
        {0x007fffff, 0x0080}, /* the largest subnormal rounds up to the smallest normal */
        {0x7f800001, 0x7fc0}, /* signalling NaN, payload below bf16's: quieted */
        {0xffc12345, 0xffc1}, /* NaN keeps sign and top payload */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t b = sol_f32_to_bf16(sol_f32_from_bits(cases[i].f32));
        if (b != cases[i].bf16)
            fail_msg("f32 0x%08x -> bf16 0x%04x, want 0x%04x", cases[i].f32, b, cases[i].bf16);
    }
}

/* ---- sizes and support ----------------------------------------------------------- */

static void test_row_bytes_and_support(void **state)
{
    (void)state;
    assert_int_equal(sol_row_bytes(SOL_DT_F32, 3), 12);
    assert_int_equal(sol_row_bytes(SOL_DT_F16, 3), 6);
    assert_int_equal(sol_row_bytes(SOL_DT_BF16, 4096), 8192);
    assert_int_equal(sol_row_bytes(SOL_DT_Q8_0, 4096), 128 * 34);
    assert_int_equal(sol_row_bytes(SOL_DT_Q4_0, 64), 36);
    assert_int_equal(sol_row_bytes(SOL_DT_Q4_1, 576), 18 * 20); /* SmolLM2's hidden size */
    assert_int_equal(sol_row_bytes(SOL_DT_Q4_K, 512), 288);
    assert_int_equal(sol_row_bytes(SOL_DT_Q6_K, 14336), 56 * 210);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        assert_true(sol_cpu_supports(types[i]));
    assert_false(sol_cpu_supports(SOL_DT_Q5_0));
    assert_false(sol_cpu_supports(SOL_DT_Q2_K));
    assert_false(sol_cpu_supports(SOL_DT_FP8));
    assert_false(sol_cpu_supports(SOL_DT_INT4));
}

/* One test per type, named "fn(type)". */
#define ONE(fn, i, name) {#fn "(" name ")", fn, NULL, NULL, &types[i]}
#define PLAIN_AND_Q4(fn)                                                                           \
    ONE(fn, 0, "f32"), ONE(fn, 1, "f16"), ONE(fn, 2, "bf16"), ONE(fn, 3, "q8_0"),                 \
        ONE(fn, 4, "q4_0"), ONE(fn, 5, "q4_1")
#define PER_TYPE(fn) PLAIN_AND_Q4(fn), ONE(fn, 6, "q4_k"), ONE(fn, 7, "q6_k")

int main(void)
{
    const struct CMUnitTest tests[] = {
        PER_TYPE(test_dequantize_matches_gguf_py),
        PLAIN_AND_Q4(test_quantize_matches_gguf_py), /* gguf-py has no K-quant quantizer */
        PER_TYPE(test_dot_and_matvec),
        PER_TYPE(test_quantize_round_trip),
        cmocka_unit_test(test_f16_exhaustive),
        cmocka_unit_test(test_f16_rounds_to_nearest_even),
        cmocka_unit_test(test_f16_known_values),
        cmocka_unit_test(test_bf16_exhaustive),
        cmocka_unit_test(test_bf16_known_values),
        cmocka_unit_test(test_row_bytes_and_support),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
