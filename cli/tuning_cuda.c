/* The CUDA tuner's winners into the engine: the rows `sol tune --backend
 * cuda` stored for this GPU (its device row) under the kernel sources and
 * NVRTC the plugin has now (mv_source's hash for the matvec, attn_hash for
 * the decode attention), as the plugin's backend options take them, and
 * how many of a model's decode shapes they cover. */
#include <cJSON.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "db/db.h"
#include "kernels/cuda/plugin.h"

#define CUDA_KERNEL "cuda.matvec" /* tune_cuda.c's */
#define ATTN_KERNEL "cuda.attention"
#define FUSED_KERNEL "cuda.matvec_rmsnorm" /* the fused RMSNorm matvec's winners: same sources as the matvec's */

const char *cli_cuda_image_cache(char *buf, size_t cap)
{
    const char *env = getenv("SOL_CUDA_CACHE");
    if (env && *env)
        return env;
    char db[4096];
    if (!sol_db_path(db, sizeof db) || !db[0])
        return NULL;
    snprintf(buf, cap, "%s/cuda-kernels", dirname(db));
    return buf;
}

typedef struct {
    int64_t device;
    const char *hash, *attn_hash;
    cli_cuda_tuning *t;
    int failed;
} load_ctx;

/* The named integers of a params JSON (what sol_space_json wrote) into
 * fields; 0 when all n are there. */
static int ints_of(const char *json, const char *const *names, int *const *fields, int n)
{
    cJSON *doc = cJSON_Parse(json);
    int missing = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, names[i]);
        if (cJSON_IsNumber(v))
            *fields[i] = v->valueint;
        else
            missing = 1;
    }
    cJSON_Delete(doc);
    return missing;
}

static int config_of(const char *json, sol_cuda_mv_config *out)
{
    static const char *const names[] = {"rows_per_block", "threads_per_row", "vec_bytes", "unroll", "k_split",
                                        "max_inputs"};
    int *const fields[] = {&out->rows_per_block, &out->threads_per_row, &out->vec_bytes, &out->unroll, &out->k_split,
                           &out->max_inputs};
    return ints_of(json, names, fields, 6);
}

static int attn_config_of(const char *json, sol_cuda_attn_config *out)
{
    static const char *const names[] = {"dims_per_lane", "heads_per_block", "warps", "slots_per_split"};
    int *const fields[] = {&out->dims_per_lane, &out->heads_per_block, &out->warps, &out->slots_per_split};
    return ints_of(json, names, fields, 4);
}

/* An attention winner of this device and sources ("HxGxDxCxR", the cache's type). */
static int take_attn_winner(load_ctx *c, const sol_best_row *row)
{
    int heads, kv, dim, rows;
    long long cap;
    sol_cuda_tuned_attn w;
    if (!c->attn_hash[0] || strcmp(row->source_hash, c->attn_hash) ||
        sscanf(row->shape, "%dx%dx%dx%lldx%d", &heads, &kv, &dim, &cap, &rows) != 5 ||
        sol_dtype_parse(row->dtype, &w.kv_type) || attn_config_of(row->params_json, &w.params))
        return 0;
    w.n_heads = heads;
    w.n_kv_heads = kv;
    w.head_dim = dim;
    w.capacity = cap;
    w.rows = rows;
    sol_cuda_tuned_attn *grown = realloc(c->t->attn, (size_t)(c->t->n_attn + 1) * sizeof *grown);
    if (!grown) {
        c->failed = 1;
        return 1;
    }
    grown[c->t->n_attn++] = w;
    c->t->attn = grown;
    return 0;
}

static int take_winner(void *user, const sol_best_row *row)
{
    load_ctx *c = user;
    long long rows, cols, m;
    sol_cuda_tuned_mv w;
    if (row->device_id == c->device && !strcmp(row->kernel, ATTN_KERNEL))
        return take_attn_winner(c, row);
    int fused = !strcmp(row->kernel, FUSED_KERNEL);
    if (row->device_id != c->device || (strcmp(row->kernel, CUDA_KERNEL) && !fused) ||
        strcmp(row->source_hash, c->hash) ||
        sscanf(row->shape, "%lldx%lldx%lld", &rows, &cols, &m) != 3 || sol_dtype_parse(row->dtype, &w.type) ||
        config_of(row->params_json, &w.params))
        return 0;
    w.rows = rows;
    w.cols = cols;
    w.m = (int)m;
    w.rmsnorm = fused;
    sol_cuda_tuned_mv *grown = realloc(c->t->v, (size_t)(c->t->n + 1) * sizeof *grown);
    if (!grown) {
        c->failed = 1;
        return 1;
    }
    grown[c->t->n++] = w;
    c->t->v = grown;
    return 0;
}

static int read_winners(const sol_cuda_device *gpu, const sol_cuda_mv_source *src, cli_cuda_tuning *out, sol_err *err)
{
    sol_db *db = NULL;
    sol_device_info dev;
    load_ctx c = {0, src->hash, src->attn_hash, out, 0};
    cli_gpu_device(gpu, &dev);
    int rc = sol_db_open(NULL, &db, err);
    if (!rc)
        rc = sol_db_device(db, &dev, &c.device, err);
    if (!rc)
        rc = sol_db_bests(db, take_winner, &c, err);
    sol_db_close(db);
    if (!rc && c.failed)
        rc = sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    return rc;
}

int cli_cuda_tuning_load(const sol_cuda_plugin *cu, int device, cli_cuda_tuning *out, sol_err *err)
{
    memset(out, 0, sizeof *out);
    char path[4096];
    struct stat st;
    sol_cuda_device gpu;
    sol_cuda_mv_source src;
    sol_err quiet = {0};
    if (cu->tune_magic != SOL_CUDA_TUNE_MAGIC || !cu->mv_source || !cu->device_info)
        return 0; /* a plugin without the tuner: nothing to tune */
    out->tunable = 1;
    if (!sol_db_path(path, sizeof path) || stat(path, &st) != 0)
        return 0; /* no database: nothing tuned */
    if (cu->device_info(device, &gpu, &quiet))
        return 0; /* no such device: backend_new says so */
    if (cu->mv_source(&src, &quiet)) {
        fprintf(stderr, "cuda: the tuned variants are not used: %s\n", quiet.msg);
        return 0;
    }
    out->cache = cli_cuda_image_cache(out->cache_buf, sizeof out->cache_buf);
    return read_winners(&gpu, &src, out, err);
}

void cli_cuda_tuning_free(cli_cuda_tuning *t)
{
    free(t->v);
    free(t->attn);
    memset(t, 0, sizeof *t);
}

static int has_winner(const cli_cuda_tuning *t, const sol_op *op)
{
    for (int i = 0; i < t->n; i++)
        if (t->v[i].type == op->wtype && t->v[i].rows == op->n && t->v[i].cols == op->k)
            return 1;
    return 0;
}

int cli_cuda_tuned_shapes(const cli_cuda_tuning *t, const char *model, int *tuned, int *total)
{
    sol_model m;
    sol_kv_scheme kv;
    sol_plan plan;
    sol_err quiet = {0};
    *tuned = *total = 0;
    if (sol_model_load(model, &m, &quiet))
        return -1;
    sol_kv_from_model(&m, &kv);
    sol_plan_params p = {.batch = 1, .n_tokens = 1, .wtype = m.wtype, .atype = SOL_DT_F32, .kvtype = SOL_DT_F16,
                         .tp = 1};
    if (sol_plan_build(&m, &kv, &p, &plan, &quiet))
        return -1;
    for (int i = 0; i < plan.n_ops; i++) {
        const sol_op *op = &plan.ops[i];
        if (op->kind != SOL_OP_MATMUL || op->batch != 1)
            continue;
        int first = 1; /* each distinct (type, N, K) once */
        for (int j = 0; j < i && first; j++) {
            const sol_op *o = &plan.ops[j];
            first = !(o->kind == SOL_OP_MATMUL && o->batch == 1 && o->wtype == op->wtype && o->n == op->n &&
                      o->k == op->k);
        }
        if (first) {
            (*total)++;
            *tuned += has_winner(t, op);
        }
    }
    sol_plan_free(&plan);
    return 0;
}

/* The capacities the model's attention shape was tuned at, "1024, 4096"
 * ("" when none). */
static void attn_tuned_at(const cli_cuda_tuning *t, const char *model, char *buf, size_t cap)
{
    sol_model m;
    sol_err quiet = {0};
    buf[0] = 0;
    if (sol_model_load(model, &m, &quiet))
        return;
    for (int i = 0; i < t->n_attn; i++) {
        const sol_cuda_tuned_attn *w = &t->attn[i];
        size_t used = strlen(buf);
        if (w->n_heads == m.n_heads && w->n_kv_heads == m.n_kv_heads && w->head_dim == m.head_dim && w->rows == 1 &&
            used + 24 < cap)
            snprintf(buf + used, cap - used, "%s%lld", used ? ", " : "", (long long)w->capacity);
    }
}

void cli_cuda_tuning_report(const cli_cuda_tuning *t, int loaded, int attn_loaded, const char *model, int no_tuned)
{
    int tuned = 0, total = 0;
    if (!t->tunable || !model || cli_cuda_tuned_shapes(t, model, &tuned, &total))
        return;
    char at[128];
    attn_tuned_at(t, model, at, sizeof at);
    fprintf(stderr, "cuda: %d of %d decode matmul shapes tuned, attention %s%s%s%s\n", tuned, total,
            at[0] ? "tuned at " : "not tuned", at, at[0] ? " slots" : "", no_tuned ? " (--no-tuned)" : "");
    if (loaded < t->n || attn_loaded < t->n_attn)
        fprintf(stderr, "cuda: %d of %d tuned variants did not load (no cached image and NVRTC failed, or the "
                        "image would not load); their shapes run the built-in variants\n",
                t->n - loaded + t->n_attn - attn_loaded, t->n + t->n_attn);
}
