/* Roofline and reports: published bounds, hardware entries, JSON schema. */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>

#include "tests/unit/helpers.h"

static sol_analysis *analyze(const char *preset, const char *kv_text, const char *hw_name, int batch,
                             int64_t ctx, int tp)
{
    return analyze_preset(preset, kv_text, hw_name, batch, ctx, 512, tp);
}

static void destroy(sol_analysis *a) { analysis_destroy(a); }

/* "LLM inference speed of light": 13.5 GB of weights at 3.35 TB/s. */
static void test_memory_bound_248(void **state)
{
    (void)state;
    sol_hw hw = load_hw("h100-sxm");
    sol_plan plan = {0};
    sol_op op = {.kind = SOL_OP_MATMUL, .m = 1, .n = 1, .k = 1, .weight_bytes = 13.5e9, .flops = 2 * 6.75e9,
                 .atype = SOL_DT_F16};
    plan.ops = &op;
    plan.n_ops = 1;
    plan.params.tp = 1;
    sol_step_cost cost;
    sol_err err = {0};
    assert_int_equal(sol_cost_plan(&plan, &hw, &cost, &err), 0);
    assert_int_equal(cost.bound, SOL_BOUND_MEMORY);
    assert_true(fabs(1 / cost.unfused_time_s - 248.15) < 0.01);
    assert_true(cost.sol_time_s == cost.unfused_time_s); /* one op: nothing to fuse */
    sol_step_cost_free(&cost);

    /* Llama-2-7B fp16 (13.5 GB) at a short context lands just above that:
     * the embedding table is not read, the KV is small. */
    sol_analysis *a = analyze("llama-2-7b", NULL, "h100-sxm", 1, 16, 1);
    assert_true(a->decode_tokens_per_s > 248 && a->decode_tokens_per_s < 256);
    assert_int_equal(a->decode_cost.bound, SOL_BOUND_MEMORY);
    assert_true(fabs(a->decode_tokens_per_s - 3.35e12 / a->decode_cost.sol_bytes) < 1e-6 * a->decode_tokens_per_s);
    assert_true(a->decode_cost.sol_bytes < a->decode_cost.bytes);
    assert_true(fabs(a->decode_unfused_tokens_per_s - 3.35e12 / a->decode_cost.bytes) <
                1e-6 * a->decode_unfused_tokens_per_s);
    destroy(a);
}

static void test_prefill_compute_bound(void **state)
{
    (void)state;
    sol_analysis *a = analyze("llama-2-7b", NULL, "h100-sxm", 1, 4096, 1);
    assert_int_equal(a->prefill_cost.bound, SOL_BOUND_COMPUTE);
    /* ~2 * 6.7e9 FLOPs per prompt token at 989.4 TFLOP/s, plus attention */
    double floor_s = 512 * 2 * 6.47e9 / 989.4e12;
    assert_true(a->prefill_cost.sol_time_s > floor_s && a->prefill_cost.sol_time_s < 1.2 * floor_s);
    destroy(a);
}

/* The speed of light is the whole step's bound: Llama-2-7B prefilling 2048
 * tokens on an A100 (312 TFLOP/s fp16) is its FLOPs at peak, 88.6 ms; the
 * per-op sum charges unfused norms, RoPE, KV writes and adds: 95.6 ms. */
static void test_fused_step_bound(void **state)
{
    (void)state;
    sol_model m = load_preset("llama-2-7b");
    sol_kv_scheme kv = scheme_of(&m, NULL);
    sol_hw hw = load_hw("a100-80gb");
    sol_analysis_config cfg = {.batch = 1, .ctx = 4096, .prompt = 2048, .wtype = m.wtype, .atype = SOL_DT_F16,
                               .kvtype = SOL_DT_F16, .tp = 1};
    sol_analysis *a = malloc(sizeof *a);
    sol_err err = {0};
    assert_int_equal(sol_analyze(&m, &kv, &hw, &cfg, a, &err), 0);
    const sol_step_cost *p = &a->prefill_cost;
    assert_int_equal(p->sol_bound, SOL_BOUND_COMPUTE);
    assert_true(fabs(p->sol_time_s - p->flops / 312e12) < 1e-9 * p->sol_time_s);
    assert_true(p->sol_time_s > 88.55e-3 && p->sol_time_s < 88.65e-3);
    assert_true(p->unfused_time_s > 95.55e-3 && p->unfused_time_s < 95.65e-3);
    /* decode at 4096: memory-bound on weights + KV; unfused adds the activations */
    const sol_step_cost *d = &a->decode_cost;
    double weights_and_kv = 0;
    for (int i = 0; i < a->decode.n_ops; i++)
        weights_and_kv += a->decode.ops[i].weight_bytes + a->decode.ops[i].kv_bytes +
                          (a->decode.ops[i].kind == SOL_OP_KV_WRITE || a->decode.ops[i].kind == SOL_OP_SAMPLE
                               ? a->decode.ops[i].write_bytes
                               : 0);
    assert_true(d->sol_bytes == weights_and_kv);
    assert_true(fabs(d->sol_time_s - weights_and_kv / 2.039e12) < 1e-12);
    assert_true(d->sol_time_s < d->unfused_time_s);
    destroy(a);
}

/* Each collective pays alpha per ring step plus its bytes at link bandwidth:
 * Llama-3-70B over 8 H100s, 1 us per step (the entry's estimate), 450 GB/s. */
static void test_tp_alpha_beta(void **state)
{
    (void)state;
    sol_analysis *a = analyze("llama-3-70b", NULL, "h100-sxm", 1, 4096, 8);
    int reduces = 0, gathers = 0;
    for (int i = 0; i < a->decode.n_ops; i++) {
        const sol_op *op = &a->decode.ops[i];
        const sol_op_cost *c = &a->decode_cost.ops[i];
        if (op->kind != SOL_OP_ALLREDUCE && op->kind != SOL_OP_ALLGATHER)
            continue;
        reduces += op->kind == SOL_OP_ALLREDUCE;
        gathers += op->kind == SOL_OP_ALLGATHER;
        double want = (op->kind == SOL_OP_ALLREDUCE ? 14 : 7) * 1e-6 + op->comm_bytes / 450e9;
        assert_true(fabs(c->comm_time_s - want) < 1e-15);
    }
    assert_int_equal(reduces, 160);
    assert_int_equal(gathers, 1);
    destroy(a);
}

static void test_memory_and_max_batch(void **state)
{
    (void)state;
    sol_analysis *a = analyze("llama-2-7b", NULL, "h100-sxm", 1, 4096, 1);
    double weights = 2 * 6738415616.0;
    assert_true(a->weights_bytes == weights);
    /* the driver's 81,559 MiB, not the marketed 80 GB */
    assert_int_equal(a->max_batch, (long long)((81559.0 * 1048576 - weights) / (4096 * 524288.0)));
    assert_true(a->fits);
    destroy(a);
    /* by hand: an A100-80GB holds 81,920 MiB = 85,899,345,920 B; minus
     * 13,476,831,232 B of f16 weights leaves 72,422,514,688 B, and a
     * sequence of 4096 tokens caches 4096 x 524,288 B = 2 GiB: 33 fit
     * (decimal 80e9 would say 30) */
    sol_analysis *a100 = analyze("llama-2-7b", NULL, "a100-80gb", 1, 4096, 1);
    assert_int_equal(a100->max_batch, 33);
    destroy(a100);
    sol_analysis *big = analyze("llama-3.1-405b", NULL, "h100-sxm", 1, 8192, 1);
    assert_false(big->fits);
    assert_int_equal(big->max_batch, 0);
    destroy(big);
    /* 8-way tensor parallel on H200: 811 GB / 8 per device fits in 141 GB */
    sol_analysis *tp = analyze("llama-3.1-405b", NULL, "h200", 1, 8192, 8);
    assert_true(tp->fits);
    assert_true(fabs(tp->weights_bytes - 2 * 405853388800.0 / 8) < 2e9); /* norms replicated */
    destroy(tp);
}

static void test_hw_entries(void **state)
{
    (void)state;
    assert_true(sol_hw_preset_count() >= 10);
    for (int i = 0; i < sol_hw_preset_count(); i++) {
        sol_hw hw = load_hw(sol_hw_preset_name(i));
        assert_true(hw.mem_bw.known && hw.mem_bytes.known && hw.peak[SOL_PEAK_FP16].known);
        assert_string_equal(hw.name, sol_hw_preset_name(i));
        /* capacities as the driver reports them: whole MiB, with their source */
        assert_true(fmod(hw.mem_bytes.value, 1048576.0) == 0);
        assert_true(!strcmp(hw.mem_bytes.source, "driver") || !strcmp(hw.kind, "cpu") ||
                    !strcmp(hw.vendor, "amd"));
    }
    sol_hw h100 = load_hw("h100-sxm");
    assert_true(h100.mem_bw.value == 3.35e12);
    assert_true(h100.peak[SOL_PEAK_BF16].value == 989.4e12);
    assert_string_equal(h100.mem_bw.source, "datasheet");
    /* A100 has no fp8: fp8 work runs at the fp16 rate */
    sol_hw a100 = load_hw("a100-80gb");
    sol_peak used;
    assert_true(sol_hw_peak(&a100, SOL_PEAK_FP8, &used) == 312e12);
    assert_int_equal(used, SOL_PEAK_FP16);
    /* ridge point: A100 40GB 312e12 / 1.555e12 = ~200 FLOP/B (FACTS.md) */
    sol_hw a40 = load_hw("a100-40gb");
    assert_true(fabs(a40.peak[SOL_PEAK_FP16].value / a40.mem_bw.value - 200.6) < 0.1);
}

static void test_cpu_entry(void **state)
{
    (void)state;
    sol_hw cpu = load_hw("cpu");
    assert_string_equal(cpu.kind, "cpu");
    assert_true(cpu.mem_bw.value > 0 && cpu.peak[SOL_PEAK_FP32].value > 0 && cpu.mem_bytes.value > 0);
    assert_string_equal(cpu.mem_bw.source, "estimate");
    assert_string_equal(cpu.peak[SOL_PEAK_FP32].source, "estimate");
    assert_false(cpu.peak[SOL_PEAK_FP8].known);
}

static void test_hw_json_errors(void **state)
{
    (void)state;
    sol_hw hw;
    sol_err err = {0};
    assert_int_equal(sol_hw_from_json("{", "x.json", &hw, &err), SOL_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "x.json: invalid JSON"));
    assert_int_equal(sol_hw_from_json("{\"peak_flops\":{}}", "x.json", &hw, &err), SOL_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "\"name\""));
    assert_int_equal(sol_hw_from_json("{\"name\":\"a\",\"peak_flops\":{\"fp32\":{\"value\":1,\"source\":\"datasheet\"}},"
                                      "\"mem_bytes\":{\"value\":1,\"source\":\"datasheet\"},"
                                      "\"mem_bw_bytes_per_s\":{\"value\":-1,\"source\":\"datasheet\"}}",
                                      "x.json", &hw, &err),
                     SOL_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "mem_bw_bytes_per_s"));
    assert_int_equal(sol_hw_load("no-such-gpu", &hw, &err), SOL_ERR_USAGE);
    assert_non_null(strstr(err.msg, "no-such-gpu"));
}

static const cJSON *path(const cJSON *root, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(root, a);
    if (!x)
        fail_msg("JSON lacks %s", a);
    if (b && !(x = cJSON_GetObjectItemCaseSensitive(x, b)))
        fail_msg("JSON lacks %s.%s", a, b);
    return x;
}

static void test_json_schema(void **state)
{
    (void)state;
    sol_analysis *a = analyze("gemma-2-9b", NULL, "h100-sxm", 2, 8192, 1);
    char *text = sol_report_json(a);
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    assert_string_equal(path(root, "model", "name")->valuestring, "Gemma-2-9B");
    assert_true(path(root, "model", "params")->valuedouble == 9241705984.0);
    assert_non_null(path(root, "model", "active_params"));
    assert_int_equal(path(root, "model", "layers")->valueint, 42);
    assert_true(path(root, "hardware", "mem_bw_bytes_per_s")->valuedouble == 3.35e12);
    const cJSON *peaks = path(root, "hardware", "peak_flops");
    const char *keys[] = {"fp32", "fp16", "bf16", "fp8", "int8"};
    for (int i = 0; i < 5; i++)
        assert_non_null(cJSON_GetObjectItemCaseSensitive(peaks, keys[i]));
    assert_int_equal(path(root, "config", "batch")->valueint, 2);
    assert_string_equal(path(root, "config", "kv_scheme")->valuestring, "gqa:8+local:4096/2");
    assert_true(path(root, "kv", "bytes_per_token")->valuedouble == 42 * 8192.0);
    assert_true(path(root, "kv", "cache_bytes")->valuedouble == 2 * (21 * 8192.0 * 8192 + 21 * 8192.0 * 4096));
    assert_true(path(root, "weights", "bytes")->valuedouble > 0);
    const char *decode_keys[] = {"bytes", "flops", "time_s", "tokens_per_s", "bound"};
    for (int i = 0; i < 5; i++)
        assert_non_null(path(root, "decode", decode_keys[i]));
    assert_non_null(path(root, "prefill", "tokens_per_s"));
    assert_non_null(path(root, "memory", "max_batch"));
    assert_true(cJSON_IsBool(path(root, "memory", "fits")));
    const cJSON *layers = path(root, "layers", NULL);
    assert_int_equal(cJSON_GetArraySize(layers), 42);
    const cJSON *l0 = cJSON_GetArrayItem(layers, 0);
    assert_string_equal(path(l0, "attention", NULL)->valuestring, "local");
    assert_string_equal(path(cJSON_GetArrayItem(layers, 1), "attention", NULL)->valuestring, "global");
    const cJSON *op = cJSON_GetArrayItem(path(l0, "ops", NULL), 0);
    const char *op_keys[] = {"name", "bytes", "flops", "intensity", "time_s", "bound"};
    for (int i = 0; i < 6; i++)
        assert_non_null(cJSON_GetObjectItemCaseSensitive(op, op_keys[i]));
    /* op times add up to the step */
    double sum = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, layers)
    {
        const cJSON *o;
        cJSON_ArrayForEach(o, path(l, "ops", NULL)) sum += path(o, "time_s", NULL)->valuedouble;
    }
    const cJSON *o;
    cJSON_ArrayForEach(o, path(root, "ops", NULL)) sum += path(o, "time_s", NULL)->valuedouble;
    assert_true(fabs(sum - path(path(root, "decode", "unfused"), "time_s", NULL)->valuedouble) < 1e-9);
    /* the speed of light, the whole step fused, is never above the per-op sum */
    assert_true(path(root, "decode", "time_s")->valuedouble <= sum);
    assert_non_null(path(root, "decode", "unavoidable_bytes"));
    cJSON_Delete(root);
    free(text);
    destroy(a);
}

/* The names CUDA drivers report (nvidia-smi -L) find their datasheet entry. */
static void test_hw_for_gpu(void **state)
{
    (void)state;
    assert_string_equal(sol_hw_for_gpu("NVIDIA H100 80GB HBM3", 85e9), "h100-sxm");
    assert_string_equal(sol_hw_for_gpu("NVIDIA H100 PCIe", 85e9), "h100-pcie");
    assert_string_equal(sol_hw_for_gpu("NVIDIA H200", 150e9), "h200");
    assert_string_equal(sol_hw_for_gpu("NVIDIA A100-SXM4-80GB", 85e9), "a100-80gb");
    assert_string_equal(sol_hw_for_gpu("NVIDIA A100-SXM4-40GB", 42e9), "a100-40gb");
    assert_string_equal(sol_hw_for_gpu("NVIDIA GeForce RTX 4090", 25e9), "rtx-4090");
    assert_string_equal(sol_hw_for_gpu("Tesla T4", 16e9), "t4");
    assert_null(sol_hw_for_gpu("NVIDIA GeForce GTX 1080", 8e9));
    sol_hw hw;
    sol_err err = {0};
    assert_int_equal(sol_hw_load(sol_hw_for_gpu("NVIDIA H200", 150e9), &hw, &err), 0); /* every answer is an entry */
    assert_int_equal(sol_hw_load(sol_hw_for_gpu("NVIDIA H100 PCIe", 85e9), &hw, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_bound_248), cmocka_unit_test(test_prefill_compute_bound),
        cmocka_unit_test(test_memory_and_max_batch), cmocka_unit_test(test_fused_step_bound),
        cmocka_unit_test(test_tp_alpha_beta), cmocka_unit_test(test_hw_entries),
        cmocka_unit_test(test_cpu_entry),        cmocka_unit_test(test_hw_json_errors),
        cmocka_unit_test(test_json_schema), cmocka_unit_test(test_hw_for_gpu),
    };
    return cmocka_run_group_tests_name("analyzer", tests, NULL, NULL);
}
