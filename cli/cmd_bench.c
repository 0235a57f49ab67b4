/* sol bench: llama-bench with the roofline beside each number. Prefill
 * (ppP) and decode (tgN) tests per thread count, repetitions after a
 * warm-up, tok/s with its spread, achieved GB/s from the plan's bytes, the
 * speed of light on this CPU's measured (or estimated) ceilings, and every
 * result stored in the database. */
#include <ctype.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/bench_output.h"
#include "cli/cli.h"
#include "db/db.h"
#include "kernels/cpu_probe.h"
#include "engine/engine.h"
#include "engine/kv_state.h"
#include "cli/bench_experts.h"
#include "cli/bench_turns.h"
#include "models/gguf.h"
#include "util/clock.h"
#include "util/file_id.h"
#include "util/hash.h"

void usage_bench(FILE *f)
{
    fprintf(f, "usage: sol bench MODEL.gguf [-p 512] [-n 128] [-r 5] [-t THREADS,...] [-d DEPTH,...] [--kvtype f16]\n"
               "                 [--activations q8|f32] [--backend cpu|cuda|PLUGIN]\n"
               "                 [-o md|json|jsonl|csv|sql] [--no-store] [--no-tuned] [--mapped-weights]\n\n"
               "Runs ppP (prefill P tokens into an empty cache) and tgN (N single-token decode\n"
               "steps from an empty cache) for each thread count: one warm-up, then R timed\n"
               "repetitions. Prints tok/s (mean and standard deviation), achieved GB/s (bytes\n"
               "the op plan moves / measured time), the speed-of-light tok/s of the same plans\n"
               "on this CPU (measured by `sol hw probe`, else estimated; the ceiling column\n"
               "says which) and %% of it. Every row is stored in the database unless --no-store.\n"
               "-p 0 or -n 0 skips that test. -d D1,D2,... runs each test again after D tokens\n"
               "(prefilled before each repetition, untimed) are in the cache, as llama-bench -d:\n"
               "tests ppP@dD and tgN@dD, json field n_depth. --fill repeat fills the depth by\n"
               "copying the rows of a 512-token prefill over and over instead of prefilling it all\n"
               "(a decode step's cost does not depend on the values; long depths in seconds).\n"
               "--turns N --turn-tokens T times a conversation instead: turn i prefills T new\n"
               "tokens after (i-1) T of history, to its first token three ways: the history\n"
               "recomputed, its KV kept in memory, its KV loaded from the session store on disk\n"
               "(sol chat --session's segments); -r repetitions, medians (sol analyze --turns prices\n"
               "the same shape).\n"
               "--batch B1,B2,... decodes B sequences in lockstep instead: -n steps in 20 episodes\n"
               "(at most 100 steps each; each a fresh 8-token random prompt per sequence), every\n"
               "sequence fed a random token each step. It reports tok/s of all B (-o json also the\n"
               "bytes the steps' plans move and the achieved GB/s) and, on a MoE model, the\n"
               "distinct experts each layer read per step (counted from the router's choices; mean\n"
               "and 95%% interval over the episodes' means) beside the analyzer's E(1-(1-k/E)^B),\n"
               "what the run's own routing predicts, and the expert bytes. --check also decodes 12\n"
               "steps of each batch and compares every sequence's logits with the sequence decoded\n"
               "alone on the same backend (max relative error; -o json check_max_rel_err).\n"
               "The winners of `sol tune` for this CPU are used\n"
               "(stderr says how many shapes are tuned); --no-tuned runs the defaults.\n"
               "Weights are copied into huge pages; --mapped-weights computes from the file\n"
               "mapping instead (4 KiB pages), for comparison. Quantised weights meet 8-bit\n"
               "activations in integer dots unless --activations f32. Before each decode\n"
               "repetition a streaming read (8x the LLC, at most 1 GiB or 2x the LLC) is timed in the same run; stderr and\n"
               "-o json report decode's bandwidth against it (read_check_gb_per_s, read_check_ratio),\n"
               "since a shared machine's bandwidth moves between a stored probe and now.\n"
               "json, jsonl, csv and sql use llama-bench's field names and types (avg_ts,\n"
               "stddev_ts, samples_ns, n_prompt, n_gen, model_size, ...), sol's own fields after\n"
               "them; sql loads into sqlite3 as table llama_bench.\n"
               "Each test's per-op times (the engine's timing ring) are stored per op class\n"
               "(kind, type, rows per step, size). When earlier runs stored some for this device,\n"
               "backend and thread count, each test also shows the calibrated prediction from\n"
               "them (never from the run being measured): the pred t/s column, and in json\n"
               "predicted_tokens_per_s and op_groups (predicted and measured seconds per\n"
               "repetition per op group; stderr prints the same); \"-\" when there is none.\n\n"
               "options beyond the above:\n" CLI_BACKEND_HELP CLI_CUDA_HELP
               "  --kv SCHEME           KV scheme to run (as sol run --kv: a GGUF's own or a narrower\n"
               "                        window; cla and local:W/E on sol synth models)\n"
               "  --hw NAME             hardware entry the SOL columns use (default: this CPU, or\n"
               "                        the GPU's entry with its `sol hw probe` figures)\n");
}

typedef struct {
    const char *model;
    long long prompt, gen, reps;
    int threads[16], n_threads;
    int depths[16], n_depths; /* -d: tokens in the cache before each test */
    int fill_repeat;          /* --fill repeat: the depth's rows copied from a short prefill */
    long long turns, turn_tokens; /* --turns N --turn-tokens T: bench_turns.c */
    int batches[16], n_batches;   /* --batch: bench_experts.c */
    int check;                    /* --check: batched logits against each sequence alone */
    sol_dtype kvtype;
    sol_activations activations;
    bench_format format;
    int store, no_tuned, mapped;
    const char *backend, *hw_name;
    cli_backend_opts cuda; /* --device, --no-graph, --profile-every, --gemm */
    const char *kv; /* --kv: the scheme to run (NULL: the model's own) */
} bench_opts;

typedef struct {
    const sol_hw *hw;
    sol_engine *e;
    sol_op_table *ops;  /* per-op times by class; NULL in the warm-up */
    double *op_s;       /* the ring's latest step, max_ops of them */
    double bytes, predicted_s, op_sum_s;
    int untimed_steps;   /* replayed as CUDA graphs: no op times, left out of ops */
    double kv_read_plan; /* the last step's attention KV bytes, as its plan counts them */
    int failed, rows;
} step_totals;

/* The step's bytes and speed of light, and its per-op times (from the
 * engine's timing ring: this thread just published the step) by class. */
static void on_step(void *user, const sol_plan *plan, double seconds)
{
    step_totals *t = user;
    sol_step_cost cost;
    sol_err err = {0};
    if (t->failed || sol_cost_plan(plan, t->hw, &cost, &err)) {
        t->failed = 1;
        return;
    }
    t->bytes += cost.bytes;
    t->predicted_s += cost.sol_time_s;
    t->rows = plan->params.n_tokens;
    t->kv_read_plan = 0;
    for (int i = 0; i < plan->n_ops; i++)
        t->kv_read_plan += plan->ops[i].kind == SOL_OP_ATTENTION ? plan->ops[i].kv_bytes : 0;
    sol_step_timing snap = {0};
    sol_timing_ring *ring = sol_engine_timing(t->e);
    if (t->ops && (sol_timing_latest(ring, &snap, t->op_s, ring->max_ops) != 0 || snap.total_s != seconds))
        t->failed = 1;
    else if (t->ops && !snap.ops_timed)
        t->untimed_steps++;
    else if (t->ops && sol_op_table_add_step(t->ops, plan, &cost, snap.op_s, snap.n_ops, 0, &err))
        t->failed = 1;
    for (int i = 0; t->ops && !t->failed && snap.ops_timed && i < snap.n_ops; i++)
        t->op_sum_s += snap.op_s[i];
    sol_step_cost_free(&cost);
}

/* Identity of a model file (util/file_id.h). */
static void model_hash(const char *path, char *out, int cap)
{
    snprintf(out, (size_t)cap, "%016llx", (unsigned long long)sol_file_identity(path));
}

/* Identity of a plan: every op's kind, shape and types. */
static void plan_hash(const sol_plan *plan, char *out, int cap)
{
    uint64_t h = SOL_FNV1A_INIT;
    for (int i = 0; i < plan->n_ops; i++) {
        const sol_op *op = &plan->ops[i];
        int64_t key[7] = {op->kind, op->m, op->n, op->k, op->wtype, op->atype, op->kvtype};
        h = sol_fnv1a(h, key, sizeof key);
    }
    snprintf(out, (size_t)cap, "%016llx", (unsigned long long)h);
}

typedef struct {
    int64_t *samples_ns; /* the caller's array of reps: each repetition's time */
    sol_op_table ops;    /* per-op times by class and group over the repetitions */
    double gbs, sol_tps;
    double read_gbs, read_min, read_max; /* the read check between repetitions; 0 = none */
    double read_ratio;                   /* median over repetitions of achieved / that repetition's read */
    double kv_read, kv_read_plan;        /* the test's last step: attention KV bytes, engine and plan */
} test_stats;

/* One test: warm-up + reps of `tokens` tokens, prefill in one eval or
 * decode one token at a time. */
/* The cache filled to depth, untimed: prefilled, or (repeat) the rows of
 * a short prefill copied over and over. SimLayerKV then scores. */
static int fill_depth(sol_engine *e, const int32_t *ids, int depth, int repeat, int32_t *next, sol_err *err)
{
    enum { REPEAT_BASE = 512 };
    int real = repeat && depth > REPEAT_BASE ? REPEAT_BASE : depth;
    int rc = sol_engine_eval(e, ids, real, 0, NULL, NULL, next, err);
    if (!rc && real < depth)
        rc = sol_engine_kv_repeat(e, depth, err);
    return rc ? rc : sol_engine_prompt_done(e, err);
}

static int run_test(sol_engine *e, const sol_hw *hw, int prefill, int tokens, int depth, int fill_repeat, int reps,
                    const char *label, sol_read_check *check, test_stats *st, sol_err *err)
{
    int vocab = sol_engine_model(e)->vocab, n_ids = tokens > depth ? tokens : depth;
    int32_t *ids = malloc((size_t)n_ids * sizeof *ids);
    double *read = calloc((size_t)reps, sizeof *read);
    double *ratio = calloc((size_t)reps, sizeof *ratio);
    double *op_s = malloc((size_t)sol_engine_timing(e)->max_ops * sizeof *op_s);
    if (!ids || !read || !ratio || !op_s) {
        free(ids);
        free(read);
        free(ratio);
        free(op_s);
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    }
    for (int i = 0; i < n_ids; i++)
        ids[i] = (int32_t)((i * 7919 + 13) % vocab);
    double bytes = 0, predicted = 0, seconds = 0;
    int rc = 0;
    for (int rep = -1; rep < reps && !rc; rep++) { /* rep -1: warm-up */
        step_totals totals = {.hw = hw, .e = e, .ops = rep >= 0 ? &st->ops : NULL, .op_s = op_s};
        int32_t next = ids[0];
        fprintf(stderr, isatty(2) ? "\rbench: %s %s %d/%d   " : "bench: %s %s %d/%d\n", label,
                rep < 0 ? "warm-up" : "rep", rep < 0 ? 0 : rep + 1, reps);
        sol_engine_reset(e);
        /* the cache filled to the depth, untimed (the warm-up starts empty) */
        if (depth > 0 && rep >= 0 && (rc = fill_depth(e, ids, depth, fill_repeat, &next, err)))
            break;
        if (check && rep >= 0) { /* this repetition's bandwidth, measured just before it */
            double pass[3];
            for (int i = 0; i < 3; i++)
                pass[i] = sol_read_check_run(check);
            read[rep] = sol_median(pass, 3, NULL, NULL);
        }
        double t0 = sol_now_s();
        if (prefill)
            rc = sol_engine_eval(e, ids, tokens, 0, on_step, &totals, &next, err);
        for (int i = 0; !prefill && i < tokens && !rc; i++)
            rc = sol_engine_eval(e, &next, 1, 0, on_step, &totals, &next, err);
        double dt = sol_now_s() - t0;
        if (!rc && totals.failed)
            rc = sol_fail(err, SOL_ERR_RUNTIME, "costing the plan on %s or reading its op times failed", hw->name);
        if (rep >= 0) {
            st->samples_ns[rep] = llround(dt * 1e9);
            if (check)
                ratio[rep] = totals.bytes / dt / read[rep];
            seconds += dt;
            bytes += totals.bytes;
            predicted += totals.predicted_s;
            st->kv_read = sol_engine_kv_read_last_step(e);
            st->kv_read_plan = totals.kv_read_plan;
            /* what the repetition spent outside the ops: plan building,
             * costing, the loop (its op count came with each step); only
             * when every step timed its ops (not with CUDA graphs) */
            sol_op_class_sum over = {.key = {.kind = SOL_CALIB_OVERHEAD, .rows = totals.rows},
                                     .group = SOL_GROUP_OTHER, .measured_s = dt - totals.op_sum_s};
            if (!rc && totals.untimed_steps == 0)
                rc = sol_op_table_add(&st->ops, &over, err);
        }
    }
    free(op_s);
    if (isatty(2))
        fprintf(stderr, "\r%60s\r", "");
    if (!rc) {
        st->gbs = bytes / seconds / 1e9;
        st->sol_tps = tokens * reps / predicted;
        if (check) {
            st->read_gbs = sol_median(read, reps, &st->read_min, &st->read_max) / 1e9;
            st->read_ratio = sol_median(ratio, reps, NULL, NULL);
        }
        st->read_min /= 1e9;
        st->read_max /= 1e9;
    }
    free(ids);
    free(read);
    free(ratio);
    return rc;
}

static int parse_threads(const char *text, bench_opts *o)
{
    long long v[16];
    int rc = cli_parse_int_list("bench", "-t", text, 1, 1024, v, 16, &o->n_threads);
    for (int i = 0; !rc && i < o->n_threads; i++)
        o->threads[i] = (int)v[i];
    return rc;
}

static int parse_depths(const char *text, bench_opts *o)
{
    long long v[16];
    int rc = cli_parse_int_list("bench", "-d", text, 0, 1000000, v, 16, &o->n_depths);
    for (int i = 0; !rc && i < o->n_depths; i++)
        o->depths[i] = (int)v[i];
    return rc;
}

static int parse_batches(const char *text, bench_opts *o)
{
    long long v[16];
    int rc = cli_parse_int_list("bench", "--batch", text, 1, 1024, v, 16, &o->n_batches);
    for (int i = 0; !rc && i < o->n_batches; i++)
        o->batches[i] = (int)v[i];
    return rc;
}

static int parse_opts(int argc, char **argv, bench_opts *o)
{
    enum { O_KVTYPE = 5000, O_NOSTORE, O_NOTUNED, O_MAPPED, O_ACT, O_BACKEND, O_HW, O_KV, O_FILL, O_TURNS, O_TT, O_BATCH, O_CHECK };
    static const struct option long_opts[] = {{"kvtype", 1, 0, O_KVTYPE},     {"no-store", 0, 0, O_NOSTORE},
                                              {"no-tuned", 0, 0, O_NOTUNED},  {"mapped-weights", 0, 0, O_MAPPED},
                                              {"activations", 1, 0, O_ACT},   {"backend", 1, 0, O_BACKEND}, {"hw", 1, 0, O_HW},
                                              {"kv", 1, 0, O_KV},             {"fill", 1, 0, O_FILL},
                                              {"turns", 1, 0, O_TURNS},       {"turn-tokens", 1, 0, O_TT},
                                              {"batch", 1, 0, O_BATCH},       {"check", 0, 0, O_CHECK}, CLI_CUDA_LONG_OPTS, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->prompt = 512;
    o->gen = 128;
    o->reps = 5;
    o->kvtype = SOL_DT_F16;
    o->store = 1;
    o->cuda.profile_every = CLI_CUDA_PROFILE_EVERY;
    int c;
    opterr = 0;
    optind = 1;
    o->n_depths = 1; /* depth 0 */
    while ((c = getopt_long(argc, argv, ":p:n:r:t:o:d:", long_opts, NULL)) != -1) {
        long long *target = c == 'p' ? &o->prompt : c == 'n' ? &o->gen : c == 'r' ? &o->reps : NULL;
        switch (c) {
        case 'p':
        case 'n':
        case 'r': {
            char flag[3] = {'-', (char)c, 0};
            if (cli_parse_ll("bench", flag, optarg, target))
                return SOL_ERR_USAGE;
            if (*target < (c == 'r') || *target > 100000)
                return cli_usage_error("bench", "%s: %lld is out of range", flag, *target);
            break;
        }
        case 't':
            if (parse_threads(optarg, o))
                return SOL_ERR_USAGE;
            break;
        case 'd':
            if (parse_depths(optarg, o))
                return SOL_ERR_USAGE;
            break;
        case O_BATCH:
            if (parse_batches(optarg, o))
                return SOL_ERR_USAGE;
            break;
        case O_CHECK: o->check = 1; break;
        case 'o':
            if (!strcmp(optarg, "md"))
                o->format = BENCH_MD;
            else if (!strcmp(optarg, "json"))
                o->format = BENCH_JSON;
            else if (!strcmp(optarg, "jsonl"))
                o->format = BENCH_JSONL;
            else if (!strcmp(optarg, "csv"))
                o->format = BENCH_CSV;
            else if (!strcmp(optarg, "sql"))
                o->format = BENCH_SQL;
            else
                return cli_usage_error("bench", "-o: expected md, json, jsonl, csv or sql, got \"%s\"", optarg);
            break;
        case O_KVTYPE:
            if (cli_parse_kvtype("bench", optarg, &o->kvtype))
                return SOL_ERR_USAGE;
            break;
        case O_NOSTORE: o->store = 0; break;
        case O_BACKEND:
            if (cli_parse_backend("bench", optarg, &o->backend))
                return SOL_ERR_USAGE;
            break;
        case O_HW: o->hw_name = optarg; break;
        case O_KV: o->kv = optarg; break;
        case O_TURNS:
        case O_TT: {
            long long *v = c == O_TURNS ? &o->turns : &o->turn_tokens;
            if (cli_parse_ll("bench", c == O_TURNS ? "--turns" : "--turn-tokens", optarg, v))
                return SOL_ERR_USAGE;
            if (*v < 1 || *v > 100000)
                return cli_usage_error("bench", "%s: %lld is out of range (1..100000)",
                                       c == O_TURNS ? "--turns" : "--turn-tokens", *v);
            break;
        }
        case O_FILL:
            if (strcmp(optarg, "prefill") && strcmp(optarg, "repeat"))
                return cli_usage_error("bench", "--fill: expected prefill or repeat, got \"%s\"", optarg);
            o->fill_repeat = !strcmp(optarg, "repeat");
            break;
        case O_NOTUNED: o->no_tuned = 1; break;
        case O_MAPPED: o->mapped = 1; break;
        case O_ACT:
            if (cli_parse_activations("bench", optarg, &o->activations))
                return SOL_ERR_USAGE;
            break;
        case ':': return cli_usage_error("bench", "%s needs a value", argv[optind - 1]);
        default:
            switch (cli_parse_cuda_opt("bench", c, optarg, &o->cuda)) {
            case 1: break;
            case 2: return SOL_ERR_USAGE;
            default: return cli_usage_error("bench", "unknown option \"%s\" (see sol bench --help)", argv[optind - 1]);
            }
        }
    }
    if (optind == argc)
        return cli_usage_error("bench", "missing MODEL (a .gguf file)");
    if (optind != argc - 1)
        return cli_usage_error("bench", "expected one MODEL, got extra \"%s\"", argv[optind + 1]);
    if (o->prompt == 0 && o->gen == 0)
        return cli_usage_error("bench", "-p 0 and -n 0: nothing to run");
    o->model = argv[optind];
    o->cuda.model = o->model; /* "cuda: N of M decode matmul shapes tuned" */
    o->cuda.no_tuned = o->no_tuned;
    if (o->check && o->n_batches == 0)
        return cli_usage_error("bench", "--check compares batched decoding: it needs --batch");
    return 0;
}

/* llama-bench's model_size and model_n_params: bytes and elements of all
 * the file's tensors. */
static int model_totals(const char *path, int64_t *bytes, int64_t *params, sol_err *err)
{
    sol_gguf g;
    int rc = sol_gguf_open(&g, path, err);
    if (rc)
        return rc;
    *bytes = *params = 0;
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        *bytes += (int64_t)g.tensors[i].n_bytes;
        *params += (int64_t)g.tensors[i].n_elems;
    }
    sol_gguf_close(&g);
    return 0;
}

static void upper_copy(char *out, size_t cap, const char *text)
{
    size_t i = 0;
    for (; text[i] && i + 1 < cap; i++)
        out[i] = (char)toupper((unsigned char)text[i]);
    out[i] = '\0';
}

/* What stays the same for every test of one thread count: the machine and
 * the settings, under llama-bench's names (bench_output.h); r holds the
 * model's totals already. */
static void result_setup(bench_result *r, const bench_opts *o, const sol_run_row *row, const sol_model *m,
                         const sol_backend *be, const sol_device_info *dev, const sol_hw *cpu_hw, const sol_hw *hw,
                         int chunk)
{
    int on_gpu = !strcmp(dev->backend, "cuda");
    char wtype[16];
    upper_copy(wtype, sizeof wtype, row->wtype);
    r->model_filename = o->model;
    snprintf(r->cpu_info, sizeof r->cpu_info, "%s", cpu_hw->display_name);
    char *suffix = strstr(r->cpu_info, " (this machine)"); /* the detected entry's display name */
    if (suffix)
        *suffix = '\0';
    snprintf(r->gpu_info, sizeof r->gpu_info, "%s", on_gpu ? dev->name : "");
    upper_copy(r->backends, sizeof r->backends, be->name);
    snprintf(r->type_k, sizeof r->type_k, "%s", row->kvtype);
    snprintf(r->type_v, sizeof r->type_v, "%s", row->kvtype);
    r->n_batch = r->n_ubatch = chunk;
    r->n_threads = row->threads;
    r->n_gpu_layers = on_gpu ? m->n_layers + 1 : 0; /* every layer and the output, as llama.cpp counts */
    r->use_mmap = o->mapped;
    r->backend = row->backend;
    r->model = row->model;
    r->model_hash = row->model_hash;
    r->wtype = row->wtype;
    r->sol_version = row->sol_version;
    r->ceiling_source = hw->mem_bw.source;
    r->ceiling_gb_per_s = hw->mem_bw.value / 1e9;
    double n = (double)r->model_n_params;
    snprintf(r->model_type, sizeof r->model_type, "%s %.3g%s %s", m->arch, n >= 1e9 ? n / 1e9 : n / 1e6,
             n >= 1e9 ? "B" : "M", wtype);
}

/* The test's op classes as database rows (groups merged); *out malloc'd. */
static int op_time_rows(const sol_op_table *t, sol_op_time_row **out, int *n, sol_err *err)
{
    sol_op_table merged = {0};
    int rc = 0;
    for (int i = 0; i < t->n && !rc; i++) {
        sol_op_class_sum item = t->items[i];
        item.group = -1;
        rc = sol_op_table_add(&merged, &item, err);
    }
    sol_op_time_row *rows = rc ? NULL : calloc((size_t)merged.n + 1, sizeof *rows);
    if (!rc && !rows)
        rc = sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    for (int i = 0; !rc && i < merged.n; i++) {
        const sol_op_class_sum *c = &merged.items[i];
        sol_op_time_row *r = &rows[i];
        snprintf(r->kind, sizeof r->kind, "%s", sol_op_class_kind_name(c->key.kind));
        snprintf(r->dtype, sizeof r->dtype, "%s", c->key.dtype);
        r->rows = c->key.rows;
        r->size_class = c->key.size_class;
        r->bytes = c->bytes;
        r->flops = c->flops;
        r->roofline_s = c->roofline_s;
        r->measured_s = c->measured_s;
        r->count = c->count;
    }
    *n = rc ? 0 : merged.n;
    *out = rows;
    sol_op_table_free(&merged);
    return rc;
}

/* The calibrated prediction of a test from earlier runs: 1 when there is
 * one; a class it lacks is named on stderr. */
static int predict_test(const sol_calibration *calib, const sol_op_table *ops, const char *label,
                        sol_calibrated_step *out)
{
    sol_err err = {0};
    if (calib->runs == 0)
        return 0;
    if (sol_calibrated_table(calib, ops, out, &err)) {
        fprintf(stderr, "bench: %s: no calibrated prediction: %s\n", label, err.msg);
        return 0;
    }
    return 1;
}

/* stderr: per op group, predicted beside measured, ms per repetition. */
static void print_groups(const char *label, const sol_calibrated_step *c, int reps)
{
    fprintf(stderr, "bench: %s: calibrated / measured ms per repetition:", label);
    for (int g = 0; g < SOL_GROUP_COUNT; g++)
        if (c->group_s[g] > 0 || c->group_measured_s[g] > 0)
            fprintf(stderr, " %s %.3g/%.3g", sol_op_group_name((sol_op_group)g), 1e3 * c->group_s[g] / reps,
                    1e3 * c->group_measured_s[g] / reps);
    fprintf(stderr, "\n");
}

/* Stores the test's run row and its op classes together. */
static int store_test(sol_db *db, const sol_run_row *row, const sol_op_table *ops, sol_err *err)
{
    sol_op_time_row *rows = NULL;
    int n = 0;
    int rc = op_time_rows(ops, &rows, &n, err);
    if (!rc)
        rc = sol_db_run_add_ops(db, row, rows, n, NULL, err);
    free(rows);
    return rc;
}

/* Runs the tests for one thread count, appending rows. */
static int bench_threads(const bench_opts *o, int threads, const sol_hw *cpu_hw, const sol_tuning *tuning,
                         sol_db *db, cJSON *json_rows, int *printed, sol_err *err)
{
    cli_backend_opts bo = o->cuda; /* its CUDA options, and: */
    bo.name = o->backend;
    bo.threads = threads;
    bo.tuning = tuning;
    bo.mapped_weights = o->mapped;
    sol_backend *be = NULL;
    sol_hw hw_entry;
    const sol_hw *hw = &hw_entry; /* what the SOL columns are costed on */
    sol_device_info dev;
    int64_t device_id = 0;
    int rc = cli_backend_open(&bo, &be, err);
    if (!rc && !(rc = cli_backend_hw(&bo, o->hw_name, &hw_entry, &dev, err)) && db)
        rc = sol_db_device(db, &dev, &device_id, err);
    if (rc) {
        if (be)
            be->destroy(be);
        return rc;
    }
    sol_engine_config cfg;
    sol_engine_defaults(&cfg);
    cfg.backend = be;
    cfg.activations = o->activations;
    cfg.kvtype = o->kvtype;
    cfg.kv = o->kv;
    cfg.chunk = o->prompt > 64 ? (int)o->prompt : 64;
    cfg.sampler.temperature = 0;
    int deepest = 0;
    for (int i = 0; i < o->n_depths; i++)
        deepest = o->depths[i] > deepest ? o->depths[i] : deepest;
    cfg.ctx = (o->prompt > o->gen ? o->prompt : o->gen) + deepest + 1;
    sol_engine *e = NULL;
    if ((rc = sol_engine_open(o->model, &cfg, &e, err))) {
        be->destroy(be);
        return rc;
    }
    const sol_model *m = sol_engine_model(e);
    bench_result res = {0};
    int64_t *samples_ns = calloc((size_t)o->reps, sizeof *samples_ns);
    /* decode is memory-bound: its bandwidth is compared with a streaming read
     * measured in the same run, not only with the stored probe, because this
     * kind of machine moves: 8x the LLC, but no more than 1 GiB or twice the
     * LLC, whichever is larger (a 480 MiB L3 made 8x a 3.8 GB buffer, ~20 GB
     * under ThreadSanitizer), and at least 256 MiB */
    sol_read_check *check = NULL; /* of the CPU's memory: for the CPU backend */
    int is_cpu = cli_backend_is_cpu(&bo);
    int64_t llc = (int64_t)cpu_hw->cache_bytes[2], cap = 2 * llc > ((int64_t)1 << 30) ? 2 * llc : (int64_t)1 << 30;
    int64_t check_bytes = 8 * llc < cap ? 8 * llc : cap;
    if (check_bytes < ((int64_t)256 << 20))
        check_bytes = (int64_t)256 << 20;
    if (!samples_ns)
        rc = sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    if (rc || (rc = model_totals(o->model, &res.model_size, &res.model_n_params, err)) ||
        (o->gen > 0 && is_cpu && (rc = sol_read_check_open(be->threads > 0 ? be->threads : 1, check_bytes, &check, err)))) {
        free(samples_ns);
        sol_engine_close(e);
        be->destroy(be);
        return rc;
    }
    sol_run_row row = {.device_id = device_id, .threads = sol_engine_backend(e)->threads,
                       .reps = (int)o->reps, .time = (int64_t)time(NULL)};
    sol_calibration calib = {0}; /* from earlier runs only: read before this one measures */
    snprintf(row.model, sizeof row.model, "%s", m->name);
    model_hash(o->model, row.model_hash, sizeof row.model_hash);
    /* the activations change speed and answers, so they are part of the
     * backend's name in the stored row */
    snprintf(row.backend, sizeof row.backend, "%s.%s", be->name, cli_activations_name(o->activations));
    if (db && (rc = cli_calibration_load(db, device_id, row.backend, row.threads, &calib, err))) {
        free(samples_ns);
        sol_read_check_close(check);
        sol_engine_close(e);
        be->destroy(be);
        return rc;
    }
    snprintf(row.wtype, sizeof row.wtype, "%s", sol_dtype_name(m->wtype));
    snprintf(row.kvtype, sizeof row.kvtype, "%s", sol_dtype_name(o->kvtype));
    snprintf(row.sol_version, sizeof row.sol_version, "%s", SOL_VERSION);
    snprintf(row.git_commit, sizeof row.git_commit, "%s", SOL_GIT_COMMIT);
    result_setup(&res, o, &row, m, be, &dev, cpu_hw, hw, cfg.chunk);
    sol_kv_scheme kv = *sol_engine_kv(e);
    sol_kv_format(&kv, row.kv_scheme, sizeof row.kv_scheme);
    res.kv_scheme = row.kv_scheme;
    res.kv_bytes_allocated = sol_engine_kv_allocated(e);
    sol_kv_scheme priced = kv;
    priced.lazy_layers = NULL; /* the analyzer's SimLayerKV: floor(L * F) lazy layers, whichever they are */
    res.kv_bytes_predicted = sol_kv_cache_bytes(&priced, m, o->kvtype, sol_engine_ctx(e));
    sol_plan decode_plan;
    sol_plan_params dp = {.batch = 1, .n_tokens = 1, .wtype = m->wtype, .atype = SOL_DT_F32, .kvtype = o->kvtype,
                          .tp = 1};
    if (cli_backend_is_cpu(&bo) && sol_plan_build(m, &kv, &dp, &decode_plan, err) == 0) { /* cuda: said at open */
        int tuned, total;
        cli_tuned_shapes(tuning, &decode_plan, o->activations, &tuned, &total);
        fprintf(stderr, "bench: %d threads, %d of %d decode matmul shapes tuned%s\n", sol_engine_backend(e)->threads,
                tuned, total, o->no_tuned ? " (--no-tuned)" : "");
        sol_plan_free(&decode_plan);
    }
    for (int t = 0; t < 2 * o->n_depths && !rc; t++) {
        int prefill = t % 2 == 0, tokens = (int)(prefill ? o->prompt : o->gen), depth = o->depths[t / 2];
        if (tokens == 0)
            continue;
        snprintf(row.test, sizeof row.test, depth ? "%s%d@d%d" : "%s%d", prefill ? "pp" : "tg", tokens, depth);
        char label[48];
        snprintf(label, sizeof label, "%s t=%d", row.test, row.threads);
        test_stats stats = {.samples_ns = samples_ns};
        sol_calibrated_step predicted;
        res.test_time = (int64_t)time(NULL);
        if ((rc = run_test(e, hw, prefill, tokens, depth, o->fill_repeat, (int)o->reps, label,
                           prefill ? NULL : check, &stats, err))) {
            sol_op_table_free(&stats.ops);
            break;
        }
        res.calibrated = predict_test(&calib, &stats.ops, label, &predicted) ? &predicted : NULL;
        if (res.calibrated)
            print_groups(label, &predicted, (int)o->reps);
        if (stats.read_gbs > 0)
            fprintf(stderr,
                    "bench: %s: streaming read measured before each repetition %.1f GB/s (median of %lld; "
                    "%.1f-%.1f); decode achieved %.1f GB/s; per repetition, achieved / its read: median %.0f%%\n",
                    label, stats.read_gbs, o->reps, stats.read_min, stats.read_max, stats.gbs,
                    100 * stats.read_ratio);
        res.test = row.test;
        res.n_prompt = row.n_prompt = prefill ? tokens : 0;
        res.n_gen = row.n_gen = prefill ? 0 : tokens;
        res.n_depth = depth;
        res.samples_ns = samples_ns;
        res.n_samples = (int)o->reps;
        res.achieved_gb_per_s = row.achieved_gbs = stats.gbs;
        res.sol_tokens_per_s = row.sol_tokens_per_s = stats.sol_tps;
        res.read_check_gb_per_s = stats.read_gbs;
        res.kv_read_bytes_last_step = stats.kv_read;
        res.kv_bytes_allocated = sol_engine_kv_allocated(e); /* after the test: SimLayerKV's lazy layers shrank */
        res.kv_read_bytes_last_step_plan = stats.kv_read_plan;
        res.read_check_ratio = stats.read_ratio;
        bench_ts_stats(&res, &row.tokens_per_s, &row.tokens_per_s_stddev);
        row.sol_percent = 100 * row.tokens_per_s / stats.sol_tps;
        /* the plan of the first decode step identifies the test's shapes */
        sol_plan plan;
        sol_plan_params p = {.batch = 1, .n_tokens = prefill ? tokens : 1, .pos = depth, .wtype = m->wtype,
                             .atype = SOL_DT_F32, .kvtype = o->kvtype, .tp = 1,
                             .int8_dots_below = be->activations == SOL_ACT_Q8 ? be->int8_dots_below : 0};
        if (sol_plan_build(m, &kv, &p, &plan, err) == 0) {
            plan_hash(&plan, row.plan_hash, sizeof row.plan_hash);
            sol_plan_free(&plan);
        }
        if (db)
            rc = store_test(db, &row, &stats.ops, err);
        sol_op_table_free(&stats.ops);
        if (rc)
            break;
        if (o->format == BENCH_JSON) {
            cJSON *item = bench_result_json(&res);
            cli_add_simlayer_json(item, e); /* the lazy layers this test decoded with */
            cJSON_AddItemToArray(json_rows, item);
        }
        else
            bench_print_row(stdout, o->format, &res, !(*printed)++);
    }
    free(samples_ns);
    cli_calibration_free(&calib);
    sol_read_check_close(check);
    sol_engine_close(e);
    be->destroy(be);
    return rc;
}

/* --batch: an engine per batch size, its experts counted (bench_experts.c). */
static int bench_batches(const bench_opts *o, const sol_tuning *tuning, sol_err *err)
{
    cli_backend_opts bo = o->cuda; /* its CUDA options, and: */
    bo.name = o->backend;
    bo.threads = o->threads[0];
    bo.tuning = tuning;
    bo.mapped_weights = o->mapped;
    sol_backend *be = NULL;
    int rc = cli_backend_open(&bo, &be, err);
    if (rc)
        return rc;
    cli_experts_opts x = {.model = o->model, .n_batches = o->n_batches, .prompt = 8, .steps = (int)o->gen,
                          .format_json = o->format == BENCH_JSON, .check = o->check};
    sol_engine_defaults(&x.engine);
    x.engine.backend = be;
    x.engine.kvtype = o->kvtype;
    x.engine.kv = o->kv;
    x.engine.activations = o->activations;
    memcpy(x.batches, o->batches, sizeof x.batches);
    rc = cli_bench_experts(&x, err);
    be->destroy(be);
    return rc;
}

/* --turns: one engine, the conversation timed (bench_turns.c). */
static int bench_conversation(const bench_opts *o, const sol_tuning *tuning, sol_err *err)
{
    if (o->turn_tokens < 1 || o->reps > 64)
        return sol_fail(err, SOL_ERR_USAGE, o->reps > 64 ? "--turns: -r 64 at most" : "--turns needs --turn-tokens T");
    cli_backend_opts bo = o->cuda; /* its CUDA options, and: */
    bo.name = o->backend;
    bo.threads = o->threads[0];
    bo.tuning = tuning;
    bo.mapped_weights = o->mapped;
    sol_backend *be = NULL;
    sol_engine *e = NULL;
    sol_engine_config cfg;
    sol_engine_defaults(&cfg);
    cfg.kvtype = o->kvtype;
    cfg.kv = o->kv;
    cfg.activations = o->activations;
    cfg.ctx = o->turns * o->turn_tokens + 1;
    int rc = cli_backend_open(&bo, &be, err);
    if (!rc) {
        cfg.backend = be;
        rc = sol_engine_open(o->model, &cfg, &e, err);
    }
    cli_turns_opts t = {(int)o->turns, (int)o->turn_tokens, (int)o->reps, o->format == BENCH_JSON};
    if (!rc)
        rc = cli_bench_turns(e, &t, err);
    sol_engine_close(e);
    if (be)
        be->destroy(be);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    bench_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc)
        return rc;
    sol_err err = {0};
    sol_hw hw;
    sol_db *db = NULL;
    if ((rc = sol_hw_load("cpu", &hw, &err)) || (rc = cli_apply_probes(&hw, 0, &err)))
        return cli_fail("bench", &err);
    if (o.n_threads == 0)
        o.threads[o.n_threads++] = 0; /* physical cores */
    if (o.store && ((rc = sol_db_open(NULL, &db, &err)) ||
                    (sol_db_readonly(db) &&
                     (rc = sol_fail(&err, SOL_ERR_RUNTIME,
                                    "%s is read-only: the results could not be stored, so nothing was measured (make "
                                    "it writable, or --no-store)",
                                    sol_db_name(db)))))) {
        sol_db_close(db);
        return cli_fail("bench", &err);
    }
    sol_tuning tuning = {0};
    if (!o.no_tuned && (rc = cli_load_tuning(&hw, &tuning, &err))) {
        sol_db_close(db);
        return cli_fail("bench", &err);
    }
    if (o.turns > 0 || o.n_batches > 0) {
        rc = o.turns > 0 ? bench_conversation(&o, &tuning, &err) : bench_batches(&o, &tuning, &err);
        sol_db_close(db);
        cli_tuning_free(&tuning);
        return rc ? cli_fail("bench", &err) : 0;
    }
    /* (--turns and --batch report no SOL) */
    if (!o.hw_name && (!o.backend || !strcmp(o.backend, "cpu")) && strcmp(hw.mem_bw.source, "measured") != 0)
        fprintf(stderr, "bench: no `sol hw probe` figures for this CPU; SOL uses estimated ceilings\n");
    cJSON *json_rows = o.format == BENCH_JSON ? cJSON_CreateArray() : NULL;
    int printed = 0;
    for (int i = 0; i < o.n_threads && !rc; i++)
        rc = bench_threads(&o, o.threads[i], &hw, &tuning, db, json_rows, &printed, &err);
    sol_db_close(db);
    cli_tuning_free(&tuning);
    if (rc) {
        cJSON_Delete(json_rows);
        return cli_fail("bench", &err);
    }
    return json_rows ? cli_print_json(json_rows) : 0;
}
