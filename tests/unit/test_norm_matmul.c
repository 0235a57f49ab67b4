/* The engine's fused pre-norm and matmuls (the seam's rmsnorm_matmul_group)
 * give the logits of the unfused calls bit for bit: greedy decoding of
 * $SOL_TEST_GGUF (SmolLM2) on the CPU backend with the op and with the
 * entry removed (the engine then calls rmsnorm and the matmuls), every
 * step's logits compared, with 8-bit and f32 activations, one sequence and
 * three in lockstep. A counting wrapper checks that the op ran where it
 * should: two norms a layer, and the output norm when the LM head reads
 * every row. A missing variable fails the test. */
#include <stdio.h>

#include "helpers.h"
#include "engine/engine.h"
#include "kernels/cpu.h"

enum { SEQS = 3, PROMPT = 6, TOKENS = 24 };

/* The CPU backend's own op, and how often the engine called it. */
static void (*cpu_op)(sol_backend *, const float *, const float *, float, int, const sol_weight_view *const *,
                      const float *const *, int, float *, float *const *);
static int64_t calls;

static void counted_op(sol_backend *b, const float *x, const float *norm, float eps, int n,
                       const sol_weight_view *const *w, const float *const *bias, int m, float *xb, float *const *y)
{
    calls++;
    cpu_op(b, x, norm, eps, n, w, bias, m, xb, y);
}

typedef struct {
    sol_backend *be;
    sol_engine *e;
    int vocab, layers;
} engine_pair;

static engine_pair open_engine(const char *path, int seqs, sol_activations act, int fused)
{
    engine_pair p = {0};
    sol_err err = {0};
    sol_cpu_options opt = {.threads = 2};
    if (sol_cpu_backend_new(&opt, &p.be, &err))
        fail_msg("cpu backend: %s", err.msg);
    assert_non_null(p.be->rmsnorm_matmul_group);
    cpu_op = p.be->rmsnorm_matmul_group;
    p.be->rmsnorm_matmul_group = fused ? counted_op : NULL;
    sol_engine_config cfg;
    sol_engine_defaults(&cfg);
    cfg.backend = p.be;
    cfg.activations = act;
    cfg.ctx = PROMPT + TOKENS + 1;
    cfg.seqs = seqs;
    cfg.sampler.temperature = 0;
    if (sol_engine_open(path, &cfg, &p.e, &err))
        fail_msg("%s: %s", path, err.msg);
    p.vocab = (int)sol_engine_model(p.e)->vocab;
    p.layers = (int)sol_engine_model(p.e)->n_layers;
    return p;
}

/* One step: the prompt (step 0; one token a step when batched) or the
 * tokens chosen last; next[] the greedy choices. */
static void step(engine_pair *p, int seqs, const int32_t *tokens, int n, int32_t *next)
{
    sol_err err = {0};
    int rc = seqs == 1 ? sol_engine_eval(p->e, tokens, n, 0, NULL, NULL, next, &err)
                       : sol_engine_eval_batch(p->e, tokens, NULL, NULL, next, &err);
    if (rc)
        fail_msg("%s", err.msg);
}

/* Step t's logits of every sequence into out (seqs rows of vocab). */
static void logits_of(engine_pair *p, int seqs, float *out)
{
    sol_err err = {0};
    for (int s = 0; s < seqs; s++) {
        const float *row;
        if (sol_engine_logits(p->e, sol_engine_last_rows(p->e) - seqs + s, &row, &err))
            fail_msg("logits: %s", err.msg);
        memcpy(out + (size_t)s * p->vocab, row, (size_t)p->vocab * sizeof *row);
    }
}

/* A decode's logits: every step's rows, [step][seq][vocab]. */
typedef struct {
    float *logits;
    int steps, vocab;
} run_logits;

static run_logits decode(const char *path, int seqs, sol_activations act, int fused)
{
    engine_pair p = open_engine(path, seqs, act, fused);
    const int32_t prompt[PROMPT] = {504, 3250, 282, 1834, 314, 253};
    int prompt_steps = seqs == 1 ? 1 : PROMPT;
    run_logits r = {.steps = prompt_steps + TOKENS, .vocab = p.vocab};
    r.logits = malloc((size_t)r.steps * seqs * p.vocab * sizeof *r.logits);
    assert_non_null(r.logits);
    int32_t in[SEQS], next[SEQS];
    calls = 0;
    if (seqs == 1) {
        step(&p, 1, prompt, PROMPT, next);
        logits_of(&p, 1, r.logits);
    } else {
        for (int t = 0; t < PROMPT; t++) { /* every sequence the same prompt, a token a step */
            for (int s = 0; s < seqs; s++)
                in[s] = prompt[t];
            step(&p, seqs, in, seqs, next);
            logits_of(&p, seqs, r.logits + (size_t)t * seqs * p.vocab);
        }
    }
    for (int t = prompt_steps; t < r.steps; t++) {
        memcpy(in, next, (size_t)seqs * sizeof *in);
        step(&p, seqs, in, 1, next);
        logits_of(&p, seqs, r.logits + (size_t)t * seqs * p.vocab);
    }
    /* two pre-norms a layer each step, and the output norm where the LM
     * head reads every row (not the prompt's step, which wants the last) */
    int whole_head_steps = seqs == 1 ? TOKENS : r.steps;
    assert_int_equal(calls, fused ? (int64_t)r.steps * 2 * p.layers + whole_head_steps : 0);
    sol_engine_close(p.e);
    p.be->destroy(p.be);
    return r;
}

static void check(int seqs, sol_activations act)
{
    const char *path = getenv("SOL_TEST_GGUF");
    if (!path)
        fail_msg("SOL_TEST_GGUF is not set (make unit sets it)");
    run_logits plain = decode(path, seqs, act, 0), fused = decode(path, seqs, act, 1);
    assert_int_equal(plain.steps, fused.steps);
    for (int t = 0; t < plain.steps; t++)
        for (int s = 0; s < seqs; s++) {
            size_t at = ((size_t)t * seqs + s) * plain.vocab;
            if (memcmp(plain.logits + at, fused.logits + at, (size_t)plain.vocab * sizeof(float)) != 0)
                fail_msg("%s activations, %d sequence(s): step %d, sequence %d: the logits differ",
                         act == SOL_ACT_Q8 ? "q8" : "f32", seqs, t, s);
        }
    printf("# %s activations, %d sequence(s): %d steps' logits identical\n", act == SOL_ACT_Q8 ? "q8" : "f32", seqs,
           plain.steps);
    free(plain.logits);
    free(fused.logits);
}

static void one_sequence(void **state)
{
    (void)state;
    check(1, SOL_ACT_Q8);
    check(1, SOL_ACT_F32);
}

static void three_sequences(void **state)
{
    (void)state;
    check(SEQS, SOL_ACT_Q8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_sequence),
        cmocka_unit_test(three_sequences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
