/* Binding a GGUF tensor to a role, shared by weights.c (the model's
 * matrices, RoPE, placing) and weights_layer.c (each layer's tensors by
 * family). Every check names the file and the tensor. Not an interface:
 * callers use weights.h. */
#ifndef SOL_ENGINE_WEIGHTS_BIND_H
#define SOL_ENGINE_WEIGHTS_BIND_H

#include "engine/weights.h"

/* A rows x cols matrix of a type the backend computes with. */
int sol_bind_matrix(const sol_gguf *g, const sol_backend_caps *caps, const char *name, int64_t rows, int64_t cols,
                    sol_weight_view *out, sol_err *err);
/* A 3-D expert tensor (ne = [cols, rows, n_experts]) as one view of
 * n_experts * rows rows. */
int sol_bind_experts(const sol_gguf *g, const sol_backend_caps *caps, const char *name, int n_experts, int64_t rows,
                     int64_t cols, sol_weight_view *out, sol_err *err);
/* A vector of n elements copied to f32; absent and optional gives NULL. */
int sol_bind_vector(const sol_gguf *g, const char *name, int64_t n, int required, float **out, sol_err *err);
/* Layer i's tensors as the model's family stores them (weights_layer.c). */
int sol_bind_layer(const sol_gguf *g, const sol_model *m, const sol_backend_caps *caps, int i, sol_layer_weights *l,
                   sol_err *err);

#endif
