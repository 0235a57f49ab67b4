// RoPE and the KV write (f16 or f32 cache), per row of a step that may hold
// several sequences (sol_step_state): row r at its own position, its KV in
// its sequence's part of the cache. rope_kv_write is one launch whose
// threads run the same per-element functions (rope_kv.cuh) as rope, rope
// and kv_write do, so the fused op's results are those of the three, bit
// for bit. The position comes from device memory (c->pos_dev) and rows and
// seqs are the same every decode step, so a recorded graph replays these.
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/rope_kv.cuh"

namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) { return (unsigned)((n + kThreads - 1) / kThreads); }

// The flat index of this thread of the grid.
__device__ int64_t thread_index() { return (int64_t)blockIdx.x * blockDim.x + threadIdx.x; }

__device__ sol_step_rows step_rows(const int64_t *pos, int rows, int seqs) { return {*pos, rows, seqs}; }

__device__ sol_rope rope_of(int dims, int offset, int neox, const float *inv_freq)
{
    return {dims, offset, neox, inv_freq};
}

// The sol_rope fields travel one by one: the struct has padding, which a
// launch's key may not hold (launch.cuh).
__global__ void rope_kernel(float *x, int64_t n, int n_heads, int head_dim, const int64_t *pos, int rows, int seqs,
                            int dims, int offset, int neox, const float *inv_freq)
{
    int64_t t = thread_index();
    if (t < n)
        sol_rope_thread(t, x, n_heads, head_dim, step_rows(pos, rows, seqs), rope_of(dims, offset, neox, inv_freq));
}

__global__ void kv_write_kernel(const float *k, const float *v, int64_t n, const int64_t *pos, int rows, int seqs,
                                sol_kv_cache_layer cache)
{
    int64_t t = thread_index();
    if (t < n)
        sol_kv_write_thread(t, k, v, step_rows(pos, rows, seqs), cache);
}

__global__ void rope_kv_write_kernel(float *q, float *k, const float *v, int64_t n, int n_heads, int head_dim,
                                     const int64_t *pos, int rows, int seqs, int dims, int offset, int neox,
                                     const float *inv_freq, sol_kv_cache_layer cache)
{
    int64_t t = thread_index();
    if (t < n)
        sol_rope_kv_write_thread(t, q, k, v, n_heads, head_dim, step_rows(pos, rows, seqs),
                                 rope_of(dims, offset, neox, inv_freq), cache);
}

} // namespace

void sol_cuda_rope(sol_backend *b, float *x, int n_heads, int head_dim, const sol_rope *rope)
{
    cuda_ctx *c = cuda_of(b);
    int64_t n = sol_rope_threads(c->rows, n_heads, *rope);
    if (c->failed || n < 1)
        return;
    sol_cuda_launch(c, rope_kernel, blocks_for(n), kThreads, 0, x, n, n_heads, head_dim, c->pos_dev, c->rows, c->seqs,
                    rope->dims, rope->offset, rope->neox, rope->inv_freq);
}

void sol_cuda_kv_write(sol_backend *b, const float *k, const float *v, sol_kv_cache_layer *cache)
{
    cuda_ctx *c = cuda_of(b);
    int64_t n = sol_kv_write_threads(c->rows, *cache);
    if (c->failed || n < 1)
        return;
    sol_cuda_launch(c, kv_write_kernel, blocks_for(n), kThreads, 0, k, v, n, c->pos_dev, c->rows, c->seqs, *cache);
}

void sol_cuda_rope_kv_write(sol_backend *b, float *q, float *k, const float *v, int n_heads, int head_dim,
                            const sol_rope *rope, sol_kv_cache_layer *cache)
{
    cuda_ctx *c = cuda_of(b);
    int64_t n = sol_rope_kv_write_threads(c->rows, n_heads, *rope, *cache);
    if (c->failed || n < 1)
        return;
    // K is whole heads (width = n_kv_heads * head_dim), each rotated within
    // itself: the element threads find their pair inside their head.
    if (head_dim < 1 || cache->width % head_dim || rope->offset < 0 || rope->offset + rope->dims > head_dim) {
        sol_cuda_note(c, cudaErrorInvalidValue);
        return;
    }
    sol_cuda_launch(c, rope_kv_write_kernel, blocks_for(n), kThreads, 0, q, k, v, n, n_heads, head_dim, c->pos_dev,
                    c->rows, c->seqs, rope->dims, rope->offset, rope->neox, rope->inv_freq, *cache);
}
