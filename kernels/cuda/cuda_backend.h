// What the CUDA backend's files share (backend.cu: memory, steps, timing,
// errors; ops.cu: most kernels and their launchers; rope_kv.cu: RoPE and the
// KV write; attention.cu: attention). Not an interface for anything outside
// kernels/cuda.
#ifndef SOL_KERNELS_CUDA_CUDA_BACKEND_H
#define SOL_KERNELS_CUDA_CUDA_BACKEND_H

#include "kernels/cuda/counters.h"
#include "kernels/cuda/cuda_util.h"
#include "kernels/cuda/gemm_plan.h"
#include "kernels/cuda/launch.cuh"

// Largest head size the attention kernels take (attention.cu: 8 values a lane).
#define SOL_CUDA_MAX_HEAD_DIM 256

// The step's position and tokens in device memory, uploaded by begin_step
// in one copy: kernels read the position from here (a graph replays the
// same arguments every step). Host side pinned, same layout.
struct sol_cuda_step {
    int64_t pos;
    int32_t rows, seqs;
    int32_t tokens[1]; // rows of them (allocated to tokens_cap)
};
inline size_t sol_cuda_step_bytes(int rows) { return offsetof(sol_cuda_step, tokens) + (size_t)rows * sizeof(int32_t); }

// Device scratch buffers (sol_cuda_scratch), one per use.
// (MV_SPLIT: a tuned matvec's partial sums over K slices.)
enum sol_cuda_scratch_slot { SOL_CUDA_SCRATCH_ATTN, SOL_CUDA_SCRATCH_GEMM_W, SOL_CUDA_SCRATCH_GEMM_X,
                             SOL_CUDA_SCRATCH_MV_SPLIT, SOL_CUDA_SCRATCH_COUNT };

// A tuner's winner loaded for the device (backend.cu): its image and the
// kernels in it (sum: the slice sum of k_split > 1, else NULL).
struct sol_cuda_tuned_kernels {
    cudaLibrary_t lib;
    cudaKernel_t mv, sum;
};

struct cuda_ctx {
    int device;
    char device_name[256];
    cudaStream_t stream;
    // the step (begin_step): on the host, and its device copy
    int64_t pos;
    int rows, seqs;
    sol_cuda_step *step;      // device
    sol_cuda_step *step_host; // pinned
    int tokens_cap;
    int32_t *tokens;          // device: step->tokens
    const int64_t *pos_dev;   // device: &step->pos
    // marks: one event each, and the sync's at the end; a graph step has none
    cudaEvent_t *events;
    int n_events, events_cap;
    int step_timed;           // this step's marks recorded events
    const char *op; // the op launches are blamed on
    int layer;
    sol_cuda_graph graph;     // launch.cuh, graph.cu
    sol_cuda_gemm_mode gemm;
    bool f32_gemm; // cuBLAS with f32 inputs (the backend's activations are SOL_ACT_F32)
    void (*upload_progress)(void *user, double done, double total);
    void *progress_user;
    void *scratch[SOL_CUDA_SCRATCH_COUNT];
    size_t scratch_bytes[SOL_CUDA_SCRATCH_COUNT];
    std::vector<void *> retired; // scratch replaced while a step recorded: freed at the next begin_step
    // gemm.cu: the cuBLAS handle, made at the first cuBLAS matmul, and the
    // workspace it owns (so a call captured into a graph never allocates)
    cublasHandle_t cublas;
    void *cublas_workspace;
    // the status of a failed cuBLAS call, which reached sol_cuda_note as
    // cudaErrorUnknown: the error line names it instead
    cublasStatus_t cublas_status;
    // the tuner's winners that loaded (the options' others are dropped),
    // and their kernels, index for index (tuned.h finds one)
    std::vector<sol_cuda_tuned_mv> tuned;
    std::vector<sol_cuda_tuned_kernels> tuned_kernels;
    // the attention tuner's winners that loaded, and their kernels (mv: the
    // split kernel, sum: the combine)
    std::vector<sol_cuda_tuned_attn> tuned_attn;
    std::vector<sol_cuda_tuned_kernels> tuned_attn_kernels;
    // --counters (count_step): every count_every-th graph step, the first
    // one included, is replayed under CUPTI after its sync
    sol_cuda_counting counting;
    int count_every;          // 0: not counting
    int64_t graph_steps;      // decode steps recorded for a graph so far
    bool count_this_step;     // begin_step chose this step to be counted
    // the first error; after it nothing is launched
    int failed;
    char error[480];
};

inline cuda_ctx *cuda_of(sol_backend *b) { return static_cast<cuda_ctx *>(b->ctx); }

// Records the first error, blamed on the current op and on the API call
// that returned it (`call`: its name, or its expression, of which the
// name before "(" is said; NULL where the error is a check's own); returns
// 1 when there is one (now or before), so a caller launches nothing more.
int sol_cuda_note(cuda_ctx *c, cudaError_t e, const char *call = nullptr);
// A runtime call checked as sol_cuda_note(c, call, "call(...)").
#define SOL_CUDA_NOTE(c, call) sol_cuda_note((c), (call), #call)

// gemm.cu: whether a matmul goes through cuBLAS (gemm_plan.h's rule for
// the backend's --gemm), and the matmul through cuBLAS, on c->stream via
// the recorder (the operands it converts in scratch first, then
// cublasGemmEx, then the bias). Called only where sol_cuda_gemm_wanted.
inline bool sol_cuda_gemm_wanted(const cuda_ctx *c, const sol_weight_view *w, int m)
{
    return sol_cuda_gemm_routes(c->gemm, w, m, c->f32_gemm);
}
void sol_cuda_gemm(cuda_ctx *c, const sol_weight_view *w, const float *bias, const float *x, int m, float *y);
// Destroys the handle and frees its workspace (cuda_destroy, after the
// stream's last work).
void sol_cuda_gemm_free(cuda_ctx *c);

// ops.cu: the table's ops (all but MoE's and MLA's), launched on c->stream
void sol_cuda_ops_init(sol_backend *b);
// attention.cu: the attention op (decode split across blocks and combined)
void sol_cuda_attention(sol_backend *b, const float *q, const sol_kv_cache_layer *cache, int n_heads, int n_kv_heads,
                        int head_dim, int64_t window, float softcap, float *out);

// topk.cu: the top_k op (sampling's candidates)
void sol_cuda_top_k(sol_backend *b, const float *x, int64_t n, int k, float *vals, int32_t *ids);

// rope_kv.cu: RoPE and the KV write, per row of a step of c->seqs sequences
// (rope_kv_write in one launch); sol_cuda_ops_init puts them in the table.
void sol_cuda_rope(sol_backend *b, float *x, int n_heads, int head_dim, const sol_rope *rope);
void sol_cuda_kv_write(sol_backend *b, const float *k, const float *v, sol_kv_cache_layer *cache);
void sol_cuda_rope_kv_write(sol_backend *b, float *q, float *k, const float *v, int n_heads, int head_dim,
                            const sol_rope *rope, sol_kv_cache_layer *cache);

// Scratch `slot` of at least `bytes` bytes of device memory, for an op to
// use in its launches: called on the host when the op is called (never in
// a recorded closure). It only grows; a buffer it replaces during a graph
// step is freed at the next begin_step, since the step's recorded launches
// still name it. NULL after an error (noted against the current op).
void *sol_cuda_scratch(cuda_ctx *c, sol_cuda_scratch_slot slot, size_t bytes);

// graph.cu: runs what a graph step recorded (its graph, captured when the
// launches differ from the last one's); every stream sync point calls it
// first. Returns c->failed.
int sol_cuda_flush(cuda_ctx *c);
// Frees the instantiated graph.
void sol_cuda_graph_free(cuda_ctx *c);

#endif
