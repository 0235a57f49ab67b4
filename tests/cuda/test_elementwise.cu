// The CUDA backend's elementwise formulas (kernels/cuda/elementwise.cuh:
// GeGLU's gelu_tanh, Gemma-2's soft-cap) run on the host, where they need no
// GPU: bit-identical to the CPU backend's expressions (kernels/cpu/
// cpu_backend.c gelu_tanh and cpu_softcap, kernels/cpu/attention.c capped,
// restated below as they are written there), and within float rounding of
// the docs/FAMILIES.md formulas evaluated in double.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include <cmath>
#include <cstring>

#include "kernels/cuda/elementwise.cuh"

// kernels/cpu/cpu_backend.c, as written there.
static float cpu_gelu_tanh(float u)
{
    const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
    return 0.5f * u * (1.0f + tanhf(k * (u + 0.044715f * u * u * u)));
}

// kernels/cpu/attention.c capped, cpu_softcap's element.
static float cpu_capped(float s, float cap) { return cap * tanhf(s / cap); }

static double gelu_tanh_double(double u)
{
    return 0.5 * u * (1.0 + tanh(sqrt(2.0 / M_PI) * (u + 0.044715 * u * u * u)));
}

static bool same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

// Inputs from -40 to 40 in uneven steps, and the edges of float.
static int inputs(float *out, int cap)
{
    int n = 0;
    for (float u = -40.0f; u <= 40.0f && n < cap; u += 0.0371f)
        out[n++] = u;
    const float edges[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-7f, -1e-7f, 3e38f, -3e38f, 1e15f, -1e15f};
    for (float e : edges)
        if (n < cap)
            out[n++] = e;
    return n;
}

static void test_gelu_matches_cpu(void **state)
{
    (void)state;
    static float u[4096];
    int n = inputs(u, 4096);
    for (int i = 0; i < n; i++) {
        float got = sol_gelu_tanh(u[i]), want = cpu_gelu_tanh(u[i]);
        if (!same_bits(got, want))
            fail_msg("gelu_tanh(%.9g): %.9g, the CPU's %.9g", u[i], got, want);
    }
}

static void test_gelu_formula(void **state)
{
    (void)state;
    for (float u = -12.0f; u <= 12.0f; u += 0.013f) {
        double want = gelu_tanh_double(u);
        float got = sol_gelu_tanh(u);
        // relative to the input's size: near the root at 0 and in the
        // negative tail the value is a difference of nearly equal terms
        if (fabs(got - want) > 4e-7 * (fabs(u) > 1 ? fabs(u) : 1.0))
            fail_msg("gelu_tanh(%.9g): %.9g, float64 %.9g", u, got, want);
    }
    assert_true(sol_gelu_tanh(0.0f) == 0.0f);
    assert_true(sol_gelu_tanh(1e15f) == 1e15f);   // tanh saturates: the identity
    assert_true(sol_gelu_tanh(-1e15f) == 0.0f);   // and zero, not a NaN from inf - inf
    assert_true(sol_gelu_tanh(3e38f) == 3e38f);   // u^3 overflows to inf: tanh(inf) = 1
    assert_true(sol_gelu_tanh(-3e38f) == 0.0f);
    float nan = sol_gelu_tanh(NAN);
    assert_true(nan != nan);
    // gelu(1) under the tanh approximation: 0.8411919906082768 (float64)
    assert_true(fabs(sol_gelu_tanh(1.0f) - 0.8411919906082768) < 1e-7);
}

static void test_softcap_matches_cpu(void **state)
{
    (void)state;
    static float s[4096];
    int n = inputs(s, 4096);
    const float caps[] = {50.0f, 30.0f, 1.0f, 0.5f};
    for (float cap : caps)
        for (int i = 0; i < n; i++) {
            float got = sol_softcapped(s[i], cap), want = cpu_capped(s[i], cap);
            if (!same_bits(got, want))
                fail_msg("softcap %g of %.9g: %.9g, the CPU's %.9g", cap, s[i], got, want);
        }
}

static void test_softcap_formula(void **state)
{
    (void)state;
    const float caps[] = {50.0f, 30.0f};
    for (float cap : caps) {
        for (float s = -200.0f; s <= 200.0f; s += 0.173f) {
            float got = sol_softcapped(s, cap);
            double want = cap * tanh((double)s / cap);
            if (fabs(got - want) > 2e-6 * cap)
                fail_msg("softcap %g of %.9g: %.9g, float64 %.9g", cap, s, got, want);
            if (!(fabs(got) <= cap))
                fail_msg("softcap %g of %.9g: %.9g is beyond the cap", cap, s, got);
            if (!same_bits(sol_softcapped(-s, cap), -got))
                fail_msg("softcap %g is not odd at %.9g", cap, s);
        }
        assert_true(sol_softcapped(0.0f, cap) == 0.0f);
        assert_true(sol_softcapped(1e30f, cap) == cap);
        assert_true(sol_softcapped(-1e30f, cap) == -cap);
        assert_true(fabs(sol_softcapped(0.01f, cap) - 0.01f) < 1e-8f); // small scores pass unchanged
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gelu_matches_cpu),
        cmocka_unit_test(test_gelu_formula),
        cmocka_unit_test(test_softcap_matches_cpu),
        cmocka_unit_test(test_softcap_formula),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
