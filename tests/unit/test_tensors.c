/* The GGUF tensor table of every preset holds exactly the parameters the
 * plan counts, and its metadata reads back as the same model. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "models/tensors.h"
#include "tests/unit/helpers.h"

static void test_tensor_table_matches_plan(void **state)
{
    (void)state;
    for (int p = 0; p < sol_preset_count(); p++) {
        sol_model m = load_preset(sol_preset_name(p));
        sol_tensor_spec *t;
        int n;
        sol_err err = {0};
        sol_param_count count;
        assert_int_equal(sol_model_tensors(&m, &t, &n, &err), 0);
        assert_int_equal(sol_model_params(&m, &count, &err), 0);
        double elems = 0;
        for (int i = 0; i < n; i++)
            elems += (double)t[i].dims[0] * t[i].dims[1] * t[i].dims[2];
        if (elems != count.total)
            fail_msg("%s: tensors hold %.0f parameters, the plan counts %.0f", sol_preset_name(p), elems, count.total);
        free(t);
    }
}

/* Metadata and a tensor table written by sol_model_write_meta read back as
 * the same hyperparameters (weights left as zeros: 2 layers, tiny vocab). */
static void test_metadata_round_trip(void **state)
{
    (void)state;
    const char *presets[] = {"llama-3-8b", "qwen2.5-7b", "mistral-7b", "mixtral-8x7b", "deepseek-v2-lite"};
    for (size_t p = 0; p < sizeof presets / sizeof presets[0]; p++) {
        sol_model m = load_preset(presets[p]), back;
        m.n_layers = 2;
        m.vocab = 300;
        m.wtype = m.embed_type = m.output_type = SOL_DT_F16;
        if (m.first_dense > 1)
            m.first_dense = 1;
        sol_tensor_spec *t;
        int n;
        sol_err err = {0};
        assert_int_equal(sol_model_tensors(&m, &t, &n, &err), 0);
        sol_gguf_writer *w = sol_gguf_writer_new();
        sol_model_write_meta(&m, w);
        for (int i = 0; i < n; i++) {
            int f32 = t[i].is_vector;
            uint64_t bytes = t[i].dims[0] * t[i].dims[1] * t[i].dims[2] * (f32 ? 4 : 2);
            sol_gguf_add_tensor(w, t[i].name, (uint32_t)t[i].n_dims, t[i].dims, f32 ? 0 : 1, NULL, bytes);
        }
        char path[64];
        snprintf(path, sizeof path, "/tmp/sol-meta-%d.gguf", getpid());
        if (sol_gguf_writer_write(w, path, &err))
            fail_msg("%s", err.msg);
        sol_gguf_writer_free(w);
        if (sol_model_from_gguf(path, &back, &err))
            fail_msg("%s: %s", presets[p], err.msg);
        unlink(path);
        free(t);
        assert_int_equal(back.n_layers, 2);
        assert_int_equal(back.hidden, m.hidden);
        assert_int_equal(back.n_heads, m.n_heads);
        assert_int_equal(back.n_kv_heads, m.n_kv_heads);
        assert_int_equal(back.head_dim, m.head_dim);
        assert_int_equal(back.ffn, m.ffn);
        assert_int_equal(back.vocab, 300);
        assert_int_equal(back.sliding_window, m.sliding_window);
        assert_int_equal(back.n_experts, m.n_experts);
        assert_int_equal(back.moe_ffn, m.moe_ffn);
        assert_int_equal(back.kv_lora_rank, m.kv_lora_rank);
        assert_int_equal(back.qk_rope_dim, m.qk_rope_dim);
        assert_int_equal(back.v_head_dim, m.v_head_dim);
        assert_true(back.qkv_bias == m.qkv_bias);
        assert_true(back.tied_embeddings == m.tied_embeddings);
        sol_param_count a, b;
        assert_int_equal(sol_model_params(&m, &a, &err), 0);
        assert_int_equal(sol_model_params(&back, &b, &err), 0);
        assert_true(a.total == b.total);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tensor_table_matches_plan),
        cmocka_unit_test(test_metadata_round_trip),
    };
    return cmocka_run_group_tests_name("tensors", tests, NULL, NULL);
}
