/* A request end to end (time to first token, time per output token) and
 * speculative decoding, costed from the analysis's model, scheme, hardware
 * and configuration with the same plans and the same whole-step bound. */
#include <cJSON.h>
#include <math.h>
#include <string.h>

#include "analyzer/analyzer.h"

int sol_step_bound(const sol_analysis *a, int n_tokens, int64_t pos, double *seconds, sol_err *err)
{
    const sol_analysis_config *c = &a->cfg;
    sol_plan_params p = {.batch = c->batch, .n_tokens = n_tokens, .pos = pos, .wtype = c->wtype,
                         .atype = c->atype, .kvtype = c->kvtype, .tp = c->tp, .routing = c->routing};
    sol_plan plan;
    sol_step_cost cost;
    int rc = sol_plan_build(&a->model, &a->kv, &p, &plan, err);
    if (rc)
        return rc;
    rc = sol_cost_plan(&plan, &a->hw, &cost, err);
    sol_plan_free(&plan);
    if (rc)
        return rc;
    *seconds = cost.sol_time_s;
    sol_step_cost_free(&cost);
    return 0;
}

enum { EXACT_POSITIONS = 256 };

/* Sum of the decode step times at positions first .. first + steps - 1. */
static int decode_steps_time(const sol_analysis *a, int64_t first, int steps, double *total, int *costed,
                             sol_err *err)
{
    *total = 0;
    *costed = 0;
    if (steps <= EXACT_POSITIONS) {
        for (int i = 0; i < steps; i++) {
            double t;
            int rc = sol_step_bound(a, 1, first + i, &t, err);
            if (rc)
                return rc;
            *total += t;
        }
        *costed = steps;
        return 0;
    }
    /* EXACT_POSITIONS + 1 samples; each interval's steps at the mean of its ends */
    double prev = 0, first_t = 0;
    int64_t prev_pos = first;
    for (int s = 0; s <= EXACT_POSITIONS; s++) {
        int64_t pos = first + (int64_t)((double)(steps - 1) * s / EXACT_POSITIONS);
        double t;
        int rc = sol_step_bound(a, 1, pos, &t, err);
        if (rc)
            return rc;
        if (s > 0)
            *total += (prev + t) / 2 * (double)(pos - prev_pos);
        else
            first_t = t;
        prev = t;
        prev_pos = pos;
    }
    *total += (first_t + prev) / 2; /* n positions span n - 1 gaps: a linear t sums to the trapezoids + this */
    *costed = EXACT_POSITIONS + 1;
    return 0;
}

int sol_request_cost(const sol_analysis *a, int gen, sol_request *r, sol_err *err)
{
    memset(r, 0, sizeof *r);
    if (gen < 1)
        return sol_fail(err, SOL_ERR_USAGE, "--gen: at least 1 token (got %d)", gen);
    if ((int64_t)a->cfg.prompt + gen > a->cfg.ctx)
        return sol_fail(err, SOL_ERR_USAGE, "--prompt %d + --gen %d exceed the context of %lld tokens",
                        a->cfg.prompt, gen, (long long)a->cfg.ctx);
    r->prompt = a->cfg.prompt;
    r->gen = gen;
    r->batch = a->cfg.batch;
    r->tp = a->cfg.tp;
    r->ttft_s = a->prefill_cost.sol_time_s;
    double later = 0;
    int rc = decode_steps_time(a, a->cfg.prompt, gen - 1, &later, &r->positions_costed, err);
    if (rc)
        return rc;
    r->tpot_s = gen > 1 ? later / (gen - 1) : 0;
    r->total_s = r->ttft_s + later;
    r->user_tokens_per_s = gen / r->total_s;
    r->device_tokens_per_s = (double)r->batch * gen / r->total_s / r->tp;
    return 0;
}

int sol_speculative_cost(const sol_analysis *target, const sol_analysis *draft, int k, double acceptance,
                         sol_speculative *s, sol_err *err)
{
    memset(s, 0, sizeof *s);
    if (k < 1 || k > 64)
        return sol_fail(err, SOL_ERR_USAGE, "--draft-k: 1 to 64 tokens (got %d)", k);
    if (!(acceptance >= 0 && acceptance <= 1))
        return sol_fail(err, SOL_ERR_USAGE, "--accept: a rate in [0, 1] (got %g)", acceptance);
    s->k = k;
    s->acceptance = acceptance;
    s->tokens_per_round = acceptance < 1 ? (1 - pow(acceptance, k + 1)) / (1 - acceptance) : k + 1;
    s->draft_step_s = draft->decode_cost.sol_time_s;
    int rc = sol_step_bound(target, k + 1, target->cfg.ctx - 1, &s->verify_step_s, err);
    if (rc)
        return rc;
    s->round_s = k * s->draft_step_s + s->verify_step_s;
    s->tokens_per_s = target->cfg.batch * s->tokens_per_round / s->round_s;
    s->speedup = s->tokens_per_s / target->decode_tokens_per_s;
    s->draft_weights_bytes = draft->weights_bytes;
    return 0;
}

void sol_report_request(FILE *f, const sol_request *r)
{
    char ttft[32], tpot[32], total[32];
    sol_fmt_time(ttft, sizeof ttft, r->ttft_s);
    sol_fmt_time(tpot, sizeof tpot, r->tpot_s);
    sol_fmt_time(total, sizeof total, r->total_s);
    fprintf(f, "\nrequest   prompt %d + %d generated, batch %d: time to first token %s, %s per output token, "
               "total %s\n",
            r->prompt, r->gen, r->batch, ttft, tpot, total);
    fprintf(f, "          %.1f tokens/s per user, %.1f per device (%d decode positions costed)\n",
            r->user_tokens_per_s, r->device_tokens_per_s, r->positions_costed);
}

void sol_report_speculative(FILE *f, const sol_speculative *s, const char *draft_name)
{
    char draft[32], verify[32], bytes[32];
    sol_fmt_time(draft, sizeof draft, s->draft_step_s);
    sol_fmt_time(verify, sizeof verify, s->verify_step_s);
    sol_fmt_bytes(bytes, sizeof bytes, s->draft_weights_bytes);
    fprintf(f, "\nspeculative  draft %s (%s of weights), k %d, acceptance %.2f: %.2f tokens per target step\n",
            draft_name, bytes, s->k, s->acceptance, s->tokens_per_round);
    fprintf(f, "          %d draft steps of %s + a %d-token verification of %s: %.1f tokens/s, x%.2f over plain "
               "decode\n",
            s->k, draft, s->k + 1, verify, s->tokens_per_s, s->speedup);
}

cJSON *sol_request_json(const sol_request *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "prompt", r->prompt);
    cJSON_AddNumberToObject(o, "gen", r->gen);
    cJSON_AddNumberToObject(o, "batch", r->batch);
    cJSON_AddNumberToObject(o, "ttft_s", r->ttft_s);
    cJSON_AddNumberToObject(o, "tpot_s", r->tpot_s);
    cJSON_AddNumberToObject(o, "total_s", r->total_s);
    cJSON_AddNumberToObject(o, "user_tokens_per_s", r->user_tokens_per_s);
    cJSON_AddNumberToObject(o, "device_tokens_per_s", r->device_tokens_per_s);
    cJSON_AddNumberToObject(o, "positions_costed", r->positions_costed);
    return o;
}

cJSON *sol_speculative_json(const sol_speculative *s, const char *draft_name)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "draft", draft_name);
    cJSON_AddNumberToObject(o, "k", s->k);
    cJSON_AddNumberToObject(o, "acceptance", s->acceptance);
    cJSON_AddNumberToObject(o, "tokens_per_round", s->tokens_per_round);
    cJSON_AddNumberToObject(o, "draft_step_s", s->draft_step_s);
    cJSON_AddNumberToObject(o, "verify_step_s", s->verify_step_s);
    cJSON_AddNumberToObject(o, "round_s", s->round_s);
    cJSON_AddNumberToObject(o, "tokens_per_s", s->tokens_per_s);
    cJSON_AddNumberToObject(o, "speedup", s->speedup);
    cJSON_AddNumberToObject(o, "draft_weights_bytes", s->draft_weights_bytes);
    return o;
}
