/* sol bench --batch B1,B2,...: batched decode of B sequences in lockstep,
 * each fed a random token every step, timed and, on a MoE model, with the
 * experts each layer actually read per step (the engine's count) beside
 * what the analyzer expects at that batch, E·(1-(1-k/E)^B) under uniform
 * routing, and the expert bytes both imply. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/bench_experts.h"
#include "cli/cli.h"
#include "models/plan.h"
#include "util/clock.h"

typedef struct {
    int batch, steps;
    double seconds, tokens_per_s;
    int has_experts;
    sol_expert_stats st;
    double predicted_distinct, half_width; /* 95% interval of the measured mean */
    double measured_bytes, predicted_bytes; /* expert weights read per step, all MoE layers */
} batch_result;

/* xorshift64*: the random inputs, the same for every run of a seed. */
static int32_t next_token(uint64_t *s, int vocab)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (int32_t)((*s * 2685821657736338717ull >> 33) % (uint64_t)vocab);
}

/* The plan's expert bytes of one decode step at this batch (moe.gate, up,
 * down over every MoE layer). */
static int plan_expert_bytes(sol_engine *e, int batch, double *bytes, sol_err *err)
{
    const sol_model *m = sol_engine_model(e);
    sol_plan_params p = {.batch = batch, .n_tokens = 1, .pos = sol_engine_pos(e), .wtype = m->wtype,
                         .atype = SOL_DT_F32, .kvtype = sol_engine_kv_type(e), .tp = 1};
    sol_plan plan = {0};
    int rc = sol_plan_build(m, sol_engine_kv(e), &p, &plan, err);
    *bytes = 0;
    for (int i = 0; !rc && i < plan.n_ops; i++) {
        const sol_op *op = &plan.ops[i];
        if (op->kind == SOL_OP_MATMUL && op->name[0] == 'm' && op->name[1] == 'o' && op->name[2] == 'e' &&
            op->group != SOL_GROUP_MOE_ROUTER)
            *bytes += op->weight_bytes;
    }
    sol_plan_free(&plan);
    return rc;
}

static int run_batch(const cli_experts_opts *o, int batch, batch_result *r, sol_err *err)
{
    sol_engine_config cfg = o->engine;
    cfg.seqs = batch;
    cfg.ctx = o->prompt + o->steps + 1;
    sol_engine *e = NULL;
    int rc = sol_engine_open(o->model, &cfg, &e, err);
    int32_t *tokens = rc ? NULL : malloc((size_t)batch * 2 * sizeof *tokens);
    if (!rc && !tokens)
        rc = sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)batch;
    int vocab = rc ? 0 : sol_engine_model(e)->vocab;
    double t0 = 0;
    for (int step = 0; !rc && step < o->prompt + o->steps; step++) {
        if (step == o->prompt) { /* the prompt is in: count and time the decode */
            sol_engine_expert_stats_reset(e);
            rc = plan_expert_bytes(e, batch, &r->predicted_bytes, err);
            t0 = sol_now_s();
        }
        for (int s = 0; s < batch; s++)
            tokens[s] = next_token(&seed, vocab);
        if (!rc)
            rc = sol_engine_eval_batch(e, tokens, NULL, NULL, tokens + batch, err);
    }
    if (!rc) {
        r->batch = batch;
        r->steps = o->steps;
        r->seconds = sol_now_s() - t0;
        r->tokens_per_s = r->seconds > 0 ? (double)batch * o->steps / r->seconds : 0;
        r->has_experts = sol_engine_expert_stats(e, &r->st) == 0;
    }
    if (!rc && r->has_experts) {
        const sol_expert_stats *st = &r->st;
        r->predicted_distinct = sol_moe_expected_experts(st->n_experts, st->k, batch);
        r->half_width = st->samples > 1 ? 1.96 * st->sd_distinct / sqrt((double)st->samples) : 0;
        r->measured_bytes = st->mean_distinct * st->expert_bytes * st->moe_layers;
    }
    free(tokens);
    sol_engine_close(e);
    return rc;
}

static cJSON *result_json(const batch_result *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "batch", r->batch);
    cJSON_AddNumberToObject(j, "steps", r->steps);
    cJSON_AddNumberToObject(j, "seconds", r->seconds);
    cJSON_AddNumberToObject(j, "tokens_per_s", r->tokens_per_s);
    if (!r->has_experts)
        return j;
    cJSON *x = cJSON_AddObjectToObject(j, "experts");
    cJSON_AddNumberToObject(x, "n_experts", r->st.n_experts);
    cJSON_AddNumberToObject(x, "k", r->st.k);
    cJSON_AddNumberToObject(x, "moe_layers", r->st.moe_layers);
    cJSON_AddNumberToObject(x, "samples", (double)r->st.samples);
    cJSON_AddNumberToObject(x, "distinct_mean", r->st.mean_distinct);
    cJSON_AddNumberToObject(x, "distinct_sd", r->st.sd_distinct);
    cJSON_AddNumberToObject(x, "distinct_ci95", r->half_width);
    cJSON_AddNumberToObject(x, "distinct_predicted", r->predicted_distinct);
    cJSON_AddNumberToObject(x, "expert_bytes_per_step", r->measured_bytes);
    cJSON_AddNumberToObject(x, "expert_bytes_per_step_predicted", r->predicted_bytes);
    return j;
}

static void print_header(void)
{
    printf("| batch | steps | tok/s | experts/layer/step measured (95%% CI) | predicted | expert MB/step "
           "measured | predicted |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|\n");
}

static void print_row(const batch_result *r)
{
    if (!r->has_experts) {
        printf("| %d | %d | %.2f | - | - | - | - |\n", r->batch, r->steps, r->tokens_per_s);
        return;
    }
    printf("| %d | %d | %.2f | %.3f ± %.3f | %.3f | %.2f | %.2f |\n", r->batch, r->steps, r->tokens_per_s,
           r->st.mean_distinct, r->half_width, r->predicted_distinct, r->measured_bytes / 1e6,
           r->predicted_bytes / 1e6);
}

int cli_bench_experts(const cli_experts_opts *o, sol_err *err)
{
    if (o->steps < 1 || o->prompt < 0)
        return sol_fail(err, SOL_ERR_USAGE, "--batch needs -n of 1 or more decode steps");
    cJSON *rows = o->format_json ? cJSON_CreateArray() : NULL;
    int rc = 0;
    if (!rows)
        print_header();
    for (int i = 0; i < o->n_batches && !rc; i++) {
        batch_result r = {0};
        if ((rc = run_batch(o, o->batches[i], &r, err)))
            break;
        if (rows)
            cJSON_AddItemToArray(rows, result_json(&r));
        else
            print_row(&r);
        fflush(stdout);
    }
    if (rc) {
        cJSON_Delete(rows);
        return rc;
    }
    return rows ? cli_print_json(rows) : 0;
}
