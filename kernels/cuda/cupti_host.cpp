// The CUPTI Profiler Host API behind kernels/cuda/cupti_host.h: libcupti
// opened with dlopen, metric configuration images and pass counts per chip.
// C++ because cupti_profiler_host.h includes <string>; no GPU is touched.
#include <dlfcn.h>
#include <link.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "kernels/cuda/cupti_host.h"
#include "kernels/cuda/cupti_impl.h"
#include "kernels/cuda/fail.h"

const char *const sol_cupti_sol_metrics[SOL_CUPTI_N_METRICS] = {
    "dram__bytes_read.sum",
    "dram__bytes_write.sum",
    "lts__t_bytes.sum",
    "sm__throughput.avg.pct_of_peak_sustained_elapsed",
    // What Nsight Compute's speed-of-light section calls DRAM throughput;
    // dram__throughput.avg.pct_of_peak_sustained_elapsed is accepted too and
    // costs the same single pass.
    "gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed",
    "gpu__time_duration.sum",
};

namespace {

// ---- finding and opening the library

void add_toolkit(std::vector<std::string> &paths, const char *root)
{
    if (!root || !*root)
        return;
    for (const char *dir : {"/extras/CUPTI/lib64/", "/lib64/", "/lib/", "/targets/x86_64-linux/lib/"})
        paths.push_back(std::string(root) + dir + "libcupti.so");
}

std::vector<std::string> candidate_paths()
{
    // The loader's own search first (LD_LIBRARY_PATH, ldconfig), then the
    // toolkits: CUPTI is not on the default path of a plain toolkit install.
    std::vector<std::string> paths = {"libcupti.so", "libcupti.so.13"};
#ifdef SOL_CUDA_TOOLKIT
    add_toolkit(paths, SOL_CUDA_TOOLKIT);
#endif
    add_toolkit(paths, getenv("CUDA_HOME"));
    add_toolkit(paths, getenv("CUDA_PATH"));
    add_toolkit(paths, "/usr/local/cuda");
    return paths;
}

int resolve(sol_cupti *cupti, sol_err *err)
{
#define SOL_CUPTI_RESOLVE(name)                                                                            \
    cupti->name = reinterpret_cast<decltype(&::name)>(dlsym(cupti->lib, #name));                           \
    if (!cupti->name)                                                                                      \
        return sol_cuda_failc(err, SOL_CUPTI_UNAVAILABLE,                                                            \
                    "CUPTI unavailable: %s has no %s (a CUPTI without the Profiler Host API); %s",         \
                    cupti->path.c_str(), #name, sol_cupti_timed_only);
    SOL_CUPTI_FUNCTIONS(SOL_CUPTI_RESOLVE)
#undef SOL_CUPTI_RESOLVE
    return SOL_OK;
}

int load_override(sol_cupti *cupti, const char *path, sol_err *err)
{
    cupti->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!cupti->lib)
        return sol_cuda_failc(err, SOL_CUPTI_UNAVAILABLE, "CUPTI unavailable: %s=%s does not load (%s); %s",
                    SOL_CUPTI_LIB_ENV, path, dlerror(), sol_cupti_timed_only);
    cupti->path = path;
    return SOL_OK;
}

// The file the loader chose, where it says (a bare soname otherwise).
std::string loaded_file(void *lib, const std::string &asked)
{
    struct link_map *map = nullptr;
    if (dlinfo(lib, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name && *map->l_name)
        return map->l_name;
    return asked;
}

int load_first(sol_cupti *cupti, sol_err *err)
{
    for (const std::string &path : candidate_paths()) {
        cupti->lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (cupti->lib) {
            cupti->path = loaded_file(cupti->lib, path);
            return SOL_OK;
        }
    }
    return sol_cuda_failc(err, SOL_CUPTI_UNAVAILABLE,
                "CUPTI unavailable: no libcupti.so on the loader path or in a CUDA toolkit (set %s); %s",
                SOL_CUPTI_LIB_ENV, sol_cupti_timed_only);
}

// ---- building a configuration

bool no_counters_here(int result)
{
    switch (result) {
    case CUPTI_ERROR_INSUFFICIENT_PRIVILEGES:
    case CUPTI_ERROR_VIRTUALIZED_DEVICE_INSUFFICIENT_PRIVILEGES:
    case CUPTI_ERROR_VIRTUALIZED_DEVICE_NOT_SUPPORTED:
    case CUPTI_ERROR_LEGACY_PROFILER_NOT_SUPPORTED:
    case CUPTI_ERROR_CONFIDENTIAL_COMPUTING_NOT_SUPPORTED:
    case CUPTI_ERROR_CMP_DEVICE_NOT_SUPPORTED:
    case CUPTI_ERROR_MIG_DEVICE_NOT_SUPPORTED:
    case CUPTI_ERROR_SLI_DEVICE_NOT_SUPPORTED:
    case CUPTI_ERROR_WSL_DEVICE_NOT_SUPPORTED:
    case CUPTI_ERROR_NOT_SUPPORTED:
        return true;
    default:
        return false;
    }
}

int unknown_chip(sol_cupti *cupti, const char *chip, sol_err *err)
{
    std::string known;
    const char *const *names = nullptr;
    size_t n = 0;
    sol_err ignored;
    if (sol_cupti_chips(cupti, &names, &n, &ignored) == SOL_OK)
        for (size_t i = 0; i < n; i++)
            known += std::string(i ? " " : "") + names[i];
    return sol_cuda_failc(err, SOL_ERR_RUNTIME, "CUPTI has no chip \"%s\" (%s); it configures: %s", chip,
                sol_cupti_result_name(cupti, CUPTI_ERROR_INVALID_CHIP_NAME), known.c_str());
}

int init_host(sol_cupti *cupti, const char *chip, const uint8_t *counter_availability,
              CUpti_Profiler_Host_Object **host, sol_err *err)
{
    auto p = sol_cupti_params<CUpti_Profiler_Host_Initialize_Params>(CUpti_Profiler_Host_Initialize_Params_STRUCT_SIZE);
    p.profilerType = CUPTI_PROFILER_TYPE_RANGE_PROFILER;
    p.pChipName = chip;
    p.pCounterAvailabilityImage = counter_availability;
    CUptiResult r = cupti->cuptiProfilerHostInitialize(&p);
    if (r == CUPTI_ERROR_INVALID_CHIP_NAME)
        return unknown_chip(cupti, chip, err);
    if (r != CUPTI_SUCCESS)
        return sol_cupti_result(cupti, r, "cuptiProfilerHostInitialize", err);
    *host = p.pHostObject;
    return SOL_OK;
}

void free_host(sol_cupti *cupti, CUpti_Profiler_Host_Object *host)
{
    if (!host)
        return;
    auto p = sol_cupti_params<CUpti_Profiler_Host_Deinitialize_Params>(CUpti_Profiler_Host_Deinitialize_Params_STRUCT_SIZE);
    p.pHostObject = host;
    cupti->cuptiProfilerHostDeinitialize(&p);
}

// An unknown name is named as such before anything is added: a failed
// ConfigAddMetrics leaves the host object unusable (CUDA 13.0 answers
// CUPTI_ERROR_UNKNOWN to every later call).
int metric_unit(sol_cupti_config *cfg, const char *chip, const char *metric, std::string *unit, sol_err *err)
{
    auto p = sol_cupti_params<CUpti_Profiler_Host_GetMetricProperties_Params>(
        CUpti_Profiler_Host_GetMetricProperties_Params_STRUCT_SIZE);
    p.pHostObject = cfg->host;
    p.pMetricName = metric;
    CUptiResult r = cfg->cupti->cuptiProfilerHostGetMetricProperties(&p);
    if (r != CUPTI_SUCCESS)
        return sol_cuda_failc(err, SOL_ERR_RUNTIME, "metric \"%s\" is not one CUPTI knows for %s (%s)", metric, chip,
                    sol_cupti_result_name(cfg->cupti, r));
    *unit = p.pDimUnit ? p.pDimUnit : "";
    return SOL_OK;
}

CUptiResult add_to_host(sol_cupti *cupti, CUpti_Profiler_Host_Object *host, const char *const *metrics, size_t n)
{
    auto p = sol_cupti_params<CUpti_Profiler_Host_ConfigAddMetrics_Params>(
        CUpti_Profiler_Host_ConfigAddMetrics_Params_STRUCT_SIZE);
    p.pHostObject = host;
    p.ppMetricNames = const_cast<const char **>(metrics);
    p.numMetrics = n;
    return cupti->cuptiProfilerHostConfigAddMetrics(&p);
}

// Which metric the chip refuses, each tried alone on a host object of its
// own (a known base name without its rollup is one such).
int name_rejected(sol_cupti_config *cfg, const char *chip, const uint8_t *counter_availability, CUptiResult all,
                  sol_err *err)
{
    for (const char *metric : cfg->metric_names) {
        CUpti_Profiler_Host_Object *alone = nullptr;
        int rc = init_host(cfg->cupti, chip, counter_availability, &alone, err);
        if (rc != SOL_OK)
            return rc;
        CUptiResult r = add_to_host(cfg->cupti, alone, &metric, 1);
        free_host(cfg->cupti, alone);
        if (r != CUPTI_SUCCESS)
            return sol_cuda_failc(err, SOL_ERR_RUNTIME, "metric \"%s\" rejected for %s (%s)%s", metric, chip,
                        sol_cupti_result_name(cfg->cupti, r),
                        strchr(metric, '.') ? "" : ": a counter needs its rollup, e.g. .sum or .avg");
    }
    return sol_cuda_failc(err, SOL_ERR_RUNTIME, "the %zu metrics are rejected together for %s (%s)", cfg->metric_names.size(),
                chip, sol_cupti_result_name(cfg->cupti, all));
}

// All metrics go in one ConfigAddMetrics call: CUPTI schedules one call's
// metrics together (the sol set needs 8 passes on GH100 added at once, 13
// added one by one).
int add_metrics(sol_cupti_config *cfg, const char *chip, const char *const *metrics, size_t n,
                const uint8_t *counter_availability, sol_err *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!metrics[i] || !*metrics[i])
            return sol_cuda_failc(err, SOL_ERR_RUNTIME, "metric %zu of %zu has no name", i + 1, n);
        std::string unit;
        int rc = metric_unit(cfg, chip, metrics[i], &unit, err);
        if (rc != SOL_OK)
            return rc;
        cfg->metrics.push_back(metrics[i]);
        cfg->units.push_back(unit);
    }
    for (const std::string &m : cfg->metrics)
        cfg->metric_names.push_back(m.c_str());
    CUptiResult r = add_to_host(cfg->cupti, cfg->host, cfg->metric_names.data(), n);
    if (r != CUPTI_SUCCESS)
        return name_rejected(cfg, chip, counter_availability, r, err);
    return SOL_OK;
}

int build_image(sol_cupti_config *cfg, sol_err *err)
{
    auto size = sol_cupti_params<CUpti_Profiler_Host_GetConfigImageSize_Params>(
        CUpti_Profiler_Host_GetConfigImageSize_Params_STRUCT_SIZE);
    size.pHostObject = cfg->host;
    CUptiResult r = cfg->cupti->cuptiProfilerHostGetConfigImageSize(&size);
    if (r != CUPTI_SUCCESS)
        return sol_cupti_result(cfg->cupti, r, "cuptiProfilerHostGetConfigImageSize", err);
    cfg->image.resize(size.configImageSize);
    auto image = sol_cupti_params<CUpti_Profiler_Host_GetConfigImage_Params>(
        CUpti_Profiler_Host_GetConfigImage_Params_STRUCT_SIZE);
    image.pHostObject = cfg->host;
    image.configImageSize = cfg->image.size();
    image.pConfigImage = cfg->image.data();
    r = cfg->cupti->cuptiProfilerHostGetConfigImage(&image);
    if (r != CUPTI_SUCCESS)
        return sol_cupti_result(cfg->cupti, r, "cuptiProfilerHostGetConfigImage", err);
    return SOL_OK;
}

int count_passes(sol_cupti_config *cfg, sol_err *err)
{
    auto p = sol_cupti_params<CUpti_Profiler_Host_GetNumOfPasses_Params>(CUpti_Profiler_Host_GetNumOfPasses_Params_STRUCT_SIZE);
    p.configImageSize = cfg->image.size();
    p.pConfigImage = cfg->image.data();
    CUptiResult r = cfg->cupti->cuptiProfilerHostGetNumOfPasses(&p);
    if (r != CUPTI_SUCCESS)
        return sol_cupti_result(cfg->cupti, r, "cuptiProfilerHostGetNumOfPasses", err);
    cfg->passes = p.numOfPasses;
    return SOL_OK;
}

int build_config(sol_cupti_config *cfg, const char *chip, const char *const *metrics, size_t n_metrics,
                 const uint8_t *counter_availability, sol_err *err)
{
    int rc = init_host(cfg->cupti, chip, counter_availability, &cfg->host, err);
    if (rc == SOL_OK)
        rc = add_metrics(cfg, chip, metrics, n_metrics, counter_availability, err);
    if (rc == SOL_OK)
        rc = build_image(cfg, err);
    if (rc == SOL_OK)
        rc = count_passes(cfg, err);
    return rc;
}

int check_counter_data(const sol_cupti_config *cfg, const uint8_t *counter_data, size_t bytes, sol_err *err)
{
    if (!cfg || !counter_data || bytes == 0)
        return sol_cuda_failc(err, SOL_ERR_RUNTIME, "no counter data to read (a configuration and a decoded image needed)");
    return SOL_OK;
}

} // namespace

// ---- the C interface

int sol_cupti_open(sol_cupti **out, sol_err *err)
{
    *out = nullptr;
    sol_cupti *cupti = new (std::nothrow) sol_cupti();
    if (!cupti)
        return sol_cuda_failc(err, SOL_ERR_RUNTIME, "out of memory opening CUPTI");
    const char *override_path = getenv(SOL_CUPTI_LIB_ENV);
    int rc = override_path && *override_path ? load_override(cupti, override_path, err) : load_first(cupti, err);
    if (rc == SOL_OK)
        rc = resolve(cupti, err);
    if (rc != SOL_OK) {
        sol_cupti_close(cupti);
        return rc;
    }
    *out = cupti;
    return SOL_OK;
}

void sol_cupti_close(sol_cupti *cupti)
{
    // libcupti stays loaded: each load runs its constructors again, and
    // what they allocate is lost at unload (72 KiB per cycle in CUDA 13.0,
    // valgrind); a later open finds it resident.
    delete cupti;
}

const char *sol_cupti_path(const sol_cupti *cupti)
{
    return cupti->path.c_str();
}

int sol_cupti_chips(sol_cupti *cupti, const char *const **names, size_t *n, sol_err *err)
{
    auto p = sol_cupti_params<CUpti_Profiler_Host_GetSupportedChips_Params>(
        CUpti_Profiler_Host_GetSupportedChips_Params_STRUCT_SIZE);
    CUptiResult r = cupti->cuptiProfilerHostGetSupportedChips(&p);
    if (r != CUPTI_SUCCESS)
        return sol_cupti_result(cupti, r, "cuptiProfilerHostGetSupportedChips", err);
    *names = p.ppChipNames;
    *n = p.numChips;
    return SOL_OK;
}

int sol_cupti_result(const sol_cupti *cupti, int result, const char *call, sol_err *err)
{
    if (result == CUPTI_SUCCESS)
        return SOL_OK;
    if (result == CUPTI_ERROR_INSUFFICIENT_PRIVILEGES)
        return sol_cuda_failc(err, SOL_CUPTI_UNAVAILABLE,
                    "CUPTI unavailable: %s: %s (counters need root or the driver option "
                    "NVreg_RestrictProfilingToAdminUsers=0); %s",
                    call, sol_cupti_result_name(cupti, result), sol_cupti_timed_only);
    if (no_counters_here(result))
        return sol_cuda_failc(err, SOL_CUPTI_UNAVAILABLE, "CUPTI unavailable: %s: %s; %s", call, sol_cupti_result_name(cupti, result),
                    sol_cupti_timed_only);
    return sol_cuda_failc(err, SOL_ERR_RUNTIME, "%s: %s", call, sol_cupti_result_name(cupti, result));
}

int sol_cupti_config_new(sol_cupti *cupti, const char *chip, const char *const *metrics, size_t n_metrics,
                         const uint8_t *counter_availability, sol_cupti_config **out, sol_err *err)
{
    *out = nullptr;
    if (!chip || !*chip)
        return sol_cuda_failc(err, SOL_ERR_RUNTIME, "no chip named for the CUPTI configuration");
    if (n_metrics == 0)
        return sol_cuda_failc(err, SOL_ERR_RUNTIME, "no metrics for the CUPTI configuration of %s", chip);
    sol_cupti_config *cfg = new (std::nothrow) sol_cupti_config();
    if (!cfg)
        return sol_cuda_failc(err, SOL_ERR_RUNTIME, "out of memory configuring CUPTI for %s", chip);
    cfg->cupti = cupti;
    int rc;
    try {
        rc = build_config(cfg, chip, metrics, n_metrics, counter_availability, err);
    } catch (const std::bad_alloc &) {
        rc = sol_cuda_failc(err, SOL_ERR_RUNTIME, "out of memory configuring CUPTI for %s", chip);
    }
    if (rc != SOL_OK) {
        sol_cupti_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return SOL_OK;
}

void sol_cupti_config_free(sol_cupti_config *cfg)
{
    if (!cfg)
        return;
    free_host(cfg->cupti, cfg->host);
    delete cfg;
}

const uint8_t *sol_cupti_config_image(const sol_cupti_config *cfg, size_t *bytes)
{
    *bytes = cfg->image.size();
    return cfg->image.data();
}

size_t sol_cupti_config_passes(const sol_cupti_config *cfg)
{
    return cfg->passes;
}

size_t sol_cupti_config_metric_count(const sol_cupti_config *cfg)
{
    return cfg->metrics.size();
}

const char *sol_cupti_config_metric(const sol_cupti_config *cfg, size_t i)
{
    return i < cfg->metrics.size() ? cfg->metrics[i].c_str() : nullptr;
}

const char *sol_cupti_config_unit(const sol_cupti_config *cfg, size_t i)
{
    return i < cfg->units.size() ? cfg->units[i].c_str() : nullptr;
}

int sol_cupti_counter_ranges(const sol_cupti_config *cfg, const uint8_t *counter_data, size_t bytes,
                             size_t *n_ranges, sol_err *err)
{
    *n_ranges = 0;
    int rc = check_counter_data(cfg, counter_data, bytes, err);
    if (rc != SOL_OK)
        return rc;
    auto p = sol_cupti_params<CUpti_RangeProfiler_GetCounterDataInfo_Params>(
        CUpti_RangeProfiler_GetCounterDataInfo_Params_STRUCT_SIZE);
    p.pCounterDataImage = counter_data;
    p.counterDataImageSize = bytes;
    CUptiResult r = cfg->cupti->cuptiRangeProfilerGetCounterDataInfo(&p);
    if (r != CUPTI_SUCCESS)
        return sol_cupti_result(cfg->cupti, r, "cuptiRangeProfilerGetCounterDataInfo", err);
    *n_ranges = p.numTotalRanges;
    return SOL_OK;
}

int sol_cupti_evaluate(const sol_cupti_config *cfg, const uint8_t *counter_data, size_t bytes, size_t range,
                       double *values, sol_err *err)
{
    int rc = check_counter_data(cfg, counter_data, bytes, err);
    if (rc != SOL_OK)
        return rc;
    auto p = sol_cupti_params<CUpti_Profiler_Host_EvaluateToGpuValues_Params>(
        CUpti_Profiler_Host_EvaluateToGpuValues_Params_STRUCT_SIZE);
    p.pHostObject = cfg->host;
    p.pCounterDataImage = counter_data;
    p.counterDataImageSize = bytes;
    p.rangeIndex = range;
    p.ppMetricNames = const_cast<const char **>(cfg->metric_names.data());
    p.numMetrics = cfg->metric_names.size();
    p.pMetricValues = values;
    CUptiResult r = cfg->cupti->cuptiProfilerHostEvaluateToGpuValues(&p);
    if (r != CUPTI_SUCCESS)
        return sol_cupti_result(cfg->cupti, r, "cuptiProfilerHostEvaluateToGpuValues", err);
    return SOL_OK;
}
