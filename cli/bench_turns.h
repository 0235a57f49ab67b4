/* sol bench --turns (bench_turns.c). */
#ifndef SOL_CLI_BENCH_TURNS_H
#define SOL_CLI_BENCH_TURNS_H

#include "engine/engine.h"

typedef struct cli_turns_opts {
    int turns, turn_tokens, reps, format_json;
} cli_turns_opts;

/* The conversation timed (recompute, reuse from memory, reuse from disk),
 * printed as a markdown table or a JSON array on stdout. */
int cli_bench_turns(sol_engine *e, const cli_turns_opts *o, sol_err *err);

#endif
