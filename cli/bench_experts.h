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
    int check; /* --check: each batch's logits against its sequences decoded alone */
} cli_experts_opts;

/* Each batch decoded and, on a MoE model, its experts counted; a markdown
 * table or a JSON array on stdout. */
int cli_bench_experts(const cli_experts_opts *o, sol_err *err);

/* bench_batch_check.c: batch sequences decoded together for 12 steps,
 * each step's logits against the sequence decoded alone (vocab_hint: the
 * model's vocabulary); *max_rel the largest max|a - b| / max|b| of a row. */
int cli_batch_check(const cli_experts_opts *o, int batch, int vocab_hint, double *max_rel, sol_err *err);

#endif
