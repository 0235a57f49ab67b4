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
 * and rmsnorm_matmul_group ops; the matvec autotuner's entries, present
 * where tune_magic is SOL_CUDA_TUNE_MAGIC (the test plugin leaves them
 * zero). ABI 6: hardware counters (CUPTI's Range Profiler): a trial's
 * counters beside its time (sol_cuda_mv_request.counters), the engine's
 * counted decode steps (sol_plugin_backend_options.counters); the fused
 * RMSNorm matvec's trials and winners (the rmsnorm fields appended to
 * sol_cuda_mv_request and sol_cuda_tuned_mv). */
#ifndef SOL_KERNELS_CUDA_PLUGIN_H
#define SOL_KERNELS_CUDA_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/probe.h"
#include "util/err.h"

#define SOL_CUDA_PLUGIN_ABI 6
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

/* kernels/cuda/matvec.cuh's parameters (sol_mv_params), field for field. */
typedef struct sol_cuda_mv_config {
    int rows_per_block, threads_per_row, vec_bytes, unroll, k_split, max_inputs;
} sol_cuda_mv_config;

/* A tuner's winner for the engine: the matvec variant `params` for
 * y[m, rows] = x[m, cols] . W^T of weight type `type` (sol tune --backend
 * cuda, its database row). */
typedef struct sol_cuda_tuned_mv {
    sol_dtype type;
    int64_t rows, cols;
    int m;
    sol_cuda_mv_config params;
    int rmsnorm; /* appended to ABI 6: 1, the winner is the fused RMSNorm
                  * matvec's (sol_matvec_rmsnorm, the rmsnorm_matmul_group
                  * op's), 0 the plain matvec's */
} sol_cuda_tuned_mv;

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
    /* appended to ABI 5: the tuner's winners for this device (NULL, 0: the
     * built-in variants only), compiled through the image cache in
     * tune_cache_dir (NULL: NVRTC compiles each, nothing cached); the
     * backend copies them. tuned_loaded (NULL: not told) receives how many
     * it could load; the others run the built-in variants. */
    const sol_cuda_tuned_mv *tuned;
    int n_tuned;
    const char *tune_cache_dir;
    int *tuned_loaded;
    /* appended to ABI 6: 1 counts decode steps with hardware counters
     * (the backend then sets count_step; CUDA: replays of a graph step,
     * so it refuses no_graph with it) */
    int counters;
    /* appended to ABI 6: the attention tuner's winners for this device, as
     * tuned is the matvec's (NULL, 0: the built-in variant); the backend
     * copies them; tuned_attn_loaded (NULL: not told) receives how many
     * loaded. */
    const struct sol_cuda_tuned_attn *tuned_attn;
    int n_tuned_attn;
    int *tuned_attn_loaded;
} sol_plugin_backend_options;

/* ---- the matvec autotuner (kernels/cuda/tune_trial.cu) ------------------- */

#define SOL_CUDA_TUNE_MAGIC 0x534f4c54u /* "SOLT": the tuner's entries follow */

/* One trial: y[m, rows] = x[m, cols] . W^T for W of `type`, made from seed
 * (the same seed, type and shape: the same weights and inputs). */
typedef struct sol_cuda_mv_request {
    sol_dtype type;
    int64_t rows, cols;
    int m;                     /* inputs, 1..8 (passes of max_inputs each) */
    sol_cuda_mv_config params; /* mv_trial; mv_cublas ignores it */
    int reps;                  /* timed repetitions, 10..1000 */
    uint64_t seed;
    const char *cache_dir;     /* compiled images (NULL: not cached) */
    int counters;              /* 1: count a right answer's run with CUPTI after timing it */
    /* appended to ABI 6: 1, the fused kernel (sol_matvec_rmsnorm, k_split 1):
     * y = W . RMSNorm(x), each input x / sqrt(mean(x^2) + 1e-5) times a norm
     * vector made from seed, as the engine's rmsnorm op computes it */
    int rmsnorm;
} sol_cuda_mv_request;

/* A trial's hardware counters (CUPTI's names), in this order. */
enum {
    SOL_CUDA_CTR_DRAM_READ_BYTES,  /* dram__bytes_read.sum */
    SOL_CUDA_CTR_DRAM_WRITE_BYTES, /* dram__bytes_write.sum */
    SOL_CUDA_CTR_L2_BYTES,         /* lts__t_bytes.sum */
    SOL_CUDA_CTR_SM_PCT,           /* sm__throughput.avg.pct_of_peak_sustained_elapsed */
    SOL_CUDA_CTR_DRAM_PCT,         /* gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed */
    SOL_CUDA_CTR_DURATION_NS,      /* gpu__time_duration.sum */
    SOL_CUDA_N_COUNTERS
};

enum {
    SOL_CUDA_TRIAL_OK = 0,  /* ran; `correct` says whether its answer was right */
    SOL_CUDA_TRIAL_INVALID, /* the parameters do not fit the shape (why) */
    SOL_CUDA_TRIAL_REJECTED, /* compiled, but spills or does not fit an SM, or would not launch (why) */
    SOL_CUDA_TRIAL_CRASHED, /* it faulted and took the device context with it: mv_trial returned
                             * an error; record it as wrong and stop */
};

typedef struct sol_cuda_mv_result {
    int status;          /* SOL_CUDA_TRIAL_* */
    int correct;         /* 1: every output within `tolerance` of the float64 reference */
    char why[256];       /* one line: the reason when status != OK or !correct */
    char label[128];     /* "q4_k r4 t32 v16 u2 k1 m1", or what cuBLAS ran */
    double max_error;    /* max over outputs of |y - ref| / sum |w x| */
    double tolerance;    /* the bound max_error is held to */
    double median_s, min_s, max_s; /* -1 when not timed (not correct) */
    int reps;
    double bytes;        /* moved by one run: weights + x + y */
    int registers, spill_bytes, stack_bytes, smem_bytes; /* ptxas, the matvec kernel */
    double compile_ms;   /* NVRTC's time; 0 from the cache */
    int from_cache;
    char notice[256];    /* one line about the image cache ("" when all was well) */
    /* ABI 6: counted (1) when the request asked and CUPTI could: one run
     * after an untimed L2 flush, replayed over counter_passes passes;
     * otherwise counter_notice says why not, once per process ("" after) */
    int counted;
    int counter_passes;
    double counters[SOL_CUDA_N_COUNTERS];
    char counter_notice[512];
} sol_cuda_mv_result;

/* What a trial's key holds besides the device: the kernel sources the
 * plugin embeds and compiles, and the compiler. */
typedef struct sol_cuda_mv_source {
    char hash[20];     /* 16 hex digits: the embedded sources, NVRTC's options and version */
    char nvrtc[16];    /* "13.0" */
    char options[96];  /* NVRTC's options but the architecture */
    char cublas[16];   /* "13.0.2": the cuBLAS the baseline runs */
    char attn_hash[20]; /* ABI 6: decode attention's sources, options and NVRTC, as hash is the matvec's */
} sol_cuda_mv_source;

/* ---- decode attention's autotuner (kernels/cuda/attn_trial.cu) ---- */

#define SOL_CUDA_ATTN_TUNE_MAGIC 0x534f4c41u /* "SOLA": the attention tuner's entries follow */

/* kernels/cuda/attn_variant.h's parameters (sol_attn_variant), field for field. */
typedef struct sol_cuda_attn_config {
    int dims_per_lane, heads_per_block, warps, slots_per_split;
} sol_cuda_attn_config;

/* A tuner's decode attention winner for the engine: the variant `params`
 * for n_heads query heads over n_kv_heads of head_dim on a cache of
 * kv_type, for `rows` sequences, measured at `capacity` slots (sol tune
 * --backend cuda, its cuda.attention row). */
typedef struct sol_cuda_tuned_attn {
    int n_heads, n_kv_heads, head_dim;
    sol_dtype kv_type;
    int64_t capacity;
    int rows;
    sol_cuda_attn_config params;
} sol_cuda_tuned_attn;

/* One decode attention trial: `rows` sequences (1..8), each one query row
 * at position pos (0 <= pos < capacity) over its own cache of `capacity`
 * slots of kv_type (SOL_DT_F16 or SOL_DT_F32), n_heads query heads sharing
 * n_kv_heads KV heads of head_dim (<= 256); q, K and V made from seed (the
 * same seed and shape: the same data). No window, no sinks, no soft-cap. */
typedef struct sol_cuda_attn_request {
    int n_heads, n_kv_heads, head_dim;
    sol_dtype kv_type;
    int64_t capacity, pos;
    int rows;
    sol_cuda_attn_config params;
    int reps;              /* timed repetitions, 10..1000 */
    uint64_t seed;
    const char *cache_dir; /* compiled images (NULL: not cached) */
    int counters;          /* 1: count a right answer's run with CUPTI after timing it */
} sol_cuda_attn_request;

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
    /* ---- appended to ABI 5: the matvec autotuner ---- */
    uint32_t tune_magic; /* SOL_CUDA_TUNE_MAGIC where the entries below are set */
    /* The built-in variant of type for max_inputs inputs (what ops.cu runs). */
    void (*mv_default)(sol_dtype type, int max_inputs, sol_cuda_mv_config *out);
    /* 0 when the variant can run on a rows x cols matrix of type stored
     * row_bytes apart; 1 and the reason (one line, why may be NULL)
     * otherwise. Host code: no device needed. */
    int (*mv_check)(sol_dtype type, int64_t rows, int64_t cols, size_t row_bytes, const sol_cuda_mv_config *params,
                    char *why, size_t cap);
    int (*mv_source)(sol_cuda_mv_source *out, sol_err *err);
    /* One variant on the device: compiled for its exact sm (through the
     * cache), checked against a float64 reference, timed with CUDA events
     * (warm-up, then reps runs, each after an untimed L2 flush). 0 with the
     * verdict in out (a variant that is invalid, rejected or wrong is a
     * verdict, not an error); an error otherwise (no device, NVRTC failing,
     * CUDA failing, status CRASHED). */
    int (*mv_trial)(int device, const sol_cuda_mv_request *req, sol_cuda_mv_result *out, sol_err *err);
    /* The cuBLAS baseline of the same problem (req->params ignored), under
     * the same rules: cublasGemmEx on F32/F16/BF16 weights in place, block
     * types on their f16 decoding (out->label says which). */
    int (*mv_cublas)(int device, const sol_cuda_mv_request *req, sol_cuda_mv_result *out, sol_err *err);
    /* Frees what trials keep between calls (the problem's buffers on the device). */
    void (*mv_release)(void);
    /* ---- appended to ABI 6: decode attention's autotuner ---- */
    uint32_t attn_magic; /* SOL_CUDA_ATTN_TUNE_MAGIC where the entries below are set */
    /* The engine's built-in variant for a head_dim and a GQA group (query
     * heads per KV head). */
    void (*at_default)(int head_dim, int group, sol_cuda_attn_config *out);
    /* 0 when req->params can run req's shape; 1 and the reason (one line,
     * why may be NULL) otherwise. Host code: no device needed. */
    int (*at_check)(const sol_cuda_attn_request *req, char *why, size_t cap);
    /* One variant on the device, under mv_trial's rules: compiled for the
     * exact sm (through the cache), checked against a float64 reference,
     * timed (warm-up, then reps runs, each after an untimed L2 flush),
     * counted when asked. out->bytes: the K and V rows the rows' queries
     * see, plus q and the output. mv_release frees what it keeps. */
    int (*at_trial)(int device, const sol_cuda_attn_request *req, sol_cuda_mv_result *out, sol_err *err);
} sol_cuda_plugin;

typedef const sol_cuda_plugin *(*sol_cuda_plugin_fn)(void);

#endif
