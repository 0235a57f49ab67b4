/* Binds a GGUF file's tensors to the roles the engine executes: views into
 * the mapping for matrices (no copies), small f32 copies of norm weights
 * and biases, and the RoPE frequencies, all in host memory; every tensor is
 * checked first. Then sol_weights_place hands them to a backend: the
 * backend places the matrices (and re-points the views) and every vector
 * is uploaded into backend memory. */
#ifndef SOL_ENGINE_WEIGHTS_H
#define SOL_ENGINE_WEIGHTS_H

#include "kernels/backend.h"
#include "models/gguf.h"
#include "models/models.h"

typedef struct sol_layer_weights {
    sol_weight_view wq, wk, wv, wo, gate, up, down;
    float *attn_norm, *ffn_norm;
    float *bq, *bk, *bv; /* NULL when the model has no q/k/v bias */
    /* MLA (wk, wv unused): the latent + RoPE key projection and the
     * latent's norm; kv_b's halves folded for absorbed decoding, f32 built
     * at bind (absorb_host): q_absorb takes a query head [nope, rope] to
     * [W_UK^T nope, rope] (scaled so attention's 1/sqrt(rank + rope) is the
     * model's 1/sqrt(head_dim)), v_absorb is W_UV per head. */
    sol_weight_view kv_a, q_absorb, v_absorb;
    float *kv_a_norm;
    float *absorb_host;
    /* DeepSeek's low-rank query (q_a.data NULL: a plain wq) */
    sol_weight_view q_a, q_b;
    float *q_a_norm;
    /* MoE layers (router.data NULL: dense): the router, each 3-D expert
     * tensor as one view of n_experts * width rows (expert e's matrix is
     * its e-th slab), V3's selection bias; a shared expert (sh_down.data
     * NULL: none) */
    sol_weight_view router, exp_gate, exp_up, exp_down, sh_gate, sh_up, sh_down;
    float *exp_bias;
    /* Gemma: norms after attention and the FFN, Gemma-3's q and k head norms */
    float *post_attn_norm, *post_ffn_norm, *q_norm, *k_norm;
} sol_layer_weights;

enum { SOL_LAYER_MATRICES = 19, SOL_LAYER_VECTORS = 12 };
/* Pointers to every matrix view of a layer (bound or not: data NULL). */
void sol_layer_matrices(sol_layer_weights *l, sol_weight_view *out[SOL_LAYER_MATRICES]);

typedef struct sol_model_weights {
    sol_weight_view token_embd, output;
    float *output_norm;
    sol_layer_weights *layers;
    int n_layers;
    sol_rope rope;
    sol_rope rope_q_mla; /* MLA: the queries' RoPE part, after each head's nope dims */
    sol_rope rope_local; /* Gemma-3's sliding-window layers (inv_freq NULL: as rope) */
    float *rope_inv_freq, *rope_local_inv_freq;
    sol_backend *placed; /* NULL: host memory; else the backend owning the vectors */
    void *placed_handle; /* the backend's weight copies (load_weights) */
} sol_model_weights;

/* Matrices of a type the backend cannot compute with (caps) are refused. */
int sol_weights_bind(const sol_gguf *g, const sol_model *m, const sol_backend_caps *caps, sol_model_weights *w,
                     sol_err *err);
/* Host -> backend memory (the mapping the views point at must stay open
 * while the backend may compute from it). */
int sol_weights_place(sol_backend *be, const sol_model *m, sol_model_weights *w, sol_err *err);
void sol_weights_free(sol_model_weights *w);

#endif
