/* Sampling: greedy is argmax, filters keep the right candidates, a seed
 * reproduces a run, and the draw follows the distribution. */
#include <math.h>

#include "engine/sample.h"
#include "tests/unit/helpers.h"

static sol_sampler make(float temp, int top_k, float top_p, float min_p, float penalty, uint64_t seed, int n)
{
    sol_sampler_config cfg = {.temperature = temp, .top_k = top_k, .top_p = top_p, .min_p = min_p,
                              .repeat_penalty = penalty, .repeat_last_n = 64, .seed = seed};
    sol_sampler s;
    assert_int_equal(sol_sampler_init(&s, &cfg, n), 0);
    return s;
}

static void test_greedy(void **state)
{
    (void)state;
    float logits[5] = {0.1f, 2.0f, -1.0f, 1.9f, 0.0f};
    sol_sampler s = make(0, 0, 1, 0, 1, 1, 5);
    assert_int_equal(sol_sample(&s, logits, NULL, 0), 1);
    sol_sampler_free(&s);
    /* top-k 1 at any temperature is greedy */
    s = make(1.5f, 1, 1, 0, 1, 7, 5);
    for (int i = 0; i < 20; i++)
        assert_int_equal(sol_sample(&s, logits, NULL, 0), 1);
    sol_sampler_free(&s);
}

static void test_repeat_penalty(void **state)
{
    (void)state;
    float logits[3] = {2.0f, 1.9f, -1.0f};
    int32_t history[3] = {0, 0, 2};
    sol_sampler s = make(0, 0, 1, 0, 1.1f, 1, 3);
    /* 2.0 / 1.1 < 1.9: the repeated token loses; penalised once, not twice */
    assert_int_equal(sol_sample(&s, logits, history, 3), 1);
    assert_true(fabsf(logits[0] - 2.0f / 1.1f) < 1e-6f);
    assert_true(fabsf(logits[2] - -1.1f) < 1e-6f);
    sol_sampler_free(&s);
}

static void test_filters(void **state)
{
    (void)state;
    /* probabilities ~ 0.64, 0.24, 0.09, 0.03 at temperature 1 */
    float base[4] = {3.0f, 2.0f, 1.0f, 0.0f};
    int seen[4] = {0};
    sol_sampler s = make(1, 0, 0.7f, 0, 1, 3, 4); /* top-p 0.7 keeps two */
    for (int i = 0; i < 2000; i++) {
        float l[4];
        memcpy(l, base, sizeof l);
        seen[sol_sample(&s, l, NULL, 0)]++;
    }
    assert_true(seen[0] > 0 && seen[1] > 0 && seen[2] == 0 && seen[3] == 0);
    sol_sampler_free(&s);
    memset(seen, 0, sizeof seen);
    s = make(1, 0, 1, 0.2f, 1, 3, 4); /* min-p 0.2 of 0.64: keeps p >= 0.128 */
    for (int i = 0; i < 2000; i++) {
        float l[4];
        memcpy(l, base, sizeof l);
        seen[sol_sample(&s, l, NULL, 0)]++;
    }
    assert_true(seen[0] > 0 && seen[1] > 0 && seen[2] == 0 && seen[3] == 0);
    /* the kept pair is drawn about 0.64 : 0.24 */
    double ratio = (double)seen[0] / seen[1];
    assert_true(ratio > 2.2 && ratio < 3.2);
    sol_sampler_free(&s);
}

static void test_seed_reproduces(void **state)
{
    (void)state;
    float base[8] = {1, 1.1f, 0.9f, 1.05f, 0.95f, 1.02f, 0.98f, 1.01f};
    int32_t a[50], b[50], c[50];
    sol_sampler s1 = make(1, 0, 1, 0, 1, 42, 8), s2 = make(1, 0, 1, 0, 1, 42, 8), s3 = make(1, 0, 1, 0, 1, 43, 8);
    for (int i = 0; i < 50; i++) {
        float l1[8], l2[8], l3[8];
        memcpy(l1, base, sizeof base);
        memcpy(l2, base, sizeof base);
        memcpy(l3, base, sizeof base);
        a[i] = sol_sample(&s1, l1, NULL, 0);
        b[i] = sol_sample(&s2, l2, NULL, 0);
        c[i] = sol_sample(&s3, l3, NULL, 0);
    }
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    sol_sampler_free(&s1);
    sol_sampler_free(&s2);
    sol_sampler_free(&s3);
}

/* top-k by heap selection keeps exactly the candidates a full sort keeps:
 * with the one dropped candidate at probability 0, top-k = n - 1 (heap) and
 * no top-k (full sort) draw the same tokens, ties included; and top-k = 3
 * only ever draws one of the three best. */
static void test_top_k_selection(void **state)
{
    (void)state;
    enum { N = 1000 };
    float logits[N];
    for (int i = 0; i < N; i++)
        logits[i] = (float)((i * 7919) % 13) * 0.25f; /* many ties */
    logits[417] = -1000.0f;                            /* the only one outside the top N - 1 */
    sol_sampler heap = make(1.0f, N - 1, 1.0f, 0, 1, 42, N), full = make(1.0f, 0, 1.0f, 0, 1, 42, N);
    for (int t = 0; t < 200; t++)
        assert_int_equal(sol_sample(&heap, logits, NULL, 0), sol_sample(&full, logits, NULL, 0));
    sol_sampler_free(&heap);
    sol_sampler_free(&full);
    logits[5] = 9.0f;
    logits[6] = 8.5f;
    logits[900] = 8.5f;
    sol_sampler three = make(1.0f, 3, 1.0f, 0, 1, 7, N);
    int seen[3] = {0, 0, 0};
    for (int t = 0; t < 300; t++) {
        int32_t id = sol_sample(&three, logits, NULL, 0);
        assert_true(id == 5 || id == 6 || id == 900);
        seen[id == 5 ? 0 : id == 6 ? 1 : 2]++;
    }
    assert_true(seen[0] > 0 && seen[1] > 0 && seen[2] > 0);
    sol_sampler_free(&three);
}

/* ---- sampling from the best candidates (what a GPU downloads) -------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

static const float *sort_vals; /* for by_rank: logit descending, then id */
static int by_rank(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (sort_vals[x] != sort_vals[y])
        return sort_vals[x] < sort_vals[y] ? 1 : -1;
    return x - y;
}

/* The n best of row (ties by lower id), shuffled: what a device returns. */
static void best_n(const float *row, int vocab, int n, int32_t *order, float *vals, int32_t *ids)
{
    for (int i = 0; i < vocab; i++)
        order[i] = i;
    sort_vals = row;
    qsort(order, (size_t)vocab, sizeof *order, by_rank);
    for (int i = 0; i < n; i++)
        ids[i] = order[i];
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rnd() % (uint32_t)(i + 1));
        int32_t t = ids[i];
        ids[i] = ids[j];
        ids[j] = t;
    }
    for (int i = 0; i < n; i++)
        vals[i] = row[ids[i]];
}

/* Logits in steps of 1/8 (ties) and a history drawn from the likely tokens,
 * so the penalty reorders the top. */
static void random_row(float *row, int vocab, int32_t *history, int n_history)
{
    for (int i = 0; i < vocab; i++)
        row[i] = (float)((int)(rnd() % 160) - 40) / 8.0f;
    for (int i = 0; i < n_history; i++) { /* every fourth among the best ~8% */
        int32_t t = (int32_t)(rnd() % (uint32_t)vocab);
        while (i % 4 == 0 && row[t] < 13.0f)
            t = (int32_t)(rnd() % (uint32_t)vocab);
        history[i] = t;
    }
}

static void test_candidates_sample_the_same(void **state)
{
    (void)state;
    enum { VOCAB = 3000, HISTORY = 100, DRAWS = 300 };
    const sol_sampler_config configs[] = {
        {.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 7},
        {.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .repeat_penalty = 1.3f, .repeat_last_n = 64, .seed = 8},
        {.temperature = 1.5f, .top_k = 5, .top_p = 1.0f, .min_p = 0.0f, .repeat_penalty = 1.1f, .repeat_last_n = 16, .seed = 9},
        {.temperature = 0.5f, .top_k = 300, .top_p = 0.9f, .min_p = 0.0f, .repeat_penalty = 2.0f, .repeat_last_n = 100, .seed = 10},
    };
    static float row[VOCAB], copy[VOCAB], vals[SOL_SAMPLE_CANDIDATES_MAX];
    static int32_t order[VOCAB], ids[SOL_SAMPLE_CANDIDATES_MAX], history[HISTORY];
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        sol_sampler full, cand;
        assert_int_equal(sol_sampler_init(&full, &configs[c], VOCAB), 0);
        assert_int_equal(sol_sampler_init(&cand, &configs[c], VOCAB), 0);
        int n = sol_sample_candidates_needed(&configs[c], VOCAB);
        assert_int_equal(n, configs[c].top_k + (configs[c].repeat_penalty > 1.0f ? configs[c].repeat_last_n : 0));
        int differ = 0;
        for (int d = 0; d < DRAWS; d++) {
            random_row(row, VOCAB, history, HISTORY);
            memcpy(copy, row, sizeof row);
            best_n(row, VOCAB, n, order, vals, ids);
            int32_t want = sol_sample(&full, copy, history, HISTORY);
            int32_t got = sol_sample_candidates(&cand, vals, ids, n, history, HISTORY);
            assert_int_equal(got, want);
            differ += want != ids[0];
        }
        assert_true(differ > 0); /* the draws were not all the same token */
        sol_sampler_free(&full);
        sol_sampler_free(&cand);
    }
}

static void test_candidates_needed(void **state)
{
    (void)state;
    sol_sampler_config cfg;
    sol_sampler_defaults(&cfg); /* top_k 40, no penalty */
    assert_int_equal(sol_sample_candidates_needed(&cfg, 32000), 40);
    cfg.repeat_penalty = 1.1f;
    assert_int_equal(sol_sample_candidates_needed(&cfg, 32000), 40 + 64);
    assert_int_equal(sol_sample_candidates_needed(&cfg, 100), 0); /* 104 >= the vocabulary */
    cfg.repeat_penalty = 0.9f; /* a boost can lift any token into the top: the whole row */
    assert_int_equal(sol_sample_candidates_needed(&cfg, 32000), 0);
    cfg.repeat_penalty = 1.0f;
    cfg.top_k = 0; /* no top-k: the whole row */
    assert_int_equal(sol_sample_candidates_needed(&cfg, 32000), 0);
    cfg.top_k = SOL_SAMPLE_CANDIDATES_MAX + 1;
    assert_int_equal(sol_sample_candidates_needed(&cfg, 32000), 0);
    cfg.top_k = 40;
    cfg.temperature = 0; /* greedy: the argmax */
    assert_int_equal(sol_sample_candidates_needed(&cfg, 32000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_top_k_selection),
        cmocka_unit_test(test_repeat_penalty),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_seed_reproduces),
        cmocka_unit_test(test_candidates_sample_the_same),
        cmocka_unit_test(test_candidates_needed),
    };
    return cmocka_run_group_tests_name("sample", tests, NULL, NULL);
}
