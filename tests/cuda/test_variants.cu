// The matvec variants without a GPU (kernels/cuda/variant*.cu): the
// validity rules on hand-checked cases; a host model of the kernel's tiling
// (matvec.cuh's own staging and tile products, block by block and thread
// by thread) against a plain dot product for every shape the rules accept;
// real NVRTC compiles for sm_80 and sm_90 with ptxas's registers and
// spills; and the image cache (hits without NVRTC, damaged files rebuilt).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include <dirent.h>
#include <ftw.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cuda/variant.h"
#include "tests/cuda/expect_verdict.h"

static sol_mv_variant variant(sol_dtype t, int rpb, int tpr, int vec, int unroll, int k_split, int max_inputs)
{
    return sol_mv_variant{t, sol_mv_params{rpb, tpr, vec, unroll, k_split, max_inputs}};
}

// ---- validity ----

static void expect_params(sol_mv_variant v, const char *reason)
{
    char why[256] = "";
    int rc = sol_mv_check_params(&v, why, sizeof why);
    expect_verdict(rc, why, reason);
}

static void test_params_rules(void **state)
{
    (void)state;
    for (int t : {SOL_DT_F32, SOL_DT_F16, SOL_DT_BF16, SOL_DT_Q8_0, SOL_DT_Q4_0, SOL_DT_Q4_1, SOL_DT_Q4_K, SOL_DT_Q6_K})
        for (int m : {1, 8})
            expect_params(sol_mv_variant{(sol_dtype)t, sol_mv_default((sol_dtype)t, m)}, nullptr);
    expect_params(variant(SOL_DT_Q5_K, 4, 32, 16, 2, 1, 1), "weight type 14: not one the CUDA backend decodes");
    expect_params(variant(SOL_DT_F16, 4, 32, 16, 2, 1, 9), "max_inputs 9: 1 to 8");
    expect_params(variant(SOL_DT_F16, 4, 24, 16, 2, 1, 1), "threads_per_row 24: a divisor of 32 or a multiple of 32");
    expect_params(variant(SOL_DT_F16, 4, 48, 16, 2, 1, 1), "threads_per_row 48");
    expect_params(variant(SOL_DT_F16, 1, 2048, 16, 1, 1, 1), "threads_per_row 2048");
    expect_params(variant(SOL_DT_F16, 3, 512, 16, 1, 1, 1), "rows_per_block 3 x threads_per_row 512: 1 to 1024");
    expect_params(variant(SOL_DT_F16, 1, 8, 16, 1, 1, 1), "8 threads per block: not whole warps");
    expect_params(variant(SOL_DT_F16, 4, 32, 3, 2, 1, 1), "vec_bytes 3: 2, 4, 8 or 16");
    expect_params(variant(SOL_DT_F16, 4, 32, 32, 2, 1, 1), "vec_bytes 32");
    expect_params(variant(SOL_DT_F16, 4, 32, 16, 0, 1, 1), "unroll 0");
    expect_params(variant(SOL_DT_F16, 4, 32, 16, 2, 0, 1), "k_split 0");
    // 16 threads x 1 x 8 = 128 elements: half a Q4_K block
    expect_params(variant(SOL_DT_Q4_K, 8, 16, 16, 1, 1, 1),
                  "a tile of 128 elements (threads_per_row x unroll x 8) is not whole q4_k blocks of 256");
    expect_params(variant(SOL_DT_Q4_0, 16, 2, 2, 1, 1, 1), "a tile of 16 elements");
    // one Q6_K block is 210 bytes: 2-byte loads only
    expect_params(variant(SOL_DT_Q6_K, 4, 32, 4, 1, 1, 1), "a tile of 210 bytes is not whole 4-byte loads");
    expect_params(variant(SOL_DT_Q6_K, 4, 32, 2, 1, 1, 1), nullptr);
    // 18-byte Q4_0 blocks: 8 of them (256 elements) are 144 bytes, 16-byte loads fit
    expect_params(variant(SOL_DT_Q4_0, 4, 32, 16, 1, 1, 1), nullptr);
    expect_params(variant(SOL_DT_Q4_0, 4, 16, 16, 1, 1, 1), "a tile of 72 bytes is not whole 16-byte loads");
    // 32 rows x 512 f32 (2 KiB) = 64 KiB of tiles
    expect_params(variant(SOL_DT_F32, 32, 32, 16, 2, 1, 1), "65536 bytes of shared memory per block, more than 49152");
    expect_params(variant(SOL_DT_F32, 16, 32, 16, 2, 1, 1), nullptr); // 32 KiB
}

static void expect_shape(sol_mv_variant v, int64_t rows, int64_t cols, size_t row_bytes, const char *reason)
{
    sol_mv_shape s = {rows, cols, row_bytes};
    char why[256] = "";
    int rc = sol_mv_check_shape(&v, &s, why, sizeof why);
    expect_verdict(rc, why, reason);
}

static void test_shape_rules(void **state)
{
    (void)state;
    // SmolLM2's Q4_1 attention: 576 columns, 18 blocks of 20 bytes
    expect_shape(variant(SOL_DT_Q4_1, 4, 32, 4, 2, 1, 1), 576, 576, 360, nullptr);
    expect_shape(variant(SOL_DT_Q4_1, 4, 32, 8, 2, 1, 1), 576, 576, 360, nullptr);
    expect_shape(variant(SOL_DT_Q4_1, 4, 32, 16, 2, 1, 1), 576, 576, 360,
                 "rows of 360 bytes do not all start 16-byte aligned");
    // 18 blocks in 2 slices of 180 bytes: 4-byte aligned, not 8
    expect_shape(variant(SOL_DT_Q4_1, 4, 32, 4, 2, 2, 1), 576, 576, 360, nullptr);
    expect_shape(variant(SOL_DT_Q4_1, 4, 32, 8, 2, 2, 1), 576, 576, 360,
                 "K slices of 180 bytes do not all start 8-byte aligned");
    expect_shape(variant(SOL_DT_Q4_1, 4, 32, 4, 2, 4, 1), 576, 576, 360, "k_split 4 does not divide the 18 blocks");
    // Q8_0: 18 blocks of 34 bytes = 612 (4-aligned); 48 blocks = 1632 (16-aligned)
    expect_shape(variant(SOL_DT_Q8_0, 4, 32, 16, 2, 1, 1), 1536, 576, 612, "rows of 612 bytes");
    expect_shape(variant(SOL_DT_Q8_0, 4, 32, 16, 2, 1, 1), 576, 1536, 1632, nullptr);
    // Q4_K: 6 blocks of 144 bytes; 3 slices of 288 bytes
    expect_shape(variant(SOL_DT_Q4_K, 4, 32, 16, 2, 3, 1), 576, 1536, 864, nullptr);
    expect_shape(variant(SOL_DT_Q4_K, 4, 32, 16, 2, 4, 1), 576, 1536, 864, "k_split 4 does not divide the 6 blocks");
    expect_shape(variant(SOL_DT_Q4_K, 4, 32, 16, 2, 1, 1), 576, 576, 324, "576 columns: not whole q4_k blocks");
    // plain types split by groups of 8
    expect_shape(variant(SOL_DT_F16, 4, 32, 16, 2, 1, 1), 10, 100, 200, "100 columns: not whole f16 blocks and groups of 8");
    expect_shape(variant(SOL_DT_F16, 4, 32, 16, 2, 3, 1), 10, 96, 192, nullptr);
    expect_shape(variant(SOL_DT_F16, 4, 32, 16, 2, 5, 1), 10, 96, 192, "k_split 5 does not divide the 12 groups of 8");
    expect_shape(variant(SOL_DT_F16, 4, 32, 16, 2, 1, 1), 10, 96, 200, "rows of 200 bytes: 96 f16 columns take 192");
    expect_shape(variant(SOL_DT_F16, 4, 32, 16, 2, 1, 1), 0, 96, 192, "an empty matrix");
    // rows need not fill the last block: the kernel guards them
    expect_shape(variant(SOL_DT_F32, 4, 32, 16, 2, 1, 1), 7, 96, 384, nullptr);
    // and the parameters come first
    expect_shape(variant(SOL_DT_F16, 4, 24, 16, 2, 1, 1), 10, 96, 192, "threads_per_row 24");
}

static void test_geometry(void **state)
{
    (void)state;
    sol_mv_variant v = sol_mv_variant{SOL_DT_Q4_1, sol_mv_default(SOL_DT_Q4_1, 1)};
    sol_mv_shape s = {49152, 576, 360}; // SmolLM2's LM head
    sol_mv_launch l = sol_mv_geometry(&v, &s, 1);
    assert_int_equal(l.grid_x, 12288);
    assert_int_equal(l.grid_y, 1);
    assert_int_equal(l.threads, 128);
    assert_int_equal(l.workspace_bytes, 0);
    v = variant(SOL_DT_Q4_K, 2, 128, 16, 2, 3, 8);
    s = {1001, 1536, 864};
    l = sol_mv_geometry(&v, &s, 5);
    assert_int_equal(l.grid_x, 501);
    assert_int_equal(l.grid_y, 3);
    assert_int_equal(l.threads, 256);
    assert_int_equal(l.workspace_bytes, 3 * 5 * 1001 * 4);
    assert_int_equal(sol_mv_smem_bytes(&v), 2 * 1152 + 4 * 8); // 2 rows of 8 blocks; 8 warp sums
    char buf[160];
    sol_mv_label(&v, buf, sizeof buf);
    assert_string_equal(buf, "q4_k r2 t128 v16 u2 k3 m8");
    sol_mv_kernel_expr(&v, buf, sizeof buf);
    assert_string_equal(buf, "sol_matvec<(sol_dtype)13, 2, 128, 16, 2, 3, 8>");
    sol_mv_sum_expr(&v, buf, sizeof buf);
    assert_string_equal(buf, "sol_matvec_sum<3>");
    v.p.k_split = 1;
    sol_mv_sum_expr(&v, buf, sizeof buf);
    assert_string_equal(buf, "");
}

// The fused RMSNorm matvec: its own kernel name (no KSPLIT parameter) and
// label, its norm's warp sums in shared memory, and no K split; the plain
// one's names are what they were (an image's key hashes them).
static void test_fused_names(void **state)
{
    (void)state;
    sol_mv_variant v = variant(SOL_DT_Q4_K, 2, 128, 16, 2, 1, 8);
    char buf[160], why[256];
    sol_mv_kernel_expr(&v, buf, sizeof buf);
    assert_string_equal(buf, "sol_matvec<(sol_dtype)13, 2, 128, 16, 2, 1, 8>");
    int plain_smem = sol_mv_smem_bytes(&v);
    v.rmsnorm = 1;
    sol_mv_kernel_expr(&v, buf, sizeof buf);
    assert_string_equal(buf, "sol_matvec_rmsnorm<(sol_dtype)13, 2, 128, 16, 2, 8>");
    sol_mv_label(&v, buf, sizeof buf);
    assert_string_equal(buf, "q4_k r2 t128 v16 u2 k1 m8 norm");
    sol_mv_sum_expr(&v, buf, sizeof buf);
    assert_string_equal(buf, "");
    assert_int_equal(sol_mv_smem_bytes(&v), plain_smem + 8 * kSolRmsWarps * 8);
    assert_int_equal(sol_mv_check_params(&v, why, sizeof why), 0);
    v.p.k_split = 2;
    assert_int_equal(sol_mv_check_params(&v, why, sizeof why), 1);
    assert_non_null(strstr(why, "no K split"));
    v.rmsnorm = 0;
    assert_int_equal(sol_mv_check_params(&v, why, sizeof why), 0);
}

// ---- the host model of the kernel's tiling ----

static uint32_t next_random(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

// A matrix of random stored rows whose scales and values are finite.
static std::vector<uint8_t> random_rows(sol_dtype t, const sol_mv_shape &s, uint32_t seed)
{
    std::vector<uint8_t> w(s.rows * s.row_bytes);
    for (auto &b : w)
        b = (uint8_t)next_random(&seed);
    int block = sol_cuda_block_bytes(t);
    for (size_t at = 0; at + block <= w.size(); at += block) {
        uint8_t *b = &w[at];
        uint16_t half = (uint16_t)(0x2c00 | (next_random(&seed) & 0x3ff)); // 0.0625 .. 0.125
        switch (t) {
        case SOL_DT_F32: {
            float f = (float)(next_random(&seed) % 2001) / 1000.0f - 1.0f; // -1 .. 1
            memcpy(b, &f, 4);
            break;
        }
        case SOL_DT_F16:
            half |= (uint16_t)(next_random(&seed) & 0x8000);
            memcpy(b, &half, 2);
            break;
        case SOL_DT_BF16: // exponent 126 or 127: 0.5 .. 2
            b[1] = (uint8_t)(0x3f | (next_random(&seed) & 0x80));
            break;
        case SOL_DT_Q4_1:
        case SOL_DT_Q4_K: // d, then m or dmin
            memcpy(b, &half, 2);
            memcpy(b + 2, &half, 2);
            break;
        case SOL_DT_Q6_K: // d last
            memcpy(b + 208, &half, 2);
            break;
        default: // Q8_0, Q4_0: d first
            memcpy(b, &half, 2);
            break;
        }
    }
    return w;
}

// What the kernel computes, walked the way it walks: per block and K
// slice, each tile staged by every thread (sol_mv_stage) into a buffer
// that starts as 0xff bytes (NaN scales: a byte left unstaged shows), each
// thread's tile products (sol_mv_tile_dot), then each row's threads summed
// and the slices added. y is m x rows.
template <sol_dtype T, int TPR, int UNROLL, int M, int VEC>
static void host_model(const sol_mv_params &p, const sol_mv_shape &s, const uint8_t *w, const float *x, int m,
                       float *y)
{
    const int rpb = p.rows_per_block, threads = rpb * TPR, tile_elems = sol_mv_tile_elems(TPR, UNROLL);
    const int tile_bytes = (int)sol_mv_bytes_of(T, tile_elems);
    const int64_t slice = s.cols / p.k_split;
    std::vector<uint8_t> tile((size_t)rpb * tile_bytes);
    std::vector<float> acc((size_t)threads * M);
    std::fill(y, y + (size_t)m * s.rows, 0.0f);
    for (int64_t row0 = 0; row0 < s.rows; row0 += rpb) {
        int rows_here = (int)std::min<int64_t>(rpb, s.rows - row0);
        for (int sy = 0; sy < p.k_split; sy++) {
            const uint8_t *src = w + row0 * s.row_bytes + sy * (s.row_bytes / p.k_split);
            std::fill(acc.begin(), acc.end(), 0.0f);
            for (int64_t e = 0; e < slice; e += tile_elems) {
                int elems = (int)std::min<int64_t>(tile_elems, slice - e);
                // the device's vector loads: every row's tile VEC-aligned, x's 32-byte aligned
                size_t offset = (size_t)(src + sol_mv_bytes_of(T, e) - w);
                assert_true(offset % VEC == 0 && s.row_bytes % VEC == 0 && tile_bytes % VEC == 0);
                assert_true((sy * slice + e) % 8 == 0 && s.cols % 8 == 0);
                std::fill(tile.begin(), tile.end(), 0xff);
                for (int t = 0; t < threads; t++)
                    sol_mv_stage<VEC>(tile.data(), tile_bytes, src + sol_mv_bytes_of(T, e), s.row_bytes, rows_here,
                                      (int)sol_mv_bytes_of(T, elems), t, threads);
                for (int t = 0; t < threads; t++)
                    if (t / TPR < rows_here)
                        sol_mv_tile_dot<T, TPR, UNROLL, M>(tile.data() + t / TPR * tile_bytes, t % TPR, elems / 8,
                                                          x + sy * slice + e, s.cols, m, &acc[(size_t)t * M]);
            }
            for (int t = 0; t < rows_here * TPR; t++)
                for (int i = 0; i < m; i++)
                    y[i * s.rows + row0 + t / TPR] += acc[(size_t)t * M + i];
        }
    }
}

// max over rows and inputs of |model - exact| / sum |w x|, or -1 when a
// weight or the model is not finite
static double model_error(const std::vector<float> &y, const std::vector<uint8_t> &w, sol_dtype t,
                          const sol_mv_shape &s, const std::vector<float> &x, int m)
{
    double worst = 0;
    for (int64_t r = 0; r < s.rows; r++)
        for (int i = 0; i < m; i++) {
            double exact = 0, scale = 1e-30;
            for (int64_t g = 0; g < s.cols / 8; g++) {
                float wv[8];
                sol_dq8(t, &w[r * s.row_bytes], g, wv);
                for (int j = 0; j < 8; j++) {
                    exact += (double)wv[j] * x[i * s.cols + 8 * g + j];
                    scale += fabs((double)wv[j] * x[i * s.cols + 8 * g + j]);
                }
            }
            double got = y[i * s.rows + r];
            if (!std::isfinite(got) || !std::isfinite(exact))
                return -1;
            worst = std::max(worst, fabs(got - exact) / scale);
        }
    return worst;
}

struct model_case {
    sol_mv_variant v;
    void (*run)(const sol_mv_params &, const sol_mv_shape &, const uint8_t *, const float *, int, float *);
};

#define MODEL(t, rpb, tpr, vec, unroll, ks, mi) \
    {variant(t, rpb, tpr, vec, unroll, ks, mi), host_model<t, tpr, unroll, mi, vec>}

static void test_host_model(void **state)
{
    (void)state;
    const model_case cases[] = {
        MODEL(SOL_DT_F32, 4, 32, 16, 2, 1, 1),  MODEL(SOL_DT_F16, 2, 64, 16, 1, 2, 3),
        MODEL(SOL_DT_BF16, 8, 4, 8, 4, 1, 8),   MODEL(SOL_DT_Q8_0, 4, 32, 2, 2, 1, 8),
        MODEL(SOL_DT_Q8_0, 1, 32, 16, 1, 3, 2), MODEL(SOL_DT_Q4_0, 16, 8, 2, 4, 2, 1),
        MODEL(SOL_DT_Q4_1, 4, 32, 4, 2, 1, 1),  MODEL(SOL_DT_Q4_1, 4, 16, 8, 2, 1, 4),
        MODEL(SOL_DT_Q4_K, 4, 32, 16, 2, 1, 1), MODEL(SOL_DT_Q4_K, 2, 128, 16, 2, 3, 2),
        MODEL(SOL_DT_Q6_K, 4, 32, 2, 2, 1, 1),  MODEL(SOL_DT_Q6_K, 1, 256, 2, 1, 2, 5),
    };
    const int64_t all_rows[] = {1, 5, 67}, all_cols[] = {8, 32, 96, 256, 576, 1536, 2304};
    int runs = 0;
    for (const model_case &c : cases) {
        int runs_here = 0;
        for (int64_t rows : all_rows)
            for (int64_t cols : all_cols) {
                sol_mv_shape s = {rows, cols, (size_t)sol_mv_bytes_of(c.v.type, cols)};
                if (cols % sol_cuda_block_elems(c.v.type) || sol_mv_check_shape(&c.v, &s, nullptr, 0))
                    continue;
                std::vector<uint8_t> w = random_rows(c.v.type, s, (uint32_t)(rows * 7919 + cols));
                for (int m : {1, c.v.p.max_inputs}) {
                    std::vector<float> x((size_t)m * cols), y((size_t)m * rows);
                    uint32_t seed = (uint32_t)(cols + m);
                    for (float &f : x)
                        f = (float)(next_random(&seed) % 2001) / 1000.0f - 1.0f;
                    c.run(c.v.p, s, w.data(), x.data(), m, y.data());
                    double err = model_error(y, w, c.v.type, s, x, m);
                    char label[64];
                    sol_mv_label(&c.v, label, sizeof label);
                    if (err < 0 || err > 1e-5)
                        fail_msg("%s on %lld x %lld, m %d: relative error %g", label, (long long)rows,
                                 (long long)cols, m, err);
                    runs_here++;
                }
            }
        assert_true(runs_here >= 2); // every case ran on some shapes
        runs += runs_here;
    }
    printf("host model: %d (variant, shape, m) runs agree with the exact products\n", runs);
}

// ---- ptxas's log ----

static void test_parse_ptxas(void **state)
{
    (void)state;
    const char *log = "ptxas info    : 0 bytes gmem\n"
                      "ptxas info    : Compiling entry function '_Z3fooPf' for 'sm_90'\n"
                      "ptxas info    : Function properties for _Z3fooPf\n"
                      "ptxas         .     16 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads\n"
                      "ptxas info    : Used 255 registers, used 1 barriers, 2048 bytes smem, 400 bytes cmem[0]\n"
                      "ptxas info    : Compiling entry function '_Z3barv' for 'sm_90'\n"
                      "ptxas info    : Function properties for _Z3barv\n"
                      "ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n"
                      "ptxas info    : Used 8 registers, used 0 barriers, 352 bytes cmem[0]\n";
    sol_mv_resources r;
    assert_int_equal(sol_mv_parse_ptxas(log, "_Z3fooPf", &r), 0);
    assert_int_equal(r.registers, 255);
    assert_int_equal(r.stack_bytes, 16);
    assert_int_equal(r.spill_store_bytes, 8);
    assert_int_equal(r.spill_load_bytes, 12);
    assert_int_equal(r.smem_bytes, 2048);
    assert_int_equal(sol_mv_parse_ptxas(log, "_Z3barv", &r), 0);
    assert_int_equal(r.registers, 8);
    assert_int_equal(r.spill_store_bytes, 0);
    assert_int_equal(r.smem_bytes, 0); // not printed when 0
    assert_int_equal(sol_mv_parse_ptxas(log, "_Z3foo", &r), -1); // a prefix names no entry
    assert_int_equal(sol_mv_parse_ptxas(log, "_Z3bazv", &r), -1);
    const char *cut = "ptxas info    : Compiling entry function '_Z3fooPf' for 'sm_80'\n"
                      "ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n";
    assert_int_equal(sol_mv_parse_ptxas(cut, "_Z3fooPf", &r), -1); // no registers line
}

// ---- NVRTC ----

static void print_row(const sol_mv_variant *v, const sol_mv_image *img, const char *verdict)
{
    char label[64];
    sol_mv_label(v, label, sizeof label);
    printf("  %-28s sm_%d %4d %6d %6d %7.1f  %s\n", label, img->sm, img->res.registers,
           img->res.spill_store_bytes + img->res.spill_load_bytes, img->res.smem_bytes, img->compile_ms, verdict);
}

static void test_compile(void **state)
{
    (void)state;
    std::vector<sol_mv_variant> list;
    for (int t : {SOL_DT_F32, SOL_DT_F16, SOL_DT_BF16, SOL_DT_Q8_0, SOL_DT_Q4_0, SOL_DT_Q4_1, SOL_DT_Q4_K, SOL_DT_Q6_K})
        for (int m : {1, 8})
            list.push_back(sol_mv_variant{(sol_dtype)t, sol_mv_default((sol_dtype)t, m)});
    list.push_back(variant(SOL_DT_F16, 2, 64, 16, 1, 2, 3));   // two warps a row, split K
    list.push_back(variant(SOL_DT_BF16, 8, 4, 8, 4, 1, 8));    // 4 threads a row
    list.push_back(variant(SOL_DT_Q4_0, 16, 8, 2, 4, 2, 1));   // 8 threads a row, split K
    list.push_back(variant(SOL_DT_Q4_K, 2, 128, 16, 2, 3, 2)); // four warps a row
    list.push_back(variant(SOL_DT_Q6_K, 1, 256, 2, 1, 2, 5));
    sol_mv_compiler c = {nullptr, 0, 0};
    printf("  %-28s %5s %4s %6s %6s %7s\n", "variant", "arch", "regs", "spills", "smem", "ms");
    for (int sm : {80, 90})
        for (const sol_mv_variant &v : list) {
            sol_mv_image img;
            char notice[512];
            sol_err err = {0, ""};
            int rc = sol_mv_build(&c, &v, sm, &img, notice, sizeof notice, &err);
            print_row(&v, &img, rc ? err.msg : "ok");
            if (rc != SOL_MV_OK)
                fail_msg("sm_%d: %s", sm, err.msg);
            assert_true(img.res.registers > 0 && img.res.registers <= 255);
            assert_int_equal(img.res.spill_store_bytes + img.res.spill_load_bytes, 0);
            assert_int_equal(img.res.smem_bytes, sol_mv_smem_bytes(&v)); // the tiles are what ptxas allots
            assert_true(img.cubin.size() > 4 && memcmp(img.cubin.data(), "\x7f" "ELF", 4) == 0);
            assert_true(strncmp(img.kernel, "_Z10sol_matvec", 14) == 0);
            assert_int_equal(img.sum[0] != 0, v.p.k_split > 1);
        }
    assert_int_equal(c.nvrtc_compiles, 2 * (int)list.size());
    assert_int_equal(c.cache_hits, 0);
}

// 16 rows x 64 threads (1024) with 8 inputs and 8 groups unrolled: ptxas
// takes more registers than 1024 threads can have (sm_90: 80 x 1024).
static void test_huge_rejected(void **state)
{
    (void)state;
    sol_mv_variant v = variant(SOL_DT_Q4_K, 16, 64, 16, 8, 1, 8);
    sol_mv_compiler c = {nullptr, 0, 0};
    for (int sm : {80, 90}) {
        sol_mv_image img;
        char notice[512];
        sol_err err = {0, ""};
        int rc = sol_mv_build(&c, &v, sm, &img, notice, sizeof notice, &err);
        print_row(&v, &img, err.msg);
        assert_int_equal(rc, SOL_MV_REJECTED);
        assert_true(strstr(err.msg, "registers x 1024 threads") || strstr(err.msg, "spills"));
        assert_true(img.res.registers * 1024 > SOL_MV_REGS_PER_BLOCK || img.res.spill_store_bytes > 0);
    }
    // invalid parameters never reach NVRTC
    v.p.threads_per_row = 24;
    sol_mv_image img;
    char notice[512];
    sol_err err = {0, ""};
    assert_int_equal(sol_mv_build(&c, &v, 90, &img, notice, sizeof notice, &err), SOL_MV_INVALID);
    assert_non_null(strstr(err.msg, "threads_per_row 24"));
    assert_int_equal(c.nvrtc_compiles, 2);
}

// The engine's built-in fused variant compiles for sm_90 without spilling,
// to an image of its own (another key than the plain matvec's).
static void test_fused_compile(void **state)
{
    (void)state;
    sol_mv_variant plain = {SOL_DT_Q4_K, sol_mv_default(SOL_DT_Q4_K, 8)}, fused = plain;
    fused.rmsnorm = 1;
    sol_mv_compiler c = {nullptr, 0, 0};
    sol_mv_image a, b;
    char notice[512];
    sol_err err = {0, ""};
    assert_int_equal(sol_mv_build(&c, &fused, 90, &a, notice, sizeof notice, &err), SOL_MV_OK);
    assert_int_equal(a.res.spill_store_bytes + a.res.spill_load_bytes, 0);
    assert_non_null(strstr(a.kernel, "sol_matvec_rmsnorm"));
    assert_string_equal(a.sum, "");
    printf("  fused q4_k m8 sm_90: %d registers, %d bytes of shared memory\n", a.res.registers, a.res.smem_bytes);
    assert_int_equal(sol_mv_build(&c, &plain, 90, &b, notice, sizeof notice, &err), SOL_MV_OK);
    assert_true(a.key != b.key);
}

// NVRTC's own failure comes back as one line with its log's error.
static void test_nvrtc_failure(void **state)
{
    (void)state;
    sol_mv_variant v = {SOL_DT_F16, sol_mv_default(SOL_DT_F16, 1)};
    sol_mv_compiler c = {nullptr, 0, 0};
    sol_mv_image img;
    char notice[512];
    sol_err err = {0, ""};
    assert_int_equal(sol_mv_build(&c, &v, 12, &img, notice, sizeof notice, &err), SOL_MV_FAILED); // no sm_12
    assert_int_equal(err.code, SOL_ERR_RUNTIME);
    printf("  sm_12: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "NVRTC sol_matvec<(sol_dtype)1, 4, 32, 16, 2, 1, 1>: "));
    assert_null(strchr(err.msg, '\n'));
}

// ---- the cache ----

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int files_in(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != nullptr;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static std::string read_all(const char *path)
{
    std::string s;
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    int ch;
    while ((ch = fgetc(fp)) != EOF)
        s.push_back((char)ch);
    fclose(fp);
    return s;
}

static void write_all(const char *path, const std::string &s)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(s.data(), 1, s.size(), fp), s.size());
    fclose(fp);
}

// Builds v for sm into img; returns the notice.
static std::string build(sol_mv_compiler *c, const sol_mv_variant &v, int sm, sol_mv_image *img)
{
    char notice[512];
    sol_err err = {0, ""};
    if (sol_mv_build(c, &v, sm, img, notice, sizeof notice, &err) != SOL_MV_OK)
        fail_msg("%s", err.msg);
    return notice;
}

// The file damaged by `damage` is reported (with `reason`), compiled again
// to the same image, and rewritten sound: the next build hits it.
static void expect_rebuilt(sol_mv_compiler *c, const sol_mv_variant &v, const sol_mv_image &good, const char *path,
                           const std::string &damaged, const char *reason)
{
    write_all(path, damaged);
    int compiles = c->nvrtc_compiles, hits = c->cache_hits;
    sol_mv_image img;
    std::string notice = build(c, v, good.sm, &img);
    if (!strstr(notice.c_str(), reason) || !strstr(notice.c_str(), path))
        fail_msg("expected a notice naming %s and \"%s\", got \"%s\"", path, reason, notice.c_str());
    assert_int_equal(c->nvrtc_compiles, compiles + 1);
    assert_false(img.from_cache);
    assert_true(img.cubin == good.cubin);
    assert_int_equal(build(c, v, good.sm, &img).size(), 0);
    assert_int_equal(c->cache_hits, hits + 1);
    assert_true(img.from_cache && img.cubin == good.cubin);
}

static void test_cache(void **state)
{
    (void)state;
    char root[] = "/tmp/sol-mv-test-XXXXXX";
    assert_non_null(mkdtemp(root));
    std::string dir = std::string(root) + "/cache/sol"; // made on the first store
    sol_mv_compiler c = {dir.c_str(), 0, 0};
    sol_mv_variant v = {SOL_DT_Q4_1, sol_mv_default(SOL_DT_Q4_1, 1)};
    sol_mv_image first, again, other;
    assert_int_equal(build(&c, v, 90, &first).size(), 0);
    assert_int_equal(c.nvrtc_compiles, 1);
    assert_false(first.from_cache);
    // the second build reads the file: no NVRTC
    assert_int_equal(build(&c, v, 90, &again).size(), 0);
    assert_int_equal(c.nvrtc_compiles, 1);
    assert_int_equal(c.cache_hits, 1);
    assert_true(again.from_cache && again.cubin == first.cubin && again.compile_ms == 0);
    assert_string_equal(again.kernel, first.kernel);
    assert_int_equal(again.res.registers, first.res.registers);
    assert_int_equal(again.res.smem_bytes, first.res.smem_bytes);
    // another architecture is another key
    build(&c, v, 80, &other);
    assert_int_equal(c.nvrtc_compiles, 2);
    assert_true(other.key != first.key);

    char path[4096], other_path[4096];
    sol_mv_cache_path(dir.c_str(), first.key, path, sizeof path);
    sol_mv_cache_path(dir.c_str(), other.key, other_path, sizeof other_path);
    const std::string sound = read_all(path);
    std::string bad = sound;
    bad[bad.size() - 1] ^= 1; // one bit of the image
    expect_rebuilt(&c, v, first, path, bad, "checksum mismatch");
    bad = sound;
    bad[40] ^= 1; // one bit of the header's figures
    expect_rebuilt(&c, v, first, path, bad, "checksum mismatch");
    bad = sound;
    bad[0] = 'X';
    expect_rebuilt(&c, v, first, path, bad, "bad magic");
    expect_rebuilt(&c, v, first, path, sound.substr(0, 100), "shorter than a header");
    expect_rebuilt(&c, v, first, path, sound.substr(0, sound.size() - 7), "size does not match");
    expect_rebuilt(&c, v, first, path, read_all(other_path), "another key's file");
    expect_rebuilt(&c, v, first, path, "", "shorter than a header");
    assert_int_equal(files_in(dir.c_str()), 2); // the two images, no temporary files

    // a cache that cannot be written costs the cache only
    std::string blocked = std::string(root) + "/file";
    write_all(blocked.c_str(), "not a directory");
    sol_mv_compiler nowhere = {blocked.c_str(), 0, 0};
    std::string notice = build(&nowhere, v, 90, &again);
    assert_non_null(strstr(notice.c_str(), "image not cached"));
    assert_true(again.cubin == first.cubin);
    assert_int_equal(nowhere.nvrtc_compiles, 1);
    assert_int_equal(nftw(root, remove_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_rules), cmocka_unit_test(test_shape_rules),
        cmocka_unit_test(test_geometry),     cmocka_unit_test(test_host_model),
        cmocka_unit_test(test_parse_ptxas),  cmocka_unit_test(test_compile),
        cmocka_unit_test(test_huge_rejected), cmocka_unit_test(test_nvrtc_failure),
        cmocka_unit_test(test_cache),        cmocka_unit_test(test_fused_names),
        cmocka_unit_test(test_fused_compile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
