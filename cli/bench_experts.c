/* sol bench --batch B1,B2,...: batched decode of B sequences in lockstep,
 * each fed a random token every step, timed and, on a MoE model, with the
 * experts each layer actually read per step (the engine's count) beside
 * what the analyzer expects at that batch, E·(1-(1-k/E)^B) under uniform
 * routing, and the expert bytes both imply. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "analyzer/analyzer.h"
#include "cli/bench_experts.h"
#include "cli/cli.h"
#include "models/plan.h"
#include "util/clock.h"

typedef struct {
    int batch, steps;
    double seconds, tokens_per_s;
    double check_max_rel; /* --check; < 0: not checked */
    int vocab;
    int has_experts;
    sol_expert_stats st;
    double predicted_distinct, half_width; /* 95% interval of the measured mean (0: too few steps) */
    double routed_distinct; /* what this run's own routing histogram predicts (sum of 1-(1-p_e)^B) */
    double measured_bytes, predicted_bytes; /* expert weights read per step, all MoE layers */
    double plan_bytes; /* everything the timed steps' plans move (sol_op_bytes), all steps */
    cJSON *experts; /* the counts and routing histogram (cli_experts_json), owned */
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

/* Everything the plan of one decode step of `batch` sequences at position
 * pos moves (sol_op_bytes of each op, what bench's achieved GB/s counts). */
static int plan_step_bytes(sol_engine *e, int batch, int64_t pos, double *bytes, sol_err *err)
{
    const sol_model *m = sol_engine_model(e);
    sol_plan_params p = {.batch = batch, .n_tokens = 1, .pos = pos, .wtype = m->wtype,
                         .atype = SOL_DT_F32, .kvtype = sol_engine_kv_type(e), .tp = 1};
    sol_plan plan = {0};
    int rc = sol_plan_build(m, sol_engine_kv(e), &p, &plan, err);
    *bytes = 0;
    for (int i = 0; !rc && i < plan.n_ops; i++)
        *bytes += sol_op_bytes(&plan.ops[i]);
    sol_plan_free(&plan);
    return rc;
}

/* The expected distinct experts per layer under the routing this run
 * measured: each MoE layer's choice frequencies p_e (as --routing takes
 * them: sol_routing_probabilities),
 * sum over e of 1 - (1 - p_e)^B, averaged over the layers. Equal to the
 * uniform figure when every p_e is k/E; below it otherwise (concavity). */
static double routed_prediction(const sol_expert_stats *st, int first_layer, int batch)
{
    double sum = 0, *p = malloc((size_t)st->n_experts * sizeof *p);
    if (!p)
        return 0;
    for (int l = 0; l < st->moe_layers; l++) {
        for (int x = 0; x < st->n_experts; x++)
            p[x] = (double)st->chosen[(size_t)(first_layer + l) * st->n_experts + x];
        if (sol_routing_probabilities(p, st->n_experts, st->k) == 0)
            sum += sol_moe_expected_experts_routed(p, st->n_experts, batch);
    }
    free(p);
    return sum / st->moe_layers;
}

/* Batch means over episodes: each episode's mean of its steps' distinct
 * experts (averaged over the MoE layers); the interval is Student's t on
 * those means. Episodes share nothing, while a sequence's steps within one
 * are correlated through its history and its sequences' routings differ
 * from the population's: only the spread between episodes sees both. */
static double episode_half_width(const double *per_step, int steps, int episode)
{
    static const double t95[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                 2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                 2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
    int n = (steps + episode - 1) / episode;
    if (n < 2)
        return 0;
    double all = 0, var = 0, *mean = calloc((size_t)n, sizeof *mean);
    if (!mean)
        return 0;
    for (int b = 0; b < n; b++) {
        int first = b * episode, last = first + episode < steps ? first + episode : steps;
        for (int i = first; i < last; i++)
            mean[b] += per_step[i] / (last - first);
        all += mean[b] / n;
    }
    for (int b = 0; b < n; b++)
        var += (mean[b] - all) * (mean[b] - all) / (n - 1);
    free(mean);
    int df = n - 1 < 30 ? n - 1 : 30; /* beyond 30 degrees of freedom: t(30), slightly wide */
    return t95[df - 1] * sqrt(var / n);
}

/* The step's distinct experts, averaged over the MoE layers. */
static double step_distinct(const sol_engine *e, double *sum_before)
{
    sol_expert_stats st;
    if (sol_engine_expert_stats(e, &st))
        return 0;
    double sum = st.mean_distinct * (double)st.samples, d = (sum - *sum_before) / st.moe_layers;
    *sum_before = sum;
    return d;
}

/* The counted steps are cut into EPISODES episodes (at most EPISODE_STEPS
 * steps each: more episodes when there are more steps), each a fresh prompt
 * and fresh sequences: short contexts, and means that share nothing. */
enum { EPISODES = 20, EPISODE_STEPS = 100 };

/* One episode: the engine reset, prompt tokens fed, then `steps` counted
 * steps whose distinct experts go to per_step; *seconds gets their time. */
static int run_episode(sol_engine *e, const cli_experts_opts *o, int batch, int steps, uint64_t *seed,
                       int32_t *tokens, double *per_step, double *seconds, sol_err *err)
{
    int vocab = sol_engine_model(e)->vocab, rc = 0;
    double t0 = 0, sum = 0;
    sol_engine_reset(e);
    sol_engine_expert_counting(e, 0); /* the prompt's steps are not counted */
    for (int step = 0; !rc && step < o->prompt + steps; step++) {
        if (step == o->prompt) {
            sol_expert_stats st;
            if (sol_engine_expert_stats(e, &st) == 0)
                sum = st.mean_distinct * (double)st.samples;
            sol_engine_expert_counting(e, 1);
            t0 = sol_now_s();
        }
        for (int s = 0; s < batch; s++)
            tokens[s] = next_token(seed, vocab);
        rc = sol_engine_eval_batch(e, tokens, NULL, NULL, tokens + batch, err);
        if (!rc && step >= o->prompt)
            per_step[step - o->prompt] = step_distinct(e, &sum);
    }
    *seconds += sol_now_s() - t0;
    return rc;
}

static int run_batch(const cli_experts_opts *o, int batch, batch_result *r, sol_err *err)
{
    int episode = (o->steps + EPISODES - 1) / EPISODES;
    episode = episode < EPISODE_STEPS ? episode : EPISODE_STEPS;
    sol_engine_config cfg = o->engine;
    cfg.seqs = batch;
    cfg.ctx = o->prompt + episode + 1;
    sol_engine *e = NULL;
    int rc = sol_engine_open(o->model, &cfg, &e, err);
    int32_t *tokens = rc ? NULL : malloc((size_t)batch * 2 * sizeof *tokens);
    double *per_step = rc ? NULL : calloc((size_t)o->steps, sizeof *per_step);
    if (!rc && (!tokens || !per_step))
        rc = sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)batch;
    if (!rc) {
        sol_engine_expert_stats_reset(e);
        rc = plan_expert_bytes(e, batch, &r->predicted_bytes, err);
    }
    for (int done = 0; !rc && done < o->steps; done += episode) {
        int n = o->steps - done < episode ? o->steps - done : episode;
        rc = run_episode(e, o, batch, n, &seed, tokens, per_step + done, &r->seconds, err);
    }
    /* the timed steps' bytes: step s of every episode that has one sits at
     * position prompt + s */
    for (int s = 0; !rc && s < episode && s < o->steps; s++) {
        int episodes = 0;
        for (int done = 0; done < o->steps; done += episode)
            episodes += o->steps - done > s;
        double bytes = 0;
        rc = plan_step_bytes(e, batch, o->prompt + s, &bytes, err);
        r->plan_bytes += episodes * bytes;
    }
    if (!rc) {
        r->batch = batch;
        r->steps = o->steps;
        r->tokens_per_s = r->seconds > 0 ? (double)batch * o->steps / r->seconds : 0;
        r->has_experts = sol_engine_expert_stats(e, &r->st) == 0;
        r->vocab = sol_engine_model(e)->vocab;
    }
    if (!rc && r->has_experts) {
        const sol_expert_stats *st = &r->st;
        r->predicted_distinct = sol_moe_expected_experts(st->n_experts, st->k, batch);
        r->routed_distinct = routed_prediction(st, sol_engine_model(e)->first_dense, batch);
        r->half_width = episode_half_width(per_step, o->steps, episode);
        r->measured_bytes = st->mean_distinct * st->expert_bytes * st->moe_layers;
        r->experts = cli_experts_json(st, sol_engine_model(e)->first_dense);
    }
    free(tokens);
    free(per_step);
    sol_engine_close(e);
    return rc;
}

static cJSON *result_json(batch_result *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "batch", r->batch);
    cJSON_AddNumberToObject(j, "steps", r->steps);
    cJSON_AddNumberToObject(j, "seconds", r->seconds);
    cJSON_AddNumberToObject(j, "tokens_per_s", r->tokens_per_s);
    cJSON_AddNumberToObject(j, "plan_bytes_per_step", r->steps > 0 ? r->plan_bytes / r->steps : 0);
    cJSON_AddNumberToObject(j, "achieved_gb_per_s", r->seconds > 0 ? r->plan_bytes / r->seconds / 1e9 : 0);
    if (r->check_max_rel >= 0)
        cJSON_AddNumberToObject(j, "check_max_rel_err", r->check_max_rel);
    if (!r->experts)
        return j;
    cJSON *x = r->experts;
    cJSON_AddItemToObject(j, "experts", x);
    cJSON_AddNumberToObject(x, "distinct_ci95", r->half_width);
    cJSON_AddNumberToObject(x, "distinct_predicted", r->predicted_distinct);
    cJSON_AddNumberToObject(x, "distinct_predicted_routed", r->routed_distinct);
    cJSON_AddNumberToObject(x, "expert_bytes_per_step", r->measured_bytes);
    cJSON_AddNumberToObject(x, "expert_bytes_per_step_predicted", r->predicted_bytes);
    return j;
}

static void print_header(void)
{
    printf("| batch | steps | tok/s | experts/layer/step measured (95%% CI) | predicted, uniform | predicted, "
           "this routing | expert MB/step measured | predicted |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
}

static void print_row(const batch_result *r)
{
    if (!r->has_experts) {
        printf("| %d | %d | %.2f | - | - | - | - | - |\n", r->batch, r->steps, r->tokens_per_s);
        return;
    }
    char interval[32] = "";
    if (r->half_width > 0 || r->steps >= 2)
        snprintf(interval, sizeof interval, " ± %.3f", r->half_width);
    printf("| %d | %d | %.2f | %.3f%s | %.3f | %.3f | %.3f | %.3f |\n", r->batch, r->steps, r->tokens_per_s,
           r->st.mean_distinct, interval, r->predicted_distinct, r->routed_distinct, r->measured_bytes / 1e6,
           r->predicted_bytes / 1e6);
}

int cli_bench_experts(const cli_experts_opts *o, sol_err *err)
{
    if (o->steps < 1 || o->prompt < 0)
        return sol_fail(err, SOL_ERR_USAGE, "--batch needs -n of 1 or more decode steps");
    cJSON *rows = o->format_json ? cJSON_CreateArray() : NULL;
    int rc = 0;
    for (int i = 0; i < o->n_batches && !rc; i++) {
        batch_result r = {.check_max_rel = -1};
        if ((rc = run_batch(o, o->batches[i], &r, err)))
            break;
        if (o->check && (rc = cli_batch_check(o, o->batches[i], r.vocab, &r.check_max_rel, err)))
            break;
        if (o->check && !rows)
            fprintf(stderr, "bench: batch %d: logits against each sequence alone, max relative error %.3g\n",
                    r.batch, r.check_max_rel);
        if (rows)
            cJSON_AddItemToArray(rows, result_json(&r)); /* takes r.experts */
        else if (i == 0) /* after the first batch ran: an error leaves stdout empty */
            print_header();
        if (!rows) {
            print_row(&r);
            cJSON_Delete(r.experts);
        }
        fflush(stdout);
    }
    if (rc) {
        cJSON_Delete(rows);
        return rc;
    }
    return rows ? cli_print_json(rows) : 0;
}
