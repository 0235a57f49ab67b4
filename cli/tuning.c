/* Tuned parameters from the database into the engine: the winners of
 * `sol tune` for this CPU and these kernel sources, and how many of a
 * plan's matmul shapes they cover. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "db/db.h"
#include "tuner/cpu_matmul.h"

#ifndef SOL_KERNEL_HASH
#define SOL_KERNEL_HASH "unknown"
#endif

typedef struct {
    int64_t device;
    sol_tuning *t;
    int failed;
} load_ctx;

/* A parameter of the stored JSON, or the default when the row predates it. */
static int param_or(const cJSON *params, const char *name, int fallback)
{
    const cJSON *v = cJSON_GetObjectItem(params, name);
    return cJSON_IsNumber(v) ? v->valueint : fallback;
}

static int take_best(void *user, const sol_best_row *row)
{
    load_ctx *c = user;
    long long n, k, m;
    sol_dtype type;
    int integer_dots = !strcmp(row->kernel, "cpu.matmul.q8");
    if (row->device_id != c->device || (strcmp(row->kernel, "cpu.matmul") && !integer_dots) ||
        strcmp(row->source_hash, SOL_KERNEL_HASH) || sscanf(row->shape, "%lldx%lldx%lld", &n, &k, &m) != 3 ||
        sol_dtype_parse(row->dtype, &type))
        return 0;
    cJSON *p = cJSON_Parse(row->params_json);
    if (cJSON_IsObject(p)) {
        sol_tuning_entry *e = realloc(c->t->entries, (size_t)(c->t->n + 1) * sizeof *e);
        if (!e) {
            c->failed = 1;
            cJSON_Delete(p);
            return 1;
        }
        c->t->entries = e;
        sol_matmul_params d = SOL_MATMUL_DEFAULTS;
        sol_matmul_params params = {param_or(p, "tasks_per_thread", d.tasks_per_thread),
                                    param_or(p, "row_block", d.row_block), param_or(p, "tile_rows", d.tile_rows),
                                    param_or(p, "tile_inputs", d.tile_inputs)};
        e[c->t->n++] = (sol_tuning_entry){type, n, k, (int)m, integer_dots, params};
    }
    cJSON_Delete(p);
    return 0;
}

int cli_load_tuning(const sol_hw *cpu, sol_tuning *out, sol_err *err)
{
    memset(out, 0, sizeof *out);
    char path[4096];
    struct stat st;
    if (!sol_db_path(path, sizeof path) || stat(path, &st) != 0)
        return 0; /* no database: nothing tuned */
    sol_db *db = NULL;
    sol_device_info dev;
    load_ctx c = {0, out, 0};
    cli_cpu_device(cpu, &dev);
    int rc = sol_db_open(NULL, &db, err);
    if (!rc)
        rc = sol_db_device(db, &dev, &c.device, err);
    if (!rc)
        rc = sol_db_bests(db, take_best, &c, err);
    sol_db_close(db);
    if (!rc && c.failed)
        rc = sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    return rc;
}

void cli_tuning_free(sol_tuning *t)
{
    free(t->entries);
    memset(t, 0, sizeof *t);
}

void cli_tuned_shapes(const sol_tuning *t, const sol_plan *plan, sol_activations act, int *tuned, int *total)
{
    *tuned = *total = 0;
    for (int i = 0; i < plan->n_ops; i++) {
        const sol_op *op = &plan->ops[i];
        if (op->kind != SOL_OP_MATMUL || op->batch != 1)
            continue;
        int first = 1; /* count each distinct shape once */
        for (int j = 0; j < i && first; j++) {
            const sol_op *o = &plan->ops[j];
            first = !(o->kind == SOL_OP_MATMUL && o->wtype == op->wtype && o->n == op->n && o->k == op->k &&
                      (o->m > 1) == (op->m > 1));
        }
        if (!first)
            continue;
        (*total)++;
        int integer_dots = !strcmp(sol_cpu_matmul_kernel(op->wtype, act, (int)op->m), "cpu.matmul.q8");
        for (int e = 0; e < t->n; e++)
            if (t->entries[e].type == op->wtype && t->entries[e].rows == op->n && t->entries[e].cols == op->k &&
                (t->entries[e].m > 1) == (op->m > 1) && t->entries[e].integer_dots == integer_dots) {
                (*tuned)++;
                break;
            }
    }
}

int cli_trial_is_of(const sol_trial_row *row, const sol_trial_row *key, int any_device)
{
    return (any_device || row->device_id == key->device_id) && !strcmp(row->kernel, key->kernel) &&
           !strcmp(row->source_hash, key->source_hash) && !strcmp(row->compile_flags, key->compile_flags) &&
           !strcmp(row->shape, key->shape) && !strcmp(row->dtype, key->dtype);
}

typedef struct {
    const sol_trial_row *key;
    cli_stored_winner *out;
} winner_lookup;

static int match_winner(void *user, const sol_best_row *row)
{
    winner_lookup *l = user;
    const sol_trial_row *k = l->key;
    if (row->device_id != k->device_id || strcmp(row->kernel, k->kernel) || strcmp(row->source_hash, k->source_hash) ||
        strcmp(row->shape, k->shape) || strcmp(row->dtype, k->dtype))
        return 0;
    l->out->best_s = row->median_s;
    l->out->default_s = row->default_s;
    snprintf(l->out->params, sizeof l->out->params, "%s", row->params_json);
    l->out->found = 1;
    return 1;
}

int cli_stored_winner_of(sol_db *db, const sol_trial_row *key, cli_stored_winner *out, sol_err *err)
{
    memset(out, 0, sizeof *out);
    winner_lookup l = {key, out};
    int rc = sol_db_bests(db, match_winner, &l, err);
    return rc > 0 ? rc : 0;
}
