/* sol bench's output: one list of named, typed fields per test, printed as
 * llama-bench prints its own (the shared fields under its names, in its
 * order and types) with sol's fields after them, or as sol's markdown table. */
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analyzer/analyzer.h"
#include "cli/bench_output.h"

#ifndef SOL_BUILD_NUMBER
#define SOL_BUILD_NUMBER 0
#endif

typedef enum { F_TEXT, F_BOOL, F_INT, F_REAL } field_type;

typedef struct {
    const char *name;
    field_type type;
    int present; /* 0: not measured (JSON leaves it out, CSV "", SQL NULL) */
    const char *text;
    int64_t integer; /* F_INT, F_BOOL */
    double real;
} field;

enum { MAX_FIELDS = 48 };

typedef struct {
    field item[MAX_FIELDS];
    int n;
    char test_time[32];
} field_list;

static field *put(field_list *l, const char *name, field_type type)
{
    field *f = &l->item[l->n++];
    *f = (field){.name = name, .type = type, .present = 1};
    return f;
}

static void put_text(field_list *l, const char *name, const char *v) { put(l, name, F_TEXT)->text = v ? v : ""; }
static void put_int(field_list *l, const char *name, int64_t v) { put(l, name, F_INT)->integer = v; }
static void put_bool(field_list *l, const char *name, int v) { put(l, name, F_BOOL)->integer = v != 0; }

/* A real that is not finite (a zero ceiling) or not measured is absent. */
static void put_real(field_list *l, const char *name, double v, int measured)
{
    field *f = put(l, name, F_REAL);
    f->real = v;
    f->present = measured && isfinite(v);
}

double bench_predicted_ts(const bench_result *r)
{
    if (!r->calibrated || !(r->calibrated->time_s > 0))
        return 0;
    return (double)(r->n_prompt + r->n_gen) * r->n_samples / r->calibrated->time_s;
}

void bench_ts_stats(const bench_result *r, double *avg_ts, double *stddev_ts)
{
    int tokens = r->n_prompt + r->n_gen, n = r->n_samples;
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++)
        mean += 1e9 * tokens / (double)r->samples_ns[i] / n;
    for (int i = 0; i < n && n > 1; i++) {
        double d = 1e9 * tokens / (double)r->samples_ns[i] - mean;
        var += d * d / (n - 1);
    }
    *avg_ts = mean;
    *stddev_ts = sqrt(var);
}

static void ns_stats(const bench_result *r, int64_t *avg_ns, int64_t *stddev_ns)
{
    int n = r->n_samples;
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++)
        mean += (double)r->samples_ns[i] / n;
    for (int i = 0; i < n && n > 1; i++)
        var += ((double)r->samples_ns[i] - mean) * ((double)r->samples_ns[i] - mean) / (n - 1);
    *avg_ns = llround(mean);
    *stddev_ns = llround(sqrt(var));
}

/* The fields of one row, in output order: llama-bench's, then sol's. */
static void fill_fields(const bench_result *r, field_list *l)
{
    double avg_ts, stddev_ts;
    int64_t avg_ns, stddev_ns;
    bench_ts_stats(r, &avg_ts, &stddev_ts);
    ns_stats(r, &avg_ns, &stddev_ns);
    time_t t = (time_t)r->test_time;
    struct tm tm;
    strftime(l->test_time, sizeof l->test_time, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    l->n = 0;
    put_text(l, "build_commit", SOL_GIT_COMMIT);
    put_int(l, "build_number", SOL_BUILD_NUMBER);
    put_text(l, "cpu_info", r->cpu_info);
    put_text(l, "gpu_info", r->gpu_info);
    put_text(l, "backends", r->backends);
    put_text(l, "model_filename", r->model_filename);
    put_text(l, "model_type", r->model_type);
    put_int(l, "model_size", r->model_size);
    put_int(l, "model_n_params", r->model_n_params);
    put_int(l, "n_batch", r->n_batch);
    put_int(l, "n_ubatch", r->n_ubatch);
    put_int(l, "n_threads", r->n_threads);
    put_text(l, "cpu_mask", "0x0"); /* sol sets no affinity */
    put_bool(l, "cpu_strict", 0);
    put_text(l, "type_k", r->type_k);
    put_text(l, "type_v", r->type_v);
    put_int(l, "n_gpu_layers", r->n_gpu_layers);
    put_bool(l, "use_mmap", r->use_mmap);
    put_int(l, "n_prompt", r->n_prompt);
    put_int(l, "n_gen", r->n_gen);
    put_int(l, "n_depth", r->n_depth);
    put_text(l, "test_time", l->test_time);
    put_int(l, "avg_ns", avg_ns);
    put_int(l, "stddev_ns", stddev_ns);
    put_real(l, "avg_ts", avg_ts, 1);
    put_real(l, "stddev_ts", stddev_ts, 1);
    put_text(l, "test", r->test);
    put_text(l, "backend", r->backend);
    put_text(l, "model", r->model);
    put_text(l, "model_hash", r->model_hash);
    put_text(l, "wtype", r->wtype);
    put_real(l, "achieved_gb_per_s", r->achieved_gb_per_s, 1);
    put_real(l, "sol_tokens_per_s", r->sol_tokens_per_s, 1);
    put_real(l, "sol_percent", 100 * avg_ts / r->sol_tokens_per_s, 1);
    put_real(l, "ceiling_gb_per_s", r->ceiling_gb_per_s, r->ceiling_gb_per_s > 0);
    put_text(l, "ceiling_source", r->ceiling_source);
    put_real(l, "read_check_gb_per_s", r->read_check_gb_per_s, r->read_check_gb_per_s > 0);
    put_real(l, "read_check_ratio", r->read_check_ratio, r->read_check_gb_per_s > 0);
    put_text(l, "kv_scheme", r->kv_scheme);
    put_real(l, "kv_bytes_allocated", r->kv_bytes_allocated, 1);
    put_real(l, "kv_bytes_predicted", r->kv_bytes_predicted, 1);
    put_real(l, "kv_read_bytes_last_step", r->kv_read_bytes_last_step, 1);
    put_real(l, "kv_read_bytes_last_step_plan", r->kv_read_bytes_last_step_plan, 1);
    put_text(l, "sol_version", r->sol_version);
    double predicted = bench_predicted_ts(r);
    put_real(l, "predicted_tokens_per_s", predicted, predicted > 0);
}

/* A real as text that reads back to the same double and reads as a real
 * (a decimal point or exponent), as llama-bench's avg_ts always does. */
static void real_text(double v, char *buf, size_t cap)
{
    for (int digits = 15; digits <= 17; digits++) { /* the shortest of these that reads back */
        snprintf(buf, cap, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (!strpbrk(buf, ".e"))
        strncat(buf, ".0", cap - strlen(buf) - 1);
}

static void json_add(cJSON *o, const field *f)
{
    char buf[40];
    if (!f->present)
        return;
    switch (f->type) {
    case F_TEXT: cJSON_AddStringToObject(o, f->name, f->text); break;
    case F_BOOL: cJSON_AddBoolToObject(o, f->name, (cJSON_bool)f->integer); break;
    case F_INT: cJSON_AddNumberToObject(o, f->name, (double)f->integer); break;
    case F_REAL:
        real_text(f->real, buf, sizeof buf);
        cJSON_AddRawToObject(o, f->name, buf);
        break;
    }
}

/* llama-bench's per-repetition arrays: nanoseconds and tokens/s. */
static void json_add_samples(cJSON *o, const bench_result *r)
{
    cJSON *ns = cJSON_AddArrayToObject(o, "samples_ns"), *ts = cJSON_AddArrayToObject(o, "samples_ts");
    char buf[40];
    for (int i = 0; i < r->n_samples; i++) {
        cJSON_AddItemToArray(ns, cJSON_CreateNumber((double)r->samples_ns[i]));
        real_text(1e9 * (r->n_prompt + r->n_gen) / (double)r->samples_ns[i], buf, sizeof buf);
        cJSON_AddItemToArray(ts, cJSON_CreateRaw(buf));
    }
}

/* Per op group, seconds per repetition the calibration predicts and the
 * per-op timing measured ("other" holds the time outside every op). */
static void json_add_groups(cJSON *o, const bench_result *r)
{
    cJSON *groups = cJSON_AddArrayToObject(o, "op_groups");
    const sol_calibrated_step *c = r->calibrated;
    char buf[40];
    for (int g = 0; g < SOL_GROUP_COUNT; g++) {
        if (c->group_s[g] <= 0 && c->group_measured_s[g] <= 0)
            continue;
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "group", sol_op_group_name((sol_op_group)g));
        real_text(c->group_s[g] / r->n_samples, buf, sizeof buf);
        cJSON_AddRawToObject(item, "predicted_s", buf);
        real_text(c->group_measured_s[g] / r->n_samples, buf, sizeof buf);
        cJSON_AddRawToObject(item, "measured_s", buf);
        cJSON_AddItemToArray(groups, item);
    }
}

cJSON *bench_result_json(const bench_result *r)
{
    field_list l;
    fill_fields(r, &l);
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < l.n; i++) {
        json_add(o, &l.item[i]);
        if (!strcmp(l.item[i].name, "stddev_ts")) /* where llama-bench puts them: after its own fields */
            json_add_samples(o, r);
    }
    if (bench_predicted_ts(r) > 0)
        json_add_groups(o, r);
    return o;
}

/* A field's value as llama-bench's CSV writes it: every value quoted,
 * booleans as 0/1, quotes doubled. */
static void csv_value(FILE *f, const field *x)
{
    char buf[40] = "";
    const char *text = buf;
    if (x->present && x->type == F_TEXT)
        text = x->text;
    else if (x->present && x->type == F_REAL)
        real_text(x->real, buf, sizeof buf);
    else if (x->present)
        snprintf(buf, sizeof buf, "%lld", (long long)x->integer);
    fputc('"', f);
    for (const char *p = text; *p; p++) {
        if (*p == '"')
            fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

static void print_csv(FILE *f, const field_list *l, int first)
{
    for (int i = 0; first && i < l->n; i++)
        fprintf(f, "%s%s", l->item[i].name, i + 1 < l->n ? "," : "\n");
    for (int i = 0; i < l->n; i++) {
        csv_value(f, &l->item[i]);
        fputc(i + 1 < l->n ? ',' : '\n', f);
    }
}

static const char *sql_type(field_type t)
{
    return t == F_TEXT ? "TEXT" : t == F_REAL ? "REAL" : "INTEGER";
}

static void sql_value(FILE *f, const field *x)
{
    char buf[40], *quoted = NULL;
    if (!x->present || (x->type == F_TEXT && !(quoted = sqlite3_mprintf("%Q", x->text))))
        fputs("NULL", f);
    else if (quoted)
        fputs(quoted, f);
    else if (x->type == F_REAL) {
        real_text(x->real, buf, sizeof buf);
        fputs(buf, f);
    } else
        fprintf(f, "%lld", (long long)x->integer);
    sqlite3_free(quoted);
}

/* llama-bench's table (llama_bench), typed as it types it; values quoted
 * by SQLite's own printf (%Q), never pasted. */
static void print_sql(FILE *f, const field_list *l, int first)
{
    if (first) {
        fputs("CREATE TABLE IF NOT EXISTS llama_bench (\n", f);
        for (int i = 0; i < l->n; i++)
            fprintf(f, "  %s %s%s\n", l->item[i].name, sql_type(l->item[i].type), i + 1 < l->n ? "," : "");
        fputs(");\n\n", f);
    }
    fputs("INSERT INTO llama_bench (", f);
    for (int i = 0; i < l->n; i++)
        fprintf(f, "%s%s", l->item[i].name, i + 1 < l->n ? ", " : ") VALUES (");
    for (int i = 0; i < l->n; i++) {
        sql_value(f, &l->item[i]);
        fputs(i + 1 < l->n ? ", " : ");\n", f);
    }
}

/* sol's table: the columns llama-bench's markdown has, and the roofline's. */
static void print_md(FILE *f, const bench_result *r, int first)
{
    char size[32], count[32];
    double avg_ts, stddev_ts;
    bench_ts_stats(r, &avg_ts, &stddev_ts);
    sol_fmt_bytes(size, sizeof size, (double)r->model_size);
    sol_fmt_count(count, sizeof count, (double)r->model_n_params, "");
    char predicted[32] = "-";
    if (bench_predicted_ts(r) > 0)
        snprintf(predicted, sizeof predicted, "%.2f", bench_predicted_ts(r));
    if (first)
        fprintf(f, "| model | size | params | backend | threads | test | t/s | pred t/s | GB/s | SOL t/s | %% SOL | "
                   "ceiling |\n"
                   "| --- | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |\n");
    fprintf(f, "| %s %s | %s | %s | %s | %d | %s | %.2f ± %.2f | %s | %.2f | %.1f | %.1f | %s |\n", r->model,
            r->wtype, size, count, r->backend, r->n_threads, r->test, avg_ts, stddev_ts, predicted,
            r->achieved_gb_per_s, r->sol_tokens_per_s, 100 * avg_ts / r->sol_tokens_per_s, r->ceiling_source);
}

void bench_print_row(FILE *f, bench_format format, const bench_result *r, int first)
{
    field_list l;
    if (format == BENCH_CSV || format == BENCH_SQL)
        fill_fields(r, &l);
    if (format == BENCH_CSV)
        print_csv(f, &l, first);
    else if (format == BENCH_SQL)
        print_sql(f, &l, first);
    else if (format == BENCH_MD)
        print_md(f, r, first);
    else if (format == BENCH_JSONL) {
        cJSON *o = bench_result_json(r);
        char *text = o ? cJSON_PrintUnformatted(o) : NULL;
        if (text)
            fprintf(f, "%s\n", text);
        free(text);
        cJSON_Delete(o);
    }
    fflush(f);
}
