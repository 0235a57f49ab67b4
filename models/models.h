/* The public interface of models/: a model description read from a preset,
 * a Hugging Face config.json or GGUF metadata; KV-cache schemes; and the op
 * plan of one decode (or prefill) step. Pure data, no backend types. */
#ifndef SOL_MODELS_MODELS_H
#define SOL_MODELS_MODELS_H

#include <stdbool.h>
#include <stdint.h>

#include "util/dtype.h"
#include "util/err.h"

#define SOL_MAX_LAYERS 512

typedef enum sol_act {
    SOL_ACT_SILU, /* SwiGLU: silu(gate) * up */
    SOL_ACT_GELU, /* GeGLU (gemma): gelu_tanh(gate) * up */
} sol_act;

/* The layer matrices a GGUF file may store in types of their own. */
typedef enum sol_matrix {
    SOL_MATRIX_Q, SOL_MATRIX_K, SOL_MATRIX_V, SOL_MATRIX_O, SOL_MATRIX_GATE, SOL_MATRIX_UP, SOL_MATRIX_DOWN,
    SOL_MATRIX_COUNT
} sol_matrix;

typedef struct sol_model {
    char name[96];
    char arch[32]; /* llama, mistral, mixtral, qwen2, gemma2, gemma3, phi3, deepseek_v2, deepseek_v3 */
    int n_layers;
    int hidden;
    int n_heads;
    int n_kv_heads;
    int head_dim;     /* query/key head size (non-MLA) */
    int ffn;          /* dense FFN intermediate size */
    int vocab;
    int ctx_max;      /* max_position_embeddings */
    bool tied_embeddings;
    bool qkv_bias;    /* qwen2 */
    bool qk_norm;     /* gemma3: RMSNorm on q and k heads */
    bool post_norms;  /* gemma2/3: extra norms after attention and FFN */
    sol_act act;
    double rope_theta;
    double rope_theta_local; /* gemma3: the sliding-window layers' RoPE base (0: rope_theta) */
    /* Linear RoPE scaling (rope_scaling type "linear", GGUF rope.scaling.type
     * "linear"): frequencies divided by it; 0 = none. Other scalings (YaRN,
     * llama3, LongRoPE) are not kept: the engine does not model them. */
    double rope_scale;
    /* gemma2/3: scores scaled by attn_scale (query_pre_attn_scalar^-1/2; 0 =
     * head_dim^-1/2), soft-capped at attn_softcap and the final logits at
     * final_softcap (0 = none); the embedding scaled by sqrt(hidden) */
    double attn_scale;
    double attn_softcap;
    double final_softcap;
    bool embed_scale;
    bool fused_qkv; /* phi3: attn_qkv and a gate+up ffn_up, as GGUF stores them */
    double norm_eps;
    sol_dtype wtype;  /* stored weight type (torch_dtype or dominant GGUF type) */
    sol_dtype embed_type;  /* token embedding table (GGUF files often differ) */
    sol_dtype output_type; /* LM head; the embedding's type when tied */
    /* Mixed-type files (Q4_K_M and the like): each layer matrix's own type
     * (a sol_dtype), from the tensor table; mixed 0 = all wtype. */
    bool mixed;
    unsigned char matrix_type[SOL_MAX_LAYERS][SOL_MATRIX_COUNT];

    /* Sliding-window attention from the config: window 0 = none. Layer i is
     * global when (i + 1) % swa_period == 0; swa_period 1 = all local. */
    int sliding_window;
    int swa_period;
    /* Layers per shared KV cache (cla:S; 0 or 1 = none): a sol synth file's
     * scheme (metadata sol.kv_scheme), never a trained model's. */
    int kv_share;

    /* Mixture of experts (n_experts 0 = dense). Layers < first_dense are dense. */
    int n_experts;
    int n_experts_active;
    int n_shared_experts;
    int moe_ffn;
    int first_dense;
    bool expert_bias; /* deepseek_v3: e_score_correction_bias per MoE layer */
    /* Routing (kernels/backend.h sol_router): sigmoid scores (deepseek_v3)
     * or softmax; the top-k weights renormalised (mixtral, deepseek_v3);
     * times expert_scale (routed_scaling_factor; 1 = none); group-limited
     * choice over expert_groups groups keeping expert_groups_used (1, 1 = none). */
    bool expert_sigmoid;
    bool expert_norm;
    double expert_scale;
    int expert_groups;
    int expert_groups_used;

    /* Multi-head latent attention (kv_lora_rank 0 = none); q_lora_rank 0 =
     * plain q projection (DeepSeek-V2-Lite). */
    int q_lora_rank;
    int kv_lora_rank;
    int qk_rope_dim;
    int qk_nope_dim;
    int v_head_dim;
} sol_model;

/* Loads MODEL: a preset name, a config.json path or a directory holding
 * one, or a .gguf file (metadata only). */
int sol_model_load(const char *spec, sol_model *m, sol_err *err);
/* Parses an in-memory HF config.json text; origin names it in messages. */
int sol_model_from_hf_json(const char *text, const char *origin, sol_model *m, sol_err *err);
/* Reads a .gguf file's metadata and tensor types into m. */
int sol_model_from_gguf(const char *path, sol_model *m, sol_err *err);
/* Checks the fields are consistent (positive sizes, heads divide, ...). */
int sol_model_validate(const sol_model *m, const char *origin, sol_err *err);
/* The names a source gives the routing fields, so messages name its keys. */
typedef struct sol_routing_keys {
    const char *experts, *used, *groups, *groups_used;
} sol_routing_keys;
/* A MoE model's routing: experts per token in 1..E, groups dividing E, groups
 * used in 1..groups, and k experts within the groups used. keys NULL: sol's
 * own words (sol_model_validate's check). Dense models pass. */
int sol_model_check_routing(const sol_model *m, const char *origin, const sol_routing_keys *keys, sol_err *err);

/* Presets compiled into the binary from models/presets/\*.json. */
int sol_preset_count(void);
const char *sol_preset_name(int i);
const char *sol_preset_json(const char *name); /* NULL when unknown */

/* ---- KV-cache scheme ------------------------------------------------ */

typedef enum sol_kv_heads {
    SOL_KV_MHA,
    SOL_KV_GQA,
    SOL_KV_MQA,
    SOL_KV_MLA,
} sol_kv_heads;

typedef struct sol_kv_scheme {
    sol_kv_heads heads;
    int n_kv_heads;     /* mha/gqa/mqa */
    int mla_rank;       /* mla:C */
    int mla_rope;       /* mla:R */
    int window;         /* local:W (0 = no local layers) */
    int global_every;   /* local:/E; 1 = all local */
    int share;          /* cla:S; 1 = no sharing */
    double lazy_fraction; /* simlayer:F (0 = none) */
    int lazy_window;    /* simlayer W recent tokens */
    int lazy_sinks;     /* simlayer S sink tokens */
    /* NULL: floor(L * lazy_fraction) layers lazy, spread evenly (what the
     * analyzer assumes); else layer i is lazy when lazy_layers[i] (the
     * engine's choice after scoring its prompt; all 0 before). */
    const unsigned char *lazy_layers;
} sol_kv_scheme;

/* Per-layer attention kind after applying a scheme. */
typedef enum sol_attn_kind {
    SOL_ATTN_GLOBAL,
    SOL_ATTN_LOCAL,
    SOL_ATTN_LAZY,
    SOL_ATTN_SHARED, /* reads the KV of an earlier layer (cla) */
    SOL_ATTN_LATENT, /* MLA, full context */
} sol_attn_kind;

const char *sol_attn_kind_name(sol_attn_kind k);

/* The scheme the model's config implies. */
void sol_kv_from_model(const sol_model *m, sol_kv_scheme *kv);
/* Parses the --kv grammar. Terms not given keep the defaults in base for the
 * heads term; local/cla/simlayer not given are off. Errors name the term and
 * its position; returns SOL_ERR_USAGE. */
int sol_kv_parse(const char *text, const sol_kv_scheme *base, sol_kv_scheme *kv, sol_err *err);
/* Checks a scheme against a model (gqa:G divides the heads, ...). */
int sol_kv_check(const sol_kv_scheme *kv, const sol_model *m, sol_err *err);
/* Canonical text of a scheme ("gqa:8+local:4096/2"). */
void sol_kv_format(const sol_kv_scheme *kv, char *buf, int cap);

/* Layer-level facts of a scheme applied to a model. */
typedef struct sol_kv_layer {
    sol_attn_kind kind;
    bool stores_kv;        /* false for shared layers */
    int owner;             /* layer whose KV this layer reads */
    int64_t elems_per_token; /* KV elements one token adds to this layer (0 if shared) */
    int64_t tokens_cap;    /* tokens kept: window or sinks+recent; 0 = unbounded */
} sol_kv_layer;

void sol_kv_layer_info(const sol_kv_scheme *kv, const sol_model *m, int layer, sol_kv_layer *out);
/* Bytes of KV one token adds over all layers (no truncation, shared once). */
double sol_kv_bytes_per_token(const sol_kv_scheme *kv, const sol_model *m, sol_dtype kvtype);
int64_t sol_kv_elems_per_token(const sol_kv_scheme *kv, const sol_model *m);
/* Bytes of the cache of one sequence at ctx tokens, after truncation. */
double sol_kv_cache_bytes(const sol_kv_scheme *kv, const sol_model *m, sol_dtype kvtype, int64_t ctx);
/* Scale group of int8/int4 KV: head_dim (the latent width for MLA). */
int sol_kv_scale_group(const sol_kv_scheme *kv, const sol_model *m);

#endif
