/* sol db best --backend cuda: the CUDA tuner's winners beside what CUPTI
 * counted for them. Each winner (cuda.matvec, cuda.matvec_rmsnorm,
 * cuda.attention) is joined to
 * its own trial (same device, source hash, shape, type and parameters) for
 * its counters, a matvec's to the cuBLAS baseline of its problem; the table sets the
 * counted DRAM bytes beside the bytes the problem must move, so wasted
 * traffic shows as a ratio above 1. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "db/db.h"
#include "util/quote.h"

typedef struct {
    sol_trial_row *rows;
    int n, cap, out_of_memory;
} trial_list;

/* Room for one more row of size bytes in *rows (capacity *cap, n used);
 * 0 when there is none. */
static int room_for_one(void **rows, int n, int *cap, size_t size)
{
    if (n < *cap)
        return 1;
    int grown_cap = *cap ? 2 * *cap : 32;
    void *grown = realloc(*rows, (size_t)grown_cap * size);
    if (!grown)
        return 0;
    *rows = grown;
    *cap = grown_cap;
    return 1;
}

static int keep_cuda_trial(void *user, const sol_trial_row *row)
{
    trial_list *l = user;
    if (strncmp(row->kernel, "cuda.", 5))
        return 0;
    if (!room_for_one((void **)&l->rows, l->n, &l->cap, sizeof *row))
        return l->out_of_memory = 1;
    l->rows[l->n++] = *row;
    return 0;
}

typedef struct {
    sol_best_row *rows;
    int n, cap, out_of_memory;
} best_list;

static int keep_cuda_best(void *user, const sol_best_row *row)
{
    best_list *l = user;
    if (strcmp(row->kernel, "cuda.matvec") && strcmp(row->kernel, "cuda.attention") &&
        strcmp(row->kernel, "cuda.matvec_rmsnorm"))
        return 0;
    if (!room_for_one((void **)&l->rows, l->n, &l->cap, sizeof *row))
        return l->out_of_memory = 1;
    l->rows[l->n++] = *row;
    return 0;
}

/* The winner's own trial, and its problem's cuBLAS baseline (NULL: none). */
static const sol_trial_row *winner_trial(const trial_list *t, const sol_best_row *b)
{
    for (int i = 0; i < t->n; i++) {
        const sol_trial_row *r = &t->rows[i];
        if (r->device_id == b->device_id && !strcmp(r->kernel, b->kernel) && !strcmp(r->source_hash, b->source_hash) &&
            !strcmp(r->shape, b->shape) && !strcmp(r->dtype, b->dtype) && !strcmp(r->params_json, b->params_json))
            return r;
    }
    return NULL;
}

static const sol_trial_row *baseline_trial(const trial_list *t, const sol_best_row *b)
{
    const sol_trial_row *found = NULL;
    for (int i = 0; i < t->n; i++) {
        const sol_trial_row *r = &t->rows[i];
        if (!strcmp(b->kernel, "cuda.matvec") && r->device_id == b->device_id && !strcmp(r->kernel, "cuda.cublas") &&
            !strcmp(r->shape, b->shape) &&
            !strcmp(r->dtype, b->dtype) && (!found || r->time > found->time))
            found = r;
    }
    return found;
}

static double number(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* One winner as JSON: its row, its trial's figures ("counters", with the
 * counted DRAM over plan bytes when counted) and the baseline's. */
static cJSON *winner_json(const sol_best_row *b, const sol_trial_row *w, const sol_trial_row *base)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "device_id", (double)b->device_id);
    cJSON_AddStringToObject(o, "kernel", b->kernel);
    cJSON_AddStringToObject(o, "shape", b->shape);
    cJSON_AddStringToObject(o, "dtype", b->dtype);
    cJSON_AddStringToObject(o, "source_hash", b->source_hash);
    cJSON_AddItemToObject(o, "params", cJSON_Parse(b->params_json));
    cJSON_AddNumberToObject(o, "median_s", b->median_s);
    cJSON_AddNumberToObject(o, "default_s", b->default_s);
    cJSON *c = w ? cJSON_Parse(w->counters_json) : NULL;
    double dram = number(c, "dram_read_bytes") + number(c, "dram_write_bytes"), plan = number(c, "bytes");
    if (isfinite(dram) && plan > 0)
        cJSON_AddNumberToObject(o, "dram_over_plan", dram / plan);
    cJSON_AddItemToObject(o, "counters", c ? c : cJSON_CreateNull());
    if (base) {
        cJSON *bl = cJSON_CreateObject();
        cJSON_AddNumberToObject(bl, "median_s", base->correct ? base->median_s : -1);
        cJSON *bc = cJSON_Parse(base->counters_json);
        cJSON_AddItemToObject(bl, "counters", bc ? bc : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "cublas", bl);
    }
    return o;
}

static void fmt_bytes(char *buf, size_t cap, double b)
{
    if (isfinite(b) && b >= 1e9)
        snprintf(buf, cap, "%.2f GB", b / 1e9);
    else if (isfinite(b) && b >= 1e6)
        snprintf(buf, cap, "%.1f MB", b / 1e6);
    else if (isfinite(b) && b >= 0)
        snprintf(buf, cap, "%.1f kB", b / 1e3);
    else
        snprintf(buf, cap, "-");
}

static void winner_row(const sol_best_row *b, const sol_trial_row *w, const sol_trial_row *base)
{
    cJSON *c = w ? cJSON_Parse(w->counters_json) : NULL;
    double rd = number(c, "dram_read_bytes"), wr = number(c, "dram_write_bytes"), plan = number(c, "bytes");
    char tuned[32], dflt[32], cublas[32] = "-", plan_s[24], read_s[24], write_s[24], ratio[16] = "-", sm[16] = "-",
         dram_pct[16] = "-", params[512];
    sol_fmt_time(tuned, sizeof tuned, b->median_s);
    sol_fmt_time(dflt, sizeof dflt, b->default_s);
    if (base && base->correct)
        sol_fmt_time(cublas, sizeof cublas, base->median_s);
    fmt_bytes(plan_s, sizeof plan_s, plan);
    fmt_bytes(read_s, sizeof read_s, rd);
    fmt_bytes(write_s, sizeof write_s, wr);
    if (isfinite(rd + wr) && plan > 0)
        snprintf(ratio, sizeof ratio, "%.3f", (rd + wr) / plan);
    if (isfinite(number(c, "sm_pct")))
        snprintf(sm, sizeof sm, "%.1f%%", number(c, "sm_pct"));
    if (isfinite(number(c, "dram_pct")))
        snprintf(dram_pct, sizeof dram_pct, "%.1f%%", number(c, "dram_pct"));
    snprintf(params, sizeof params, "%s", b->params_json);
    sol_printable(params);
    printf("%4lld  %-14s %-6s %-20.20s %10s %10s %10s %10s %10s %10s %9s %6s %6s  %s\n", (long long)b->device_id,
           b->kernel + 5, b->dtype, b->shape, tuned, dflt, cublas, plan_s, read_s, write_s, ratio, sm, dram_pct, params);
    cJSON_Delete(c);
}

int cli_db_best_cuda(sol_db *db, cli_format format, sol_err *err)
{
    trial_list trials = {0};
    best_list bests = {0};
    int rc = db ? sol_db_trials(db, keep_cuda_trial, &trials, err) : 0;
    if (!rc && db)
        rc = sol_db_bests(db, keep_cuda_best, &bests, err);
    if (!rc && (trials.out_of_memory || bests.out_of_memory))
        rc = sol_fail(err, SOL_ERR_RUNTIME, "out of memory listing the CUDA winners");
    cJSON *list = format == CLI_FORMAT_JSON ? cJSON_CreateArray() : NULL;
    if (!rc && format != CLI_FORMAT_JSON)
        printf("%4s  %-14s %-6s %-20s %10s %10s %10s %10s %10s %10s %9s %6s %6s  %s\n", "dev", "kernel", "dtype", "shape",
               "tuned", "default", "cuBLAS", "plan", "DRAM read", "DRAM write", "DRAM/plan", "SM", "DRAM", "params");
    for (int i = 0; !rc && i < bests.n; i++) {
        const sol_best_row *b = &bests.rows[i];
        const sol_trial_row *w = winner_trial(&trials, b), *base = baseline_trial(&trials, b);
        if (list)
            cJSON_AddItemToArray(list, winner_json(b, w, base));
        else
            winner_row(b, w, base);
    }
    if (!rc && list) {
        rc = cli_print_json(list);
        list = NULL;
    } else if (!rc) {
        if (bests.n == 0)
            printf("(no CUDA winners: sol tune MODEL --backend cuda)\n");
        printf("(DRAM read/write: CUPTI's count for one run of the winner; DRAM/plan: their sum over the bytes the "
               "problem must move; SM, DRAM: throughput as %% of peak; - where nothing was counted)\n");
    }
    cJSON_Delete(list);
    free(trials.rows);
    free(bests.rows);
    return rc;
}
