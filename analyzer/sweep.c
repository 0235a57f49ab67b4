/* Sweeps: the decode bound over batch sizes and context lengths, and the
 * two knees a capacity planner looks for: the batch from which decode is
 * compute-bound, and the largest batch whose KV cache fits. */
#include <stdlib.h>

#include "analyzer/analyzer.h"

/* One analysis at (ctx, batch), the rest of base kept. */
static int analyze_at(const sol_model *m, const sol_kv_scheme *kv, const sol_hw *hw,
                      const sol_analysis_config *base, int64_t ctx, int batch, sol_analysis *a, sol_err *err)
{
    sol_analysis_config cfg = *base;
    cfg.ctx = ctx;
    cfg.batch = batch;
    return sol_analyze(m, kv, hw, &cfg, a, err);
}

int sol_sweep_point_at(const sol_model *m, const sol_kv_scheme *kv, const sol_hw *hw,
                       const sol_analysis_config *base, int64_t ctx, int batch, sol_sweep_point *p, sol_err *err)
{
    sol_analysis *a = malloc(sizeof *a);
    if (!a)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    int rc = analyze_at(m, kv, hw, base, ctx, batch, a, err);
    if (!rc) {
        *p = (sol_sweep_point){.ctx = ctx,
                               .batch = batch,
                               .tokens_per_s = a->decode_tokens_per_s,
                               .user_tokens_per_s = a->decode_tokens_per_s / batch,
                               .step_s = a->decode_cost.sol_time_s,
                               .memory_bytes = a->memory_bytes,
                               .bound = a->decode_cost.sol_bound,
                               .fits = a->fits,
                               .max_batch = a->max_batch};
        sol_analysis_free(a);
    }
    free(a);
    return rc;
}

enum { KNEE_LIMIT = 1 << 20 };

/* The first batch in (lo, hi] whose decode is compute-bound, knowing lo is
 * not and hi is (compute grows as B, bytes as W + B*KV: the ratio rises). */
static int bisect_compute(const sol_model *m, const sol_kv_scheme *kv, const sol_hw *hw,
                          const sol_analysis_config *base, int64_t ctx, int lo, int hi, int *first, sol_err *err)
{
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        sol_sweep_point p;
        int rc = sol_sweep_point_at(m, kv, hw, base, ctx, mid, &p, err);
        if (rc)
            return rc;
        if (p.bound == SOL_BOUND_COMPUTE)
            hi = mid;
        else
            lo = mid;
    }
    *first = hi;
    return 0;
}

int sol_sweep_knee_at(const sol_model *m, const sol_kv_scheme *kv, const sol_hw *hw,
                      const sol_analysis_config *base, int64_t ctx, sol_sweep_knee *k, sol_err *err)
{
    sol_sweep_point p;
    int rc = sol_sweep_point_at(m, kv, hw, base, ctx, 1, &p, err);
    if (rc)
        return rc;
    *k = (sol_sweep_knee){.ctx = ctx, .compute_bound_from = -1, .max_batch = p.max_batch};
    if (p.bound == SOL_BOUND_COMPUTE) {
        k->compute_bound_from = 1;
        return 0;
    }
    for (int b = 2; b <= KNEE_LIMIT; b *= 2) {
        if ((rc = sol_sweep_point_at(m, kv, hw, base, ctx, b, &p, err)))
            return rc;
        if (p.bound == SOL_BOUND_COMPUTE) {
            int first;
            if ((rc = bisect_compute(m, kv, hw, base, ctx, b / 2, b, &first, err)))
                return rc;
            k->compute_bound_from = first;
            return 0;
        }
    }
    return 0; /* memory-bound up to KNEE_LIMIT: the KV cache dominates */
}
