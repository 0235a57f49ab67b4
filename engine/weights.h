/* Binds a GGUF file's tensors to the roles the engine executes: views into
 * the mapping for matrices (no copies), small f32 copies of norm weights
 * and biases, and the RoPE frequencies. Every tensor is checked first. */
#ifndef SOL_ENGINE_WEIGHTS_H
#define SOL_ENGINE_WEIGHTS_H

#include "kernels/backend.h"
#include "models/gguf.h"
#include "models/models.h"

typedef struct sol_layer_weights {
    sol_weight_view wq, wk, wv, wo, gate, up, down;
    float *attn_norm, *ffn_norm;
    float *bq, *bk, *bv; /* NULL when the model has no q/k/v bias */
} sol_layer_weights;

typedef struct sol_model_weights {
    sol_weight_view token_embd, output;
    float *output_norm;
    sol_layer_weights *layers;
    int n_layers;
    sol_rope rope;
    float *rope_inv_freq;
} sol_model_weights;

int sol_weights_bind(const sol_gguf *g, const sol_model *m, sol_model_weights *w, sol_err *err);
void sol_weights_free(sol_model_weights *w);

#endif
