/* sol sweep: the decode bound over batch sizes and context lengths in one
 * call, with the knees (compute-bound from which batch, memory full past
 * which batch), as a table, CSV or JSON, and a plot of tok/s against batch. */
#include <cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/plot.h"
#include "cli/cli.h"

enum { MAX_POINTS = 64, OPT_BATCHES = 1200, OPT_CTXS, OPT_PLOT };

typedef struct sweep {
    long long batch[MAX_POINTS], ctx[MAX_POINTS];
    int n_batch, n_ctx;
    sol_sweep_point *points; /* n_ctx x n_batch */
    sol_sweep_knee knees[MAX_POINTS];
} sweep;

void usage_sweep(FILE *f)
{
    fprintf(f, "usage: sol sweep MODEL [--batch LIST] [--ctx LIST] [options]\n\n"
               "Decode at the speed of light over batch sizes and context lengths in one call: total and\n"
               "per-user tokens/s, the bound and the memory per point, and for each context the knees:\n"
               "the batch from which decode turns compute-bound, and the largest batch that fits.\n\n"
               "options:\n"
               "  --batch LIST     batch sizes (default 1,2,4,...,512)\n"
               "  --ctx LIST       context lengths (default 1024,4096,16384, up to the model's limit)\n"
               "  --plot FILE.svg  tokens/s against batch, one line per context, the knees marked\n"
               "  --format F       table (default), csv or json\n" CLI_ANALYSIS_OPTS_HELP);
}

static void default_lists(sweep *s, const sol_model *m)
{
    if (!s->n_batch)
        for (long long b = 1; b <= 512; b *= 2)
            s->batch[s->n_batch++] = b;
    if (!s->n_ctx) {
        const long long ctx[] = {1024, 4096, 16384};
        for (int i = 0; i < 3; i++)
            if (m->ctx_max <= 0 || ctx[i] <= m->ctx_max)
                s->ctx[s->n_ctx++] = ctx[i];
        if (!s->n_ctx)
            s->ctx[s->n_ctx++] = m->ctx_max;
    }
}

static int run_sweep(sweep *s, const cli_analysis_setup_t *setup)
{
    sol_err err = {0};
    s->points = calloc((size_t)(s->n_ctx * s->n_batch), sizeof *s->points);
    if (!s->points)
        return SOL_ERR_RUNTIME;
    for (int c = 0; c < s->n_ctx; c++) {
        for (int b = 0; b < s->n_batch; b++)
            if (sol_sweep_point_at(&setup->model, &setup->kv, &setup->hw, &setup->cfg, s->ctx[c], (int)s->batch[b],
                                   &s->points[c * s->n_batch + b], &err))
                return cli_fail("sweep", &err);
        if (sol_sweep_knee_at(&setup->model, &setup->kv, &setup->hw, &setup->cfg, s->ctx[c], &s->knees[c], &err))
            return cli_fail("sweep", &err);
    }
    return 0;
}

static void knee_text(const sol_sweep_knee *k, char *buf, size_t cap)
{
    int n = k->compute_bound_from > 0
                ? snprintf(buf, cap, "compute-bound from batch %lld", k->compute_bound_from)
                : snprintf(buf, cap, "memory-bound at every batch (the KV cache dominates)");
    if (n <= 0 || (size_t)n >= cap)
        return;
    if (k->max_batch == 0)
        snprintf(buf + n, cap - (size_t)n, "; the weights alone do not fit in memory");
    else if (k->max_batch > 0)
        snprintf(buf + n, cap - (size_t)n, "; memory full past batch %lld", k->max_batch);
    else
        snprintf(buf + n, cap - (size_t)n, "; no KV cache: any batch fits");
}

static void print_table(const sweep *s, const cli_analysis_setup_t *setup)
{
    char scheme[128];
    sol_kv_format(&setup->kv, scheme, sizeof scheme);
    printf("%s on %s, %s KV %s, weights %s\n", setup->model.name, setup->hw.display_name, scheme,
           sol_dtype_name(setup->cfg.kvtype), sol_dtype_name(setup->cfg.wtype));
    printf("%8s %7s %12s %12s %10s %10s  %s\n", "ctx", "batch", "tok/s", "tok/s/user", "step", "memory", "bound");
    for (int c = 0; c < s->n_ctx; c++)
        for (int b = 0; b < s->n_batch; b++) {
            const sol_sweep_point *p = &s->points[c * s->n_batch + b];
            char step[32], mem[32];
            sol_fmt_time(step, sizeof step, p->step_s);
            sol_fmt_bytes(mem, sizeof mem, p->memory_bytes);
            printf("%8lld %7d %12.1f %12.2f %10s %10s  %s%s\n", (long long)p->ctx, p->batch, p->tokens_per_s,
                   p->user_tokens_per_s, step, mem, sol_bound_name(p->bound), p->fits ? "" : ", DOES NOT FIT");
        }
    printf("\nknees\n");
    for (int c = 0; c < s->n_ctx; c++) {
        char text[160];
        knee_text(&s->knees[c], text, sizeof text);
        printf("  ctx %lld: %s\n", (long long)s->knees[c].ctx, text);
    }
}

static void print_csv(const sweep *s)
{
    printf("ctx,batch,decode_tokens_per_s,user_tokens_per_s,step_s,memory_bytes,bound,fits\n");
    for (int i = 0; i < s->n_ctx * s->n_batch; i++) {
        const sol_sweep_point *p = &s->points[i];
        printf("%lld,%d,%.6g,%.6g,%.6g,%.0f,%s,%d\n", (long long)p->ctx, p->batch, p->tokens_per_s,
               p->user_tokens_per_s, p->step_s, p->memory_bytes, sol_bound_name(p->bound), p->fits);
    }
}

static int print_json(const sweep *s, const cli_analysis_setup_t *setup)
{
    cJSON *root = cJSON_CreateObject(), *points = cJSON_AddArrayToObject(root, "points");
    cJSON_AddStringToObject(root, "model", setup->model.name);
    cJSON_AddStringToObject(root, "hardware", setup->hw.name);
    for (int i = 0; i < s->n_ctx * s->n_batch; i++) {
        const sol_sweep_point *p = &s->points[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "ctx", (double)p->ctx);
        cJSON_AddNumberToObject(o, "batch", p->batch);
        cJSON_AddNumberToObject(o, "decode_tokens_per_s", p->tokens_per_s);
        cJSON_AddNumberToObject(o, "user_tokens_per_s", p->user_tokens_per_s);
        cJSON_AddNumberToObject(o, "step_s", p->step_s);
        cJSON_AddNumberToObject(o, "memory_bytes", p->memory_bytes);
        cJSON_AddStringToObject(o, "bound", sol_bound_name(p->bound));
        cJSON_AddBoolToObject(o, "fits", p->fits);
        cJSON_AddItemToArray(points, o);
    }
    cJSON *knees = cJSON_AddArrayToObject(root, "knees");
    for (int c = 0; c < s->n_ctx; c++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "ctx", (double)s->knees[c].ctx);
        cJSON_AddNumberToObject(o, "compute_bound_from_batch", (double)s->knees[c].compute_bound_from);
        cJSON_AddNumberToObject(o, "max_batch", (double)s->knees[c].max_batch);
        cJSON_AddItemToArray(knees, o);
    }
    return cli_print_json(root);
}

static int write_xy(FILE *f, const void *spec, sol_err *err) { return sol_plot_xy(f, spec, err); }

/* tok/s against batch, one series per context (at most the plot's limit),
 * the knees of the first context marked. */
static int plot(const sweep *s, const cli_analysis_setup_t *setup, const char *path)
{
    double x[MAX_POINTS * SOL_PLOT_MAX_SERIES], y[MAX_POINTS * SOL_PLOT_MAX_SERIES];
    char names[SOL_PLOT_MAX_SERIES][32], labels[2][64], title[200];
    sol_plot_series series[SOL_PLOT_MAX_SERIES];
    int n_series = s->n_ctx < SOL_PLOT_MAX_SERIES ? s->n_ctx : SOL_PLOT_MAX_SERIES;
    for (int c = 0; c < n_series; c++) {
        for (int b = 0; b < s->n_batch; b++) {
            x[c * MAX_POINTS + b] = (double)s->batch[b];
            y[c * MAX_POINTS + b] = s->points[c * s->n_batch + b].tokens_per_s;
        }
        snprintf(names[c], sizeof names[c], "ctx %lld", (long long)s->ctx[c]);
        series[c] = (sol_plot_series){names[c], &x[c * MAX_POINTS], &y[c * MAX_POINTS], s->n_batch};
    }
    sol_plot_marker markers[2];
    int n_markers = 0;
    const sol_sweep_knee *k = &s->knees[0];
    if (k->compute_bound_from > 0) {
        snprintf(labels[0], sizeof labels[0], "compute-bound from batch %lld (ctx %lld)", k->compute_bound_from,
                 (long long)k->ctx);
        markers[n_markers++] = (sol_plot_marker){(double)k->compute_bound_from, labels[0]};
    }
    if (k->max_batch > 0) {
        snprintf(labels[1], sizeof labels[1], "memory full past batch %lld (ctx %lld)", k->max_batch,
                 (long long)k->ctx);
        markers[n_markers++] = (sol_plot_marker){(double)k->max_batch, labels[1]};
    }
    if (setup->cfg.tp > 1)
        snprintf(title, sizeof title, "%s on %d x %s: decode at the speed of light", setup->model.name,
                 setup->cfg.tp, setup->hw.name);
    else
        snprintf(title, sizeof title, "%s on %s: decode at the speed of light", setup->model.name, setup->hw.name);
    sol_plot_xy_spec spec = {title, "batch (sequences)", "tokens/s (all sequences)", SOL_PLOT_LOG2, SOL_PLOT_LOG10,
                             series, n_series, markers, n_markers};
    return cli_write_plot("sweep", path, write_xy, &spec);
}

int cmd_sweep(int argc, char **argv)
{
    static const struct option long_opts[] = {CLI_ANALYSIS_LONG_OPTS,
                                              {"batches", 1, 0, OPT_BATCHES},
                                              {"ctxs", 1, 0, OPT_CTXS},
                                              {"plot", 1, 0, OPT_PLOT},
                                              {0, 0, 0, 0}};
    cli_analysis_opts opts;
    cli_analysis_opts_init(&opts);
    sweep s = {0};
    const char *hw = "h100-sxm", *kv = NULL, *plot_path = NULL;
    cli_format format = CLI_FORMAT_TABLE;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":", long_opts, NULL)) != -1) {
        switch (c) { /* --batch and --ctx take lists here */
        case OPT_BATCH:
        case OPT_BATCHES:
            if (cli_parse_int_list("sweep", "--batch", optarg, 1, 1 << 20, s.batch, MAX_POINTS, &s.n_batch))
                return SOL_ERR_USAGE;
            continue;
        case OPT_CTX:
        case OPT_CTXS:
            if (cli_parse_int_list("sweep", "--ctx", optarg, 1, 1LL << 30, s.ctx, MAX_POINTS, &s.n_ctx))
                return SOL_ERR_USAGE;
            opts.ctx_given = 1;
            opts.ctx = s.ctx[0]; /* the setup's check; every context is checked below */
            continue;
        case OPT_PLOT: plot_path = optarg; continue;
        case OPT_HW: hw = optarg; continue;
        case OPT_KV: kv = optarg; continue;
        case OPT_FORMAT:
            if (cli_parse_format("sweep", optarg, &format))
                return SOL_ERR_USAGE;
            continue;
        case ':': return cli_usage_error("sweep", "%s needs a value", argv[optind - 1]);
        default: break;
        }
        int shared = cli_analysis_opt("sweep", c, optarg, &opts);
        if (shared == 2 || shared == SOL_ERR_USAGE)
            return SOL_ERR_USAGE;
        if (!shared)
            return cli_usage_error("sweep", "unknown option \"%s\" (see sol sweep --help)", argv[optind - 1]);
    }
    if (optind != argc - 1)
        return cli_usage_error("sweep", optind == argc ? "missing MODEL (a preset, config.json or .gguf)"
                                                       : "expected one MODEL");
    cli_analysis_setup_t *setup = malloc(sizeof *setup);
    if (!setup)
        return SOL_ERR_RUNTIME;
    int rc = cli_analysis_setup("sweep", argv[optind], kv, hw, &opts, setup);
    if (!rc) {
        default_lists(&s, &setup->model);
        for (int i = 0; i < s.n_ctx && !rc; i++) /* each context against the trained limit */
            if (setup->model.ctx_max > 0 && s.ctx[i] > setup->model.ctx_max && !opts.allow_long_ctx)
                rc = cli_usage_error("sweep", "--ctx %lld is past %s's trained context of %d tokens; add "
                                              "--allow-long-context to sweep it anyway",
                                     s.ctx[i], setup->model.name, setup->model.ctx_max);
    }
    if (!rc)
        rc = run_sweep(&s, setup);
    if (!rc && plot_path)
        rc = plot(&s, setup, plot_path);
    if (!rc)
        rc = format == CLI_FORMAT_CSV ? (print_csv(&s), 0)
             : format == CLI_FORMAT_JSON ? print_json(&s, setup)
                                         : (print_table(&s, setup), 0);
    free(s.points);
    free(setup);
    return rc;
}
