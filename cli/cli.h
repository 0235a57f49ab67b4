/* Shared pieces of the command line: the command table, error reporting
 * with exit codes (0 ok, 1 runtime failure, 2 usage), strict number parsing
 * and the model/KV/hardware options analyze and compare share. */
#ifndef SOL_CLI_CLI_H
#define SOL_CLI_CLI_H

#include <stdio.h>

#include <cJSON.h>

#include "analyzer/analyzer.h"
#include "engine/engine.h"
#include "kernels/backend.h"
#include "kernels/cpu.h"

typedef struct sol_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    void (*usage)(FILE *f);
    const char *summary;
} sol_cmd;

int cmd_analyze(int argc, char **argv);
void usage_analyze(FILE *f);
int cmd_compare(int argc, char **argv);
void usage_compare(FILE *f);
int cmd_sweep(int argc, char **argv);
void usage_sweep(FILE *f);
int cmd_hw(int argc, char **argv);
int cli_hw_probe(int argc, char **argv);
void usage_hw(FILE *f);
int cmd_tokenize(int argc, char **argv);
void usage_tokenize(FILE *f);
int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
void usage_chat(FILE *f);
void usage_run(FILE *f);
int cmd_tune(int argc, char **argv);
void usage_tune(FILE *f);
int cmd_bench(int argc, char **argv);
void usage_bench(FILE *f);
int cmd_synth(int argc, char **argv);
void usage_synth(FILE *f);
int cmd_db(int argc, char **argv);
void usage_db(FILE *f);

/* Prints "sol CMD: message" on stderr; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints the error's one line on stderr; returns its exit code. */
int cli_fail(const char *cmd, const sol_err *err);
/* Strict integer parse of a flag value; on failure prints and returns 2. */
int cli_parse_ll(const char *cmd, const char *flag, const char *text, long long *out);
/* "1,2, 3": up to cap integers in [lo, hi]; an empty item, a stray
 * character or a value out of range is a usage error naming flag. */
int cli_parse_int_list(const char *cmd, const char *flag, const char *text, long long lo, long long hi,
                       long long *out, int cap, int *n);
/* --activations q8|f32; a usage error names cmd otherwise */
int cli_parse_activations(const char *cmd, const char *text, sol_activations *out);
/* j.simlayer: SimLayerKV's scores and choice, when the scheme has it. */
void cli_add_simlayer_json(cJSON *j, const sol_engine *e);
/* j.experts: a MoE model's counts (engine.h sol_expert_stats) and its
 * routing histogram per MoE layer (what sol analyze --routing reads). */
void cli_add_experts_json(cJSON *j, const sol_engine *e);
cJSON *cli_experts_json(const sol_expert_stats *st, int first_layer);
/* --kvtype: f32, f16, q8_0, q4_0, fp8_e4m3 (what the engine's caches store). */
int cli_parse_kvtype(const char *cmd, const char *text, sol_dtype *out);
const char *cli_activations_name(sol_activations a);
/* Prints doc as indented JSON on stdout and deletes it; 1 when out of memory. */
int cli_print_json(cJSON *doc);
/* True when argv holds -h or --help before any "--". */
int cli_wants_help(int argc, char **argv);

typedef enum cli_format { CLI_FORMAT_TABLE, CLI_FORMAT_JSON, CLI_FORMAT_CSV } cli_format;
int cli_parse_format(const char *cmd, const char *text, cli_format *out);

/* Options analyze and compare share. NULL strings mean "model default". */
typedef struct cli_analysis_opts {
    const char *wtype, *kvtype, *atype;
    long long batch, ctx, prompt, tp;
    int ctx_given;      /* --ctx was passed (else: 4096, or the model's limit when smaller) */
    int allow_long_ctx; /* --allow-long-context: a context past the trained limit only warns */
    double mem_efficiency, flops_efficiency; /* --efficiency mem=F,flops=F (0: not given) */
} cli_analysis_opts;

void cli_analysis_opts_init(cli_analysis_opts *o);
/* Handles one shared option (getopt value c, argument arg): 1 = consumed,
 * 0 = not a shared option, 2 = usage error already printed. */
int cli_analysis_opt(const char *cmd, int c, const char *arg, cli_analysis_opts *o);
/* --plot FILE: writes path with write(f, arg, err); one line naming the
 * file when it cannot be opened or written. */
typedef int (*cli_plot_writer)(FILE *f, const void *arg, sol_err *err);
int cli_write_plot(const char *cmd, const char *path, cli_plot_writer write, const void *arg);

/* MODEL loaded, --kv applied (kv_text may be NULL), the hardware entry and
 * the analysis configuration from the options: what sol_analyze takes. */
typedef struct cli_analysis_setup_t {
    sol_model model;
    sol_kv_scheme kv;
    sol_hw hw;
    sol_analysis_config cfg;
} cli_analysis_setup_t;
int cli_analysis_setup(const char *cmd, const char *model_spec, const char *kv_text, const char *hw_name,
                       const cli_analysis_opts *o, cli_analysis_setup_t *s);
/* Loads MODEL, applies --kv (kv_text may be NULL) and hw, and analyzes. */
int cli_run_analysis(const char *cmd, const char *model_spec, const char *kv_text, const char *hw_name,
                     const cli_analysis_opts *o, sol_analysis *out);

/* The local CPU as a database device, and probe figures applied to its
 * hardware entry (required: fail when there is no probe). */
struct sol_device_info;
void cli_cpu_device(const sol_hw *hw, struct sol_device_info *dev);
int cli_apply_probes(sol_hw *hw, int required, sol_err *err);
/* A GPU as a database device (the probe's row), and its latest probe
 * figures over its datasheet entry. */
struct sol_cuda_device;
void cli_gpu_device(const struct sol_cuda_device *gpu, struct sol_device_info *dev);
int cli_apply_gpu_probes(sol_hw *hw, const struct sol_device_info *dev, sol_err *err);
/* Shared by the CPU and CUDA probes (cmd_probe.c). */
struct sol_probe_result;
void cli_probe_progress(void *user, const char *what, int step, int steps);
int cli_probe_store(const struct sol_device_info *dev, const struct sol_probe_result *res, int n, sol_err *err);
cJSON *cli_probe_json(const struct sol_probe_result *res, int n); /* an array, one object each */
typedef struct cli_cuda_probe_opts {
    int device, reps, gemm_n;
    long long size_mib; /* 0 = default */
    cli_format format;
} cli_cuda_probe_opts;
int cli_hw_probe_cuda(const cli_cuda_probe_opts *o); /* probe_cuda.c */

/* Winners of `sol tune` for this CPU and these kernel sources; and how
 * many of a plan's distinct matmul shapes they cover. */
int cli_load_tuning(const sol_hw *cpu, sol_tuning *out, sol_err *err);
void cli_tuning_free(sol_tuning *t);
void cli_tuned_shapes(const sol_tuning *t, const sol_plan *plan, sol_activations act, int *tuned, int *total);

/* A stored trial is of key's problem: its device (unless any_device),
 * kernel, sources, compile flags, shape and type (the CPU and CUDA tuners'
 * resume rule). */
struct sol_trial_row;
struct sol_db;
int cli_trial_is_of(const struct sol_trial_row *row, const struct sol_trial_row *key, int any_device);
/* The stored winner of key's problem (same device, kernel, sources, shape
 * and type), found or not: 0, or a database error. */
typedef struct cli_stored_winner {
    int found;
    double best_s, default_s;
    char params[512];
} cli_stored_winner;
int cli_stored_winner_of(struct sol_db *db, const struct sol_trial_row *key, cli_stored_winner *out, sol_err *err);

/* sol tune --backend cuda (tune_cuda.c): the CUDA matvec tuned per decode
 * shape of MODEL (or --shape) and per number of inputs in batches (bit
 * m-1 for m), on GPU `device`. budget <= 0: CLI_TUNE_CUDA_BUDGET. */
#define CLI_TUNE_CUDA_BUDGET 64
#define CLI_TUNE_CUDA_REPS 25
struct sol_strategy_ops;
typedef struct cli_tune_cuda_opts {
    const char *backend;      /* "cuda" or a plugin file */
    const char *model, *shape; /* one of them */
    int device;
    const struct sol_strategy_ops *strategy;
    int budget, reps, force;
    uint64_t seed;
    unsigned batches;
    int no_counters;           /* 1: trials timed only, no CUPTI counting */
    unsigned kernels;          /* CLI_TUNE_CUDA_MATVEC | _ATTENTION | _RMSNORM: a model's kernels to tune */
    int64_t ctx;               /* cache slots of the attention problems */
} cli_tune_cuda_opts;
#define CLI_TUNE_CUDA_MATVEC 1u
#define CLI_TUNE_CUDA_ATTENTION 2u
#define CLI_TUNE_CUDA_RMSNORM 4u /* the fused RMSNorm matvec (--kernels rmsnorm_matvec) */
#define CLI_TUNE_CUDA_CTX 4096
int cli_tune_cuda(const cli_tune_cuda_opts *o);
/* Visits each single-batch matmul op of MODEL's plan at n_tokens[0..n_passes)
 * token rows, in plan order (plan_matmuls.c: the tuners' shapes). */
struct sol_op;
typedef void (*cli_matmul_fn)(void *user, const struct sol_op *op);
int cli_plan_matmuls(const char *spec, const int *n_tokens, int n_passes, cli_matmul_fn fn, void *user, sol_err *err);
/* The same for the matmuls the engine folds a norm into: those right after
 * the attention, FFN and output norms (rmsnorm_matmul_group's). */
int cli_plan_norm_matmuls(const char *spec, const int *n_tokens, int n_passes, cli_matmul_fn fn, void *user,
                          sol_err *err);
/* sol db best --backend cuda (db_best_cuda.c): the CUDA winners with their
 * trials' counters and baselines, as a table or JSON (db NULL: none). */
struct sol_db;
int cli_db_best_cuda(struct sol_db *db, cli_format format, sol_err *err);

/* --backend (backend.c): cpu, cuda or a plugin file; the CPU-only
 * settings are ignored elsewhere. */
typedef struct cli_backend_opts {
    const char *name;          /* NULL or "cpu", "cuda", a path */
    int threads;               /* <= 0: physical cores */
    int device;                /* cuda */
    const sol_tuning *tuning;  /* cpu: `sol tune` winners */
    int mapped_weights;        /* cpu */
    int no_graph;              /* cuda: decode op by op */
    int profile_every;         /* cuda: every N-th decode step timed op by op (0: none) */
    int gemm_cublas;           /* cuda: F16/BF16 matmuls through cuBLAS */
    int no_tuned;              /* cuda: the built-in matvecs only (--no-tuned) */
    const char *model;         /* cuda: the model, for "N of M shapes tuned" (NULL: not said) */
    int counters;              /* cuda: count decode steps with CUPTI (--counters, sol run) */
} cli_backend_opts;
#define CLI_BACKEND_HELP                                                                              \
    "  --backend B           cpu (default), cuda (build/sol-cuda.so), or the path of a backend\n"    \
    "                        plugin file\n"
/* The CUDA backend's options, shared by run, bench and chat: their
 * getopt codes, long options and help. */
enum { OPT_CUDA_DEVICE = 7000, OPT_CUDA_NO_GRAPH, OPT_CUDA_PROFILE_EVERY, OPT_CUDA_GEMM, OPT_CUDA_COUNTERS };
#define CLI_CUDA_LONG_OPTS                                                                            \
    {"device", 1, 0, OPT_CUDA_DEVICE}, {"no-graph", 0, 0, OPT_CUDA_NO_GRAPH},                          \
        {"profile-every", 1, 0, OPT_CUDA_PROFILE_EVERY}, {"gemm", 1, 0, OPT_CUDA_GEMM}
#define CLI_CUDA_HELP                                                                                 \
    "  --device N            cuda: which GPU (default 0)\n"                                          \
    "  --no-graph            cuda: run every decode step op by op (default: one CUDA graph a step)\n"\
    "  --profile-every K     cuda: decode step 0 and every K-th after it run op by op with per-op\n" \
    "                        events, for the per-op times (default 16; 0: never, no per-op times)\n" \
    "  --gemm G              cuda: custom (default) or cublas: F16/BF16 matmuls through cuBLAS\n"
#define CLI_CUDA_PROFILE_EVERY 16
/* --counters: only sol run shows counted figures, so only it takes the
 * flag (parsed by cli_parse_cuda_opt like the others). */
#define CLI_CUDA_COUNTERS_OPT {"counters", 0, 0, OPT_CUDA_COUNTERS}
#define CLI_CUDA_COUNTERS_HELP                                                                        \
    "  --counters            cuda: count the DRAM bytes of every K-th decode step (K of\n"          \
    "                        --profile-every, 16 when 0) with CUPTI by replaying its graph after\n" \
    "                        its time is taken; shown beside the plan's bytes\n"
/* Sets o from a CLI_CUDA_LONG_OPTS code: 1 taken, 2 bad value (reported),
 * 0 not one of them. */
/* The CUDA tuner's winners for the engine (tuning_cuda.c): this GPU's rows
 * of `sol tune --backend cuda` under the plugin's kernel sources and NVRTC,
 * and the image cache they were compiled into. */
struct sol_cuda_plugin;
struct sol_cuda_tuned_mv;
struct sol_cuda_tuned_attn;
typedef struct cli_cuda_tuning {
    struct sol_cuda_tuned_mv *v;
    int n;
    struct sol_cuda_tuned_attn *attn; /* the attention tuner's winners */
    int n_attn;
    int tunable; /* the plugin has the tuner's entries */
    const char *cache; /* NULL: none */
    char cache_buf[4096];
} cli_cuda_tuning;
/* Nothing (0) without a database, the device or the tuner's entries. */
int cli_cuda_tuning_load(const struct sol_cuda_plugin *cu, int device, cli_cuda_tuning *out, sol_err *err);
void cli_cuda_tuning_free(cli_cuda_tuning *t);
/* Distinct (type, N, K) of model's decode matmuls, and of them those with a
 * winner (any m); -1 when the model or its plan cannot be made. */
int cli_cuda_tuned_shapes(const cli_cuda_tuning *t, const char *model, int *tuned, int *total);
/* "cuda: N of M decode matmul shapes tuned, attention tuned (at C slots)"
 * on stderr, and how many winners did not load (of t->n, `loaded` did; of
 * t->n_attn, `attn_loaded`). */
void cli_cuda_tuning_report(const cli_cuda_tuning *t, int loaded, int attn_loaded, const char *model, int no_tuned);
/* Where compiled matvec images are cached: $SOL_CUDA_CACHE, else
 * <the database's folder>/cuda-kernels (in buf); NULL: nowhere. */
const char *cli_cuda_image_cache(char *buf, size_t cap);
int cli_parse_cuda_opt(const char *cmd, int code, const char *arg, cli_backend_opts *o);
int cli_parse_backend(const char *cmd, const char *text, const char **out);
int cli_backend_is_cpu(const cli_backend_opts *o);
int cli_backend_open(const cli_backend_opts *o, sol_backend **out, sol_err *err);
/* The hardware the backend of o runs on, for the SOL columns and the
 * database: the `cpu` entry with `sol hw probe` figures for the CPU backend
 * and for plugins without devices (the test backend computes on the CPU);
 * for cuda the GPU's datasheet entry with its probe's figures. hw_name
 * (--hw) names the entry instead. */
int cli_backend_hw(const cli_backend_opts *o, const char *hw_name, sol_hw *hw, struct sol_device_info *dev,
                   sol_err *err);

/* getopt_long codes of the shared options. */
enum {
    OPT_WTYPE = 1000, OPT_KVTYPE, OPT_ATYPE, OPT_BATCH, OPT_CTX, OPT_PROMPT, OPT_TP,
    OPT_FORMAT, OPT_HW, OPT_KV, OPT_LIST_MODELS, OPT_HELP, OPT_ALLOW_LONG, OPT_EFFICIENCY,
};
#define CLI_ANALYSIS_LONG_OPTS                                                                        \
    {"wtype", 1, 0, OPT_WTYPE}, {"kvtype", 1, 0, OPT_KVTYPE}, {"atype", 1, 0, OPT_ATYPE},             \
        {"batch", 1, 0, OPT_BATCH}, {"ctx", 1, 0, OPT_CTX}, {"prompt", 1, 0, OPT_PROMPT},             \
        {"tp", 1, 0, OPT_TP}, {"format", 1, 0, OPT_FORMAT}, {"hw", 1, 0, OPT_HW}, {"kv", 1, 0, OPT_KV}, \
        {"help", 0, 0, OPT_HELP}, {"allow-long-context", 0, 0, OPT_ALLOW_LONG},        \
        {"efficiency", 1, 0, OPT_EFFICIENCY}

#define CLI_ANALYSIS_OPTS_HELP                                                                        \
    "  --hw NAME        hardware preset, `cpu` (this machine) or a JSON file (default h100-sxm)\n"    \
    "  --kv SCHEME      KV scheme replacing the config's: mha | gqa:G | mqa | mla:C,R, joined with\n" \
    "                   + to local:W/E (window W; 1 global layer in every E, E=1 or local:W: all\n" \
    "                   local), cla:S (S layers share a KV), simlayer:F[,W[,S]] (fraction F lazy\n" \
    "                   layers keep S sinks + W)\n"                                                 \
    "  --wtype T        weight type (default: the model's; f32 f16 bf16 fp8 int8 int4 q8_0 q4_0\n"    \
    "                   q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k)\n"                                    \
    "  --kvtype T       KV cache type: f32 f16 bf16 fp8 int8 int4 (default f16)\n"                    \
    "  --atype T        activation/compute type (default bf16 for bf16 weights, f32 on cpu, else f16)\n" \
    "  --batch B        sequences decoded together (default 1)\n"                                      \
    "  --ctx T          context length in tokens (default 4096, or the model's trained limit\n"       \
    "                   when smaller); past that limit only with --allow-long-context\n"           \
    "  --prompt P       prompt tokens for the prefill estimate (default 512)\n"                       \
    "  --tp N           tensor-parallel devices, on paper (default 1)\n"                             \
    "  --efficiency mem=F,flops=F  scale the bandwidth and FLOP ceilings by fractions F (as\n"    \
    "                   other analyzers do): the results are then predictions, labelled so,\n"     \
    "                   no longer the speed of light\n"


/* Calibrated predictions (calibration.c): the per-op times `sol bench`
 * stored, per class the latest CLI_CALIBRATION_RUNS runs that have it. */
#define CLI_CALIBRATION_RUNS 5
struct sol_db;
int cli_calibration_load(struct sol_db *db, int64_t device_id, const char *backend, int threads,
                         sol_calibration *c, sol_err *err);
void cli_calibration_free(sol_calibration *c);
typedef struct cli_calibrated {
    char backend[16]; /* as bench stores it: cpu.q8, cpu.f32 */
    int threads;
    int runs;
    long long first_time, last_time;
    sol_calibrated_step decode, prefill;
    int has_prefill;
    char prefill_missing[512]; /* why not, when not */
} cli_calibrated;
/* a's decode (required) and prefill on this CPU's calibration for backend
 * and threads (<= 0: those of the latest calibration). */
int cli_calibrated_analysis(const sol_analysis *a, const char *backend, int threads, cli_calibrated *out,
                            sol_err *err);

#endif
