/* sol compare: KV schemes (and/or hardware entries) side by side for one
 * model: KV bytes per token, cache at ctx, decode bound, max batch. */
#include <cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define MAX_VARIANTS 32

void usage_compare(FILE *f)
{
    fprintf(f, "usage: sol compare MODEL --kv S1 --kv S2 ... [--hw A --hw B ...] [options]\n\n"
               "One row per variant (every --kv with every --hw): KV bytes/token, cache at --ctx,\n"
               "decode tokens/s bound at --batch, max batch that fits, and ratios to the first row.\n"
               "A variant `config` means the model's own scheme.\n\n"
               "options:\n" CLI_ANALYSIS_OPTS_HELP
               "  --format F       table (default), json or csv\n");
}

typedef struct {
    const char *kv, *hw;
    sol_analysis a;
} variant;

static void print_table(const variant *v, int n)
{
    printf("%-28s %-10s %11s %11s %12s %9s %8s %8s\n", "kv scheme", "hardware", "KV/token", "KV cache",
           "decode tok/s", "max batch", "KV x", "tok/s x");
    for (int i = 0; i < n; i++) {
        const sol_analysis *a = &v[i].a;
        char scheme[128], per_token[32], cache[32];
        sol_kv_format(&a->kv, scheme, sizeof scheme);
        sol_fmt_bytes(per_token, sizeof per_token, a->kv_bytes_per_token);
        sol_fmt_bytes(cache, sizeof cache, a->kv_cache_bytes);
        printf("%-28s %-10s %11s %11s %12.1f %9lld %8.3f %8.3f\n", scheme, a->hw.name, per_token, cache,
               a->decode_tokens_per_s, a->max_batch, a->kv_bytes_per_token / v[0].a.kv_bytes_per_token,
               a->decode_tokens_per_s / v[0].a.decode_tokens_per_s);
    }
    const sol_analysis_config *c = &v[0].a.cfg;
    if ((c->mem_efficiency > 0 && c->mem_efficiency < 1) || (c->flops_efficiency > 0 && c->flops_efficiency < 1))
        printf("(decode tok/s predicted at memory %.0f%%, FLOPs %.0f%% efficiency: NOT the speed of light)\n",
               100 * (c->mem_efficiency > 0 ? c->mem_efficiency : 1),
               100 * (c->flops_efficiency > 0 ? c->flops_efficiency : 1));
}

static void print_csv(const variant *v, int n)
{
    printf("kv_scheme,hardware,kv_bytes_per_token,kv_cache_bytes,decode_tokens_per_s,max_batch,"
           "kv_ratio,tokens_per_s_ratio\n");
    for (int i = 0; i < n; i++) {
        const sol_analysis *a = &v[i].a;
        char scheme[128];
        sol_kv_format(&a->kv, scheme, sizeof scheme);
        printf("%s,%s,%.0f,%.0f,%.6g,%lld,%.6g,%.6g\n", scheme, a->hw.name, a->kv_bytes_per_token,
               a->kv_cache_bytes, a->decode_tokens_per_s, a->max_batch,
               a->kv_bytes_per_token / v[0].a.kv_bytes_per_token,
               a->decode_tokens_per_s / v[0].a.decode_tokens_per_s);
    }
}

static int print_json(const variant *v, int n)
{
    cJSON *rows = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        const sol_analysis *a = &v[i].a;
        char scheme[128];
        sol_kv_format(&a->kv, scheme, sizeof scheme);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "kv_scheme", scheme);
        cJSON_AddStringToObject(o, "hardware", a->hw.name);
        cJSON_AddNumberToObject(o, "kv_bytes_per_token", a->kv_bytes_per_token);
        cJSON_AddNumberToObject(o, "kv_cache_bytes", a->kv_cache_bytes);
        cJSON_AddNumberToObject(o, "decode_tokens_per_s", a->decode_tokens_per_s);
        cJSON_AddNumberToObject(o, "max_batch", (double)a->max_batch);
        cJSON_AddNumberToObject(o, "kv_ratio", a->kv_bytes_per_token / v[0].a.kv_bytes_per_token);
        cJSON_AddNumberToObject(o, "tokens_per_s_ratio", a->decode_tokens_per_s / v[0].a.decode_tokens_per_s);
        cJSON_AddItemToArray(rows, o);
    }
    return cli_print_json(rows);
}

int cmd_compare(int argc, char **argv)
{
    static const struct option long_opts[] = {CLI_ANALYSIS_LONG_OPTS, {0, 0, 0, 0}};
    cli_analysis_opts opts;
    cli_analysis_opts_init(&opts);
    const char *kvs[MAX_VARIANTS], *hws[MAX_VARIANTS];
    int n_kv = 0, n_hw = 0, c;
    cli_format format = CLI_FORMAT_TABLE;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":", long_opts, NULL)) != -1) {
        int shared = cli_analysis_opt("compare", c, optarg, &opts);
        if (shared == 2)
            return SOL_ERR_USAGE;
        if (shared)
            continue;
        switch (c) {
        case OPT_KV:
        case OPT_HW:
            if ((c == OPT_KV ? n_kv : n_hw) == MAX_VARIANTS)
                return cli_usage_error("compare", "at most %d values of %s", MAX_VARIANTS, argv[optind - 2]);
            if (c == OPT_KV)
                kvs[n_kv++] = optarg;
            else
                hws[n_hw++] = optarg;
            break;
        case OPT_FORMAT:
            if (cli_parse_format("compare", optarg, &format))
                return SOL_ERR_USAGE;
            break;
        case ':': return cli_usage_error("compare", "%s needs a value", argv[optind - 1]);
        default: return cli_usage_error("compare", "unknown option \"%s\" (see sol compare --help)", argv[optind - 1]);
        }
    }
    if (optind == argc)
        return cli_usage_error("compare", "missing MODEL");
    if (optind != argc - 1)
        return cli_usage_error("compare", "expected one MODEL, got extra \"%s\"", argv[optind + 1]);
    if (n_kv == 0)
        kvs[n_kv++] = "config";
    if (n_hw == 0)
        hws[n_hw++] = "h100-sxm";
    if (n_kv * n_hw < 2)
        return cli_usage_error("compare", "give at least two --kv or two --hw to compare");
    if (n_kv * n_hw > MAX_VARIANTS)
        return cli_usage_error("compare", "%d variants is more than %d", n_kv * n_hw, MAX_VARIANTS);

    variant *v = calloc((size_t)(n_kv * n_hw), sizeof *v);
    if (!v)
        return SOL_ERR_RUNTIME;
    int n = 0, rc = 0;
    for (int h = 0; h < n_hw && !rc; h++)
        for (int k = 0; k < n_kv && !rc; k++) {
            const char *scheme = strcmp(kvs[k], "config") == 0 ? NULL : kvs[k];
            rc = cli_run_analysis("compare", argv[optind], scheme, hws[h], &opts, &v[n].a);
            if (!rc)
                n++;
        }
    if (!rc) {
        if (format == CLI_FORMAT_TABLE)
            print_table(v, n);
        else if (format == CLI_FORMAT_CSV)
            print_csv(v, n);
        else
            rc = print_json(v, n);
    }
    for (int i = 0; i < n; i++)
        sol_analysis_free(&v[i].a);
    free(v);
    return rc;
}
