// The matvec autotuner's trials without a GPU (kernels/cuda/tune_trial.cu):
// the weights a trial makes (finite, bounded, reproducible) for every type;
// the float64 reference and the judge (an honest f32 sum passes, a dropped
// group of 8 weights or a NaN fails); the CLI's space (tuner/cuda_matvec.c)
// over the plugin's own rules: the built-in variant valid and the default
// for every shape and input count, sampled variants that NVRTC really
// compiles; and every entry that needs a device failing in one line here.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>

#include "tuner/cuda_matvec.h"
}

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "kernels/cuda/tune_trial.h"
#include "kernels/cuda/variant.h"

static const sol_dtype kTypes[] = {SOL_DT_F32,  SOL_DT_F16,  SOL_DT_BF16, SOL_DT_Q8_0,
                                   SOL_DT_Q4_0, SOL_DT_Q4_1, SOL_DT_Q4_K, SOL_DT_Q6_K};

// ---- weights, reference, judge ----

static std::vector<float> decoded(sol_dtype t, const std::vector<uint8_t> &w, int64_t rows, int64_t cols)
{
    size_t row_bytes = sol_tune_row_bytes(t, cols);
    std::vector<float> out((size_t)(rows * cols));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g = 0; g < cols / 8; g++)
            sol_dq8(t, w.data() + (size_t)r * row_bytes, g, &out[(size_t)(r * cols + 8 * g)]);
    return out;
}

static void test_weights(void **state)
{
    (void)state;
    const int64_t rows = 6, cols = 1024;
    for (sol_dtype t : kTypes) {
        size_t row_bytes = sol_tune_row_bytes(t, cols);
        assert_int_equal(row_bytes, (size_t)sol_mv_bytes_of(t, cols));
        std::vector<uint8_t> a(rows * row_bytes), b(rows * row_bytes), c(rows * row_bytes);
        sol_tune_make_weights(t, rows, cols, 7, a.data());
        sol_tune_make_weights(t, rows, cols, 7, b.data());
        sol_tune_make_weights(t, rows, cols, 8, c.data());
        assert_memory_equal(a.data(), b.data(), a.size()); // reproducible
        assert_true(memcmp(a.data(), c.data(), a.size()) != 0);
        std::vector<float> w = decoded(t, a, rows, cols);
        double max = 0, nonzero = 0;
        for (float v : w) {
            if (!std::isfinite(v))
                fail_msg("%s: a decoded weight is not finite", sol_dtype_name(t));
            max = std::max(max, (double)fabsf(v));
            nonzero += v != 0;
        }
        printf("  %-5s max |w| %.3f, %.1f%% nonzero\n", sol_dtype_name(t), max, 100 * nonzero / (double)w.size());
        assert_true(max <= 16 && max > 0.1);
        assert_true(nonzero > 0.9 * (double)w.size());
    }
    // the CUDA matvec's types only; K in whole blocks
    assert_int_equal(sol_tune_row_bytes(SOL_DT_Q5_K, 256), 0);
    assert_int_equal(sol_tune_row_bytes(SOL_DT_Q4_K, 128), 0);
    std::vector<float> x(1000);
    sol_tune_make_inputs(1000, 3, x.data());
    for (float v : x)
        assert_true(v >= -1.0f && v < 1.0f);
}

// y[i * rows + r] summed in f32, in order (or backwards): an honest kernel's
// answer; output `skip` leaves out groups of 8 [first, first + groups).
static std::vector<float> f32_matvec(const std::vector<float> &w, const std::vector<float> &x, int64_t rows,
                                     int64_t cols, int m, bool backwards, int64_t skip = -1, int64_t first = 0,
                                     int64_t groups = 0)
{
    std::vector<float> y((size_t)(m * rows));
    for (int i = 0; i < m; i++)
        for (int64_t r = 0; r < rows; r++) {
            float sum = 0;
            for (int64_t j = 0; j < cols; j++) {
                int64_t c = backwards ? cols - 1 - j : j;
                if (i * rows + r == skip && c / 8 >= first && c / 8 < first + groups)
                    continue;
                sum += w[(size_t)(r * cols + c)] * x[(size_t)(i * cols + c)];
            }
            y[(size_t)(i * rows + r)] = sum;
        }
    return y;
}

static void test_judge(void **state)
{
    (void)state;
    for (sol_dtype t : {SOL_DT_F16, SOL_DT_Q4_K, SOL_DT_Q6_K, SOL_DT_Q4_1})
        for (int64_t cols : {(int64_t)1024, (int64_t)14336}) {
            const int64_t rows = 12;
            const int m = 3;
            std::vector<uint8_t> wq(rows * sol_tune_row_bytes(t, cols));
            sol_tune_make_weights(t, rows, cols, 11, wq.data());
            std::vector<float> x((size_t)(m * cols));
            sol_tune_make_inputs(m * cols, 12, x.data());
            std::vector<double> ref((size_t)(m * rows)), mag((size_t)(m * rows));
            sol_tune_reference(t, wq.data(), rows, cols, x.data(), m, ref.data(), mag.data());
            std::vector<float> w = decoded(t, wq, rows, cols);
            double bound = sol_tune_f32_bound(cols);
            for (bool backwards : {false, true}) {
                sol_tune_verdict v = sol_tune_judge(f32_matvec(w, x, rows, cols, m, backwards).data(), ref.data(),
                                                    mag.data(), m * rows, bound);
                printf("  %-5s K %-6lld f32 %s: error %.3g of sum |w x|, bound %.3g (%.0fx the error)\n",
                       sol_dtype_name(t), (long long)cols, backwards ? "backwards" : "in order", v.max_error, bound,
                       bound / v.max_error);
                assert_int_equal(v.correct, 1);
            }
            // of output (input 1, row 5), one group of 8 weights left out
            // (K 1024), or a tile of 256 (K 14336: one group's error is only
            // about 3 bounds there, as tune_trial.cu says)
            int64_t groups = cols > 4096 ? 32 : 1;
            sol_tune_verdict v = sol_tune_judge(f32_matvec(w, x, rows, cols, m, false, rows + 5, 3, groups).data(),
                                                ref.data(), mag.data(), m * rows, bound);
            printf("  %-5s K %-6lld %lld weights dropped: error %.3g, %.1fx the bound\n", sol_dtype_name(t),
                   (long long)cols, (long long)(8 * groups), v.max_error, v.max_error / bound);
            assert_int_equal(v.correct, 0);
            assert_int_equal(v.worst, rows + 5);
        }
    // a NaN, an infinity, and an output whose terms are all zero
    std::vector<float> y = {1.0f, NAN, 0.0f, INFINITY};
    std::vector<double> ref = {1.0, 2.0, 0.0, 1.0}, mag = {1.0, 2.0, 0.0, 1.0};
    sol_tune_verdict v = sol_tune_judge(y.data(), ref.data(), mag.data(), 1, 1e-6);
    assert_int_equal(v.correct, 1);
    v = sol_tune_judge(y.data(), ref.data(), mag.data(), 3, 1e-6);
    assert_int_equal(v.correct, 0);
    assert_int_equal(v.worst, 1);
    assert_true(std::isinf(v.max_error));
    v = sol_tune_judge(y.data() + 2, ref.data() + 2, mag.data() + 2, 1, 1e-6); // 0 == 0: right
    assert_int_equal(v.correct, 1);
    v = sol_tune_judge(y.data() + 3, ref.data() + 3, mag.data() + 3, 1, 1e-6);
    assert_int_equal(v.correct, 0);
}

// The fused kernel's inputs as it makes them (rmsnorm.cuh's host halves:
// the sum of squares in the layout's order in double, the f32 scale, two
// rounded products), input by input; `shift` reads the norm weight that
// many elements on (a wrong index), `unnormed` leaves the first group of 8
// of input 0 as it was (a missed normalisation).
static std::vector<float> fused_inputs(const std::vector<float> &x, const std::vector<float> &norm, int64_t cols, int m,
                                       int64_t shift = 0, bool unnormed = false)
{
    std::vector<float> xn(x.size());
    for (int i = 0; i < m; i++) {
        const float *xi = x.data() + (size_t)(i * cols);
        double warp_sums[kSolRmsWarps] = {0};
        for (int t = 0; t < kSolRmsThreads; t++) // per warp, in thread order (not the shuffles' tree: to u^2)
            warp_sums[t / kSolRmsWarp] += sol_rms_thread_sum(xi, cols, t, kSolRmsThreads);
        float scale = sol_rms_scale(sol_rms_total(warp_sums, kSolRmsWarps), cols, kSolTuneRmsEps);
        for (int64_t c = 0; c < cols; c++) {
            bool keep = unnormed && i == 0 && c < 8;
            xn[(size_t)(i * cols + c)] = keep ? xi[c] : sol_rms_apply(xi[c], scale, norm[(size_t)((c + shift) % cols)]);
        }
    }
    return xn;
}

// The fused kernel's bound: an honest run (its norm, then an f32 sum in
// order or backwards) passes with room; a norm weight read one element
// off, a group left unnormalised or a group of weights dropped fails.
static void test_fused_judge(void **state)
{
    (void)state;
    for (sol_dtype t : {SOL_DT_F16, SOL_DT_Q4_K, SOL_DT_Q8_0})
        for (int64_t cols : {(int64_t)1024, (int64_t)4096}) {
            const int64_t rows = 12;
            const int m = 3;
            std::vector<uint8_t> wq(rows * sol_tune_row_bytes(t, cols));
            sol_tune_make_weights(t, rows, cols, 21, wq.data());
            std::vector<float> x((size_t)(m * cols)), norm((size_t)cols);
            sol_tune_make_inputs(m * cols, 22, x.data());
            sol_tune_make_norm(cols, 23, norm.data());
            for (float g : norm)
                assert_true(g >= 0.5f && g < 1.5f);
            std::vector<double> xn((size_t)(m * cols)), ref((size_t)(m * rows)), mag((size_t)(m * rows));
            sol_tune_normalize(x.data(), norm.data(), cols, m, kSolTuneRmsEps, xn.data());
            sol_tune_reference_normed(t, wq.data(), rows, cols, xn.data(), m, ref.data(), mag.data());
            std::vector<float> w = decoded(t, wq, rows, cols);
            double bound = sol_tune_rms_bound(cols);
            assert_true(bound > sol_tune_f32_bound(cols));
            for (bool backwards : {false, true}) {
                sol_tune_verdict v = sol_tune_judge(f32_matvec(w, fused_inputs(x, norm, cols, m), rows, cols, m,
                                                               backwards).data(),
                                                    ref.data(), mag.data(), m * rows, bound);
                printf("  %-5s K %-5lld fused %s: error %.3g of sum |w xn|, bound %.3g (%.0fx the error)\n",
                       sol_dtype_name(t), (long long)cols, backwards ? "backwards" : "in order", v.max_error, bound,
                       bound / v.max_error);
                assert_int_equal(v.correct, 1);
            }
            struct broken {
                const char *what;
                std::vector<float> y;
            } cases[] = {
                {"norm weight one off", f32_matvec(w, fused_inputs(x, norm, cols, m, 1), rows, cols, m, false)},
                {"8 inputs unnormalised", f32_matvec(w, fused_inputs(x, norm, cols, m, 0, true), rows, cols, m, false)},
                {"8 weights dropped",
                 f32_matvec(w, fused_inputs(x, norm, cols, m), rows, cols, m, false, rows + 5, 3, 1)},
            };
            for (const broken &b : cases) {
                sol_tune_verdict v = sol_tune_judge(b.y.data(), ref.data(), mag.data(), m * rows, bound);
                printf("  %-5s K %-5lld fused, %s: error %.3g, %.1fx the bound\n", sol_dtype_name(t),
                       (long long)cols, b.what, v.max_error, v.max_error / bound);
                assert_int_equal(v.correct, 0);
            }
        }
}

// ---- the space over the plugin's rules ----

static const sol_cuda_mv_oracle kOracle = {sol_cuda_tune_default, sol_cuda_tune_check};

// Decode shapes of real models (N x K): SmolLM2-135M, Llama-3-8B,
// Qwen2-0.5B, Llama-3.2-1B, and small and odd ones.
static const int64_t kShapes[][2] = {
    {576, 576},     {192, 576},    {1536, 576},  {576, 1536},  {49152, 576}, {4096, 4096},  {1024, 4096},
    {14336, 4096},  {4096, 14336}, {128256, 4096}, {896, 896}, {4864, 896},  {896, 4864},   {151936, 896},
    {2048, 2048},   {8192, 2048},  {2048, 8192}, {1, 256},     {3, 512},     {1000, 1280},  {7, 768},
};

static void test_space_defaults(void **state)
{
    (void)state;
    int spaces = 0;
    for (sol_dtype t : kTypes)
        for (const int64_t *shape : kShapes) {
            if (shape[1] % sol_cuda_block_elems(t))
                continue; // not a shape of this type
            for (int m = 1; m <= SOL_CUDA_MV_MAX_INPUTS; m++) {
                sol_cuda_mv_problem pb = {t, shape[0], shape[1], m, 0};
                sol_cuda_mv_space_ctx ctx;
                sol_tune_space s;
                sol_cuda_mv_space(&pb, &kOracle, &ctx, &s);
                assert_true(sol_space_size(&s) <= 1 << 20);
                sol_cuda_mv_config d, want;
                sol_cuda_mv_config_from(&s, &s.default_config, &d);
                sol_cuda_tune_default(t, m == 1 ? 1 : 8, &want); // what ops.cu runs for m inputs
                assert_memory_equal(&d, &want, sizeof d);
                char why[256] = "";
                if (!sol_space_valid(&s, &s.default_config)) {
                    sol_cuda_tune_check(t, pb.rows, pb.cols, ctx.row_bytes, &d, why, sizeof why);
                    fail_msg("%s %lldx%lldx%d: the built-in variant is not valid: %s", sol_dtype_name(t),
                             (long long)pb.rows, (long long)pb.cols, m, why);
                }
                int valid = 0, too_few = 0;
                for (int64_t i = 0; i < sol_space_size(&s); i++) {
                    sol_tune_config c;
                    sol_space_decode(&s, i, &c);
                    if (!sol_space_valid(&s, &c))
                        continue;
                    valid++;
                    sol_cuda_mv_config v;
                    sol_cuda_mv_config_from(&s, &c, &v);
                    too_few += v.max_inputs < m;
                }
                assert_int_equal(too_few, 0); // one pass over the weights for the m inputs
                assert_true(valid > 10);
                if (m == 1 && shape[0] == 4096 && shape[1] == 4096)
                    printf("  %-5s 4096x4096x1: %d of %lld configurations valid\n", sol_dtype_name(t), valid,
                           (long long)sol_space_size(&s));
                spaces++;
            }
        }
    printf("  %d spaces: the built-in variant valid in each\n", spaces);
}

// Variants the space calls valid compile (or are rejected for their
// resources), never fail NVRTC: a tuning run would stop on one.
static void test_space_compiles(void **state)
{
    (void)state;
    sol_mv_compiler compiler = {nullptr, 0, 0};
    uint64_t pick = 12345;
    for (sol_dtype t : kTypes)
        for (int m : {1, 8}) {
            sol_cuda_mv_problem pb = {t, 4096, 4096, m, 0};
            sol_cuda_mv_space_ctx ctx;
            sol_tune_space s;
            sol_cuda_mv_space(&pb, &kOracle, &ctx, &s);
            for (int tries = 0, n = 0; n < 1 && tries < 100000; tries++) {
                pick = pick * 6364136223846793005ull + 1442695040888963407ull;
                sol_tune_config c;
                sol_space_decode(&s, (int64_t)((pick >> 33) % (uint64_t)sol_space_size(&s)), &c);
                if (!sol_space_valid(&s, &c))
                    continue;
                n++;
                sol_cuda_mv_config v;
                sol_cuda_mv_config_from(&s, &c, &v);
                sol_mv_variant var = {t, sol_mv_params{v.rows_per_block, v.threads_per_row, v.vec_bytes, v.unroll,
                                                       v.k_split, v.max_inputs}};
                char label[96], notice[256];
                sol_mv_label(&var, label, sizeof label);
                sol_mv_image img;
                sol_err err = {0, ""};
                int rc = sol_mv_build(&compiler, &var, 90, &img, notice, sizeof notice, &err);
                printf("  %-28s sm_90 %3d registers  %s\n", label, img.res.registers, rc ? err.msg : "ok");
                if (rc != SOL_MV_OK && rc != SOL_MV_REJECTED)
                    fail_msg("%s: %s", label, err.msg);
            }
        }
    assert_int_equal(compiler.nvrtc_compiles, 16);
}

// ---- no device here ----

static void one_line(const sol_err &err, const char *needle)
{
    if (!strstr(err.msg, needle) || strchr(err.msg, '\n'))
        fail_msg("expected one line with \"%s\", got \"%s\"", needle, err.msg);
}

static void test_entries_without_device(void **state)
{
    (void)state;
    sol_cuda_mv_source src, again;
    sol_err err = {0, ""};
    assert_int_equal(sol_cuda_tune_source(&src, &err), 0);
    assert_int_equal(strlen(src.hash), 16);
    assert_true(strspn(src.hash, "0123456789abcdef") == 16);
    assert_true(strchr(src.nvrtc, '.') != nullptr && strstr(src.options, "-default-device"));
    assert_true(strchr(src.cublas, '.') != nullptr);
    assert_int_equal(sol_cuda_tune_source(&again, &err), 0);
    assert_string_equal(src.hash, again.hash);
    printf("  kernel source %s, NVRTC %s (%s), cuBLAS %s\n", src.hash, src.nvrtc, src.options, src.cublas);

    sol_cuda_mv_request req = {SOL_DT_Q4_K, 4096, 4096, 1, {}, 25, 1, nullptr, 1, 0};
    sol_cuda_tune_default(SOL_DT_Q4_K, 1, &req.params);
    sol_cuda_mv_result res;
    int driver = 0, count = 0;
    bool gpu = cudaDriverGetVersion(&driver) == cudaSuccess && driver > 0 && cudaGetDeviceCount(&count) == cudaSuccess &&
               count > 0;
    cudaGetLastError();
    if (!gpu) { // where there is one, tests/gpu/run.sh runs the trials
        assert_int_not_equal(sol_cuda_tune_trial(0, &req, &res, &err), 0);
        one_line(err, "no CUDA device");
        err = sol_err{0, ""};
        assert_int_not_equal(sol_cuda_tune_cublas(0, &req, &res, &err), 0);
        one_line(err, "no CUDA device");
    }
    sol_cuda_tune_release(); // nothing held: nothing to do

    // the request's own faults come first, device or not
    err = sol_err{0, ""};
    req.m = 9;
    assert_int_not_equal(sol_cuda_tune_trial(0, &req, &res, &err), 0);
    one_line(err, "1 to 8 inputs");
    req.m = 1;
    req.reps = 5;
    assert_int_not_equal(sol_cuda_tune_trial(0, &req, &res, &err), 0);
    one_line(err, "10 to 1000 repetitions");
    req.reps = 25;
    // an invalid variant is a verdict, not an error
    req.params.threads_per_row = 24;
    err = sol_err{0, ""};
    assert_int_equal(sol_cuda_tune_trial(0, &req, &res, &err), 0);
    assert_int_equal(res.status, SOL_CUDA_TRIAL_INVALID);
    assert_int_equal(res.correct, 0);
    assert_non_null(strstr(res.why, "threads_per_row 24"));
    assert_true(res.median_s < 0);
    // and mv_check says the same, with no device
    char why[256];
    assert_int_equal(sol_cuda_tune_check(SOL_DT_Q4_K, 4096, 4096, 144 * 16, &req.params, why, sizeof why), 1);
    assert_non_null(strstr(why, "threads_per_row 24"));
    // the fused kernel has no K split: a verdict too, and cuBLAS has no
    // fused baseline (refused whatever the device)
    req.params.threads_per_row = 32;
    req.params.k_split = 2;
    req.rmsnorm = 1;
    assert_int_equal(sol_cuda_tune_trial(0, &req, &res, &err), 0);
    assert_int_equal(res.status, SOL_CUDA_TRIAL_INVALID);
    assert_non_null(strstr(res.why, "no K split"));
    assert_non_null(strstr(res.label, " norm"));
    assert_int_equal(sol_cuda_tune_cublas(0, &req, &res, &err), 0);
    assert_int_equal(res.status, SOL_CUDA_TRIAL_INVALID);
    assert_non_null(strstr(res.why, "cuBLAS has no fused"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights),        cmocka_unit_test(test_judge), cmocka_unit_test(test_fused_judge),
        cmocka_unit_test(test_space_defaults), cmocka_unit_test(test_space_compiles),
        cmocka_unit_test(test_entries_without_device),
    };
    return cmocka_run_group_tests_name("cuda tune trials", tests, nullptr, nullptr);
}
