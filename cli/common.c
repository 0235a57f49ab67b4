/* Error printing, strict number parsing and the shared analysis options. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sol %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return SOL_ERR_USAGE;
}

int cli_fail(const char *cmd, const sol_err *err)
{
    fprintf(stderr, "sol %s: %s\n", cmd, err->msg);
    return err->code ? err->code : SOL_ERR_RUNTIME;
}

int cli_parse_ll(const char *cmd, const char *flag, const char *text, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end)
        return cli_usage_error(cmd, "%s: expected an integer, got \"%s\"", flag, text);
    *out = v;
    return 0;
}

int cli_parse_int_list(const char *cmd, const char *flag, const char *text, long long lo, long long hi,
                       long long *out, int cap, int *n)
{
    *n = 0;
    for (const char *p = text;; p++) {
        while (*p == ' ')
            p++;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno)
            return cli_usage_error(cmd, "%s: item %d of \"%s\" is %s", flag, *n + 1, text,
                                   end == p ? "empty or not an integer" : "out of range");
        while (*end == ' ')
            end++;
        if (*end && *end != ',')
            return cli_usage_error(cmd, "%s: expected comma-separated integers, got \"%s\"", flag, text);
        if (v < lo || v > hi)
            return cli_usage_error(cmd, "%s: %lld is out of range (%lld..%lld)", flag, v, lo, hi);
        if (*n == cap)
            return cli_usage_error(cmd, "%s: more than %d items in \"%s\"", flag, cap, text);
        out[(*n)++] = v;
        if (!*end)
            return 0;
        p = end;
    }
}

int cli_parse_activations(const char *cmd, const char *text, sol_activations *out)
{
    if (!strcmp(text, "q8"))
        *out = SOL_ACT_Q8;
    else if (!strcmp(text, "f32"))
        *out = SOL_ACT_F32;
    else
        return cli_usage_error(cmd, "--activations: expected q8 or f32, got \"%s\"", text);
    return 0;
}

int cli_parse_kvtype(const char *cmd, const char *text, sol_dtype *out)
{
    static const struct {
        const char *name;
        sol_dtype type;
    } types[] = {{"f32", SOL_DT_F32}, {"f16", SOL_DT_F16}, {"q8_0", SOL_DT_Q8_0},
                 {"q4_0", SOL_DT_Q4_0}, {"fp8_e4m3", SOL_DT_FP8}, {"fp8", SOL_DT_FP8}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(text, types[i].name)) {
            *out = types[i].type;
            return 0;
        }
    return cli_usage_error(cmd, "--kvtype: expected f32, f16, q8_0, q4_0 or fp8_e4m3, got \"%s\"", text);
}

const char *cli_activations_name(sol_activations a) { return a == SOL_ACT_F32 ? "f32" : "q8"; }

int cli_print_json(cJSON *doc)
{
    char *text = cJSON_Print(doc);
    cJSON_Delete(doc);
    if (!text)
        return SOL_ERR_RUNTIME;
    puts(text);
    free(text);
    return 0;
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return 1;
    return 0;
}

int cli_parse_format(const char *cmd, const char *text, cli_format *out)
{
    static const char *const names[] = {"table", "json", "csv"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(text, names[i])) {
            *out = (cli_format)i;
            return 0;
        }
    return cli_usage_error(cmd, "--format: expected table, json or csv, got \"%s\"", text);
}

void cli_analysis_opts_init(cli_analysis_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 1;
    o->ctx = 4096;
    o->prompt = 512;
    o->tp = 1;
}

/* "mem=0.85,flops=0.7" (either may be left out): fractions in (0, 1]. */
static int parse_efficiency(const char *cmd, const char *arg, cli_analysis_opts *o)
{
    char buf[128];
    if (snprintf(buf, sizeof buf, "%s", arg) >= (int)sizeof buf)
        return cli_usage_error(cmd, "--efficiency: too long");
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '='), *end = NULL;
        double *target = !eq ? NULL
                         : !strncmp(item, "mem", (size_t)(eq - item)) && eq - item == 3 ? &o->mem_efficiency
                         : !strncmp(item, "flops", (size_t)(eq - item)) && eq - item == 5 ? &o->flops_efficiency
                                                                                         : NULL;
        if (!target)
            return cli_usage_error(cmd, "--efficiency: expected mem=F and/or flops=F, got \"%s\"", item);
        *target = strtod(eq + 1, &end);
        if (end == eq + 1 || *end || !(*target > 0 && *target <= 1))
            return cli_usage_error(cmd, "--efficiency: %s must be a fraction in (0, 1], got \"%s\"", item,
                                   eq + 1);
    }
    if (!o->mem_efficiency && !o->flops_efficiency)
        return cli_usage_error(cmd, "--efficiency: expected mem=F and/or flops=F");
    return 0;
}

int cli_analysis_opt(const char *cmd, int c, const char *arg, cli_analysis_opts *o)
{
    long long *target = NULL;
    const char *flag = NULL;
    switch (c) {
    case OPT_WTYPE: o->wtype = arg; return 1;
    case OPT_KVTYPE: o->kvtype = arg; return 1;
    case OPT_ATYPE: o->atype = arg; return 1;
    case OPT_ALLOW_LONG: o->allow_long_ctx = 1; return 1;
    case OPT_EFFICIENCY: return parse_efficiency(cmd, arg, o) ? 2 : 1;
    case OPT_BATCH: target = &o->batch; flag = "--batch"; break;
    case OPT_CTX: target = &o->ctx; flag = "--ctx"; o->ctx_given = 1; break;
    case OPT_PROMPT: target = &o->prompt; flag = "--prompt"; break;
    case OPT_TP: target = &o->tp; flag = "--tp"; break;
    default: return 0;
    }
    if (cli_parse_ll(cmd, flag, arg, target))
        return 2;
    if (c != OPT_CTX && (*target < -1000000000LL || *target > 1000000000LL))
        return cli_usage_error(cmd, "%s: %lld is out of range", flag, *target);
    return 1;
}

static int parse_dtype(const char *cmd, const char *flag, const char *text, sol_dtype *out)
{
    if (sol_dtype_parse(text, out) == 0)
        return 0;
    return cli_usage_error(cmd, "%s: unknown type \"%s\" (f32 f16 bf16 fp8 int8 int4 q8_0 q4_0 q4_1 "
                                "q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k)",
                           flag, text);
}

int cli_write_plot(const char *cmd, const char *path, cli_plot_writer write, const void *arg)
{
    sol_err err = {0};
    FILE *f = fopen(path, "w");
    if (!f) {
        sol_fail(&err, SOL_ERR_RUNTIME, "--plot: cannot write %s", path);
        return cli_fail(cmd, &err);
    }
    int rc = write(f, arg, &err);
    if (fclose(f) != 0 && !rc)
        rc = sol_fail(&err, SOL_ERR_RUNTIME, "--plot: writing %s failed", path);
    return rc ? cli_fail(cmd, &err) : 0;
}

/* --ctx against the model's trained limit: clamped when not given, refused
 * past it unless allowed (then a note). */
static int context_for(const char *cmd, const sol_model *m, const cli_analysis_opts *o, long long *ctx)
{
    *ctx = o->ctx;
    if (!o->ctx_given && m->ctx_max > 0 && *ctx > m->ctx_max)
        *ctx = m->ctx_max;
    if (o->ctx_given && m->ctx_max > 0 && *ctx > m->ctx_max) {
        if (!o->allow_long_ctx)
            return cli_usage_error(cmd, "--ctx %lld is past %s's trained context of %d tokens "
                                        "(max_position_embeddings); add --allow-long-context to analyze it anyway",
                                   *ctx, m->name, m->ctx_max);
        fprintf(stderr, "sol %s: note: --ctx %lld is past %s's trained context of %d tokens\n", cmd, *ctx, m->name,
                m->ctx_max);
    }
    return 0;
}

int cli_analysis_setup(const char *cmd, const char *model_spec, const char *kv_text, const char *hw_name,
                       const cli_analysis_opts *o, cli_analysis_setup_t *s)
{
    sol_err err = {0};
    int measured = strcmp(hw_name, "measured") == 0;
    if (sol_model_load(model_spec, &s->model, &err) || sol_hw_load(measured ? "cpu" : hw_name, &s->hw, &err))
        return cli_fail(cmd, &err);
    /* the local CPU uses `sol hw probe` figures when there are some */
    if (!strcmp(s->hw.name, "cpu") && cli_apply_probes(&s->hw, measured, &err))
        return cli_fail(cmd, &err);
    sol_kv_from_model(&s->model, &s->kv);
    if (kv_text && sol_kv_parse(kv_text, &s->kv, &s->kv, &err))
        return cli_fail(cmd, &err);
    long long ctx;
    int rc = context_for(cmd, &s->model, o, &ctx);
    if (rc)
        return rc;
    sol_analysis_config cfg = {.batch = (int)o->batch, .ctx = ctx, .prompt = (int)o->prompt,
                               .tp = (int)o->tp, .wtype = s->model.wtype, .kvtype = SOL_DT_F16,
                               .mem_efficiency = o->mem_efficiency, .flops_efficiency = o->flops_efficiency};
    if ((o->wtype && parse_dtype(cmd, "--wtype", o->wtype, &cfg.wtype)) ||
        (o->kvtype && parse_dtype(cmd, "--kvtype", o->kvtype, &cfg.kvtype)))
        return SOL_ERR_USAGE;
    if (o->wtype) { /* one type for every weight, embedding and head included */
        s->model.embed_type = s->model.output_type = cfg.wtype;
        s->model.mixed = false;
    }
    /* CPUs compute in f32; GPUs in the weights' 16-bit type. */
    cfg.atype = strcmp(s->hw.kind, "cpu") == 0 ? SOL_DT_F32 : cfg.wtype == SOL_DT_BF16 ? SOL_DT_BF16 : SOL_DT_F16;
    if (o->atype && parse_dtype(cmd, "--atype", o->atype, &cfg.atype))
        return SOL_ERR_USAGE;
    s->cfg = cfg;
    return 0;
}

int cli_run_analysis(const char *cmd, const char *model_spec, const char *kv_text, const char *hw_name,
                     const cli_analysis_opts *o, sol_analysis *out)
{
    cli_analysis_setup_t *s = malloc(sizeof *s);
    if (!s)
        return SOL_ERR_RUNTIME;
    sol_err err = {0};
    int rc = cli_analysis_setup(cmd, model_spec, kv_text, hw_name, o, s);
    if (!rc && sol_analyze(&s->model, &s->kv, &s->hw, &s->cfg, out, &err))
        rc = cli_fail(cmd, &err);
    free(s);
    return rc;
}

void cli_add_simlayer_json(cJSON *j, const sol_engine *e)
{
    sol_simlayer_state st;
    if (sol_engine_simlayer(e, &st))
        return;
    const sol_kv_scheme *kv = sol_engine_kv(e);
    cJSON *o = cJSON_AddObjectToObject(j, "simlayer");
    cJSON_AddBoolToObject(o, "scored", st.scored);
    cJSON_AddNumberToObject(o, "threshold", st.threshold);
    cJSON_AddNumberToObject(o, "target_fraction", kv->lazy_fraction);
    cJSON_AddNumberToObject(o, "fraction", (double)st.n_lazy / st.n_layers);
    cJSON_AddNumberToObject(o, "window", kv->lazy_window);
    cJSON_AddNumberToObject(o, "sinks", kv->lazy_sinks);
    cJSON_AddNumberToObject(o, "query_rows", st.query_rows);
    cJSON *scores = cJSON_AddArrayToObject(o, "scores"), *lazy = cJSON_AddArrayToObject(o, "lazy_layers");
    for (int i = 0; i < st.n_layers && st.scored; i++) {
        cJSON_AddItemToArray(scores, cJSON_CreateNumber(st.score[i]));
        if (st.lazy[i])
            cJSON_AddItemToArray(lazy, cJSON_CreateNumber(i));
    }
}

cJSON *cli_experts_json(const sol_expert_stats *st, int first_layer)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n_experts", st->n_experts);
    cJSON_AddNumberToObject(o, "k", st->k);
    cJSON_AddNumberToObject(o, "moe_layers", st->moe_layers);
    cJSON_AddNumberToObject(o, "samples", (double)st->samples);
    cJSON_AddNumberToObject(o, "rows_per_step", st->rows);
    cJSON_AddNumberToObject(o, "distinct_mean", st->mean_distinct);
    cJSON_AddNumberToObject(o, "distinct_sd", st->sd_distinct);
    cJSON_AddNumberToObject(o, "expert_bytes", st->expert_bytes);
    /* routing[i]: how often MoE layer first_moe_layer + i chose each expert */
    cJSON_AddNumberToObject(o, "first_moe_layer", first_layer);
    cJSON *routing = cJSON_AddArrayToObject(o, "routing");
    for (int l = first_layer; l < first_layer + st->moe_layers; l++) {
        cJSON *row = cJSON_CreateArray();
        for (int x = 0; x < st->n_experts; x++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber((double)st->chosen[(size_t)l * st->n_experts + x]));
        cJSON_AddItemToArray(routing, row);
    }
    return o;
}

void cli_add_experts_json(cJSON *j, const sol_engine *e)
{
    sol_expert_stats st;
    if (sol_engine_expert_stats(e, &st) == 0)
        cJSON_AddItemToObject(j, "experts", cli_experts_json(&st, sol_engine_model(e)->first_dense));
}
