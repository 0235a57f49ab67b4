/* The matmuls a model's plan runs, for the tuners (cmd_tune.c on the CPU,
 * tune_cuda.c on a GPU): each single-batch matmul op of MODEL's plan at a
 * number of token rows, in plan order, with its weight type and shape. */
#include "cli/cli.h"
#include "models/plan.h"

int cli_plan_matmuls(const char *spec, const int *n_tokens, int n_passes, cli_matmul_fn fn, void *user, sol_err *err)
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
            if (plan.ops[i].kind == SOL_OP_MATMUL && plan.ops[i].batch == 1)
                fn(user, &plan.ops[i]);
        sol_plan_free(&plan);
    }
    return 0;
}
