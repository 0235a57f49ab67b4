/* The KV scheme the engine runs: a model's own, or --kv where its weights allow. */
#ifndef SOL_ENGINE_KV_RULES_H
#define SOL_ENGINE_KV_RULES_H

#include "models/gguf.h"
#include "models/models.h"

/* *kv = the scheme text (NULL: the model's own) means for the file g of
 * model m, or a usage error saying why the engine cannot run it there. */
int sol_engine_kv_scheme(const sol_gguf *g, const sol_model *m, const char *text, sol_kv_scheme *kv, sol_err *err);

#endif
