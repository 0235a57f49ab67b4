// The autotuner's matvec variants: a weight type and matvec.cuh's
// parameters. Which are valid (for any shape, then for one), their launch
// geometry (variant.cu), and their NVRTC compile for one architecture with
// the resources ptxas reports and an on-disk cache of the images
// (variant_compile.cu, variant_cache.cu). Host code inside the plugin: it
// never prints; reasons and errors come back as strings.
#ifndef SOL_KERNELS_CUDA_VARIANT_H
#define SOL_KERNELS_CUDA_VARIANT_H

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cuda/matvec.cuh"

extern "C" {
#include "util/err.h"
}

struct sol_mv_variant {
    sol_dtype type;
    sol_mv_params p;
    // 1: the fused kernel, sol_matvec_rmsnorm (RMSNorm folded into the
    // input; no K split). Defaulted so that every {type, params} written
    // before it stays the plain matvec, whose names and keys are unchanged.
    int rmsnorm = 0;
};

// A weight matrix: rows of cols elements, stored rows row_bytes apart.
struct sol_mv_shape {
    int64_t rows, cols;
    size_t row_bytes;
};

// What sm_80 .. sm_90 allow one block.
enum {
    SOL_MV_MAX_THREADS = 1024,
    SOL_MV_REGS_PER_BLOCK = 65536,
    SOL_MV_MAX_STATIC_SMEM = 48 * 1024,
};

// 0 when the variant can be compiled; otherwise 1 and the reason, one line,
// in why (why may be NULL).
int sol_mv_check_params(const sol_mv_variant *v, char *why, size_t cap);
// 0 when it can also run on shape s (the parameters are checked too).
int sol_mv_check_shape(const sol_mv_variant *v, const sol_mv_shape *s, char *why, size_t cap);

// Static shared memory of the matvec kernel, in bytes.
int sol_mv_smem_bytes(const sol_mv_variant *v);

struct sol_mv_launch {
    unsigned grid_x, grid_y, threads;
    size_t workspace_bytes; // the partial sums of k_split > 1 (0 otherwise)
};
// The launch of the matvec kernel for m inputs (m <= max_inputs).
sol_mv_launch sol_mv_geometry(const sol_mv_variant *v, const sol_mv_shape *s, int m);

// "q4_k" (util/dtype.c's names, which the plugin does not link; "?" for a
// type the backend does not decode).
const char *sol_mv_type_name(sol_dtype t);
// "q4_k r4 t32 v16 u2 k1 m1" ("... m1 norm" for the fused kernel), for
// tables and messages.
void sol_mv_label(const sol_mv_variant *v, char *buf, size_t cap);
// The kernels' C++ names as NVRTC instantiates them: the matvec (or the
// fused sol_matvec_rmsnorm), and the slice sum (k_split > 1; otherwise "").
void sol_mv_kernel_expr(const sol_mv_variant *v, char *buf, size_t cap);
void sol_mv_sum_expr(const sol_mv_variant *v, char *buf, size_t cap);

// ---- compiling (variant_compile.cu) ----

// One kernel's resources, from ptxas -v.
struct sol_mv_resources {
    int registers, stack_bytes, spill_store_bytes, spill_load_bytes, smem_bytes;
};
// Reads entry function `entry`'s lines of a ptxas -v log; 0, or -1 when the
// log has no complete record for it.
int sol_mv_parse_ptxas(const char *log, const char *entry, sol_mv_resources *out);

struct sol_mv_image {
    int sm;                     // 80, 86, 89, 90 ...
    uint64_t key;               // of the cache (variant_cache.cu)
    std::vector<uint8_t> cubin; // for cuModuleLoadData
    char kernel[256], sum[256]; // lowered names (sum "" when k_split is 1)
    sol_mv_resources res;       // of the matvec kernel
    double compile_ms;          // NVRTC's time; 0 from the cache
    int from_cache;
};

// The caller's compile state: where images are cached (NULL: nowhere) and
// counts, so a caller (and the tests) can see what was compiled.
struct sol_mv_compiler {
    const char *cache_dir;
    int nvrtc_compiles, cache_hits;
};

enum {
    SOL_MV_OK = 0,
    SOL_MV_INVALID,  // the parameters cannot be compiled (err says why)
    SOL_MV_REJECTED, // compiled, but it spills or exceeds the SM (out filled, err says why)
    SOL_MV_FAILED,   // NVRTC failed (err has its log's first line)
};

// Compiles v for sm_<sm> (or takes it from the cache). A cache file that is
// corrupt or another build's is ignored and rebuilt, and a file that cannot
// be written only costs the cache: both are told in notice (one line, ""
// when nothing happened), never as errors.
int sol_mv_build(sol_mv_compiler *c, const sol_mv_variant *v, int sm, sol_mv_image *out, char *notice,
                 size_t notice_cap, sol_err *err);

// What every image depends on but the variant and the architecture: the
// embedded sources, the options after the architecture and NVRTC's version
// (a tuning trial's source key); NVRTC's version (0.0 when it does not
// say); the options, space-separated.
uint64_t sol_mv_source_key(void);
void sol_mv_nvrtc_version(int *major, int *minor);
void sol_mv_rtc_options(char *buf, size_t cap);

// ---- the cache (variant_cache.cu) ----

uint64_t sol_mv_hash(uint64_t h, const void *data, size_t bytes); // FNV-1a, start at SOL_MV_HASH_SEED
#define SOL_MV_HASH_SEED 0xcbf29ce484222325ull

// <dir>/mv-<key in hex>.bin
void sol_mv_cache_path(const char *dir, uint64_t key, char *buf, size_t cap);
// 1 and out filled when a sound file for key is there; 0 otherwise, with
// the reason in notice when a file was there but was not sound.
int sol_mv_cache_load(const char *dir, uint64_t key, sol_mv_image *out, char *notice, size_t cap);
// Writes out's file (a temporary file renamed into place); 0, or -1 with the
// reason in notice.
int sol_mv_cache_store(const char *dir, const sol_mv_image *img, char *notice, size_t cap);

#endif
