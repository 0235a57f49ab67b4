// The device top-k's arithmetic (kernels/cuda/topk.cuh) on the host: the
// keys keep the values' order, and the select run pass by pass as the
// kernel runs it (its histograms, digits and chunked ties) picks exactly
// the k best that a full sort by (value descending, index) picks.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/cuda/topk.cuh"

static void test_keys_keep_the_order(void **state)
{
    (void)state;
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1e6f, 1e6f);
    const float edges[] = {0.0f, -0.0f, 1e-45f, -1e-45f, 1.0f, -1.0f, 3.4e38f, -3.4e38f, INFINITY, -INFINITY};
    std::vector<float> v(edges, edges + 10);
    for (int i = 0; i < 20000; i++)
        v.push_back(i % 3 ? u(rng) : u(rng) * 1e-30f);
    for (size_t i = 0; i < v.size(); i++)
        for (size_t j = i % 97; j < v.size(); j += 97) {
            uint32_t a = sol_topk_key(v[i]), b = sol_topk_key(v[j]);
            if ((v[i] < v[j]) != (a < b) || (v[i] == v[j]) != (a == b))
                fail_msg("%.9g, %.9g: keys %08x, %08x", v[i], v[j], a, b);
        }
    assert_int_equal(sol_topk_key(NAN), 0u); // below every number
    assert_true(sol_topk_key(-INFINITY) > 0u);
}

// topk.cu's kernel, one thread after another: the four histogram passes,
// then the elements above the k-th key (in any order) and its ties, chunk
// by chunk in thread order. Returns the chosen indices.
static std::vector<int64_t> model_select(const std::vector<float> &x, int k, int threads)
{
    int64_t n = (int64_t)x.size();
    uint32_t prefix = 0, mask = 0;
    int remaining = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        unsigned hist[256] = {};
        for (int64_t i = 0; i < n; i++) {
            uint32_t key = sol_topk_key(x[i]);
            if ((key & mask) == prefix)
                hist[(key >> shift) & 0xFFu]++;
        }
        prefix |= (uint32_t)sol_topk_digit(hist, &remaining) << shift;
        mask |= 0xFFu << shift;
    }
    std::vector<int64_t> chosen;
    int tie = 0;
    for (int t = 0; t < threads; t++) {
        int64_t begin, end;
        sol_topk_chunk(n, t, threads, &begin, &end);
        for (int64_t i = begin; i < end; i++) {
            uint32_t key = sol_topk_key(x[i]);
            if (key > prefix || (key == prefix && tie++ < remaining))
                chosen.push_back(i);
        }
    }
    return chosen;
}

// The k best by a full sort (util/topk.h's order: value descending, ties
// by the lower index; -0 == +0).
static std::vector<int64_t> sorted_best(const std::vector<float> &x, int k)
{
    std::vector<int64_t> idx(x.size());
    for (size_t i = 0; i < x.size(); i++)
        idx[i] = (int64_t)i;
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return x[a] > x[b]; });
    idx.resize(k);
    return idx;
}

static void test_select_matches_a_sort(void **state)
{
    (void)state;
    std::mt19937 rng(11);
    const int64_t sizes[] = {1, 7, 1000, 1023, 1025, 49152, 151936};
    const int ks[] = {1, 2, 40, 104, 333, 512};
    int cases = 0;
    for (int64_t n : sizes)
        for (int k : ks) {
            if (k > n)
                continue;
            for (int ties = 0; ties < 2; ties++) {
                std::vector<float> x(n);
                std::uniform_int_distribution<int> coarse(-40, 40); // many equal values
                std::normal_distribution<float> fine(0.0f, 3.0f);
                for (int64_t i = 0; i < n; i++)
                    x[i] = ties ? (float)coarse(rng) / 4.0f : fine(rng);
                if (n > 10) {
                    x[n / 2] = -0.0f; // equal to +0: the index decides
                    x[n / 3] = 0.0f;
                }
                std::vector<int64_t> got = model_select(x, k, 1024), want = sorted_best(x, k);
                std::sort(got.begin(), got.end());
                std::sort(want.begin(), want.end());
                if (got != want)
                    fail_msg("n %lld, k %d, ties %d: the select's %zu indices differ from the sort's", (long long)n, k,
                             ties, got.size());
                cases++;
            }
        }
    assert_true(cases > 60);
}

static void test_chunks_cover_the_row(void **state)
{
    (void)state;
    const int64_t sizes[] = {0, 1, 1023, 1024, 1025, 151936};
    for (int64_t n : sizes) {
        int64_t next = 0;
        for (int t = 0; t < 1024; t++) {
            int64_t begin, end;
            sol_topk_chunk(n, t, 1024, &begin, &end);
            assert_true(begin == next || begin == end);
            assert_true(begin <= end);
            next = end > next ? end : next;
        }
        assert_int_equal(next, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_keep_the_order),
        cmocka_unit_test(test_select_matches_a_sort),
        cmocka_unit_test(test_chunks_cover_the_row),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
