/* SVG charts: well-formed XML with finite numbers, one marker per op group
 * and phase, the ridge where peak / bandwidth puts it, escaped file text. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "analyzer/plot.h"
#include "tests/unit/helpers.h"

/* ---- a small XML check ---------------------------------------------------- */

static const char *check_entity(const char *p)
{
    static const char *const known[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strncmp(p, known[i], strlen(known[i])))
            return p + strlen(known[i]);
    fail_msg("unknown entity at \"%.12s\"", p);
    return p + 1;
}

static int is_numeric_attribute(const char *name, size_t len)
{
    static const char *const names[] = {"x",
                                        "y",
                                        "x1",
                                        "y1",
                                        "x2",
                                        "y2",
                                        "cx",
                                        "cy",
                                        "r",
                                        "width",
                                        "height",
                                        "points",
                                        "font-size",
                                        "transform",
                                        "viewBox",
                                        "stroke-width",
                                        "stroke-dasharray",
                                        "fill-opacity"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == len && !strncmp(name, names[i], len))
            return 1;
    return 0;
}

/* Every number in a geometry attribute parses whole and is finite ("nan"
 * and "inf" parse, and fail here). */
static void check_numbers(const char *value, size_t len)
{
    char buf[8192];
    assert_true(len < sizeof buf);
    memcpy(buf, value, len);
    buf[len] = 0;
    for (char *tok = strtok(buf, " ,()"); tok; tok = strtok(NULL, " ,()")) {
        if (!strcmp(tok, "rotate"))
            continue;
        char *end;
        double v = strtod(tok, &end);
        if (*end || !isfinite(v))
            fail_msg("not a finite number: \"%s\"", tok);
    }
}

/* After the name of a start tag: attributes up to '>' or "/>". Returns
 * the character after the tag; *closed says "/>". */
static const char *check_attributes(const char *p, int *closed)
{
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '>' || (p[0] == '/' && p[1] == '>')) {
            *closed = *p == '/';
            return p + (*closed ? 2 : 1);
        }
        const char *name = p;
        while (isalnum((unsigned char)*p) || *p == '-' || *p == ':')
            p++;
        size_t name_len = (size_t)(p - name);
        if (name_len == 0 || p[0] != '=' || p[1] != '"')
            fail_msg("bad attribute at \"%.20s\"", name);
        const char *value = p += 2;
        while (*p && *p != '"') {
            if (*p == '<')
                fail_msg("'<' in an attribute value");
            p = *p == '&' ? check_entity(p) : p + 1;
        }
        assert_int_equal(*p, '"');
        if (is_numeric_attribute(name, name_len))
            check_numbers(value, (size_t)(p - value));
        p++;
    }
}

static const char *tag_name_end(const char *p)
{
    while (isalnum((unsigned char)*p) || *p == '-' || *p == ':')
        p++;
    return p;
}

/* Tags nest and close under one root, entities are known, numbers finite. */
static void assert_well_formed(const char *svg)
{
    const char *stack[64];
    size_t stack_len[64];
    int depth = 0, roots = 0;
    const char *p = svg;
    assert_int_equal(strncmp(p, "<?xml", 5), 0);
    p = strstr(p, "?>") + 2;
    while (*p) {
        if (*p == '&') {
            p = check_entity(p);
        } else if (*p == '>') {
            fail_msg("stray '>' at \"%.20s\"", p);
        } else if (*p != '<') {
            p++;
        } else if (p[1] == '/') {
            const char *name = p + 2, *end = tag_name_end(name);
            assert_true(depth > 0);
            depth--;
            if ((size_t)(end - name) != stack_len[depth] || strncmp(name, stack[depth], stack_len[depth]))
                fail_msg("</%.*s> closes <%.*s>", (int)(end - name), name, (int)stack_len[depth], stack[depth]);
            assert_int_equal(*end, '>');
            p = end + 1;
        } else {
            const char *name = p + 1, *end = tag_name_end(name);
            assert_true(end > name);
            int closed = 0;
            p = check_attributes(end, &closed);
            roots += depth == 0;
            if (!closed) {
                assert_true(depth < 64);
                stack[depth] = name;
                stack_len[depth++] = (size_t)(end - name);
            }
        }
    }
    assert_int_equal(depth, 0);
    assert_int_equal(roots, 1);
    assert_int_equal(strncmp(strstr(svg, "<svg"), "<svg xmlns=", 11), 0);
    assert_null(strstr(svg, "nan"));
    assert_null(strstr(svg, "inf"));
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ---- roofline ------------------------------------------------------------- */

static sol_analysis *analyze(const char *preset, const char *hw_name)
{
    return analyze_preset(preset, NULL, hw_name, 1, 8192, 512, 1);
}

static void destroy(sol_analysis *a) { analysis_destroy(a); }

static char *roofline_svg(const sol_analysis *a)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    sol_err err = {0};
    if (sol_plot_roofline(f, a, &err))
        fail_msg("roofline: %s", err.msg);
    fclose(f);
    return text;
}

/* Op groups that move bytes and do FLOPs, summed here independently. */
static int drawn_groups(const sol_plan *plan, const sol_step_cost *cost, sol_op_group want, double *intensity)
{
    double bytes[SOL_GROUP_COUNT] = {0}, flops[SOL_GROUP_COUNT] = {0};
    for (int i = 0; i < plan->n_ops; i++) {
        bytes[plan->ops[i].group] += cost->ops[i].bytes;
        flops[plan->ops[i].group] += cost->ops[i].flops;
    }
    int n = 0;
    for (int g = 0; g < SOL_GROUP_COUNT; g++)
        n += bytes[g] > 0 && flops[g] > 0;
    *intensity = flops[want] / bytes[want];
    return n;
}

static void test_roofline_llama3_h100(void **state)
{
    (void)state;
    sol_analysis *a = analyze("llama-3-8b", "h100-sxm");
    char *svg = roofline_svg(a);
    assert_well_formed(svg);

    double lm_head_intensity, ffn_down_prefill;
    int decode = drawn_groups(&a->decode, &a->decode_cost, SOL_GROUP_LM_HEAD, &lm_head_intensity);
    int prefill = drawn_groups(&a->prefill, &a->prefill_cost, SOL_GROUP_FFN_DOWN, &ffn_down_prefill);
    assert_true(decode >= 6 && prefill >= 6); /* qkv, score, out, gate_up, down, lm_head, ... */
    assert_int_equal(count(svg, "class=\"pt-decode\""), decode);
    assert_int_equal(count(svg, "class=\"pt-prefill\""), prefill);
    assert_int_equal(count(svg, "class=\"legend\""), 1);

    /* H100 SXM: 989.4 TFLOP/s dense fp16 over 3.35 TB/s = 295 FLOP/B */
    char want[96];
    snprintf(want, sizeof want, ">ridge %.0f FLOP/B<", 989.4e12 / 3.35e12);
    assert_string_equal(want, ">ridge 295 FLOP/B<");
    assert_non_null(strstr(svg, want));
    assert_non_null(strstr(svg, ">fp16 989 TFLOP/s<"));
    assert_non_null(strstr(svg, ">memory 3.35 TB/s<"));
    assert_non_null(strstr(svg, ">Llama-3-8B on NVIDIA H100 SXM5 80GB<"));
    assert_non_null(strstr(svg, "decode: batch 1, context 8192"));

    /* the points are where the groups' own FLOPs and bytes put them */
    snprintf(want, sizeof want, "decode lm_head: %.3g FLOP/B", lm_head_intensity);
    assert_non_null(strstr(svg, want));
    snprintf(want, sizeof want, "prefill ffn.down: %.3g FLOP/B", ffn_down_prefill);
    assert_non_null(strstr(svg, want));
    /* decode at batch 1 moves ~1 FLOP per byte; prefill of 512 tokens ~hundreds */
    assert_true(lm_head_intensity > 0.5 && lm_head_intensity < 2);
    assert_true(ffn_down_prefill > 200);
    free(svg);
    destroy(a);
}

/* Text from files (a model's name, a hardware entry's) cannot break out. */
static void test_roofline_escapes_names(void **state)
{
    (void)state;
    sol_analysis *a = analyze("llama-3-8b", "h100-sxm");
    snprintf(a->model.name, sizeof a->model.name, "Evil <svg onload=\"x\">&'\x01\xff");
    snprintf(a->hw.display_name, sizeof a->hw.display_name, "GPU </text>");
    char *svg = roofline_svg(a);
    assert_well_formed(svg);
    assert_non_null(strstr(svg, "Evil &lt;svg onload=&quot;x&quot;&gt;&amp;&apos;?? on GPU &lt;/text&gt;"));
    assert_null(strstr(svg, "<svg onload"));
    assert_int_equal(count(svg, "<svg"), 1);
    free(svg);
    destroy(a);
}

/* No bandwidth: no roof and no points, still a document that says so. */
static void test_roofline_no_data(void **state)
{
    (void)state;
    sol_analysis *a = analyze("llama-3-8b", "h100-sxm");
    double bw = a->hw.mem_bw.value;
    a->hw.mem_bw.value = 0;
    char *svg = roofline_svg(a);
    assert_well_formed(svg);
    assert_non_null(strstr(svg, ">no data<"));
    assert_int_equal(count(svg, "class=\"pt-"), 0);
    free(svg);
    a->hw.mem_bw.value = NAN;
    svg = roofline_svg(a);
    assert_well_formed(svg);
    assert_non_null(strstr(svg, ">no data<"));
    free(svg);
    a->hw.mem_bw.value = bw;
    destroy(a);
}

/* One ceiling per peak the ops use; peaks of one value share a ceiling. */
static void test_roofline_ceilings(void **state)
{
    (void)state;
    sol_analysis *a = analyze("llama-3-8b", "h100-sxm");
    int changed = 0;
    for (int i = 0; i < a->prefill.n_ops && changed < 2; i++)
        if (a->prefill_cost.ops[i].flops > 0)
            a->prefill_cost.ops[i].peak_used = changed++ ? SOL_PEAK_FP32 : SOL_PEAK_BF16;
    char *svg = roofline_svg(a);
    assert_well_formed(svg);
    assert_int_equal(count(svg, "class=\"ceiling\""), 2);
    assert_non_null(strstr(svg, ">fp16/bf16 989 TFLOP/s<"));
    char want[64], value[32];
    sol_fmt_count(value, sizeof value, a->hw.peak[SOL_PEAK_FP32].value, "FLOP/s");
    snprintf(want, sizeof want, ">fp32 %s<", value);
    assert_non_null(strstr(svg, want));
    snprintf(want, sizeof want, ">ridge %.0f FLOP/B<", a->hw.peak[SOL_PEAK_FP32].value / a->hw.mem_bw.value);
    assert_non_null(strstr(svg, want));
    free(svg);
    destroy(a);
}

/* Ceilings and points decades apart, ridges past what a double holds:
 * still a document of finite numbers. */
static void test_roofline_extremes(void **state)
{
    (void)state;
    sol_analysis *a = analyze("llama-3-8b", "h100-sxm");
    const double bandwidths[] = {1e300, 1e-300, 1e-30, 5e-324, INFINITY, -1};
    for (size_t i = 0; i < sizeof bandwidths / sizeof bandwidths[0]; i++) {
        a->hw.mem_bw.value = bandwidths[i];
        char *svg = roofline_svg(a);
        assert_well_formed(svg);
        free(svg);
    }
    a->hw.mem_bw.value = 3.35e12;
    a->hw.peak[SOL_PEAK_FP16].value = 1e-300;
    char *svg = roofline_svg(a);
    assert_well_formed(svg);
    free(svg);
    destroy(a);
}

static void test_roofline_errors(void **state)
{
    (void)state;
    sol_analysis *a = analyze("llama-3-8b", "h100-sxm");
    sol_err err = {0};
    assert_int_equal(sol_plot_roofline(NULL, a, &err), SOL_ERR_USAGE);
    assert_int_equal(sol_plot_roofline(stdout, NULL, &err), SOL_ERR_USAGE);
    FILE *read_only = fopen("/dev/null", "r");
    assert_non_null(read_only);
    assert_int_equal(sol_plot_roofline(read_only, a, &err), SOL_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "writing"));
    fclose(read_only);
    destroy(a);
}

/* ---- line charts ---------------------------------------------------------- */

static char *xy_svg(const sol_plot_xy_spec *spec)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    sol_err err = {0};
    if (sol_plot_xy(f, spec, &err))
        fail_msg("xy: %s", err.msg);
    fclose(f);
    assert_well_formed(text);
    return text;
}

static const double batch[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
static const double tok_s[] = {120, 238, 470, 920, 1750, 3200, 5400, 7900, 9600};

/* A log2 batch sweep: every drawable point marked, lines for vertical markers. */
static void test_xy_sweep(void **state)
{
    (void)state;
    const double odd_x[] = {0, -1, 1, 2, 4, NAN}, odd_y[] = {5, 5, 6, 7, INFINITY, 9};
    const sol_plot_series series[] = {{"H100 <fp16>", batch, tok_s, 9}, {"A100 & co", odd_x, odd_y, 6}};
    const sol_plot_marker markers[] = {
        {96, "compute-bound from batch 96"}, {312, "out of memory from batch 312"}, {0, "never drawn"}};
    const sol_plot_xy_spec spec = {.title = "Llama-3-8B: tok/s against batch",
                                   .x_label = "batch",
                                   .y_label = "tok/s",
                                   .x_scale = SOL_PLOT_LOG2,
                                   .y_scale = SOL_PLOT_LINEAR,
                                   .series = series,
                                   .n_series = 2,
                                   .markers = markers,
                                   .n_markers = 3};
    char *svg = xy_svg(&spec);
    assert_int_equal(count(svg, "class=\"series\""), 2);
    assert_int_equal(count(svg, "class=\"pt\""), 9 + 2); /* x <= 0, NaN and y = inf are skipped */
    assert_int_equal(count(svg, "class=\"marker\""), 2); /* x = 0 has no place on a log axis */
    assert_non_null(strstr(svg, ">compute-bound from batch 96<"));
    assert_non_null(strstr(svg, ">out of memory from batch 312<"));
    assert_null(strstr(svg, "never drawn"));
    assert_non_null(strstr(svg, ">H100 &lt;fp16&gt;<"));
    assert_non_null(strstr(svg, ">A100 &amp; co<"));
    /* log2 ticks: powers of two up to the OOM marker's 512; y from 0 */
    assert_non_null(strstr(svg, ">1</text>"));
    assert_non_null(strstr(svg, ">512</text>"));
    assert_non_null(strstr(svg, ">0</text>"));
    assert_non_null(strstr(svg, ">10 k</text>"));
    free(svg);
}

/* Contexts read as 1k .. 128k; a log y axis skips what it cannot show. */
static void test_xy_log_axes(void **state)
{
    (void)state;
    const double ctx[] = {1024, 4096, 16384, 131072}, y[] = {0, -3, 10, 1000};
    const sol_plot_series series[] = {{"decode", ctx, y, 4}};
    const sol_plot_xy_spec spec = {.title = "t",
                                   .x_label = "context",
                                   .y_label = "tok/s",
                                   .x_scale = SOL_PLOT_LOG2,
                                   .y_scale = SOL_PLOT_LOG10,
                                   .series = series,
                                   .n_series = 1};
    char *svg = xy_svg(&spec);
    assert_int_equal(count(svg, "class=\"pt\""), 2);
    assert_non_null(strstr(svg, ">16k</text>")); /* the points at 1k and 4k have y <= 0 */
    assert_null(strstr(svg, ">4k</text>"));
    assert_non_null(strstr(svg, ">128k</text>"));
    assert_non_null(strstr(svg, ">10</text>"));
    assert_non_null(strstr(svg, ">1 k</text>"));
    free(svg);
}

static void test_xy_no_data(void **state)
{
    (void)state;
    const double x[] = {1, 2, 3}, y[] = {0, -1, NAN};
    const sol_plot_series series[] = {{"nothing", x, y, 3}};
    sol_plot_xy_spec spec = {
        .title = "empty", .x_scale = SOL_PLOT_LINEAR, .y_scale = SOL_PLOT_LOG10, .series = series, .n_series = 1};
    char *svg = xy_svg(&spec);
    assert_non_null(strstr(svg, ">no data<"));
    assert_int_equal(count(svg, "class=\"pt\""), 0);
    free(svg);
    spec.n_series = 0;
    svg = xy_svg(&spec);
    assert_non_null(strstr(svg, ">no data<"));
    free(svg);
    /* one point: the axes still have a width */
    const double one_x[] = {7}, one_y[] = {3};
    const sol_plot_series single[] = {{"one", one_x, one_y, 1}};
    spec.series = single;
    spec.n_series = 1;
    spec.y_scale = SOL_PLOT_LINEAR;
    svg = xy_svg(&spec);
    assert_int_equal(count(svg, "class=\"pt\""), 1);
    free(svg);
}

/* Magnitudes at the edges of a double on linear axes: finite output. */
static void test_xy_extremes(void **state)
{
    (void)state;
    const double x[] = {1e-310, 1e300, -1e300, 5, 1e308}, y[] = {1e300, -1e300, 0, 1e-320, 1};
    const sol_plot_series series[] = {{"edge", x, y, 5}};
    sol_plot_xy_spec spec = {.x_scale = SOL_PLOT_LINEAR, .y_scale = SOL_PLOT_LINEAR, .series = series, .n_series = 1};
    char *svg = xy_svg(&spec);
    assert_int_equal(count(svg, "class=\"pt\""), 4); /* 1e308 is past what an axis spans */
    free(svg);
    const double tiny_x[] = {1e-320, 2e-320}, tiny_y[] = {1e-320, 3e-320};
    const sol_plot_series tiny[] = {{"tiny", tiny_x, tiny_y, 2}};
    spec.series = tiny;
    svg = xy_svg(&spec);
    free(svg);
    spec.x_scale = spec.y_scale = SOL_PLOT_LOG2;
    svg = xy_svg(&spec);
    free(svg);
}

static void test_xy_bad_specs(void **state)
{
    (void)state;
    sol_plot_series many[SOL_PLOT_MAX_SERIES + 1];
    for (int i = 0; i <= SOL_PLOT_MAX_SERIES; i++)
        many[i] = (sol_plot_series){"s", batch, tok_s, 9};
    sol_plot_xy_spec spec = {.series = many, .n_series = SOL_PLOT_MAX_SERIES};
    char *svg = xy_svg(&spec); /* eight is fine */
    assert_int_equal(count(svg, "class=\"series\""), SOL_PLOT_MAX_SERIES);
    free(svg);
    sol_err err = {0};
    spec.n_series = SOL_PLOT_MAX_SERIES + 1;
    assert_int_equal(sol_plot_xy(stdout, &spec, &err), SOL_ERR_USAGE);
    many[0].x = NULL;
    spec.n_series = 1;
    assert_int_equal(sol_plot_xy(stdout, &spec, &err), SOL_ERR_USAGE);
    assert_int_equal(sol_plot_xy(stdout, NULL, &err), SOL_ERR_USAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roofline_llama3_h100),
        cmocka_unit_test(test_roofline_escapes_names),
        cmocka_unit_test(test_roofline_no_data),
        cmocka_unit_test(test_roofline_ceilings),
        cmocka_unit_test(test_roofline_extremes),
        cmocka_unit_test(test_roofline_errors),
        cmocka_unit_test(test_xy_sweep),
        cmocka_unit_test(test_xy_log_axes),
        cmocka_unit_test(test_xy_no_data),
        cmocka_unit_test(test_xy_extremes),
        cmocka_unit_test(test_xy_bad_specs),
    };
    return cmocka_run_group_tests_name("plot", tests, NULL, NULL);
}
