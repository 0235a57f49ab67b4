/* Batched steps (backend.h, ABI 4): a step of three sequences, each with
 * its own region of the cache seq_stride bytes apart, gives bit for bit
 * what three single-sequence steps give: the rotated q and k, the cache
 * rows written (and nothing between the regions), and the attention
 * output. Through rope_kv_write and through rope + kv_write, for decode
 * over a few keys (every sequence's heads in one pool run), decode over a
 * long cache (key ranges split), prefill tiles, a sliding window over a
 * ring with sinks, a soft cap, f32 / f16 / q8_0 caches; and MLA's
 * latent_kv_write. */
#define TEST_RNG_SEED 0xc0ac29b7c97c50ddull
#include "tests/unit/kernel_test.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/cpu/kv_quant.h"
#include "kernels/formats.h"

enum { SEQS = 3, PAD_ROWS = 3 };

static void begin_batch(sol_backend *be, int rows, int64_t pos, int seqs)
{
    sol_err err = {0};
    sol_step_state s = {.pos = pos, .rows = rows, .seqs = seqs};
    if (be->begin_step(be, &s, &err))
        fail_msg("begin_step: %s", err.msg);
}

typedef struct {
    int n_heads, n_kv, dh;
    int64_t pos0, window, sinks, capacity;
    int m; /* rows per sequence */
    sol_dtype type;
    float softcap;
    int fused; /* rope_kv_write, else rope then kv_write */
    int neox;
} shape;

/* A cache array of the three sequences, seq_stride apart (a gap of
 * PAD_ROWS rows between regions, zero), and three separate ones with the
 * same slots: random rows in the cache's type. */
typedef struct {
    size_t row_bytes, stride;
    uint8_t *batched, *single[SEQS];
} cache_copies;

static void cache_init(cache_copies *c, const shape *s, int64_t width)
{
    c->row_bytes = sol_row_bytes(s->type, width);
    c->stride = (size_t)(s->capacity + PAD_ROWS) * c->row_bytes;
    c->batched = calloc(SEQS, c->stride);
    float *row = malloc(sizeof *row * (size_t)width);
    for (int q = 0; q < SEQS; q++) {
        c->single[q] = malloc((size_t)s->capacity * c->row_bytes);
        for (int64_t slot = 0; slot < s->capacity; slot++) {
            for (int64_t i = 0; i < width; i++)
                row[i] = 2 * rng_normal();
            uint8_t *dst = c->single[q] + (size_t)slot * c->row_bytes;
            assert_int_equal(sol_kv_store_row(s->type, row, dst, width), 0);
            memcpy(c->batched + q * c->stride + (size_t)slot * c->row_bytes, dst, c->row_bytes);
        }
    }
    free(row);
}

/* Region q of the batched array equals the single one, and its gap is
 * still zero. */
static void cache_compare(const cache_copies *c, const shape *s, const char *what)
{
    for (int q = 0; q < SEQS; q++) {
        const uint8_t *region = c->batched + q * c->stride;
        if (memcmp(region, c->single[q], (size_t)s->capacity * c->row_bytes))
            fail_msg("%s: sequence %d's cache differs from its own step's", what, q);
        for (size_t i = (size_t)s->capacity * c->row_bytes; i < c->stride; i++)
            if (region[i])
                fail_msg("%s: byte %zu after sequence %d's region written", what, i, q);
    }
}

static void cache_free(cache_copies *c)
{
    free(c->batched);
    for (int q = 0; q < SEQS; q++)
        free(c->single[q]);
}

static void expect_same(const float *a, const float *b, size_t n, const char *what, const char *array)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof *a))
            fail_msg("%s: %s element %zu is %.9g batched, %.9g in its own step", what, array, i, a[i], b[i]);
}

/* The step's writes and attention, on all rows of q, k, v (m rows per
 * sequence, sequence-major) or on one sequence's. */
static void run_layer(sol_backend *be, const shape *s, const sol_rope *rope, float *q, float *k, float *v,
                      sol_kv_cache_layer *cache, float *out)
{
    if (s->fused) {
        be->rope_kv_write(be, q, k, v, s->n_heads, s->dh, rope, cache);
    } else {
        be->rope(be, q, s->n_heads, s->dh, rope);
        be->rope(be, k, s->n_kv, s->dh, rope);
        be->kv_write(be, k, v, cache);
    }
    be->attention(be, q, cache, s->n_heads, s->n_kv, s->dh, s->window, s->softcap, out);
}

static void check(sol_backend *be, const shape *s, const char *what)
{
    int64_t width = (int64_t)s->n_kv * s->dh;
    size_t q_n = (size_t)s->m * s->n_heads * s->dh, kv_n = (size_t)s->m * width;
    float *q = malloc(sizeof *q * SEQS * q_n), *k = malloc(sizeof *k * SEQS * kv_n);
    float *v = malloc(sizeof *v * SEQS * kv_n);
    float *q1 = malloc(sizeof *q1 * SEQS * q_n), *k1 = malloc(sizeof *k1 * SEQS * kv_n);
    float *out = malloc(sizeof *out * SEQS * q_n), *out1 = malloc(sizeof *out1 * SEQS * q_n);
    float inv_freq[64]; /* dh <= 128 */
    for (int i = 0; i < s->dh / 2; i++)
        inv_freq[i] = powf(10000.0f, -2.0f * i / s->dh);
    sol_rope rope = {s->dh, 0, s->neox, inv_freq};
    for (size_t i = 0; i < SEQS * q_n; i++)
        q1[i] = q[i] = rng_normal();
    for (size_t i = 0; i < SEQS * kv_n; i++) {
        k1[i] = k[i] = rng_normal();
        v[i] = rng_normal();
    }
    cache_copies c;
    cache_init(&c, s, width);
    sol_kv_cache_layer batched = {s->type, c.batched, NULL, s->capacity, width, s->sinks, c.stride};
    /* V beside K in the same allocation would hide a stride bug; its own */
    cache_copies cv;
    cache_init(&cv, s, width);
    batched.v = cv.batched;

    begin_batch(be, SEQS * s->m, s->pos0, SEQS);
    run_layer(be, s, &rope, q, k, v, &batched, out);
    for (int seq = 0; seq < SEQS; seq++) {
        sol_kv_cache_layer one = {s->type, c.single[seq], cv.single[seq], s->capacity, width, s->sinks, 0};
        begin_batch(be, s->m, s->pos0, 1);
        run_layer(be, s, &rope, q1 + seq * q_n, k1 + seq * kv_n, v + seq * kv_n, &one, out1 + seq * q_n);
    }
    expect_same(q, q1, SEQS * q_n, what, "rotated q");
    expect_same(k, k1, SEQS * kv_n, what, "rotated k");
    cache_compare(&c, s, what);
    cache_compare(&cv, s, what);
    expect_same(out, out1, SEQS * q_n, what, "attention output");
    cache_free(&c);
    cache_free(&cv);
    free(q), free(k), free(v), free(q1), free(k1), free(out), free(out1);
}

static void test_batched_matches_single(void **state)
{
    (void)state;
    sol_backend *be = cpu_backend(2);
    const struct {
        shape s;
        const char *what;
    } cases[] = {
        {{4, 2, 32, 6, 0, 0, 16, 1, SOL_DT_F32, 0, 1, 1}, "decode, 7 keys, f32"},
        {{4, 2, 32, 6, 0, 0, 16, 1, SOL_DT_F16, 0, 0, 0}, "decode, 7 keys, f16, rope + kv_write"},
        {{4, 1, 32, 150, 0, 0, 160, 1, SOL_DT_F16, 0, 1, 1}, "decode, 151 keys (split), f16"},
        {{4, 2, 32, 150, 0, 0, 160, 1, SOL_DT_Q8_0, 2.0f, 1, 0}, "decode, split, q8_0, soft cap"},
        {{4, 2, 32, 10, 0, 0, 32, 5, SOL_DT_F32, 0, 1, 1}, "prefill 5 rows, f32"},
        {{6, 2, 32, 10, 0, 0, 32, 9, SOL_DT_F16, 1.5f, 0, 1}, "prefill 9 rows, f16, soft cap, rope + kv_write"},
        {{4, 2, 32, 40, 8, 2, 12, 3, SOL_DT_F16, 0, 1, 1}, "window 8 over a ring with 2 sinks"},
        {{4, 2, 32, 40, 8, 2, 10, 1, SOL_DT_Q8_0, 0, 0, 0}, "decode, window, sinks, q8_0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check(be, &cases[i].s, cases[i].what);
    be->destroy(be);
}

/* MLA's latent cache (k == v, width rank + rope dims): latent_kv_write and
 * the attention over it, batched and one sequence at a time. */
static void test_batched_latent(void **state)
{
    (void)state;
    enum { RANK = 64, ROPE = 32, WIDTH = RANK + ROPE, HEADS = 4, M = 2, CAP = 24 };
    const int64_t pos0 = 9;
    sol_backend *be = cpu_backend(2);
    float inv_freq[ROPE / 2], norm[RANK];
    for (int i = 0; i < ROPE / 2; i++)
        inv_freq[i] = powf(10000.0f, -2.0f * i / ROPE);
    for (int i = 0; i < RANK; i++)
        norm[i] = 1 + 0.1f * rng_normal();
    sol_rope rope = {ROPE, 0, 0, inv_freq};
    shape s = {HEADS, 1, WIDTH, pos0, 0, 0, CAP, M, SOL_DT_F16, 0, 1, 0};
    cache_copies c;
    cache_init(&c, &s, WIDTH);
    static float kv[SEQS * M * WIDTH], q[SEQS * M * HEADS * WIDTH], out[SEQS * M * HEADS * WIDTH],
        out1[SEQS * M * HEADS * WIDTH];
    for (int i = 0; i < SEQS * M * WIDTH; i++)
        kv[i] = rng_normal();
    for (int i = 0; i < SEQS * M * HEADS * WIDTH; i++)
        q[i] = rng_normal();
    sol_kv_cache_layer batched = {SOL_DT_F16, c.batched, c.batched, CAP, WIDTH, 0, c.stride};
    begin_batch(be, SEQS * M, pos0, SEQS);
    be->latent_kv_write(be, kv, norm, 1e-6f, RANK, &rope, &batched);
    be->attention(be, q, &batched, HEADS, 1, WIDTH, 0, 0, out);
    for (int seq = 0; seq < SEQS; seq++) {
        sol_kv_cache_layer one = {SOL_DT_F16, c.single[seq], c.single[seq], CAP, WIDTH, 0, 0};
        begin_batch(be, M, pos0, 1);
        be->latent_kv_write(be, kv + seq * M * WIDTH, norm, 1e-6f, RANK, &rope, &one);
        be->attention(be, q + seq * M * HEADS * WIDTH, &one, HEADS, 1, WIDTH, 0, 0, out1 + seq * M * HEADS * WIDTH);
    }
    cache_compare(&c, &s, "latent");
    expect_same(out, out1, SEQS * M * HEADS * WIDTH, "latent", "attention output");
    cache_free(&c);
    be->destroy(be);
}

/* A step whose rows do not split evenly over its sequences, or of more
 * sequences than the caps allow, is refused by begin_step. */
static void test_batched_step_refused(void **state)
{
    (void)state;
    sol_backend *be = cpu_backend(1);
    assert_true(be->caps.max_seqs >= 64);
    sol_err err = {0};
    sol_step_state bad = {.pos = 0, .rows = 7, .seqs = 3};
    assert_int_not_equal(be->begin_step(be, &bad, &err), 0);
    bad = (sol_step_state){.pos = 0, .rows = be->caps.max_seqs + 1, .seqs = be->caps.max_seqs + 1};
    assert_int_not_equal(be->begin_step(be, &bad, &err), 0);
    sol_step_state ok = {.pos = 0, .rows = 6, .seqs = 3};
    assert_int_equal(be->begin_step(be, &ok, &err), 0);
    be->destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batched_matches_single),
        cmocka_unit_test(test_batched_latent),
        cmocka_unit_test(test_batched_step_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
