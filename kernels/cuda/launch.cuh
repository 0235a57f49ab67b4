// Every launch of the CUDA backend goes through here, so that a decode step
// can be replayed as one CUDA graph. Outside a graph step a launch runs at
// once on the backend's stream. In a graph step (begin_step decides: a
// decode step with graphs on that is not a profiled one) it is recorded
// instead: a closure that launches it, and its key, the bytes that make two
// launches the same (the kernel, grid, block, shared memory and every
// argument). At the step's sync (graph.cu) a key equal to the one the
// instantiated graph was captured from replays that graph; any other is
// captured anew. No argument may change from one decode step to the next
// unless the graph should change with it: the position is read from device
// memory (cuda_ctx::step), never passed by value.
#ifndef SOL_KERNELS_CUDA_LAUNCH_CUH
#define SOL_KERNELS_CUDA_LAUNCH_CUH

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

extern "C" {
#include "kernels/backend.h"
}

// One recorded launch: what runs it on a stream, and the op it is blamed on.
struct sol_cuda_work {
    std::function<cudaError_t(cudaStream_t)> run;
    const char *op;
    int layer;
};

// The bytes of a step's launches. Values are appended field by field, so
// structs with padding (whose padding bytes are indeterminate) never make
// two equal launches look different.
typedef std::vector<uint8_t> sol_cuda_key;

inline void sol_key_bytes(sol_cuda_key &k, const void *p, size_t n)
{
    const uint8_t *b = static_cast<const uint8_t *>(p);
    k.insert(k.end(), b, b + n);
}

template <typename T> void sol_key_add(sol_cuda_key &k, const T &v)
{
    static_assert(std::is_arithmetic<T>::value || std::is_pointer<T>::value || std::is_enum<T>::value ||
                      std::has_unique_object_representations<T>::value,
                  "a struct with padding needs its own sol_key_add, field by field");
    sol_key_bytes(k, &v, sizeof v);
}

inline void sol_key_add(sol_cuda_key &k, const dim3 &d)
{
    sol_key_add(k, d.x);
    sol_key_add(k, d.y);
    sol_key_add(k, d.z);
}

inline void sol_key_add(sol_cuda_key &k, const sol_weight_view &w)
{
    sol_key_add(k, w.type);
    sol_key_add(k, w.data);
    sol_key_add(k, w.rows);
    sol_key_add(k, w.cols);
    sol_key_add(k, w.row_bytes);
}

inline void sol_key_add(sol_cuda_key &k, const sol_kv_cache_layer &c)
{
    sol_key_add(k, c.type);
    sol_key_add(k, c.k);
    sol_key_add(k, c.v);
    sol_key_add(k, c.capacity);
    sol_key_add(k, c.width);
    sol_key_add(k, c.sinks);
    sol_key_add(k, c.seq_stride);
}

// A step's recording and the graph it replays (graph.cu).
struct sol_cuda_graph {
    int enabled;        // decode steps may run as graphs (not --no-graph)
    int profile_every;  // every this many decode steps runs op by op, timed (<= 0: never)
    int64_t decode_steps;
    int recording;      // this step's launches are being recorded
    sol_cuda_key key;   // this step's launches
    std::vector<sol_cuda_work> work;
    sol_cuda_key graph_key; // the launches `exec` was captured from
    cudaGraphExec_t exec;
    int64_t captures, replays;
};

// Whether a decode step (rows == its sequences) numbered `step` (0-based)
// records for a graph: graphs on, and not one of the profiled steps (step 0
// and every profile_every-th after it run op by op with events).
inline bool sol_cuda_graph_step(const sol_cuda_graph &g, int64_t step)
{
    return g.enabled && !(g.profile_every > 0 && step % g.profile_every == 0);
}

struct cuda_ctx;
// Runs fn now on the stream (an error noted against the current op) or,
// in a graph step, records it under the key the caller appended to
// g.key for it. Declared here, defined in graph.cu.
void sol_cuda_enqueue(cuda_ctx *c, std::function<cudaError_t(cudaStream_t)> fn);
// Whether launches are recorded now (the caller then appends a key first).
bool sol_cuda_recording(const cuda_ctx *c);
sol_cuda_key &sol_cuda_step_key(cuda_ctx *c);

// A launch of fn (a kernel's address or a loaded kernel handle) with args
// through the recorder; its key is the tag (if any), fn, grid, block,
// shared memory and every argument.
template <typename... P>
void sol_cuda_launch_tuple(cuda_ctx *c, const void *tag, const void *fn, dim3 grid, dim3 block, size_t shmem,
                           std::tuple<P...> args)
{
    if (sol_cuda_recording(c)) {
        sol_cuda_key &k = sol_cuda_step_key(c);
        if (tag)
            sol_key_add(k, tag);
        sol_key_add(k, fn);
        sol_key_add(k, grid);
        sol_key_add(k, block);
        sol_key_add(k, shmem);
        std::apply([&k](const P &...p) { (sol_key_add(k, p), ...); }, args);
    }
    sol_cuda_enqueue(c, [fn, grid, block, shmem, args](cudaStream_t s) mutable {
        return std::apply(
            [&](P &...p) {
                void *argv[] = {static_cast<void *>(&p)...};
                return cudaLaunchKernel(fn, grid, block, argv, shmem, s);
            },
            args);
    });
}

// kernel<<<grid, block, shmem>>>(args...) through the recorder.
template <typename... P, typename... A>
void sol_cuda_launch(cuda_ctx *c, void (*kernel)(P...), dim3 grid, dim3 block, size_t shmem, A... a)
{
    static_assert(sizeof...(P) == sizeof...(A), "one argument per kernel parameter");
    sol_cuda_launch_tuple(c, nullptr, reinterpret_cast<const void *>(kernel), grid, block, shmem,
                          std::tuple<P...>(static_cast<P>(a)...));
}

// A kernel handle's launch (an image loaded at run time: a tuner's winner)
// through the recorder; the arguments' types must be the kernel's
// parameters exactly (nothing converts them).
template <typename... A> void sol_cuda_launch_handle(cuda_ctx *c, cudaKernel_t kernel, dim3 grid, dim3 block, A... a)
{
    static const char tag[] = "cudaKernel_t";
    sol_cuda_launch_tuple(c, static_cast<const void *>(tag), reinterpret_cast<const void *>(kernel), grid, block, 0,
                          std::tuple<A...>(a...));
}

#endif
