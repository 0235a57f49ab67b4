/* sol bench --turns N --turn-tokens T: a conversation of N turns, each T
 * new tokens after the history, timed to its first token three ways:
 * recomputing the whole history (no reuse), the history's KV kept in memory
 * (reuse: the new tokens alone are prefilled), and the history's KV loaded
 * from the segment store on disk first (what another process or replica
 * does: engine/kv_segments.h). The turn shape is the analyzer's (`sol
 * analyze --turns`), so its prices sit beside these in bench/chat-reuse.sh. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/bench_turns.h"
#include "cli/cli.h"
#include "engine/kv_segments.h"
#include "util/clock.h"

typedef struct {
    double recompute_s, memory_s, load_s, stored_s, bytes_loaded;
} turn_times;

/* Median over reps of one arm of turn `turn` (1-based); the engine ends
 * holding the turn's whole prefix. */
static int time_turn(sol_engine *e, sol_kv_store *store, const int32_t *ids, int turn, int t_tokens, int reps,
                     uint64_t parent, turn_times *out, sol_err *err)
{
    int64_t history = (int64_t)(turn - 1) * t_tokens;
    double rec[64], mem[64], load[64];
    int32_t next;
    int rc = 0;
    for (int r = 0; r < reps && !rc; r++) {
        sol_engine_reset(e);
        double t0 = sol_now_s();
        rc = sol_engine_eval(e, ids, (int)(history + t_tokens), 0, NULL, NULL, &next, err);
        rec[r] = sol_now_s() - t0;
        sol_kv_loaded l = {0};
        t0 = sol_now_s();
        if (!rc && turn > 1 && !(rc = sol_kv_segment_load(store, e, parent, &l, err)) && l.n != history)
            rc = sol_fail(err, SOL_ERR_RUNTIME, "bench --turns: the stored history did not load: %s", l.notice);
        if (!rc && turn == 1)
            sol_engine_reset(e);
        load[r] = sol_now_s() - t0;
        out->bytes_loaded = l.bytes;
        sol_kv_loaded_free(&l);
        t0 = sol_now_s();
        if (!rc)
            rc = sol_engine_eval(e, ids + history, t_tokens, 0, NULL, NULL, &next, err);
        mem[r] = sol_now_s() - t0; /* the history was in the cache: what in-memory reuse waits for */
    }
    if (!rc) {
        out->recompute_s = sol_median(rec, reps, NULL, NULL);
        out->memory_s = sol_median(mem, reps, NULL, NULL);
        out->load_s = sol_median(load, reps, NULL, NULL);
        out->stored_s = out->load_s + out->memory_s;
    }
    return rc;
}

static cJSON *turn_json(int turn, int64_t history, const turn_times *t)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "turn", turn);
    cJSON_AddNumberToObject(j, "history_tokens", (double)history);
    cJSON_AddNumberToObject(j, "ttft_recompute_s", t->recompute_s);
    cJSON_AddNumberToObject(j, "ttft_reuse_memory_s", t->memory_s);
    cJSON_AddNumberToObject(j, "ttft_reuse_disk_s", t->stored_s);
    cJSON_AddNumberToObject(j, "load_s", t->load_s);
    cJSON_AddNumberToObject(j, "bytes_loaded", t->bytes_loaded);
    return j;
}

int cli_bench_turns(sol_engine *e, const cli_turns_opts *o, sol_err *err)
{
    int64_t total = (int64_t)o->turns * o->turn_tokens;
    if (total >= sol_engine_ctx(e))
        return sol_fail(err, SOL_ERR_USAGE, "--turns %d x --turn-tokens %d exceed the %lld-token context", o->turns,
                        o->turn_tokens, (long long)sol_engine_ctx(e));
    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/sol-bench-turns-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return sol_fail(err, SOL_ERR_RUNTIME, "bench --turns: cannot make a temporary store like %s", dir);
    sol_kv_store store;
    int32_t *ids = malloc((size_t)total * sizeof *ids);
    int rc = ids ? sol_kv_store_open(dir, e, 0, &store, err) : sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    int vocab = sol_engine_model(e)->vocab;
    for (int64_t i = 0; ids && i < total; i++)
        ids[i] = (int32_t)((i * 7919 + 13) % vocab);
    cJSON *rows = cJSON_CreateArray();
    uint64_t parent = store.key;
    if (o->format_json == 0)
        printf("| turn | history | TTFT recompute | TTFT reuse (memory) | TTFT reuse (disk) | KV loaded |\n"
               "|---:|---:|---:|---:|---:|---:|\n");
    for (int turn = 1; turn <= o->turns && !rc; turn++) {
        turn_times t = {0};
        int64_t history = (int64_t)(turn - 1) * o->turn_tokens;
        fprintf(stderr, "bench: turn %d of %d (%lld tokens of history)\n", turn, o->turns, (long long)history);
        rc = time_turn(e, &store, ids, turn, o->turn_tokens, o->reps, parent, &t, err);
        double bytes;
        if (!rc) /* the turn's tokens stored for the next one to load */
            rc = sol_kv_segment_save(&store, e, ids, history, history + o->turn_tokens, parent, &parent, &bytes, err);
        if (rc)
            break;
        cJSON_AddItemToArray(rows, turn_json(turn, history, &t));
        if (!o->format_json)
            printf("| %d | %lld | %.1f ms | %.1f ms | %.1f ms (load %.1f) | %.2f MiB |\n", turn, (long long)history,
                   1e3 * t.recompute_s, 1e3 * t.memory_s, 1e3 * t.stored_s, 1e3 * t.load_s,
                   t.bytes_loaded / (1 << 20));
    }
    if (!rc && o->format_json) {
        rc = cli_print_json(rows) ? sol_fail(err, SOL_ERR_RUNTIME, "out of memory") : 0;
        rows = NULL; /* cli_print_json deleted it */
    }
    cJSON_Delete(rows);
    free(ids);
    sol_kv_store_remove(dir);
    return rc;
}
