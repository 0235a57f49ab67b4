// Decode attention's autotuner trials (attn_trial.cu): the plugin's at_*
// entries (plugin.h) and their host halves, which
// tests/cuda/test_attn_trial.cu checks without a GPU: the data a trial
// makes, the float64 reference and the bound an answer is held to.
#ifndef SOL_KERNELS_CUDA_ATTN_TRIAL_H
#define SOL_KERNELS_CUDA_ATTN_TRIAL_H

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" {
#include "kernels/cuda/plugin.h"
}

// ---- the plugin's entries (plugin.h says what each does) ----
void sol_cuda_attn_default(int head_dim, int group, sol_cuda_attn_config *out);
int sol_cuda_attn_check(const sol_cuda_attn_request *req, char *why, size_t cap);
int sol_cuda_attn_trial(int device, const sol_cuda_attn_request *req, sol_cuda_mv_result *out, sol_err *err);
// Frees the attention problem (sol_cuda_tune_release, the plugin's
// mv_release, calls it).
void sol_cuda_attn_release(void);

// ---- host halves ----

// What a request's rows see: q (rows x n_heads x head_dim) and the keys
// 0..pos of each row's K and V (rows x (pos + 1) x n_kv_heads x head_dim),
// as the floats the kernel reads (f16 caches: the f16 values, exactly).
struct sol_attn_data {
    std::vector<float> q, k, v;
};
void sol_attn_make_data(const sol_cuda_attn_request *req, sol_attn_data *out);

// The float64 reference of every output (row, head, dim) and its
// magnitude sum_t p_t |v_t| (what the bound scales), and over all rows and
// heads the largest sum_d |q_d k_d| / sqrt(head_dim) and |score|.
struct sol_attn_reference {
    std::vector<double> ref, mag;
    double dot_max, score_max;
};
void sol_attn_reference_of(const sol_cuda_attn_request *req, const sol_attn_data *d, sol_attn_reference *out);

// The bound on |y - ref| / mag of the kernel's f32 computation over `keys`
// keys, with `merges` merges of partial states (a variant's warps - 1 plus
// splits - 1); attn_trial.cu derives it.
double sol_attn_f32_bound(int head_dim, int64_t keys, double dot_max, double score_max, int merges);

#endif
