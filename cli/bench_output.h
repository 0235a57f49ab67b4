/* sol bench's rows as text: llama-bench's field names, types and formats
 * (json, jsonl, csv, sql) for what both tools measure, sol's own fields after
 * them, and sol's markdown table. */
#ifndef SOL_CLI_BENCH_OUTPUT_H
#define SOL_CLI_BENCH_OUTPUT_H
#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { BENCH_MD, BENCH_JSON, BENCH_JSONL, BENCH_CSV, BENCH_SQL } bench_format;

/* One test (ppP or tgN at one thread count). The first group has
 * llama-bench's meaning and units; avg_ns, avg_ts and their deviations are
 * computed from samples_ns, as llama-bench does. */
typedef struct bench_result {
    const char *model_filename;
    char cpu_info[128], gpu_info[128], backends[32], model_type[160];
    char type_k[12], type_v[12];
    int64_t model_size;     /* bytes of tensor data */
    int64_t model_n_params; /* elements of all tensors */
    int n_batch, n_ubatch;  /* prefill rows per step */
    int n_threads, n_gpu_layers, use_mmap;
    int n_prompt, n_gen, n_depth; /* n_depth: tokens in the cache before the test */
    int64_t test_time;          /* unix seconds when the test started */
    const int64_t *samples_ns;  /* one per timed repetition */
    int n_samples;
    /* sol's own */
    const char *test, *backend, *model, *model_hash, *wtype, *ceiling_source, *sol_version;
    double achieved_gb_per_s;   /* bytes the op plans move / measured time */
    double sol_tokens_per_s;    /* the speed of light of the same plans */
    double ceiling_gb_per_s;    /* the memory bandwidth that speed of light uses */
    double read_check_gb_per_s, read_check_ratio; /* 0: not measured */
    /* the KV scheme run and its bytes: allocated by the engine and the
     * analyzer's cache at the bench's context; read by the test's last
     * step's attention, counted by the engine and by its plan */
    const char *kv_scheme;
    double kv_bytes_allocated, kv_bytes_predicted;
    double kv_read_bytes_last_step, kv_read_bytes_last_step_plan;
    /* the calibrated prediction from earlier runs (sol_calibrated_table of
     * this test's op classes over all repetitions); NULL: no calibration */
    const struct sol_calibrated_step *calibrated;
} bench_result;

/* tokens/s the calibration predicts for the test; 0 when there is none */
double bench_predicted_ts(const bench_result *r);

/* Mean and sample standard deviation of the repetitions' tokens/s
 * (llama-bench's avg_ts and stddev_ts). */
void bench_ts_stats(const bench_result *r, double *avg_ts, double *stddev_ts);

/* The row as a JSON object in field order (for -o json and -o jsonl). */
cJSON *bench_result_json(const bench_result *r);

/* Prints one row in md, jsonl, csv or sql; first: with the header. */
void bench_print_row(FILE *f, bench_format format, const bench_result *r, int first);

#endif
