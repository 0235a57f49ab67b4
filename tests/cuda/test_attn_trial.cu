// Decode attention's autotuner trials without a GPU (kernels/cuda/
// attn_trial.cu): the data a trial makes (reproducible, f16 caches holding
// exact f16 values); the float64 reference against a naive independent
// computation; the bound (an f32 computation in the kernel's own order
// under it, one with a wrong KV head, a dropped key or a key counted twice
// far over it); at_check's reasons; at_default against the engine's rule;
// and at_trial without a device failing in one line.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attn_trial.h"
#include "kernels/cuda/tune_trial.h"

static sol_cuda_attn_request request(int n_heads, int n_kv_heads, int head_dim, sol_dtype kv, int64_t capacity,
                                     int64_t pos, int rows)
{
    sol_cuda_attn_request r = {n_heads, n_kv_heads, head_dim, kv, capacity, pos, rows, {}, 25, 7, nullptr, 0};
    sol_cuda_attn_default(head_dim, n_heads / n_kv_heads, &r.params);
    return r;
}

// ---- data and reference ----

static void test_data(void **state)
{
    (void)state;
    sol_cuda_attn_request r = request(4, 2, 64, SOL_DT_F16, 128, 37, 3);
    sol_attn_data a, b;
    sol_attn_make_data(&r, &a);
    sol_attn_make_data(&r, &b);
    assert_int_equal(a.q.size(), 3 * 4 * 64);
    assert_int_equal(a.k.size(), 3 * 38 * 2 * 64);
    assert_true(a.q == b.q && a.k == b.k && a.v == b.v);
    assert_true(a.k != a.v);
    for (float x : a.k) // f16 values exactly, in [-1, 1]
        assert_true(__half2float(__float2half_rn(x)) == x && fabsf(x) <= 1.0f);
    r.seed++;
    sol_attn_make_data(&r, &b);
    assert_true(a.k != b.k);
}

// softmax(q . k / sqrt(d)) . v straight from the definition, in long
// double, the KV head of query head h found by counting groups.
static long double naive(const sol_cuda_attn_request &r, const sol_attn_data &d, int row, int h, int dim)
{
    int64_t n = r.pos + 1, width = (int64_t)r.n_kv_heads * r.head_dim;
    int per_kv = r.n_heads / r.n_kv_heads, kvh = 0;
    for (int first = per_kv; first <= h; first += per_kv)
        kvh++;
    std::vector<long double> s((size_t)n);
    long double top = -INFINITY, z = 0, y = 0;
    for (int64_t t = 0; t < n; t++) {
        long double dot = 0;
        for (int i = 0; i < r.head_dim; i++)
            dot += (long double)d.q[((size_t)row * r.n_heads + h) * r.head_dim + i] *
                   d.k[((size_t)row * n + t) * width + kvh * r.head_dim + i];
        s[(size_t)t] = dot / sqrtl((long double)r.head_dim);
        top = std::max(top, s[(size_t)t]);
    }
    for (int64_t t = 0; t < n; t++) {
        long double e = expl(s[(size_t)t] - top);
        z += e;
        y += e * d.v[((size_t)row * n + t) * width + kvh * r.head_dim + dim];
    }
    return y / z;
}

static void test_reference(void **state)
{
    (void)state;
    for (sol_dtype kv : {SOL_DT_F32, SOL_DT_F16}) {
        sol_cuda_attn_request r = request(6, 2, 32, kv, 64, 40, 2);
        sol_attn_data d;
        sol_attn_reference ref;
        sol_attn_make_data(&r, &d);
        sol_attn_reference_of(&r, &d, &ref);
        assert_int_equal(ref.ref.size(), 2 * 6 * 32);
        for (int row = 0; row < 2; row++)
            for (int h = 0; h < 6; h++)
                for (int i = 0; i < 32; i++) {
                    size_t at = ((size_t)row * 6 + h) * 32 + i;
                    double want = (double)naive(r, d, row, h, i);
                    if (fabs(ref.ref[at] - want) > 1e-13)
                        fail_msg("row %d head %d dim %d: %.17g, naively %.17g", row, h, i, ref.ref[at], want);
                    assert_true(ref.mag[at] >= fabs(ref.ref[at]) && ref.mag[at] <= 1.0);
                }
        assert_true(ref.score_max > 0 && ref.score_max <= ref.dot_max && ref.dot_max <= sqrt(32.0));
    }
}

// ---- the bound: the kernel's order in f32 on the host ----

enum fault { HONEST, WRONG_HEAD, DROP_KEY, TWICE_KEY };

// The lane partials and the butterfly of warp_sum, as the kernel adds them.
static float warp_dot(const float *q, const float *k, int head_dim, int dpl)
{
    float lane[32];
    for (int l = 0; l < 32; l++) {
        lane[l] = 0;
        for (int j = 0; j < dpl; j++) {
            int d = l + 32 * j;
            lane[l] += d < head_dim ? q[d] * k[d] : 0.0f;
        }
    }
    for (int o = 16; o > 0; o /= 2) {
        float next[32];
        for (int l = 0; l < 32; l++)
            next[l] = lane[l] + lane[l ^ o];
        memcpy(lane, next, sizeof lane);
    }
    return lane[0];
}

// One (row, head) of variant c in f32: each split's warps take every
// warps-th key with an online softmax, merge in warp order, then the
// splits merge in split order (attention_decode.cuh's order).
static void simulate(const sol_cuda_attn_request &r, const sol_attn_data &d, const sol_cuda_attn_config &c, int row,
                     int h, fault f, float *out)
{
    int hd = r.head_dim, group = r.n_heads / r.n_kv_heads;
    int kvh = f == WRONG_HEAD ? h % r.n_kv_heads : h / group;
    int64_t n = r.pos + 1, width = (int64_t)r.n_kv_heads * hd;
    const float *q = d.q.data() + ((size_t)row * r.n_heads + h) * hd;
    float scale = 1.0f / sqrtf((float)hd);
    int splits = sol_attn_splits_for(r.capacity, c.slots_per_split);
    sol_attn_part total = sol_attn_empty();
    std::vector<float> total_acc(hd, 0.0f), acc((size_t)c.warps * hd);
    for (int sp = 0; sp < splits; sp++) {
        sol_attn_range range = sol_attn_split_range(n, splits, sp);
        std::vector<sol_attn_part> st(c.warps, sol_attn_empty());
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int w = 0; w < c.warps; w++)
            for (int64_t t = range.begin + w; t < range.end; t += c.warps) {
                if (f == DROP_KEY && t == n / 2)
                    continue;
                for (int rep = 0; rep < (f == TWICE_KEY && t == n / 2 ? 2 : 1); rep++) {
                    const float *k = d.k.data() + ((size_t)row * n + t) * width + (size_t)kvh * hd;
                    const float *v = d.v.data() + ((size_t)row * n + t) * width + (size_t)kvh * hd;
                    float rescale, weight;
                    sol_attn_add_score(&st[w], warp_dot(q, k, hd, c.dims_per_lane) * scale, &rescale, &weight);
                    for (int i = 0; i < hd; i++)
                        acc[(size_t)w * hd + i] = acc[(size_t)w * hd + i] * rescale + weight * v[i];
                }
            }
        // the block's merge, dim by dim (every dim's state is the same)
        sol_attn_part merged = sol_attn_empty();
        std::vector<float> a(hd);
        for (int i = 0; i < hd; i++) {
            sol_attn_part m = st[0];
            a[i] = acc[(size_t)i];
            for (int w = 1; w < c.warps; w++)
                sol_attn_merge(&m, &a[i], st[w], &acc[(size_t)w * hd + i], 1);
            merged = m;
        }
        if (splits == 1) { // write_head: the output itself
            for (int i = 0; i < hd; i++)
                out[i] = a[i] / merged.sum;
            return;
        }
        sol_attn_part next = total; // the combine: the splits merged in split order
        for (int i = 0; i < hd; i++) {
            next = total;
            sol_attn_merge(&next, &total_acc[(size_t)i], merged, &a[i], 1);
        }
        total = next;
    }
    for (int i = 0; i < hd; i++)
        out[i] = total_acc[(size_t)i] / total.sum;
}

// max |y - ref| / mag of variant c's f32 computation with fault f, over the
// bound's value: < 1 passes the judge.
static double error_over_bound(const sol_cuda_attn_request &r, const sol_attn_data &d, const sol_attn_reference &ref,
                               const sol_cuda_attn_config &c, fault f)
{
    std::vector<float> y(ref.ref.size());
    for (int row = 0; row < r.rows; row++)
        for (int h = 0; h < r.n_heads; h++)
            simulate(r, d, c, row, h, f, y.data() + ((size_t)row * r.n_heads + h) * r.head_dim);
    int merges = (c.warps - 1) + (sol_attn_splits_for(r.capacity, c.slots_per_split) - 1);
    double bound = sol_attn_f32_bound(r.head_dim, r.pos + 1, ref.dot_max, ref.score_max, merges);
    sol_tune_verdict v = sol_tune_judge(y.data(), ref.ref.data(), ref.mag.data(), (int64_t)y.size(), bound);
    assert_int_equal(v.correct, v.max_error <= bound);
    return v.max_error / bound;
}

static void test_bound(void **state)
{
    (void)state;
    struct trial_case {
        sol_cuda_attn_request r;
        sol_cuda_attn_config c;
    } cases[] = {
        {request(8, 2, 128, SOL_DT_F32, 4096, 4095, 2), {4, 4, 4, 256}}, // the engine's, 16 splits
        {request(8, 2, 128, SOL_DT_F16, 4096, 1000, 2), {4, 4, 8, 1024}},
        {request(8, 4, 64, SOL_DT_F16, 512, 300, 2), {2, 1, 2, 64}},
        {request(8, 1, 256, SOL_DT_F32, 1024, 1023, 1), {8, 8, 1, 2048}}, // one split, one warp: the longest chain
    };
    for (const trial_case &tc : cases) {
        sol_attn_data d;
        sol_attn_reference ref;
        sol_attn_make_data(&tc.r, &d);
        sol_attn_reference_of(&tc.r, &d, &ref);
        double honest = error_over_bound(tc.r, d, ref, tc.c, HONEST);
        double head = error_over_bound(tc.r, d, ref, tc.c, WRONG_HEAD);
        double drop = error_over_bound(tc.r, d, ref, tc.c, DROP_KEY);
        double twice = error_over_bound(tc.r, d, ref, tc.c, TWICE_KEY);
        printf("  hd %d %s %lld keys d%d h%d w%d s%d: error / bound honest %.4f, wrong KV head %.0f, a key dropped "
               "%.2f, a key twice %.2f\n", tc.r.head_dim, tc.r.kv_type == SOL_DT_F16 ? "f16" : "f32",
               (long long)tc.r.pos + 1, tc.c.dims_per_lane, tc.c.heads_per_block, tc.c.warps, tc.c.slots_per_split,
               honest, head, drop, twice);
        assert_true(honest < 0.25); // well under: margin for the GPU's own order and FMAs
        if (tc.r.n_kv_heads > 1 && tc.r.n_heads > tc.r.n_kv_heads)
            assert_true(head > 100);
        if (tc.r.pos < 1100) { // a single key is ~1/n of an output: seen at short contexts
            assert_true(drop > 2);
            assert_true(twice > 2);
        }
    }
}

// ---- at_check, at_default ----

static void refused(sol_cuda_attn_request r, const char *needle)
{
    char why[256] = "";
    assert_int_equal(sol_cuda_attn_check(&r, why, sizeof why), 1);
    if (!strstr(why, needle) || strchr(why, '\n'))
        fail_msg("expected one line with \"%s\", got \"%s\"", needle, why);
    assert_int_equal(sol_cuda_attn_check(&r, nullptr, 0), 1); // why may be NULL
}

static void test_check(void **state)
{
    (void)state;
    sol_cuda_attn_request ok = request(32, 8, 128, SOL_DT_F16, 4096, 100, 4);
    char why[256] = "";
    assert_int_equal(sol_cuda_attn_check(&ok, why, sizeof why), 0);
    sol_cuda_attn_request r = ok;
    r.kv_type = SOL_DT_Q8_0;
    refused(r, "f16 or f32");
    r = ok, r.rows = 9;
    refused(r, "9 rows");
    r = ok, r.rows = 0;
    refused(r, "0 rows");
    r = ok, r.pos = 4096;
    refused(r, "position 4096");
    r = ok, r.pos = -1;
    refused(r, "position -1");
    r = ok, r.capacity = 0;
    refused(r, "0 slots");
    r = ok, r.n_heads = 30;
    refused(r, "not whole groups");
    r = ok, r.head_dim = 512;
    refused(r, "head_dim 512");
    r = ok, r.params.dims_per_lane = 2;
    refused(r, "fewer than head_dim");
    r = ok, r.params.dims_per_lane = 8;
    refused(r, "idle registers");
    r = ok, r.params.heads_per_block = 8; // a group of 4
    refused(r, "needs at most 4");
    r = ok, r.params.warps = 0;
    refused(r, "warps 0");
    r = ok, r.params.slots_per_split = 100;
    refused(r, "slots_per_split 100");
}

static void test_default(void **state)
{
    (void)state;
    for (int hd : {64, 128, 256})
        for (int group : {1, 4, 8, 16}) {
            sol_cuda_attn_config c;
            sol_cuda_attn_default(hd, group, &c);
            // attention.cu: 4 warps, head_dim / 32 dims a lane (2, 4, 8), up
            // to 8 query heads of the group a block, 256 slots a split
            assert_int_equal(c.dims_per_lane, hd / 32);
            assert_int_equal(c.heads_per_block, std::min(group, 8));
            assert_int_equal(c.warps, 4);
            assert_int_equal(c.slots_per_split, 256);
            sol_cuda_attn_request r = request(2 * group, 2, hd, SOL_DT_F16, 8192, 8191, 8);
            char why[256] = "";
            if (sol_cuda_attn_check(&r, why, sizeof why))
                fail_msg("the default for head_dim %d, group %d: %s", hd, group, why);
        }
}

// ---- the trial without a device ----

static void test_trial_without_device(void **state)
{
    (void)state;
    sol_cuda_attn_request r = request(32, 8, 128, SOL_DT_F16, 4096, 4095, 1);
    sol_cuda_mv_result res;
    sol_err err = {0, ""};
    // a refused request is a verdict, device or not
    sol_cuda_attn_request bad = r;
    bad.params.heads_per_block = 8;
    assert_int_equal(sol_cuda_attn_trial(0, &bad, &res, &err), 0);
    assert_int_equal(res.status, SOL_CUDA_TRIAL_INVALID);
    assert_true(strstr(res.why, "needs at most 4") != nullptr);
    assert_string_equal(res.label, "d4 h8 w4 s256");
    // the request's own faults are errors
    bad = r;
    bad.reps = 5;
    assert_int_not_equal(sol_cuda_attn_trial(0, &bad, &res, &err), 0);
    assert_true(strstr(err.msg, "repetitions") != nullptr);
    int driver = 0, count = 0;
    bool gpu = cudaDriverGetVersion(&driver) == cudaSuccess && driver > 0 && cudaGetDeviceCount(&count) == cudaSuccess &&
               count > 0;
    cudaGetLastError();
    if (!gpu) {
        err = sol_err{0, ""};
        assert_int_not_equal(sol_cuda_attn_trial(0, &r, &res, &err), 0);
        if (!strstr(err.msg, "no CUDA device") || strchr(err.msg, '\n'))
            fail_msg("expected one line with \"no CUDA device\", got \"%s\"", err.msg);
        assert_int_equal(res.status, SOL_CUDA_TRIAL_OK);
        assert_true(res.median_s < 0);
    }
    sol_cuda_tune_release(); // mv_release: nothing held, nothing to do
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data),    cmocka_unit_test(test_reference), cmocka_unit_test(test_bound),
        cmocka_unit_test(test_check),   cmocka_unit_test(test_default),
        cmocka_unit_test(test_trial_without_device),
    };
    return cmocka_run_group_tests_name("cuda attention trials", tests, nullptr, nullptr);
}
