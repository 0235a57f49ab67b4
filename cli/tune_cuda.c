/* sol tune --backend cuda: the CUDA matvec's parameters for each distinct
 * decode matmul of a model (or one --shape) and each number of inputs, on
 * one GPU. The trials run in the plugin (kernels/cuda/tune_trial.cu: NVRTC
 * compile for the device's architecture, a float64 check, CUDA-event
 * timing with the L2 flushed); here the search, the database and the
 * table, as cmd_tune.c does for the CPU: every trial is stored under the
 * GPU's device row, keyed by the kernel sources the plugin embeds (their
 * hash folds in NVRTC's version and options, which compile_flags spells
 * out), a rerun measures nothing twice, and the winner of each shape is
 * stored beside a cuBLAS baseline. Each right trial carries the hardware
 * counters CUPTI counted for it (when it could), and the table sets the
 * winner's counted DRAM bytes beside the bytes the problem must move.
 * The fused RMSNorm matvec (cuda.matvec_rmsnorm) is a third kind: the
 * matvec's problems and space for the matmuls the engine folds a norm into,
 * without a K split or a cuBLAS baseline. */
#include <cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "db/db.h"
#include "kernels/cuda/loader.h"
#include "tuner/cuda_attn.h"
#include "tuner/cuda_matvec.h"

#define CUDA_KERNEL "cuda.matvec"
#define CUBLAS_KERNEL "cuda.cublas"
#define ATTN_KERNEL "cuda.attention"
/* the fused RMSNorm matvec: the matvec's sources (matvec.cuh), its own
 * kernel, so its trials and winners are keyed apart */
#define FUSED_KERNEL "cuda.matvec_rmsnorm"
#define MAX_PROBLEMS 256

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct {
    int attn;                /* 1: the decode attention's problem ab, else the matvec's pb (pb.rmsnorm: fused) */
    sol_cuda_mv_problem pb;
    sol_cuda_attn_problem ab;
    char shape[64];
    int tuned;          /* a winner (or the stored one) is in best_* */
    double default_s, best_s, cublas_s, bytes, cublas_bytes;
    double dram_bytes, cublas_dram_bytes; /* counted DRAM read + write of one run; NAN: not counted */
    char best_params[512];
} problem_result;

/* What every problem shares: the plugin, the device, the database, the key. */
typedef struct {
    const sol_cuda_plugin *cu;
    int device;
    sol_db *db;
    int64_t device_id;
    sol_cuda_mv_source src;
    char compile_flags[128];
    double read_bw; /* probed device-memory read, B/s; 0 when never probed */
    const char *cache_dir;
    const cli_tune_cuda_opts *o;
    int noticed; /* an image-cache notice was printed */
} session;

typedef struct {
    session *s;
    const sol_tune_space *space;
    int attn;                  /* which request the trials take */
    sol_cuda_mv_request req;
    sol_cuda_attn_request areq;
    sol_trial_row key;
    double *seen;           /* time by linear index (stored trials included); -1 wrong; NAN not measured */
    double *dram;           /* counted DRAM bytes by linear index; NAN not counted */
    unsigned char *counted; /* configurations shown in the progress count */
    int done, total, failed;
    double best_s, bytes; /* bytes: weights + x + y, for the share of the read bandwidth */
    const char *label;
    sol_err *err;
} tune_ctx;

/* ---- the model's shapes ------------------------------------------------------ */

/* Distinct (type, N, K) of MODEL's decode matmuls, each with every m of
 * mask; types the CUDA matvec does not run are left out, said once. */
typedef struct {
    sol_cuda_mv_problem *pb;
    int cap, n, m;
    int rmsnorm;      /* the fused kernel's problems: the matmuls after a norm */
    unsigned skipped; /* bit per dtype */
} gpu_problems;

static void add_gpu_problem(void *user, const sol_op *op)
{
    gpu_problems *l = user;
    if (!sol_cuda_mv_type_ok(op->wtype) || op->k % 8 || !sol_cuda_mv_row_bytes(op->wtype, op->k)) {
        l->skipped |= 1u << op->wtype;
        return;
    }
    sol_cuda_mv_problem cand = {op->wtype, op->n, op->k, l->m, l->rmsnorm};
    int dup = 0;
    for (int j = 0; j < l->n; j++)
        dup |= l->pb[j].type == cand.type && l->pb[j].rows == cand.rows && l->pb[j].cols == cand.cols &&
               l->pb[j].m == cand.m;
    if (!dup && l->n < l->cap)
        l->pb[l->n++] = cand;
}

static int model_problems(const char *spec, unsigned mask, int rmsnorm, sol_cuda_mv_problem *pb, int cap, int *n,
                          sol_err *err)
{
    gpu_problems l = {pb, cap, 0, 0, rmsnorm, 0};
    int one = 1, rc = 0;
    for (l.m = 1; l.m <= SOL_CUDA_MV_MAX_INPUTS && !rc; l.m++)
        if (mask & 1u << (l.m - 1))
            rc = (rmsnorm ? cli_plan_norm_matmuls : cli_plan_matmuls)(spec, &one, 1, add_gpu_problem, &l, err);
    *n = l.n;
    if (rc)
        return rc;
    for (int t = 0; t < SOL_DT_COUNT; t++)
        if (l.skipped & 1u << t)
            fprintf(stderr, "tune: %s matmuls left out: not a weight type the CUDA matvec runs\n",
                    sol_dtype_name((sol_dtype)t));
    if (*n == 0)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s has no decode matmul the CUDA matvec runs", spec);
    return 0;
}

/* ---- trials in the database --------------------------------------------------- */

typedef struct {
    const sol_trial_row *key;
    const sol_tune_space *space;
    double *seen, *dram;
} resume_ctx;

/* A trial's counted DRAM bytes (read + written) from its stored figures;
 * NAN when it was not counted. */
static double counted_dram(const char *counters_json)
{
    cJSON *j = cJSON_Parse(counters_json);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "dram_read_bytes");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "dram_write_bytes");
    double bytes = cJSON_IsNumber(r) && cJSON_IsNumber(w) ? r->valuedouble + w->valuedouble : NAN;
    cJSON_Delete(j);
    return bytes;
}

static int same_key(const sol_trial_row *row, const sol_trial_row *k) { return cli_trial_is_of(row, k, 0); }

/* A stored trial's configuration, from its params JSON (the names and
 * values sol_space_json wrote): its linear index, or -1 when it is not a
 * point of this space. */
static int64_t stored_index(const sol_tune_space *s, const char *params_json)
{
    cJSON *doc = cJSON_Parse(params_json);
    sol_tune_config c = {{0}};
    int found = doc != NULL && cJSON_GetArraySize(doc) == s->n_params;
    for (int p = 0; found && p < s->n_params; p++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, s->params[p].name);
        found = 0;
        for (int i = 0; cJSON_IsNumber(v) && i < s->params[p].n_values; i++)
            if (s->params[p].values[i] == v->valuedouble) {
                c.idx[p] = i;
                found = 1;
            }
    }
    cJSON_Delete(doc);
    return found ? sol_space_encode(s, &c) : -1;
}

static int collect_trial(void *user, const sol_trial_row *row)
{
    resume_ctx *r = user;
    int64_t at = same_key(row, r->key) ? stored_index(r->space, row->params_json) : -1;
    if (at >= 0) {
        r->seen[at] = row->correct ? row->median_s : -1;
        r->dram[at] = counted_dram(row->counters_json);
    }
    return 0;
}

typedef struct {
    const sol_trial_row *key;
    sol_trial_row found;
    int n;
} baseline_lookup;

static int find_baseline(void *user, const sol_trial_row *row)
{
    baseline_lookup *l = user;
    const sol_trial_row *k = l->key;
    if (row->device_id == k->device_id && !strcmp(row->kernel, k->kernel) && !strcmp(row->source_hash, k->source_hash) &&
        !strcmp(row->shape, k->shape) && !strcmp(row->dtype, k->dtype)) {
        l->found = *row;
        l->n++;
    }
    return 0;
}


/* Writes o into buf when it fits (buf keeps what it held otherwise). */
static void print_if_fits(const cJSON *o, char *buf, size_t cap)
{
    char *text = cJSON_PrintUnformatted(o);
    if (text && strlen(text) < cap)
        snprintf(buf, cap, "%s", text);
    free(text);
}

/* CUPTI's figures for one run (counted apart from the timed ones), rounded
 * to what they resolve: whole bytes and nanoseconds, hundredths of a %. */
static void add_counters(cJSON *o, const sol_cuda_mv_result *r)
{
    static const char *const names[SOL_CUDA_N_COUNTERS] = {
        [SOL_CUDA_CTR_DRAM_READ_BYTES] = "dram_read_bytes", [SOL_CUDA_CTR_DRAM_WRITE_BYTES] = "dram_write_bytes",
        [SOL_CUDA_CTR_L2_BYTES] = "l2_bytes",                [SOL_CUDA_CTR_SM_PCT] = "sm_pct",
        [SOL_CUDA_CTR_DRAM_PCT] = "dram_pct",                [SOL_CUDA_CTR_DURATION_NS] = "duration_ns"};
    for (int i = 0; i < SOL_CUDA_N_COUNTERS; i++) {
        double v = r->counters[i], pct = i == SOL_CUDA_CTR_SM_PCT || i == SOL_CUDA_CTR_DRAM_PCT;
        cJSON_AddNumberToObject(o, names[i], !isfinite(v) ? -1 : pct ? round(v * 100) / 100 : round(v));
    }
    cJSON_AddNumberToObject(o, "counter_passes", r->counter_passes);
}

/* A trial's figures beside its time: {"status", registers, spills, shared
 * memory, bytes moved, error and its bound, min and max}, then its
 * counters, then why, each part kept when it fits the column. */
static void trial_json(const sol_cuda_mv_result *r, char *buf, size_t cap)
{
    static const char *const status[] = {"ok", "invalid", "rejected", "crashed"};
    cJSON *o = cJSON_CreateObject();
    const char *st = r->status >= 0 && r->status <= SOL_CUDA_TRIAL_CRASHED ? status[r->status] : "?";
    cJSON_AddStringToObject(o, "status", r->status == SOL_CUDA_TRIAL_OK && !r->correct ? "wrong" : st);
    cJSON_AddNumberToObject(o, "registers", r->registers);
    cJSON_AddNumberToObject(o, "spill_bytes", r->spill_bytes);
    cJSON_AddNumberToObject(o, "smem_bytes", r->smem_bytes);
    cJSON_AddNumberToObject(o, "bytes", r->bytes);
    if (r->status == SOL_CUDA_TRIAL_OK) {
        cJSON_AddNumberToObject(o, "max_error", isfinite(r->max_error) ? r->max_error : -1);
        cJSON_AddNumberToObject(o, "tolerance", r->tolerance);
    }
    if (r->median_s > 0) {
        cJSON_AddNumberToObject(o, "min_s", r->min_s);
        cJSON_AddNumberToObject(o, "max_s", r->max_s);
    }
    snprintf(buf, cap, "{}");
    print_if_fits(o, buf, cap);
    if (r->counted) {
        add_counters(o, r);
        print_if_fits(o, buf, cap);
    }
    if (r->why[0]) {
        cJSON_AddStringToObject(o, "why", r->why);
        print_if_fits(o, buf, cap);
    }
    cJSON_Delete(o);
}

static int store_trial(session *s, const sol_trial_row *key, const char *params_json, const sol_cuda_mv_result *r,
                       sol_err *err)
{
    sol_trial_row row = *key;
    snprintf(row.params_json, sizeof row.params_json, "%s", params_json);
    trial_json(r, row.counters_json, sizeof row.counters_json);
    int timed = r->status == SOL_CUDA_TRIAL_OK && r->correct && r->median_s > 0;
    row.median_s = timed ? r->median_s : -1;
    row.spread = timed ? (r->max_s - r->min_s) / r->median_s : 0;
    row.reps = timed ? r->reps : 0;
    row.correct = timed;
    row.time = (int64_t)time(NULL);
    int rc = sol_db_trial_add(s->db, &row, err);
    return rc > 0 ? rc : 0; /* -1: already there (a --force rerun): kept as it was */
}

/* ---- the search ------------------------------------------------------------------- */

static void fmt_us(char *buf, size_t cap, double s)
{
    if (s > 0)
        snprintf(buf, cap, "%.1f us", s * 1e6);
    else
        snprintf(buf, cap, "-");
}

static void progress(const tune_ctx *t)
{
    char best[32], bw[48] = "";
    fmt_us(best, sizeof best, t->best_s);
    if (t->best_s > 0 && t->bytes > 0 && t->s->read_bw > 0)
        snprintf(bw, sizeof bw, " = %.0f%% of the probed read bandwidth", 100 * t->bytes / t->best_s / t->s->read_bw);
    fprintf(stderr, isatty(2) ? "\r  %-28s trials %3d/%-3d best %s%s   " : "  %-28s trials %3d/%-3d best %s%s\n",
            t->label, t->done, t->total, best, bw);
}

/* The plugin says once why nothing is counted (no CUPTI, no rights). */
static void say_counter_notice(const sol_cuda_mv_result *r)
{
    if (r->counter_notice[0])
        fprintf(stderr, "%stune: %s\n", isatty(2) ? "\n" : "", r->counter_notice);
}

/* The configuration c of the problem on the device (mv_trial or at_trial). */
static int run_trial(tune_ctx *t, const sol_tune_config *c, sol_cuda_mv_result *r)
{
    if (t->attn) {
        sol_cuda_attn_request req = t->areq;
        sol_cuda_attn_config_from(t->space, c, &req.params);
        return t->s->cu->at_trial(t->s->device, &req, r, t->err);
    }
    sol_cuda_mv_request req = t->req;
    sol_cuda_mv_config_from(t->space, c, &req.params);
    return t->s->cu->mv_trial(t->s->device, &req, r, t->err);
}

/* The search's eval: a stored trial is reused, else the plugin measures it
 * and it is stored (a wrong, rejected or crashing variant too, as never to
 * be chosen). NAN stops the search. */
static double eval_and_store(void *user, const sol_tune_config *c)
{
    tune_ctx *t = user;
    if (interrupted || t->failed)
        return NAN;
    int64_t at = sol_space_encode(t->space, c);
    double time_s = t->seen[at];
    int first_time = isnan(time_s) || (t->s->o->force && !t->counted[at]);
    if (first_time) {
        sol_cuda_mv_result r;
        int rc = run_trial(t, c, &r);
        if (rc && r.status != SOL_CUDA_TRIAL_CRASHED) {
            t->failed = 1;
            return NAN;
        }
        char *json = sol_space_json(t->space, c);
        sol_err db_err = {0};
        int stored = store_trial(t->s, &t->key, json ? json : "{}", &r, rc ? &db_err : t->err);
        free(json);
        if (rc || stored) { /* crashed (recorded, then stop) or the database failed */
            t->failed = 1;
            return NAN;
        }
        if (r.notice[0] && !t->s->noticed) {
            fprintf(stderr, "%stune: %s\n", isatty(2) ? "\n" : "", r.notice);
            t->s->noticed = 1;
        }
        say_counter_notice(&r);
        time_s = r.status == SOL_CUDA_TRIAL_OK && r.correct ? r.median_s : -1;
        t->seen[at] = time_s;
        t->dram[at] = r.counted ? r.counters[SOL_CUDA_CTR_DRAM_READ_BYTES] + r.counters[SOL_CUDA_CTR_DRAM_WRITE_BYTES]
                                : NAN;
    }
    t->done += first_time || !t->counted[at];
    t->counted[at] = 1;
    if (time_s > 0 && (t->best_s <= 0 || time_s < t->best_s))
        t->best_s = time_s;
    progress(t);
    return time_s;
}

/* The cuBLAS baseline of the problem: the stored one, or measured and
 * stored. A baseline that cannot run is said and left out. */
static int baseline(session *s, const tune_ctx *t, problem_result *out, sol_err *err)
{
    sol_trial_row key = t->key;
    snprintf(key.kernel, sizeof key.kernel, CUBLAS_KERNEL);
    snprintf(key.source_hash, sizeof key.source_hash, "cublas %.12s", s->src.cublas);
    baseline_lookup l = {&key, {0}, 0};
    int rc = s->o->force ? 0 : sol_db_trials(s->db, find_baseline, &l, err);
    if (rc)
        return rc;
    if (l.n > 0) {
        out->cublas_s = l.found.correct ? l.found.median_s : -1;
        out->cublas_dram_bytes = counted_dram(l.found.counters_json);
        cJSON *j = cJSON_Parse(l.found.counters_json);
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "bytes");
        out->cublas_bytes = cJSON_IsNumber(b) ? b->valuedouble : 0;
        cJSON_Delete(j);
        return 0;
    }
    sol_cuda_mv_result r;
    sol_err why = {0};
    if (s->cu->mv_cublas(s->device, &t->req, &r, &why)) {
        fprintf(stderr, "tune: %s: no cuBLAS baseline: %s\n", out->shape, why.msg);
        return 0;
    }
    snprintf(key.compile_flags, sizeof key.compile_flags, "%s", r.label);
    say_counter_notice(&r);
    out->cublas_s = r.status == SOL_CUDA_TRIAL_OK && r.correct ? r.median_s : -1;
    out->cublas_bytes = r.bytes;
    out->cublas_dram_bytes =
        r.counted ? r.counters[SOL_CUDA_CTR_DRAM_READ_BYTES] + r.counters[SOL_CUDA_CTR_DRAM_WRITE_BYTES] : NAN;
    if (r.status != SOL_CUDA_TRIAL_OK || !r.correct)
        fprintf(stderr, "tune: %s: cuBLAS baseline: %s\n", out->shape, r.why);
    return store_trial(s, &key, "{}", &r, err);
}

/* The matvec problem's space, trial request, bytes and key. */
static void setup_matvec(session *s, problem_result *out, sol_cuda_mv_space_ctx *ctx, sol_tune_space *space,
                         tune_ctx *t)
{
    const cli_tune_cuda_opts *o = s->o;
    sol_cuda_mv_oracle oracle = {s->cu->mv_default, s->cu->mv_check};
    sol_cuda_mv_space(&out->pb, &oracle, ctx, space);
    t->req = (sol_cuda_mv_request){.type = out->pb.type, .rows = out->pb.rows, .cols = out->pb.cols, .m = out->pb.m,
                                   .reps = o->reps, .seed = o->seed, .cache_dir = s->cache_dir,
                                   .counters = !o->no_counters, .rmsnorm = out->pb.rmsnorm};
    t->bytes = out->bytes = (double)out->pb.rows * (double)sol_cuda_mv_row_bytes(out->pb.type, out->pb.cols) +
                            4.0 * out->pb.m * ((double)out->pb.rows + (double)out->pb.cols) +
                            (out->pb.rmsnorm ? 4.0 * (double)out->pb.cols : 0.0); /* and the norm vector */
    snprintf(t->key.kernel, sizeof t->key.kernel, "%s", out->pb.rmsnorm ? FUSED_KERNEL : CUDA_KERNEL);
    snprintf(t->key.source_hash, sizeof t->key.source_hash, "%s", s->src.hash);
    snprintf(t->key.dtype, sizeof t->key.dtype, "%s", sol_dtype_name(out->pb.type));
}

/* The attention problem's: every query at the cache's last position. */
static void setup_attn(session *s, problem_result *out, sol_cuda_attn_space_ctx *ctx, sol_tune_space *space,
                       tune_ctx *t)
{
    const cli_tune_cuda_opts *o = s->o;
    sol_cuda_attn_oracle oracle = {s->cu->at_default, s->cu->at_check};
    sol_cuda_attn_space(&out->ab, &oracle, ctx, space);
    t->attn = 1;
    sol_cuda_attn_config d;
    sol_cuda_attn_config_from(space, &space->default_config, &d);
    sol_cuda_attn_request_of(&out->ab, &d, &t->areq);
    t->areq.reps = o->reps;
    t->areq.seed = o->seed;
    t->areq.cache_dir = s->cache_dir;
    t->areq.counters = !o->no_counters;
    t->bytes = out->bytes = sol_cuda_attn_bytes(&out->ab);
    snprintf(t->key.kernel, sizeof t->key.kernel, "%s", ATTN_KERNEL);
    snprintf(t->key.source_hash, sizeof t->key.source_hash, "%s", s->src.attn_hash);
    snprintf(t->key.dtype, sizeof t->key.dtype, "%s", sol_dtype_name(out->ab.kv_type));
}

/* Why the plugin's own variant does not fit the problem (never expected). */
static void default_misfit(session *s, const problem_result *out, const tune_ctx *t, const sol_tune_space *space,
                           size_t row_bytes)
{
    char why[256] = "";
    if (out->attn) {
        sol_cuda_attn_request req = t->areq;
        s->cu->at_check(&req, why, sizeof why);
    } else {
        sol_cuda_mv_config d;
        sol_cuda_mv_config_from(space, &space->default_config, &d);
        s->cu->mv_check(out->pb.type, out->pb.rows, out->pb.cols, row_bytes, &d, why, sizeof why);
    }
    fprintf(stderr, "tune: %s %s left out: the built-in variant does not fit it (%s)\n", t->key.dtype, out->shape,
            why);
}

static int tune_problem(session *s, problem_result *out, sol_err *err)
{
    const cli_tune_cuda_opts *o = s->o;
    sol_cuda_mv_space_ctx mv_ctx;
    sol_cuda_attn_space_ctx attn_ctx;
    sol_tune_space space;
    tune_ctx t = {.s = s, .space = &space, .label = out->shape, .err = err};
    if (out->attn)
        setup_attn(s, out, &attn_ctx, &space, &t);
    else
        setup_matvec(s, out, &mv_ctx, &space, &t);
    t.key.device_id = s->device_id;
    snprintf(t.key.compile_flags, sizeof t.key.compile_flags, "%s", s->compile_flags);
    snprintf(t.key.shape, sizeof t.key.shape, "%s", out->shape);
    int64_t size = sol_space_size(&space);
    t.seen = malloc((size_t)size * sizeof *t.seen);
    t.dram = malloc((size_t)size * sizeof *t.dram);
    t.counted = calloc((size_t)size, 1);
    out->dram_bytes = out->cublas_dram_bytes = NAN;
    int rc = 0;
    if (!t.seen || !t.dram || !t.counted) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
        goto exit;
    }
    for (int64_t i = 0; i < size; i++)
        t.seen[i] = t.dram[i] = NAN;
    if (!sol_space_valid(&space, &space.default_config)) {
        default_misfit(s, out, &t, &space, out->attn ? 0 : mv_ctx.row_bytes);
        goto exit;
    }
    resume_ctx resume = {&t.key, &space, t.seen, t.dram};
    if (!o->force && (rc = sol_db_trials(s->db, collect_trial, &resume, err)))
        goto exit;
    /* cuBLAS runs plain matmuls only: attention and the fused kernel have
     * no baseline row (mv_cublas refuses the fused one) */
    out->cublas_s = -1;
    if (!out->attn && !out->pb.rmsnorm && (rc = baseline(s, &t, out, err)))
        goto exit;
    int valid, stored;
    sol_space_coverage(&space, t.seen, &valid, &stored);
    if (!o->force && stored == valid) { /* all measured: the stored winner, when there is one */
        cli_stored_winner w;
        if ((rc = cli_stored_winner_of(s->db, &t.key, &w, err)))
            goto exit;
        if (w.found) {
            out->best_s = w.best_s;
            out->default_s = w.default_s;
            snprintf(out->best_params, sizeof out->best_params, "%s", w.params);
            int64_t at = stored_index(&space, w.params);
            out->dram_bytes = at >= 0 ? t.dram[at] : NAN;
            fprintf(stderr, "  %-28s all %d configurations are measured; the stored winner stands (--force "
                            "measures again)\n", out->shape, valid);
            out->tuned = 1;
            goto exit;
        }
    }
    int budget = o->budget > 0 ? o->budget : CLI_TUNE_CUDA_BUDGET;
    t.total = budget + 1 < valid ? budget + 1 : valid; /* the budget, and the default before it */
    /* the default first: the speed-up is measured against it */
    double default_s = eval_and_store(&t, &space.default_config);
    sol_search_result r = {.best_time_s = -1};
    if (!interrupted && !t.failed)
        rc = sol_search(o->strategy, &space, budget, o->seed, eval_and_store, &t, &r, err);
    if (isatty(2))
        fprintf(stderr, "\n");
    if (!rc && t.failed)
        rc = err->code ? err->code : SOL_ERR_RUNTIME;
    if (rc || isnan(default_s)) /* interrupted before the default was measured: nothing to say */
        goto exit;
    out->default_s = default_s;
    const sol_tune_config *win = r.best_time_s > 0 && (default_s <= 0 || r.best_time_s <= default_s)
                                     ? &r.best
                                     : default_s > 0 ? &space.default_config : NULL;
    if (!win) {
        if (!interrupted)
            fprintf(stderr, "tune: %s %s: no variant gave a right answer; nothing stored\n", t.key.dtype, out->shape);
        goto exit;
    }
    out->best_s = win == &r.best ? r.best_time_s : default_s;
    out->dram_bytes = t.dram[sol_space_encode(&space, win)];
    char *json = sol_space_json(&space, win);
    snprintf(out->best_params, sizeof out->best_params, "%s", json ? json : "{}");
    free(json);
    out->tuned = 1;
    sol_best_row best = {.device_id = s->device_id, .median_s = out->best_s, .default_s = default_s,
                         .time = (int64_t)time(NULL)};
    snprintf(best.kernel, sizeof best.kernel, "%s", t.key.kernel);
    snprintf(best.source_hash, sizeof best.source_hash, "%s", t.key.source_hash);
    snprintf(best.shape, sizeof best.shape, "%s", out->shape);
    snprintf(best.dtype, sizeof best.dtype, "%s", t.key.dtype);
    snprintf(best.params_json, sizeof best.params_json, "%s", out->best_params);
    rc = sol_db_best_set(s->db, &best, err);
exit:
    free(t.seen);
    free(t.dram);
    free(t.counted);
    return rc;
}

/* ---- the command ---------------------------------------------------------------------- */

/* A plugin without the tuner's entries (the test backend, an older build):
 * one line naming its backend. */
static int no_tuner(const cli_tune_cuda_opts *o, sol_err *err)
{
    cli_backend_opts b = {.name = o->backend, .device = o->device};
    sol_backend *be = NULL;
    if (cli_backend_open(&b, &be, err))
        return err->code;
    sol_fail(err, SOL_ERR_RUNTIME,
             "--backend %s: the %s backend has no tunable kernels; tune with --backend cpu (a CUDA plugin built "
             "before the tuner: rebuild it with `make`)", o->backend, be->name);
    be->destroy(be);
    return err->code;
}

/* The plugin, with the tuner's entries, and the device; errors name why. */
static int open_gpu(const cli_tune_cuda_opts *o, const sol_cuda_plugin **cu, sol_cuda_device *gpu, sol_err *err)
{
    int rc = !strcmp(o->backend, "cuda") ? sol_cuda_open(cu, NULL, 0, err) : sol_plugin_load(o->backend, cu, err);
    if (rc)
        return rc;
    const sol_cuda_plugin *p = *cu;
    if (p->tune_magic != SOL_CUDA_TUNE_MAGIC || !p->mv_default || !p->mv_check || !p->mv_source || !p->mv_trial ||
        !p->mv_cublas || !p->mv_release || !p->device_count || !p->device_info)
        return no_tuner(o, err);
    int count = 0;
    if ((rc = p->device_count(&count, err)))
        return rc;
    if (count < 1)
        return sol_fail(err, SOL_ERR_RUNTIME, "no CUDA device: the driver reports none");
    if (o->device >= count)
        return sol_fail(err, SOL_ERR_RUNTIME, "--device %d: this machine has %d CUDA device%s (0..%d)", o->device,
                        count, count == 1 ? "" : "s", count - 1);
    return p->device_info(o->device, gpu, err);
}

static void print_table(const problem_result *res, int n, double read_bw)
{
    printf("%-9s %-6s %-20s %11s %11s %8s %11s %9s %8s %9s  %s\n", "kernel", "type", "shape", "default", "tuned",
           "speed-up", "cuBLAS", "vs cuBLAS", "read bw", "DRAM/plan", "parameters");
    for (int i = 0; i < n; i++) {
        const problem_result *r = &res[i];
        if (!r->tuned)
            continue;
        char d[24], b[24], c[24], vs[16] = "-", bw[16] = "-", dram[16] = "-";
        fmt_us(d, sizeof d, r->default_s);
        fmt_us(b, sizeof b, r->best_s);
        fmt_us(c, sizeof c, r->cublas_s);
        if (r->cublas_s > 0 && r->best_s > 0)
            snprintf(vs, sizeof vs, "%.2fx", r->cublas_s / r->best_s);
        if (read_bw > 0 && r->bytes > 0 && r->best_s > 0)
            snprintf(bw, sizeof bw, "%.0f%%", 100 * r->bytes / r->best_s / read_bw);
        if (isfinite(r->dram_bytes) && r->bytes > 0)
            snprintf(dram, sizeof dram, "%.3f", r->dram_bytes / r->bytes);
        printf("%-9s %-6s %-20s %11s %11s %7.2fx %11s %9s %8s %9s  %s\n",
               r->attn ? "attention" : r->pb.rmsnorm ? "mv+norm" : "matvec",
               sol_dtype_name(r->attn ? r->ab.kv_type : r->pb.type), r->shape, d, b,
               r->best_s > 0 && r->default_s > 0 ? r->default_s / r->best_s : 0, c, vs, bw, dram, r->best_params);
    }
    printf("(shape: matvec and mv+norm (RMSNorm folded in) NxKxM; attention HxGxDxCxR: query heads, KV heads, head dim, cache slots, rows, every query at "
           "the last slot, the type the cache's)\n");
    printf("(vs cuBLAS: cuBLAS's time over the tuned one)\n");
    printf("(DRAM/plan: the tuned run's DRAM bytes read + written as CUPTI counted them, over the bytes it must move;"
           " - where nothing was counted)\n");
    if (read_bw > 0)
        printf("(read bw: weights + x + y moved per run over the tuned time, as a share of the probed %.0f GB/s)\n",
               read_bw / 1e9);
    else
        printf("(no probe of this GPU: `sol hw probe --backend cuda` adds the share of its read bandwidth)\n");
}

/* Whether the plugin has the decode attention tuner's entries. */
static int has_attn_tuner(const sol_cuda_plugin *cu)
{
    return cu->attn_magic == SOL_CUDA_ATTN_TUNE_MAGIC && cu->at_default && cu->at_check && cu->at_trial;
}

/* The model's decode attention at --ctx slots of an f16 cache (the
 * engine's default), or 0 and why it has none the tuner runs. */
static int model_attention(const char *spec, int64_t ctx, sol_cuda_attn_problem *ab, char *why, size_t cap,
                           sol_err *err)
{
    sol_model m;
    if (sol_model_load(spec, &m, err))
        return -1;
    if (!strncmp(m.arch, "deepseek", 8)) {
        snprintf(why, cap, "%s's attention is MLA, which the CUDA backend does not run", spec);
        return 0;
    }
    if (m.n_kv_heads < 1 || m.n_heads % m.n_kv_heads || m.head_dim < 1 || m.head_dim > 256) {
        snprintf(why, cap, "%d heads over %d KV heads of %d dims is not a shape the CUDA attention runs", m.n_heads,
                 m.n_kv_heads, m.head_dim);
        return 0;
    }
    *ab = (sol_cuda_attn_problem){m.n_heads, m.n_kv_heads, m.head_dim, SOL_DT_F16, ctx, 1};
    return 1;
}

/* Appends one problem at each m of mask (its own m when given). */
static void add_each_m(const problem_result *one, int m_given, unsigned mask, problem_result *res, int cap, int *n)
{
    for (int mi = 1; mi <= SOL_CUDA_MV_MAX_INPUTS && *n < cap; mi++) {
        int m = one->attn ? one->ab.rows : one->pb.m;
        if (m_given ? mi != m : !(mask & 1u << (mi - 1)))
            continue;
        res[*n] = *one;
        if (one->attn) {
            res[*n].ab.rows = mi;
            sol_cuda_attn_problem_format(&res[*n].ab, res[*n].shape, sizeof res[*n].shape);
        } else {
            res[*n].pb.m = mi;
            sol_cuda_mv_problem_format(&res[*n].pb, res[*n].shape, sizeof res[*n].shape);
        }
        (*n)++;
    }
}

/* The model's problems: its decode matmuls, then its attention. */
static int model_problem_results(const cli_tune_cuda_opts *o, const sol_cuda_plugin *cu, problem_result *res,
                                 int cap, int *n, sol_err *err)
{
    *n = 0;
    for (int fused = 0; fused <= 1; fused++) {
        if (!(o->kernels & (fused ? CLI_TUNE_CUDA_RMSNORM : CLI_TUNE_CUDA_MATVEC)))
            continue;
        sol_cuda_mv_problem pbs[MAX_PROBLEMS];
        int count = 0;
        if (model_problems(o->model, o->batches, fused, pbs, MAX_PROBLEMS, &count, err))
            return err->code;
        for (int i = 0; i < count && *n < cap; i++) {
            res[*n] = (problem_result){.pb = pbs[i]};
            sol_cuda_mv_problem_format(&pbs[i], res[*n].shape, sizeof res[*n].shape);
            (*n)++;
        }
    }
    if (!(o->kernels & CLI_TUNE_CUDA_ATTENTION))
        return 0;
    if (!has_attn_tuner(cu)) {
        fprintf(stderr, "tune: attention left out: this CUDA plugin has no attention tuner (rebuild it: make)\n");
        return *n ? 0 : sol_fail(err, SOL_ERR_RUNTIME, "nothing to tune in %s", o->model);
    }
    problem_result one = {.attn = 1};
    char why[256] = "";
    int found = model_attention(o->model, o->ctx, &one.ab, why, sizeof why, err);
    if (found < 0)
        return err->code;
    if (!found)
        fprintf(stderr, "tune: attention left out: %s\n", why);
    else
        add_each_m(&one, 0, o->batches, res, cap, n);
    return *n ? 0 : sol_fail(err, SOL_ERR_RUNTIME, "nothing to tune in %s", o->model);
}

/* One --shape's problem (usage errors name --shape): matvec_rmsnorm:... is
 * the fused kernel's, the rest read as matvec:... */
static int shape_problem(const cli_tune_cuda_opts *o, problem_result *one, int *m_given, sol_err *err)
{
    static const char fused[] = "matvec_rmsnorm:";
    *one = (problem_result){.attn = !strncmp(o->shape, "attention:", 10)};
    if (one->attn)
        return sol_cuda_attn_problem_parse(o->shape, &one->ab, m_given, err);
    if (strncmp(o->shape, fused, sizeof fused - 1))
        return sol_cuda_mv_problem_parse(o->shape, &one->pb, m_given, err);
    char plain[256];
    snprintf(plain, sizeof plain, "matvec:%s", o->shape + sizeof fused - 1);
    int rc = sol_cuda_mv_problem_parse(plain, &one->pb, m_given, err);
    one->pb.rmsnorm = 1;
    return rc;
}

int cli_tune_cuda(const cli_tune_cuda_opts *o)
{
    sol_err err = {0};
    problem_result *res = calloc(MAX_PROBLEMS, sizeof *res), one;
    int n = 0, rc = 0, m_given = 0;
    if (!res) {
        sol_fail(&err, SOL_ERR_RUNTIME, "out of memory");
        return cli_fail("tune", &err);
    }
    /* the shape's words first (usage errors), then the device, then the model */
    const sol_cuda_plugin *cu = NULL;
    sol_cuda_device gpu;
    if ((o->shape && (rc = shape_problem(o, &one, &m_given, &err))) || (rc = open_gpu(o, &cu, &gpu, &err))) {
        free(res);
        return cli_fail("tune", &err);
    }
    if (o->shape && one.attn && !has_attn_tuner(cu))
        rc = sol_fail(&err, SOL_ERR_RUNTIME, "--shape %s: this CUDA plugin has no attention tuner (rebuild it: make)",
                      o->shape);
    else if (o->shape)
        add_each_m(&one, m_given, o->batches, res, MAX_PROBLEMS, &n);
    else
        rc = model_problem_results(o, cu, res, MAX_PROBLEMS, &n, &err);
    if (rc) {
        free(res);
        return cli_fail("tune", &err);
    }
    session s = {.cu = cu, .device = o->device, .o = o};
    char cache[4096];
    s.cache_dir = cli_cuda_image_cache(cache, sizeof cache);
    sol_device_info dev;
    cli_gpu_device(&gpu, &dev);
    char sm[16] = "";
    for (const char *c = gpu.cc; *c && strlen(sm) < sizeof sm - 1; c++)
        if (*c != '.')
            sm[strlen(sm)] = *c; /* "9.0" -> "90" (sm is zeroed) */
    if ((rc = cu->mv_source(&s.src, &err)))
        return cli_fail("tune", &err);
    snprintf(s.compile_flags, sizeof s.compile_flags, "nvrtc %.8s sm_%.6s %.95s", s.src.nvrtc, sm,
             s.src.options);
    if ((rc = sol_db_open(NULL, &s.db, &err)) ||
        (sol_db_readonly(s.db) &&
         (rc = sol_fail(&err, SOL_ERR_RUNTIME,
                        "%s is read-only: trials could not be stored, so nothing was measured (make it writable)",
                        sol_db_name(s.db)))) ||
        (rc = sol_db_device(s.db, &dev, &s.device_id, &err)))
        goto exit;
    sol_probe_row probe;
    int found = sol_db_probe_latest(s.db, s.device_id, "mem_read_bw", &probe, &err);
    if (found > 0) {
        rc = found;
        goto exit;
    }
    s.read_bw = found == 0 ? probe.value : 0;
    signal(SIGINT, on_sigint);
    char bw[64] = "never probed";
    if (s.read_bw > 0)
        snprintf(bw, sizeof bw, "probed read %.0f GB/s", s.read_bw / 1e9);
    fprintf(stderr, "tune: %s (cc %s, %s), %d problem(s), strategy %s, budget %d a problem, %d repetitions; kernel "
                    "sources: matvec %s, attention %s; NVRTC %s\n", gpu.name, gpu.cc, bw, n, o->strategy->name,
            o->budget > 0 ? o->budget : CLI_TUNE_CUDA_BUDGET, o->reps, s.src.hash,
            s.src.attn_hash[0] ? s.src.attn_hash : "-", s.src.nvrtc);
    int done = 0;
    for (int i = 0; i < n && !rc && !interrupted; i++, done++)
        rc = tune_problem(&s, &res[i], &err);
    if (!rc) {
        print_table(res, done, s.read_bw);
        if (interrupted)
            fprintf(stderr, "tune: interrupted; measured trials are kept, a rerun resumes\n");
    }
exit:
    cu->mv_release();
    sol_db_close(s.db);
    free(res);
    return rc ? cli_fail("tune", &err) : (interrupted ? 130 : 0);
}
