/* Tuner framework: spaces and constraints, strategy rules (invalid never
 * run, nothing measured twice, budget kept, seeds reproduce), annealing
 * quality on a known landscape, wrong answers never chosen, timing. */
#include <math.h>
#include <stdlib.h>

#include "tests/unit/helpers.h"
#include "tuner/cpu_matmul.h"
#include "tuner/perf.h"
#include "tuner/tuner.h"

/* rows in {1..64}, unroll in {1,2,4,8}, prefetch in {0..7}: a*b <= 128 */
static int product_limit(const int *v, void *user)
{
    (void)user;
    return v[0] * v[1] <= 128;
}

static sol_tune_space make_space(void)
{
    sol_tune_space s = {.kernel = "test"};
    int rows[] = {1, 2, 4, 8, 16, 32, 64}, unroll[] = {1, 2, 4, 8}, prefetch[] = {0, 1, 2, 3, 4, 5, 6, 7};
    sol_space_add(&s, "rows", rows, 7, 8);
    sol_space_add(&s, "unroll", unroll, 4, 2);
    sol_space_add(&s, "prefetch", prefetch, 8, 0);
    s.valid = product_limit;
    return s;
}

typedef struct {
    const sol_tune_space *s;
    int evaluated[7 * 4 * 8];
    int order[7 * 4 * 8], n;
    int wrong_at; /* linear index that computes a wrong answer (-1: none) */
} landscape;

/* A smooth bowl with its minimum at rows 16, unroll 4, prefetch 3. */
static double bowl(void *user, const sol_tune_config *c)
{
    landscape *l = user;
    int64_t at = sol_space_encode(l->s, c);
    if (!sol_space_valid(l->s, c))
        fail_msg("an invalid configuration was evaluated");
    l->evaluated[at]++;
    l->order[l->n++] = (int)at;
    if (at == l->wrong_at)
        return -1;
    double a = c->idx[0] - 4, b = c->idx[1] - 2, d = c->idx[2] - 3;
    return 1.0 + 0.05 * (a * a + b * b) + 0.01 * d * d;
}

static void test_space(void **state)
{
    (void)state;
    sol_tune_space s = make_space();
    assert_int_equal(sol_space_size(&s), 224);
    for (int64_t i = 0; i < 224; i++) {
        sol_tune_config c;
        sol_space_decode(&s, i, &c);
        assert_int_equal(sol_space_encode(&s, &c), i);
    }
    int v[SOL_TUNE_MAX_PARAMS];
    sol_space_values(&s, &s.default_config, v);
    assert_int_equal(v[0], 8);
    assert_int_equal(v[1], 2);
    char *json = sol_space_json(&s, &s.default_config);
    assert_string_equal(json, "{\"rows\":8,\"unroll\":2,\"prefetch\":0}");
    free(json);
    sol_tune_config bad = {{6, 3, 0}}; /* 64 x 8 > 128 */
    assert_false(sol_space_valid(&s, &bad));
    /* coverage: 25 (rows, unroll) pairs within 128 x 8 prefetches valid;
     * a time or a wrong answer (-1) counts as measured, an invalid one never */
    double seen[224];
    for (int i = 0; i < 224; i++)
        seen[i] = NAN;
    sol_tune_config wrong = {{0, 0, 5}};
    seen[sol_space_encode(&s, &s.default_config)] = 1e-3;
    seen[sol_space_encode(&s, &wrong)] = -1;
    seen[sol_space_encode(&s, &bad)] = 2e-3;
    int valid, measured;
    sol_space_coverage(&s, seen, &valid, &measured);
    assert_int_equal(valid, 200);
    assert_int_equal(measured, 2);
}

static void test_exhaustive(void **state)
{
    (void)state;
    sol_tune_space s = make_space();
    landscape l = {.s = &s, .wrong_at = -1};
    sol_search_result r;
    sol_err err = {0};
    assert_int_equal(sol_search(sol_strategy_find("exhaustive"), &s, 0, 1, bowl, &l, &r, &err), 0);
    int valid = 0;
    for (int64_t i = 0; i < 224; i++) {
        sol_tune_config c;
        sol_space_decode(&s, i, &c);
        valid += sol_space_valid(&s, &c);
        assert_int_equal(l.evaluated[i], sol_space_valid(&s, &c)); /* once each, invalid never */
    }
    assert_int_equal(r.evaluations, valid);
    assert_int_equal(r.invalid_skipped, 224 - valid);
    int v[SOL_TUNE_MAX_PARAMS];
    sol_space_values(&s, &r.best, v);
    assert_int_equal(v[0], 16);
    assert_int_equal(v[1], 4);
    assert_int_equal(v[2], 3);
}

static void test_wrong_answer_never_chosen(void **state)
{
    (void)state;
    sol_tune_space s = make_space();
    sol_tune_config optimum = {{4, 2, 3}};
    landscape l = {.s = &s, .wrong_at = (int)sol_space_encode(&s, &optimum)};
    sol_search_result r;
    sol_err err = {0};
    assert_int_equal(sol_search(sol_strategy_find("exhaustive"), &s, 0, 1, bowl, &l, &r, &err), 0);
    assert_true(sol_space_encode(&s, &r.best) != l.wrong_at);
    assert_true(r.best_time_s > 1.0);
}

static void test_random_seeded(void **state)
{
    (void)state;
    sol_tune_space s = make_space();
    landscape a = {.s = &s, .wrong_at = -1}, b = a, c = a;
    sol_search_result r;
    sol_err err = {0};
    const sol_strategy_ops *random = sol_strategy_find("random");
    assert_int_equal(sol_search(random, &s, 30, 7, bowl, &a, &r, &err), 0);
    assert_int_equal(r.evaluations, 30);
    assert_int_equal(sol_search(random, &s, 30, 7, bowl, &b, &r, &err), 0);
    assert_int_equal(sol_search(random, &s, 30, 8, bowl, &c, &r, &err), 0);
    assert_memory_equal(a.order, b.order, sizeof a.order);
    assert_memory_not_equal(a.order, c.order, 30 * sizeof(int));
    for (int i = 0; i < 224; i++)
        assert_true(a.evaluated[i] <= 1);
}

/* Annealing reaches within 3% of the optimum with a quarter of the
 * evaluations, and a seed reproduces its path. */
static void test_anneal(void **state)
{
    (void)state;
    sol_tune_space s = make_space();
    const sol_strategy_ops *anneal = sol_strategy_find("anneal");
    int within = 0;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        landscape l = {.s = &s, .wrong_at = -1}, again = l;
        sol_search_result r, r2;
        sol_err err = {0};
        assert_int_equal(sol_search(anneal, &s, 224 / 4, seed, bowl, &l, &r, &err), 0);
        assert_true(r.evaluations <= 56);
        for (int i = 0; i < 224; i++)
            assert_true(l.evaluated[i] <= 1);
        within += r.best_time_s <= 1.03;
        assert_int_equal(sol_search(anneal, &s, 224 / 4, seed, bowl, &again, &r2, &err), 0);
        assert_int_equal(l.n, again.n);
        assert_memory_equal(l.order, again.order, (size_t)l.n * sizeof(int));
    }
    assert_true(within >= 9);
    assert_null(sol_strategy_find("bayes"));
}

static int runs;
static void count_run(void *user)
{
    (void)user;
    runs++;
}

static void test_measure(void **state)
{
    (void)state;
    sol_timing_stats st;
    sol_cache_flusher f;
    assert_int_equal(sol_flusher_init(&f, 1 << 20), 0);
    runs = 0;
    sol_measure(count_run, NULL, sol_flusher_run, &f, 3, &st);
    assert_int_equal(st.reps, 5); /* at least 5, whatever was asked */
    assert_int_equal(runs, 6);    /* plus one warm-up */
    assert_true(st.min_s <= st.median_s && st.median_s <= st.max_s);
    sol_flusher_free(&f);
}

/* Counters either count a known loop or say why they cannot. */
static void test_perf_counters(void **state)
{
    (void)state;
    sol_perf p;
    sol_perf_open(&p);
    uint64_t counts[SOL_PERF_COUNT];
    volatile double x = 1;
    sol_perf_start(&p);
    for (int i = 0; i < 1000000; i++)
        x = x * 1.0000001 + 1e-9;
    sol_perf_stop(&p, counts);
    if (p.available) {
        assert_true(counts[SOL_PERF_CYCLES] > 0 || counts[SOL_PERF_INSTRUCTIONS] > 0);
        if (p.fd[SOL_PERF_INSTRUCTIONS] >= 0) /* at least the loop's multiply-adds */
            assert_true(counts[SOL_PERF_INSTRUCTIONS] >= 1000000);
    } else {
        assert_non_null(strstr(p.why, "timing only"));
        for (int i = 0; i < SOL_PERF_COUNT; i++)
            assert_int_equal(counts[i], 0);
    }
    sol_perf_close(&p);
    assert_string_equal(sol_perf_name(SOL_PERF_CACHE_MISSES), "cache_misses");
}

/* The real CPU matmul through the tuner: a variant that computes a wrong
 * answer is recorded as incorrect and never chosen, even when fastest. */
static int fault_when_one_task(const int *values) { return values[0] == 1; }

static int valid_configs(const sol_tune_space *s)
{
    int n = 0;
    for (int64_t i = 0; i < sol_space_size(s); i++) {
        sol_tune_config c;
        sol_space_decode(s, i, &c);
        n += sol_space_valid(s, &c);
    }
    return n;
}

static void test_cpu_matmul_wrong_variant(void **state)
{
    (void)state;
    sol_backend *be;
    sol_err err = {0};
    sol_cpu_options opt = {.threads = 2};
    assert_int_equal(sol_cpu_backend_new(&opt, &be, &err), 0);
    sol_matmul_problem pb;
    assert_int_equal(sol_matmul_problem_parse("matvec:q8_0:96x64", &pb, &err), 0);
    sol_tune_space space;
    sol_cpu_matmul_space(&pb, &space);
    sol_matmul_bench bench;
    assert_int_equal(sol_matmul_bench_init(&bench, be, &pb, &space, 3, 1 << 20, 5, &err), 0);
    bench.inject_fault = fault_when_one_task;
    sol_search_result r;
    assert_int_equal(sol_search(sol_strategy_find("exhaustive"), &space, 0, 1, sol_matmul_bench_eval, &bench, &r, &err), 0);
    /* one input: only tasks (6 values) x tile rows (3) of the integer dots */
    assert_string_equal(space.kernel, "cpu.matmul.q8");
    assert_int_equal(r.evaluations, 18);
    sol_matmul_params p;
    sol_matmul_params_from(&space, &r.best, &p);
    assert_true(p.tasks_per_thread != 1);
    assert_true(r.best_time_s > 0);
    /* and a correct configuration measures as correct */
    assert_true(sol_matmul_bench_eval(&bench, &space.default_config) > 0);
    assert_true(bench.last_correct);
    sol_tune_config one = space.default_config;
    one.idx[0] = 0; /* tasks_per_thread 1 */
    assert_true(sol_matmul_bench_eval(&bench, &one) < 0);
    assert_false(bench.last_correct);
    sol_matmul_bench_free(&bench);
    be->destroy(be);
    /* f32 dots (f32 activations, or float weights): decode chooses the rows per pass */
    pb.act = SOL_ACT_F32;
    sol_cpu_matmul_space(&pb, &space);
    assert_string_equal(space.kernel, "cpu.matmul");
    assert_int_equal(valid_configs(&space), 6 * 3);
    assert_int_equal(sol_matmul_problem_parse("matmul:f16:96x64x8", &pb, &err), 0);
    sol_cpu_matmul_space(&pb, &space);
    assert_string_equal(space.kernel, "cpu.matmul");
    assert_int_equal(valid_configs(&space), 6); /* the f32 GEMM's tile and row groups are fixed */
    /* prefill with integer dots: tiles of at most 8 accumulators */
    assert_int_equal(sol_matmul_problem_parse("matmul:q4_1:96x64x8", &pb, &err), 0);
    sol_cpu_matmul_space(&pb, &space);
    assert_string_equal(space.kernel, "cpu.matmul.q8");
    assert_int_equal(valid_configs(&space), 6 * 7 * 8);
    /* from SOL_INT8_DOTS_BELOW rows prefill takes the f32 GEMM even with q8 activations */
    assert_int_equal(sol_matmul_problem_parse("matmul:q4_1:96x64x32", &pb, &err), 0);
    sol_cpu_matmul_space(&pb, &space);
    assert_string_equal(space.kernel, "cpu.matmul");
    assert_int_equal(valid_configs(&space), 6);
    assert_int_equal(sol_matmul_problem_parse("matvec:q4_k:96x100", &pb, &err), SOL_ERR_USAGE);
    assert_int_equal(sol_matmul_problem_parse("conv:q8_0:96x64", &pb, &err), SOL_ERR_USAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_space),        cmocka_unit_test(test_exhaustive),
        cmocka_unit_test(test_wrong_answer_never_chosen), cmocka_unit_test(test_random_seeded),
        cmocka_unit_test(test_anneal),       cmocka_unit_test(test_measure),
        cmocka_unit_test(test_perf_counters), cmocka_unit_test(test_cpu_matmul_wrong_variant),
    };
    return cmocka_run_group_tests_name("tuner", tests, NULL, NULL);
}
