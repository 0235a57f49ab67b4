/* A stand-in for the CUDA plugin's tuner entries (kernels/cuda/plugin.h),
 * so the CLI's side of `sol tune --backend cuda` (cli/tune_cuda.c: the
 * search, the database rows, resume, the winner, the baseline, a crash) is
 * tested on a machine without a GPU. Built as build/test/fake_tuner.so.
 * One fake device; a trial's "time" is a fixed function of the variant,
 * and some variants are wrong on purpose, the fastest of all, so a CLI that
 * chose a wrong one would show it:
 *   valid   rows_per_block x threads_per_row a multiple of 32, <= 1024;
 *           K whole 64-element slices of the k_split
 *   wrong   unroll 8 (1 us: faster than any right one)
 *   time    10 us + |rows_per_block - 8| + |log2 threads_per_row - 6| +
 *           (vec_bytes != 16) + (k_split - 1) / 2 us; best: r8 t64 v16 k1
 *   crash   rows_per_block 2 x threads_per_row 16 with SOL_FAKE_TUNER_CRASH
 *           set: status CRASHED, an error
 *   counters (when asked) DRAM read = the bytes the problem must move
 *           (weights + x + y) x 1.25 when vec_bytes != 16 (wasted traffic),
 *           x 1 otherwise; written 4 x rows x m; L2 twice the read; cuBLAS
 *           reads 1.5x. With SOL_FAKE_TUNER_NO_COUNTERS set: none, and the
 *           first trial carries a notice saying so
 * The fused RMSNorm matvec (req->rmsnorm): the same rules, but
 *   valid   k_split 1 only (the real kernel has no K split)
 *   time    12 us + |rows_per_block - 4| + |log2 threads_per_row - 6| +
 *           (vec_bytes != 16) us; best: r4 t64 v16, apart from the
 *           matvec's (a CLI that mixed the two kernels' rows would show it)
 *   bytes   the matvec's and the norm vector (4 x cols)
 *   cuBLAS  refused (INVALID), as the plugin does
 * Decode attention (at_*): the built-in d = head_dim / 32 rounded up to
 * 1, 2, 4 or 8, h = the GQA group up to 8, w4, s256;
 *   valid   dims_per_lane the built-in's, heads_per_block <= 8, warps x
 *           heads_per_block <= 64
 *   wrong   warps 16 with 64 slots a split (1 us: faster than any right one)
 *   time    20 us + |log2 heads_per_block - log2 h| + |log2 warps - 3| +
 *           |log2 slots_per_split - 9| / 2 us; best: w8 s512
 *   bytes   the K and V rows of every slot, q and the output; counted
 *           DRAM 1x them
 * Nothing here prints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/plugin.h"

static int device_count(int *count, sol_err *err)
{
    (void)err;
    *count = 1;
    return 0;
}

static int device_info(int device, sol_cuda_device *out, sol_err *err)
{
    (void)device;
    (void)err;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "Fake GPU (tests/backend/fake_tuner.c)");
    snprintf(out->uuid, sizeof out->uuid, "GPU-00000000-0000-0000-0000-00000000fa4e");
    snprintf(out->cc, sizeof out->cc, "9.0");
    snprintf(out->driver, sizeof out->driver, "13.0");
    snprintf(out->runtime, sizeof out->runtime, "13.0");
    out->sms = 132;
    out->l2_bytes = 50 << 20;
    out->mem_bytes = (int64_t)80 << 30;
    return 0;
}

static void mv_default(sol_dtype type, int max_inputs, sol_cuda_mv_config *out)
{
    (void)type;
    *out = (sol_cuda_mv_config){4, 32, 16, 2, 1, max_inputs};
}

static int mv_check(sol_dtype type, int64_t rows, int64_t cols, size_t row_bytes, const sol_cuda_mv_config *p,
                    char *why, size_t cap)
{
    (void)type;
    (void)rows;
    (void)row_bytes;
    int threads = p->rows_per_block * p->threads_per_row;
    if (threads % 32 == 0 && threads <= 1024 && cols % (64 * p->k_split) == 0)
        return 0;
    if (why && cap)
        snprintf(why, cap, "fake rule: %d threads, K %lld in %d slices", threads, (long long)cols, p->k_split);
    return 1;
}

static int mv_source(sol_cuda_mv_source *out, sol_err *err)
{
    (void)err;
    memset(out, 0, sizeof *out);
    snprintf(out->hash, sizeof out->hash, "fa4e0000fa4e0001");
    snprintf(out->nvrtc, sizeof out->nvrtc, "13.0");
    snprintf(out->options, sizeof out->options, "-std=c++17 -default-device");
    snprintf(out->cublas, sizeof out->cublas, "13.1.0");
    snprintf(out->attn_hash, sizeof out->attn_hash, "fa4e0000a77e0001");
    return 0;
}

static void result_init(sol_cuda_mv_result *r, const char *label)
{
    memset(r, 0, sizeof *r);
    r->median_s = r->min_s = r->max_s = -1;
    snprintf(r->label, sizeof r->label, "%s", label);
}

/* Bytes of a row of cols elements of the types the CLI tests tune. */
static double row_bytes_of(sol_dtype t, int64_t cols)
{
    return t == SOL_DT_F16 ? 2.0 * cols : t == SOL_DT_Q4_K ? cols / 256 * 144.0 : t == SOL_DT_Q8_0 ? cols / 32 * 34.0
                                                                                                   : 4.0 * cols;
}

/* What the problem must move: weights, x and y (and the fused kernel's norm). */
static double plan_bytes(const sol_cuda_mv_request *req)
{
    return req->rows * row_bytes_of(req->type, req->cols) + 4.0 * req->m * (req->rows + req->cols) +
           (req->rmsnorm ? 4.0 * req->cols : 0.0);
}

static int noticed;

/* The fake's counters for a run that must move the problem's bytes and
 * reads `waste` times them. */
static void count(const sol_cuda_mv_request *req, double waste, sol_cuda_mv_result *out)
{
    if (!req->counters)
        return;
    if (getenv("SOL_FAKE_TUNER_NO_COUNTERS")) {
        if (!noticed++)
            snprintf(out->counter_notice, sizeof out->counter_notice,
                     "CUPTI unavailable: fake (SOL_FAKE_TUNER_NO_COUNTERS); hardware counters off, timing only");
        return;
    }
    double plan = plan_bytes(req);
    double y = 4.0 * req->m * req->rows;
    out->counted = 1;
    out->counter_passes = 8;
    out->counters[SOL_CUDA_CTR_DRAM_READ_BYTES] = waste * plan - y;
    out->counters[SOL_CUDA_CTR_DRAM_WRITE_BYTES] = y;
    out->counters[SOL_CUDA_CTR_L2_BYTES] = 2 * waste * plan;
    out->counters[SOL_CUDA_CTR_SM_PCT] = 20;
    out->counters[SOL_CUDA_CTR_DRAM_PCT] = 80;
    out->counters[SOL_CUDA_CTR_DURATION_NS] = out->median_s * 1e9;
}

static int mv_trial(int device, const sol_cuda_mv_request *req, sol_cuda_mv_result *out, sol_err *err)
{
    (void)device;
    const sol_cuda_mv_config *p = &req->params;
    char label[64];
    snprintf(label, sizeof label, "fake r%d t%d v%d u%d k%d m%d", p->rows_per_block, p->threads_per_row, p->vec_bytes,
             p->unroll, p->k_split, p->max_inputs);
    result_init(out, label);
    if (mv_check(req->type, req->rows, req->cols, 0, p, out->why, sizeof out->why)) {
        out->status = SOL_CUDA_TRIAL_INVALID;
        return 0;
    }
    if (req->rmsnorm && p->k_split != 1) {
        out->status = SOL_CUDA_TRIAL_INVALID;
        snprintf(out->why, sizeof out->why, "fake rule: the fused kernel has no K split");
        return 0;
    }
    out->bytes = plan_bytes(req);
    out->registers = 32;
    if (p->rows_per_block == 2 && p->threads_per_row == 16 && getenv("SOL_FAKE_TUNER_CRASH")) {
        out->status = SOL_CUDA_TRIAL_CRASHED;
        snprintf(out->why, sizeof out->why, "crashed: an illegal memory access was encountered");
        snprintf(err->msg, sizeof err->msg, "%s faulted (an illegal memory access was encountered)", label);
        err->code = SOL_ERR_RUNTIME;
        return err->code;
    }
    if (p->unroll == 8) { /* wrong, and the fastest */
        out->correct = 0;
        out->max_error = 0.5;
        out->tolerance = 1e-5;
        snprintf(out->why, sizeof out->why, "wrong answer: fake");
        return 0;
    }
    double us = req->rmsnorm ? 12 + fabs(p->rows_per_block - 4.0) + fabs(log2(p->threads_per_row) - 6) +
                                   (p->vec_bytes != 16)
                             : 10 + fabs(p->rows_per_block - 8.0) + fabs(log2(p->threads_per_row) - 6) +
                                   (p->vec_bytes != 16) + (p->k_split - 1) / 2.0;
    out->correct = 1;
    out->max_error = 1e-7;
    out->tolerance = 1e-5;
    out->median_s = us * 1e-6;
    out->min_s = 0.99 * out->median_s;
    out->max_s = 1.02 * out->median_s;
    out->reps = req->reps;
    count(req, p->vec_bytes != 16 ? 1.25 : 1.0, out);
    return 0;
}

static int mv_cublas(int device, const sol_cuda_mv_request *req, sol_cuda_mv_result *out, sol_err *err)
{
    (void)device;
    (void)err;
    result_init(out, "fake cuBLAS");
    if (req->rmsnorm) {
        out->status = SOL_CUDA_TRIAL_INVALID;
        snprintf(out->why, sizeof out->why, "fake rule: cuBLAS has no fused RMSNorm matvec");
        return 0;
    }
    out->correct = 1;
    out->median_s = out->min_s = out->max_s = 50e-6;
    out->reps = req->reps;
    out->bytes = 2e6;
    count(req, 1.5, out);
    return 0;
}

static void mv_release(void) {}

static int pow2_at_least(int v, int cap)
{
    int p = 1;
    while (p < v && p < cap)
        p *= 2;
    return p;
}

static void at_default(int head_dim, int group, sol_cuda_attn_config *out)
{
    *out = (sol_cuda_attn_config){pow2_at_least((head_dim + 31) / 32, 8), group < 8 ? group : 8, 4, 256};
}

static int at_check(const sol_cuda_attn_request *req, char *why, size_t cap)
{
    sol_cuda_attn_config d;
    at_default(req->head_dim, req->n_heads / req->n_kv_heads, &d);
    const sol_cuda_attn_config *p = &req->params;
    if (p->dims_per_lane == d.dims_per_lane && p->heads_per_block <= 8 && p->warps * p->heads_per_block <= 64)
        return 0;
    if (why && cap)
        snprintf(why, cap, "fake rule: d%d h%d w%d", p->dims_per_lane, p->heads_per_block, p->warps);
    return 1;
}

static int at_trial(int device, const sol_cuda_attn_request *req, sol_cuda_mv_result *out, sol_err *err)
{
    (void)device;
    (void)err;
    const sol_cuda_attn_config *p = &req->params;
    char label[64];
    snprintf(label, sizeof label, "fake d%d h%d w%d s%d", p->dims_per_lane, p->heads_per_block, p->warps,
             p->slots_per_split);
    result_init(out, label);
    if (at_check(req, out->why, sizeof out->why)) {
        out->status = SOL_CUDA_TRIAL_INVALID;
        return 0;
    }
    double elem = req->kv_type == SOL_DT_F16 ? 2 : 4;
    out->bytes = req->rows * (double)req->capacity * req->n_kv_heads * req->head_dim * 2 * elem +
                 8.0 * req->rows * req->n_heads * req->head_dim;
    if (p->warps == 16 && p->slots_per_split == 64) { /* wrong, and the fastest */
        out->max_error = 0.5;
        out->tolerance = 1e-5;
        snprintf(out->why, sizeof out->why, "wrong answer: fake");
        return 0;
    }
    sol_cuda_attn_config d;
    at_default(req->head_dim, req->n_heads / req->n_kv_heads, &d);
    double us = 20 + fabs(log2(p->heads_per_block) - log2(d.heads_per_block)) + fabs(log2(p->warps) - 3) +
                fabs(log2(p->slots_per_split) - 9) / 2;
    out->correct = 1;
    out->max_error = 1e-7;
    out->tolerance = 1e-5;
    out->median_s = us * 1e-6;
    out->min_s = 0.99 * out->median_s;
    out->max_s = 1.02 * out->median_s;
    out->reps = req->reps;
    if (req->counters && !getenv("SOL_FAKE_TUNER_NO_COUNTERS")) {
        out->counted = 1;
        out->counter_passes = 8;
        out->counters[SOL_CUDA_CTR_DRAM_READ_BYTES] = out->bytes;
    }
    return 0;
}

static const sol_cuda_plugin table = {
    .abi = SOL_CUDA_PLUGIN_ABI,
    .build = "fake tuner (tests/backend/fake_tuner.c)",
    .device_count = device_count,
    .device_info = device_info,
    .tune_magic = SOL_CUDA_TUNE_MAGIC,
    .mv_default = mv_default,
    .mv_check = mv_check,
    .mv_source = mv_source,
    .mv_trial = mv_trial,
    .mv_cublas = mv_cublas,
    .mv_release = mv_release,
    .attn_magic = SOL_CUDA_ATTN_TUNE_MAGIC,
    .at_default = at_default,
    .at_check = at_check,
    .at_trial = at_trial,
};

__attribute__((visibility("default"))) const sol_cuda_plugin *sol_cuda_plugin_table(void) { return &table; }
