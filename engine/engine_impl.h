/* The engine's state, shared by its source files (engine.c runs steps,
 * kv_cache.c owns the KV cache, simlayer.c scores layers). Not an
 * interface: callers use engine.h. */
#ifndef SOL_ENGINE_ENGINE_IMPL_H
#define SOL_ENGINE_ENGINE_IMPL_H

#include "engine/engine.h"
#include "engine/weights.h"

/* The expert counts so far (engine.h sol_expert_stats). */
typedef struct sol_expert_stats_acc {
    int64_t samples;
    double sum, sum_sq;
    int rows; /* -1: none yet; 0: steps of different sizes */
    int paused; /* sol_engine_expert_counting(e, 0) */
    int64_t *chosen;
} sol_expert_stats_acc;

struct sol_engine {
    sol_gguf gguf;
    int gguf_open;
    sol_model model;
    sol_kv_scheme kv;
    sol_model_weights w;
    sol_backend *be; /* borrowed from the caller */
    sol_engine_config cfg;
    int64_t ctx, pos;
    int chunk;
    int seqs; /* sequences decoded in lockstep (cfg.seqs; 1 = one) */
    int step_rows; /* rows of each sequence in the step running */
    sol_kv_cache_layer *cache; /* per layer; a sharing layer's is its owner's */
    void **cache_block;        /* per owner layer: its K and V (backend memory); NULL elsewhere */
    double cache_bytes;        /* allocated */
    double kv_read_step; /* KV bytes attention read in the last step */
    /* activations, chunk rows each */
    float *x, *xb, *xb2, *q, *k, *v, *att, *hb, *hb2, *logits;
    float *q_abs;       /* MLA: the queries moved into the latent space */
    float *q_lat;       /* DeepSeek q_lora: the query's low-rank row */
    /* MoE: router logits, and per MoE layer the chosen experts and their
     * weights of the step's rows (ids kept per layer for the counts) */
    float *router_logits, *moe_weights;
    int32_t *moe_ids;      /* backend: [layer][rows][k], packed by the step's rows (sol_engine_moe_ids) */
    int32_t *moe_ids_host; /* the last step's, brought down after it */
    unsigned char *moe_seen; /* n_experts flags: the counting's scratch */
    sol_expert_stats_acc experts;
    float *logits_host; /* the rows of the last step the caller sees */
    int logits_rows;
    int logits_fresh;   /* logits_host holds them (a greedy step on the device left them there) */
    int32_t *next_dev;  /* the device's greedy choice */
    /* sampling with top-k: the device's k best of each sequence's row
     * (sol_sample_candidates), seqs x sample_k of each; NULL without a
     * top_k op */
    float *cand_vals_dev, *cand_vals;
    int32_t *cand_ids_dev, *cand_ids;
    int sample_k; /* this step's: 0 greedy or host sampling */
    int32_t *history; /* every token in the cache, for the sampler */
    sol_sampler sampler;
    sol_plan plan;
    sol_timing_ring timing;
    /* --counters: the latest counted step's figures (sol_step_timing's
     * counted_* fields, carried into every slot), and why counting turned
     * off ("" while it works or was never asked) */
    sol_step_timing last_counted;
    char counter_notice[sizeof(((sol_err *)0)->msg)];
    /* the step's timed intervals: first plan op and op count of each, and
     * the seconds the backend reports for them */
    int *span_first, *span_ops;
    double *span_s;
    int span_cap;
    /* SimLayerKV: the prompt's layers are scored in the last step of the
     * first eval (simlayer_pending), then the lazy ones keep their sinks and
     * recent window only (kv.lazy_layers points at lazy) */
    unsigned char *lazy;
    double *lazy_score;
    int simlayer_pending, simlayer_query_rows, simlayer_dk;
    int64_t simlayer_query_pos0;
    float *simlayer_q; /* per layer, the last step's newest query rows (host) */
    int reset_failed; /* the full caches could not be restored: eval refuses */
};


/* exec.c: the plan's ops of one step launched on the backend, each run of
 * ops that go as one call under one mark; *spans gets their count and
 * span_first / span_ops their extents. */
/* device_choice: the sample op runs on the device (argmax, or top_k when
 * e->sample_k > 0), else after the sync on the host. */
int sol_engine_launch_ops(sol_engine *e, int rows, int device_choice, int *spans, sol_err *err);

/* moe.c */
int sol_engine_moe_alloc(sol_engine *e, sol_err *err);
void sol_engine_moe_free(sol_engine *e);
/* Where layer's chosen ids of a step of `rows` rows live (the step's
 * layers packed, so its ids come down in one piece of rows x k a layer). */
int32_t *sol_engine_moe_ids(const sol_engine *e, int layer, int rows);
/* the router of an MoE layer as the backend takes it */
sol_router sol_engine_router(const sol_engine *e, int layer);
/* After a step of `rows` rows: the experts each MoE layer chose, brought
 * down and counted (distinct experts per layer, choices per expert). */
int sol_engine_count_experts(sol_engine *e, int rows, sol_err *err);

/* kv_cache.c */
int sol_engine_cache_alloc(sol_engine *e, sol_err *err);
void sol_engine_cache_free(sol_engine *e);
/* The window a layer's attention keeps (SimLayerKV's recent W on a lazy one). */
int64_t sol_engine_layer_window(const sol_engine *e, int layer);
/* Bytes of one cached token row of a layer's cache, K and V together. */
double sol_engine_token_bytes(const sol_engine *e, int layer);
/* SimLayerKV: the lazy layers' caches shrunk to their sinks and recent
 * window (the positions they still see copied over). */
int sol_engine_compact_lazy(sol_engine *e, sol_err *err);
/* A new conversation: no layer lazy, every cache full again. */
int sol_engine_cache_reset(sol_engine *e, sol_err *err);

/* simlayer.c: SimLayerKV scores a layer by the attention of the prompt's
 * last SOL_SIMLAYER_QUERY_ROWS rows (at most those of its last step) */
#define SOL_SIMLAYER_QUERY_ROWS 8
/* layer's newest query rows of the step kept (while the prompt runs) */
int sol_engine_stash_queries(sol_engine *e, int layer, int rows, sol_err *err);

#endif
