/* The live view's frame model and pure renderers: a step's op times joined
 * with the analyzer's prediction add up per group and in total, % SOL is
 * predicted / achieved, the window and history keep the right steps, the
 * roofline raster puts markers where the numbers say, and text survives
 * tokens that end mid-character. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/unit/helpers.h"
#include "tui/tui.h"

typedef struct {
    sol_model m;
    sol_plan plan;
    sol_step_cost cost;
    sol_hw hw;
    double *op_s;
    sol_step_timing timing;
} fixture;

/* SmolLM2 decoding one token at pos, costed on hw, with made-up op times
 * (scale * 1..7 us, so no two groups tie). */
static fixture *make(const char *hw_name, int64_t pos, int n_tokens, double scale)
{
    fixture *fx = calloc(1, sizeof *fx);
    sol_err err = {0};
    fx->m = load_preset("smollm2-135m");
    fx->hw = load_hw(hw_name);
    sol_kv_scheme kv = scheme_of(&fx->m, NULL);
    sol_plan_params p = {.batch = 1, .n_tokens = n_tokens, .pos = pos, .wtype = SOL_DT_Q4_1, .atype = SOL_DT_F32,
                         .kvtype = SOL_DT_F16, .tp = 1};
    if (sol_plan_build(&fx->m, &kv, &p, &fx->plan, &err) || sol_cost_plan(&fx->plan, &fx->hw, &fx->cost, &err))
        fail_msg("%s", err.msg);
    fx->op_s = calloc((size_t)fx->plan.n_ops, sizeof *fx->op_s);
    double total = 0;
    for (int i = 0; i < fx->plan.n_ops; i++)
        total += fx->op_s[i] = scale * 1e-6 * (1 + i % 7);
    fx->timing = (sol_step_timing){.step = 5, .pos = pos, .n_tokens = n_tokens, .n_ops = fx->plan.n_ops,
                                   .total_s = total, .op_s = fx->op_s};
    return fx;
}

static void destroy(fixture *fx)
{
    sol_step_cost_free(&fx->cost);
    sol_plan_free(&fx->plan);
    free(fx->op_s);
    free(fx);
}

static int close_to(double a, double b) { return fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b)) + 1e-15; }

static void test_group_totals_are_sums_of_ops(void **state)
{
    (void)state;
    fixture *fx = make("cpu", 100, 1, 1);
    sol_frame_op *ops = calloc((size_t)fx->plan.n_ops, sizeof *ops);
    sol_frame_step step;
    sol_err err = {0};
    assert_int_equal(sol_frame_step_build(&fx->plan, &fx->cost, &fx->timing, ops, fx->plan.n_ops, &step, &err), 0);
    assert_int_equal(step.n_ops, fx->plan.n_ops);
    sol_frame_totals sum_groups = {0};
    for (int g = 0; g < SOL_GROUP_COUNT; g++) {
        sol_frame_totals want = {0};
        for (int i = 0; i < fx->plan.n_ops; i++) {
            if (fx->plan.ops[i].group != (sol_op_group)g)
                continue;
            want.n_ops++;
            want.achieved_s += fx->op_s[i];
            want.predicted_s += fx->cost.ops[i].time_s;
            want.bytes += fx->cost.ops[i].bytes;
            want.flops += fx->cost.ops[i].flops;
        }
        const sol_frame_totals *t = &step.groups[g];
        assert_int_equal(t->n_ops, want.n_ops);
        assert_true(close_to(t->achieved_s, want.achieved_s));
        assert_true(close_to(t->predicted_s, want.predicted_s));
        assert_true(close_to(t->bytes, want.bytes));
        assert_true(close_to(t->flops, want.flops));
        assert_true(close_to(t->bound_s[0] + t->bound_s[1] + t->bound_s[2], t->predicted_s));
        sol_frame_totals_add(&sum_groups, t);
    }
    /* the groups partition the step: the step's time, the analyzer's total */
    assert_int_equal(sum_groups.n_ops, fx->plan.n_ops);
    assert_true(close_to(sum_groups.achieved_s, fx->timing.total_s));
    assert_true(close_to(step.total.achieved_s, fx->timing.total_s));
    assert_true(close_to(step.total.predicted_s, fx->cost.unfused_time_s));
    assert_true(step.total.fused_s == fx->cost.sol_time_s); /* the step's own bound on the total only */
    for (int g = 0; g < SOL_GROUP_COUNT; g++)
        assert_true(step.groups[g].fused_s == 0);
    assert_true(close_to(step.total.bytes, fx->cost.bytes));
    /* per-op detail is the plan's op, in order */
    for (int i = 0; i < step.n_ops; i++) {
        assert_string_equal(ops[i].name, fx->plan.ops[i].name);
        assert_int_equal(ops[i].layer, fx->plan.ops[i].layer);
        assert_true(ops[i].achieved_s == fx->op_s[i]);
        assert_true(ops[i].predicted_s == fx->cost.ops[i].time_s);
    }
    /* SmolLM2 is dense: 7 groups, no router or comm */
    assert_int_equal(step.groups[SOL_GROUP_MOE_ROUTER].n_ops, 0);
    assert_int_equal(step.groups[SOL_GROUP_COMM].n_ops, 0);
    assert_int_equal(step.groups[SOL_GROUP_ATTN_QKV].n_ops, 30 * 5); /* q, k, v, norm, rope per layer */
    free(ops);
    destroy(fx);
}

static void test_sol_percent(void **state)
{
    (void)state;
    sol_frame_totals t = {.predicted_s = 1e-3, .achieved_s = 4e-3, .bytes = 2e6, .flops = 8e6};
    assert_true(close_to(sol_frame_sol_percent(&t), 25.0));
    assert_true(close_to(sol_frame_gbs(&t), 0.5));
    assert_true(close_to(sol_frame_gflops(&t), 2.0));
    assert_true(close_to(sol_frame_intensity(&t), 4.0));
    sol_frame_totals none = {0};
    assert_true(sol_frame_sol_percent(&none) == 0 && sol_frame_gbs(&none) == 0);
    t.bound_s[SOL_BOUND_COMPUTE] = 2, t.bound_s[SOL_BOUND_MEMORY] = 1;
    assert_int_equal(sol_frame_bound(&t), SOL_BOUND_COMPUTE);
}

static void test_snapshot_must_match_plan(void **state)
{
    (void)state;
    fixture *fx = make("cpu", 10, 1, 1);
    sol_frame_step step;
    sol_err err = {0};
    fx->timing.n_ops = fx->plan.n_ops - 1; /* a ring slot that could not hold the whole step */
    assert_int_equal(sol_frame_step_build(&fx->plan, &fx->cost, &fx->timing, NULL, 0, &step, &err), SOL_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "op times"));
    destroy(fx);
}

/* Ten decode steps after a prefill: the table sums the last 8, the
 * headline is their tokens over their time, history holds all ten. */
static void test_feed_window_and_history(void **state)
{
    (void)state;
    sol_frame_feed feed;
    sol_frame_feed_init(&feed);
    sol_frame_info info = {.mem_bw = 20e9, .peak_flops = 166e9};
    sol_frame f;
    memset(&f, 0, sizeof f);
    sol_err err = {0};
    fixture *pre = make("cpu", 0, 5, 3);
    sol_frame_step step;
    assert_int_equal(sol_frame_step_build(&pre->plan, &pre->cost, &pre->timing, NULL, 0, &step, &err), 0);
    assert_true(step.prefill);
    sol_frame_feed_push(&feed, &step);
    sol_frame_build(&feed, &info, &f);
    assert_true(f.prefill_rows);
    assert_int_equal(f.n_history, 0);
    assert_true(close_to(f.tok_s, 5 / pre->timing.total_s));
    assert_int_equal(f.pos, 5);
    destroy(pre);

    double achieved = 0, predicted = 0, unfused = 0, bytes = 0, step_s[10];
    for (int k = 0; k < 10; k++) {
        fixture *fx = make("cpu", 5 + k, 1, 1 + k);
        fx->timing.step = (uint64_t)(2 + k);
        assert_int_equal(sol_frame_step_build(&fx->plan, &fx->cost, &fx->timing, NULL, 0, &step, &err), 0);
        sol_frame_feed_push(&feed, &step);
        step_s[k] = fx->timing.total_s;
        if (k >= 2) {
            achieved += fx->timing.total_s;
            predicted += fx->cost.sol_time_s;
            unfused += fx->cost.unfused_time_s;
            bytes += fx->cost.bytes;
        }
        destroy(fx);
    }
    f.sort = SOL_SORT_PLAN;
    sol_frame_build(&feed, &info, &f);
    assert_false(f.prefill_rows);
    assert_int_equal(f.window_steps, SOL_FRAME_WINDOW);
    assert_int_equal(f.window_tokens, 8);
    assert_true(close_to(f.total.achieved_s, achieved));
    assert_true(close_to(f.total.predicted_s, unfused));
    assert_true(close_to(f.total.fused_s, predicted));
    assert_true(close_to(f.tok_s, 8 / achieved));
    assert_true(close_to(f.sol_tok_s, 8 / predicted));
    assert_true(close_to(f.unfused_tok_s, 8 / unfused));
    assert_true(f.sol_tok_s >= f.unfused_tok_s);
    assert_true(close_to(f.sol_pct, 100 * predicted / achieved));
    assert_true(close_to(f.gbs, bytes / achieved / 1e9));
    assert_true(close_to(f.bw_pct, 100 * bytes / achieved / 20e9));
    assert_int_equal(f.pos, 15);
    assert_int_equal(f.step, 11);
    assert_int_equal(f.n_history, 10);
    for (int k = 0; k < 10; k++)
        assert_true(close_to(f.history[k], 1 / step_s[k]));
    /* rows: the 7 groups in plan order, shares summing to one */
    assert_int_equal(f.n_rows, 7);
    double share = 0;
    for (int i = 0; i < f.n_rows; i++) {
        share += f.rows[i].share;
        if (i > 0)
            assert_true(f.rows[i].group > f.rows[i - 1].group);
    }
    assert_true(close_to(share, 1));
}

static void test_sort_orders(void **state)
{
    (void)state;
    sol_frame f;
    memset(&f, 0, sizeof f);
    double achieved[] = {3, 1, 4, 1, 5}, predicted[] = {1, 1, 1, 0.5, 4};
    for (int i = 0; i < 5; i++) {
        f.rows[i].group = (sol_op_group)i;
        f.rows[i].t.achieved_s = achieved[i];
        f.rows[i].t.predicted_s = predicted[i];
    }
    f.n_rows = 5;
    f.sort = SOL_SORT_TIME;
    sol_frame_sort(&f);
    for (int i = 1; i < 5; i++)
        assert_true(f.rows[i - 1].t.achieved_s >= f.rows[i].t.achieved_s);
    assert_int_equal(f.rows[3].group, 1); /* ties keep plan order */
    assert_int_equal(f.rows[4].group, 3);
    f.sort = SOL_SORT_SOL;
    sol_frame_sort(&f);
    for (int i = 1; i < 5; i++)
        assert_true(sol_frame_sol_percent(&f.rows[i - 1].t) <= sol_frame_sol_percent(&f.rows[i].t));
    f.sort = SOL_SORT_GAP;
    sol_frame_sort(&f);
    assert_int_equal(f.rows[0].group, 2); /* 4 - 1 = 3 s lost */
    f.sort = SOL_SORT_PLAN;
    sol_frame_sort(&f);
    for (int i = 0; i < 5; i++)
        assert_int_equal(f.rows[i].group, i);
}

/* The roofline raster: the slope rises to the ridge, the ceiling is flat
 * after it, and each group's marker sits at its (intensity, FLOP/s). */
static void test_roofline_raster(void **state)
{
    (void)state;
    sol_frame_info info = {.mem_bw = 20e9, .peak_flops = 160e9}; /* ridge 8 FLOP/B */
    sol_frame f;
    memset(&f, 0, sizeof f);
    f.info = &info;
    /* low intensity, slow; medium; high intensity near the roof */
    double intensity[] = {0.5, 2, 32}, flops_s[] = {1e9, 20e9, 120e9};
    for (int i = 0; i < 3; i++) {
        f.rows[i].group = (sol_op_group)(i * 2);
        f.rows[i].t = (sol_frame_totals){.n_ops = 1, .achieved_s = 1e-3, .bytes = flops_s[i] * 1e-3 / intensity[i],
                                         .flops = flops_s[i] * 1e-3};
    }
    f.n_rows = 3;
    int h = 24, w = 80;
    sol_cell *cells = calloc((size_t)h * w, sizeof *cells);
    assert_int_equal(sol_roofline_raster(&f, h, w, cells), 3);
    int marker_x[3] = {-1, -1, -1}, marker_y[3] = {-1, -1, -1};
    int roof_row = -1, slope_cols = 0, last_slope_top = h;
    for (int x = 0; x < w; x++) {
        int top = -1;
        for (int y = 0; y < h; y++) {
            sol_cell c = cells[y * w + x];
            if (c.kind == SOL_CELL_MARKER)
                for (int i = 0; i < 3; i++)
                    if (c.ch == sol_group_key(f.rows[i].group))
                        marker_x[i] = x, marker_y[i] = y;
            if (c.kind == SOL_CELL_ROOF && roof_row < 0)
                roof_row = y;
            if (c.kind == SOL_CELL_ROOF)
                assert_int_equal(y, roof_row); /* the ceiling is flat */
            if (c.kind == SOL_CELL_SLOPE && top < 0)
                top = y;
        }
        if (top >= 0) {
            assert_true(top <= last_slope_top); /* the slope only climbs */
            last_slope_top = top;
            slope_cols++;
        }
    }
    assert_true(roof_row >= 0 && slope_cols > 10);
    for (int i = 0; i < 3; i++)
        assert_true(marker_x[i] >= 0);
    /* more intensity: further right; more FLOP/s: higher up (smaller row) */
    assert_true(marker_x[0] < marker_x[1] && marker_x[1] < marker_x[2]);
    assert_true(marker_y[0] > marker_y[1] && marker_y[1] > marker_y[2]);
    /* achieved never above the roof: every marker below the roof's row */
    assert_true(marker_y[2] > roof_row);
    /* axes: an origin, and decade labels on both */
    int origin = 0, labels = 0;
    for (int i = 0; i < h * w; i++) {
        origin += cells[i].kind == SOL_CELL_ORIGIN;
        labels += cells[i].kind == SOL_CELL_TEXT;
    }
    assert_int_equal(origin, 1);
    assert_true(labels > 10);
    /* no room: a note instead of a chart */
    assert_int_equal(sol_roofline_raster(&f, 3, 12, cells), 0);
    free(cells);
}

static void test_sparkline_and_bar(void **state)
{
    (void)state;
    double v[] = {0, 1, 2, 4, 8, 8, 0.01};
    unsigned char lv[8];
    assert_int_equal(sol_sparkline(v, 7, 8, lv), 7);
    assert_int_equal(lv[0], 0);
    assert_int_equal(lv[1], 1);
    assert_int_equal(lv[3], 4);
    assert_int_equal(lv[4], 8);
    assert_int_equal(lv[6], 1); /* tiny but not zero: visible */
    assert_int_equal(sol_sparkline(v, 7, 3, lv), 3); /* the last three */
    assert_int_equal(lv[0], 8);
    assert_int_equal(sol_bar_eighths(0.5, 10), 40);
    assert_int_equal(sol_bar_eighths(2.0, 10), 80);
    assert_int_equal(sol_bar_eighths(-1, 10), 0);
    assert_int_equal(sol_bar_eighths(NAN, 10), 0);
}

static void test_utf8(void **state)
{
    (void)state;
    uint32_t cp;
    assert_int_equal(sol_text_next("A", 1, &cp), 1);
    assert_int_equal(sol_text_next("\xC3\xA9", 2, &cp), 2); /* é */
    assert_int_equal(cp, 0xE9);
    assert_int_equal(sol_text_next("\xE2\x96\x88", 3, &cp), 3); /* █ */
    assert_int_equal(cp, 0x2588);
    assert_int_equal(sol_text_next("\xF0\x9F\x98\x80", 4, &cp), 4);
    assert_int_equal(cp, 0x1F600);
    assert_int_equal(sol_text_next("\xE2\x96", 2, &cp), 0);    /* cut short */
    assert_int_equal(sol_text_next("\xC0\xAF", 2, &cp), -1);   /* overlong */
    assert_int_equal(sol_text_next("\xED\xA0\x80", 3, &cp), -1); /* surrogate */
    assert_int_equal(sol_text_next("\xE2\x41", 2, &cp), -1);   /* bad continuation */
    assert_int_equal(sol_text_next("\x80", 1, &cp), -1);
    /* a token ending mid-character keeps the start for the next one */
    assert_int_equal(sol_text_complete("ab\xE2\x96", 4), 2);
    assert_int_equal(sol_text_complete("ab\xE2\x96\x88", 5), 5);
    assert_int_equal(sol_text_complete("a\x80", 2), 2);
    char out[32];
    assert_int_equal(sol_text_sanitize("a\x80z", 3, out, sizeof out), 5);
    assert_string_equal(out, "a\xEF\xBF\xBDz");
    assert_int_equal(sol_text_width("a\xE2\x96\x88\xE4\xB8\xAD"), 4); /* a, █, 中 (wide) */
    /* elision keeps both ends: a long CPU name still ends in "(this machine)" */
    char el[64];
    const char *cpu = "Intel(R) Xeon(R) Processor (this machine)";
    assert_int_equal(sol_text_elide(cpu, 29, el, sizeof el), 29);
    assert_string_equal(el, "Intel(R) Xeon(~(this machine)");
    assert_int_equal(sol_text_elide(cpu, 80, el, sizeof el), (int)strlen(cpu));
    assert_string_equal(el, cpu);
    const char *wide = "ab\xE4\xB8\xAD\xE4\xB8\xAD" "cd"; /* ab中中cd, 8 columns */
    assert_int_equal(sol_text_elide(wide, 5, el, sizeof el), 5);
    assert_string_equal(el, "ab~cd");
    assert_int_equal(sol_text_elide(wide, 6, el, sizeof el), 5); /* never splits 中, never overflows */
    assert_string_equal(el, "ab~cd");
    assert_int_equal(sol_codepoint_width(0x301), 0);                   /* combining accent */
}

static void test_wrap(void **state)
{
    (void)state;
    sol_text_line lines[16];
    char out[64];
    const char *t = "the speed of light is fast\nsecond";
    int n = sol_text_wrap(t, strlen(t), 10, lines, 16);
    const char *want[] = {"the speed", "of light", "is fast", "second"};
    assert_int_equal(n, 4);
    for (int i = 0; i < n; i++) {
        sol_text_render(t, &lines[i], 1, out, sizeof out);
        assert_string_equal(out, want[i]);
    }
    /* only the last lines are kept, oldest first */
    n = sol_text_wrap(t, strlen(t), 10, lines, 2);
    assert_int_equal(n, 2);
    sol_text_render(t, &lines[0], 1, out, sizeof out);
    assert_string_equal(out, "is fast");
    /* a word longer than the line is cut; wide characters count two */
    const char *longw = "abcdefghijkl \xE4\xB8\xAD\xE4\xB8\xAD\xE4\xB8\xAD";
    n = sol_text_wrap(longw, strlen(longw), 5, lines, 16);
    assert_int_equal(n, 5); /* abcde fghij kl 中中 中 */
    sol_text_render(longw, &lines[3], 1, out, sizeof out);
    assert_string_equal(out, "\xE4\xB8\xAD\xE4\xB8\xAD");
    for (int i = 0; i < n; i++)
        assert_true(sol_text_render(longw, &lines[i], 1, out, sizeof out) <= 5);
    /* ASCII fallback: one '?' per character, controls dropped, tabs as spaces */
    const char *mixed = "caf\xC3\xA9\t\x01ok\xE2\x96";
    sol_text_line all = {0, strlen(mixed)};
    assert_int_equal(sol_text_render(mixed, &all, 0, out, sizeof out), 7);
    assert_string_equal(out, "caf? ok");
    /* an empty text is one empty line */
    assert_int_equal(sol_text_wrap("", 0, 10, lines, 4), 1);
    assert_int_equal(lines[0].len, 0);
}

/* --json lines: group totals and per-op times add up to the step time. */
static void test_json_token(void **state)
{
    (void)state;
    fixture *fx = make("cpu", 20, 1, 1);
    sol_frame_op *ops = calloc((size_t)fx->plan.n_ops, sizeof *ops);
    sol_frame_step step;
    sol_err err = {0};
    assert_int_equal(sol_frame_step_build(&fx->plan, &fx->cost, &fx->timing, ops, fx->plan.n_ops, &step, &err), 0);
    cJSON *o = sol_json_token(&step, 3, 7042, " Par\xE2\x96", 6);
    char *text = cJSON_PrintUnformatted(o);
    cJSON *doc = cJSON_Parse(text);
    assert_non_null(doc);
    assert_int_equal(cJSON_GetObjectItem(doc, "token")->valueint, 3);
    assert_int_equal(cJSON_GetObjectItem(doc, "id")->valueint, 7042);
    assert_string_equal(cJSON_GetObjectItem(doc, "text")->valuestring, " Par\xEF\xBF\xBD");
    assert_string_equal(cJSON_GetObjectItem(doc, "phase")->valuestring, "decode");
    double step_s = cJSON_GetObjectItem(doc, "step_s")->valuedouble, sum = 0, group_sum = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(doc, "ops")) sum += cJSON_GetObjectItem(it, "s")->valuedouble;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(doc, "groups")) group_sum += cJSON_GetObjectItem(it, "s")->valuedouble;
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "ops")), fx->plan.n_ops);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "groups")), 7);
    assert_true(fabs(sum - step_s) <= 1e-9 * step_s);
    assert_true(fabs(group_sum - step_s) <= 1e-9 * step_s);
    cJSON_Delete(doc);
    cJSON_Delete(o);
    free(text);
    /* the plain line names its figures */
    char line[256];
    sol_frame_info info = {.mem_bw = 20e9};
    sol_plain_line(line, sizeof line, 16, 64, &step.total, 1, &info);
    assert_non_null(strstr(line, "16/64 tok"));
    assert_non_null(strstr(line, "tok/s"));
    assert_non_null(strstr(line, "GB/s of 20.0"));
    assert_non_null(strstr(line, "% of SOL"));
    free(ops);
    destroy(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_totals_are_sums_of_ops),
        cmocka_unit_test(test_sol_percent),
        cmocka_unit_test(test_snapshot_must_match_plan),
        cmocka_unit_test(test_feed_window_and_history),
        cmocka_unit_test(test_sort_orders),
        cmocka_unit_test(test_roofline_raster),
        cmocka_unit_test(test_sparkline_and_bar),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_wrap),
        cmocka_unit_test(test_json_token),
    };
    return cmocka_run_group_tests_name("tui_frame", tests, NULL, NULL);
}
