// RoPE and the KV write, element by element: the rotation of one pair, the
// cache address of one (row, element), the f16/f32 store, and the body of
// one thread of each kernel (rope_kv.cu). The unfused kernels (rope, rope,
// kv_write) and the fused rope_kv_write run these same functions on the
// same values, so the fused one is bit-identical to the sequence by
// construction, not by a tolerance. __host__ __device__: the host test
// (tests/cuda/test_rope_kv.cu) runs every thread of each grid without a GPU.
//
// The rules are the CPU backend's (kernels/cpu/cpu_backend.c rope_row,
// row_slot, store_kv): the angle pos * inv_freq[i] in double, cos and sin of
// it rounded to float, x0 c - x1 s and x0 s + x1 c in float; row r of a
// batched step is sequence sol_step_seq at position sol_step_row_pos, and a
// sequence's K and V start seq * seq_stride bytes into the cache's arrays.
#ifndef SOL_KERNELS_CUDA_ROPE_KV_CUH
#define SOL_KERNELS_CUDA_ROPE_KV_CUH

#include <cuda_fp16.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

extern "C" {
#include "kernels/backend.h"
}

// The step as the kernels see it: the first position of each sequence
// (read from device memory in a kernel), the rows and the sequences.
struct sol_step_rows {
    int64_t pos;
    int rows, seqs;
};

__host__ __device__ inline int64_t sol_row_pos(const sol_step_rows &st, int r)
{
    return sol_step_row_pos(st.pos, st.rows, st.seqs, r);
}

// ---- RoPE -----------------------------------------------------------------

// Where pair i lies in a head (from the head's first element): neox pairs
// x[i] with x[i + dims/2], the other convention adjacent elements.
__host__ __device__ inline void sol_rope_pair_dims(const sol_rope &g, int i, int *a, int *z)
{
    int half = g.dims / 2;
    *a = g.offset + (g.neox ? i : 2 * i);
    *z = g.offset + (g.neox ? i + half : 2 * i + 1);
}

// What RoPE does to element d of a head: keeps it, or it is the first (a)
// or second (z) element of pair *pair. An odd dims' last element, like the
// ones outside offset .. offset + dims, is kept, as the pair loop leaves it.
enum sol_rope_role { SOL_ROPE_KEPT, SOL_ROPE_FIRST, SOL_ROPE_SECOND };

__host__ __device__ inline sol_rope_role sol_rope_role_of(const sol_rope &g, int d, int *pair)
{
    int half = g.dims / 2, u = d - g.offset;
    if (u < 0 || u >= 2 * half)
        return SOL_ROPE_KEPT;
    if (g.neox) {
        *pair = u < half ? u : u - half;
        return u < half ? SOL_ROPE_FIRST : SOL_ROPE_SECOND;
    }
    *pair = u / 2;
    return u % 2 == 0 ? SOL_ROPE_FIRST : SOL_ROPE_SECOND;
}

// (x0, x1) rotated by the angle of cosine c and sine s. On the device each
// product and sum is rounded on its own (the _rn intrinsics are never
// contracted into an FMA), as the CPU's C computes it: the result cannot
// depend on how the compiler fused the kernel it is inlined in.
__host__ __device__ inline void sol_rotate(float *x0, float *x1, float c, float s)
{
    float a = *x0, z = *x1;
#ifdef __CUDA_ARCH__
    *x0 = __fsub_rn(__fmul_rn(a, c), __fmul_rn(z, s));
    *x1 = __fadd_rn(__fmul_rn(a, s), __fmul_rn(z, c));
#else
    *x0 = a * c - z * s;
    *x1 = a * s + z * c;
#endif
}

// Pair i of the head at `head` rotated in place for position pos.
__host__ __device__ inline void sol_rope_pair(float *head, int i, int64_t pos, const sol_rope &g)
{
    double angle = (double)pos * g.inv_freq[i];
    float c = (float)cos(angle), s = (float)sin(angle);
    int a, z;
    sol_rope_pair_dims(g, i, &a, &z);
    sol_rotate(&head[a], &head[z], c, s);
}

// ---- the KV cache -----------------------------------------------------------

// f16 and f32 caches only (the backend's caps.kv_types).
__host__ __device__ inline size_t sol_kv_elem_bytes(const sol_kv_cache_layer &c)
{
    return c.type == SOL_DT_F16 ? sizeof(__half) : sizeof(float);
}

// Bytes from the cache's k (and v) to element e of step row r's K (V): its
// sequence's arrays, its position's slot (sinks, then the ring).
__host__ __device__ inline size_t sol_kv_elem_at(const sol_kv_cache_layer &c, const sol_step_rows &st, int r,
                                                 int64_t e)
{
    size_t seq = (size_t)sol_step_seq(st.rows, st.seqs, r) * c.seq_stride;
    size_t slot = (size_t)sol_kv_slot(&c, sol_row_pos(st, r));
    return seq + (slot * (size_t)c.width + (size_t)e) * sol_kv_elem_bytes(c);
}

// x stored at byte `at` of a cache array, converted to the cache's type
// (f16: round to nearest even, as the CPU's sol_f32_to_f16). A host test
// may define SOL_KV_PUT_HOOK(array, at) to see every store.
__host__ __device__ inline void sol_kv_put(const sol_kv_cache_layer &c, void *array, size_t at, float x)
{
#if defined(SOL_KV_PUT_HOOK) && !defined(__CUDA_ARCH__)
    SOL_KV_PUT_HOOK(array, at);
#endif
    char *p = static_cast<char *>(array) + at;
    if (c.type == SOL_DT_F16)
        *reinterpret_cast<__half *>(p) = __float2half_rn(x);
    else
        *reinterpret_cast<float *>(p) = x;
}

// ---- one thread of each kernel ---------------------------------------------
// Each grid is flat, one thread per index t < the matching *_threads count;
// the launchers (rope_kv.cu) and the host test use the same counts.

// rope: one thread per (row, head, pair) of x[rows, n_heads * head_dim].
__host__ __device__ inline int64_t sol_rope_threads(int rows, int n_heads, const sol_rope &g)
{
    return (int64_t)rows * n_heads * (g.dims / 2);
}

__host__ __device__ inline void sol_rope_thread(int64_t t, float *x, int n_heads, int head_dim,
                                                const sol_step_rows &st, const sol_rope &g)
{
    int half = g.dims / 2;
    int64_t head = t / half; // row * n_heads + h
    int r = (int)(head / n_heads);
    sol_rope_pair(x + (size_t)head * head_dim, (int)(t % half), sol_row_pos(st, r), g);
}

// kv_write: one thread per (row, element) of k and v [rows, width].
__host__ __device__ inline int64_t sol_kv_write_threads(int rows, const sol_kv_cache_layer &c)
{
    return (int64_t)rows * c.width;
}

__host__ __device__ inline void sol_kv_write_thread(int64_t t, const float *k, const float *v,
                                                    const sol_step_rows &st, const sol_kv_cache_layer &c)
{
    size_t at = sol_kv_elem_at(c, st, (int)(t / c.width), t % c.width);
    sol_kv_put(c, c.k, at, k[t]);
    sol_kv_put(c, c.v, at, v[t]);
}

// rope_kv_write: per row, first one thread per pair of q (as rope), then
// one per element of the row's K and V (width = n_kv_heads * head_dim).
__host__ __device__ inline int64_t sol_rope_kv_row_threads(int n_heads, const sol_rope &g,
                                                           const sol_kv_cache_layer &c)
{
    return (int64_t)n_heads * (g.dims / 2) + c.width;
}

__host__ __device__ inline int64_t sol_rope_kv_write_threads(int rows, int n_heads, const sol_rope &g,
                                                             const sol_kv_cache_layer &c)
{
    return (int64_t)rows * sol_rope_kv_row_threads(n_heads, g, c);
}

// Element e of row r's K and V: V stored; K stored as it is where RoPE keeps
// it; the thread of a pair's first element rotates the pair and stores both
// (the second's thread stores no K). So every K element is read, rotated
// and stored by one thread: no thread reads what another writes.
__host__ __device__ inline void sol_rope_kv_element(int r, int64_t e, float *k, const float *v, int head_dim,
                                                    const sol_step_rows &st, const sol_rope &g,
                                                    const sol_kv_cache_layer &c)
{
    float *k_row = k + (size_t)r * c.width;
    size_t at = sol_kv_elem_at(c, st, r, e);
    sol_kv_put(c, c.v, at, v[(size_t)r * c.width + e]);
    int d = (int)(e % head_dim), pair = 0;
    int64_t head = e - d; // the head's first element in the row
    switch (sol_rope_role_of(g, d, &pair)) {
    case SOL_ROPE_KEPT:
        sol_kv_put(c, c.k, at, k_row[e]);
        break;
    case SOL_ROPE_FIRST: {
        int a, z;
        sol_rope_pair(k_row + head, pair, sol_row_pos(st, r), g);
        sol_rope_pair_dims(g, pair, &a, &z); // a == d
        sol_kv_put(c, c.k, at, k_row[head + a]);
        sol_kv_put(c, c.k, sol_kv_elem_at(c, st, r, head + z), k_row[head + z]);
        break;
    }
    case SOL_ROPE_SECOND:
        break;
    }
}

__host__ __device__ inline void sol_rope_kv_write_thread(int64_t t, float *q, float *k, const float *v, int n_heads,
                                                         int head_dim, const sol_step_rows &st, const sol_rope &g,
                                                         const sol_kv_cache_layer &c)
{
    int64_t per_row = sol_rope_kv_row_threads(n_heads, g, c), q_pairs = per_row - c.width;
    int r = (int)(t / per_row);
    int64_t j = t % per_row;
    if (j < q_pairs) { // j / half is the head within the row
        int half = g.dims / 2;
        float *head = q + ((size_t)r * n_heads + (size_t)(j / half)) * head_dim;
        sol_rope_pair(head, (int)(j % half), sol_row_pos(st, r), g);
    } else {
        sol_rope_kv_element(r, j - q_pairs, k, v, head_dim, st, g, c);
    }
}

#endif
