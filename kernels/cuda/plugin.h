/* The backend plugin interface. build/sol-cuda.so (built by nvcc where the
 * toolkit exists) exports one symbol, SOL_CUDA_PLUGIN_SYMBOL, a function
 * returning this table; `sol` loads it with dlopen only when a command asks
 * for --backend cuda (or names a plugin file), so the binary itself never
 * links CUDA. Plain C on both sides: the plugin is C++/CUDA inside, C at
 * this seam. Every entry returns 0 or fills err (code SOL_ERR_RUNTIME) and
 * returns it.
 *
 * ABI 2 adds backend_new: the engine's backend (kernels/backend.h, whose
 * layout is part of this ABI). A plugin without devices of its own (the
 * test backend in tests/backend) leaves device_count, device_info and
 * probe NULL. ABI 3 changes that layout: KV caches with sinks, a RoPE
 * offset, the MLA ops (head_matmul, latent_kv_write). ABI 4: batched steps
 * (sequences, a cache's seq_stride), attention's soft-cap and the ops of
 * the MoE, Gemma and Phi-3 families (scale, softcap, geglu, head_rmsnorm,
 * route, moe_ffn). ABI 5: the backend's options say how a CUDA backend runs
 * decode steps (graphs, profiled steps, cuBLAS matmuls); the seam's top_k
 * and rmsnorm_matmul_group ops. */
#ifndef SOL_KERNELS_CUDA_PLUGIN_H
#define SOL_KERNELS_CUDA_PLUGIN_H

#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/probe.h"
#include "util/err.h"

#define SOL_CUDA_PLUGIN_ABI 5
#define SOL_CUDA_PLUGIN_SYMBOL "sol_cuda_plugin_table"

typedef struct sol_cuda_device {
    char name[128];     /* "NVIDIA H200" */
    char uuid[64];      /* "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" */
    char cc[16];        /* compute capability, "9.0" */
    char driver[32];    /* CUDA version the driver supports, "13.0" */
    char runtime[32];   /* CUDA runtime the plugin was built with */
    int sms;
    int64_t l2_bytes, mem_bytes;
    double mem_bw_from_clocks; /* 2 x memory clock x bus width; 0 when the driver does not say */
} sol_cuda_device;

typedef struct sol_cuda_probe_config {
    int reps;              /* timed repetitions per figure, >= 5 */
    int64_t buffer_bytes;  /* device-memory stream, far beyond L2 */
    int gemm_n;            /* square matrix products of this size (multiple of 64) */
    sol_probe_progress progress;
    void *user;
} sol_cuda_probe_config;

typedef struct sol_plugin_backend_options {
    int device;  /* which device (plugins with devices) */
    int threads; /* host threads a plugin may use (<= 0: its choice) */
    /* ABI 5, what a GPU backend does with them: */
    int no_graph;      /* 1: decode steps run op by op, never as a CUDA graph */
    int profile_every; /* decode step 0 and every this many after it run op by
                        * by op with per-op events (<= 0: only when no_graph) */
    int gemm_cublas;   /* 1: F16/BF16 matmuls through cuBLAS, not the custom kernels */
    /* weights copied to the device so far, of total bytes (load_weights);
     * NULL: none */
    void (*upload_progress)(void *user, double done, double total);
    void *user;
} sol_plugin_backend_options;

typedef struct sol_cuda_plugin {
    int abi;            /* SOL_CUDA_PLUGIN_ABI */
    const char *build;  /* toolkit and targets it was compiled for */
    int (*device_count)(int *count, sol_err *err);
    int (*device_info)(int device, sol_cuda_device *out, sol_err *err);
    /* Device-memory read/write/copy and L2 bandwidth, cuBLAS matrix-product
     * rates per precision on random data, and the back-to-back launch
     * interval; fills out[0..*n) (at most cap). */
    int (*probe)(int device, const sol_cuda_probe_config *cfg, sol_probe_result *out, int cap, int *n, sol_err *err);
    /* The engine's backend on a device; destroy it with its destroy entry. */
    int (*backend_new)(const sol_plugin_backend_options *opt, sol_backend **out, sol_err *err);
} sol_cuda_plugin;

typedef const sol_cuda_plugin *(*sol_cuda_plugin_fn)(void);

#endif
