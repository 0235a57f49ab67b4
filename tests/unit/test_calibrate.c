/* Calibrated predictions: op-class rows stored in a temporary database and
 * read back give a plan's time as the hand-computed sum of each op's
 * roofline time times its kind's measured/roofline ratio, plus the overhead
 * per op; a class the database lacks is named, never guessed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "db/db.h"
#include "tests/unit/helpers.h"

/* measured / roofline seconds each kind is given */
static double factor_of(int kind)
{
    return kind == SOL_OP_MATMUL ? 2.0 : kind == SOL_OP_ATTENTION ? 5.0 : 3.0;
}

#define OVERHEAD_PER_OP_S 5e-4

typedef struct fixture {
    char dir[64], path[96];
    sol_db *db;
    int64_t device_id;
    sol_analysis *a;
} fixture;

static sol_analysis *analyze(int64_t ctx)
{
    sol_model m = load_preset("llama-3-8b");
    sol_kv_scheme kv = scheme_of(&m, NULL);
    sol_hw hw;
    sol_err err = {0};
    if (sol_hw_load("h100-sxm", &hw, &err))
        fail_msg("hw: %s", err.msg);
    sol_analysis_config cfg = {.batch = 1, .ctx = ctx, .prompt = 64, .wtype = SOL_DT_Q8_0, .atype = SOL_DT_F32,
                               .kvtype = SOL_DT_F16, .tp = 1};
    sol_analysis *a = malloc(sizeof *a);
    assert_non_null(a);
    if (sol_analyze(&m, &kv, &hw, &cfg, a, &err))
        fail_msg("analyze: %s", err.msg);
    return a;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/sol-test-calib-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/sol.db", f->dir);
    sol_err err = {0};
    sol_device_info dev = {.cores = 2};
    snprintf(dev.backend, sizeof dev.backend, "cpu");
    snprintf(dev.name, sizeof dev.name, "Test CPU");
    if (sol_db_open(f->path, &f->db, &err) || sol_db_device(f->db, &dev, &f->device_id, &err))
        return -1;
    f->a = analyze(1024);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sol_db_close(f->db);
    unlink(f->path);
    char side[128];
    snprintf(side, sizeof side, "%s-wal", f->path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", f->path);
    unlink(side);
    rmdir(f->dir);
    sol_analysis_free(f->a);
    free(f->a);
    free(f);
    return 0;
}

/* One row per distinct class of plan (roofline 1 s, measured the kind's
 * factor), leaving out kind skip (-1: none), and an overhead row. */
static void store_classes(fixture *f, const sol_plan *plan, int skip)
{
    sol_op_time_row rows[256];
    int n = 0;
    for (int i = 0; i < plan->n_ops; i++) {
        sol_op_class k;
        sol_op_class_of(&plan->ops[i], plan->params.n_tokens, &k);
        int seen = k.kind == skip;
        for (int j = 0; j < n && !seen; j++)
            seen = !strcmp(rows[j].kind, sol_op_class_kind_name(k.kind)) && !strcmp(rows[j].dtype, k.dtype) &&
                   rows[j].size_class == k.size_class;
        if (seen)
            continue;
        assert_true(n < 255);
        sol_op_time_row *r = &rows[n++];
        *r = (sol_op_time_row){.rows = k.rows, .size_class = k.size_class, .roofline_s = 1.0,
                               .measured_s = factor_of(k.kind), .count = 1};
        snprintf(r->kind, sizeof r->kind, "%s", sol_op_class_kind_name(k.kind));
        snprintf(r->dtype, sizeof r->dtype, "%s", k.dtype);
    }
    rows[n] = (sol_op_time_row){.rows = plan->params.n_tokens, .measured_s = OVERHEAD_PER_OP_S * 1000,
                                .count = 1000};
    snprintf(rows[n++].kind, sizeof rows[0].kind, "overhead");
    sol_run_row run = {.device_id = f->device_id, .threads = 2, .tokens_per_s = 1, .time = 1714000000};
    snprintf(run.backend, sizeof run.backend, "cpu.q8");
    snprintf(run.test, sizeof run.test, "tg32");
    sol_err err = {0};
    if (sol_db_run_add_ops(f->db, &run, rows, n, NULL, &err))
        fail_msg("store: %s", err.msg);
}

static int add_row(void *user, const sol_op_time_row *row)
{
    sol_calibration *c = user;
    sol_op_class_sum item = {.key = {.kind = sol_op_class_kind_parse(row->kind), .rows = row->rows,
                                     .size_class = row->size_class},
                             .group = -1, .roofline_s = row->roofline_s, .measured_s = row->measured_s,
                             .count = row->count};
    snprintf(item.key.dtype, sizeof item.key.dtype, "%s", row->dtype);
    assert_true(item.key.kind >= 0);
    sol_err err = {0};
    assert_int_equal(sol_op_table_add(&c->classes, &item, &err), 0);
    return 0;
}

static sol_calibration load(fixture *f)
{
    sol_calibration c = {0};
    sol_op_time_span span = {0};
    sol_err err = {0};
    if (sol_db_op_times(f->db, f->device_id, "cpu.q8", 2, 5, add_row, &c, &span, &err))
        fail_msg("read: %s", err.msg);
    c.runs = span.runs;
    return c;
}

static double hand_sum(const sol_plan *plan, const sol_step_cost *cost)
{
    double sum = 0;
    for (int i = 0; i < plan->n_ops; i++)
        sum += cost->ops[i].time_s * factor_of(plan->ops[i].kind);
    return sum + plan->n_ops * OVERHEAD_PER_OP_S;
}

static void test_plan_time_is_the_hand_sum(void **state)
{
    fixture *f = *state;
    store_classes(f, &f->a->decode, -1);
    sol_calibration c = load(f);
    assert_int_equal(c.runs, 1);
    sol_calibrated_step step;
    sol_err err = {0};
    if (sol_calibrated_plan(&c, &f->a->decode, &f->a->decode_cost, &step, &err))
        fail_msg("calibrated: %s", err.msg);
    double want = hand_sum(&f->a->decode, &f->a->decode_cost);
    assert_true(fabs(step.time_s - want) <= 1e-12 * want);
    assert_true(fabs(step.overhead_s - f->a->decode.n_ops * OVERHEAD_PER_OP_S) <= 1e-12);
    assert_int_equal(step.exact, f->a->decode.n_ops);
    double groups = 0;
    for (int g = 0; g < SOL_GROUP_COUNT; g++)
        groups += step.group_s[g];
    assert_true(fabs(groups - want) <= 1e-12 * want);

    /* at 8x the context attention moves more bytes: a size class not
     * measured, taken from the nearest one of the same kind (same factor) */
    sol_analysis *longer = analyze(8192);
    if (sol_calibrated_plan(&c, &longer->decode, &longer->decode_cost, &step, &err))
        fail_msg("calibrated: %s", err.msg);
    want = hand_sum(&longer->decode, &longer->decode_cost);
    assert_true(fabs(step.time_s - want) <= 1e-12 * want);
    assert_true(step.nearest > 0);
    assert_int_equal(step.exact + step.nearest, longer->decode.n_ops);

    /* prefill was never measured: named, not guessed */
    assert_int_equal(sol_calibrated_plan(&c, &f->a->prefill, &f->a->prefill_cost, &step, &err), SOL_ERR_RUNTIME);
    assert_string_equal(err.msg, "no calibration for embed bf16 prefill");
    sol_analysis_free(longer);
    free(longer);
    sol_op_table_free(&c.classes);
}

static void test_missing_kind_is_named(void **state)
{
    fixture *f = *state;
    store_classes(f, &f->a->decode, SOL_OP_ATTENTION);
    sol_calibration c = load(f);
    sol_calibrated_step step;
    sol_err err = {0};
    assert_int_equal(sol_calibrated_plan(&c, &f->a->decode, &f->a->decode_cost, &step, &err), SOL_ERR_RUNTIME);
    assert_string_equal(err.msg, "no calibration for attention f16 decode");
    sol_op_table_free(&c.classes);
}

static void test_empty_database(void **state)
{
    fixture *f = *state;
    sol_calibration c = load(f);
    assert_int_equal(c.runs, 0);
    assert_int_equal(c.classes.n, 0);
    sol_calibrated_step step;
    sol_err err = {0};
    assert_int_equal(sol_calibrated_plan(&c, &f->a->decode, &f->a->decode_cost, &step, &err), SOL_ERR_RUNTIME);
    assert_string_equal(err.msg, "no calibration for embed bf16 decode");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plan_time_is_the_hand_sum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_kind_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_database, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
