// Shared inside the CUDA plugin: error reporting into sol_err and the entry
// points each file provides to plugin.cu's table.
#ifndef SOL_KERNELS_CUDA_UTIL_H
#define SOL_KERNELS_CUDA_UTIL_H

#include <cuda_runtime.h>

#include <cstdarg>
#include <cstdio>

extern "C" {
#include "kernels/cuda/plugin.h"
}

#include "kernels/cuda/fail.h"

__attribute__((format(printf, 2, 3))) inline int sol_cuda_fail(sol_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sol_cuda_vfail(err, SOL_ERR_RUNTIME, fmt, ap);
    va_end(ap);
    return SOL_ERR_RUNTIME;
}

// Returns the failure from the enclosing function, which has `sol_err *err`.
#define CUDA_OK(call)                                                                   \
    do {                                                                                \
        cudaError_t e_ = (call);                                                        \
        if (e_ != cudaSuccess)                                                          \
            return sol_cuda_fail(err, "%s: %s", #call, cudaGetErrorString(e_));         \
    } while (0)

int sol_cuda_device_info(int device, sol_cuda_device *out, sol_err *err);
int sol_cuda_backend_new(const sol_plugin_backend_options *opt, sol_backend **out, sol_err *err); // backend.cu
int sol_cuda_probe(int device, const sol_cuda_probe_config *cfg, sol_probe_result *out, int cap, int *n,
                   sol_err *err);

#endif
