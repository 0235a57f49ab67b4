/* sol tune: tunes the CPU matmul for every distinct (type, shape) a model's
 * plan needs (or one --shape), keeps every trial in the database, skips
 * what was already measured (resume), and stores the winners that `sol
 * run` and `sol bench` load. */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "db/db.h"
#include "tuner/cpu_matmul.h"
#include "tuner/cuda_matvec.h"
#include "util/clock.h"

#ifndef SOL_KERNEL_HASH
#define SOL_KERNEL_HASH "unknown"
#endif

/* The trial key's source hash: the kernels this binary was built from.
 * SOL_TUNE_SOURCE_HASH overrides it (tests: a changed source must not
 * reuse old trials). */
static const char *source_hash(void)
{
    const char *o = getenv("SOL_TUNE_SOURCE_HASH");
    return o && *o ? o : SOL_KERNEL_HASH;
}
#ifndef SOL_CFLAGS
#define SOL_CFLAGS "unknown"
#endif

void usage_tune(FILE *f)
{
    fprintf(f, "usage: sol tune MODEL [--strategy exhaustive|random|anneal|genetic] [--budget N] [--seed S]\n"
               "                [--threads N] [--reps R] [--force] [--prefill P] [--backend cpu|cuda|PLUGIN]\n"
               "                [--kernels matvec,matmul] [--activations q8|f32] [--landscape FILE]\n"
               "       sol tune --shape matvec:TYPE:NxK | matmul:TYPE:NxKxM [options]\n"
               "       sol tune MODEL|--shape matvec:TYPE:NxK[xM]|matvec_rmsnorm:TYPE:NxK[xM]|\n"
               "                attention:KV:HxGxDxC[xR] --backend cuda [--device N] [--batches 1,8]\n"
               "                [--kernels matvec,rmsnorm_matvec,attention] [--ctx C]\n"
               "                [--strategy S] [--budget N] [--seed S] [--reps R] [--force] [--no-counters]\n\n"
               "Tunes the CPU matmul's launch parameters (tasks per thread, weight rows kept in\n"
               "cache while the inputs pass, and for the 8-bit integer dots the tile of weight\n"
               "rows x inputs per kernel call) for each distinct weight type and shape in MODEL's\n"
               "decode plan (and prefill with --prefill P), on the path `sol run` takes with the\n"
               "same --activations (default q8; float weights always use f32 dots). Every\n"
               "configuration is checked against a float64 reference (a wrong one is recorded\n"
               "and never chosen), timed as the median of R (>= 5) runs after a warm-up, each on\n"
               "a different copy of the weights (together 2x the last-level cache, so every run\n"
               "streams from memory), and stored as a trial keyed by device, kernel (with its\n"
               "activations), kernel source hash, compiler flags, shape and type; a rerun skips\n"
               "measured configurations (--force measures again). Ctrl-C stops after the\n"
               "current trial. The winner and the default are then measured again, alternately,\n"
               "5 times each: the winner is kept only when it is faster side by side (the table\n"
               "shows those medians). Winners go to the database: `sol db best`.\n\n"
               "--strategy: exhaustive measures every valid configuration; random a seeded\n"
               "sample of --budget; anneal (the default) walks from the default to neighbouring\n"
               "values; genetic breeds a small population (tournaments, uniform crossover,\n"
               "mutation to neighbouring values, the fastest always kept). None measures a\n"
               "configuration twice; --seed makes random, anneal and genetic reproducible.\n\n"
               "--landscape FILE replays the search on the trials another database recorded\n"
               "(e.g. an exhaustive run's) instead of measuring: a strategy judged on one fixed\n"
               "landscape, free of this run's noise. Nothing is measured or stored; the table\n"
               "shows the recorded times of the default and the pick.\n\n"
               "--backend cuda tunes the GPU's decode matvec instead (kernels/cuda/matvec.cuh:\n"
               "rows per block, threads per row, load width, unroll, K split, inputs per pass) for\n"
               "each distinct decode matmul of MODEL and each number of inputs in --batches\n"
               "(default 1..8, every number of sequences the engine decodes together, since a\n"
               "winner is used at the M it was tuned for; --batches 1,8 keeps a run short), or for\n"
               "one --shape (its M, or --batches). Each variant is compiled by NVRTC for the\n"
               "device's exact architecture (images cached beside the database, or in\n"
               "$SOL_CUDA_CACHE), checked against a float64 reference (a wrong, spilling or\n"
               "failing one is recorded and never chosen) and timed with CUDA events: a\n"
               "warm-up, then R (>= 10, default 25) runs, each after an untimed write of twice\n"
               "the L2. --budget defaults to 64 variants a problem there. Trials are stored\n"
               "under the GPU's device, keyed by the plugin's kernel\n"
               "sources, NVRTC's version and options, with a cuBLAS baseline of each problem\n"
               "beside them; the table shows the default, tuned and cuBLAS times and the tuned\n"
               "run's share of the probed read bandwidth (`sol hw probe --backend cuda`). No GPU,\n"
               "no plugin or no such --device: one line, exit 1.\n\n"
               "Hardware counters: each right variant (and the baseline) is then run again under\n"
               "CUPTI's Range Profiler, in passes of its own after the same L2 flush (counting\n"
               "replays the run and perturbs time, so no timed run is counted): DRAM bytes read\n"
               "and written, L2 bytes, SM and DRAM throughput as %% of peak and the kernel's\n"
               "duration, stored with the trial. The table then adds the tuned variant's counted\n"
               "DRAM bytes over the plan's bytes (weights + x + y): 1.00 moves what it must, more\n"
               "shows wasted traffic. Without CUPTI or the rights to read counters: one notice,\n"
               "trials timed only. --no-counters skips counting.\n\n"
               "Decode attention (--kernels attention, with matvec the default on a GPU): the\n"
               "split kernel's query heads and warps a block and slots of cache a split\n"
               "(kernels/cuda/attention_decode.cuh), for MODEL's heads at --ctx C slots of an\n"
               "f16 cache (default 4096) with every query at the last slot, or one --shape\n"
               "attention:KV:HxGxDxC[xR] (H query heads, G KV heads, head dim D, C slots, R\n"
               "rows; KV f16 or f32), under the matvec's rules (float64 check, events, counters);\n"
               "no cuBLAS baseline. The engine launches a winner for the same heads, head dim,\n"
               "cache type and sequences at a capacity within 2x of the one it was tuned at.\n\n"
               "The fused RMSNorm matvec (--kernels rmsnorm_matvec, also a default; --shape\n"
               "matvec_rmsnorm:TYPE:NxK[xM]): the matvec with the norm folded into its input,\n"
               "which the engine runs for the matmuls after a norm (q, k, v, gate, up, the LM\n"
               "head), tuned as its own kernel (no K split, no cuBLAS baseline).\n");
}

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct {
    char shape[64];
    const sol_matmul_problem *pb;
    double default_s, best_s;
    char best_params[512];
} shape_result;

/* Trials already stored for this key: params JSON -> time. */
typedef struct {
    const sol_trial_row *key;
    sol_tune_space *space;
    double *seen;   /* by linear index; NAN = not measured */
    int any_device; /* --landscape: another file, whose device ids are its own */
} resume_ctx;

static int collect_trial(void *user, const sol_trial_row *row)
{
    resume_ctx *r = user;
    const sol_trial_row *k = r->key;
    if (!cli_trial_is_of(row, k, r->any_device))
        return 0;
    for (int64_t i = 0; i < sol_space_size(r->space); i++) {
        sol_tune_config c;
        sol_space_decode(r->space, i, &c);
        char *json = sol_space_json(r->space, &c);
        if (json && !strcmp(json, row->params_json))
            r->seen[i] = row->correct ? row->median_s : -1;
        free(json);
    }
    return 0;
}

typedef struct {
    sol_matmul_bench *bench; /* not prepared in a replay */
    const sol_tune_space *space;
    sol_db *db;
    sol_trial_row key;
    double *seen;           /* time by linear index (stored trials included) */
    unsigned char *counted; /* configurations shown in the progress count */
    int done, total, force;
    int replay; /* --landscape: times come from seen, nothing is measured or stored */
    double default_s, best_s;
    const char *label;
    sol_err *err;
    int failed;
} tune_ctx;

static void progress(const tune_ctx *t)
{
    char best[32];
    snprintf(best, sizeof best, t->best_s > 0 ? "%.1f us" : "-", t->best_s * 1e6);
    fprintf(stderr, isatty(2) ? "\r  %-30s trials %3d/%-3d best %-10s x%.2f over default   "
                              : "  %-30s trials %3d/%-3d best %-10s x%.2f over default\n",
            t->label, t->done, t->total, best, t->best_s > 0 && t->default_s > 0 ? t->default_s / t->best_s : 0);
}

/* The driver's eval: a stored trial is reused, else measured and stored. */
static double eval_and_store(void *user, const sol_tune_config *c)
{
    tune_ctx *t = user;
    if (interrupted || t->failed)
        return NAN; /* stops the search */
    int64_t at = sol_space_encode(t->space, c);
    double time_s = t->seen[at];
    if (t->replay && isnan(time_s))
        time_s = -1; /* not in the landscape: never chosen */
    int first_time = !t->replay && (isnan(time_s) || (t->force && !t->counted[at]));
    if (first_time) {
        time_s = sol_matmul_bench_eval(t->bench, c);
        sol_trial_row row = t->key;
        char *json = sol_space_json(t->space, c);
        snprintf(row.params_json, sizeof row.params_json, "%s", json ? json : "{}");
        free(json);
        snprintf(row.counters_json, sizeof row.counters_json,
                 t->bench->perf.available ? "{\"cycles\":%llu,\"instructions\":%llu,\"cache_misses\":%llu}" : "{}",
                 (unsigned long long)t->bench->counters[0], (unsigned long long)t->bench->counters[1],
                 (unsigned long long)t->bench->counters[2]);
        row.median_s = time_s;
        row.spread = t->bench->last.median_s > 0
                         ? (t->bench->last.max_s - t->bench->last.min_s) / t->bench->last.median_s
                         : 0;
        row.reps = t->bench->last.reps;
        row.correct = t->bench->last_correct;
        row.time = (int64_t)time(NULL);
        int rc = sol_db_trial_add(t->db, &row, t->err);
        if (rc > 0)
            t->failed = 1;
        t->seen[at] = time_s;
    }
    t->done += first_time || !t->counted[at];
    t->counted[at] = 1;
    if (time_s >= 0 && (t->best_s <= 0 || time_s < t->best_s))
        t->best_s = time_s;
    progress(t);
    return time_s;
}

/* The stored winner of key's shape into out: 0, -1 when there is none, or
 * an error. */
static int stored_best(sol_db *db, const sol_trial_row *key, shape_result *out, sol_err *err)
{
    cli_stored_winner w;
    int rc = cli_stored_winner_of(db, key, &w, err);
    if (rc || !w.found)
        return rc ? rc : -1;
    out->best_s = w.best_s;
    out->default_s = w.default_s;
    snprintf(out->best_params, sizeof out->best_params, "%s", w.params);
    return 0;
}

/* The winner and the default measured again, alternately, CONFIRM_ROUNDS
 * times each: the search measured them minutes apart, and this machine's
 * memory bandwidth moves between such moments. The medians of the rounds
 * replace both times; a winner that is not faster side by side loses to
 * the default. */
enum { CONFIRM_ROUNDS = 5 };

static void confirm_against_default(sol_matmul_bench *bench, const sol_tune_space *space, sol_search_result *r,
                                    shape_result *out)
{
    double best[CONFIRM_ROUNDS], dflt[CONFIRM_ROUNDS];
    for (int i = 0; i < CONFIRM_ROUNDS; i++) {
        dflt[i] = sol_matmul_bench_eval(bench, &space->default_config);
        best[i] = sol_matmul_bench_eval(bench, &r->best);
        if (dflt[i] < 0 || best[i] < 0)
            return; /* a wrong answer now: keep what the search saw */
    }
    out->default_s = sol_median(dflt, CONFIRM_ROUNDS, NULL, NULL);
    r->best_time_s = sol_median(best, CONFIRM_ROUNDS, NULL, NULL);
}

static int tune_shape(sol_backend *be, sol_db *db, sol_db *landscape, int64_t device, const sol_matmul_problem *pb,
                      const sol_strategy_ops *strategy, int budget, uint64_t seed, int reps, int force,
                      size_t llc, shape_result *out, sol_err *err)
{
    sol_tune_space space;
    sol_cpu_matmul_space(pb, &space);
    sol_matmul_bench bench;
    int rc = 0, bench_ready = 0;
    tune_ctx t = {.bench = &bench, .space = &space, .db = db, .force = force, .replay = landscape != NULL,
                  .label = out->shape, .err = err};
    t.key.device_id = device;
    snprintf(t.key.kernel, sizeof t.key.kernel, "%s", space.kernel);
    snprintf(t.key.source_hash, sizeof t.key.source_hash, "%s", source_hash());
    snprintf(t.key.compile_flags, sizeof t.key.compile_flags, "%s", SOL_CFLAGS);
    snprintf(t.key.shape, sizeof t.key.shape, "%s", out->shape);
    snprintf(t.key.dtype, sizeof t.key.dtype, "%s", sol_dtype_name(pb->type));
    int64_t size = sol_space_size(&space);
    t.seen = malloc((size_t)size * sizeof *t.seen);
    t.counted = calloc((size_t)size, 1);
    if (!t.seen || !t.counted) {
        free(t.seen);
        free(t.counted);
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    }
    for (int64_t i = 0; i < size; i++)
        t.seen[i] = NAN;
    resume_ctx resume = {&t.key, &space, t.seen, landscape != NULL};
    if (landscape ? (rc = sol_db_trials(landscape, collect_trial, &resume, err)) != 0
                  : !force && (rc = sol_db_trials(db, collect_trial, &resume, err)) != 0)
        goto exit;
    int valid, stored;
    sol_space_coverage(&space, t.seen, &valid, &stored);
    /* a resume with nothing left: the stored winner, at once (a search
     * killed after its last trial, before its winner was stored, goes on) */
    if (!force && !landscape && stored == valid && (rc = stored_best(db, &t.key, out, err)) >= 0) {
        if (rc == 0) {
            fprintf(stderr, "  %-30s all %d configurations are measured; the stored winner stands (--force measures "
                            "again)\n", out->shape, valid);
            out->pb = pb;
        }
        goto exit;
    }
    rc = 0;
    /* a replay measures nothing: no weights to prepare (hundreds of MB) */
    if (!landscape && (rc = sol_matmul_bench_init(&bench, be, pb, &space, seed, llc, reps, err)))
        goto exit;
    bench_ready = !landscape;
    t.total = budget > 0 && budget < valid ? budget : valid;
    /* the default first: the speed-up is measured against it */
    t.default_s = eval_and_store(&t, &space.default_config);
    sol_search_result r = {.best_time_s = -1}; /* interrupted before the search: nothing found */
    if (!interrupted && !t.failed)
        rc = sol_search(strategy, &space, budget, seed, eval_and_store, &t, &r, err);
    if (isatty(2))
        fprintf(stderr, "\n");
    if (!rc && t.failed)
        rc = SOL_ERR_RUNTIME;
    if (rc)
        goto exit;
    out->pb = pb;
    out->default_s = t.default_s;
    if (r.best_time_s > 0 && t.default_s > 0 && !t.replay &&
        sol_space_encode(&space, &r.best) != sol_space_encode(&space, &space.default_config) && !interrupted)
        confirm_against_default(&bench, &space, &r, out);
    out->best_s = r.best_time_s;
    if (r.best_time_s > 0 && (out->default_s < 0 || r.best_time_s <= out->default_s)) {
        char *json = sol_space_json(&space, &r.best);
        snprintf(out->best_params, sizeof out->best_params, "%s", json ? json : "{}");
        free(json);
    } else { /* nothing beat the default: the default wins */
        char *json = sol_space_json(&space, &space.default_config);
        snprintf(out->best_params, sizeof out->best_params, "%s", json ? json : "{}");
        free(json);
        out->best_s = out->default_s;
    }
    if (out->best_s > 0 && !t.replay) {
        sol_best_row best = {.device_id = device, .median_s = out->best_s, .default_s = out->default_s,
                             .time = (int64_t)time(NULL)};
        snprintf(best.kernel, sizeof best.kernel, "%s", space.kernel);
        snprintf(best.source_hash, sizeof best.source_hash, "%s", source_hash());
        snprintf(best.shape, sizeof best.shape, "%s", out->shape);
        snprintf(best.dtype, sizeof best.dtype, "%s", sol_dtype_name(pb->type));
        snprintf(best.params_json, sizeof best.params_json, "%s", out->best_params);
        rc = sol_db_best_set(db, &best, err);
    }
exit:
    free(t.seen);
    free(t.counted);
    if (bench_ready)
        sol_matmul_bench_free(&bench);
    return rc;
}

/* Distinct (type, N, K) of the matmuls in MODEL's plans. */
typedef struct {
    sol_matmul_problem *pb;
    int cap, n;
} cpu_problems;

static void add_cpu_problem(void *user, const sol_op *op)
{
    cpu_problems *l = user;
    sol_matmul_problem cand = {op->wtype, op->n, op->k, (int)op->m, SOL_ACT_Q8};
    int dup = 0;
    for (int j = 0; j < l->n; j++) /* fields, not memcmp: padding bytes are unspecified */
        dup |= l->pb[j].type == cand.type && l->pb[j].rows == cand.rows && l->pb[j].cols == cand.cols &&
               l->pb[j].m == cand.m && l->pb[j].act == cand.act;
    if (!dup && l->n < l->cap)
        l->pb[l->n++] = cand;
}

static int model_problems(const char *spec, int prefill, sol_matmul_problem *pb, int cap, int *n, sol_err *err)
{
    int rows[2] = {1, prefill};
    cpu_problems l = {pb, cap, 0};
    int rc = cli_plan_matmuls(spec, rows, prefill > 0 ? 2 : 1, add_cpu_problem, &l, err);
    *n = l.n;
    return rc;
}

/* --kernels with --backend cuda: matvec and/or attention, comma separated;
 * 0 with the mask, or a usage error. */
static int cuda_kernels_parse(const char *text, unsigned *mask)
{
    *mask = 0;
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, ",");
        if (len == 6 && !strncmp(p, "matvec", 6))
            *mask |= CLI_TUNE_CUDA_MATVEC;
        else if (len == 9 && !strncmp(p, "attention", 9))
            *mask |= CLI_TUNE_CUDA_ATTENTION;
        else if (len == 14 && !strncmp(p, "rmsnorm_matvec", 14))
            *mask |= CLI_TUNE_CUDA_RMSNORM;
        else
            return cli_usage_error("tune", "--kernels: with --backend cuda, expected matvec, attention, rmsnorm_matvec "
                                   "or a list of them, got \"%.*s\"", (int)len, p);
        p += len + (p[len] == ',');
    }
    return *mask ? 0 : cli_usage_error("tune", "--kernels: empty");
}

int cmd_tune(int argc, char **argv)
{
    enum { O_STRATEGY = 6000, O_BUDGET, O_SEED, O_REPS, O_FORCE, O_SHAPE, O_PREFILL, O_BACKEND, O_KERNELS, O_ACT, O_LANDSCAPE,
           O_BATCHES, O_NO_COUNTERS, O_CTX };
    static const struct option long_opts[] = {
        {"strategy", 1, 0, O_STRATEGY}, {"budget", 1, 0, O_BUDGET},   {"seed", 1, 0, O_SEED},
        {"threads", 1, 0, 't'},         {"reps", 1, 0, O_REPS},       {"force", 0, 0, O_FORCE},
        {"shape", 1, 0, O_SHAPE},       {"prefill", 1, 0, O_PREFILL}, {"backend", 1, 0, O_BACKEND},
        {"kernels", 1, 0, O_KERNELS},   {"activations", 1, 0, O_ACT}, {"landscape", 1, 0, O_LANDSCAPE},
        {"device", 1, 0, OPT_CUDA_DEVICE}, {"batches", 1, 0, O_BATCHES},
        {"no-counters", 0, 0, O_NO_COUNTERS}, {"ctx", 1, 0, O_CTX}, {0, 0, 0, 0}};
    const char *strategy_name = "anneal", *shape = NULL, *kernels = "matvec,matmul", *landscape_path = NULL;
    long long budget = 0, seed = 1, threads = 0, reps = 5, prefill = 0, ctx = CLI_TUNE_CUDA_CTX;
    int force = 0, c, reps_given = 0, no_counters = 0, kernels_given = 0;
    sol_activations act = SOL_ACT_Q8;
    cli_backend_opts backend = {0};
    const char *cpu_only = NULL, *cuda_only = NULL; /* the first such option given */
    unsigned batches = 0xffu;                       /* --batches 1..8 */
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":t:", long_opts, NULL)) != -1) {
        long long *target = c == O_BUDGET ? &budget : c == O_SEED ? &seed : c == 't' ? &threads
                          : c == O_REPS ? &reps : c == O_PREFILL ? &prefill : c == O_CTX ? &ctx : NULL;
        if (target) {
            const char *flag = c == O_BUDGET ? "--budget" : c == O_SEED ? "--seed" : c == 't' ? "--threads"
                             : c == O_REPS ? "--reps" : c == O_CTX ? "--ctx" : "--prefill";
            if (cli_parse_ll("tune", flag, optarg, target))
                return SOL_ERR_USAGE;
            reps_given |= c == O_REPS;
            if (c == 't' || c == O_PREFILL)
                cpu_only = cpu_only ? cpu_only : flag;
            if (c == O_CTX)
                cuda_only = cuda_only ? cuda_only : flag;
            if (c == O_CTX && (*target < 32 || *target > 1 << 20))
                return cli_usage_error("tune", "--ctx: %lld is out of range (32..1048576 cache slots)", *target);
            if (*target < 0 || (c == O_REPS && (*target < 5 || *target > 1000)) ||
                (c == 't' && (*target < 1 || *target > 1024)) || *target > 1000000)
                return cli_usage_error("tune", "%s: %lld is out of range", flag, *target);
            continue;
        }
        switch (c) {
        case O_STRATEGY: strategy_name = optarg; break;
        case O_FORCE: force = 1; break;
        case O_SHAPE: shape = optarg; break;
        case O_KERNELS:
            kernels = optarg;
            kernels_given = 1;
            break;
        case O_LANDSCAPE:
            landscape_path = optarg;
            cpu_only = cpu_only ? cpu_only : "--landscape";
            break;
        case O_ACT:
            if (cli_parse_activations("tune", optarg, &act))
                return SOL_ERR_USAGE;
            cpu_only = cpu_only ? cpu_only : "--activations";
            break;
        case OPT_CUDA_DEVICE:
            if (cli_parse_cuda_opt("tune", c, optarg, &backend) != 1)
                return SOL_ERR_USAGE;
            cuda_only = cuda_only ? cuda_only : "--device";
            break;
        case O_BATCHES: {
            sol_err e = {0};
            if (sol_cuda_mv_batches_parse(optarg, &batches, &e))
                return cli_fail("tune", &e);
            cuda_only = cuda_only ? cuda_only : "--batches";
            break;
        }
        case O_NO_COUNTERS:
            no_counters = 1;
            cuda_only = cuda_only ? cuda_only : "--no-counters";
            break;
        case O_BACKEND:
            if (cli_parse_backend("tune", optarg, &backend.name))
                return SOL_ERR_USAGE;
            break;
        case ':': return cli_usage_error("tune", "%s needs a value", argv[optind - 1]);
        default: return cli_usage_error("tune", "unknown option \"%s\" (see sol tune --help)", argv[optind - 1]);
        }
    }
    const sol_strategy_ops *strategy = sol_strategy_find(strategy_name);
    if (!strategy)
        return cli_usage_error("tune", "--strategy: expected exhaustive, random, anneal or genetic, got \"%s\"",
                               strategy_name);
    if (!shape && optind != argc - 1)
        return cli_usage_error("tune", optind == argc ? "missing MODEL (or --shape)" : "expected one MODEL");
    if (shape && optind != argc)
        return cli_usage_error("tune", "MODEL \"%s\" and --shape: give one (--shape tunes one shape, no model)",
                               argv[optind]);
    if (!cli_backend_is_cpu(&backend)) { /* a plugin's kernels: the CUDA tuner (tune_cuda.c) */
        if (cpu_only)
            return cli_usage_error("tune", "%s: a CPU tuning option (not with --backend %s)", cpu_only, backend.name);
        if (reps_given && reps < 10)
            return cli_usage_error("tune", "--reps: %lld is out of range (at least 10 on a GPU)", reps);
        unsigned gpu_kernels = CLI_TUNE_CUDA_MATVEC | CLI_TUNE_CUDA_ATTENTION | CLI_TUNE_CUDA_RMSNORM;
        if (kernels_given && cuda_kernels_parse(kernels, &gpu_kernels))
            return SOL_ERR_USAGE;
        cli_tune_cuda_opts o = {.backend = backend.name, .model = shape ? NULL : argv[optind], .shape = shape,
                                .device = backend.device, .strategy = strategy, .budget = (int)budget,
                                .reps = reps_given ? (int)reps : CLI_TUNE_CUDA_REPS, .force = force,
                                .seed = (uint64_t)seed, .batches = batches, .no_counters = no_counters,
                                .kernels = gpu_kernels, .ctx = ctx};
        return cli_tune_cuda(&o);
    }
    if (cuda_only)
        return cli_usage_error("tune", "%s: a GPU tuning option (with --backend cuda)", cuda_only);
    if (reps > 64)
        return cli_usage_error("tune", "--reps: %lld is out of range", reps);
    sol_err err = {0};
    sol_matmul_problem problems[64];
    int n = 0, rc;
    if (shape)
        rc = sol_matmul_problem_parse(shape, &problems[n++], &err);
    else
        rc = model_problems(argv[optind], (int)prefill, problems, 64, &n, &err);
    if (rc)
        return cli_fail("tune", &err);
    /* --kernels: matvec = decode shapes (M = 1), matmul = prefill (M > 1) */
    int want_vec = strstr(kernels, "matvec") != NULL, want_mat = strstr(kernels, "matmul") != NULL;
    if (!want_vec && !want_mat)
        return cli_usage_error("tune", "--kernels: expected matvec, matmul or both, got \"%s\"", kernels);
    int kept = 0;
    for (int i = 0; i < n; i++)
        if (problems[i].m > 1 ? want_mat : want_vec) {
            problems[i].act = act;
            problems[kept++] = problems[i];
        }
    n = kept;

    sol_hw hw;
    sol_device_info dev;
    sol_db *db = NULL, *landscape = NULL;
    sol_backend *be = NULL;
    int64_t device = 0;
    struct stat landscape_st;
    if (landscape_path && stat(landscape_path, &landscape_st) != 0)
        return cli_usage_error("tune", "--landscape: %s does not exist", landscape_path);
    shape_result *results = calloc((size_t)n, sizeof *results);
    if (!results)
        return SOL_ERR_RUNTIME;
    sol_hw_detect_cpu(&hw, &err);
    cli_cpu_device(&hw, &dev);
    if ((rc = sol_db_open(NULL, &db, &err)) ||
        (!landscape_path && sol_db_readonly(db) &&
         (rc = sol_fail(&err, SOL_ERR_RUNTIME,
                        "%s is read-only: trials could not be stored, so nothing was measured (make it writable)",
                        sol_db_name(db)))) ||
        (rc = sol_db_device(db, &dev, &device, &err)) ||
        (landscape_path && (rc = sol_db_open(landscape_path, &landscape, &err))) ||
        (backend.threads = (int)threads, rc = cli_backend_open(&backend, &be, &err)))
        goto exit;
    signal(SIGINT, on_sigint);
    sol_perf counters;
    sol_perf_open(&counters); /* said once here, not per trial */
    if (!counters.available)
        fprintf(stderr, "tune: %s\n", counters.why);
    sol_perf_close(&counters);
    fprintf(stderr, "tune: %d shape(s), strategy %s, budget %s, %d threads, kernel source %s\n", n, strategy->name,
            budget ? "as given" : "the whole space", be->threads, source_hash());
    int done = 0;
    for (int i = 0; i < n && !rc && !interrupted; i++, done++) {
        char label[64];
        sol_matmul_problem_format(&problems[i], label, sizeof label);
        snprintf(results[i].shape, sizeof results[i].shape, "%s", label);
        rc = tune_shape(be, db, landscape, device, &problems[i], strategy, (int)budget, (uint64_t)seed, (int)reps, force,
                        (size_t)(hw.llc_bytes.value > 0 ? hw.llc_bytes.value : 32 << 20), &results[i], &err);
    }
    if (!rc) {
        printf("%-8s %-16s %12s %12s %8s  %s\n", "type", "shape NxKxM", "default", "tuned", "speed-up", "parameters");
        for (int i = 0; i < done; i++)
            if (results[i].pb)
                printf("%-8s %-16s %9.1f us %9.1f us %7.2fx  %s\n", sol_dtype_name(results[i].pb->type),
                       results[i].shape, results[i].default_s * 1e6, results[i].best_s * 1e6,
                       results[i].best_s > 0 ? results[i].default_s / results[i].best_s : 0, results[i].best_params);
        if (interrupted)
            fprintf(stderr, "tune: interrupted; measured trials are kept, a rerun resumes\n");
    }
exit:
    if (be)
        be->destroy(be);
    sol_db_close(db);
    sol_db_close(landscape);
    free(results);
    return rc ? cli_fail("tune", &err) : (interrupted ? 130 : 0);
}
