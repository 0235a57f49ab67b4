/* The public interface of analyzer/: hardware ceilings (presets, the local
 * CPU, or measured figures handed in by the caller), the roofline cost of a
 * plan, and the reports (table, JSON, CSV) and comparisons built on it. */
#ifndef SOL_ANALYZER_ANALYZER_H
#define SOL_ANALYZER_ANALYZER_H

#include <stdio.h>

#include "models/models.h"
#include "models/plan.h"

/* One ceiling with where it came from: "datasheet", "estimate", "measured"
 * or "unsupported" (known = 0). */
typedef struct sol_hw_value {
    double value;
    int known;
    char source[16];
    char note[240];
} sol_hw_value;

typedef struct sol_hw {
    char name[48];
    char display_name[128];
    char vendor[32];
    char kind[16]; /* gpu | cpu */
    sol_hw_value mem_bw;          /* bytes/s */
    sol_hw_value mem_bytes;
    sol_hw_value llc_bytes;       /* L2 on GPUs, last-level cache on CPUs */
    sol_hw_value interconnect_bw; /* bytes/s per direction per device */
    sol_hw_value interconnect_latency; /* seconds per step of a ring collective (the alpha of alpha-beta) */
    sol_hw_value peak[SOL_PEAK_COUNT];
    char detail[256];             /* cpu: cores, caches, ISA */
    char isa[16];                 /* cpu: avx512 | avx2+fma | avx | sse */
    int cores;                    /* cpu: online cores */
    double cache_bytes[3];        /* cpu: L1d, L2, L3 per sysfs (0 = unknown) */
} sol_hw;

int sol_hw_preset_count(void);
const char *sol_hw_preset_name(int i);
/* name: a preset, "cpu" (this machine), or a path to a JSON file. */
int sol_hw_load(const char *name, sol_hw *hw, sol_err *err);
int sol_hw_from_json(const char *text, const char *origin, sol_hw *hw, sol_err *err);
int sol_hw_detect_cpu(sol_hw *hw, sol_err *err);
/* The entry for a GPU as its driver names it ("NVIDIA H100 80GB HBM3" ->
 * "h100-sxm"; A100s told apart by memory size), or NULL when none fits. */
const char *sol_hw_for_gpu(const char *gpu, double mem_bytes);
/* Replaces a ceiling by a measured one (source "measured", note says how). */
void sol_hw_set_measured(sol_hw_value *v, double value, const char *note);
/* Peak FLOP/s for a compute type, falling back to the nearest supported one
 * (fp8 -> fp16 -> fp32) and naming it in *used. */
double sol_hw_peak(const sol_hw *hw, sol_peak want, sol_peak *used);

/* ---- roofline ------------------------------------------------------- */

typedef enum sol_bound { SOL_BOUND_MEMORY, SOL_BOUND_COMPUTE, SOL_BOUND_COMM } sol_bound;
const char *sol_bound_name(sol_bound b);

typedef struct sol_op_cost {
    double bytes;
    double flops;
    double intensity; /* FLOP per byte moved */
    double mem_time_s, compute_time_s, comm_time_s;
    double time_s;    /* the largest of the three */
    sol_bound bound;
    sol_peak peak_used;
} sol_op_cost;

/* A step's two bounds. The speed of light is the whole step's: its FLOPs at
 * the peak of each compute type (types that could overlap taken as the
 * largest), its unavoidable bytes (weights, KV read and written, token ids:
 * what must cross the memory bus even when every op is fused) at memory
 * bandwidth, and its all-reduces, whichever is longest. "Unfused" is the
 * sum of each op's own roofline time, which also charges the activations
 * that unfused ops write and read back. sol_time_s <= unfused_time_s. */
typedef struct sol_step_cost {
    sol_op_cost *ops; /* one per plan op */
    double bytes, flops;
    double unfused_time_s;
    double mem_bound_time_s, compute_bound_time_s, comm_bound_time_s; /* shares of unfused_time_s */
    sol_bound bound; /* what most of the unfused time is bound by */
    double sol_bytes;                       /* unavoidable bytes */
    double sol_mem_s, sol_compute_s, sol_comm_s;
    double sol_time_s;                      /* the largest of the three */
    sol_bound sol_bound;
} sol_step_cost;

int sol_cost_plan(const sol_plan *plan, const sol_hw *hw, sol_step_cost *cost, sol_err *err);
void sol_step_cost_free(sol_step_cost *cost);

/* Everything `sol analyze` reports. */
typedef struct sol_analysis_config {
    int batch;
    int64_t ctx;
    int prompt;
    sol_dtype wtype, atype, kvtype;
    int tp;
    /* Fractions of the ceilings an implementation reaches (0 = 1: the speed
     * of light). Below 1 the figures are predictions, no longer bounds. */
    double mem_efficiency, flops_efficiency;
    const sol_routing *routing; /* MoE: a measured routing (NULL: uniform); borrowed */
} sol_analysis_config;

/* Reads sol run --json's experts.routing from path (the JSON object, or a
 * file whose last line is it) for model m: one line naming the file and
 * the problem when its experts or layers are not m's. */
int sol_routing_load(const char *path, const sol_model *m, sol_routing *out, sol_err *err);
void sol_routing_free(sol_routing *r);
/* One MoE layer's choice counts p[n_experts] into per-token probabilities
 * in place: count x k / all choices (each token makes k); -1 when there
 * are no choices. What --routing and sol bench --batch both use. */
int sol_routing_probabilities(double *p, int n_experts, int k);

typedef struct sol_analysis {
    sol_model model;
    sol_kv_scheme kv;
    sol_hw hw;
    sol_analysis_config cfg;
    sol_param_count params;
    sol_plan decode;
    sol_step_cost decode_cost;
    sol_plan prefill;
    sol_step_cost prefill_cost;
    double weights_bytes;          /* per device */
    double kv_elems_per_token;
    double kv_bytes_per_token;     /* whole model, before truncation */
    double kv_cache_bytes;         /* batch sequences at ctx, per device */
    double kv_cache_bytes_per_seq; /* per device */
    double kv_split;               /* devices the KV cache is divided over (tp, fewer when replicated) */
    double memory_bytes;           /* weights + cache, per device */
    int fits;
    long long max_batch;           /* -1: unbounded (no cache) */
    double decode_tokens_per_s;  /* at the speed of light (the fused bound) */
    double prefill_tokens_per_s;
    double decode_unfused_tokens_per_s; /* at the per-op sum */
    double prefill_unfused_tokens_per_s;
} sol_analysis;

int sol_analyze(const sol_model *m, const sol_kv_scheme *kv, const sol_hw *hw,
                const sol_analysis_config *cfg, sol_analysis *out, sol_err *err);
void sol_analysis_free(sol_analysis *a);

/* Reports. */
void sol_report_table(FILE *f, const sol_analysis *a);
/* Returns a malloc'd JSON text (cJSON) or NULL when out of memory. */
char *sol_report_json(const sol_analysis *a);
/* The same document as a cJSON tree the caller extends and deletes. */
struct cJSON *sol_report_json_object(const sol_analysis *a);

/* ---- requests end to end, speculative decoding -------------------------- */

/* The whole-step bound (sol_time_s) of one step of n_tokens per sequence
 * after pos cached tokens, on a's model, scheme, hardware and configuration. */
int sol_step_bound(const sol_analysis *a, int n_tokens, int64_t pos, double *seconds, sol_err *err);

/* One request of the analysis's prompt then gen tokens, batch sequences at
 * once: the first token comes out of the prefill (time to first token);
 * the gen - 1 later ones are decode steps at growing context, each costed
 * at its position (up to 256 positions; beyond, 257 evenly spaced ones,
 * linearly interpolated: step time is piecewise linear in the context). */
typedef struct sol_request {
    int prompt, gen, batch, tp;
    double ttft_s;              /* prefill of the prompt */
    double tpot_s;              /* mean time per later output token */
    double total_s;             /* ttft + (gen - 1) * tpot */
    double user_tokens_per_s;   /* gen / total: what one user sees */
    double device_tokens_per_s; /* batch * gen / total / tp: what one device serves */
    int positions_costed;
} sol_request;

int sol_request_cost(const sol_analysis *a, int gen, sol_request *out, sol_err *err);

/* Speculative decoding on paper (Leviathan et al. 2023): a draft model
 * proposes k tokens one decode step at a time, the target verifies them in
 * one step of k + 1 tokens; with acceptance rate r each round yields
 * (1 - r^(k+1)) / (1 - r) tokens on average. Both at the analysis's context,
 * batch and hardware. */
typedef struct sol_speculative {
    int k;
    double acceptance;
    double tokens_per_round;  /* expected tokens per target step */
    double draft_step_s;      /* one draft decode step */
    double verify_step_s;     /* the target's step of k + 1 tokens */
    double round_s;           /* k draft steps + one verification */
    double tokens_per_s;      /* batch * tokens_per_round / round_s */
    double speedup;           /* over plain decode of the target */
    double draft_weights_bytes;
} sol_speculative;

int sol_speculative_cost(const sol_analysis *target, const sol_analysis *draft, int k, double acceptance,
                         sol_speculative *out, sol_err *err);
/* ---- conversations: inter-turn KV reuse ----------------------------------- */

#define SOL_MAX_TURNS 256

typedef struct sol_turns_config {
    int turns, turn_tokens; /* turn i adds turn_tokens after (i - 1) x turn_tokens of history */
    double hit_rate;        /* share of turns whose history's KV is found stored */
    double host_bw;         /* bytes/s the stored KV loads at (the host link) */
    double store_bytes;     /* host memory for stored conversations (0: not asked) */
} sol_turns_config;

typedef struct sol_turn {
    int turn;
    int64_t history_tokens;
    double recompute_s;   /* time to first token: prefill history + new tokens */
    double loaded_bytes;  /* the history's KV, as the scheme stores it */
    double load_s;        /* ... at host_bw */
    double prefill_new_s; /* the new tokens after the loaded history */
    double reuse_s;       /* load + prefill of the new tokens */
    double expected_s;    /* at the hit rate */
} sol_turn;

typedef struct sol_turns {
    sol_turns_config cfg;
    sol_turn turn[SOL_MAX_TURNS];
    double recompute_total_s, expected_total_s;
    double stored_bytes;            /* one whole conversation's KV */
    long long conversations_stored; /* in store_bytes */
} sol_turns;

int sol_turns_cost(const sol_analysis *a, const sol_turns_config *c, sol_turns *out, sol_err *err);
void sol_report_turns(FILE *f, const sol_turns *t);
struct cJSON *sol_turns_json(const sol_turns *t);

/* ---- sweeps ------------------------------------------------------------- */

typedef struct sol_sweep_point {
    int64_t ctx;
    int batch;
    double tokens_per_s;      /* decode, all sequences */
    double user_tokens_per_s; /* one sequence's */
    double step_s;
    double memory_bytes;      /* weights + KV, per device */
    sol_bound bound;          /* of the whole step */
    int fits;
    long long max_batch;
} sol_sweep_point;

/* The knees at one context: decode is compute-bound from batch
 * compute_bound_from on (-1: not below 2^20 sequences, the KV cache keeps
 * it memory-bound), and max_batch sequences fit in memory. */
typedef struct sol_sweep_knee {
    int64_t ctx;
    long long compute_bound_from;
    long long max_batch;
} sol_sweep_knee;

int sol_sweep_point_at(const sol_model *m, const sol_kv_scheme *kv, const sol_hw *hw,
                       const sol_analysis_config *base, int64_t ctx, int batch, sol_sweep_point *p, sol_err *err);
int sol_sweep_knee_at(const sol_model *m, const sol_kv_scheme *kv, const sol_hw *hw,
                      const sol_analysis_config *base, int64_t ctx, sol_sweep_knee *k, sol_err *err);

void sol_report_request(FILE *f, const sol_request *r);
void sol_report_speculative(FILE *f, const sol_speculative *s, const char *draft_name);
struct cJSON *sol_request_json(const sol_request *r);
struct cJSON *sol_speculative_json(const sol_speculative *s, const char *draft_name);
void sol_report_csv(FILE *f, const sol_analysis *a);

/* Human-readable units: "15.0 GiB", "3.35 TB/s", "4.64 ms". */
void sol_fmt_bytes(char *buf, int cap, double bytes);
void sol_fmt_count(char *buf, int cap, double n, const char *unit); /* SI: 1.2 G */
void sol_fmt_time(char *buf, int cap, double seconds);


/* ---- calibrated prediction (calibrate.c) -------------------------------- */

/* What a calibration tells apart: the op kind (or SOL_CALIB_OVERHEAD, the
 * time outside every op), the type its bytes are read in (weights for
 * matmuls and the embedding, the KV cache for attention and KV writes, ""
 * otherwise), tokens per step (1 decode, P prefill) and floor(log2(bytes
 * of one op)). */
#define SOL_CALIB_OVERHEAD SOL_OP_KIND_COUNT
typedef struct sol_op_class {
    int kind;
    char dtype[12];
    int rows, size_class;
} sol_op_class;

void sol_op_class_of(const sol_op *op, int rows, sol_op_class *out);
const char *sol_op_class_kind_name(int kind);   /* "overhead" for SOL_CALIB_OVERHEAD */
int sol_op_class_kind_parse(const char *name);  /* -1 when unknown */

/* Sums over the ops of one class (and op group; -1: any group). */
typedef struct sol_op_class_sum {
    sol_op_class key;
    int group;
    double bytes, flops, roofline_s, measured_s;
    long long count;
} sol_op_class_sum;

typedef struct sol_op_table {
    sol_op_class_sum *items;
    int n, cap;
    int *last; /* per plan op: its item in the previous step (a cache) */
    int n_last;
} sol_op_table;

/* Merges item into the entry of the same class and group. */
int sol_op_table_add(sol_op_table *t, const sol_op_class_sum *item, sol_err *err);
/* One step of plan: op i's roofline time cost->ops[i].time_s and measured
 * op_s[i] (n_op_s of them), and the step's time outside them. */
int sol_op_table_add_step(sol_op_table *t, const sol_plan *plan, const sol_step_cost *cost, const double *op_s,
                          int n_op_s, double overhead_s, sol_err *err);
void sol_op_table_free(sol_op_table *t);

/* Per class, how far this machine is from each op's own roofline: the
 * classes (group -1) summed over the runs they come from. */
typedef struct sol_calibration {
    sol_op_table classes;
    int runs;
    long long first_time, last_time; /* unix seconds */
} sol_calibration;

/* A calibrated step: each op's roofline time times its class's measured /
 * roofline seconds (exact class; else the nearest size class of the same
 * kind, type and rows; else all of that kind, type and phase pooled), plus
 * the overhead per op. measured_s and group_measured_s only from a table. */
typedef struct sol_calibrated_step {
    double time_s, overhead_s;
    double group_s[SOL_GROUP_COUNT];
    double measured_s, group_measured_s[SOL_GROUP_COUNT];
    int exact, nearest, pooled; /* ops (or classes) by how their class was found */
} sol_calibrated_step;

/* A class the calibration has nothing for (same kind, type and phase) is
 * an error naming it: "no calibration for matmul q6_k decode". */
int sol_calibrated_plan(const sol_calibration *c, const sol_plan *plan, const sol_step_cost *cost,
                        sol_calibrated_step *out, sol_err *err);
/* The prediction for measured classes (group per item): bench's steps. */
int sol_calibrated_table(const sol_calibration *c, const sol_op_table *t, sol_calibrated_step *out, sol_err *err);

#endif
