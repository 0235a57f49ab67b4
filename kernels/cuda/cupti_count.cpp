// The target half of kernels/cuda/cupti_host.h: the CUDA 13 Range Profiler
// on a device's context, one user range around the caller's work, replayed
// by the caller once per pass (CUPTI_UserRange, CUPTI_UserReplay), then
// decoded and evaluated by the host half. Every CUPTI call goes through the
// table sol_cupti_open resolved, so a host test can stand in for the GPU.
#include <algorithm>
#include <cstring>
#include <new>

#include "kernels/cuda/cupti_impl.h"
#include "kernels/cuda/fail.h"

struct sol_cupti_counter {
    sol_cupti *cupti = nullptr;
    sol_cupti_config *cfg = nullptr;
    CUpti_RangeProfiler_Object *profiler = nullptr;
    bool initialized = false; // cuptiProfilerInitialize succeeded
    std::string chip;
    std::vector<uint8_t> data; // the counter data image, one range
};

namespace {

// More passes than the configuration said is CUPTI misbehaving: stop there.
constexpr size_t kExtraPasses = 2;
const char kRange[] = "sol";

int chip_of(sol_cupti_counter *c, int device, sol_err *err)
{
    auto p = sol_cupti_params<CUpti_Device_GetChipName_Params>(CUpti_Device_GetChipName_Params_STRUCT_SIZE);
    p.deviceIndex = (size_t)device;
    CUptiResult r = c->cupti->cuptiDeviceGetChipName(&p);
    if (r != CUPTI_SUCCESS)
        return sol_cupti_result(c->cupti, r, "cuptiDeviceGetChipName", err);
    if (!p.pChipName || !*p.pChipName)
        return sol_cuda_failc(err, SOL_ERR_RUNTIME, "cuptiDeviceGetChipName: no chip name for device %d", device);
    c->chip = p.pChipName;
    return SOL_OK;
}

// The device's counter availability image (empty when CUPTI gives none).
int availability_of(sol_cupti_counter *c, CUcontext ctx, std::vector<uint8_t> *image, sol_err *err)
{
    auto p = sol_cupti_params<CUpti_Profiler_GetCounterAvailability_Params>(
        CUpti_Profiler_GetCounterAvailability_Params_STRUCT_SIZE);
    p.ctx = ctx;
    CUptiResult r = c->cupti->cuptiProfilerGetCounterAvailability(&p);
    if (r != CUPTI_SUCCESS)
        return sol_cupti_result(c->cupti, r, "cuptiProfilerGetCounterAvailability", err);
    image->assign(p.counterAvailabilityImageSize, 0);
    if (image->empty())
        return SOL_OK;
    p.pCounterAvailabilityImage = image->data();
    r = c->cupti->cuptiProfilerGetCounterAvailability(&p);
    return sol_cupti_result(c->cupti, r, "cuptiProfilerGetCounterAvailability", err);
}

int enable(sol_cupti_counter *c, CUcontext ctx, sol_err *err)
{
    auto p = sol_cupti_params<CUpti_RangeProfiler_Enable_Params>(CUpti_RangeProfiler_Enable_Params_STRUCT_SIZE);
    p.ctx = ctx;
    CUptiResult r = c->cupti->cuptiRangeProfilerEnable(&p);
    if (r != CUPTI_SUCCESS)
        return sol_cupti_result(c->cupti, r, "cuptiRangeProfilerEnable", err);
    if (!p.pRangeProfilerObject)
        return sol_cuda_failc(err, SOL_ERR_RUNTIME, "cuptiRangeProfilerEnable: no profiler object");
    c->profiler = p.pRangeProfilerObject;
    return SOL_OK;
}

int size_data(sol_cupti_counter *c, sol_err *err)
{
    auto p = sol_cupti_params<CUpti_RangeProfiler_GetCounterDataSize_Params>(
        CUpti_RangeProfiler_GetCounterDataSize_Params_STRUCT_SIZE);
    p.pRangeProfilerObject = c->profiler;
    p.pMetricNames = const_cast<const char **>(c->cfg->metric_names.data());
    p.numMetrics = c->cfg->metric_names.size();
    p.maxNumOfRanges = 1;
    p.maxNumRangeTreeNodes = 1;
    CUptiResult r = c->cupti->cuptiRangeProfilerGetCounterDataSize(&p);
    if (r != CUPTI_SUCCESS)
        return sol_cupti_result(c->cupti, r, "cuptiRangeProfilerGetCounterDataSize", err);
    if (p.counterDataSize == 0)
        return sol_cuda_failc(err, SOL_ERR_RUNTIME, "cuptiRangeProfilerGetCounterDataSize: a size of 0");
    c->data.assign(p.counterDataSize, 0);
    return SOL_OK;
}

int setup(sol_cupti_counter *c, int device, CUcontext ctx, const char *const *metrics, size_t n, sol_err *err)
{
    auto init = sol_cupti_params<CUpti_Profiler_Initialize_Params>(CUpti_Profiler_Initialize_Params_STRUCT_SIZE);
    CUptiResult r = c->cupti->cuptiProfilerInitialize(&init);
    if (r != CUPTI_SUCCESS)
        return sol_cupti_result(c->cupti, r, "cuptiProfilerInitialize", err);
    c->initialized = true;
    std::vector<uint8_t> available;
    int rc = chip_of(c, device, err);
    if (rc == SOL_OK)
        rc = availability_of(c, ctx, &available, err);
    if (rc == SOL_OK)
        rc = sol_cupti_config_new(c->cupti, c->chip.c_str(), metrics, n, available.empty() ? nullptr : available.data(),
                                  &c->cfg, err);
    if (rc == SOL_OK)
        rc = enable(c, ctx, err);
    if (rc == SOL_OK)
        rc = size_data(c, err);
    return rc;
}

// A fresh image bound to the profiler: each count starts from no ranges.
int arm(sol_cupti_counter *c, sol_err *err)
{
    std::fill(c->data.begin(), c->data.end(), 0);
    auto init = sol_cupti_params<CUpti_RangeProfiler_CounterDataImage_Initialize_Params>(
        CUpti_RangeProfiler_CounterDataImage_Initialize_Params_STRUCT_SIZE);
    init.pRangeProfilerObject = c->profiler;
    init.counterDataSize = c->data.size();
    init.pCounterData = c->data.data();
    CUptiResult r = c->cupti->cuptiRangeProfilerCounterDataImageInitialize(&init);
    if (r != CUPTI_SUCCESS)
        return sol_cupti_result(c->cupti, r, "cuptiRangeProfilerCounterDataImageInitialize", err);
    size_t image_bytes = 0;
    const uint8_t *image = sol_cupti_config_image(c->cfg, &image_bytes);
    auto set = sol_cupti_params<CUpti_RangeProfiler_SetConfig_Params>(CUpti_RangeProfiler_SetConfig_Params_STRUCT_SIZE);
    set.pRangeProfilerObject = c->profiler;
    set.configSize = image_bytes;
    set.pConfig = image;
    set.counterDataImageSize = c->data.size();
    set.pCounterDataImage = c->data.data();
    set.range = CUPTI_UserRange;
    set.replayMode = CUPTI_UserReplay;
    set.maxRangesPerPass = 1;
    set.numNestingLevels = 1;
    set.minNestingLevel = 1;
    set.passIndex = 0;
    set.targetNestingLevel = 1;
    r = c->cupti->cuptiRangeProfilerSetConfig(&set);
    return sol_cupti_result(c->cupti, r, "cuptiRangeProfilerSetConfig", err);
}

// The work inside the range; the range and the pass are closed whatever
// the work did. *all: CUPTI has every pass it needs.
int one_pass(sol_cupti_counter *c, const sol_cupti_work *work, bool *all, sol_err *err)
{
    sol_cupti *cu = c->cupti;
    if (work->prepare)
        if (int rc = work->prepare(work->user, err))
            return rc;
    auto start = sol_cupti_params<CUpti_RangeProfiler_Start_Params>(CUpti_RangeProfiler_Start_Params_STRUCT_SIZE);
    start.pRangeProfilerObject = c->profiler;
    if (int rc = sol_cupti_result(cu, cu->cuptiRangeProfilerStart(&start), "cuptiRangeProfilerStart", err))
        return rc;
    auto push = sol_cupti_params<CUpti_RangeProfiler_PushRange_Params>(
        CUpti_RangeProfiler_PushRange_Params_STRUCT_SIZE);
    push.pRangeProfilerObject = c->profiler;
    push.pRangeName = kRange;
    int rc = sol_cupti_result(cu, cu->cuptiRangeProfilerPushRange(&push), "cuptiRangeProfilerPushRange", err);
    if (rc == SOL_OK) {
        rc = work->run(work->user, err);
        auto pop = sol_cupti_params<CUpti_RangeProfiler_PopRange_Params>(
            CUpti_RangeProfiler_PopRange_Params_STRUCT_SIZE);
        pop.pRangeProfilerObject = c->profiler;
        sol_err pop_err = {0, ""};
        int popped = sol_cupti_result(cu, cu->cuptiRangeProfilerPopRange(&pop), "cuptiRangeProfilerPopRange", &pop_err);
        if (rc == SOL_OK && popped != SOL_OK) {
            *err = pop_err;
            rc = popped;
        }
    }
    auto stop = sol_cupti_params<CUpti_RangeProfiler_Stop_Params>(CUpti_RangeProfiler_Stop_Params_STRUCT_SIZE);
    stop.pRangeProfilerObject = c->profiler;
    sol_err stop_err = {0, ""};
    int stopped = sol_cupti_result(cu, cu->cuptiRangeProfilerStop(&stop), "cuptiRangeProfilerStop", &stop_err);
    if (rc == SOL_OK && stopped != SOL_OK) {
        *err = stop_err;
        rc = stopped;
    }
    *all = stop.isAllPassSubmitted != 0;
    return rc;
}

int decode(sol_cupti_counter *c, sol_err *err)
{
    auto p = sol_cupti_params<CUpti_RangeProfiler_DecodeData_Params>(CUpti_RangeProfiler_DecodeData_Params_STRUCT_SIZE);
    p.pRangeProfilerObject = c->profiler;
    CUptiResult r = c->cupti->cuptiRangeProfilerDecodeData(&p);
    if (r != CUPTI_SUCCESS)
        return sol_cupti_result(c->cupti, r, "cuptiRangeProfilerDecodeData", err);
    if (p.numOfRangeDropped)
        return sol_cuda_failc(err, SOL_ERR_RUNTIME, "cuptiRangeProfilerDecodeData: %zu range(s) dropped",
                              p.numOfRangeDropped);
    return SOL_OK;
}

int count(sol_cupti_counter *c, const sol_cupti_work *work, double *values, sol_err *err)
{
    if (int rc = arm(c, err))
        return rc;
    size_t limit = sol_cupti_config_passes(c->cfg) + kExtraPasses, passes = 0;
    bool all = false;
    while (!all) {
        if (passes == limit)
            return sol_cuda_failc(err, SOL_ERR_RUNTIME, "CUPTI wanted more than %zu passes for %zu (the configuration "
                                  "said %zu)", limit, sol_cupti_config_metric_count(c->cfg),
                                  sol_cupti_config_passes(c->cfg));
        if (int rc = one_pass(c, work, &all, err))
            return rc;
        passes++;
    }
    if (int rc = decode(c, err))
        return rc;
    size_t ranges = 0;
    if (int rc = sol_cupti_counter_ranges(c->cfg, c->data.data(), c->data.size(), &ranges, err))
        return rc;
    if (ranges != 1)
        return sol_cuda_failc(err, SOL_ERR_RUNTIME, "the counter data holds %zu ranges, not the 1 counted", ranges);
    return sol_cupti_evaluate(c->cfg, c->data.data(), c->data.size(), 0, values, err);
}

} // namespace

int sol_cupti_counter_new(sol_cupti *cupti, int device, void *cu_context, const char *const *metrics,
                          size_t n_metrics, sol_cupti_counter **out, sol_err *err)
{
    *out = nullptr;
    if (!cupti || !cu_context || device < 0)
        return sol_cuda_failc(err, SOL_ERR_RUNTIME, "counting needs CUPTI, a device and its context");
    sol_cupti_counter *c = new (std::nothrow) sol_cupti_counter();
    if (!c)
        return sol_cuda_failc(err, SOL_ERR_RUNTIME, "out of memory setting up CUPTI counters");
    c->cupti = cupti;
    int rc;
    try {
        rc = setup(c, device, static_cast<CUcontext>(cu_context), metrics, n_metrics, err);
    } catch (const std::bad_alloc &) {
        rc = sol_cuda_failc(err, SOL_ERR_RUNTIME, "out of memory setting up CUPTI counters");
    }
    if (rc != SOL_OK) {
        sol_cupti_counter_free(c);
        return rc;
    }
    *out = c;
    return SOL_OK;
}

void sol_cupti_counter_free(sol_cupti_counter *c)
{
    if (!c)
        return;
    if (c->profiler) {
        auto p = sol_cupti_params<CUpti_RangeProfiler_Disable_Params>(CUpti_RangeProfiler_Disable_Params_STRUCT_SIZE);
        p.pRangeProfilerObject = c->profiler;
        c->cupti->cuptiRangeProfilerDisable(&p);
    }
    sol_cupti_config_free(c->cfg);
    if (c->initialized) {
        auto p = sol_cupti_params<CUpti_Profiler_DeInitialize_Params>(CUpti_Profiler_DeInitialize_Params_STRUCT_SIZE);
        c->cupti->cuptiProfilerDeInitialize(&p);
    }
    delete c;
}

const char *sol_cupti_counter_chip(const sol_cupti_counter *c)
{
    return c->chip.c_str();
}

size_t sol_cupti_counter_passes(const sol_cupti_counter *c)
{
    return sol_cupti_config_passes(c->cfg);
}

int sol_cupti_count(sol_cupti_counter *c, const sol_cupti_work *work, double *values, sol_err *err)
{
    if (!c || !work || !work->run || !values)
        return sol_cuda_failc(err, SOL_ERR_RUNTIME, "a count needs a counter, work and room for its values");
    try {
        return count(c, work, values, err);
    } catch (const std::bad_alloc &) {
        return sol_cuda_failc(err, SOL_ERR_RUNTIME, "out of memory counting");
    }
}
