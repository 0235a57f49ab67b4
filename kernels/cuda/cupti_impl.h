// What the two halves of the CUPTI seam share (cupti_host.cpp: library,
// configuration, evaluation; cupti_count.cpp: counting on a GPU): the
// function table resolved from libcupti at open, the handles' insides and
// the params convention. Internal to the plugin and its host tests (a test
// may point table entries at fakes).
#ifndef SOL_KERNELS_CUDA_CUPTI_IMPL_H
#define SOL_KERNELS_CUDA_CUPTI_IMPL_H

#include <cupti_profiler_host.h>
#include <cupti_profiler_target.h>
#include <cupti_range_profiler.h>
#include <cupti_result.h>
#include <cupti_target.h>

#include <string>
#include <vector>

#include "kernels/cuda/cupti_host.h"

// The CUPTI functions sol calls, each resolved by name at open: the host
// API's (no GPU), then the target's (a GPU's counters).
#define SOL_CUPTI_FUNCTIONS(X)                                                                              \
    X(cuptiGetResultString)                                                                                 \
    X(cuptiProfilerHostGetSupportedChips)                                                                   \
    X(cuptiProfilerHostInitialize)                                                                          \
    X(cuptiProfilerHostDeinitialize)                                                                        \
    X(cuptiProfilerHostGetMetricProperties)                                                                 \
    X(cuptiProfilerHostConfigAddMetrics)                                                                    \
    X(cuptiProfilerHostGetConfigImageSize)                                                                  \
    X(cuptiProfilerHostGetConfigImage)                                                                      \
    X(cuptiProfilerHostGetNumOfPasses)                                                                      \
    X(cuptiProfilerHostEvaluateToGpuValues)                                                                 \
    X(cuptiRangeProfilerGetCounterDataInfo)                                                                 \
    X(cuptiProfilerInitialize)                                                                              \
    X(cuptiProfilerDeInitialize)                                                                            \
    X(cuptiDeviceGetChipName)                                                                               \
    X(cuptiProfilerGetCounterAvailability)                                                                  \
    X(cuptiRangeProfilerEnable)                                                                             \
    X(cuptiRangeProfilerDisable)                                                                            \
    X(cuptiRangeProfilerGetCounterDataSize)                                                                 \
    X(cuptiRangeProfilerCounterDataImageInitialize)                                                         \
    X(cuptiRangeProfilerSetConfig)                                                                          \
    X(cuptiRangeProfilerStart)                                                                              \
    X(cuptiRangeProfilerStop)                                                                               \
    X(cuptiRangeProfilerPushRange)                                                                          \
    X(cuptiRangeProfilerPopRange)                                                                           \
    X(cuptiRangeProfilerDecodeData)

struct sol_cupti {
    void *lib;
    std::string path;
#define SOL_CUPTI_MEMBER(name) decltype(&::name) name;
    SOL_CUPTI_FUNCTIONS(SOL_CUPTI_MEMBER)
#undef SOL_CUPTI_MEMBER
};

struct sol_cupti_config {
    sol_cupti *cupti;
    CUpti_Profiler_Host_Object *host;
    std::vector<uint8_t> image;
    size_t passes;
    std::vector<std::string> metrics, units;
    std::vector<const char *> metric_names; // into metrics, for EvaluateToGpuValues
};

// Every params struct starts zeroed with its size set, as CUPTI asks.
template <typename T> T sol_cupti_params(size_t struct_size)
{
    T p{};
    p.structSize = struct_size;
    return p;
}

// CUPTI's name for a result ("CUPTI_ERROR_...").
inline const char *sol_cupti_result_name(const sol_cupti *cupti, int result)
{
    const char *s = nullptr;
    if (!cupti || !cupti->cuptiGetResultString ||
        cupti->cuptiGetResultString((CUptiResult)result, &s) != CUPTI_SUCCESS || !s)
        return "an unknown CUPTI result";
    return s;
}

// The end of every "counters off" notice.
inline constexpr char sol_cupti_timed_only[] = "hardware counters off, timing only";

#endif
