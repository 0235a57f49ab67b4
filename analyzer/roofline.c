/* The roofline cost of a plan: each op takes the longest of moving its
 * bytes at memory bandwidth, doing its FLOPs at the peak of its compute
 * type, and (tensor parallel) its all-reduce over the interconnect; run one
 * after another, a step costs the sum ("unfused"). The speed of light is
 * the whole step's bound (analyzer.h: sol_step_cost). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/analyzer.h"

const char *sol_bound_name(sol_bound b)
{
    static const char *const names[] = {"memory", "compute", "comm"};
    return names[b];
}

/* The longest of the three times, and which it is (memory wins ties). */
static double longest(double mem_s, double compute_s, double comm_s, sol_bound *bound)
{
    double t = mem_s;
    *bound = SOL_BOUND_MEMORY;
    if (compute_s > t) {
        t = compute_s;
        *bound = SOL_BOUND_COMPUTE;
    }
    if (comm_s > t) {
        t = comm_s;
        *bound = SOL_BOUND_COMM;
    }
    return t;
}

static void cost_op(const sol_op *op, const sol_hw *hw, sol_op_cost *c)
{
    memset(c, 0, sizeof *c);
    c->bytes = sol_op_bytes(op);
    c->flops = op->flops;
    c->intensity = c->bytes > 0 ? c->flops / c->bytes : 0;
    double peak = sol_hw_peak(hw, sol_peak_for(op->atype), &c->peak_used);
    c->mem_time_s = c->bytes / hw->mem_bw.value;
    c->compute_time_s = c->flops / peak;
    if (op->comm_bytes > 0 && hw->interconnect_bw.known) /* alpha-beta: steps x latency + bytes / bandwidth */
        c->comm_time_s = op->comm_steps * hw->interconnect_latency.value + op->comm_bytes / hw->interconnect_bw.value;
    c->time_s = longest(c->mem_time_s, c->compute_time_s, c->comm_time_s, &c->bound);
}

/* Bytes no implementation avoids: weights and KV read, KV appended, the
 * sampled token ids. Activations passed between ops may stay on chip. */
static double unavoidable_bytes(const sol_op *op)
{
    double bytes = op->weight_bytes + op->kv_bytes;
    if (op->kind == SOL_OP_KV_WRITE || op->kind == SOL_OP_SAMPLE)
        bytes += op->write_bytes;
    return bytes;
}

/* The whole step's bound: the FLOPs of each compute type at its peak (the
 * largest: types on different units could overlap), the unavoidable bytes
 * at bandwidth, and the all-reduces; the longest of the three. */
static void step_bound(const sol_plan *plan, const sol_hw *hw, sol_step_cost *cost)
{
    double per_peak[SOL_PEAK_COUNT] = {0};
    for (int i = 0; i < plan->n_ops; i++) {
        const sol_op_cost *c = &cost->ops[i];
        cost->sol_bytes += unavoidable_bytes(&plan->ops[i]);
        per_peak[c->peak_used] += c->compute_time_s;
        cost->sol_comm_s += c->comm_time_s;
    }
    for (int p = 0; p < SOL_PEAK_COUNT; p++)
        if (per_peak[p] > cost->sol_compute_s)
            cost->sol_compute_s = per_peak[p];
    cost->sol_mem_s = cost->sol_bytes / hw->mem_bw.value;
    cost->sol_time_s = longest(cost->sol_mem_s, cost->sol_compute_s, cost->sol_comm_s, &cost->sol_bound);
}

int sol_cost_plan(const sol_plan *plan, const sol_hw *hw, sol_step_cost *cost, sol_err *err)
{
    memset(cost, 0, sizeof *cost);
    if (!hw->mem_bw.known || !hw->peak[SOL_PEAK_FP32].known)
        return sol_fail(err, SOL_ERR_RUNTIME, "hardware \"%s\" lacks memory bandwidth or fp32 peak",
                        hw->name);
    if (plan->params.tp > 1 && (!hw->interconnect_bw.known || !hw->interconnect_latency.known))
        return sol_fail(err, SOL_ERR_USAGE, "--tp %d: hardware \"%s\" has no interconnect %s", plan->params.tp,
                        hw->name, hw->interconnect_bw.known ? "latency (interconnect_latency_s)" : "bandwidth");
    cost->ops = calloc((size_t)(plan->n_ops > 0 ? plan->n_ops : 1), sizeof *cost->ops);
    if (!cost->ops)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    for (int i = 0; i < plan->n_ops; i++) {
        sol_op_cost *c = &cost->ops[i];
        cost_op(&plan->ops[i], hw, c);
        cost->bytes += c->bytes;
        cost->flops += c->flops;
        cost->unfused_time_s += c->time_s;
        if (c->bound == SOL_BOUND_MEMORY)
            cost->mem_bound_time_s += c->time_s;
        else if (c->bound == SOL_BOUND_COMPUTE)
            cost->compute_bound_time_s += c->time_s;
        else
            cost->comm_bound_time_s += c->time_s;
    }
    step_bound(plan, hw, cost);
    cost->bound = SOL_BOUND_MEMORY;
    if (cost->compute_bound_time_s > cost->mem_bound_time_s &&
        cost->compute_bound_time_s >= cost->comm_bound_time_s)
        cost->bound = SOL_BOUND_COMPUTE;
    else if (cost->comm_bound_time_s > cost->mem_bound_time_s &&
             cost->comm_bound_time_s > cost->compute_bound_time_s)
        cost->bound = SOL_BOUND_COMM;
    return 0;
}

void sol_step_cost_free(sol_step_cost *cost)
{
    free(cost->ops);
    cost->ops = NULL;
}

/* KV on one device: split by head across tensor-parallel ranks, replicated
 * when there are fewer heads than ranks (and for an MLA latent). */
static double kv_split(const sol_kv_scheme *kv, const sol_model *m, int tp)
{
    int heads = kv->heads == SOL_KV_MHA ? m->n_heads
                : kv->heads == SOL_KV_MQA ? 1
                : kv->heads == SOL_KV_GQA ? kv->n_kv_heads
                                          : 1;
    return heads < tp ? heads : tp;
}

/* --efficiency: the ceilings scaled to what an implementation reaches. */
static int apply_efficiency(const sol_analysis_config *cfg, sol_hw *hw, sol_err *err)
{
    double mem = cfg->mem_efficiency, flops = cfg->flops_efficiency;
    if (mem < 0 || mem > 1 || flops < 0 || flops > 1 || mem != mem || flops != flops)
        return sol_fail(err, SOL_ERR_USAGE, "--efficiency: fractions must be in (0, 1] (got mem %g, flops %g)", mem,
                        flops);
    if (mem > 0)
        hw->mem_bw.value *= mem;
    for (int p = 0; flops > 0 && p < SOL_PEAK_COUNT; p++)
        hw->peak[p].value *= flops;
    return 0;
}

int sol_analyze(const sol_model *m, const sol_kv_scheme *kv, const sol_hw *hw,
                const sol_analysis_config *cfg, sol_analysis *a, sol_err *err)
{
    memset(a, 0, sizeof *a);
    a->model = *m;
    a->kv = *kv;
    a->hw = *hw;
    a->cfg = *cfg;
    if (cfg->ctx < 1)
        return sol_fail(err, SOL_ERR_USAGE, "--ctx: must be at least 1 token (got %lld)",
                        (long long)cfg->ctx);
    if (cfg->ctx > (int64_t)1 << 40)
        return sol_fail(err, SOL_ERR_USAGE, "--ctx: %lld tokens is beyond reason", (long long)cfg->ctx);
    int rc = sol_model_params(m, &a->params, err);
    if (rc)
        return rc;
    if ((rc = apply_efficiency(cfg, &a->hw, err)))
        return rc;
    hw = &a->hw;
    /* The decode step producing token ctx: ctx - 1 tokens are cached. */
    sol_plan_params decode = {.batch = cfg->batch, .n_tokens = 1, .pos = cfg->ctx - 1,
                              .wtype = cfg->wtype, .atype = cfg->atype, .kvtype = cfg->kvtype,
                              .tp = cfg->tp, .routing = cfg->routing};
    sol_plan_params prefill = decode;
    prefill.n_tokens = cfg->prompt;
    prefill.pos = 0;
    if ((rc = sol_plan_build(m, kv, &decode, &a->decode, err)) ||
        (rc = sol_plan_build(m, kv, &prefill, &a->prefill, err)) ||
        (rc = sol_cost_plan(&a->decode, hw, &a->decode_cost, err)) ||
        (rc = sol_cost_plan(&a->prefill, hw, &a->prefill_cost, err))) {
        sol_analysis_free(a);
        return rc;
    }
    for (int i = 0; i < a->decode.n_ops; i++)
        a->weights_bytes += a->decode.ops[i].store_bytes;
    double split = kv_split(kv, m, cfg->tp);
    a->kv_split = split;
    a->kv_elems_per_token = (double)sol_kv_elems_per_token(kv, m);
    a->kv_bytes_per_token = sol_kv_bytes_per_token(kv, m, cfg->kvtype);
    a->kv_cache_bytes_per_seq = sol_kv_cache_bytes(kv, m, cfg->kvtype, cfg->ctx) / split;
    a->kv_cache_bytes = a->kv_cache_bytes_per_seq * cfg->batch;
    a->memory_bytes = a->weights_bytes + a->kv_cache_bytes;
    a->fits = a->memory_bytes <= hw->mem_bytes.value;
    double room = hw->mem_bytes.value - a->weights_bytes;
    a->max_batch = room <= 0 ? 0 : a->kv_cache_bytes_per_seq > 0 ? (long long)floor(room / a->kv_cache_bytes_per_seq) : -1;
    a->decode_tokens_per_s = cfg->batch / a->decode_cost.sol_time_s;
    a->prefill_tokens_per_s = (double)cfg->batch * cfg->prompt / a->prefill_cost.sol_time_s;
    a->decode_unfused_tokens_per_s = cfg->batch / a->decode_cost.unfused_time_s;
    a->prefill_unfused_tokens_per_s = (double)cfg->batch * cfg->prompt / a->prefill_cost.unfused_time_s;
    return 0;
}

void sol_analysis_free(sol_analysis *a)
{
    sol_plan_free(&a->decode);
    sol_plan_free(&a->prefill);
    sol_step_cost_free(&a->decode_cost);
    sol_step_cost_free(&a->prefill_cost);
}
