/* SIMD kernels against the scalar reference: dequantization bit for bit,
 * dots within the float-summation bound on awkward sizes and unaligned rows,
 * the CPU backend's matmul (2 threads) on the dispatched kernels, dispatch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_RNG_SEED 0x243f6a8885a308d3ull
#include "tests/unit/kernel_test.h"

#include "kernels/backend.h"
#include "kernels/cpu/act_q8.h"
#include "kernels/cpu/half.h"
#include "kernels/cpu/quant.h"
#include "kernels/cpu/simd.h"

static sol_dtype types[] = {SOL_DT_F32,  SOL_DT_F16,  SOL_DT_BF16, SOL_DT_Q8_0,
                            SOL_DT_Q4_0, SOL_DT_Q4_1, SOL_DT_Q4_K, SOL_DT_Q6_K};

static sol_dtype type_of(void **state) { return *(sol_dtype *)*state; }

/* a . b in float64, and the sum of |a_i b_i| that scales the float
 * summation bound (n + 2) 2^-24 magnitude. */
static double exact_dot(const float *a, const float *b, int64_t n, double *magnitude)
{
    double sum = 0, mag = 0;
    for (int64_t i = 0; i < n; i++) {
        sum += (double)a[i] * b[i];
        mag += fabs((double)a[i] * b[i]);
    }
    *magnitude = mag;
    return sum;
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

/* A finite f16 scale, log-uniform in [2^-20, 2^-2] (f16 subnormals included),
 * random sign. */
static uint16_t random_scale(void)
{
    float mag = ldexpf((float)(1 + rng_uniform()), -2 - (int)(rng_u64() % 19));
    return sol_f32_to_f16(rng_u64() & 1 ? -mag : mag);
}

/* rows x cols weights of type t: plain floats from normal values (no NaN or
 * inf: those make every dot NaN); blocks of random bytes, so every code and
 * every 6-bit scale occurs, with finite f16 scales written over the scale
 * fields. */
static void random_weights(sol_dtype t, uint8_t *w, int64_t rows, int64_t cols)
{
    size_t bytes = sol_row_bytes(t, cols) * (size_t)rows;
    if (t == SOL_DT_F32 || t == SOL_DT_F16 || t == SOL_DT_BF16) {
        float *v = malloc(sizeof(float) * (size_t)(rows * cols));
        for (int64_t i = 0; i < rows * cols; i++)
            v[i] = rng_normal() * (float)(1 + i % 5);
        sol_quantize(t, v, w, rows * cols);
        free(v);
        return;
    }
    for (size_t i = 0; i < bytes; i++)
        w[i] = (uint8_t)rng_u64();
    int block_bytes = (int)sol_dtype_block_bytes(t);
    for (size_t off = 0; off < bytes; off += (size_t)block_bytes) {
        uint8_t *b = w + off;
        switch (t) {
        case SOL_DT_Q8_0:
        case SOL_DT_Q4_0: put_u16(b, random_scale()); break;
        case SOL_DT_Q4_1:
        case SOL_DT_Q4_K:
            put_u16(b, random_scale());
            put_u16(b + 2, random_scale());
            break;
        case SOL_DT_Q6_K: put_u16(b + 208, random_scale()); break;
        default: fail_msg("no block layout for %s", sol_dtype_name(t));
        }
    }
}

/* ---- dequantization: bit for bit ------------------------------------------- */

static void check_dequant_bits(const sol_cpu_kernels *k, sol_dtype t, const uint8_t *src, int64_t n,
                               const char *what)
{
    float *want = malloc(sizeof(float) * (size_t)n), *got = malloc(sizeof(float) * (size_t)n + 4);
    sol_dequantize_ref(t, src, want, n);
    k->dequantize(t, src, got + 1, n); /* dst unaligned too */
    for (int64_t i = 0; i < n; i++)
        if (sol_f32_bits(got[1 + i]) != sol_f32_bits(want[i]))
            fail_msg("%s %s, %lld elements, element %lld: %s 0x%08x, reference 0x%08x", sol_dtype_name(t),
                     what, (long long)n, (long long)i, k->isa, sol_f32_bits(got[1 + i]),
                     sol_f32_bits(want[i]));
    free(want);
    free(got);
}

/* Random blocks at several lengths, read from an odd address, and for
 * F16/BF16 every one of the 65536 bit patterns (NaN payloads, signalling ones
 * included, infinities, subnormals) in a shuffled order. */
static void test_dequantize_bit_exact(void **state)
{
    const sol_cpu_kernels *k = avx2_or_skip();
    sol_dtype t = type_of(state);
    int64_t block = sol_dtype_block_elems(t);
    int64_t lengths[] = {1, 3, 5, 7, 33, 100, 1000};
    for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++) {
        int64_t n = block == 1 ? lengths[l] : block * lengths[l];
        size_t bytes = sol_row_bytes(t, n);
        uint8_t *buf = malloc(bytes + 1);
        random_weights(t, buf + 1, 1, n);
        check_dequant_bits(k, t, buf + 1, n, "random");
        free(buf);
    }
    if (t == SOL_DT_F16 || t == SOL_DT_BF16) {
        uint16_t *all = malloc(sizeof(uint16_t) * 65536);
        for (uint32_t i = 0; i < 65536; i++)
            all[i] = (uint16_t)i;
        check_dequant_bits(k, t, (const uint8_t *)all, 65536, "every pattern in order");
        for (uint32_t i = 65535; i > 0; i--) {
            uint32_t j = (uint32_t)(rng_u64() % (i + 1));
            uint16_t tmp = all[i];
            all[i] = all[j];
            all[j] = tmp;
        }
        check_dequant_bits(k, t, (const uint8_t *)all, 65536, "every pattern shuffled");
        free(all);
    }
}

/* ---- dots: within the summation bound of the reference ----------------------- */

static double worst_ratio[SOL_DT_COUNT]; /* largest |simd - reference| / tolerance seen */

/* For each row: |simd - exact| <= (n + 2) * 2^-24 * sum |w_i x_i| (the float
 * accumulation bound, w the dequantized row), hence |simd - reference| <= twice
 * that; sol_dot (the dispatched one) is the active table's dot bit for bit. */
static void check_dots(const sol_cpu_kernels *k, sol_dtype t, int64_t rows, int64_t cols)
{
    size_t row_bytes = sol_row_bytes(t, cols);
    uint8_t *buf = malloc(row_bytes * (size_t)rows + 1), *w = buf + 1; /* unaligned rows */
    float *x = malloc(sizeof(float) * (size_t)cols), *row = malloc(sizeof(float) * (size_t)cols);
    const sol_cpu_kernels *active = sol_cpu_kernels_active();
    random_weights(t, w, rows, cols);
    for (int64_t c = 0; c < cols; c++)
        x[c] = rng_normal();
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *wr = w + (size_t)r * row_bytes;
        sol_dequantize_ref(t, wr, row, cols);
        double magnitude, exact = exact_dot(row, x, cols, &magnitude);
        double bound = (double)(cols + 2) * 0x1p-24 * magnitude;
        float got = k->dot(t, wr, x, cols), want = sol_dot_ref(t, wr, x, cols);
        if (!(fabs(got - exact) <= bound) || !(fabs((double)got - want) <= 2 * bound))
            fail_msg("%s %lldx%lld row %lld: %s %.9g, reference %.9g, float64 %.9g, bound %.3g",
                     sol_dtype_name(t), (long long)rows, (long long)cols, (long long)r, k->isa, got, want,
                     exact, bound);
        if (bound > 0)
            worst_ratio[t] = fmax(worst_ratio[t], fabs((double)got - want) / (2 * bound));
        assert_true(sol_f32_bits(sol_dot(t, wr, x, cols)) == sol_f32_bits(active->dot(t, wr, x, cols)));
    }
    free(buf);
    free(x);
    free(row);
}

/* Rows 1, 7, 13; plain types at lengths that leave every tail (1, 7, 33, 100,
 * 4099), block types at 1, 3 and 5 blocks (and 16 for the long-row path). */
static void test_dot_matches_reference(void **state)
{
    const sol_cpu_kernels *k = avx2_or_skip();
    sol_dtype t = type_of(state);
    int64_t block = sol_dtype_block_elems(t);
    int64_t plain_cols[] = {1, 7, 8, 33, 100, 4099}, block_counts[] = {1, 3, 5, 16};
    int64_t rows[] = {1, 13, 37}; /* prefill: a partial panel; 2 panels and a partial one */
    size_t n_cols = block == 1 ? sizeof plain_cols / sizeof plain_cols[0]
                               : sizeof block_counts / sizeof block_counts[0];
    for (size_t c = 0; c < n_cols; c++)
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
            check_dots(k, t, rows[r], block == 1 ? plain_cols[c] : block * block_counts[c]);
    print_message("%s: largest |avx2 - reference| %.4f of the bound\n", sol_dtype_name(t), worst_ratio[t]);
}

/* Catastrophic cancellation: a row whose dot is exactly zero in real
 * arithmetic still lands within the bound (absolute, scaled by sum |w x|). */
static void test_dot_cancellation(void **state)
{
    const sol_cpu_kernels *k = avx2_or_skip();
    (void)state;
    enum { N = 1024 };
    float w[N], x[N];
    for (int i = 0; i < N / 2; i++) {
        w[i] = rng_normal();
        x[i] = rng_normal();
        w[i + N / 2] = -w[i];
        x[i + N / 2] = x[i];
    }
    double magnitude = 0;
    for (int i = 0; i < N; i++)
        magnitude += fabs((double)w[i] * x[i]);
    float got = k->dot(SOL_DT_F32, w, x, N);
    assert_true(fabs(got) <= (N + 2) * 0x1p-24 * magnitude);
}

/* dot_rows (AVX2) against the per-row reference dots: 1..4 rows at an
 * unaligned address, lengths around the 16- and 8-element steps; within
 * the summation bound of float64 of each row's exact dot. */
static void test_dot_rows(void **state)
{
    sol_dtype t = type_of(state);
    const sol_cpu_kernels *avx2 = avx2_or_skip();
    int64_t block = sol_dtype_block_elems(t);
    const int64_t lengths[] = {block == 1 ? 5 : block, block == 1 ? 29 : 3 * block, block == 1 ? 263 : 9 * block};
    for (size_t l = 0; l < 3; l++) {
        int64_t n = lengths[l];
        size_t row_bytes = sol_row_bytes(t, n);
        uint8_t *buf = malloc(row_bytes * SOL_DOT_ROWS_MAX + 1), *w = buf + 1;
        float *x = malloc(sizeof(float) * (size_t)n), *row = malloc(sizeof(float) * (size_t)n);
        random_weights(t, w, SOL_DOT_ROWS_MAX, n);
        for (int64_t i = 0; i < n; i++)
            x[i] = rng_normal();
        for (int nr = 1; nr <= SOL_DOT_ROWS_MAX; nr++) {
            float out[SOL_DOT_ROWS_MAX];
            avx2->dot_rows(t, w, row_bytes, nr, x, n, out);
            for (int r = 0; r < nr; r++) {
                sol_dequantize(t, w + (size_t)r * row_bytes, row, n);
                double magnitude, exact = exact_dot(row, x, n, &magnitude);
                if (!(fabs(out[r] - exact) <= (double)(n + 2) * 0x1p-24 * magnitude))
                    fail_msg("%s n=%lld rows=%d row %d: %.9g, float64 %.9g", sol_dtype_name(t), (long long)n, nr, r,
                             out[r], exact);
            }
        }
        free(buf);
        free(x);
        free(row);
    }
}

/* ---- the CPU backend's matmul on 2 threads -------------------------------------- */

/* y[m, rows] = x . W^T + bias, through backend->matmul, with f32
 * activations: one input row (decode: dot_rows over tile_rows weight rows)
 * and several (prefill: the packed GEMM); every output within the
 * summation bound of float64. With 8-bit activations (the quantised types) each output
 * is within the same bound of the float64 dot of the dequantised weights
 * with the dequantised activation codes, whatever tile the backend used. */
static void check_matmul(sol_backend *be, sol_dtype t, int64_t rows, int64_t cols, int m)
{
    size_t row_bytes = sol_row_bytes(t, cols);
    uint8_t *buf = malloc(row_bytes * (size_t)rows + 1), *w = buf + 1;
    float *x = malloc(sizeof(float) * (size_t)(cols * m)), *y = malloc(sizeof(float) * (size_t)(rows * m));
    float *bias = malloc(sizeof(float) * (size_t)rows), *row = malloc(sizeof(float) * (size_t)cols);
    float *x_seen = malloc(sizeof(float) * (size_t)(cols * m));
    int integer_dots = be->activations == SOL_ACT_Q8 && sol_act_q8_applies(t);
    random_weights(t, w, rows, cols);
    for (int64_t i = 0; i < cols * m; i++)
        x[i] = x_seen[i] = rng_normal();
    if (integer_dots)
        assert_int_equal(sol_act_q8_round_trip(x, x_seen, cols * m), 0);
    for (int64_t r = 0; r < rows; r++)
        bias[r] = rng_normal();
    sol_weight_view view = {t, w, rows, cols, row_bytes};
    be->matmul(be, &view, bias, x, m, y);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *wr = w + (size_t)r * row_bytes;
        sol_dequantize(t, wr, row, cols);
        for (int i = 0; i < m; i++) {
            const float *seen = x_seen + (size_t)i * cols;
            float got = y[(size_t)i * rows + r];
            double magnitude, exact = exact_dot(row, seen, cols, &magnitude) + bias[r];
            magnitude += fabs(bias[r]);
            if (!(fabs(got - exact) <= (double)(cols + 3) * 0x1p-24 * magnitude))
                fail_msg("%s %s m=%d row %lld: %.9g, float64 %.9g", sol_dtype_name(t),
                         integer_dots ? "q8 activations" : "f32 activations", m, (long long)r, got, exact);
        }
    }
    free(buf);
    free(x);
    free(x_seen);
    free(y);
    free(bias);
    free(row);
}

static void test_backend_matmul(void **state)
{
    sol_dtype t = type_of(state);
    sol_backend *be = cpu_backend(2);
    assert_int_equal(be->threads, 2);
    int64_t block = sol_dtype_block_elems(t);
    int64_t cols[] = {block == 1 ? 33 : block, block == 1 ? 100 : 3 * block, block == 1 ? 7 : 5 * block};
    int64_t rows[] = {1, 13, 37}; /* prefill: a partial panel; 2 panels and a partial one */
    sol_activations modes[] = {SOL_ACT_F32, SOL_ACT_Q8};
    for (int a = 0; a < 2; a++) {
        be->activations = modes[a];
        for (size_t c = 0; c < 3; c++)
            for (size_t r = 0; r < 3; r++)
                for (int m = 1; m <= 9; m += m < 3 ? 2 : 6)
                    check_matmul(be, t, rows[r], cols[c], m);
    }
    be->destroy(be);
}

/* ---- prefill panels ---------------------------------------------------------------- */

/* gemm_panels (AVX2) against the reference on awkward sizes: inputs 1..37
 * (whole panels of 16 and every remainder), 1..13 weight rows (tiles of 6
 * and their remainders), columns not a multiple of 8 and more than one
 * chunk (2048), rows and outputs with strides wider than their data; each
 * output within the float summation bound of float64, outputs past the rows
 * untouched. Packing is checked element by element. */
static void test_gemm_panels(void **state)
{
    (void)state;
    const sol_cpu_kernels *avx2 = avx2_or_skip();
    enum { MAX_M = 37, MAX_ROWS = 13, W_STRIDE = 2100, Y_STRIDE = MAX_ROWS + 3 };
    const int64_t widths[] = {37, 2085};
    float *x = malloc(sizeof(float) * MAX_M * W_STRIDE), *w = malloc(sizeof(float) * MAX_ROWS * W_STRIDE);
    float *xp = aligned_alloc(32, sizeof(float) * sol_packed_floats(MAX_M, W_STRIDE));
    float *y = malloc(sizeof(float) * MAX_M * Y_STRIDE), *ref = malloc(sizeof(float) * MAX_M * Y_STRIDE);
    assert_true(x && w && xp && y && ref);
    for (int i = 0; i < MAX_M * W_STRIDE; i++)
        x[i] = rng_normal();
    for (int i = 0; i < MAX_ROWS * W_STRIDE; i++)
        w[i] = rng_normal();
    for (int c = 0; c < 2; c++) {
        const int64_t n = widths[c];
        for (int m = 1; m <= MAX_M; m += m < 18 ? 1 : 19) {
            float *rows = malloc(sizeof(float) * (size_t)m * (size_t)n);
            assert_non_null(rows);
            for (int i = 0; i < m; i++)
                memcpy(rows + (size_t)i * n, x + (size_t)i * W_STRIDE, sizeof(float) * (size_t)n);
            void (*const packs[])(const float *, int, int64_t, float *) = {sol_pack_inputs_ref, avx2->pack_inputs};
            for (int f = 0; f < 2; f++) { /* the reference, then AVX2 (which gemm_panels then reads) */
                for (int i = 0; i < (int)sol_packed_floats(m, n); i++)
                    xp[i] = -1.0f;
                packs[f](rows, m, n, xp);
                for (int i = 0; i < (m + 15) / 16 * 16; i++)
                    for (int64_t k = 0; k < n; k++)
                        assert_true(xp[(size_t)(i / 16) * 16 * n + (size_t)k * 16 + i % 16] ==
                                    (i < m ? rows[(size_t)i * n + k] : 0.0f));
            }
            for (int nr = 1; nr <= MAX_ROWS; nr += nr < 7 ? 1 : 6) {
                for (int i = 0; i < MAX_M * Y_STRIDE; i++)
                    y[i] = -777.0f;
                avx2->gemm_panels(xp, m, w, nr, W_STRIDE, n, y, Y_STRIDE);
                sol_gemm_panels_ref(xp, m, w, nr, W_STRIDE, n, ref, Y_STRIDE);
                for (int i = 0; i < MAX_M; i++)
                    for (int r = 0; r < Y_STRIDE; r++) {
                        float got = y[i * Y_STRIDE + r];
                        if (i >= m || r >= nr) {
                            assert_true(got == -777.0f);
                            continue;
                        }
                        double magnitude;
                        double exact = exact_dot(rows + (size_t)i * n, w + (size_t)r * W_STRIDE, n, &magnitude);
                        double bound = (double)(n + 2) * 0x1p-24 * magnitude;
                        if (!(fabs(got - exact) <= bound) || !(fabs(ref[i * Y_STRIDE + r] - exact) <= bound))
                            fail_msg("n=%lld m=%d rows=%d input %d row %d: avx2 %.9g, ref %.9g, float64 %.9g",
                                     (long long)n, m, nr, i, r, got, ref[i * Y_STRIDE + r], exact);
                    }
            }
            free(rows);
        }
    }
    free(x);
    free(w);
    free(xp);
    free(y);
    free(ref);
}

/* ---- dispatch ------------------------------------------------------------------- */

/* True when /proc/cpuinfo lists every flag in `flags` (space-separated) for
 * the first CPU; -1 when it cannot be read. An independent view of the CPU:
 * the kernel's, not cpuid as read by dispatch.c. */
static int cpuinfo_has(const char *flags)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return -1;
    char line[8192];
    int found = -1;
    while (found < 0 && fgets(line, sizeof line, f))
        if (strncmp(line, "flags", 5) == 0) {
            found = 1;
            char want[128];
            snprintf(want, sizeof want, "%s", flags);
            for (char *tok = strtok(want, " "); tok; tok = strtok(NULL, " ")) {
                char padded[64];
                snprintf(padded, sizeof padded, " %s", tok);
                size_t len = strlen(padded);
                char *at = strstr(line, padded);
                if (!at || (at[len] != ' ' && at[len] != '\n'))
                    found = 0;
            }
        }
    fclose(f);
    return found;
}

/* The reference table is always there; AVX2 exactly where the CPU has all of
 * AVX2, FMA and F16C; the active table is AVX2 unless SOL_CPU_ISA=scalar. */
static void test_dispatch(void **state)
{
    (void)state;
    const sol_cpu_kernels *scalar = sol_cpu_kernels_get("scalar");
    assert_non_null(scalar);
    assert_string_equal(scalar->isa, "scalar");
    assert_ptr_equal(scalar->dot, sol_dot_ref);
    assert_ptr_equal(scalar->dequantize, sol_dequantize_ref);
    assert_null(sol_cpu_kernels_get("avx512"));

    const sol_cpu_kernels *avx2 = sol_cpu_kernels_get("avx2");
#if defined(__x86_64__)
    int has = cpuinfo_has("avx2 fma f16c");
    if (has >= 0)
        assert_int_equal(avx2 != NULL, has);
#else
    assert_null(avx2);
#endif
    const char *env = getenv("SOL_CPU_ISA");
    const sol_cpu_kernels *want = env && strcmp(env, "scalar") == 0 ? scalar : avx2 ? avx2 : scalar;
    assert_ptr_equal(sol_cpu_kernels_active(), want);
    print_message("active kernels: %s\n", sol_cpu_kernels_active()->isa);
}

#define ONE(fn, i, name) {#fn "(" name ")", fn, NULL, NULL, &types[i]}
#define PER_TYPE(fn)                                                                               \
    ONE(fn, 0, "f32"), ONE(fn, 1, "f16"), ONE(fn, 2, "bf16"), ONE(fn, 3, "q8_0"),                 \
        ONE(fn, 4, "q4_0"), ONE(fn, 5, "q4_1"), ONE(fn, 6, "q4_k"), ONE(fn, 7, "q6_k")

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dispatch),
        PER_TYPE(test_dequantize_bit_exact),
        PER_TYPE(test_dot_matches_reference),
        cmocka_unit_test(test_dot_cancellation),
        PER_TYPE(test_dot_rows),
        PER_TYPE(test_backend_matmul),
        cmocka_unit_test(test_gemm_panels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
