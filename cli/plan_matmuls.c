/* The matmuls a model's plan runs, for the tuners (cmd_tune.c on the CPU,
 * tune_cuda.c on a GPU): each single-batch matmul op of MODEL's plan at a
 * number of token rows, in plan order, with its weight type and shape. */
#include <string.h>

#include "cli/cli.h"
#include "kernels/backend.h"
#include "models/plan.h"

/* The norms whose output (xb) the engine folds into the matmuls after them
 * (engine/exec.c: pre_norm_weight, run_norm_matmul). */
static int is_pre_norm(const sol_op *op)
{
    return op->kind == SOL_OP_NORM &&
           (!strcmp(op->name, "attn.norm") || !strcmp(op->name, "ffn.norm") || !strcmp(op->name, "output.norm"));
}

/* Op i is a matmul the engine runs in a rmsnorm_matmul_group: one of the
 * (at most SOL_MATMUL_GROUP_MAX) matmuls right after a pre-norm. */
static int folds_norm(const sol_plan *plan, int i)
{
    int run = 0;
    while (i - run > 0 && plan->ops[i - run].kind == SOL_OP_MATMUL)
        run++;
    return run <= SOL_MATMUL_GROUP_MAX && i - run >= 0 && is_pre_norm(&plan->ops[i - run]);
}

/* The single-batch matmuls of each pass's plan (only those folding a norm
 * when folded is set). */
static int plan_walk(const char *spec, const int *n_tokens, int n_passes, int folded, cli_matmul_fn fn, void *user,
                     sol_err *err)
{
    sol_model m;
    sol_kv_scheme kv;
    int rc = sol_model_load(spec, &m, err);
    if (rc)
        return rc;
    sol_kv_from_model(&m, &kv);
    for (int pass = 0; pass < n_passes; pass++) {
        sol_plan plan;
        sol_plan_params p = {.batch = 1, .n_tokens = n_tokens[pass], .wtype = m.wtype, .atype = SOL_DT_F32,
                             .kvtype = SOL_DT_F16, .tp = 1};
        if ((rc = sol_plan_build(&m, &kv, &p, &plan, err)))
            return rc;
        for (int i = 0; i < plan.n_ops; i++)
            if (plan.ops[i].kind == SOL_OP_MATMUL && plan.ops[i].batch == 1 && (!folded || folds_norm(&plan, i)))
                fn(user, &plan.ops[i]);
        sol_plan_free(&plan);
    }
    return 0;
}

int cli_plan_matmuls(const char *spec, const int *n_tokens, int n_passes, cli_matmul_fn fn, void *user, sol_err *err)
{
    return plan_walk(spec, n_tokens, n_passes, 0, fn, user, err);
}

int cli_plan_norm_matmuls(const char *spec, const int *n_tokens, int n_passes, cli_matmul_fn fn, void *user,
                          sol_err *err)
{
    return plan_walk(spec, n_tokens, n_passes, 1, fn, user, err);
}
