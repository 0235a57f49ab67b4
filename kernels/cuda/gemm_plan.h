// Which matmuls go through cuBLAS, and the arguments of their cublasGemmEx
// call: pure host code, so tests/cuda/test_gemm.cu checks it without a GPU
// (gemm.cu runs it).
//
// The mapping. The engine's matmul is y[m, rows] = x[m, cols] . W^T, all
// row-major, W as stored (`rows` rows of row_bytes). cuBLAS is column-major,
// and a row-major matrix is its transpose seen column-major, so:
//   y row-major m x rows   = C column-major rows x m, ldc = rows
//   W row-major rows x K   = A column-major K x rows, lda = the row stride
//   x row-major m x K      = B column-major K x m,    ldb = K
// and C = op(A) . B with op(A) = A^T (rows x K): transa = T, transb = N,
// M = rows, N = m, K = cols.
#ifndef SOL_KERNELS_CUDA_GEMM_PLAN_H
#define SOL_KERNELS_CUDA_GEMM_PLAN_H

#include <cublas_v2.h>

#include <climits>
#include <cstddef>

#include "kernels/cuda/dequant.cuh"

extern "C" {
#include "kernels/backend.h"
}

// Which matmuls go through cuBLAS (--gemm).
enum sol_cuda_gemm_mode { SOL_CUDA_GEMM_CUSTOM, SOL_CUDA_GEMM_CUBLAS };

// Inputs the custom kernels take in one pass over the weights (ops.cu's
// kPrefillInputs): more than this is a prefill, where cuBLAS's tiles win.
#define SOL_CUDA_GEMM_ABOVE 8

// One cublasGemmEx call (CUBLAS_COMPUTE_32F, f32 output) for a matmul.
struct sol_cuda_gemm_plan {
    bool ok; // cuBLAS takes this matrix: a type gemm.cu handles, dimensions that fit its ints
    cublasOperation_t transa, transb;
    int M, N, K; // C is M x N, op(A) M x K, op(B) K x N
    int lda, ldb, ldc;
    cudaDataType_t a_type, b_type, c_type;
    // SOL_CUDA_SCRATCH_GEMM_W: block-type weights decoded to f16, rows of
    // lda halves (0: W is used in place).
    size_t w_scratch_bytes;
    // SOL_CUDA_SCRATCH_GEMM_X: x converted to b_type, rows of ldb elements
    // (0: x is used in place, f32).
    size_t x_scratch_bytes;
};

// The call for y[m, w.rows] = x[m, w.cols] . W^T. F32 weights: f32 in, f32
// out (SGEMM's arithmetic). F16 and BF16: W in place, x rounded to the same
// 16-bit type (cublasGemmEx takes A and B of one type). Block types: W
// decoded to f16 and x rounded to f16. With f32_inputs (the backend's
// --activations f32, the exact path the CPU comparisons use) nothing is
// rounded: W of any type is decoded to f32 and x taken as it is. Not ok for
// anything else.
inline sol_cuda_gemm_plan sol_cuda_gemm_plan_for(const sol_weight_view *w, int m, bool f32_inputs = false)
{
    sol_cuda_gemm_plan p = {};
    if (m < 1 || w->rows < 1 || w->cols < 1 || w->rows > INT_MAX || w->cols > INT_MAX)
        return p;
    p.transa = CUBLAS_OP_T;
    p.transb = CUBLAS_OP_N;
    p.M = (int)w->rows;
    p.N = m;
    p.K = (int)w->cols;
    p.ldb = p.K;
    p.ldc = p.M;
    p.c_type = CUDA_R_32F;
    size_t x_elems = (size_t)m * (size_t)p.K;
    size_t stride; // elements from one row of A to the next, in place
    if (f32_inputs && w->type != SOL_DT_F32) {
        int block = sol_cuda_block_elems(w->type); // 0: not a type dequant.cuh decodes
        if (block < 1 || w->cols % 8 || w->cols % block) // decoded in groups of 8
            return p;
        p.a_type = p.b_type = CUDA_R_32F;
        stride = (size_t)p.K; // the scratch's rows are dense
        p.w_scratch_bytes = (size_t)p.M * stride * 4;
        p.lda = (int)stride;
        p.ok = stride <= INT_MAX;
        return p;
    }
    switch (w->type) {
    case SOL_DT_F32:
        p.a_type = p.b_type = CUDA_R_32F;
        stride = w->row_bytes / 4;
        if (w->row_bytes % 4)
            return p;
        break;
    case SOL_DT_F16:
    case SOL_DT_BF16:
        p.a_type = p.b_type = w->type == SOL_DT_F16 ? CUDA_R_16F : CUDA_R_16BF;
        stride = w->row_bytes / 2;
        if (w->row_bytes % 2)
            return p;
        p.x_scratch_bytes = x_elems * 2;
        break;
    default: {
        int block = sol_cuda_block_elems(w->type); // 0: not a type dequant.cuh decodes
        if (block < 8 || w->cols % block)
            return p;
        p.a_type = p.b_type = CUDA_R_16F;
        stride = (size_t)p.K; // the scratch's rows are dense
        p.w_scratch_bytes = (size_t)p.M * stride * 2;
        p.x_scratch_bytes = x_elems * 2;
        break;
    }
    }
    if (stride < (size_t)p.K || stride > INT_MAX) // cuBLAS needs lda >= K for op T
        return p;
    p.lda = (int)stride;
    p.ok = true;
    return p;
}

// cuBLAS for every prefill matmul (more inputs than one pass of the custom
// kernels), any type; with --gemm cublas also every F16/BF16 matmul, decode
// included, the baseline the custom kernels are compared with. Only where
// the plan is ok: anything else stays on the custom kernels.
inline bool sol_cuda_gemm_routes(sol_cuda_gemm_mode mode, const sol_weight_view *w, int m, bool f32_inputs = false)
{
    bool half = w->type == SOL_DT_F16 || w->type == SOL_DT_BF16;
    bool wanted = m > SOL_CUDA_GEMM_ABOVE || (mode == SOL_CUDA_GEMM_CUBLAS && half);
    return wanted && sol_cuda_gemm_plan_for(w, m, f32_inputs).ok;
}

#endif
