// The CUDA backend's decoding of every weight type (kernels/cuda/dequant.cuh)
// run on the host, where it needs no GPU: bit-identical to gguf-py's
// dequantization of the fixtures in tests/fixtures/quant (the same files
// the CPU kernels are held to), group by group.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/cuda/dequant.cuh"

struct fixture {
    sol_dtype type;
    uint32_t n_total;
    std::vector<uint8_t> raw;
    std::vector<float> deq;
};

static uint32_t u32_at(const std::vector<uint8_t> &f, size_t at)
{
    uint32_t v;
    memcpy(&v, f.data() + at, 4);
    return v;
}

// tests/fixtures/quant/<name>.bin: "SQFX", version, ggml type, n_src,
// n_total, src[n_src], raw blocks, deq[n_total] (tests/ref/gen_quant_fixtures.py)
static fixture load(const char *name, sol_dtype type)
{
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/quant/%s.bin", name);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        fail_msg("%s: cannot open (run from the repository root)", path);
    std::vector<uint8_t> f;
    int c;
    while ((c = fgetc(fp)) != EOF)
        f.push_back((uint8_t)c);
    fclose(fp);
    assert_true(f.size() > 20 && memcmp(f.data(), "SQFX", 4) == 0);
    fixture x;
    x.type = type;
    uint32_t n_src = u32_at(f, 12);
    x.n_total = u32_at(f, 16);
    size_t raw_at = 20 + 4 * (size_t)n_src;
    size_t raw_bytes = (size_t)x.n_total / sol_cuda_block_elems(type) * sol_cuda_block_bytes(type);
    assert_int_equal(f.size(), raw_at + raw_bytes + 4 * (size_t)x.n_total);
    x.raw.assign(f.begin() + raw_at, f.begin() + raw_at + raw_bytes);
    x.deq.resize(x.n_total);
    memcpy(x.deq.data(), f.data() + raw_at + raw_bytes, 4 * (size_t)x.n_total);
    return x;
}

static void check_type(const char *name, sol_dtype type)
{
    fixture x = load(name, type);
    assert_true(x.n_total % 8 == 0 && x.n_total > 0);
    for (int64_t g = 0; g < x.n_total / 8; g++) {
        float y[8];
        sol_dq8(type, x.raw.data(), g, y);
        for (int i = 0; i < 8; i++) {
            float want = x.deq[8 * g + i];
            if (memcmp(&y[i], &want, 4) != 0)
                fail_msg("%s element %lld: %.9g, gguf-py %.9g", name, (long long)(8 * g + i), y[i], want);
        }
    }
}

static void test_plain(void **state)
{
    (void)state;
    check_type("f32", SOL_DT_F32);
    check_type("f16", SOL_DT_F16);
    check_type("bf16", SOL_DT_BF16);
}

static void test_32_blocks(void **state)
{
    (void)state;
    check_type("q8_0", SOL_DT_Q8_0);
    check_type("q4_0", SOL_DT_Q4_0);
    check_type("q4_1", SOL_DT_Q4_1);
}

static void test_k_quants(void **state)
{
    (void)state;
    check_type("q4_k", SOL_DT_Q4_K);
    check_type("q6_k", SOL_DT_Q6_K);
}

static void test_half_specials(void **state)
{
    (void)state;
    assert_true(sol_half_to_f32(0x3c00) == 1.0f);
    assert_true(sol_half_to_f32(0x0001) == 5.9604644775390625e-8f); // smallest subnormal
    assert_true(sol_half_to_f32(0x8400) == -6.103515625e-5f);       // smallest normal, negative
    assert_true(sol_half_to_f32(0x7c00) > 3.4e38f);                 // +inf
    float nan = sol_half_to_f32(0x7e00);
    assert_true(nan != nan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_32_blocks),
        cmocka_unit_test(test_k_quants),
        cmocka_unit_test(test_half_specials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
