/* The op plan: bytes and FLOPs add up to what the model must move and do. */
#include <math.h>
#include <stdlib.h>

#include "tests/unit/helpers.h"

static sol_plan *build(const sol_model *m, const char *kv_text, int batch, int tokens, int64_t pos, int tp)
{
    sol_kv_scheme kv = scheme_of(m, kv_text);
    sol_plan_params p = {.batch = batch, .n_tokens = tokens, .pos = pos, .wtype = m->wtype,
                         .atype = SOL_DT_F16, .kvtype = SOL_DT_F16, .tp = tp};
    sol_plan *plan = malloc(sizeof *plan);
    sol_err err = {0};
    if (sol_plan_build(m, &kv, &p, plan, &err))
        fail_msg("plan: %s", err.msg);
    return plan;
}

static void destroy(sol_plan *plan)
{
    sol_plan_free(plan);
    free(plan);
}

static double sum_field(const sol_plan *plan, size_t offset, int kind)
{
    double total = 0;
    for (int i = 0; i < plan->n_ops; i++)
        if (kind < 0 || plan->ops[i].kind == (sol_op_kind)kind)
            total += *(const double *)((const char *)&plan->ops[i] + offset);
    return total;
}

static int count_ops(const sol_plan *plan, const char *name)
{
    int n = 0;
    for (int i = 0; i < plan->n_ops; i++)
        n += strcmp(plan->ops[i].name, name) == 0;
    return n;
}

static void test_decode_reads_every_weight_once(void **state)
{
    (void)state;
    sol_model m = load_preset("llama-2-7b");
    sol_plan *plan = build(&m, NULL, 1, 1, 0, 1);
    /* f16: every parameter once, except the embedding table of which one
     * row is read. */
    double expect = 2.0 * (6738415616.0 - 32000.0 * 4096 + 4096);
    assert_true(sum_field(plan, offsetof(sol_op, weight_bytes), -1) == expect);
    assert_int_equal(count_ops(plan, "attn.q"), 32);
    assert_int_equal(count_ops(plan, "lm_head"), 1);
    /* a matmul costs 2 M N K */
    for (int i = 0; i < plan->n_ops; i++) {
        const sol_op *op = &plan->ops[i];
        if (op->kind == SOL_OP_MATMUL)
            assert_true(op->flops == 2.0 * op->m * op->n * op->k * op->batch);
    }
    destroy(plan);
}

static void test_decode_reads_the_cache(void **state)
{
    (void)state;
    sol_model m = load_preset("llama-2-7b");
    /* 4095 cached + the new token = 4096 tokens of 512 KiB */
    sol_plan *plan = build(&m, NULL, 1, 1, 4095, 1);
    assert_true(sum_field(plan, offsetof(sol_op, kv_bytes), SOL_OP_ATTENTION) == 4096.0 * 524288);
    assert_true(sum_field(plan, offsetof(sol_op, write_bytes), SOL_OP_KV_WRITE) == 524288.0);
    destroy(plan);
    /* batch 4 reads four caches and writes four tokens; weights once */
    sol_plan *b4 = build(&m, NULL, 4, 1, 4095, 1);
    assert_true(sum_field(b4, offsetof(sol_op, kv_bytes), SOL_OP_ATTENTION) == 4 * 4096.0 * 524288);
    assert_true(sum_field(b4, offsetof(sol_op, write_bytes), SOL_OP_KV_WRITE) == 4 * 524288.0);
    destroy(b4);
}

static void test_prefill_is_one_matmul(void **state)
{
    (void)state;
    sol_model m = load_preset("llama-3-8b");
    sol_plan *plan = build(&m, NULL, 2, 512, 0, 1);
    for (int i = 0; i < plan->n_ops; i++) {
        const sol_op *op = &plan->ops[i];
        if (op->kind == SOL_OP_MATMUL)
            assert_int_equal(op->m, strcmp(op->name, "lm_head") == 0 ? 2 : 1024);
    }
    /* causal attention: token j sees j+1 tokens, 512*513/2 pairs per sequence */
    double attended = 2 * 512.0 * 513 / 2;
    double expect = 32 * (2.0 * 32 * (128 + 128) * attended + 5.0 * 32 * attended);
    assert_true(sum_field(plan, offsetof(sol_op, flops), SOL_OP_ATTENTION) == expect);
    destroy(plan);
}

/* A windowed (all-local) layer stack, steps straddling the window: the
 * attended pairs equal the token-by-token sum, and a billion-token prompt
 * plans at once (closed form). */
static void test_attended_tokens_windowed(void **state)
{
    (void)state;
    sol_model m = load_preset("llama-2-7b");
    const int64_t window = 100;
    const struct {
        int tokens;
        int64_t pos;
    } steps[] = {{1, 0}, {1, 99}, {1, 500}, {64, 60}, {300, 0}, {7, 95}, {130, 250}};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        sol_plan *plan = build(&m, "mha+local:100/1", 1, steps[i].tokens, steps[i].pos, 1);
        double attended = 0;
        for (int64_t j = 0; j < steps[i].tokens; j++) {
            int64_t ctx = steps[i].pos + j + 1;
            attended += (double)(ctx > window ? window : ctx);
        }
        double expect = 32 * (2.0 * 32 * (128 + 128) * attended + 5.0 * 32 * attended);
        if (sum_field(plan, offsetof(sol_op, flops), SOL_OP_ATTENTION) != expect)
            fail_msg("%d tokens at %lld: %.17g flops, token by token %.17g", steps[i].tokens,
                     (long long)steps[i].pos, sum_field(plan, offsetof(sol_op, flops), SOL_OP_ATTENTION), expect);
        destroy(plan);
    }
    sol_plan *huge = build(&m, NULL, 1, 1000000000, 0, 1);
    double n = 1e9, want = 32 * (2.0 * 32 * 256 + 5.0 * 32) * (n * (n + 1) / 2);
    double got = sum_field(huge, offsetof(sol_op, flops), SOL_OP_ATTENTION);
    destroy(huge);
    assert_true(fabs(got - want) <= 1e-15 * want * 32); /* the same sum, another order of rounding */
}

static void test_moe_expected_experts(void **state)
{
    (void)state;
    assert_true(sol_moe_expected_experts(8, 2, 1) == 2.0);
    assert_true(sol_moe_expected_experts(8, 2, 2) == 8 * (1 - 0.75 * 0.75));
    assert_true(sol_moe_expected_experts(8, 2, 1000) > 7.999);
    sol_model m = load_preset("mixtral-8x7b");
    sol_plan *one = build(&m, NULL, 1, 1, 0, 1), *many = build(&m, NULL, 64, 1, 0, 1);
    double expert_bytes = 3.0 * 4096 * 14336 * 2; /* gate, up, down of one expert, bf16 */
    double moe_one = 0, moe_many = 0;
    for (int i = 0; i < one->n_ops; i++)
        if (!strncmp(one->ops[i].name, "moe.", 4))
            moe_one += one->ops[i].weight_bytes;
    for (int i = 0; i < many->n_ops; i++)
        if (!strncmp(many->ops[i].name, "moe.", 4))
            moe_many += many->ops[i].weight_bytes;
    double router = 32 * 8 * 4096 * 2.0;
    assert_true(moe_one - router == 32 * 2 * expert_bytes);
    assert_true(fabs(moe_many - router - 32 * sol_moe_expected_experts(8, 2, 64) * expert_bytes) < 1);
    destroy(one);
    destroy(many);
}

static void test_tensor_parallel(void **state)
{
    (void)state;
    sol_model m = load_preset("llama-3-70b");
    sol_plan *one = build(&m, NULL, 1, 1, 1000, 1), *eight = build(&m, NULL, 1, 1, 1000, 8);
    assert_int_equal(count_ops(one, "comm.allreduce"), 0);
    assert_int_equal(count_ops(eight, "comm.allreduce"), 2 * 80);
    assert_int_equal(count_ops(eight, "comm.allgather"), 1);
    for (int i = 0; i < eight->n_ops; i++) {
        const sol_op *op = &eight->ops[i];
        if (op->kind == SOL_OP_ALLREDUCE) { /* ring: 2 x 7/8 of the hidden state (f16), in 14 steps */
            assert_true(op->comm_bytes == 2.0 * 7 / 8 * 8192 * 2);
            assert_int_equal(op->comm_steps, 14);
        } else if (op->kind == SOL_OP_ALLGATHER) { /* 7/8 of the f32 logits, in 7 steps */
            assert_true(op->comm_bytes == 7.0 / 8 * 128256 * 4);
            assert_int_equal(op->comm_steps, 7);
        }
    }
    for (int i = 0, j = 0; i < one->n_ops; i++, j++) {
        while (eight->ops[j].kind == SOL_OP_ALLREDUCE || eight->ops[j].kind == SOL_OP_ALLGATHER)
            j++;
        assert_string_equal(one->ops[i].name, eight->ops[j].name);
        if (one->ops[i].kind == SOL_OP_MATMUL)
            assert_true(fabs(one->ops[i].weight_bytes / 8 - eight->ops[j].weight_bytes) < 1e-6);
        if (one->ops[i].kind == SOL_OP_ATTENTION) /* 8 KV heads over 8 devices */
            assert_true(one->ops[i].kv_bytes / 8 == eight->ops[j].kv_bytes);
    }
    destroy(one);
    destroy(eight);
}

/* Every op kind has its own name (the table follows the enum). */
static void test_op_kind_names(void **state)
{
    (void)state;
    for (int k = 0; k < SOL_OP_KIND_COUNT; k++) {
        assert_non_null(sol_op_kind_name((sol_op_kind)k));
        for (int j = 0; j < k; j++)
            assert_string_not_equal(sol_op_kind_name((sol_op_kind)j), sol_op_kind_name((sol_op_kind)k));
    }
    assert_string_equal(sol_op_kind_name(SOL_OP_SAMPLE), "sample");
    assert_string_equal(sol_op_kind_name(SOL_OP_ALLGATHER), "allgather");
}

/* --tp splits the attention heads evenly; KV heads split or replicate evenly. */
static void test_tensor_parallel_divides_heads(void **state)
{
    (void)state;
    sol_model m = load_preset("llama-3-70b"); /* 64 heads, 8 KV heads */
    sol_kv_scheme kv;
    sol_kv_from_model(&m, &kv);
    const int good[] = {2, 4, 8, 16, 32, 64}, bad[] = {3, 6, 12, 128};
    sol_plan_params p = {.batch = 1, .n_tokens = 1, .pos = 10, .wtype = m.wtype, .atype = SOL_DT_F16,
                         .kvtype = SOL_DT_F16};
    sol_plan plan;
    sol_err err = {0};
    for (int i = 0; i < 6; i++) { /* 16..64: each KV head on 2..8 devices */
        p.tp = good[i];
        assert_int_equal(sol_plan_build(&m, &kv, &p, &plan, &err), 0);
        sol_plan_free(&plan);
    }
    for (int i = 0; i < 4; i++) {
        p.tp = bad[i];
        assert_int_equal(sol_plan_build(&m, &kv, &p, &plan, &err), SOL_ERR_USAGE);
        assert_non_null(strstr(err.msg, "--tp"));
    }
    /* Qwen2.5-7B: 28 heads split over 7 devices, but 4 KV heads can be
     * neither split 7 ways nor replicated evenly on them */
    m = load_preset("qwen2.5-7b");
    sol_kv_from_model(&m, &kv);
    p.tp = 7;
    p.wtype = m.wtype;
    assert_int_equal(sol_plan_build(&m, &kv, &p, &plan, &err), SOL_ERR_USAGE);
    assert_non_null(strstr(err.msg, "--tp 7 and 4 KV heads"));
}

static void test_mla_absorbed(void **state)
{
    (void)state;
    sol_model m = load_preset("deepseek-v2");
    sol_plan *plan = build(&m, NULL, 1, 1, 999, 1);
    assert_int_equal(count_ops(plan, "attn.q_absorb"), 60);
    assert_int_equal(count_ops(plan, "attn.v_absorb"), 60);
    assert_int_equal(count_ops(plan, "attn.k"), 0);
    /* 1000 tokens of 576 f16 elements in each of 60 layers */
    assert_true(sum_field(plan, offsetof(sol_op, kv_bytes), SOL_OP_ATTENTION) == 1000.0 * 576 * 2 * 60);
    destroy(plan);
}

static void test_shared_layers_read_owner(void **state)
{
    (void)state;
    sol_model m = load_preset("llama-2-7b");
    sol_plan *plan = build(&m, "mha+cla:2", 1, 1, 99, 1);
    assert_int_equal(count_ops(plan, "attn.kv_write"), 16);
    assert_int_equal(count_ops(plan, "attn.attention"), 32);
    /* every layer still reads 100 tokens of its owner's KV */
    assert_true(sum_field(plan, offsetof(sol_op, kv_bytes), SOL_OP_ATTENTION) == 32 * 100.0 * 16384);
    destroy(plan);
}

static void test_windows_cap_reads(void **state)
{
    (void)state;
    sol_model m = load_preset("mistral-7b");
    sol_plan *plan = build(&m, NULL, 1, 1, 32767, 1);
    assert_true(sum_field(plan, offsetof(sol_op, kv_bytes), SOL_OP_ATTENTION) == 4096.0 * 131072);
    destroy(plan);
}

static void test_bad_params(void **state)
{
    (void)state;
    sol_model m = load_preset("llama-2-7b");
    sol_kv_scheme kv = scheme_of(&m, NULL);
    sol_plan plan;
    sol_err err = {0};
    sol_plan_params p = {.batch = 0, .n_tokens = 1, .wtype = SOL_DT_F16, .atype = SOL_DT_F16,
                         .kvtype = SOL_DT_F16, .tp = 1};
    assert_int_equal(sol_plan_build(&m, &kv, &p, &plan, &err), SOL_ERR_USAGE);
    assert_non_null(strstr(err.msg, "--batch"));
    p.batch = 1;
    p.pos = -5;
    assert_int_equal(sol_plan_build(&m, &kv, &p, &plan, &err), SOL_ERR_USAGE);
    assert_non_null(strstr(err.msg, "--ctx"));
    p.pos = 0;
    p.kvtype = SOL_DT_Q4_1; /* q8_0 and q4_0 are KV types; the other blocks are not */
    assert_int_equal(sol_plan_build(&m, &kv, &p, &plan, &err), SOL_ERR_USAGE);
    assert_non_null(strstr(err.msg, "--kvtype"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_reads_every_weight_once),
        cmocka_unit_test(test_decode_reads_the_cache),
        cmocka_unit_test(test_prefill_is_one_matmul),
        cmocka_unit_test(test_attended_tokens_windowed),
        cmocka_unit_test(test_moe_expected_experts),
        cmocka_unit_test(test_tensor_parallel),
        cmocka_unit_test(test_tensor_parallel_divides_heads),
        cmocka_unit_test(test_op_kind_names),
        cmocka_unit_test(test_mla_absorbed),
        cmocka_unit_test(test_shared_layers_read_owner),
        cmocka_unit_test(test_windows_cap_reads),
        cmocka_unit_test(test_bad_params),
    };
    return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
