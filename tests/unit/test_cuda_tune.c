/* The CUDA tuner's pure pieces (tuner/cuda_matvec.c): --shape and --batches
 * parsing, and the space over a stand-in for the plugin's rules (the real
 * rules are checked against the same space in tests/cuda/test_tune_trial.cu):
 * the default is the oracle's built-in variant for m, validity is the
 * oracle's plus one pass for the m inputs, the JSON keys name the template
 * parameters. */
#include <cJSON.h>

#include "tests/unit/helpers.h"
#include "tuner/cuda_matvec.h"

static void expect_shape(const char *text, sol_dtype type, int64_t n, int64_t k, int m, int m_given)
{
    sol_cuda_mv_problem pb;
    sol_err err = {0};
    int given = -1;
    if (sol_cuda_mv_problem_parse(text, &pb, &given, &err))
        fail_msg("%s: %s", text, err.msg);
    assert_int_equal(pb.type, type);
    assert_int_equal(pb.rows, n);
    assert_int_equal(pb.cols, k);
    assert_int_equal(pb.m, m);
    assert_int_equal(given, m_given);
}

static void expect_bad_shape(const char *text, const char *needle)
{
    sol_cuda_mv_problem pb;
    sol_err err = {0};
    int given;
    assert_int_equal(sol_cuda_mv_problem_parse(text, &pb, &given, &err), SOL_ERR_USAGE);
    if (!strstr(err.msg, needle) || !strstr(err.msg, "--shape"))
        fail_msg("%s: \"%s\" lacks \"%s\"", text, err.msg, needle);
}

static void test_shape_parse(void **state)
{
    (void)state;
    expect_shape("matvec:q4_k:4096x4096x1", SOL_DT_Q4_K, 4096, 4096, 1, 1);
    expect_shape("matvec:Q4_K:4096x14336x8", SOL_DT_Q4_K, 4096, 14336, 8, 1);
    expect_shape("matvec:f16:576x1536", SOL_DT_F16, 576, 1536, 1, 0);
    expect_shape("matvec:q8_0:64x64", SOL_DT_Q8_0, 64, 64, 1, 0);
    expect_shape("matvec:bf16:1x8x3", SOL_DT_BF16, 1, 8, 3, 1);
    expect_bad_shape("matmul:q4_k:4096x4096x64", "expected matvec:TYPE:NxK");
    expect_bad_shape("matvec:q4_k", "expected matvec");
    expect_bad_shape("matvec:q4_k:4096", "expected matvec");
    expect_bad_shape("matvec:q4_k:4096x", "expected matvec");
    expect_bad_shape("matvec:q4_k:4096x4096x1x2", "expected matvec");
    expect_bad_shape("matvec:q4_k:-4096x4096", "expected matvec");
    expect_bad_shape("matvec:q4_k:4096x4096 ", "expected matvec");
    expect_bad_shape("matvec::4096x4096", "expected matvec");
    expect_bad_shape("matvec:q4_k:4096x4096x9", "M 1..8");
    expect_bad_shape("matvec:q4_k:4096x4096x0", "M 1..8");
    expect_bad_shape("matvec:q4_k:4096x4000", "multiple of 256");
    expect_bad_shape("matvec:f32:64x12", "multiple of 8");
    expect_bad_shape("matvec:q4_k:2097152x4096", "out of range");
    expect_bad_shape("matvec:q4_k:12345678x4096", "expected matvec"); /* more digits than any shape */
    expect_bad_shape("matvec:q5_k:4096x4096", "not a weight type the CUDA backend runs");
    expect_bad_shape("matvec:int4:4096x4096", "not a weight type");
    expect_bad_shape("matvec:averyveryverylongtypename:1x8", "expected matvec");
    char shape[64];
    sol_cuda_mv_problem pb = {SOL_DT_Q6_K, 151936, 896, 8};
    sol_cuda_mv_problem_format(&pb, shape, sizeof shape);
    assert_string_equal(shape, "151936x896x8");
    assert_int_equal(sol_cuda_mv_row_bytes(SOL_DT_Q4_K, 4096), 16 * 144);
    assert_int_equal(sol_cuda_mv_row_bytes(SOL_DT_Q4_K, 4000), 0);
    assert_int_equal(sol_cuda_mv_row_bytes(SOL_DT_Q5_0, 4096), 0);
    assert_int_equal(sol_cuda_mv_row_bytes(SOL_DT_BF16, 10), 20);
}

static void test_batches_parse(void **state)
{
    (void)state;
    unsigned mask;
    sol_err err = {0};
    assert_int_equal(sol_cuda_mv_batches_parse("1,8", &mask, &err), 0);
    assert_int_equal(mask, 0x81u);
    assert_int_equal(sol_cuda_mv_batches_parse("8, 1, 2,2", &mask, &err), 0);
    assert_int_equal(mask, 0x83u);
    assert_int_equal(sol_cuda_mv_batches_parse("4", &mask, &err), 0);
    assert_int_equal(mask, 0x8u);
    const char *bad[] = {"", "0", "9", "1,,8", "1,", ",1", "1;8", "x", "1 8", "-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (sol_cuda_mv_batches_parse(bad[i], &mask, &err) != SOL_ERR_USAGE || !strstr(err.msg, "--batches"))
            fail_msg("--batches \"%s\" was taken (%s)", bad[i], err.msg);
    }
}

/* A stand-in for the plugin: defaults {4, 32, 16, 2, 1, m}, and valid
 * when threads x rows <= 1024 and K splits into whole 256-element tiles. */
static int checks;
static void fake_default(sol_dtype type, int max_inputs, sol_cuda_mv_config *out)
{
    (void)type;
    *out = (sol_cuda_mv_config){4, 32, 16, 2, 1, max_inputs};
}
static int fake_check(sol_dtype type, int64_t rows, int64_t cols, size_t row_bytes, const sol_cuda_mv_config *p,
                      char *why, size_t cap)
{
    (void)type;
    (void)rows;
    (void)why;
    (void)cap;
    checks++;
    assert_int_equal(row_bytes, sol_cuda_mv_row_bytes(SOL_DT_Q4_K, cols));
    return !(p->rows_per_block * p->threads_per_row <= 1024 && cols % (256 * p->k_split) == 0);
}

static void test_space(void **state)
{
    (void)state;
    const sol_cuda_mv_oracle oracle = {fake_default, fake_check};
    for (int m = 1; m <= 8; m++) {
        sol_cuda_mv_problem pb = {SOL_DT_Q4_K, 4096, 1024, m};
        sol_cuda_mv_space_ctx ctx;
        sol_tune_space s;
        sol_cuda_mv_space(&pb, &oracle, &ctx, &s);
        assert_string_equal(s.kernel, "cuda.matvec");
        assert_int_equal(s.n_params, 6);
        assert_int_equal(sol_space_size(&s), 6 * 9 * 4 * 4 * 4 * (m == 1 || m == 8 ? 1 : 2));
        sol_cuda_mv_config d;
        sol_cuda_mv_config_from(&s, &s.default_config, &d);
        sol_cuda_mv_config want = {4, 32, 16, 2, 1, m == 1 ? 1 : 8};
        assert_memory_equal(&d, &want, sizeof d);
        assert_true(sol_space_valid(&s, &s.default_config));
        char *json = sol_space_json(&s, &s.default_config);
        cJSON *doc = cJSON_Parse(json);
        assert_int_equal(cJSON_GetObjectItem(doc, "rows_per_block")->valueint, 4);
        assert_int_equal(cJSON_GetObjectItem(doc, "threads_per_row")->valueint, 32);
        assert_int_equal(cJSON_GetObjectItem(doc, "vec_bytes")->valueint, 16);
        assert_int_equal(cJSON_GetObjectItem(doc, "unroll")->valueint, 2);
        assert_int_equal(cJSON_GetObjectItem(doc, "k_split")->valueint, 1);
        assert_int_equal(cJSON_GetObjectItem(doc, "max_inputs")->valueint, m == 1 ? 1 : 8);
        cJSON_Delete(doc);
        free(json);
        /* validity: the oracle's, and never fewer inputs a pass than m */
        int valid = 0, asked = checks;
        for (int64_t i = 0; i < sol_space_size(&s); i++) {
            sol_tune_config c;
            sol_space_decode(&s, i, &c);
            sol_cuda_mv_config v;
            sol_cuda_mv_config_from(&s, &c, &v);
            int want_ok = v.max_inputs >= m && v.rows_per_block * v.threads_per_row <= 1024 && 1024 % (256 * v.k_split) == 0;
            assert_int_equal(sol_space_valid(&s, &c), want_ok);
            valid += want_ok;
        }
        assert_true(valid > 0 && checks > asked);
    }
    /* m = 3: max_inputs 3 or 8 */
    sol_cuda_mv_problem pb = {SOL_DT_Q4_K, 64, 256, 3};
    sol_cuda_mv_space_ctx ctx;
    sol_tune_space s;
    sol_cuda_mv_space(&pb, &oracle, &ctx, &s);
    assert_int_equal(s.params[5].n_values, 2);
    assert_int_equal(s.params[5].values[0], 3);
    assert_int_equal(s.params[5].values[1], 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_parse),
        cmocka_unit_test(test_batches_parse),
        cmocka_unit_test(test_space),
    };
    return cmocka_run_group_tests_name("cuda tune", tests, NULL, NULL);
}
