/* The op plan: the ordered ops of one decode step (or a prefill of P tokens)
 * with their shapes, dtypes, bytes and FLOPs. Built by a pure function; the
 * analyzer costs it, the engine executes it, the tuner tunes its shapes. */
#ifndef SOL_MODELS_PLAN_H
#define SOL_MODELS_PLAN_H

#include "models/models.h"

typedef enum sol_op_kind {
    SOL_OP_EMBED,     /* token embedding lookup */
    SOL_OP_NORM,      /* RMSNorm */
    SOL_OP_MATMUL,    /* y[M,N] = x[M,K] . W[N,K]^T (+ bias) */
    SOL_OP_ROPE,
    SOL_OP_KV_WRITE,  /* append this step's K,V (or latent) to the cache */
    SOL_OP_ATTENTION, /* scores, softmax and weighted sum over the cache */
    SOL_OP_ADD,       /* residual */
    SOL_OP_ACT,       /* silu(gate)*up or gelu(gate)*up */
    SOL_OP_ROUTER,    /* MoE top-k selection over router logits */
    SOL_OP_ALLREDUCE, /* tensor parallel: sum hidden states over devices */
    SOL_OP_ALLGATHER, /* tensor parallel: gather the vocabulary-split logits */
    SOL_OP_SAMPLE,    /* read logits, pick a token */
    SOL_OP_KIND_COUNT
} sol_op_kind;

/* Op groups: the rows a user reads (analyzer table, TUI). */
typedef enum sol_op_group {
    SOL_GROUP_ATTN_QKV,
    SOL_GROUP_ATTN_SCORE,
    SOL_GROUP_ATTN_OUT,
    SOL_GROUP_FFN_GATE_UP,
    SOL_GROUP_FFN_DOWN,
    SOL_GROUP_MOE_ROUTER,
    SOL_GROUP_MOE_EXPERTS, /* the routed experts: gate, up, act, down (one backend call) */
    SOL_GROUP_LM_HEAD,
    SOL_GROUP_COMM,
    SOL_GROUP_OTHER,
    SOL_GROUP_COUNT
} sol_op_group;

typedef struct sol_op {
    sol_op_kind kind;
    sol_op_group group;
    char name[24];      /* "attn.q", "ffn.down", "moe.experts.up", ... */
    int layer;          /* -1 outside the layer stack */
    int64_t m, n, k;    /* MATMUL: rows of activations, output features, input features */
    int64_t batch;      /* copies of the matmul (experts, heads); 1 otherwise */
    sol_dtype wtype, atype, kvtype;
    double weight_bytes; /* weights read this step */
    double kv_bytes;     /* KV cache read this step */
    double act_bytes;    /* activations read */
    double write_bytes;  /* activations and KV written */
    double store_bytes;  /* weights this op owns in memory (all experts) */
    double comm_bytes;   /* ALLREDUCE/ALLGATHER: bytes each device sends over the interconnect */
    int comm_steps;      /* ...in this many latency-bound steps (ring: 2(tp-1) to reduce, tp-1 to gather) */
    double flops;
    double params;        /* parameters this op owns (all experts), counted once */
    double active_params; /* parameters one token uses */
} sol_op;

/* A measured routing (sol run --json's experts.routing): per MoE layer
 * from first_layer, the probability p[e] that a token chooses expert e
 * (its choices / the tokens routed; they sum to k). NULL in the params:
 * uniform, k/E each. */
typedef struct sol_routing {
    int first_layer, n_layers, n_experts;
    double *p; /* [n_layers][n_experts] */
} sol_routing;

typedef struct sol_plan_params {
    int batch;        /* sequences decoded together */
    int n_tokens;     /* tokens per sequence this step: 1 decode, P prefill */
    int64_t pos;      /* tokens already in the cache */
    sol_dtype wtype, atype, kvtype;
    int tp;           /* tensor-parallel degree (1 = single device) */
    int all_logits;   /* LM head over every row, not only each sequence's last */
    int int8_dots_below; /* matmuls of block-quantised weights with fewer input rows
                            take 8-bit activations (the CPU's integer dots): their
                            compute ceiling is int8; 0 = none */
    const sol_routing *routing; /* MoE: expected experts from it (NULL: uniform) */
} sol_plan_params;

typedef struct sol_plan {
    sol_op *ops;
    int n_ops;
    int cap;
    sol_plan_params params;
    sol_kv_scheme kv;
    int n_layers;
    sol_kv_layer layers[SOL_MAX_LAYERS];
    double kv_bytes_per_token_layer[SOL_MAX_LAYERS];
} sol_plan;

/* Fills plan for model m with scheme kv (validated with sol_kv_check).
 * Returns SOL_ERR_USAGE for impossible parameters (batch 0, ...). */
int sol_plan_build(const sol_model *m, const sol_kv_scheme *kv, const sol_plan_params *p,
                   sol_plan *plan, sol_err *err);
void sol_plan_free(sol_plan *plan);

const char *sol_op_kind_name(sol_op_kind k);
const char *sol_op_group_name(sol_op_group g);
double sol_op_bytes(const sol_op *op); /* everything the op moves */

/* Parameter counts from the model's own plan (its native KV scheme). */
typedef struct sol_param_count {
    double total;
    double active; /* per token: routed experts counted k of E */
} sol_param_count;
int sol_model_params(const sol_model *m, sol_param_count *out, sol_err *err);

/* Expected distinct experts hit when `tokens` tokens each pick k of E
 * uniformly: E (1 - (1 - k/E)^tokens). */
double sol_moe_expected_experts(int n_experts, int k, double tokens);
/* The same under a measured routing: sum over e of 1 - (1 - p[e])^tokens
 * (each token's choices independent of the others'). */
double sol_moe_expected_experts_routed(const double *p, int n_experts, double tokens);

#endif
