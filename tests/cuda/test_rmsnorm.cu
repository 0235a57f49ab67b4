// RMSNorm folded into the matvec (kernels/cuda/rmsnorm.cuh, matvec.cuh's
// sol_matvec_rmsnorm) gives the unfused bits, checked on the host where it
// needs no GPU:
// - the scale: sol_rms_warp_sums run as a host model of a block of each
//   size (its warps' lanes one by one, the xor-shuffle tree on 32 lanes)
//   gives rmsnorm_kernel's 256-thread scale bit for bit on random rows of
//   576, 2048, 4096, 11008 and odd lengths; and a block's own layout is the
//   rmsnorm kernel as it was before these pieces were shared (head_rmsnorm
//   runs it at 64 and 96 threads);
// - the input: sol_mv_tile_dot with the norm folded in adds the very
//   products the plain one adds over the normalised row (xb).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "kernels/cuda/matvec.cuh"

static bool same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

static uint32_t next_random(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

// A uniform in [-1, 1) times 2^e for e in [-spread, spread]: rows whose
// squares span many binades, so the order of the sum shows in its bits.
static float random_value(uint32_t *seed, int spread)
{
    float u = (float)(next_random(seed) % 2000001) / 1000000.0f - 1.0f;
    int e = spread ? (int)(next_random(seed) % (2 * spread + 1)) - spread : 0;
    return ldexpf(u, e);
}

static std::vector<float> random_row(int64_t n, uint32_t seed, int spread)
{
    std::vector<float> row((size_t)n);
    for (float &f : row)
        f = random_value(&seed, spread);
    return row;
}

// ---- the scale ----

// `v += __shfl_xor_sync(.., v, o)` for o = 16, 8, .., 1 on the 32 lanes of a
// warp, all at once; returns lane 0's sum after checking every lane has it.
static double model_warp_sum(double lanes[kSolRmsWarp])
{
    for (int o = kSolRmsWarp / 2; o > 0; o /= 2) {
        double next[kSolRmsWarp];
        for (int l = 0; l < kSolRmsWarp; l++)
            next[l] = lanes[l] + lanes[l ^ o];
        memcpy(lanes, next, sizeof next);
    }
    for (int l = 1; l < kSolRmsWarp; l++)
        assert_memory_equal(&lanes[l], &lanes[0], sizeof(double));
    return lanes[0];
}

// sol_rms_warp_sums as a block of `threads` threads runs it: warp w of the
// block takes layout warps w, w + threads / 32, ..; each of its lanes adds
// its layout thread's elements; the tree; lane 0 stores. Every layout warp
// must be stored exactly once.
static void model_warp_sums(const float *row, int64_t n, int layout, int threads, double *warp_sums)
{
    const int warps = threads / kSolRmsWarp;
    std::vector<int> stores((size_t)(layout / kSolRmsWarp), 0);
    for (int w = 0; w < warps; w++)
        for (int lw = w; lw < layout / kSolRmsWarp; lw += warps) {
            double lanes[kSolRmsWarp];
            for (int lane = 0; lane < kSolRmsWarp; lane++)
                lanes[lane] = sol_rms_thread_sum(row, n, lw * kSolRmsWarp + lane, layout);
            warp_sums[lw] = model_warp_sum(lanes);
            stores[(size_t)lw]++;
        }
    for (int s : stores)
        assert_int_equal(s, 1);
}

// The sum of squares a block of `threads` computes for the layout
// (rmsnorm_kernel: layout = its block size; sol_matvec_rmsnorm: 256, its
// own threads), and the scale from it.
static double model_total(const float *row, int64_t n, int layout, int threads)
{
    std::vector<double> warp_sums((size_t)(layout / kSolRmsWarp));
    model_warp_sums(row, n, layout, threads, warp_sums.data());
    return sol_rms_total(warp_sums.data(), layout / kSolRmsWarp);
}

static float model_scale(const float *row, int64_t n, float eps, int layout, int threads)
{
    return sol_rms_scale(model_total(row, n, layout, threads), n, eps);
}

// ops.cu's rmsnorm_kernel before it shared rmsnorm.cuh, restated: thread t
// of the block adds elements t, t + threads, .. (nvcc fused each square
// into the sum: fma.rn.f64), the tree per warp, lane 0's sum into part,
// the parts added in order; 1 / sqrtf of the mean + eps.
static double previous_kernel_total(const float *row, int64_t n, int threads)
{
    double part[32];
    for (int w = 0; w < threads / 32; w++) {
        double lanes[32];
        for (int lane = 0; lane < 32; lane++) {
            double sum = 0;
            for (int64_t i = w * 32 + lane; i < n; i += threads)
                sum = fma((double)row[i], (double)row[i], sum);
            lanes[lane] = sum;
        }
        part[w] = model_warp_sum(lanes);
    }
    double total = 0;
    for (int w = 0; w < threads / 32; w++)
        total += part[w];
    return total;
}

static float previous_kernel_scale(const float *row, int64_t n, float eps, int threads)
{
    return 1.0f / sqrtf((float)(previous_kernel_total(row, n, threads) / n) + eps);
}

static bool same_double(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static const int64_t kLengths[] = {576, 2048, 4096, 11008, 1, 7, 31, 255, 257, 577, 1001, 2049, 4097, 8191};

static void test_scale_any_block(void **state)
{
    (void)state;
    const int blocks[] = {32, 64, 96, 128, 160, 256, 512, 1024}; // 128: the defaults' RPB x TPR
    const float eps[] = {1e-5f, 1e-6f};
    int rows = 0, other_layout_differs = 0;
    for (int64_t n : kLengths)
        for (int spread : {0, 6, 40})
            for (uint32_t seed = 1; seed <= 4; seed++) {
                std::vector<float> row = random_row(n, (uint32_t)(n * 131 + spread * 7 + seed), spread);
                float e = eps[seed % 2];
                double want_total = model_total(row.data(), n, kSolRmsThreads, kSolRmsThreads);
                float want = sol_rms_scale(want_total, n, e);
                assert_true(same_double(want_total, previous_kernel_total(row.data(), n, kSolRmsThreads)));
                assert_true(same_bits(want, previous_kernel_scale(row.data(), n, e, kSolRmsThreads)));
                for (int threads : blocks) {
                    double total = model_total(row.data(), n, kSolRmsThreads, threads);
                    float got = sol_rms_scale(total, n, e);
                    if (!same_double(total, want_total) || !same_bits(got, want))
                        fail_msg("n %lld, spread %d, a block of %d: sum %.17g, scale %.9g; rmsnorm_kernel's %.17g, "
                                 "%.9g", (long long)n, spread, threads, total, got, want_total, want);
                }
                // the block's own layout would add in another order: the test can tell
                other_layout_differs += !same_double(model_total(row.data(), n, 128, 128), want_total);
                // near the exact value: the sum is the right one, not just the same one
                double exact = 0;
                for (float f : row)
                    exact += (double)f * f;
                double ref = 1.0 / sqrt(exact / n + e);
                assert_true(fabs(want - ref) <= 4e-7 * ref);
                rows++;
            }
    assert_true(other_layout_differs > rows / 4);
    printf("scale: %d rows, 8 block sizes each, the 256-thread bits (a 128-thread layout's sum differs in %d)\n",
           rows, other_layout_differs);
}

// head_rmsnorm launches rmsnorm_kernel at head_dim's whole warps: its own
// layout must stay the kernel's arithmetic.
static void test_own_layout_unchanged(void **state)
{
    (void)state;
    for (int threads : {32, 64, 96, 128, 256})
        for (int64_t n : {(int64_t)threads, (int64_t)threads - 16, (int64_t)threads * 3 + 5}) {
            std::vector<float> row = random_row(n, (uint32_t)(threads + n), 20);
            assert_true(same_double(model_total(row.data(), n, threads, threads),
                                    previous_kernel_total(row.data(), n, threads)));
            float got = model_scale(row.data(), n, 1e-6f, threads, threads);
            assert_true(same_bits(got, previous_kernel_scale(row.data(), n, 1e-6f, threads)));
        }
}

// ---- the input ----

// A row of `cols` stored as T (F32, F16 or Q8_0) with finite values.
static std::vector<uint8_t> random_stored_row(sol_dtype t, int64_t cols, uint32_t seed)
{
    std::vector<uint8_t> w((size_t)sol_mv_bytes_of(t, cols));
    for (auto &b : w)
        b = (uint8_t)next_random(&seed);
    int block = sol_cuda_block_bytes(t);
    for (size_t at = 0; at < w.size(); at += block) {
        if (t == SOL_DT_F32) {
            float f = random_value(&seed, 0);
            memcpy(&w[at], &f, 4);
        } else { // F16 values and Q8_0's d: a half of 0.0625 .. 0.125, either sign
            uint16_t half = (uint16_t)(0x2c00 | (next_random(&seed) & 0x83ff));
            memcpy(&w[at], &half, 2);
        }
    }
    return w;
}

// One weight row against m inputs, tile by tile and lane by lane as a
// row's threads walk it (threads_per_row TPR, groups of 8, UNROLL per
// tile): the fused products on x with the norm, and the plain ones on xb.
template <sol_dtype T, int M>
static void check_tile_dot(int64_t cols, int m, uint32_t seed)
{
    constexpr int kTpr = 32, kUnroll = 2, kTile = sol_mv_tile_elems(kTpr, kUnroll);
    std::vector<uint8_t> w = random_stored_row(T, cols, seed);
    std::vector<float> x = random_row((int64_t)m * cols, seed + 1, 8), norm = random_row(cols, seed + 2, 1);
    float scale[M] = {0};
    std::vector<float> xb((size_t)m * cols);
    for (int i = 0; i < m; i++) {
        scale[i] = model_scale(&x[(size_t)i * cols], cols, 1e-5f, kSolRmsThreads, 128);
        for (int64_t c = 0; c < cols; c++)
            xb[(size_t)i * cols + c] = sol_rms_apply(x[(size_t)i * cols + c], scale[i], norm[(size_t)c]);
    }
    for (int lane = 0; lane < kTpr; lane++) {
        float fused[M] = {0}, plain[M] = {0};
        for (int64_t e = 0; e < cols; e += kTile) {
            int groups = (int)((cols - e < kTile ? cols - e : kTile) / 8);
            const uint8_t *tile = w.data() + sol_mv_bytes_of(T, e);
            sol_mv_tile_dot<T, kTpr, kUnroll, M, true>(tile, lane, groups, &x[(size_t)e], cols, m, fused,
                                                       &norm[(size_t)e], scale);
            sol_mv_tile_dot<T, kTpr, kUnroll, M>(tile, lane, groups, &xb[(size_t)e], cols, m, plain);
        }
        for (int i = 0; i < m; i++)
            if (!same_bits(fused[i], plain[i]))
                fail_msg("type %d, %lld cols, input %d of %d, lane %d: fused %.9g, plain %.9g", (int)T,
                         (long long)cols, i, m, lane, fused[i], plain[i]);
    }
}

static void test_fused_input(void **state)
{
    (void)state;
    for (int64_t cols : {576, 2048, 4096, 11008, 96, 800}) { // 96, 800: a partial last tile
        uint32_t seed = (uint32_t)cols;
        check_tile_dot<SOL_DT_F32, 1>(cols, 1, seed);
        check_tile_dot<SOL_DT_F16, 8>(cols, 8, seed + 10);
        check_tile_dot<SOL_DT_F16, 8>(cols, 3, seed + 20);
        if (cols % sol_cuda_block_elems(SOL_DT_Q8_0) == 0) {
            check_tile_dot<SOL_DT_Q8_0, 1>(cols, 1, seed + 30);
            check_tile_dot<SOL_DT_Q8_0, 8>(cols, 5, seed + 40);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scale_any_block),
        cmocka_unit_test(test_own_layout_unchanged),
        cmocka_unit_test(test_fused_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
