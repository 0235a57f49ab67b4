/* sol analyze: the per-op roofline of one model + KV scheme on one hardware
 * entry, as a table, JSON or CSV. */
#include <cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analyzer/plot.h"
#include "cli/cli.h"

void usage_analyze(FILE *f)
{
    fprintf(f, "usage: sol analyze MODEL [options]\n"
               "       sol analyze --list-models [--format json]\n\n"
               "Speed-of-light decode and prefill of MODEL (a preset name, a Hugging Face\n"
               "config.json or a directory holding one, or a .gguf file) on a hardware entry:\n"
               "bytes, FLOPs, bound and time per op, KV footprint, memory, max batch.\n\n"
               "The speed of light is the whole step's bound, as if every op were fused: the\n"
               "longest of its FLOPs at peak, its unavoidable bytes (weights, KV read and\n"
               "written) at memory bandwidth, and its all-reduces. No implementation beats it.\n"
               "\"Unfused\" beside it is the sum of each op's own roofline time, which also pays\n"
               "for the activations unfused ops write and read back (norms, RoPE, adds).\n\n"
               "options:\n" CLI_ANALYSIS_OPTS_HELP
               "  --gen N          a request end to end: the prompt, then N generated tokens: time\n"
               "                   to first token, time per output token, total, tokens/s per user\n"
               "                   and per device\n"
               "  --draft MODEL    speculative decoding on paper with this draft model (any MODEL):\n"
               "  --draft-k K      tokens drafted per target step (default 4)\n"
               "  --accept R       the rate at which the target accepts drafted tokens (default 0.8):\n"
               "                   expected tokens per target step, tokens/s and speedup\n"
               "  --turns N        a conversation of N turns with inter-turn KV reuse: per turn, time\n"
               "                   to first token recomputing the history vs loading its stored KV\n"
               "  --turn-tokens T  tokens each turn adds (default 256)\n"
               "  --hit-rate R     share of turns whose history is found stored (default 0.95)\n"
               "  --host-bw B      bytes/s stored KV loads at (default: 32e9, PCIe 4.0 x16, on a\n"
               "                   GPU; the memory bandwidth on a CPU)\n"
               "  --store-gib S    host memory for stored conversations: how many fit\n"
               "  --plot FILE.svg  the roofline of the hardware entry with one point per op group\n"
               "                   (decode and prefill)\n"
               "  --routing FILE   a MoE model: the experts a step is expected to read from a\n"
               "                   measured routing (the output of sol run --json: experts.routing\n"
               "                   counts per MoE layer) instead of uniform, E(1-(1-k/E)^B):\n"
               "                   the sum over experts of 1-(1-p_e)^B\n"
               "  --calibrated     with --hw measured (or cpu): also predict decode and prefill\n"
               "                   tokens/s on this CPU from the per-op times `sol bench` stored:\n"
               "                   each op's roofline time times what its class (op kind, type,\n"
               "                   rows per step, size) took on this machine over its roofline\n"
               "                   time, latest 5 runs per class; fails naming what is missing\n"
               "  --threads N      the calibration's thread count (default: its latest)\n"
               "  --activations A  q8 (default) or f32: the calibration's engine activations\n"
               "  --format F       table (default), json or csv (one row per op)\n"
               "  --list-models    list the presets\n");
}

static int list_models(cli_format format)
{
    cJSON *list = cJSON_CreateArray();
    if (format == CLI_FORMAT_TABLE)
        printf("%-18s %-12s %10s %10s %7s  %s\n", "preset", "arch", "params", "active", "layers", "kv scheme");
    for (int i = 0; i < sol_preset_count(); i++) {
        sol_model m;
        sol_param_count params;
        sol_kv_scheme kv;
        sol_err err = {0};
        const char *name = sol_preset_name(i);
        if (sol_model_from_hf_json(sol_preset_json(name), name, &m, &err) ||
            sol_model_params(&m, &params, &err)) {
            cJSON_Delete(list);
            return cli_fail("analyze", &err);
        }
        sol_kv_from_model(&m, &kv);
        char scheme[128], total[32], active[32];
        sol_kv_format(&kv, scheme, sizeof scheme);
        sol_fmt_count(total, sizeof total, params.total, "");
        sol_fmt_count(active, sizeof active, params.active, "");
        if (format == CLI_FORMAT_TABLE) {
            printf("%-18s %-12s %10s %10s %7d  %s\n", name, m.arch, total, active, m.n_layers, scheme);
            continue;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "preset", name);
        cJSON_AddStringToObject(o, "name", m.name);
        cJSON_AddStringToObject(o, "arch", m.arch);
        cJSON_AddNumberToObject(o, "params", params.total);
        cJSON_AddNumberToObject(o, "active_params", params.active);
        cJSON_AddNumberToObject(o, "layers", m.n_layers);
        cJSON_AddStringToObject(o, "kv_scheme", scheme);
        cJSON_AddItemToArray(list, o);
    }
    if (format != CLI_FORMAT_TABLE)
        return cli_print_json(list);
    cJSON_Delete(list);
    return 0;
}

/* What analyze reports beyond the analysis: a request end to end, a draft. */
typedef struct extras {
    long long gen;     /* 0: no request section */
    const char *draft; /* NULL: no speculative section */
    const char *plot;  /* NULL: no roofline picture */
    sol_turns_config turns; /* turns 0: no conversation section */
    long long draft_k;
    double accept;
    int calibrated;    /* a calibrated prediction section */
    long long threads; /* its thread count; 0: the latest calibrated */
    sol_activations activations;
    const char *routing; /* --routing FILE: a MoE model's measured routing */
} extras;

enum { OPT_GEN = 1100, OPT_DRAFT, OPT_DRAFT_K, OPT_ACCEPT, OPT_PLOT, OPT_CALIBRATED, OPT_THREADS, OPT_ACTIVATIONS,
       OPT_TURNS, OPT_TURN_TOKENS, OPT_HIT_RATE, OPT_HOST_BW, OPT_STORE_GIB, OPT_ROUTING };

/* 1 when arg is a whole number for flag (range checks are the library's), else 2. */
static int parse_count(const char *flag, const char *arg, int *out)
{
    long long v;
    if (cli_parse_ll("analyze", flag, arg, &v))
        return 2;
    if (v < 0 || v > 1000000000LL)
        return cli_usage_error("analyze", "%s: %lld is out of range", flag, v), 2;
    *out = (int)v;
    return 1;
}

static int parse_real(const char *flag, const char *arg, double *out)
{
    char *end = NULL;
    *out = strtod(arg, &end);
    if (end == arg || *end || *out != *out)
        return cli_usage_error("analyze", "%s: expected a number, got \"%s\"", flag, arg), 2;
    return 1;
}

static int parse_extra(int c, const char *arg, extras *x)
{
    char *end = NULL;
    switch (c) {
    case OPT_GEN:
        if (cli_parse_ll("analyze", "--gen", arg, &x->gen))
            return 2;
        return x->gen < 1 || x->gen > 1000000000LL ? cli_usage_error("analyze", "--gen: 1 or more tokens") : 1;
    case OPT_DRAFT: x->draft = arg; return 1;
    case OPT_CALIBRATED: x->calibrated = 1; return 1;
    case OPT_THREADS:
        if (cli_parse_ll("analyze", "--threads", arg, &x->threads))
            return 2;
        return x->threads < 1 || x->threads > 1024 ? cli_usage_error("analyze", "--threads: 1 to 1024") : 1;
    case OPT_ACTIVATIONS: return cli_parse_activations("analyze", arg, &x->activations) ? 2 : 1;
    case OPT_PLOT: x->plot = arg; return 1;
    case OPT_ROUTING: x->routing = arg; return 1;
    case OPT_TURNS: return parse_count("--turns", arg, &x->turns.turns);
    case OPT_TURN_TOKENS: return parse_count("--turn-tokens", arg, &x->turns.turn_tokens);
    case OPT_HIT_RATE: return parse_real("--hit-rate", arg, &x->turns.hit_rate);
    case OPT_HOST_BW: return parse_real("--host-bw", arg, &x->turns.host_bw);
    case OPT_STORE_GIB:
        if (parse_real("--store-gib", arg, &x->turns.store_bytes) != 1)
            return 2;
        x->turns.store_bytes *= 1024.0 * 1024 * 1024;
        return 1;
    case OPT_DRAFT_K:
        if (cli_parse_ll("analyze", "--draft-k", arg, &x->draft_k))
            return 2;
        return 1;
    case OPT_ACCEPT:
        x->accept = strtod(arg, &end);
        if (end == arg || *end || !(x->accept >= 0 && x->accept <= 1))
            return cli_usage_error("analyze", "--accept: a rate in [0, 1], got \"%s\"", arg);
        return 1;
    default: return 0;
    }
}

static void format_time(long long t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    strftime(buf, cap, "%Y-%m-%d %H:%M UTC", gmtime_r(&tt, &tm));
}

/* The calibrated section as text: a prediction, labelled with its source. */
static void print_calibrated(const sol_analysis *a, const cli_calibrated *c)
{
    char from[40], to[40];
    format_time(c->first_time, from, sizeof from);
    format_time(c->last_time, to, sizeof to);
    double decode_tps = a->cfg.batch / c->decode.time_s;
    printf("\nCalibrated prediction (not a bound): this CPU, %s, %d threads, from the per-op times of %d stored `sol "
           "bench` test%s, %s .. %s\n",
           c->backend, c->threads, c->runs, c->runs == 1 ? "" : "s", from, to);
    printf("  decode   %10.2f tok/s  (speed of light %.2f tok/s; %.1f%% of it)  ops: %d exact class, %d nearest "
           "size, %d pooled\n",
           decode_tps, a->decode_tokens_per_s, 100 * decode_tps / a->decode_tokens_per_s, c->decode.exact,
           c->decode.nearest, c->decode.pooled);
    if (c->has_prefill)
        printf("  prefill  %10.2f tok/s  (speed of light %.2f tok/s; %.1f%% of it)  ops: %d exact class, %d nearest "
               "size, %d pooled\n",
               (double)a->cfg.batch * a->cfg.prompt / c->prefill.time_s, a->prefill_tokens_per_s,
               100 * a->cfg.batch * a->cfg.prompt / c->prefill.time_s / a->prefill_tokens_per_s, c->prefill.exact,
               c->prefill.nearest, c->prefill.pooled);
    else
        printf("  prefill  not calibrated: %s\n", c->prefill_missing);
}

static cJSON *calibrated_step_json(const sol_calibrated_step *s, double tokens)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "tokens_per_s", tokens / s->time_s);
    cJSON_AddNumberToObject(o, "step_s", s->time_s);
    cJSON_AddNumberToObject(o, "overhead_s", s->overhead_s);
    cJSON_AddNumberToObject(o, "ops_exact", s->exact);
    cJSON_AddNumberToObject(o, "ops_nearest_size", s->nearest);
    cJSON_AddNumberToObject(o, "ops_pooled", s->pooled);
    cJSON *groups = cJSON_AddObjectToObject(o, "group_s");
    for (int g = 0; g < SOL_GROUP_COUNT; g++)
        if (s->group_s[g] > 0)
            cJSON_AddNumberToObject(groups, sol_op_group_name((sol_op_group)g), s->group_s[g]);
    return o;
}

static cJSON *calibrated_json(const sol_analysis *a, const cli_calibrated *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", "calibrated prediction");
    cJSON_AddStringToObject(o, "backend", c->backend);
    cJSON_AddNumberToObject(o, "threads", c->threads);
    cJSON_AddNumberToObject(o, "runs", c->runs);
    cJSON_AddNumberToObject(o, "first_time", (double)c->first_time);
    cJSON_AddNumberToObject(o, "last_time", (double)c->last_time);
    cJSON_AddItemToObject(o, "decode", calibrated_step_json(&c->decode, a->cfg.batch));
    if (c->has_prefill)
        cJSON_AddItemToObject(o, "prefill", calibrated_step_json(&c->prefill, (double)a->cfg.batch * a->cfg.prompt));
    else
        cJSON_AddStringToObject(o, "prefill_missing", c->prefill_missing);
    return o;
}

/* The table, CSV or JSON of a, with the request and speculative sections. */
/* What the extras cost: one record, on the heap (a conversation holds 256 turns). */
typedef struct sections {
    sol_request req;
    sol_speculative spec;
    char draft_name[96];
    cli_calibrated cal;
    sol_turns turns;
} sections;

static int report(const sol_analysis *a, cli_format format, const extras *x, const sections *s)
{
    if (format == CLI_FORMAT_CSV) {
        sol_report_csv(stdout, a);
        return 0;
    }
    if (format == CLI_FORMAT_TABLE) {
        sol_report_table(stdout, a);
        if (x->gen)
            sol_report_request(stdout, &s->req);
        if (x->draft)
            sol_report_speculative(stdout, &s->spec, s->draft_name);
        if (x->turns.turns)
            sol_report_turns(stdout, &s->turns);
        if (x->calibrated)
            print_calibrated(a, &s->cal);
        return 0;
    }
    cJSON *root = sol_report_json_object(a);
    if (root && x->gen)
        cJSON_AddItemToObject(root, "request", sol_request_json(&s->req));
    if (root && x->draft)
        cJSON_AddItemToObject(root, "speculative", sol_speculative_json(&s->spec, s->draft_name));
    if (root && x->turns.turns)
        cJSON_AddItemToObject(root, "conversation", sol_turns_json(&s->turns));
    if (root && x->calibrated)
        cJSON_AddItemToObject(root, "calibrated", calibrated_json(a, &s->cal));
    return root ? cli_print_json(root) : SOL_ERR_RUNTIME;
}

/* The roofline picture of a, written to path. */
static int write_roofline(FILE *f, const void *a, sol_err *err) { return sol_plot_roofline(f, a, err); }

/* A stored conversation loads over the host link: unless --host-bw says
 * otherwise, PCIe 4.0 x16 (32 GB/s per direction) for a GPU, and for a CPU
 * its own memory bandwidth (the cache is already in host memory). */
static int cost_turns(const sol_analysis *a, const extras *x, sol_turns *out, sol_err *err)
{
    sol_turns_config c = x->turns;
    if (!(c.host_bw > 0))
        c.host_bw = strcmp(a->hw.kind, "cpu") ? 32e9 : a->hw.mem_bw.value;
    return sol_turns_cost(a, &c, out, err);
}

/* The request, conversation, calibrated and draft sections of a (a runtime
 * or usage error, printed). */
static int cost_extras(const sol_analysis *a, const extras *x, const char *hw, const cli_analysis_opts *opts,
                       sections *s)
{
    sol_err err = {0};
    if (x->gen && sol_request_cost(a, (int)x->gen, &s->req, &err))
        return cli_fail("analyze", &err);
    if (x->turns.turns && cost_turns(a, x, &s->turns, &err))
        return cli_fail("analyze", &err);
    if (x->calibrated) {
        char backend[16];
        snprintf(backend, sizeof backend, "cpu.%s", cli_activations_name(x->activations));
        if (cli_calibrated_analysis(a, backend, (int)x->threads, &s->cal, &err))
            return cli_fail("analyze", &err);
    }
    if (!x->draft)
        return 0;
    cli_analysis_opts draft_opts = *opts;
    draft_opts.wtype = NULL; /* the draft keeps its own weights' type */
    sol_analysis *d = malloc(sizeof *d);
    if (!d)
        return SOL_ERR_RUNTIME;
    int rc = cli_run_analysis("analyze", x->draft, NULL, hw, &draft_opts, d);
    if (rc == 0) {
        snprintf(s->draft_name, sizeof s->draft_name, "%s", d->model.name);
        if (sol_speculative_cost(a, d, (int)x->draft_k, x->accept, &s->spec, &err))
            rc = cli_fail("analyze", &err);
        sol_analysis_free(d);
    }
    free(d);
    return rc;
}

/* The analysis with a MoE model's measured routing (--routing FILE): the
 * experts each step is expected to read come from it (routing outlives a). */
static int analyze_routed(const char *model, const char *kv, const char *hw, const cli_analysis_opts *opts,
                          const char *path, sol_routing *routing, sol_analysis *a)
{
    cli_analysis_setup_t *s = malloc(sizeof *s);
    sol_err err = {0};
    int rc = s ? cli_analysis_setup("analyze", model, kv, hw, opts, s) : SOL_ERR_RUNTIME;
    if (!rc && (rc = sol_routing_load(path, &s->model, routing, &err)) == 0) {
        s->cfg.routing = routing;
        rc = sol_analyze(&s->model, &s->kv, &s->hw, &s->cfg, a, &err);
    }
    if (rc && err.msg[0])
        rc = cli_fail("analyze", &err);
    free(s);
    return rc;
}

int cmd_analyze(int argc, char **argv)
{
    static const struct option long_opts[] = {CLI_ANALYSIS_LONG_OPTS,
                                              {"list-models", 0, 0, OPT_LIST_MODELS},
                                              {"gen", 1, 0, OPT_GEN},
                                              {"draft", 1, 0, OPT_DRAFT},
                                              {"draft-k", 1, 0, OPT_DRAFT_K},
                                              {"accept", 1, 0, OPT_ACCEPT},
                                              {"calibrated", 0, 0, OPT_CALIBRATED},
                                              {"threads", 1, 0, OPT_THREADS},
                                              {"activations", 1, 0, OPT_ACTIVATIONS},
                                              {"plot", 1, 0, OPT_PLOT},
                                              {"turns", 1, 0, OPT_TURNS},
                                              {"turn-tokens", 1, 0, OPT_TURN_TOKENS},
                                              {"hit-rate", 1, 0, OPT_HIT_RATE},
                                              {"host-bw", 1, 0, OPT_HOST_BW},
                                              {"store-gib", 1, 0, OPT_STORE_GIB},
                                              {"routing", 1, 0, OPT_ROUTING},
                                              {0, 0, 0, 0}};
    cli_analysis_opts opts;
    cli_analysis_opts_init(&opts);
    extras x = {.draft_k = 4, .accept = 0.8, .turns = {.turn_tokens = 256, .hit_rate = 0.95}};
    const char *hw = "h100-sxm", *kv = NULL;
    cli_format format = CLI_FORMAT_TABLE;
    int list = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":", long_opts, NULL)) != -1) {
        int shared = cli_analysis_opt("analyze", c, optarg, &opts);
        if (!shared)
            shared = parse_extra(c, optarg, &x);
        if (shared == 2 || shared == SOL_ERR_USAGE)
            return SOL_ERR_USAGE;
        if (shared)
            continue;
        switch (c) {
        case OPT_HW: hw = optarg; break;
        case OPT_KV: kv = optarg; break;
        case OPT_LIST_MODELS: list = 1; break;
        case OPT_FORMAT:
            if (cli_parse_format("analyze", optarg, &format))
                return SOL_ERR_USAGE;
            break;
        case ':': return cli_usage_error("analyze", "%s needs a value", argv[optind - 1]);
        default: return cli_usage_error("analyze", "unknown option \"%s\" (see sol analyze --help)", argv[optind - 1]);
        }
    }
    if (list)
        return list_models(format);
    if (optind == argc)
        return cli_usage_error("analyze", "missing MODEL (a preset, config.json or .gguf; see --list-models)");
    if (optind != argc - 1)
        return cli_usage_error("analyze", "expected one MODEL, got extra \"%s\"", argv[optind + 1]);
    if (x.calibrated && strcmp(hw, "measured") && strcmp(hw, "cpu"))
        return cli_usage_error("analyze", "--calibrated predicts this CPU from its stored runs: use --hw measured "
                                          "(or cpu), not %s", hw);
    if (x.calibrated && format == CLI_FORMAT_CSV)
        return cli_usage_error("analyze", "--calibrated: --format table or json");
    sol_analysis *a = malloc(sizeof *a);
    sections *s = calloc(1, sizeof *s);
    if (!a || !s) {
        free(a);
        free(s);
        return SOL_ERR_RUNTIME;
    }
    sol_routing routing = {0};
    int rc = x.routing ? analyze_routed(argv[optind], kv, hw, &opts, x.routing, &routing, a)
                       : cli_run_analysis("analyze", argv[optind], kv, hw, &opts, a);
    if (rc == 0) {
        rc = cost_extras(a, &x, hw, &opts, s);
        if (rc == 0 && x.plot)
            rc = cli_write_plot("analyze", x.plot, write_roofline, a);
        if (rc == 0)
            rc = report(a, format, &x, s);
        sol_analysis_free(a);
    }
    sol_routing_free(&routing);
    free(a);
    free(s);
    return rc;
}
