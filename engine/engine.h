/* The decode engine: loads a GGUF model, owns the KV cache, and executes
 * the op plan op by op on a backend the caller chose, timing every op into
 * a ring buffer. Every buffer lives in the backend's memory; the engine
 * only downloads the logits rows it samples from or hands out.
 * Families (docs/FAMILIES.md): llama, mistral, qwen2; Mixtral-style MoE;
 * DeepSeek-V2/V3 (MLA absorbed, shared and routed experts, V3's routing);
 * Gemma-2/3; Phi-3. KV caches as the --kv scheme keeps them. */
#ifndef SOL_ENGINE_ENGINE_H
#define SOL_ENGINE_ENGINE_H

#include "engine/sample.h"
#include "engine/timing.h"
#include "kernels/backend.h"
#include "models/gguf.h"
#include "models/models.h"
#include "models/plan.h"

typedef struct sol_engine_config {
    sol_backend *backend; /* required; borrowed: destroy it after sol_engine_close */
    sol_dtype kvtype;  /* one the backend stores (caps.kv_types) */
    int64_t ctx;       /* tokens of cache; 0 = the model's limit */
    int chunk;         /* prefill rows per step (default 64) */
    sol_activations activations; /* matmul inputs of quantised weights: q8 (default) or f32 */
    const char *kv;    /* --kv scheme replacing the model's own (NULL: its own); engine/kv_rules.h */
    double simlayer_threshold; /* SimLayerKV: a layer scoring below it never goes lazy (default 0) */
    int seqs;          /* sequences decoded in lockstep (sol_engine_eval_batch); 0 or 1: one */
    sol_sampler_config sampler;
} sol_engine_config;

typedef struct sol_engine sol_engine;

void sol_engine_defaults(sol_engine_config *cfg);
int sol_engine_open(const char *gguf_path, const sol_engine_config *cfg, sol_engine **out, sol_err *err);
void sol_engine_close(sol_engine *e);

const sol_model *sol_engine_model(const sol_engine *e);
const sol_gguf *sol_engine_gguf(const sol_engine *e);
const sol_backend *sol_engine_backend(const sol_engine *e);
int64_t sol_engine_pos(const sol_engine *e);
int64_t sol_engine_ctx(const sol_engine *e);
const sol_kv_scheme *sol_engine_kv(const sol_engine *e);
sol_dtype sol_engine_kv_type(const sol_engine *e);
/* Bytes of KV cache the engine allocated, and the KV bytes attention read
 * in the last step (rows attended x row bytes, K and V, each layer's reads
 * from the cache it uses: its own or, under cla, its owner's). */
double sol_engine_kv_allocated(const sol_engine *e);
double sol_engine_kv_read_last_step(const sol_engine *e);
sol_timing_ring *sol_engine_timing(sol_engine *e);
/* Why the backend's hardware counters turned off (one line, to show the
 * user once), or NULL while they count or were never asked for. */
const char *sol_engine_counter_notice(const sol_engine *e);

/* SimLayerKV's decision (schemes with simlayer:F): scored is 0 until the
 * first prompt has run; then score[i] is layer i's attention mass on its
 * sinks and recent window, lazy[i] whether it went lazy. */
typedef struct sol_simlayer_state {
    int scored;
    int n_layers, n_lazy;
    const double *score;
    const unsigned char *lazy;
    double threshold;
    int query_rows; /* the prompt's last rows whose attention was scored */
} sol_simlayer_state;
/* 0 and *out filled, or -1 when the scheme has no simlayer term. */
int sol_engine_simlayer(const sol_engine *e, sol_simlayer_state *out);

/* Evaluates n tokens at the current position (prefill when n > 1, in
 * chunks), appends them to the cache and samples the next token into
 * *next. With all_logits every row's logits are kept (see logits()). The
 * plan of each executed step is handed to on_step when not NULL. */
typedef void (*sol_step_fn)(void *user, const sol_plan *plan, double seconds);
int sol_engine_eval(sol_engine *e, const int32_t *tokens, int n, int all_logits, sol_step_fn on_step,
                    void *user, int32_t *next, sol_err *err);
/* The prompt is in the cache: SimLayerKV (a simlayer:F scheme) scores
 * each layer by its last step's queries and shrinks the lazy layers'
 * caches. Called by the caller after the prompt, or by eval itself at the
 * first single-token eval after it; nothing to do otherwise. */
int sol_engine_prompt_done(sol_engine *e, sol_err *err);
/* A batched engine (cfg.seqs = B > 1) steps all B sequences one token
 * each: tokens[B] at the current position (a prompt is fed this way too),
 * next[B] sampled, one from each sequence's logits. */
int sol_engine_eval_batch(sol_engine *e, const int32_t *tokens, sol_step_fn on_step, void *user, int32_t *next,
                          sol_err *err);
int sol_engine_seqs(const sol_engine *e);

/* MoE models: the experts the engine actually read. In each step each MoE
 * layer reads the distinct experts its rows chose (the backend's moe_ffn
 * reads an expert once for all its rows); counted from the ids the
 * backend's router wrote, brought down after the step. */
typedef struct sol_expert_stats {
    int moe_layers, n_experts, k;
    int64_t samples;       /* (step, MoE layer) pairs counted */
    double mean_distinct;  /* distinct experts a layer read in a step, their mean */
    double sd_distinct;    /* and standard deviation over the samples */
    int rows;              /* rows of the steps counted (all the same, else 0) */
    double expert_bytes;   /* weights of one expert of one layer: gate, up and down */
    const int64_t *chosen; /* [layer * n_experts + e]: times e was chosen (dense layers 0) */
} sol_expert_stats;
/* 0 and *out filled, or -1 when the model has no experts. */
int sol_engine_expert_stats(const sol_engine *e, sol_expert_stats *out);
/* Counting starts again (e.g. after a prompt, before the decode measured). */
void sol_engine_expert_stats_reset(sol_engine *e);
/* Steps are counted (on, the default) or not (off: a prompt's steps). */
void sol_engine_expert_counting(sol_engine *e, int on);

/* Empties the cache (position 0); weights and buffers stay. */
void sol_engine_reset(sol_engine *e);
/* Logits of row i of the last step (the last row when all_logits was 0),
 * in host memory (brought down from the backend on first use after a
 * greedy step, which needed only the argmax). */
int sol_engine_logits(sol_engine *e, int row, const float **out, sol_err *err);
int sol_engine_last_rows(const sol_engine *e);

#endif
