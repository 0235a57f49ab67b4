/* sol analyze: the per-op roofline of one model + KV scheme on one hardware
 * entry, as a table, JSON or CSV. */
#include <cJSON.h>
#include <getopt.h>
#include <stdlib.h>

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

int cmd_analyze(int argc, char **argv)
{
    static const struct option long_opts[] = {CLI_ANALYSIS_LONG_OPTS,
                                              {"list-models", 0, 0, OPT_LIST_MODELS},
                                              {0, 0, 0, 0}};
    cli_analysis_opts opts;
    cli_analysis_opts_init(&opts);
    const char *hw = "h100-sxm", *kv = NULL;
    cli_format format = CLI_FORMAT_TABLE;
    int list = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":", long_opts, NULL)) != -1) {
        int shared = cli_analysis_opt("analyze", c, optarg, &opts);
        if (shared == 2)
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
        if (format == CLI_FORMAT_TABLE) {
            sol_report_table(stdout, a);
        } else if (format == CLI_FORMAT_CSV) {
            sol_report_csv(stdout, a);
        } else {
            char *text = sol_report_json(a);
            if (text)
                puts(text);
            else
                rc = SOL_ERR_RUNTIME;
            free(text);
        }
        sol_analysis_free(a);
    }
    free(a);
    return rc;
}
