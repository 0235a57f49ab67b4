// The target half of the counters (kernels/cuda/cupti_count.cpp) without a
// GPU: the real libcupti builds the GH100 configuration (host API), and
// fakes stand in for the calls that need a device. They hold the profiler
// to the Range Profiler's protocol (Start, PushRange, the work, PopRange,
// Stop, once per pass until every pass is submitted; DecodeData; one range
// evaluated) and say what a device would answer. Then the plugin's glue
// (kernels/cuda/counters.cu) on this GPU-less machine: counting off with
// one notice, the work never run.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include <cstring>

#include "kernels/cuda/counters.h"
#include "kernels/cuda/cupti_impl.h"

namespace {

// What the fake device does and what it saw.
struct fake_device {
    CUptiResult enable_result = CUPTI_SUCCESS;
    size_t dropped = 0, ranges = 1;
    bool never_all = false;
    size_t want_passes = 0; // Stop says all submitted after this many
    // protocol state and counts
    bool started = false, in_range = false;
    int inits = 0, deinits = 0, enables = 0, disables = 0, arms = 0, set_configs = 0;
    size_t passes = 0, prepares = 0, runs = 0, evaluations = 0;
    int fail_run_at = -1; // the work fails on this run (0-based)
};
fake_device dev;
int fake_object; // its address is the profiler object

CUpti_RangeProfiler_Object *object() { return reinterpret_cast<CUpti_RangeProfiler_Object *>(&fake_object); }

CUptiResult fake_init(CUpti_Profiler_Initialize_Params *) { dev.inits++; return CUPTI_SUCCESS; }
CUptiResult fake_deinit(CUpti_Profiler_DeInitialize_Params *) { dev.deinits++; return CUPTI_SUCCESS; }
CUptiResult fake_chip(CUpti_Device_GetChipName_Params *p)
{
    p->pChipName = "GH100";
    return CUPTI_SUCCESS;
}
CUptiResult fake_availability(CUpti_Profiler_GetCounterAvailability_Params *p)
{
    p->counterAvailabilityImageSize = 0; // none: the configuration is built for the whole chip
    return CUPTI_SUCCESS;
}
CUptiResult fake_enable(CUpti_RangeProfiler_Enable_Params *p)
{
    assert_non_null(p->ctx);
    if (dev.enable_result != CUPTI_SUCCESS)
        return dev.enable_result;
    dev.enables++;
    p->pRangeProfilerObject = object();
    return CUPTI_SUCCESS;
}
CUptiResult fake_disable(CUpti_RangeProfiler_Disable_Params *p)
{
    assert_ptr_equal(p->pRangeProfilerObject, object());
    dev.disables++;
    return CUPTI_SUCCESS;
}
CUptiResult fake_data_size(CUpti_RangeProfiler_GetCounterDataSize_Params *p)
{
    assert_int_equal(p->numMetrics, SOL_CUPTI_N_METRICS);
    assert_int_equal(p->maxNumOfRanges, 1);
    p->counterDataSize = 4096;
    return CUPTI_SUCCESS;
}
CUptiResult fake_arm(CUpti_RangeProfiler_CounterDataImage_Initialize_Params *p)
{
    assert_int_equal(p->counterDataSize, 4096);
    dev.arms++;
    return CUPTI_SUCCESS;
}
CUptiResult fake_set_config(CUpti_RangeProfiler_SetConfig_Params *p)
{
    assert_non_null(p->pConfig);
    assert_true(p->configSize > 0);
    assert_int_equal(p->range, CUPTI_UserRange);
    assert_int_equal(p->replayMode, CUPTI_UserReplay);
    assert_int_equal(p->maxRangesPerPass, 1);
    assert_int_equal(p->numNestingLevels, 1);
    dev.set_configs++;
    return CUPTI_SUCCESS;
}
CUptiResult fake_start(CUpti_RangeProfiler_Start_Params *)
{
    assert_false(dev.started);
    dev.started = true;
    dev.passes++;
    return CUPTI_SUCCESS;
}
CUptiResult fake_push(CUpti_RangeProfiler_PushRange_Params *p)
{
    assert_true(dev.started);
    assert_false(dev.in_range);
    assert_non_null(p->pRangeName);
    dev.in_range = true;
    return CUPTI_SUCCESS;
}
CUptiResult fake_pop(CUpti_RangeProfiler_PopRange_Params *)
{
    assert_true(dev.in_range);
    dev.in_range = false;
    return CUPTI_SUCCESS;
}
CUptiResult fake_stop(CUpti_RangeProfiler_Stop_Params *p)
{
    assert_true(dev.started);
    assert_false(dev.in_range);
    dev.started = false;
    p->isAllPassSubmitted = !dev.never_all && dev.passes >= dev.want_passes;
    return CUPTI_SUCCESS;
}
CUptiResult fake_decode(CUpti_RangeProfiler_DecodeData_Params *p)
{
    assert_false(dev.started);
    p->numOfRangeDropped = dev.dropped;
    return CUPTI_SUCCESS;
}
CUptiResult fake_info(CUpti_RangeProfiler_GetCounterDataInfo_Params *p)
{
    p->numTotalRanges = dev.ranges;
    return CUPTI_SUCCESS;
}
// Metric i of the one range is 1000 (i + 1), plus the evaluation's number.
CUptiResult fake_evaluate(CUpti_Profiler_Host_EvaluateToGpuValues_Params *p)
{
    assert_int_equal(p->rangeIndex, 0);
    assert_int_equal(p->numMetrics, SOL_CUPTI_N_METRICS);
    for (size_t i = 0; i < p->numMetrics; i++)
        p->pMetricValues[i] = 1000.0 * (double)(i + 1) + (double)dev.evaluations;
    dev.evaluations++;
    return CUPTI_SUCCESS;
}

sol_cupti *open_faked(void)
{
    sol_cupti *cupti = nullptr;
    sol_err err = {};
    if (sol_cupti_open(&cupti, &err) != SOL_OK)
        fail_msg("libcupti does not open on this machine (the CUDA toolkit ships it): %s", err.msg);
    cupti->cuptiProfilerInitialize = fake_init;
    cupti->cuptiProfilerDeInitialize = fake_deinit;
    cupti->cuptiDeviceGetChipName = fake_chip;
    cupti->cuptiProfilerGetCounterAvailability = fake_availability;
    cupti->cuptiRangeProfilerEnable = fake_enable;
    cupti->cuptiRangeProfilerDisable = fake_disable;
    cupti->cuptiRangeProfilerGetCounterDataSize = fake_data_size;
    cupti->cuptiRangeProfilerCounterDataImageInitialize = fake_arm;
    cupti->cuptiRangeProfilerSetConfig = fake_set_config;
    cupti->cuptiRangeProfilerStart = fake_start;
    cupti->cuptiRangeProfilerPushRange = fake_push;
    cupti->cuptiRangeProfilerPopRange = fake_pop;
    cupti->cuptiRangeProfilerStop = fake_stop;
    cupti->cuptiRangeProfilerDecodeData = fake_decode;
    cupti->cuptiRangeProfilerGetCounterDataInfo = fake_info;
    cupti->cuptiProfilerHostEvaluateToGpuValues = fake_evaluate;
    return cupti;
}

int fake_context; // a CUcontext is only passed through

sol_cupti_counter *new_counter(sol_cupti *cupti)
{
    sol_cupti_counter *c = nullptr;
    sol_err err = {};
    if (sol_cupti_counter_new(cupti, 0, &fake_context, sol_cupti_sol_metrics, SOL_CUPTI_N_METRICS, &c, &err) != SOL_OK)
        fail_msg("%s", err.msg);
    return c;
}

int prepare_outside(void *, sol_err *)
{
    assert_false(dev.started); // before Start: an L2 flush is never counted
    dev.prepares++;
    return 0;
}

int run_inside(void *, sol_err *err)
{
    assert_true(dev.in_range);
    if ((int)dev.runs++ == dev.fail_run_at) {
        snprintf(err->msg, sizeof err->msg, "the work failed on purpose");
        err->code = SOL_ERR_RUNTIME;
        return SOL_ERR_RUNTIME;
    }
    return 0;
}

const sol_cupti_work work = {prepare_outside, run_inside, nullptr};

int setup(void **)
{
    dev = fake_device();
    return 0;
}

// The GH100 set takes 8 passes (the host API's count): the work runs once
// in each, inside the range, the flush before each; the values are the
// evaluation of the one range, in the metrics' order.
void test_count_replays_each_pass(void **)
{
    sol_cupti *cupti = open_faked();
    sol_cupti_counter *c = new_counter(cupti);
    assert_string_equal(sol_cupti_counter_chip(c), "GH100");
    dev.want_passes = sol_cupti_counter_passes(c);
    assert_int_equal(dev.want_passes, 8);
    double values[SOL_CUPTI_N_METRICS] = {};
    sol_err err = {};
    assert_int_equal(sol_cupti_count(c, &work, values, &err), SOL_OK);
    assert_int_equal(dev.passes, 8);
    assert_int_equal(dev.runs, 8);
    assert_int_equal(dev.prepares, 8);
    for (int i = 0; i < SOL_CUPTI_N_METRICS; i++)
        assert_true(values[i] == 1000.0 * (i + 1));
    // a second count starts from a fresh image bound again
    dev.passes = 0;
    assert_int_equal(sol_cupti_count(c, &work, values, &err), SOL_OK);
    assert_int_equal(dev.arms, 2);
    assert_int_equal(dev.set_configs, 2);
    assert_true(values[0] == 1001.0);
    sol_cupti_counter_free(c);
    assert_int_equal(dev.enables, 1);
    assert_int_equal(dev.disables, 1);
    assert_int_equal(dev.inits, 1);
    assert_int_equal(dev.deinits, 1);
    sol_cupti_close(cupti);
}

// No rights to count: the notice (not an error), and nothing left enabled.
void test_privileges_are_a_notice(void **)
{
    sol_cupti *cupti = open_faked();
    dev.enable_result = CUPTI_ERROR_INSUFFICIENT_PRIVILEGES;
    sol_cupti_counter *c = nullptr;
    sol_err err = {};
    int rc = sol_cupti_counter_new(cupti, 0, &fake_context, sol_cupti_sol_metrics, SOL_CUPTI_N_METRICS, &c, &err);
    assert_int_equal(rc, SOL_CUPTI_UNAVAILABLE);
    assert_null(c);
    assert_non_null(strstr(err.msg, "CUPTI_ERROR_INSUFFICIENT_PRIVILEGES"));
    assert_non_null(strstr(err.msg, "timing only"));
    assert_int_equal(dev.disables, 0);
    assert_int_equal(dev.deinits, dev.inits);
    sol_cupti_close(cupti);
}

// The work failing in pass 3: its error comes back, the range and the pass
// were closed, and the counter counts again afterwards.
void test_failing_work_closes_its_pass(void **)
{
    sol_cupti *cupti = open_faked();
    sol_cupti_counter *c = new_counter(cupti);
    dev.want_passes = sol_cupti_counter_passes(c);
    dev.fail_run_at = 2;
    double values[SOL_CUPTI_N_METRICS] = {};
    sol_err err = {};
    assert_int_equal(sol_cupti_count(c, &work, values, &err), SOL_ERR_RUNTIME);
    assert_string_equal(err.msg, "the work failed on purpose");
    assert_false(dev.started);
    assert_false(dev.in_range);
    assert_int_equal(dev.runs, 3);
    assert_int_equal(dev.evaluations, 0);
    dev.fail_run_at = -1;
    dev.passes = 0;
    assert_int_equal(sol_cupti_count(c, &work, values, &err), SOL_OK);
    assert_int_equal(dev.passes, dev.want_passes);
    sol_cupti_counter_free(c);
    sol_cupti_close(cupti);
}

// What a device may answer that makes the count worthless: each an error
// that says so, never values.
void test_bad_counts_refused(void **)
{
    sol_cupti *cupti = open_faked();
    sol_cupti_counter *c = new_counter(cupti);
    double values[SOL_CUPTI_N_METRICS] = {};
    sol_err err = {};
    dev.want_passes = sol_cupti_counter_passes(c);
    dev.dropped = 1;
    assert_int_equal(sol_cupti_count(c, &work, values, &err), SOL_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "dropped"));
    dev.dropped = 0;
    dev.ranges = 2;
    dev.passes = 0;
    assert_int_equal(sol_cupti_count(c, &work, values, &err), SOL_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "2 ranges"));
    dev.ranges = 1;
    dev.passes = 0;
    dev.runs = 0;
    dev.never_all = true; // CUPTI never satisfied: stopped two passes past its own count
    assert_int_equal(sol_cupti_count(c, &work, values, &err), SOL_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "more than 10 passes"));
    assert_int_equal(dev.runs, 10);
    assert_int_equal(dev.evaluations, 0);
    sol_cupti_counter_free(c);
    sol_cupti_close(cupti);
}

int never_run(void *, sol_err *)
{
    fail_msg("the work ran although nothing can count it");
    return 0;
}

// The plugin's glue on this machine (no GPU): counting turns off with one
// notice, the work is not run, and it is not tried again.
void test_glue_without_gpu(void **)
{
    sol_cuda_counting c;
    sol_cupti_work w = {nullptr, never_run, nullptr};
    double values[SOL_CUDA_STEP_N_METRICS] = {};
    sol_err err = {};
    assert_int_equal(sol_cuda_count(&c, 0, sol_cuda_step_metrics, SOL_CUDA_STEP_N_METRICS, &w, values, &err), 0);
    assert_true(c.off);
    assert_non_null(strstr(c.notice, "timing only"));
    printf("  notice: %s\n", c.notice);
    assert_int_equal(err.code, 0);
    assert_int_equal(sol_cuda_count(&c, 0, sol_cuda_step_metrics, SOL_CUDA_STEP_N_METRICS, &w, values, &err), 0);
    sol_cuda_counting_close(&c);
    assert_false(c.off);
}

} // namespace

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_count_replays_each_pass, setup),
        cmocka_unit_test_setup(test_privileges_are_a_notice, setup),
        cmocka_unit_test_setup(test_failing_work_closes_its_pass, setup),
        cmocka_unit_test_setup(test_bad_counts_refused, setup),
        cmocka_unit_test_setup(test_glue_without_gpu, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
