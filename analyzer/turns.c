/* A conversation of N turns priced with and without inter-turn KV reuse
 * (character.ai's serving notes): turn i brings T new tokens after a
 * history of (i - 1) T. Without reuse its first token waits for the whole
 * history to be prefilled again; with reuse, for the history's KV cache to
 * be loaded from host memory (bytes as the scheme stores them, at the host
 * link's bandwidth) and the T new tokens to be prefilled after it. */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/analyzer.h"

static int price_turn(const sol_analysis *a, const sol_turns_config *c, int turn, sol_turn *t, sol_err *err)
{
    int64_t history = (int64_t)(turn - 1) * c->turn_tokens;
    t->turn = turn;
    t->history_tokens = history;
    int rc = sol_step_bound(a, (int)(history + c->turn_tokens), 0, &t->recompute_s, err);
    if (rc)
        return rc;
    if ((rc = sol_step_bound(a, c->turn_tokens, history, &t->prefill_new_s, err)))
        return rc;
    /* each device loads its share of the history's KV (tensor parallel splits it) */
    t->loaded_bytes = sol_kv_cache_bytes(&a->kv, &a->model, a->cfg.kvtype, history) * a->cfg.batch / a->kv_split;
    t->load_s = t->loaded_bytes / c->host_bw;
    t->reuse_s = t->load_s + t->prefill_new_s;
    t->expected_s = c->hit_rate * t->reuse_s + (1 - c->hit_rate) * t->recompute_s;
    return 0;
}

int sol_turns_cost(const sol_analysis *a, const sol_turns_config *c, sol_turns *out, sol_err *err)
{
    memset(out, 0, sizeof *out);
    if (c->turns < 1 || c->turns > SOL_MAX_TURNS)
        return sol_fail(err, SOL_ERR_USAGE, "--turns: 1 to %d (got %d)", SOL_MAX_TURNS, c->turns);
    if (c->turn_tokens < 1)
        return sol_fail(err, SOL_ERR_USAGE, "--turn-tokens: at least 1 (got %d)", c->turn_tokens);
    if ((int64_t)c->turns * c->turn_tokens > a->cfg.ctx)
        return sol_fail(err, SOL_ERR_USAGE, "--turns %d x --turn-tokens %d exceed the context of %lld tokens",
                        c->turns, c->turn_tokens, (long long)a->cfg.ctx);
    if (!(c->hit_rate >= 0 && c->hit_rate <= 1))
        return sol_fail(err, SOL_ERR_USAGE, "--hit-rate: a rate in [0, 1] (got %g)", c->hit_rate);
    if (!(c->host_bw > 0))
        return sol_fail(err, SOL_ERR_USAGE, "--host-bw: a positive bandwidth in bytes/s (got %g)", c->host_bw);
    out->cfg = *c;
    for (int i = 0; i < c->turns; i++) {
        int rc = price_turn(a, c, i + 1, &out->turn[i], err);
        if (rc)
            return rc;
        out->recompute_total_s += out->turn[i].recompute_s;
        out->expected_total_s += out->turn[i].expected_s;
    }
    int64_t whole = (int64_t)c->turns * c->turn_tokens;
    out->stored_bytes = sol_kv_cache_bytes(&a->kv, &a->model, a->cfg.kvtype, whole); /* all devices' shares */
    out->conversations_stored = c->store_bytes > 0 ? (long long)(c->store_bytes / out->stored_bytes) : 0;
    return 0;
}

void sol_report_turns(FILE *f, const sol_turns *t)
{
    const sol_turns_config *c = &t->cfg;
    char bw[32], stored[32];
    sol_fmt_count(bw, sizeof bw, c->host_bw, "B/s");
    sol_fmt_bytes(stored, sizeof stored, t->stored_bytes);
    fprintf(f, "\nturns     %d of %d tokens, KV reuse at %s from host memory, hit rate %.2f\n", c->turns,
            c->turn_tokens, bw, c->hit_rate);
    fprintf(f, "  %5s %9s %12s %12s %12s %12s\n", "turn", "history", "recompute", "KV loaded", "reuse",
            "expected");
    for (int i = 0; i < c->turns; i++) {
        const sol_turn *u = &t->turn[i];
        char a[32], b[32], d[32], e[32];
        sol_fmt_time(a, sizeof a, u->recompute_s);
        sol_fmt_bytes(b, sizeof b, u->loaded_bytes);
        sol_fmt_time(d, sizeof d, u->reuse_s);
        sol_fmt_time(e, sizeof e, u->expected_s);
        fprintf(f, "  %5d %9lld %12s %12s %12s %12s\n", u->turn, (long long)u->history_tokens, a, b, d, e);
    }
    char rt[32], et[32];
    sol_fmt_time(rt, sizeof rt, t->recompute_total_s);
    sol_fmt_time(et, sizeof et, t->expected_total_s);
    fprintf(f, "  time to first token over the conversation: %s recomputing, %s expected with reuse\n", rt, et);
    fprintf(f, "  a stored conversation (%d tokens) holds %s of KV", c->turns * c->turn_tokens, stored);
    if (c->store_bytes > 0) {
        char store[32];
        sol_fmt_bytes(store, sizeof store, c->store_bytes);
        fprintf(f, "; %s of host memory keeps %lld of them", store, t->conversations_stored);
    }
    fprintf(f, "\n");
}

cJSON *sol_turns_json(const sol_turns *t)
{
    cJSON *o = cJSON_CreateObject(), *turns = cJSON_AddArrayToObject(o, "turns");
    cJSON_AddNumberToObject(o, "turn_tokens", t->cfg.turn_tokens);
    cJSON_AddNumberToObject(o, "hit_rate", t->cfg.hit_rate);
    cJSON_AddNumberToObject(o, "host_bw_bytes_per_s", t->cfg.host_bw);
    for (int i = 0; i < t->cfg.turns; i++) {
        const sol_turn *u = &t->turn[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "turn", u->turn);
        cJSON_AddNumberToObject(x, "history_tokens", (double)u->history_tokens);
        cJSON_AddNumberToObject(x, "ttft_recompute_s", u->recompute_s);
        cJSON_AddNumberToObject(x, "kv_loaded_bytes", u->loaded_bytes);
        cJSON_AddNumberToObject(x, "ttft_reuse_s", u->reuse_s);
        cJSON_AddNumberToObject(x, "ttft_expected_s", u->expected_s);
        cJSON_AddItemToArray(turns, x);
    }
    cJSON_AddNumberToObject(o, "ttft_recompute_total_s", t->recompute_total_s);
    cJSON_AddNumberToObject(o, "ttft_expected_total_s", t->expected_total_s);
    cJSON_AddNumberToObject(o, "stored_conversation_bytes", t->stored_bytes);
    cJSON_AddNumberToObject(o, "conversations_stored", (double)t->conversations_stored);
    return o;
}
