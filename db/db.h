/* The one SQLite database (the only code with SQL): devices, measured
 * ceilings (probe), benchmark runs, and tuning trials and winners. File at
 * $SOL_DB, default $XDG_CACHE_HOME/sol/sol.db (~/.cache/sol/sol.db). */
#ifndef SOL_DB_DB_H
#define SOL_DB_DB_H

#include <stdint.h>
#include <stdio.h>

#include "util/err.h"

typedef struct sol_db sol_db;

/* Resolves the path ($SOL_DB, else the default) into buf; NULL (and buf
 * "") when there is no home directory or the path does not fit. */
const char *sol_db_path(char *buf, int cap);
/* Opens (creating it and its directory on first use), migrates forward in a
 * transaction, refuses a newer schema, a non-SQLite or corrupt file (never
 * overwriting it). path NULL = sol_db_path(). A file this user cannot write
 * opens for reading only when it is at the current version: reads work,
 * writes fail naming the file (an older one cannot be migrated: refused). */
int sol_db_open(const char *path, sol_db **out, sol_err *err);
void sol_db_close(sol_db *db);
/* 1 when the file could be opened for reading only (writes will fail):
 * commands that measure check this before measuring anything. */
int sol_db_readonly(const sol_db *db);
/* The path as messages show it (a long one with its middle elided). */
const char *sol_db_name(const sol_db *db);
int sol_db_schema_version(void); /* the version this sol writes */

typedef struct sol_device_info {
    char backend[16];   /* cpu | cuda */
    char name[128];     /* CPU model or GPU name */
    char uuid[64];      /* GPU UUID; CPU: "" */
    char cc[16];        /* compute capability; CPU: ISA summary ("avx2+fma") */
    char driver[32];
    char runtime[32];
    int cores;
    int64_t l1_bytes, l2_bytes, l3_bytes;
} sol_device_info;

/* Finds or inserts the device (key: backend, name, uuid, cc, driver,
 * runtime, cores), updates last_seen; returns its id. */
int sol_db_device(sol_db *db, const sol_device_info *dev, int64_t *id, sol_err *err);

typedef struct sol_probe_row {
    int64_t device_id;
    char kind[32];     /* mem_read_bw, mem_copy_bw, mem_triad_bw, fp32_peak_1core, fp32_peak, l1_bw, ... */
    double value;      /* median */
    char unit[16];     /* B/s, FLOP/s */
    char method[96];   /* what was measured, how */
    double spread;     /* (max - min) / median over the repetitions */
    int reps;
    int64_t time;      /* unix seconds */
} sol_probe_row;

int sol_db_probe_add(sol_db *db, const sol_probe_row *row, sol_err *err);
/* Latest probe of kind for the device: 0, -1 when none, or an error. */
int sol_db_probe_latest(sol_db *db, int64_t device_id, const char *kind, sol_probe_row *out, sol_err *err);

typedef struct sol_run_row {
    int64_t device_id;
    char model[128];
    char model_hash[20]; /* hex of a 64-bit hash of the model file's header + size */
    char plan_hash[20];
    char kv_scheme[64];
    char wtype[12], kvtype[12];
    char backend[16];
    char test[24];       /* pp512, tg128 */
    int threads, n_prompt, n_gen, reps;
    double tokens_per_s, tokens_per_s_stddev;
    double achieved_gbs;
    double sol_tokens_per_s, sol_percent;
    char sol_version[32], git_commit[48];
    int64_t time;
} sol_run_row;

int sol_db_run_add(sol_db *db, const sol_run_row *row, sol_err *err);
/* Calls fn for every run, oldest first; fn returning non-zero stops the walk
 * (which returns 0). sol_db_trials and sol_db_bests walk the same way. */
int sol_db_runs(sol_db *db, int (*fn)(void *user, const sol_run_row *row), void *user, sol_err *err);

/* Per-op times of one run (one test of `sol bench`), summed per op class
 * (schema 3). kind is a plan op kind name (matmul, attention, ...) or
 * "overhead": the run's time outside every op, count = ops run. */
typedef struct sol_op_time_row {
    int64_t device_id, run_id;
    char backend[16];
    int threads;
    char kind[16], dtype[12];
    int rows;        /* tokens per step: 1 decode, P prefill */
    int size_class;  /* floor(log2(bytes of one op)) */
    double bytes, flops, roofline_s, measured_s; /* summed over count ops */
    int64_t count;
    int64_t time;
} sol_op_time_row;

/* Adds the run and its op-class rows (their device_id, run_id, backend,
 * threads and time are the run's) in one transaction; *run_id (may be NULL)
 * gets the run's id. */
int sol_db_run_add_ops(sol_db *db, const sol_run_row *row, const sol_op_time_row *ops, int n_ops, int64_t *run_id,
                       sol_err *err);
/* The op-class sums a calibration uses for one device, backend and thread
 * count: per class, the rows of its latest per_class_runs runs summed
 * (run_id 0, count and times summed; time = the latest), oldest class
 * first. runs, first_time and last_time (may be NULL) describe the runs
 * used. Calls fn per class; fn non-zero stops. */
typedef struct sol_op_time_span {
    int runs;
    int64_t first_time, last_time;
} sol_op_time_span;
int sol_db_op_times(sol_db *db, int64_t device_id, const char *backend, int threads, int per_class_runs,
                    int (*fn)(void *user, const sol_op_time_row *row), void *user, sol_op_time_span *span,
                    sol_err *err);
/* The thread count of the latest op-time rows of device and backend: 0, -1
 * when there are none, or an error. */
int sol_db_op_time_threads(sol_db *db, int64_t device_id, const char *backend, int *threads, sol_err *err);
/* The device's id without recording it: 0, -1 when unknown, or an error. */
int sol_db_device_find(sol_db *db, const sol_device_info *dev, int64_t *id, sol_err *err);

/* Tuning (used by the tuner issue; the tables exist now). */
typedef struct sol_trial_row {
    int64_t device_id;
    char kernel[48], source_hash[20], compile_flags[128], shape[64], dtype[12];
    char params_json[512], counters_json[512];
    double median_s, spread;
    int reps, correct;
    int64_t time;
} sol_trial_row;
/* 0 when added; -1 when this configuration (device, kernel, source_hash,
 * compile_flags, shape, dtype, params_json) is already measured: the row is
 * left as it was, so the tuner can skip it; else an error. */
int sol_db_trial_add(sol_db *db, const sol_trial_row *row, sol_err *err);
int sol_db_trials(sol_db *db, int (*fn)(void *user, const sol_trial_row *row), void *user, sol_err *err);
typedef struct sol_best_row {
    int64_t device_id;
    char kernel[48], source_hash[20], shape[64], dtype[12], params_json[512];
    double median_s, default_s;
    int64_t time;
} sol_best_row;
/* Inserts, or replaces the row of the same (device, kernel, source_hash,
 * shape, dtype). */
int sol_db_best_set(sol_db *db, const sol_best_row *row, sol_err *err);
int sol_db_bests(sol_db *db, int (*fn)(void *user, const sol_best_row *row), void *user, sol_err *err);

/* A consistent copy (SQLite backup API) into a new file (an existing one is
 * refused) / merge of another machine's file, attached read-only: devices
 * are matched by their identifying columns, rows already present are not
 * duplicated (probe: device, kind, time, value; run: device, model_hash,
 * test, threads, time, tokens_per_s; trial: its key; best: the newer time
 * wins; op_time: its run's key and its class). rows_added counts probes,
 * runs, trials and op times added and bests added or replaced; importing
 * the same file twice adds 0. */
int sol_db_export(sol_db *db, const char *path, sol_err *err);
int sol_db_import(sol_db *db, const char *path, int *rows_added, sol_err *err);

#endif
