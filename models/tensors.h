/* The tensors a model has in a GGUF file (llama.cpp's names and shapes) and
 * the metadata that describes it: what `sol synth` writes and what the
 * GGUF reader gives back. Pure data, no weights. */
#ifndef SOL_MODELS_TENSORS_H
#define SOL_MODELS_TENSORS_H

#include "models/gguf.h"
#include "models/models.h"

typedef struct sol_tensor_spec {
    char name[64];
    int n_dims;
    uint64_t dims[3]; /* dims[0] contiguous (input features) */
    int is_vector;    /* norms and biases: stored f32, initialised to 1 / 0 */
    int is_bias;
} sol_tensor_spec;

/* All tensors of m, in file order; *out is malloc'd. */
int sol_model_tensors(const sol_model *m, sol_tensor_spec **out, int *n, sol_err *err);
/* The GGUF architecture name of m ("llama" for mistral and mixtral, "deepseek2"). */
const char *sol_gguf_arch_name(const sol_model *m);
/* Writes m's hyperparameters as GGUF metadata. */
void sol_model_write_meta(const sol_model *m, sol_gguf_writer *w);

#endif
