/* sol db: the results database from the command line: where it is, its
 * runs, tuning trials and winners as a table, JSON or CSV, and copying and
 * merging files between machines. */
#include <cJSON.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "db/db.h"
#include "util/quote.h"

void usage_db(FILE *f)
{
    fprintf(f, "usage: sol db path\n"
               "       sol db runs [--format table|json|csv]\n"
               "       sol db best [--format table|json|csv] [--backend cuda]\n"
               "       sol db trials [--format table|json|csv]\n"
               "       sol db export FILE\n"
               "       sol db import FILE\n\n"
               "The results database: devices, `sol hw probe` ceilings, `sol bench` runs, kernel\n"
               "tuning trials and winners, in one SQLite file at $SOL_DB (default\n"
               "$XDG_CACHE_HOME/sol/sol.db, else ~/.cache/sol/sol.db). Opening it migrates an\n"
               "older schema forward; a newer, foreign or damaged file is refused and left as it is.\n\n"
               "  path         print the database's path\n"
               "  runs         benchmark runs, oldest first (times in UTC)\n"
               "  best         the winning kernel parameters per device, kernel, shape and dtype;\n"
               "               --backend cuda: the CUDA tuner's winners with the hardware counters\n"
               "               of their trials (DRAM bytes against the plan's, SM and DRAM %% of\n"
               "               peak) and their cuBLAS baselines (table or JSON)\n"
               "  trials       every measured kernel configuration\n"
               "  export FILE  copy the database into FILE, which must not exist yet\n"
               "  import FILE  merge another machine's database: devices are matched by what\n"
               "               identifies them, rows already present are skipped\n");
}

/* ---- rows as JSON and CSV: one field table per row type ---------------------- */

typedef enum { F_TEXT, F_INT, F_INT64, F_DOUBLE } field_type;

typedef struct field {
    const char *name;
    field_type type;
    size_t offset;
} field;

#define FIELD(row_type, member, type) {#member, type, offsetof(row_type, member)}

static const field run_fields[] = {
    FIELD(sol_run_row, time, F_INT64),           FIELD(sol_run_row, device_id, F_INT64),
    FIELD(sol_run_row, model, F_TEXT),           FIELD(sol_run_row, model_hash, F_TEXT),
    FIELD(sol_run_row, plan_hash, F_TEXT),       FIELD(sol_run_row, kv_scheme, F_TEXT),
    FIELD(sol_run_row, wtype, F_TEXT),           FIELD(sol_run_row, kvtype, F_TEXT),
    FIELD(sol_run_row, backend, F_TEXT),         FIELD(sol_run_row, test, F_TEXT),
    FIELD(sol_run_row, threads, F_INT),          FIELD(sol_run_row, n_prompt, F_INT),
    FIELD(sol_run_row, n_gen, F_INT),            FIELD(sol_run_row, reps, F_INT),
    FIELD(sol_run_row, tokens_per_s, F_DOUBLE),  FIELD(sol_run_row, tokens_per_s_stddev, F_DOUBLE),
    FIELD(sol_run_row, achieved_gbs, F_DOUBLE),  FIELD(sol_run_row, sol_tokens_per_s, F_DOUBLE),
    FIELD(sol_run_row, sol_percent, F_DOUBLE),   FIELD(sol_run_row, sol_version, F_TEXT),
    FIELD(sol_run_row, git_commit, F_TEXT),
};

static const field trial_fields[] = {
    FIELD(sol_trial_row, time, F_INT64),          FIELD(sol_trial_row, device_id, F_INT64),
    FIELD(sol_trial_row, kernel, F_TEXT),         FIELD(sol_trial_row, source_hash, F_TEXT),
    FIELD(sol_trial_row, compile_flags, F_TEXT),  FIELD(sol_trial_row, shape, F_TEXT),
    FIELD(sol_trial_row, dtype, F_TEXT),          FIELD(sol_trial_row, params_json, F_TEXT),
    FIELD(sol_trial_row, counters_json, F_TEXT),  FIELD(sol_trial_row, median_s, F_DOUBLE),
    FIELD(sol_trial_row, spread, F_DOUBLE),       FIELD(sol_trial_row, reps, F_INT),
    FIELD(sol_trial_row, correct, F_INT),
};

static const field best_fields[] = {
    FIELD(sol_best_row, time, F_INT64),         FIELD(sol_best_row, device_id, F_INT64),
    FIELD(sol_best_row, kernel, F_TEXT),        FIELD(sol_best_row, source_hash, F_TEXT),
    FIELD(sol_best_row, shape, F_TEXT),         FIELD(sol_best_row, dtype, F_TEXT),
    FIELD(sol_best_row, params_json, F_TEXT),   FIELD(sol_best_row, median_s, F_DOUBLE),
    FIELD(sol_best_row, default_s, F_DOUBLE),
};

#define N_FIELDS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static cJSON *row_json(const field *fields, int n_fields, const void *row)
{
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; o && i < n_fields; i++) {
        const char *p = (const char *)row + fields[i].offset;
        cJSON *item = NULL;
        switch (fields[i].type) {
        case F_TEXT: item = cJSON_AddStringToObject(o, fields[i].name, p); break;
        case F_INT: item = cJSON_AddNumberToObject(o, fields[i].name, *(const int *)(const void *)p); break;
        case F_INT64:
            item = cJSON_AddNumberToObject(o, fields[i].name, (double)*(const int64_t *)(const void *)p);
            break;
        case F_DOUBLE: item = cJSON_AddNumberToObject(o, fields[i].name, *(const double *)(const void *)p); break;
        }
        if (!item) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

/* RFC 4180: text is quoted, quotes doubled. */
static void csv_text(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

static void csv_header(const field *fields, int n_fields)
{
    for (int i = 0; i < n_fields; i++)
        printf("%s%s", i ? "," : "", fields[i].name);
    putchar('\n');
}

static void csv_row(const field *fields, int n_fields, const void *row)
{
    for (int i = 0; i < n_fields; i++) {
        const char *p = (const char *)row + fields[i].offset;
        if (i)
            putchar(',');
        switch (fields[i].type) {
        case F_TEXT: csv_text(p); break;
        case F_INT: printf("%d", *(const int *)(const void *)p); break;
        case F_INT64: printf("%lld", (long long)*(const int64_t *)(const void *)p); break;
        case F_DOUBLE: printf("%.15g", *(const double *)(const void *)p); break;
        }
    }
    putchar('\n');
}

/* ---- tables ------------------------------------------------------------------ */

static const char *utc(int64_t t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%d %H:%M", &tm))
        snprintf(buf, cap, "%lld", (long long)t);
    return buf;
}

static void run_table_header(void)
{
    printf("%-16s %4s  %-28s %-6s %-6s %3s %18s %9s %9s %6s  %s\n", "time (UTC)", "dev", "model", "wtype", "test",
           "thr", "tok/s", "GB/s", "SOL tok/s", "% SOL", "commit");
}

static void run_table_row(const void *row)
{
    const sol_run_row *r = row;
    char when[32], speed[32];
    snprintf(speed, sizeof speed, "%.2f ± %.2f", r->tokens_per_s, r->tokens_per_s_stddev);
    printf("%-16s %4lld  %-28.28s %-6s %-6s %3d %19s %9.2f %9.1f %6.1f  %s\n", utc(r->time, when, sizeof when),
           (long long)r->device_id, r->model, r->wtype, r->test, r->threads, speed, r->achieved_gbs,
           r->sol_tokens_per_s, r->sol_percent, r->git_commit);
}

static void trial_table_header(void)
{
    printf("%-16s %4s  %-20s %-16s %-6s %-24s %12s %7s %4s %s\n", "time (UTC)", "dev", "kernel", "shape", "dtype",
           "params", "median", "spread", "reps", "ok");
}

static void trial_table_row(const void *row)
{
    const sol_trial_row *t = row;
    char when[32], median[32];
    sol_fmt_time(median, sizeof median, t->median_s);
    printf("%-16s %4lld  %-20.20s %-16.16s %-6s %-24.24s %12s %6.1f%% %4d %s\n", utc(t->time, when, sizeof when),
           (long long)t->device_id, t->kernel, t->shape, t->dtype, t->params_json, median, 100 * t->spread, t->reps,
           t->correct ? "yes" : "NO");
}

static void best_table_header(void)
{
    printf("%4s  %-20s %-16s %-6s %-28s %12s %12s %8s  %s\n", "dev", "kernel", "shape", "dtype", "params", "median",
           "default", "speedup", "time (UTC)");
}

static void best_table_row(const void *row)
{
    const sol_best_row *b = row;
    char when[32], median[32], dflt[32], speedup[16] = "-";
    sol_fmt_time(median, sizeof median, b->median_s);
    sol_fmt_time(dflt, sizeof dflt, b->default_s);
    if (b->default_s > 0 && b->median_s > 0)
        snprintf(speedup, sizeof speedup, "%.2fx", b->default_s / b->median_s);
    printf("%4lld  %-20.20s %-16.16s %-6s %-28.28s %12s %12s %8s  %s\n", (long long)b->device_id, b->kernel,
           b->shape, b->dtype, b->params_json, median, b->default_s > 0 ? dflt : "-", speedup,
           utc(b->time, when, sizeof when));
}

/* ---- listing ----------------------------------------------------------------- */

typedef struct listing {
    const char *what; /* runs, trials, best configurations */
    size_t row_size;
    const field *fields;
    int n_fields;
    void (*table_header)(void);
    void (*table_row)(const void *row);
} listing;

typedef struct walk {
    const listing *l;
    cli_format format;
    cJSON *list;
    int n, out_of_memory;
} walk;

/* A row's text as stored may come from any file (an import, a model's
 * name): the table and CSV show a copy made printable (JSON escapes). */
static const void *printable_row(const listing *l, const void *row, void *copy)
{
    memcpy(copy, row, l->row_size);
    for (int i = 0; i < l->n_fields; i++)
        if (l->fields[i].type == F_TEXT)
            sol_printable((char *)copy + l->fields[i].offset);
    return copy;
}

static int on_row(walk *w, const void *row)
{
    union {
        sol_run_row run;
        sol_trial_row trial;
        sol_best_row best;
    } copy;
    w->n++;
    if (w->format != CLI_FORMAT_JSON)
        row = printable_row(w->l, row, &copy);
    if (w->format == CLI_FORMAT_JSON) {
        cJSON *o = row_json(w->l->fields, w->l->n_fields, row);
        if (!o || !cJSON_AddItemToArray(w->list, o)) {
            cJSON_Delete(o);
            w->out_of_memory = 1;
            return 1;
        }
    } else if (w->format == CLI_FORMAT_CSV) {
        csv_row(w->l->fields, w->l->n_fields, row);
    } else {
        w->l->table_row(row);
    }
    return 0;
}

static int on_run(void *user, const sol_run_row *row) { return on_row(user, row); }
static int on_trial(void *user, const sol_trial_row *row) { return on_row(user, row); }
static int on_best(void *user, const sol_best_row *row) { return on_row(user, row); }

static const listing run_listing = {"runs", sizeof(sol_run_row), run_fields, N_FIELDS(run_fields),
                                    run_table_header, run_table_row};
static const listing trial_listing = {"trials", sizeof(sol_trial_row), trial_fields, N_FIELDS(trial_fields),
                                      trial_table_header, trial_table_row};
static const listing best_listing = {"best configurations", sizeof(sol_best_row), best_fields, N_FIELDS(best_fields),
                                     best_table_header, best_table_row};

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* runs, trials, best: a missing database lists nothing and is not created. */
static int db_list(const listing *l, cli_format format, int cuda)
{
    char path[4096];
    sol_err err = {0};
    sol_db *db = NULL;
    walk w = {.l = l, .format = format};
    int rc = 0;
    if (!sol_db_path(path, sizeof path)) {
        sol_fail(&err, SOL_ERR_RUNTIME, "cannot place the database: set SOL_DB or HOME");
        return cli_fail("db", &err);
    }
    if (file_exists(path) && (rc = sol_db_open(path, &db, &err)))
        goto exit;
    if (!cuda && format == CLI_FORMAT_JSON && !(w.list = cJSON_CreateArray())) {
        rc = sol_fail(&err, SOL_ERR_RUNTIME, "out of memory listing %s", l->what);
        goto exit;
    }
    if (!cuda && format == CLI_FORMAT_CSV)
        csv_header(l->fields, l->n_fields);
    else if (!cuda && format == CLI_FORMAT_TABLE)
        l->table_header();
    if (cuda) {
        rc = cli_db_best_cuda(db, format, &err);
        goto exit;
    }
    if (db) {
        if (l == &run_listing)
            rc = sol_db_runs(db, on_run, &w, &err);
        else if (l == &trial_listing)
            rc = sol_db_trials(db, on_trial, &w, &err);
        else
            rc = sol_db_bests(db, on_best, &w, &err);
        if (rc)
            goto exit;
        if (w.out_of_memory) {
            rc = sol_fail(&err, SOL_ERR_RUNTIME, "out of memory listing %s", l->what);
            goto exit;
        }
    }
    if (format == CLI_FORMAT_JSON) {
        rc = cli_print_json(w.list);
        w.list = NULL;
    } else if (format == CLI_FORMAT_TABLE && w.n == 0) {
        printf("(no %s in %s)\n", l->what, path);
    }
exit:
    cJSON_Delete(w.list);
    sol_db_close(db);
    return rc && err.msg[0] ? cli_fail("db", &err) : rc;
}

static int db_export(const char *file)
{
    char path[4096];
    sol_err err = {0};
    sol_db *db = NULL;
    int rc = 0;
    if (!sol_db_path(path, sizeof path))
        rc = sol_fail(&err, SOL_ERR_RUNTIME, "cannot place the database: set SOL_DB or HOME");
    else if (!file_exists(path))
        rc = sol_fail(&err, SOL_ERR_RUNTIME, "no database at %s yet: nothing to export", path);
    if (rc || (rc = sol_db_open(path, &db, &err)) || (rc = sol_db_export(db, file, &err)))
        goto exit;
    printf("exported %s to %s\n", path, file);
exit:
    sol_db_close(db);
    return rc ? cli_fail("db", &err) : 0;
}

static int db_import(const char *file)
{
    char path[4096];
    sol_err err = {0};
    sol_db *db = NULL;
    int rc = 0, added = 0;
    if (!sol_db_path(path, sizeof path))
        rc = sol_fail(&err, SOL_ERR_RUNTIME, "cannot place the database: set SOL_DB or HOME");
    if (rc || (rc = sol_db_open(path, &db, &err)) || (rc = sol_db_import(db, file, &added, &err)))
        goto exit;
    printf("imported %d row%s from %s into %s\n", added, added == 1 ? "" : "s", file, path);
exit:
    sol_db_close(db);
    return rc ? cli_fail("db", &err) : 0;
}

int cmd_db(int argc, char **argv)
{
    cli_format format = CLI_FORMAT_TABLE;
    int format_given = 0, cuda = 0;
    const char *positional[3];
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--format")) {
            if (i + 1 == argc)
                return cli_usage_error("db", "--format needs a value");
            if (cli_parse_format("db", argv[++i], &format))
                return SOL_ERR_USAGE;
            format_given = 1;
        } else if (!strncmp(argv[i], "--format=", 9)) {
            if (cli_parse_format("db", argv[i] + 9, &format))
                return SOL_ERR_USAGE;
            format_given = 1;
        } else if (!strcmp(argv[i], "--backend")) {
            if (i + 1 == argc)
                return cli_usage_error("db", "--backend needs a value");
            if (strcmp(argv[++i], "cuda"))
                return cli_usage_error("db", "--backend: only cuda (the CUDA tuner's winners with their counters), "
                                       "not \"%s\"", argv[i]);
            cuda = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error("db", "unknown option \"%s\" (see sol db --help)", argv[i]);
        } else if (n_pos == 3) {
            return cli_usage_error("db", "too many arguments (see sol db --help)");
        } else {
            positional[n_pos++] = argv[i];
        }
    }
    if (!n_pos)
        return cli_usage_error("db", "missing subcommand (path, runs, best, trials, export FILE or import FILE)");
    const char *sub = positional[0];
    const listing *l = !strcmp(sub, "runs")     ? &run_listing
                       : !strcmp(sub, "trials") ? &trial_listing
                       : !strcmp(sub, "best")   ? &best_listing
                                                : NULL;
    int wants_file = !strcmp(sub, "export") || !strcmp(sub, "import");
    if (!l && !wants_file && strcmp(sub, "path"))
        return cli_usage_error("db", "unknown subcommand \"%s\" (path, runs, best, trials, export or import)", sub);
    if (format_given && !l)
        return cli_usage_error("db", "--format applies to runs, best and trials");
    if (wants_file && n_pos != 2)
        return cli_usage_error("db", "%s needs exactly one FILE", sub);
    if (!wants_file && n_pos != 1)
        return cli_usage_error("db", "%s takes no arguments", sub);

    if (cuda && l != &best_listing)
        return cli_usage_error("db", "--backend cuda applies to best");
    if (cuda && format == CLI_FORMAT_CSV)
        return cli_usage_error("db", "best --backend cuda lists as a table or JSON, not CSV");
    if (l)
        return db_list(l, format, cuda);
    if (!strcmp(sub, "export"))
        return db_export(positional[1]);
    if (!strcmp(sub, "import"))
        return db_import(positional[1]);
    char path[4096];
    if (!sol_db_path(path, sizeof path)) {
        sol_err err = {0};
        sol_fail(&err, SOL_ERR_RUNTIME, "cannot place the database: set SOL_DB or HOME");
        return cli_fail("db", &err);
    }
    puts(path);
    return 0;
}
