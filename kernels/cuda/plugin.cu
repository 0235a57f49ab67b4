// The plugin's one exported symbol and the device queries behind it.
#include <cstring>

#include "kernels/cuda/cuda_util.h"
#include "kernels/cuda/attn_trial.h"
#include "kernels/cuda/tune_trial.h"

#ifndef SOL_CUDA_BUILD
#define SOL_CUDA_BUILD "unknown"
#endif

namespace {

int device_count(int *count, sol_err *err)
{
    *count = 0;
    int driver = 0;
    if (cudaDriverGetVersion(&driver) != cudaSuccess || driver == 0)
        return sol_cuda_fail(err, "no CUDA device: no NVIDIA driver is loaded on this machine");
    cudaError_t e = cudaGetDeviceCount(count);
    if (e != cudaSuccess) {
        *count = 0;
        return sol_cuda_fail(err, "no CUDA device: %s", cudaGetErrorString(e));
    }
    return 0;
}

void version_string(char *buf, size_t cap, int v)
{
    snprintf(buf, cap, "%d.%d", v / 1000, (v % 1000) / 10);
}

} // namespace

int sol_cuda_device_info(int device, sol_cuda_device *out, sol_err *err)
{
    memset(out, 0, sizeof *out);
    cudaDeviceProp p;
    CUDA_OK(cudaGetDeviceProperties(&p, device));
    snprintf(out->name, sizeof out->name, "%.127s", p.name);
    int o = snprintf(out->uuid, sizeof out->uuid, "GPU-");
    for (int i = 0; i < 16; i++) {
        o += snprintf(out->uuid + o, sizeof out->uuid - (size_t)o, "%02x", (unsigned char)p.uuid.bytes[i]);
        if (i == 3 || i == 5 || i == 7 || i == 9)
            o += snprintf(out->uuid + o, sizeof out->uuid - (size_t)o, "-");
    }
    snprintf(out->cc, sizeof out->cc, "%d.%d", p.major, p.minor);
    int v = 0;
    CUDA_OK(cudaDriverGetVersion(&v));
    version_string(out->driver, sizeof out->driver, v);
    CUDA_OK(cudaRuntimeGetVersion(&v));
    version_string(out->runtime, sizeof out->runtime, v);
    out->sms = p.multiProcessorCount;
    out->l2_bytes = p.l2CacheSize;
    out->mem_bytes = (int64_t)p.totalGlobalMem;
    int clock_khz = 0, bus_bits = 0;
    if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, device) == cudaSuccess &&
        cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device) == cudaSuccess)
        out->mem_bw_from_clocks = 2.0 * clock_khz * 1e3 * bus_bits / 8;
    cudaGetLastError(); // an unsupported attribute leaves no error behind
    return 0;
}

namespace {

const sol_cuda_plugin plugin_table = {
    SOL_CUDA_PLUGIN_ABI, SOL_CUDA_BUILD, device_count, sol_cuda_device_info, sol_cuda_probe, sol_cuda_backend_new,
    // appended to ABI 5: the matvec autotuner (tune_trial.cu)
    SOL_CUDA_TUNE_MAGIC, sol_cuda_tune_default, sol_cuda_tune_check, sol_cuda_tune_source, sol_cuda_tune_trial,
    sol_cuda_tune_cublas, sol_cuda_tune_release,
    // appended to ABI 6: decode attention's autotuner (attn_trial.cu; mv_release frees its problem too)
    SOL_CUDA_ATTN_TUNE_MAGIC, sol_cuda_attn_default, sol_cuda_attn_check, sol_cuda_attn_trial,
};

} // namespace

extern "C" __attribute__((visibility("default"))) const sol_cuda_plugin *sol_cuda_plugin_table(void)
{
    return &plugin_table;
}
