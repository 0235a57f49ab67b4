/* sol bench --batch (bench_experts.c). */
#ifndef SOL_CLI_BENCH_EXPERTS_H
#define SOL_CLI_BENCH_EXPERTS_H

#include "engine/engine.h"

typedef struct cli_experts_opts {
    const char *model;
    sol_engine_config engine; /* backend, KV type, ...; seqs and ctx set per batch */
    int batches[16], n_batches;
    int prompt, steps; /* random tokens per sequence before the count starts, and counted */
    int format_json;
} cli_experts_opts;

/* Each batch decoded and, on a MoE model, its experts counted; a markdown
 * table or a JSON array on stdout. */
int cli_bench_experts(const cli_experts_opts *o, sol_err *err);

#endif
