/* Sampling from the backend's top-k candidates (the top_k op: a GPU moves
 * a few hundred bytes a token, not the logits row) draws the same tokens
 * as sampling from the whole row on the host: the engine's two paths on
 * $SOL_TEST_GGUF (SmolLM2), with and without a repetition penalty, one
 * sequence and three in lockstep. A missing variable fails the test. */
#include <stdio.h>

#include "helpers.h"
#include "engine/engine.h"
#include "kernels/cpu.h"

enum { SEQS = 3, PROMPT = 6, TOKENS = 40 };

typedef struct {
    sol_backend *be;
    sol_engine *e;
} engine_pair;

/* top_k_op 0: the backend's top_k entry removed, so the engine samples
 * from the downloaded row as a backend without the op makes it. */
static engine_pair open_engine(const char *path, int seqs, float penalty, int top_k_op)
{
    engine_pair p = {0};
    sol_err err = {0};
    sol_cpu_options opt = {.threads = 2};
    if (sol_cpu_backend_new(&opt, &p.be, &err))
        fail_msg("cpu backend: %s", err.msg);
    assert_non_null(p.be->top_k);
    if (!top_k_op)
        p.be->top_k = NULL;
    sol_engine_config cfg;
    sol_engine_defaults(&cfg);
    cfg.backend = p.be;
    cfg.ctx = PROMPT + TOKENS + 1;
    cfg.seqs = seqs;
    cfg.sampler.temperature = 0.9f;
    cfg.sampler.top_k = 40;
    cfg.sampler.repeat_penalty = penalty;
    cfg.sampler.seed = 1234;
    if (sol_engine_open(path, &cfg, &p.e, &err))
        fail_msg("%s: %s", path, err.msg);
    return p;
}

/* seqs sequences' generated tokens, [t][s]. */
static void generate(const char *path, int seqs, float penalty, int top_k_op, int32_t out[TOKENS][SEQS])
{
    engine_pair p = open_engine(path, seqs, penalty, top_k_op);
    sol_err err = {0};
    int32_t next[SEQS];
    const int32_t prompt[PROMPT] = {504, 3250, 282, 1834, 314, 253};
    if (seqs == 1) {
        if (sol_engine_eval(p.e, prompt, PROMPT, 0, NULL, NULL, next, &err))
            fail_msg("%s: %s", path, err.msg);
    } else {
        for (int t = 0; t < PROMPT; t++) { /* every sequence the same prompt, a token a step */
            int32_t in[SEQS];
            for (int s = 0; s < seqs; s++)
                in[s] = prompt[t];
            if (sol_engine_eval_batch(p.e, in, NULL, NULL, next, &err))
                fail_msg("%s: %s", path, err.msg);
        }
    }
    for (int t = 0; t < TOKENS; t++) {
        memcpy(out[t], next, (size_t)seqs * sizeof *next);
        int rc = seqs == 1 ? sol_engine_eval(p.e, next, 1, 0, NULL, NULL, next, &err)
                           : sol_engine_eval_batch(p.e, out[t], NULL, NULL, next, &err);
        if (rc)
            fail_msg("%s: %s", path, err.msg);
    }
    sol_engine_close(p.e);
    p.be->destroy(p.be);
}

static void check(int seqs, float penalty)
{
    const char *path = getenv("SOL_TEST_GGUF");
    if (!path)
        fail_msg("SOL_TEST_GGUF is not set (make unit sets it)");
    static int32_t row[TOKENS][SEQS], cand[TOKENS][SEQS];
    generate(path, seqs, penalty, 0, row);
    generate(path, seqs, penalty, 1, cand);
    int distinct = 0;
    for (int t = 0; t < TOKENS; t++)
        for (int s = 0; s < seqs; s++) {
            if (row[t][s] != cand[t][s])
                fail_msg("%d sequences, penalty %.2f: token %d of sequence %d: %d from the row, %d from the top-k",
                         seqs, penalty, t, s, row[t][s], cand[t][s]);
            distinct += t > 0 && row[t][s] != row[t - 1][s];
        }
    assert_true(distinct > TOKENS / 4); /* sampled text, not one token repeated */
    printf("# %d sequence(s), penalty %.2f: %d tokens each identical\n", seqs, penalty, TOKENS);
}

static void one_sequence(void **state)
{
    (void)state;
    check(1, 1.0f);
    check(1, 1.3f);
}

static void three_sequences(void **state)
{
    (void)state;
    check(SEQS, 1.0f);
    check(SEQS, 1.1f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_sequence),
        cmocka_unit_test(three_sequences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
