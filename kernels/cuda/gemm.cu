// Matmuls through cuBLAS: every prefill matmul, and with --gemm cublas every
// F16/BF16 one (the rule and the cublasGemmEx arguments are gemm_plan.h's).
// Operands cuBLAS cannot take as stored are converted first, on the same
// stream, into the backend's scratch: block-type weights decoded to f16
// (GEMM_W, one decode per matmul), x rounded to the weights' 16-bit type
// (GEMM_X). The bias is added after, by its own kernel. Every call goes
// through the recorder (launch.cuh), so --gemm cublas decode steps are
// captured into the step's graph like the custom kernels.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/dequant.cuh"

namespace {

// cuBLAS's recommended workspace on Hopper (4 MiB is enough before it). The
// handle's own, allocated once: without it cuBLAS would take workspace from
// its pool, which may allocate while a graph is being captured.
constexpr size_t kWorkspaceBytes = 32u << 20;
constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) { return (unsigned)((n + kThreads - 1) / kThreads); }

__device__ void store_rounded(__half *p, float v) { *p = __float2half_rn(v); }
__device__ void store_rounded(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }
__device__ void store_rounded(float *p, float v) { *p = v; }

// Row r of W decoded into row r of `out` (rows of ld elements of T, f16 or
// f32): one thread per group of 8 weights (block types hold whole groups).
template <typename T> __global__ void dequant_kernel(sol_weight_view w, int64_t ld, T *out)
{
    int64_t groups = w.cols / 8, t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= w.rows * groups)
        return;
    int64_t r = t / groups, g = t % groups;
    float v[8];
    sol_dq8(w.type, static_cast<const uint8_t *>(w.data) + (size_t)r * w.row_bytes, g, v);
    T *o = out + (size_t)r * ld + 8 * g;
    for (int i = 0; i < 8; i++)
        store_rounded(o + i, v[i]);
}

// x (n floats) rounded to nearest in the GEMM's 16-bit input type.
template <typename T> __global__ void round_inputs_kernel(const float *x, int64_t n, T *out)
{
    int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t < n)
        store_rounded(out + t, x[t]);
}

// y (m rows of `cols`) += bias, row by row.
__global__ void add_bias_kernel(float *y, const float *bias, int64_t cols, int64_t n)
{
    int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (t < n)
        y[t] += bias[t % cols];
}

// A cuBLAS failure as a CUDA error, its status kept for the error line.
cudaError_t cublas_failed(cuda_ctx *c, cublasStatus_t st)
{
    c->cublas_status = st;
    return cudaErrorUnknown;
}

// The handle, made on the first call: bound to the backend's stream, then
// given its workspace (cublasSetStream resets the workspace to cuBLAS's
// pool, so the order matters). Host side only, never in a recorded closure.
bool ensure_handle(cuda_ctx *c)
{
    if (c->cublas)
        return true;
    if (!c->cublas_workspace) {
        void *ws = nullptr;
        if (SOL_CUDA_NOTE(c, cudaMalloc(&ws, kWorkspaceBytes)))
            return false;
        c->cublas_workspace = ws;
    }
    cublasHandle_t h = nullptr;
    cublasStatus_t st = cublasCreate(&h);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasSetStream(h, c->stream);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasSetWorkspace(h, c->cublas_workspace, kWorkspaceBytes);
    if (st != CUBLAS_STATUS_SUCCESS) {
        if (h)
            cublasDestroy(h);
        sol_cuda_note(c, cublas_failed(c, st), "cublasCreate/SetStream/SetWorkspace");
        return false;
    }
    c->cublas = h;
    return true;
}

// What makes two recorded GEMM calls the same: the handle (its stream and
// workspace never change) and every argument.
void key_gemm(sol_cuda_key &k, cublasHandle_t h, const sol_cuda_gemm_plan &p, const void *a, const void *b, float *y)
{
    static const char tag[] = "cublasGemmEx";
    sol_key_add(k, static_cast<const void *>(tag));
    sol_key_add(k, h);
    sol_key_add(k, p.transa);
    sol_key_add(k, p.transb);
    sol_key_add(k, p.M);
    sol_key_add(k, p.N);
    sol_key_add(k, p.K);
    sol_key_add(k, a);
    sol_key_add(k, p.a_type);
    sol_key_add(k, p.lda);
    sol_key_add(k, b);
    sol_key_add(k, p.b_type);
    sol_key_add(k, p.ldb);
    sol_key_add(k, y);
    sol_key_add(k, p.c_type);
    sol_key_add(k, p.ldc);
}

// y = op(A) . B through the recorder. The closure reads only what it
// captured: alpha and beta are its own constants, read by cuBLAS at the
// call (host pointer mode), so a captured graph bakes in 1 and 0.
void enqueue_gemm(cuda_ctx *c, const sol_cuda_gemm_plan &p, const void *a, const void *b, float *y)
{
    cublasHandle_t h = c->cublas;
    if (sol_cuda_recording(c))
        key_gemm(sol_cuda_step_key(c), h, p, a, b, y);
    sol_cuda_enqueue(c, [c, h, p, a, b, y](cudaStream_t s) -> cudaError_t {
        if (s != c->stream) // the handle is bound to c->stream, where every closure runs
            return cudaErrorInvalidResourceHandle;
        const float one = 1.0f, zero = 0.0f;
        cublasStatus_t st = cublasGemmEx(h, p.transa, p.transb, p.M, p.N, p.K, &one, a, p.a_type, p.lda, b, p.b_type,
                                         p.ldb, &zero, y, p.c_type, p.ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        return st == CUBLAS_STATUS_SUCCESS ? cudaSuccess : cublas_failed(c, st);
    });
}

// The weights as cuBLAS reads them: in place, or decoded into GEMM_W (f16,
// or f32 for f32 inputs). NULL after an error.
const void *weights_operand(cuda_ctx *c, const sol_weight_view *w, const sol_cuda_gemm_plan &p)
{
    if (!p.w_scratch_bytes)
        return w->data;
    void *out = sol_cuda_scratch(c, SOL_CUDA_SCRATCH_GEMM_W, p.w_scratch_bytes);
    unsigned blocks = blocks_for(w->rows * (w->cols / 8));
    if (out && p.a_type == CUDA_R_32F)
        sol_cuda_launch(c, dequant_kernel<float>, blocks, kThreads, 0, *w, (int64_t)p.lda, static_cast<float *>(out));
    else if (out)
        sol_cuda_launch(c, dequant_kernel<__half>, blocks, kThreads, 0, *w, (int64_t)p.lda, static_cast<__half *>(out));
    return out;
}

// The inputs as cuBLAS reads them: in place (f32), or rounded into GEMM_X
// (dense rows, ldb == K). NULL after an error.
const void *inputs_operand(cuda_ctx *c, const float *x, const sol_cuda_gemm_plan &p)
{
    if (!p.x_scratch_bytes)
        return x;
    void *out = sol_cuda_scratch(c, SOL_CUDA_SCRATCH_GEMM_X, p.x_scratch_bytes);
    int64_t n = (int64_t)p.N * p.ldb;
    if (out && p.b_type == CUDA_R_16BF)
        sol_cuda_launch(c, round_inputs_kernel<__nv_bfloat16>, blocks_for(n), kThreads, 0, x, n,
                        static_cast<__nv_bfloat16 *>(out));
    else if (out)
        sol_cuda_launch(c, round_inputs_kernel<__half>, blocks_for(n), kThreads, 0, x, n, static_cast<__half *>(out));
    return out;
}

} // namespace

void sol_cuda_gemm(cuda_ctx *c, const sol_weight_view *w, const float *bias, const float *x, int m, float *y)
{
    sol_cuda_gemm_plan p = sol_cuda_gemm_plan_for(w, m, c->f32_gemm);
    if (c->failed)
        return;
    if (!p.ok) { // callers ask sol_cuda_gemm_wanted first
        sol_cuda_note(c, cudaErrorInvalidValue);
        return;
    }
    if (!ensure_handle(c))
        return;
    const void *a = weights_operand(c, w, p);
    const void *b = a ? inputs_operand(c, x, p) : nullptr;
    if (!b)
        return;
    enqueue_gemm(c, p, a, b, y);
    int64_t n = (int64_t)m * w->rows;
    if (bias)
        sol_cuda_launch(c, add_bias_kernel, blocks_for(n), kThreads, 0, y, bias, (int64_t)w->rows, n);
}

void sol_cuda_gemm_free(cuda_ctx *c)
{
    if (c->cublas)
        cublasDestroy(c->cublas);
    if (c->cublas_workspace)
        cudaFree(c->cublas_workspace);
    c->cublas = nullptr;
    c->cublas_workspace = nullptr;
}
