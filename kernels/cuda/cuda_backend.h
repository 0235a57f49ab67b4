// What the CUDA backend's files share (backend.cu: memory, steps, timing,
// errors; ops.cu: the kernels and their launchers). Not an interface for
// anything outside kernels/cuda.
#ifndef SOL_KERNELS_CUDA_CUDA_BACKEND_H
#define SOL_KERNELS_CUDA_CUDA_BACKEND_H

#include "kernels/cuda/cuda_util.h"

// Largest head size the attention kernel takes (8 values per lane).
#define SOL_CUDA_MAX_HEAD_DIM 256

struct cuda_ctx {
    int device;
    cudaStream_t stream;
    // the step (begin_step)
    int64_t pos;
    int rows;
    int32_t *tokens;      // device, rows ids
    int32_t *tokens_host; // the copy the upload reads from
    int tokens_cap;
    // marks: one event each, and the sync's at the end
    cudaEvent_t *events;
    int n_events, events_cap;
    const char *op; // the op launches are blamed on
    int layer;
    // the first error; after it nothing is launched
    int failed;
    char error[480];
};

inline cuda_ctx *cuda_of(sol_backend *b) { return static_cast<cuda_ctx *>(b->ctx); }

// Records the first error, blamed on the current op; returns 1 when there
// is one (now or before), so a caller launches nothing more.
int sol_cuda_note(cuda_ctx *c, cudaError_t e);

// ops.cu: the table's ops (all but MoE's and MLA's), launched on c->stream
void sol_cuda_ops_init(sol_backend *b);

#endif
