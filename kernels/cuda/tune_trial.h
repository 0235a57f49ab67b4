// The matvec autotuner's trials (tune_trial.cu): the plugin's tuner entries
// (plugin.h) and their host halves, which tests/cuda/test_tune_trial.cu
// checks without a GPU: the weights and inputs a trial makes, the float64
// reference and the rule that judges an answer.
#ifndef SOL_KERNELS_CUDA_TUNE_TRIAL_H
#define SOL_KERNELS_CUDA_TUNE_TRIAL_H

#include <cstddef>
#include <cstdint>

extern "C" {
#include "kernels/cuda/plugin.h"
}

// ---- the plugin's entries (plugin.h says what each does) ----
void sol_cuda_tune_default(sol_dtype type, int max_inputs, sol_cuda_mv_config *out);
int sol_cuda_tune_check(sol_dtype type, int64_t rows, int64_t cols, size_t row_bytes, const sol_cuda_mv_config *params,
                      char *why, size_t cap);
int sol_cuda_tune_source(sol_cuda_mv_source *out, sol_err *err);
int sol_cuda_tune_trial(int device, const sol_cuda_mv_request *req, sol_cuda_mv_result *out, sol_err *err);
int sol_cuda_tune_cublas(int device, const sol_cuda_mv_request *req, sol_cuda_mv_result *out, sol_err *err);
void sol_cuda_tune_release(void);

// ---- host halves ----

// Bytes of a row of cols elements of t; 0 when the CUDA backend does not
// decode t or cols is not whole blocks.
size_t sol_tune_row_bytes(sol_dtype t, int64_t cols);

// rows x cols weights of t (rows of sol_tune_row_bytes) from seed: random
// quants and values, every f16 scale field a finite normal number small
// enough that no decoded weight exceeds 16 in magnitude.
void sol_tune_make_weights(sol_dtype t, int64_t rows, int64_t cols, uint64_t seed, uint8_t *out);
// n inputs uniform in [-1, 1) from seed.
void sol_tune_make_inputs(int64_t n, uint64_t seed, float *x);

// ref[i * rows + r] = sum_c w[r][c] x[i * cols + c] and mag[i * rows + r] =
// sum_c |w[r][c] x[i * cols + c]| in float64, for i < m, the weights
// decoded by sol_dq8 (what the kernels see).
void sol_tune_reference(sol_dtype t, const uint8_t *w, int64_t rows, int64_t cols, const float *x, int m, double *ref,
                        double *mag);

// The bound on |y - ref| / mag of an f32 dot product of cols terms
// (tune_trial.cu derives it).
double sol_tune_f32_bound(int64_t cols);

// ---- the fused RMSNorm matvec's (sol_cuda_mv_request.rmsnorm) ----

// The eps of the fused trials (the engine's models' usual norm_eps).
constexpr float kSolTuneRmsEps = 1e-5f;
// n norm weights from seed, in [0.5, 1.5): a norm vector of the usual size.
void sol_tune_make_norm(int64_t n, uint64_t seed, float *norm);
// xn[i * cols + c] = x[i * cols + c] / sqrt(sum_c x^2 / cols + eps) *
// norm[c] in float64, for i < m: RMSNorm as rmsnorm.cuh computes it,
// without its roundings.
void sol_tune_normalize(const float *x, const float *norm, int64_t cols, int m, float eps, double *xn);
// sol_tune_reference of the normalised inputs xn (float64).
void sol_tune_reference_normed(sol_dtype t, const uint8_t *w, int64_t rows, int64_t cols, const double *xn, int m,
                               double *ref, double *mag);
// The bound on |y - ref| / mag of the fused kernel: the f32 dot product's
// and the norm's roundings (tune_trial.cu derives it).
double sol_tune_rms_bound(int64_t cols);

struct sol_tune_verdict {
    int correct;      // every output finite and within bound * mag of ref
    double max_error; // max |y - ref| / mag (inf for a non-finite output)
    int64_t worst;    // the output where it is
};
sol_tune_verdict sol_tune_judge(const float *y, const double *ref, const double *mag, int64_t n, double bound);

#endif
