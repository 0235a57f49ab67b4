/* sol analyze: the per-op roofline of one model + KV scheme on one hardware
 * entry, as a table, JSON or CSV. */
#include <cJSON.h>
#include <getopt.h>
#include <stdlib.h>

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
               "  --plot FILE.svg  the roofline of the hardware entry with one point per op group\n"
               "                   (decode and prefill)\n"
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
    long long draft_k;
    double accept;
} extras;

enum { OPT_GEN = 1100, OPT_DRAFT, OPT_DRAFT_K, OPT_ACCEPT, OPT_PLOT };

static int parse_extra(int c, const char *arg, extras *x)
{
    char *end = NULL;
    switch (c) {
    case OPT_GEN:
        if (cli_parse_ll("analyze", "--gen", arg, &x->gen))
            return 2;
        return x->gen < 1 || x->gen > 1000000000LL ? cli_usage_error("analyze", "--gen: 1 or more tokens") : 1;
    case OPT_DRAFT: x->draft = arg; return 1;
    case OPT_PLOT: x->plot = arg; return 1;
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

/* The table, CSV or JSON of a, with the request and speculative sections. */
static int report(const sol_analysis *a, cli_format format, const extras *x, const sol_request *req,
                  const sol_speculative *spec, const char *draft_name)
{
    if (format == CLI_FORMAT_CSV) {
        sol_report_csv(stdout, a);
        return 0;
    }
    if (format == CLI_FORMAT_TABLE) {
        sol_report_table(stdout, a);
        if (x->gen)
            sol_report_request(stdout, req);
        if (x->draft)
            sol_report_speculative(stdout, spec, draft_name);
        return 0;
    }
    cJSON *root = sol_report_json_object(a);
    if (root && x->gen)
        cJSON_AddItemToObject(root, "request", sol_request_json(req));
    if (root && x->draft)
        cJSON_AddItemToObject(root, "speculative", sol_speculative_json(spec, draft_name));
    return root ? cli_print_json(root) : SOL_ERR_RUNTIME;
}

/* The roofline picture of a, written to path. */
static int plot_roofline(const sol_analysis *a, const char *path)
{
    sol_err err = {0};
    FILE *f = fopen(path, "w");
    if (!f) {
        sol_fail(&err, SOL_ERR_RUNTIME, "--plot: cannot write %s", path);
        return cli_fail("analyze", &err);
    }
    int rc = sol_plot_roofline(f, a, &err);
    if (fclose(f) != 0 && !rc)
        rc = sol_fail(&err, SOL_ERR_RUNTIME, "--plot: writing %s failed", path);
    return rc ? cli_fail("analyze", &err) : 0;
}

/* The request and draft sections of a (a runtime or usage error, printed). */
static int cost_extras(const sol_analysis *a, const extras *x, const char *hw, const cli_analysis_opts *opts,
                       sol_request *req, sol_speculative *spec, char *draft_name, size_t cap)
{
    sol_err err = {0};
    if (x->gen && sol_request_cost(a, (int)x->gen, req, &err))
        return cli_fail("analyze", &err);
    if (!x->draft)
        return 0;
    cli_analysis_opts draft_opts = *opts;
    draft_opts.wtype = NULL; /* the draft keeps its own weights' type */
    sol_analysis *d = malloc(sizeof *d);
    if (!d)
        return SOL_ERR_RUNTIME;
    int rc = cli_run_analysis("analyze", x->draft, NULL, hw, &draft_opts, d);
    if (rc == 0) {
        snprintf(draft_name, cap, "%s", d->model.name);
        if (sol_speculative_cost(a, d, (int)x->draft_k, x->accept, spec, &err))
            rc = cli_fail("analyze", &err);
        sol_analysis_free(d);
    }
    free(d);
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
                                              {"plot", 1, 0, OPT_PLOT},
                                              {0, 0, 0, 0}};
    cli_analysis_opts opts;
    cli_analysis_opts_init(&opts);
    extras x = {.draft_k = 4, .accept = 0.8};
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
    sol_analysis *a = malloc(sizeof *a);
    if (!a)
        return SOL_ERR_RUNTIME;
    int rc = cli_run_analysis("analyze", argv[optind], kv, hw, &opts, a);
    if (rc == 0) {
        sol_request req;
        sol_speculative spec;
        char draft_name[96] = "";
        rc = cost_extras(a, &x, hw, &opts, &req, &spec, draft_name, sizeof draft_name);
        if (rc == 0 && x.plot)
            rc = plot_roofline(a, x.plot);
        if (rc == 0)
            rc = report(a, format, &x, &req, &spec, draft_name);
        sol_analysis_free(a);
    }
    free(a);
    return rc;
}
