// CUDA ceilings (see plugin.h). Bandwidth: a grid-stride read of 16-byte
// loads, several in flight per thread, over a buffer far larger than L2; the
// launch shape is chosen among a few by measurement, and the reported figure
// is the winner's median over fresh repetitions. Copy counts bytes read and
// written (STREAM convention). Matrix rates: cuBLAS products of random data
// (zeros run faster on tensor cores), 2 n^3 operations each. Every time is
// a CUDA event pair around one launch, after warm-up.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cuda/cuda_util.h"

namespace {

// Owns one device allocation for the length of a probe.
struct DeviceBuffer {
    void *ptr = nullptr;
    DeviceBuffer() = default;
    DeviceBuffer(const DeviceBuffer &) = delete;
    DeviceBuffer &operator=(const DeviceBuffer &) = delete;
    ~DeviceBuffer() { release(); }
    void release()
    {
        if (ptr)
            cudaFree(ptr);
        ptr = nullptr;
    }
};

struct Events {
    cudaEvent_t start = nullptr, stop = nullptr;
    ~Events()
    {
        if (start) cudaEventDestroy(start);
        if (stop) cudaEventDestroy(stop);
    }
};

struct Stats {
    double median, min, max;
};

Stats stats_of(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    double med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    return {med, v.front(), v.back()};
}

// ---- kernels ----------------------------------------------------------

template <int UNROLL>
__global__ void read_kernel(const int4 *__restrict__ p, size_t n, int passes, int *sink)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const size_t first = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    int acc = 0;
    for (int pass = 0; pass < passes; pass++) {
        size_t i = first;
        for (; i + (UNROLL - 1) * stride < n; i += UNROLL * stride) {
            int4 v[UNROLL];
#pragma unroll
            for (int u = 0; u < UNROLL; u++)
                v[u] = p[i + u * stride];
#pragma unroll
            for (int u = 0; u < UNROLL; u++)
                acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
        }
        for (; i < n; i += stride) {
            int4 v = p[i];
            acc ^= v.x ^ v.y ^ v.z ^ v.w;
        }
    }
    if (acc == 0x5eed5eed) // keeps the loads; a rare true case only writes one word
        sink[0] = acc;
}

__global__ void empty_kernel() {}

__device__ float hash_uniform(size_t i, uint32_t seed)
{
    uint32_t x = (uint32_t)i * 2654435761u ^ (uint32_t)(i >> 32) ^ seed;
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return (float)(x >> 8) * (2.0f / 16777216.0f) - 1.0f; // [-1, 1)
}

__device__ void store_random(float *p, size_t i, float v) { p[i] = v; }
__device__ void store_random(__half *p, size_t i, float v) { p[i] = __float2half(v); }
__device__ void store_random(__nv_bfloat16 *p, size_t i, float v) { p[i] = __float2bfloat16(v); }
__device__ void store_random(int8_t *p, size_t i, float v) { p[i] = (int8_t)(v * 127.0f); }

template <typename T>
__global__ void fill_random(T *p, size_t n, uint32_t seed)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        store_random(p, i, hash_uniform(i, seed));
}

// ---- measurements ---------------------------------------------------------

struct Probe {
    const sol_cuda_probe_config *cfg;
    sol_probe_result *out;
    int cap, n, step, steps;
    int sms;
    Events ev;
    sol_err *err;

    void progress(const char *what)
    {
        if (cfg->progress)
            cfg->progress(cfg->user, what, ++step, steps);
    }

    void add(const char *kind, const char *unit, const Stats &s, int reps, const char *method)
    {
        if (n >= cap)
            return;
        sol_probe_result &r = out[n++];
        memset(&r, 0, sizeof r);
        snprintf(r.kind, sizeof r.kind, "%s", kind);
        snprintf(r.unit, sizeof r.unit, "%s", unit);
        snprintf(r.method, sizeof r.method, "%s", method);
        r.median = s.median;
        r.min = s.min;
        r.max = s.max;
        r.reps = reps;
    }
};

// Times `launch` `reps` times after `warm` untimed runs; seconds per run.
template <typename F>
int time_runs(Probe &pr, int warm, int reps, F launch, std::vector<double> &secs)
{
    sol_err *err = pr.err;
    for (int i = 0; i < warm; i++)
        CUDA_OK(launch());
    CUDA_OK(cudaDeviceSynchronize());
    secs.clear();
    for (int i = 0; i < reps; i++) {
        CUDA_OK(cudaEventRecord(pr.ev.start));
        CUDA_OK(launch());
        CUDA_OK(cudaEventRecord(pr.ev.stop));
        CUDA_OK(cudaEventSynchronize(pr.ev.stop));
        float ms = 0;
        CUDA_OK(cudaEventElapsedTime(&ms, pr.ev.start, pr.ev.stop));
        secs.push_back(ms * 1e-3);
    }
    return 0;
}

Stats rate(const std::vector<double> &secs, double amount)
{
    Stats t = stats_of(secs);
    return {amount / t.median, amount / t.max, amount / t.min};
}

struct ReadShape {
    int unroll, blocks_per_sm;
};

cudaError_t launch_read(const ReadShape &s, int sms, const int4 *p, size_t n, int passes, int *sink)
{
    const int threads = 512;
    int blocks = sms * s.blocks_per_sm;
    if (s.unroll == 4)
        read_kernel<4><<<blocks, threads>>>(p, n, passes, sink);
    else
        read_kernel<8><<<blocks, threads>>>(p, n, passes, sink);
    return cudaGetLastError();
}

// Reads n 16-byte words `passes` times per launch: the best launch shape of
// a small set (3 quick runs each), then its median over cfg->reps.
int measure_read(Probe &pr, const int4 *p, size_t n, int passes, int *sink, const char *kind, const char *where)
{
    static const ReadShape shapes[] = {{4, 2}, {4, 4}, {8, 2}, {8, 4}, {4, 8}, {8, 8}};
    std::vector<double> secs;
    double best_time = 0;
    ReadShape best = shapes[0];
    for (const ReadShape &s : shapes) {
        int rc = time_runs(pr, 1, 3, [&] { return launch_read(s, pr.sms, p, n, passes, sink); }, secs);
        if (rc)
            return rc;
        double t = stats_of(secs).median;
        if (best_time == 0 || t < best_time) {
            best_time = t;
            best = s;
        }
    }
    int rc = time_runs(pr, 1, pr.cfg->reps, [&] { return launch_read(best, pr.sms, p, n, passes, sink); }, secs);
    if (rc)
        return rc;
    char method[96];
    snprintf(method, sizeof method, "%s: %d blk/SM x 512 thr, %d x 16 B loads in flight (best of 6)", where,
             best.blocks_per_sm, best.unroll);
    pr.add(kind, "B/s", rate(secs, 16.0 * (double)n * passes), pr.cfg->reps, method);
    return 0;
}

template <typename T>
int fill(T *p, size_t n, uint32_t seed, sol_err *err)
{
    fill_random<T><<<1024, 256>>>(p, n, seed);
    CUDA_OK(cudaGetLastError());
    return 0;
}

struct GemmKind {
    const char *kind, *unit, *label;
    cudaDataType ab, c;
    cublasComputeType_t compute;
    int elem_bytes;
};

// C = A^T B on n x n random matrices (the TN layout tensor cores prefer).
int measure_gemm(Probe &pr, cublasHandle_t h, const GemmKind &g, void *a, void *b, void *c)
{
    sol_err *err = pr.err;
    const int n = pr.cfg->gemm_n;
    size_t count = (size_t)n * n;
    int rc = 0;
    switch (g.ab) {
    case CUDA_R_16BF: rc = fill((__nv_bfloat16 *)a, count, 1, err) || fill((__nv_bfloat16 *)b, count, 2, err); break;
    case CUDA_R_16F: rc = fill((__half *)a, count, 1, err) || fill((__half *)b, count, 2, err); break;
    case CUDA_R_8I: rc = fill((int8_t *)a, count, 1, err) || fill((int8_t *)b, count, 2, err); break;
    default: rc = fill((float *)a, count, 1, err) || fill((float *)b, count, 2, err); break;
    }
    if (rc)
        return rc;
    float alpha_f = 1, beta_f = 0;
    int32_t alpha_i = 1, beta_i = 0;
    const bool integer = g.compute == CUBLAS_COMPUTE_32I;
    const void *alpha = integer ? (const void *)&alpha_i : (const void *)&alpha_f;
    const void *beta = integer ? (const void *)&beta_i : (const void *)&beta_f;
    cublasStatus_t status = CUBLAS_STATUS_SUCCESS;
    auto launch = [&] {
        status = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, alpha, a, g.ab, n, b, g.ab, n, beta, c, g.c, n,
                              g.compute, CUBLAS_GEMM_DEFAULT);
        return status == CUBLAS_STATUS_SUCCESS ? cudaGetLastError() : cudaErrorUnknown;
    };
    std::vector<double> secs;
    rc = time_runs(pr, 3, pr.cfg->reps, launch, secs);
    if (rc && status != CUBLAS_STATUS_SUCCESS)
        return sol_cuda_fail(err, "cublasGemmEx %s %dx%dx%d: %s", g.label, n, n, n, cublasGetStatusString(status));
    if (rc)
        return rc;
    char method[96];
    snprintf(method, sizeof method, "cuBLAS %s, %dx%dx%d TN, random data, 2n^3 ops", g.label, n, n, n);
    pr.add(g.kind, g.unit, rate(secs, 2.0 * n * (double)n * n), pr.cfg->reps, method);
    return 0;
}

// y = W x, W rows x rows bf16 (as large as the stream buffer allows, at most
// 512 MiB): decode's matrix-vector product, whose ceiling is device memory.
int measure_gemv(Probe &pr, cublasHandle_t h, void *buffer, size_t bytes)
{
    sol_err *err = pr.err;
    size_t rows = 16384;
    while (rows > 64 && rows * rows * 2 + 4 * rows * 2 > bytes)
        rows -= 64;
    const int n = (int)rows;
    __nv_bfloat16 *w = (__nv_bfloat16 *)buffer, *x = w + rows * rows, *y = x + rows;
    int rc = fill(w, rows * rows + rows, 4, err);
    if (rc)
        return rc;
    float alpha = 1, beta = 0;
    cublasStatus_t status = CUBLAS_STATUS_SUCCESS;
    auto launch = [&] {
        status = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, 1, n, &alpha, w, CUDA_R_16BF, n, x, CUDA_R_16BF, n,
                              &beta, y, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        return status == CUBLAS_STATUS_SUCCESS ? cudaGetLastError() : cudaErrorUnknown;
    };
    std::vector<double> secs;
    rc = time_runs(pr, 10, pr.cfg->reps, launch, secs); // 0.1 ms each: warm the clocks up first
    if (rc && status != CUBLAS_STATUS_SUCCESS)
        return sol_cuda_fail(err, "cublasGemmEx bf16 %dx%d matrix-vector: %s", n, n, cublasGetStatusString(status));
    if (rc)
        return rc;
    char method[96];
    snprintf(method, sizeof method, "cuBLAS bf16 matrix-vector %dx%d (%lld MiB), bytes of W, x and y", n, n,
             (long long)(rows * rows * 2 >> 20));
    pr.add("bf16_gemv_bw", "B/s", rate(secs, 2.0 * ((double)rows * rows + 2.0 * rows)), pr.cfg->reps, method);
    return 0;
}

int probe_device(Probe &pr, const sol_cuda_device &dev)
{
    sol_err *err = pr.err;
    const sol_cuda_probe_config &cfg = *pr.cfg;
    const GemmKind gemms[] = {
        {"bf16_peak", "FLOP/s", "bf16 (fp32 accumulate)", CUDA_R_16BF, CUDA_R_16BF, CUBLAS_COMPUTE_32F, 2},
        {"fp16_peak", "FLOP/s", "fp16 (fp32 accumulate)", CUDA_R_16F, CUDA_R_16F, CUBLAS_COMPUTE_32F, 2},
        {"int8_peak", "OP/s", "int8 (int32 accumulate)", CUDA_R_8I, CUDA_R_32I, CUBLAS_COMPUTE_32I, 1},
        {"tf32_peak", "FLOP/s", "tf32 (fp32 data)", CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32, 4},
        {"fp32_peak", "FLOP/s", "fp32 (no tensor cores)", CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F_PEDANTIC, 4},
    };
    const int n_gemms = (int)(sizeof gemms / sizeof gemms[0]);
    pr.steps = 6 + n_gemms;

    CUDA_OK(cudaEventCreate(&pr.ev.start));
    CUDA_OK(cudaEventCreate(&pr.ev.stop));
    DeviceBuffer stream, sink;
    size_t bytes = (size_t)cfg.buffer_bytes & ~(size_t)255;
    CUDA_OK(cudaMalloc(&stream.ptr, bytes));
    CUDA_OK(cudaMalloc(&sink.ptr, 64));
    int rc = fill((float *)stream.ptr, bytes / 4, 3, err);
    if (rc)
        return rc;

    char where[48];
    snprintf(where, sizeof where, "%lld MiB", (long long)(bytes >> 20));
    pr.progress("device-memory read");
    if ((rc = measure_read(pr, (const int4 *)stream.ptr, bytes / 16, 1, (int *)sink.ptr, "mem_read_bw", where)))
        return rc;

    // L2: a quarter of it, read over and over inside one launch.
    pr.progress("L2 read");
    size_t l2_words = std::min((size_t)(dev.l2_bytes > 0 ? dev.l2_bytes / 4 : 8 << 20) / 16, bytes / 16);
    int passes = (int)std::max<size_t>(1, bytes / (16 * l2_words));
    snprintf(where, sizeof where, "%lld KiB x %d passes", (long long)(l2_words * 16 >> 10), passes);
    if ((rc = measure_read(pr, (const int4 *)stream.ptr, l2_words, passes, (int *)sink.ptr, "l2_read_bw", where)))
        return rc;

    std::vector<double> secs;
    char method[96];
    pr.progress("device-memory copy");
    size_t half = bytes / 2;
    char *base = (char *)stream.ptr;
    rc = time_runs(pr, 2, cfg.reps, [&] { return cudaMemcpyAsync(base + half, base, half, cudaMemcpyDeviceToDevice); },
                   secs);
    if (rc)
        return rc;
    snprintf(method, sizeof method, "cudaMemcpy device to device, %lld MiB, read + written", (long long)(half >> 20));
    pr.add("mem_copy_bw", "B/s", rate(secs, 2.0 * (double)half), cfg.reps, method);

    pr.progress("device-memory write");
    if ((rc = time_runs(pr, 2, cfg.reps, [&] { return cudaMemsetAsync(base, 0, bytes); }, secs)))
        return rc;
    snprintf(method, sizeof method, "cudaMemset, %lld MiB", (long long)(bytes >> 20));
    pr.add("mem_write_bw", "B/s", rate(secs, (double)bytes), cfg.reps, method);

    pr.progress("launch interval");
    const int launches = 1000;
    auto burst = [&] {
        for (int i = 0; i < launches; i++)
            empty_kernel<<<1, 32>>>();
        return cudaGetLastError();
    };
    if ((rc = time_runs(pr, 1, cfg.reps, burst, secs)))
        return rc;
    for (double &s : secs)
        s /= launches;
    Stats t = stats_of(secs);
    snprintf(method, sizeof method, "empty kernel, %d back-to-back launches on one stream", launches);
    pr.add("launch_interval", "s", t, cfg.reps, method);

    cublasHandle_t h = nullptr;
    cublasStatus_t st = cublasCreate(&h);
    if (st != CUBLAS_STATUS_SUCCESS)
        return sol_cuda_fail(err, "cublasCreate: %s", cublasGetStatusString(st));
    pr.progress("bf16 matrix-vector");
    rc = measure_gemv(pr, h, stream.ptr, bytes);

    // Matrix products: three n x n buffers of the widest element.
    DeviceBuffer a, b, c;
    size_t mat = (size_t)cfg.gemm_n * cfg.gemm_n * 4;
    stream.release(); // room for the matrices
    cudaError_t e = cudaSuccess;
    if (!rc && ((e = cudaMalloc(&a.ptr, mat)) || (e = cudaMalloc(&b.ptr, mat)) || (e = cudaMalloc(&c.ptr, mat))))
        rc = sol_cuda_fail(err, "cudaMalloc of three %dx%d matrices: %s", cfg.gemm_n, cfg.gemm_n,
                           cudaGetErrorString(e));
    for (int i = 0; i < n_gemms && !rc; i++) {
        pr.progress(gemms[i].kind);
        rc = measure_gemm(pr, h, gemms[i], a.ptr, b.ptr, c.ptr);
    }
    cublasDestroy(h);
    return rc;
}

} // namespace

int sol_cuda_probe(int device, const sol_cuda_probe_config *cfg, sol_probe_result *out, int cap, int *n, sol_err *err)
{
    *n = 0;
    if (cfg->reps < 1 || cfg->buffer_bytes < (1 << 20) || cfg->gemm_n < 64 || cfg->gemm_n % 64)
        return sol_cuda_fail(err, "probe: needs reps >= 1, a buffer of at least 1 MiB and a matrix size that is a "
                                  "multiple of 64");
    sol_cuda_device dev;
    int rc = sol_cuda_device_info(device, &dev, err);
    if (rc)
        return rc;
    CUDA_OK(cudaSetDevice(device));
    Probe pr{};
    pr.cfg = cfg;
    pr.out = out;
    pr.cap = cap;
    pr.sms = dev.sms;
    pr.err = err;
    rc = probe_device(pr, dev);
    *n = pr.n;
    return rc;
}
