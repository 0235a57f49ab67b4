// The host half of the autotuner's counters (kernels/cuda/cupti_host.cpp)
// on a machine without a GPU: configuration images and pass counts for the
// sol metric set on GA100, AD102 and GH100, errors that name the bad chip
// or metric, and CUPTI made unloadable giving a notice, not a failure.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/cupti_host.h"

static const char *const chips[] = {"GA100", "AD102", "GH100"};

static sol_cupti *open_cupti(void)
{
    sol_cupti *cupti = nullptr;
    sol_err err = {};
    int rc = sol_cupti_open(&cupti, &err);
    if (rc != SOL_OK)
        fail_msg("libcupti does not open on this machine (the CUDA toolkit ships it): %s", err.msg);
    return cupti;
}

static sol_cupti_config *sol_config(sol_cupti *cupti, const char *chip)
{
    sol_cupti_config *cfg = nullptr;
    sol_err err = {};
    int rc = sol_cupti_config_new(cupti, chip, sol_cupti_sol_metrics, SOL_CUPTI_N_METRICS, nullptr, &cfg, &err);
    if (rc != SOL_OK)
        fail_msg("%s: %s", chip, err.msg);
    return cfg;
}

static bool has_chip(sol_cupti *cupti, const char *chip)
{
    const char *const *names = nullptr;
    size_t n = 0;
    sol_err err = {};
    assert_int_equal(sol_cupti_chips(cupti, &names, &n, &err), SOL_OK);
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], chip) == 0)
            return true;
    return false;
}

static void test_supported_chips(void **state)
{
    (void)state;
    sol_cupti *cupti = open_cupti();
    for (const char *chip : chips)
        assert_true(has_chip(cupti, chip));
    assert_false(has_chip(cupti, "GZ999"));
    sol_cupti_close(cupti);
}

// Every chip configures the whole sol set; the pass count is how often a
// trial's counter run replays each kernel. With CUDA 13.0 the set needs as
// many passes as sm__throughput alone (a maximum over many sub-unit
// throughputs): the other five metrics ride along in its passes.
static void test_sol_metrics_configure(void **state)
{
    (void)state;
    sol_cupti *cupti = open_cupti();
    printf("  %-6s %6s %12s   (%s)\n", "chip", "passes", "image bytes", sol_cupti_path(cupti));
    for (const char *chip : chips) {
        sol_cupti_config *cfg = sol_config(cupti, chip);
        size_t bytes = 0;
        const uint8_t *image = sol_cupti_config_image(cfg, &bytes);
        size_t passes = sol_cupti_config_passes(cfg);
        printf("  %-6s %6zu %12zu\n", chip, passes, bytes);
        assert_non_null(image);
        assert_true(bytes > 0);
        // at least one pass per unit family counted (dram, lts, sm, gpu
        // timer share passes where they can), and far below a replay count
        // that would make per-trial counters impractical
        assert_true(passes >= 2 && passes <= 32);
        assert_int_equal(sol_cupti_config_metric_count(cfg), SOL_CUPTI_N_METRICS);
        sol_cupti_config_free(cfg);
    }
    sol_cupti_close(cupti);
}

// The units CUPTI states for the set are what the autotuner's columns say.
static void test_metric_units(void **state)
{
    (void)state;
    sol_cupti *cupti = open_cupti();
    sol_cupti_config *cfg = sol_config(cupti, "GH100");
    static const char *const unit[SOL_CUPTI_N_METRICS] = {"byte", "byte", "byte", "percent", "percent",
                                                          "nanosecond"};
    for (size_t i = 0; i < SOL_CUPTI_N_METRICS; i++) {
        assert_string_equal(sol_cupti_config_metric(cfg, i), sol_cupti_sol_metrics[i]);
        assert_string_equal(sol_cupti_config_unit(cfg, i), unit[i]);
    }
    assert_null(sol_cupti_config_metric(cfg, SOL_CUPTI_N_METRICS));
    sol_cupti_config_free(cfg);
    sol_cupti_close(cupti);
}

static size_t passes_of(sol_cupti *cupti, const char *chip, const char *const *metrics, size_t n)
{
    sol_cupti_config *cfg = nullptr;
    sol_err err = {};
    if (sol_cupti_config_new(cupti, chip, metrics, n, nullptr, &cfg, &err) != SOL_OK)
        fail_msg("%s: %s", chip, err.msg);
    size_t passes = sol_cupti_config_passes(cfg);
    sol_cupti_config_free(cfg);
    return passes;
}

// The set is scheduled as one: it needs at least the passes of its
// costliest metric and at most the sum of every metric's own.
static void test_passes_scheduled_together(void **state)
{
    (void)state;
    sol_cupti *cupti = open_cupti();
    for (const char *chip : chips) {
        size_t most = 0, sum = 0;
        printf("  %s alone:", chip);
        for (size_t i = 0; i < SOL_CUPTI_N_METRICS; i++) {
            size_t alone = passes_of(cupti, chip, &sol_cupti_sol_metrics[i], 1);
            printf(" %zu", alone);
            assert_true(alone >= 1);
            most = alone > most ? alone : most;
            sum += alone;
        }
        size_t together = passes_of(cupti, chip, sol_cupti_sol_metrics, SOL_CUPTI_N_METRICS);
        printf(" -> together %zu\n", together);
        assert_true(together >= most && together <= sum);
        assert_true(together < sum); // what adding them in one call buys
    }
    assert_int_equal(passes_of(cupti, "GH100", sol_cupti_sol_metrics, 1), 1); // one counter, one pass
    sol_cupti_close(cupti);
}

static void test_unknown_chip_named(void **state)
{
    (void)state;
    sol_cupti *cupti = open_cupti();
    sol_cupti_config *cfg = nullptr;
    sol_err err = {};
    int rc = sol_cupti_config_new(cupti, "GZ999", sol_cupti_sol_metrics, SOL_CUPTI_N_METRICS, nullptr, &cfg, &err);
    printf("  error: %s\n", err.msg);
    assert_int_equal(rc, SOL_ERR_RUNTIME);
    assert_int_equal(err.code, SOL_ERR_RUNTIME);
    assert_null(cfg);
    assert_non_null(strstr(err.msg, "\"GZ999\""));
    assert_non_null(strstr(err.msg, "CUPTI_ERROR_INVALID_CHIP_NAME"));
    assert_non_null(strstr(err.msg, "GH100")); // the known chips are listed
    sol_cupti_close(cupti);
}

static void expect_metric_error(const char *metric, const char *expect)
{
    sol_cupti *cupti = open_cupti();
    const char *metrics[] = {"dram__bytes_read.sum", metric, "gpu__time_duration.sum"};
    sol_cupti_config *cfg = nullptr;
    sol_err err = {};
    int rc = sol_cupti_config_new(cupti, "AD102", metrics, 3, nullptr, &cfg, &err);
    printf("  error: %s\n", err.msg);
    assert_int_equal(rc, SOL_ERR_RUNTIME);
    assert_null(cfg);
    char quoted[128];
    snprintf(quoted, sizeof quoted, "\"%s\"", metric);
    assert_non_null(strstr(err.msg, quoted));
    assert_non_null(strstr(err.msg, "AD102"));
    assert_non_null(strstr(err.msg, expect));
    sol_cupti_close(cupti);
}

static void test_bogus_metric_named(void **state)
{
    (void)state;
    expect_metric_error("dram__bogus_bytes.sum", "CUPTI_ERROR_INVALID_METRIC_NAME");
    expect_metric_error("dram__bytes_read.bogus_rollup", "CUPTI_ERROR_INVALID_METRIC_NAME");
    // a known counter without its rollup is known but not configurable
    expect_metric_error("dram__bytes_read", "needs its rollup");
}

static void test_empty_requests_refused(void **state)
{
    (void)state;
    sol_cupti *cupti = open_cupti();
    sol_cupti_config *cfg = nullptr;
    sol_err err = {};
    assert_int_equal(sol_cupti_config_new(cupti, "GH100", sol_cupti_sol_metrics, 0, nullptr, &cfg, &err),
                     SOL_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "no metrics"));
    assert_int_equal(sol_cupti_config_new(cupti, "", sol_cupti_sol_metrics, 1, nullptr, &cfg, &err),
                     SOL_ERR_RUNTIME);
    assert_null(cfg);
    sol_cupti_close(cupti);
}

// Counter data comes only from a GPU; without it the evaluation refuses
// before CUPTI is asked.
static void test_evaluate_needs_counter_data(void **state)
{
    (void)state;
    sol_cupti *cupti = open_cupti();
    sol_cupti_config *cfg = sol_config(cupti, "GA100");
    double values[SOL_CUPTI_N_METRICS];
    size_t ranges = 7;
    sol_err err = {};
    assert_int_equal(sol_cupti_evaluate(cfg, nullptr, 0, 0, values, &err), SOL_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "counter data"));
    assert_int_equal(sol_cupti_counter_ranges(cfg, nullptr, 0, &ranges, &err), SOL_ERR_RUNTIME);
    assert_int_equal(ranges, 0);
    sol_cupti_config_free(cfg);
    sol_cupti_close(cupti);
}

static void expect_unavailable(const char *lib, const char *expect)
{
    setenv(SOL_CUPTI_LIB_ENV, lib, 1);
    sol_cupti *cupti = reinterpret_cast<sol_cupti *>(1);
    sol_err err = {};
    int rc = sol_cupti_open(&cupti, &err);
    unsetenv(SOL_CUPTI_LIB_ENV);
    printf("  notice: %s\n", err.msg);
    assert_int_equal(rc, SOL_CUPTI_UNAVAILABLE);
    assert_int_equal(err.code, SOL_CUPTI_UNAVAILABLE);
    assert_null(cupti);
    assert_null(strchr(err.msg, '\n')); // one line
    assert_non_null(strstr(err.msg, "CUPTI unavailable"));
    assert_non_null(strstr(err.msg, "timing only"));
    assert_non_null(strstr(err.msg, expect));
}

// A missing file, and a library that loads but has no host API (libc).
static void test_unloadable_cupti_is_a_notice(void **state)
{
    (void)state;
    expect_unavailable("/nonexistent/libcupti.so", "/nonexistent/libcupti.so");
    expect_unavailable("libc.so.6", "cuptiGetResultString");
    sol_cupti *cupti = open_cupti(); // the override is gone: found again
    sol_cupti_close(cupti);
}

// What the target half gets back from the Range Profiler's calls.
static void test_results_sorted(void **state)
{
    (void)state;
    sol_cupti *cupti = open_cupti();
    sol_err err = {};
    assert_int_equal(sol_cupti_result(cupti, 0, "cuptiRangeProfilerEnable", &err), SOL_OK);
    assert_int_equal(sol_cupti_result(cupti, 35, "cuptiRangeProfilerEnable", &err), SOL_CUPTI_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "CUPTI_ERROR_INSUFFICIENT_PRIVILEGES"));
    assert_non_null(strstr(err.msg, "timing only"));
    assert_int_equal(sol_cupti_result(cupti, 43, "cuptiRangeProfilerEnable", &err), SOL_CUPTI_UNAVAILABLE);
    assert_non_null(strstr(err.msg, "MIG"));
    assert_int_equal(sol_cupti_result(cupti, 1, "cuptiRangeProfilerSetConfig", &err), SOL_ERR_RUNTIME);
    assert_string_equal(err.msg, "cuptiRangeProfilerSetConfig: CUPTI_ERROR_INVALID_PARAMETER");
    sol_cupti_close(cupti);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_supported_chips),       cmocka_unit_test(test_sol_metrics_configure),
        cmocka_unit_test(test_metric_units),          cmocka_unit_test(test_passes_scheduled_together),
        cmocka_unit_test(test_unknown_chip_named),    cmocka_unit_test(test_bogus_metric_named),
        cmocka_unit_test(test_empty_requests_refused), cmocka_unit_test(test_evaluate_needs_counter_data),
        cmocka_unit_test(test_unloadable_cupti_is_a_notice), cmocka_unit_test(test_results_sorted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
