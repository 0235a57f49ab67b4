// Whether a model's weights fit on the device, decided before anything is
// allocated (backend.cu's load_weights); pure, so tests/cuda/test_fit.cu
// checks the rule and its message without a GPU.
#ifndef SOL_KERNELS_CUDA_FIT_H
#define SOL_KERNELS_CUDA_FIT_H

#include <cstddef>
#include <cstdio>

// 0 when `need` bytes fit in `free_bytes`; otherwise 1 and one line in why:
// "the weights need 13.48 GiB; cuda device 0 (NVIDIA ...) has 9.50 GiB free
// of 79.10 GiB".
inline int sol_cuda_weights_fit(size_t need, size_t free_bytes, size_t total_bytes, int device, const char *name,
                                char *why, size_t cap)
{
    if (need <= free_bytes)
        return 0;
    const double gib = 1024.0 * 1024 * 1024;
    snprintf(why, cap, "the weights need %.2f GiB; cuda device %d (%s) has %.2f GiB free of %.2f GiB", need / gib,
             device, name && *name ? name : "?", free_bytes / gib, total_bytes / gib);
    return 1;
}

#endif
