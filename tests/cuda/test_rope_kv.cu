// RoPE and the KV write of the CUDA backend (kernels/cuda/rope_kv.cuh) run
// on the host, where they need no GPU: every thread index each launcher in
// kernels/cuda/rope_kv.cu creates runs the same per-thread function its
// kernel runs, in forward, reverse and shuffled order (threads that share
// no element give one answer in any order; reverse order runs a pair's
// second element before its first, so a thread storing a K element it did
// not rotate would store it unrotated). Checked: the fused rope_kv_write
// against rope + rope + kv_write bit for bit; the rotation against the CPU
// backend's expression (bit for bit) and a float64 formula; every cache
// element of the step's rows stored exactly once, inside its sequence's
// part of the cache, with the value the CPU's conversion gives.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

// Every cache store (rope_kv.cuh sol_kv_put) is seen here while recording.
static std::vector<std::pair<const void *, size_t>> g_puts;
static bool g_recording;
[[maybe_unused]] static void note_put(const void *array, size_t at)
{
    if (g_recording)
        g_puts.emplace_back(array, at);
}
#define SOL_KV_PUT_HOOK(array, at) note_put(array, at)

#include "kernels/cpu/half.h"
#include "kernels/cuda/rope_kv.cuh"

// One step's shapes: q of n_heads heads, K and V of n_kv_heads, each of
// head_dim; seqs sequences of rows_per_seq rows from position pos; the
// cache's sequences stride_pad bytes further apart than capacity rows.
struct kv_case {
    int n_heads, n_kv_heads, head_dim;
    int dims, offset, neox;
    sol_dtype type;
    int64_t capacity, sinks, pos;
    int rows_per_seq, seqs;
    size_t stride_pad;
};

static int rows_of(const kv_case &k) { return k.rows_per_seq * k.seqs; }
static int64_t width_of(const kv_case &k) { return (int64_t)k.n_kv_heads * k.head_dim; }
static size_t elem_size(const kv_case &k) { return k.type == SOL_DT_F16 ? 2 : 4; }
static size_t row_bytes(const kv_case &k) { return (size_t)width_of(k) * elem_size(k); }
static size_t stride_of(const kv_case &k) { return (size_t)k.capacity * row_bytes(k) + k.stride_pad; }

// A step's inputs: q, k, v and the frequencies (RoPE scaling and
// rope_freqs only change these values, so some are scaled here).
struct inputs {
    std::vector<float> q, k, v, inv_freq;
};

static inputs make_inputs(const kv_case &c, unsigned seed)
{
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(-4.0f, 4.0f);
    inputs in;
    in.q.resize((size_t)rows_of(c) * c.n_heads * c.head_dim);
    in.k.resize((size_t)rows_of(c) * width_of(c));
    in.v.resize(in.k.size());
    for (auto *x : {&in.q, &in.k, &in.v})
        for (float &f : *x)
            f = u(gen);
    for (int i = 0; i < c.dims / 2; i++)
        in.inv_freq.push_back((float)pow(10000.0, -2.0 * i / c.dims) * (i % 3 == 2 ? 0.125f : 1.0f));
    return in;
}

// The op's outputs: q and k (rotated in place) and the cache's two arrays,
// which start as a sentinel pattern.
struct outputs {
    std::vector<float> q, k;
    std::vector<uint8_t> ck, cv;
};

static const uint8_t kSentinel = 0xa5;

static outputs fresh_outputs(const kv_case &c, const inputs &in)
{
    size_t bytes = stride_of(c) * (size_t)c.seqs;
    return {in.q, in.k, std::vector<uint8_t>(bytes, kSentinel), std::vector<uint8_t>(bytes, kSentinel)};
}

static sol_kv_cache_layer cache_of(const kv_case &c, outputs &o)
{
    sol_kv_cache_layer cache = {};
    cache.type = c.type;
    cache.k = o.ck.data();
    cache.v = o.cv.data();
    cache.capacity = c.capacity;
    cache.width = width_of(c);
    cache.sinks = c.sinks;
    cache.seq_stride = stride_of(c);
    return cache;
}

static sol_rope rope_of(const kv_case &c, const inputs &in) { return {c.dims, c.offset, c.neox, in.inv_freq.data()}; }
static sol_step_rows step_of(const kv_case &c) { return {c.pos, rows_of(c), c.seqs}; }

enum order { FORWARD, REVERSE, SHUFFLED };

// A launch modelled: body(t) for every thread index t < n, in `o`'s order.
template <typename F> static void run_grid(int64_t n, order o, F body)
{
    std::vector<int64_t> ts((size_t)n);
    std::iota(ts.begin(), ts.end(), 0);
    if (o == REVERSE)
        std::reverse(ts.begin(), ts.end());
    if (o == SHUFFLED)
        std::shuffle(ts.begin(), ts.end(), std::mt19937(7));
    for (int64_t t : ts)
        body(t);
}

// rope(q), rope(k), kv_write: the unfused sequence, three grids.
static outputs run_unfused(const kv_case &c, const inputs &in, order o)
{
    outputs out = fresh_outputs(c, in);
    sol_kv_cache_layer cache = cache_of(c, out);
    sol_rope g = rope_of(c, in);
    sol_step_rows st = step_of(c);
    run_grid(sol_rope_threads(st.rows, c.n_heads, g), o,
             [&](int64_t t) { sol_rope_thread(t, out.q.data(), c.n_heads, c.head_dim, st, g); });
    run_grid(sol_rope_threads(st.rows, c.n_kv_heads, g), o,
             [&](int64_t t) { sol_rope_thread(t, out.k.data(), c.n_kv_heads, c.head_dim, st, g); });
    run_grid(sol_kv_write_threads(st.rows, cache), o,
             [&](int64_t t) { sol_kv_write_thread(t, out.k.data(), in.v.data(), st, cache); });
    return out;
}

// rope_kv_write: one grid.
static outputs run_fused(const kv_case &c, const inputs &in, order o)
{
    outputs out = fresh_outputs(c, in);
    sol_kv_cache_layer cache = cache_of(c, out);
    sol_rope g = rope_of(c, in);
    sol_step_rows st = step_of(c);
    run_grid(sol_rope_kv_write_threads(st.rows, c.n_heads, g, cache), o, [&](int64_t t) {
        sol_rope_kv_write_thread(t, out.q.data(), out.k.data(), in.v.data(), c.n_heads, c.head_dim, st, g, cache);
    });
    return out;
}

template <typename T> static bool same_bytes(const std::vector<T> &a, const std::vector<T> &b)
{
    return a.size() == b.size() && memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// Every combination of the conventions, partial rotation, cache type, ring
// with sinks and sequences the fused kernel must agree on.
static std::vector<kv_case> all_cases()
{
    struct rotary { int head_dim, dims, offset; };
    const rotary rotaries[] = {
        {8, 8, 0},  // the whole head
        {12, 6, 4}, // partial, after an offset (kept elements on both sides)
        {8, 5, 2},  // odd dims: its last element is kept
    };
    struct layout { int64_t capacity, sinks, pos; int rows_per_seq; };
    const layout layouts[] = {
        {16, 0, 5, 1},  // a decode step, a full cache
        {7, 2, 10, 3},  // a ring of 5 past 2 sinks, the rows wrapping round it
        {7, 2, 0, 3},   // the first rows landing in the sinks
    };
    std::vector<kv_case> cases;
    for (int neox = 0; neox <= 1; neox++)
        for (sol_dtype type : {SOL_DT_F16, SOL_DT_F32})
            for (int seqs : {1, 3})
                for (const rotary &r : rotaries)
                    for (const layout &l : layouts)
                        cases.push_back({4, 2, r.head_dim, r.dims, r.offset, neox, type, l.capacity, l.sinks, l.pos,
                                         l.rows_per_seq, seqs, (size_t)(seqs > 1 ? 36 : 0)});
    return cases;
}

static void describe(const kv_case &c, const char *what)
{
    fail_msg("%s: neox %d, %s cache, head_dim %d dims %d offset %d, capacity %lld sinks %lld pos %lld, %d x %d rows",
             what, c.neox, c.type == SOL_DT_F16 ? "f16" : "f32", c.head_dim, c.dims, c.offset, (long long)c.capacity,
             (long long)c.sinks, (long long)c.pos, c.seqs, c.rows_per_seq);
}

// (a) rope_kv_write == rope, rope, kv_write: q, k and both cache arrays.
static void test_fused_matches_unfused(void **state)
{
    (void)state;
    unsigned seed = 1;
    for (const kv_case &c : all_cases()) {
        inputs in = make_inputs(c, seed++);
        outputs want = run_unfused(c, in, FORWARD);
        for (order o : {FORWARD, REVERSE, SHUFFLED}) {
            outputs got = run_fused(c, in, o);
            if (!same_bytes(got.q, want.q) || !same_bytes(got.k, want.k) || !same_bytes(got.ck, want.ck) ||
                !same_bytes(got.cv, want.cv))
                describe(c, o == FORWARD ? "fused != unfused" : o == REVERSE ? "fused (reversed) != unfused"
                                                                              : "fused (shuffled) != unfused");
        }
        // the unfused kernels do not depend on their threads' order either
        if (!same_bytes(run_unfused(c, in, REVERSE).ck, want.ck))
            describe(c, "unfused depends on thread order");
    }
}

// Every rotated element of a head is one pair's first or second, once; the
// role and the pair's dims agree.
static void test_pair_roles(void **state)
{
    (void)state;
    const float f[1] = {0};
    for (int neox = 0; neox <= 1; neox++)
        for (int dims = 0; dims <= 9; dims++)
            for (int offset = 0; offset <= 3; offset++) {
                sol_rope g = {dims, offset, neox, f};
                int head_dim = offset + dims + 2, rotated = 0;
                for (int d = 0; d < head_dim; d++) {
                    int pair = -1, a, z;
                    sol_rope_role role = sol_rope_role_of(g, d, &pair);
                    if (role == SOL_ROPE_KEPT)
                        continue;
                    rotated++;
                    assert_true(pair >= 0 && pair < dims / 2);
                    sol_rope_pair_dims(g, pair, &a, &z);
                    assert_int_equal(role == SOL_ROPE_FIRST ? a : z, d);
                    assert_true(a < z); // the first runs before the second in forward order
                }
                assert_int_equal(rotated, dims / 2 * 2);
            }
}

// kernels/cpu/cpu_backend.c rope_row's arithmetic, as written there.
static void cpu_rotate(float *head, int i, int64_t pos, const sol_rope &g)
{
    int half = g.dims / 2;
    double angle = (double)pos * g.inv_freq[i];
    float c = (float)cos(angle), s = (float)sin(angle);
    int a = g.neox ? i : 2 * i, z = g.neox ? i + half : 2 * i + 1;
    float x0 = head[g.offset + a], x1 = head[g.offset + z];
    head[g.offset + a] = x0 * c - x1 * s;
    head[g.offset + z] = x0 * s + x1 * c;
}

// (b) The rope grid: each pair as the CPU rotates it (bit for bit) and
// within float rounding of the rotation in float64, at the row's own
// position (sequence-major rows: pos + r % rows_per_seq); the rest of the
// head untouched.
static void test_rotation(void **state)
{
    (void)state;
    for (int neox = 0; neox <= 1; neox++)
        for (int seqs : {1, 3}) {
            kv_case c = {3, 1, 16, 10, 4, neox, SOL_DT_F32, 8, 0, 123457, 4, seqs, 0};
            inputs in = make_inputs(c, 99 + neox);
            sol_rope g = rope_of(c, in);
            sol_step_rows st = step_of(c);
            std::vector<float> x = in.q, cpu = in.q;
            run_grid(sol_rope_threads(st.rows, c.n_heads, g), SHUFFLED,
                     [&](int64_t t) { sol_rope_thread(t, x.data(), c.n_heads, c.head_dim, st, g); });
            for (int r = 0; r < st.rows; r++)
                for (int h = 0; h < c.n_heads; h++) {
                    size_t at = ((size_t)r * c.n_heads + h) * c.head_dim;
                    const float *before = &in.q[at], *after = &x[at];
                    int64_t pos = c.pos + r % c.rows_per_seq;
                    for (int i = 0; i < c.dims / 2; i++) {
                        cpu_rotate(&cpu[at], i, pos, g);
                        int a, z;
                        sol_rope_pair_dims(g, i, &a, &z);
                        double angle = (double)pos * g.inv_freq[i], x0 = before[a], x1 = before[z];
                        double y0 = x0 * cos(angle) - x1 * sin(angle), y1 = x0 * sin(angle) + x1 * cos(angle);
                        double tol = 4e-7 * (fabs(x0) + fabs(x1));
                        if (fabs(after[a] - y0) > tol || fabs(after[z] - y1) > tol)
                            fail_msg("row %d head %d pair %d: (%.9g, %.9g), float64 (%.9g, %.9g)", r, h, i, after[a],
                                     after[z], y0, y1);
                    }
                    for (int d = 0; d < c.head_dim; d++) {
                        int pair;
                        if (sol_rope_role_of(g, d, &pair) == SOL_ROPE_KEPT && memcmp(&before[d], &after[d], 4))
                            fail_msg("row %d head %d: element %d is not rotated but changed", r, h, d);
                    }
                }
            assert_true(same_bytes(x, cpu));
        }
}

// The slot of position t, restated from backend.h's rule.
static int64_t slot_of(const kv_case &c, int64_t t)
{
    return t < c.sinks ? t : c.sinks + (t - c.sinks) % (c.capacity - c.sinks);
}

// The value a cache element holds, widened back to float.
static float cache_value(const kv_case &c, const std::vector<uint8_t> &array, size_t at)
{
    if (c.type == SOL_DT_F32) {
        float f;
        memcpy(&f, &array[at], 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, &array[at], 2);
    return sol_f16_to_f32(h);
}

// What the CPU stores for x, widened back to float.
static float stored(const kv_case &c, float x) { return c.type == SOL_DT_F16 ? sol_f16_to_f32(sol_f32_to_f16(x)) : x; }

// One grid's stores against the step: each element of each row's K and V
// exactly once, at its sequence's slot for its position, inside that
// sequence's capacity rows, holding the CPU's conversion of the rotated k
// (want_k) and of v; every other byte keeps the sentinel.
static void check_stores(const kv_case &c, const inputs &in, const std::vector<float> &want_k, const outputs &out)
{
    size_t stride = stride_of(c), es = elem_size(c), used = (size_t)c.capacity * row_bytes(c);
    std::vector<int> k_count(out.ck.size()), v_count(out.cv.size());
    for (auto &p : g_puts) {
        bool is_k = p.first == out.ck.data();
        assert_true(is_k || p.first == out.cv.data());
        assert_true(p.second % es == 0 && p.second + es <= out.ck.size());
        assert_true(p.second % stride + es <= used); // inside its sequence's rows, never the next's
        (is_k ? k_count : v_count)[p.second]++;
    }
    assert_int_equal(g_puts.size(), 2 * (size_t)rows_of(c) * width_of(c));
    std::vector<bool> written(out.ck.size());
    for (int r = 0; r < rows_of(c); r++) {
        int s = r / c.rows_per_seq;
        int64_t pos = c.pos + r % c.rows_per_seq;
        for (int64_t e = 0; e < width_of(c); e++) {
            size_t at = (size_t)s * stride + ((size_t)slot_of(c, pos) * width_of(c) + e) * es;
            size_t i = (size_t)r * width_of(c) + e;
            if (k_count[at] != 1 || v_count[at] != 1)
                describe(c, "a cache element stored other than once");
            if (cache_value(c, out.ck, at) != stored(c, want_k[i]) || cache_value(c, out.cv, at) != stored(c, in.v[i]))
                describe(c, "a cache element holds another value");
            for (size_t b = 0; b < es; b++)
                written[at + b] = true;
        }
    }
    for (size_t b = 0; b < out.ck.size(); b++)
        if (!written[b] && (out.ck[b] != kSentinel || out.cv[b] != kSentinel))
            describe(c, "a byte outside the step's slots changed");
}

// (c) kv_write's grid and the fused grid, recorded store by store.
static void test_cache_stores(void **state)
{
    (void)state;
    unsigned seed = 500;
    for (const kv_case &c : all_cases()) {
        if (c.rows_per_seq > c.capacity - c.sinks)
            continue; // the ring must hold the step's rows (backend.h)
        inputs in = make_inputs(c, seed++);
        // kv_write alone, of k as it is
        outputs out = fresh_outputs(c, in);
        sol_kv_cache_layer cache = cache_of(c, out);
        sol_step_rows st = step_of(c);
        g_puts.clear();
        g_recording = true;
        run_grid(sol_kv_write_threads(st.rows, cache), SHUFFLED,
                 [&](int64_t t) { sol_kv_write_thread(t, in.k.data(), in.v.data(), st, cache); });
        g_recording = false;
        check_stores(c, in, in.k, out);
        // the fused grid stores k rotated: what the unfused rope leaves in k
        std::vector<float> rotated = run_unfused(c, in, FORWARD).k;
        g_puts.clear();
        g_recording = true;
        outputs fused = run_fused(c, in, REVERSE);
        g_recording = false;
        assert_true(same_bytes(fused.k, rotated));
        check_stores(c, in, rotated, fused);
    }
}

// The sequences' parts of the cache are disjoint and in order when the
// stride is capacity rows or more: sequence s's last byte is below s + 1's
// first (the exact-fit stride, and a padded one).
static void test_sequence_offsets(void **state)
{
    (void)state;
    for (sol_dtype type : {SOL_DT_F16, SOL_DT_F32})
        for (size_t pad : {(size_t)0, (size_t)4, (size_t)100}) {
            kv_case c = {4, 2, 8, 8, 0, 0, type, 7, 2, 10, 3, 4, pad};
            inputs in = make_inputs(c, 3);
            outputs out = fresh_outputs(c, in);
            sol_kv_cache_layer cache = cache_of(c, out);
            sol_step_rows st = step_of(c);
            size_t lo[4], hi[4];
            std::fill(lo, lo + 4, SIZE_MAX);
            std::fill(hi, hi + 4, (size_t)0);
            for (int r = 0; r < st.rows; r++)
                for (int64_t e = 0; e < cache.width; e++) {
                    int s = sol_step_seq(st.rows, st.seqs, r);
                    size_t at = sol_kv_elem_at(cache, st, r, e);
                    lo[s] = std::min(lo[s], at);
                    hi[s] = std::max(hi[s], at + elem_size(c));
                }
            for (int s = 0; s < c.seqs; s++) {
                assert_true(lo[s] >= s * cache.seq_stride);
                assert_true(hi[s] <= s * cache.seq_stride + (size_t)c.capacity * row_bytes(c));
                if (s > 0)
                    assert_true(hi[s - 1] <= lo[s]);
            }
        }
}

// The device's f16 store rounds as the CPU's sol_f32_to_f16 does (finite
// values and infinities; NaN payloads are not compared).
static void test_f16_store_matches_cpu(void **state)
{
    (void)state;
    for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 4099) {
        float x = sol_f32_from_bits((uint32_t)bits);
        if (x != x)
            continue;
        __half h = __float2half_rn(x);
        uint16_t got;
        memcpy(&got, &h, 2);
        if (got != sol_f32_to_f16(x))
            fail_msg("f16 of %.9g (0x%08x): 0x%04x, the CPU's 0x%04x", x, (unsigned)bits, got, sol_f32_to_f16(x));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_matches_unfused),
        cmocka_unit_test(test_pair_roles),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_cache_stores),
        cmocka_unit_test(test_sequence_offsets),
        cmocka_unit_test(test_f16_store_matches_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
