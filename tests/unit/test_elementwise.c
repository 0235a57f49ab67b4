/* Vectorised elementwise kernels against the reference: SwiGLU's AVX2
 * polynomial exp across the range activations take, with a tail that is
 * not a multiple of the vector width, and the saturated ends; attention's
 * softmax weights with masked scores. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>

#include "kernels/cpu/simd.h"

static void test_swiglu(void **state)
{
    (void)state;
    const sol_cpu_kernels *avx2 = sol_cpu_kernels_get("avx2");
    if (!avx2) {
        print_message("no AVX2 on this CPU: the AVX2 SwiGLU is not checked\n");
        skip();
    }
    enum { N = 1003 };
    float gate[N], up[N], want[N];
    for (int i = 0; i < N; i++) {
        gate[i] = -100.0f + 200.0f * (float)i / (N - 1); /* -100 .. 100 */
        up[i] = 1.0f + (float)(i % 7) * 0.25f;
        want[i] = gate[i];
    }
    gate[3] = 0.0f;
    want[3] = 0.0f;
    sol_swiglu_ref(want, up, N);
    avx2->swiglu(gate, up, N);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        double err = fabs((double)gate[i] - want[i]) / (fabs(want[i]) + 1e-30);
        if (fabs(want[i]) < 1e-30)
            err = fabs(gate[i]);
        if (err > worst)
            worst = err;
        if (!(err <= 1e-6))
            fail_msg("element %d: silu(%g) * %g is %.9g, reference %.9g", i, -100.0 + 200.0 * i / (N - 1), up[i],
                     gate[i], want[i]);
    }
    print_message("swiglu: largest relative difference %.2g\n", worst);
}

/* Attention's softmax weights: exp(s - max) for scores from max down to
 * max - 100 (the polynomial's clamp and underflow), masked scores (-inf)
 * exactly 0, a tail past the vector width; each weight and the sum within
 * 1e-6 relative of the reference (or 1e-30 absolute where exp underflows). */
static void test_exp_sum(void **state)
{
    (void)state;
    const sol_cpu_kernels *avx2 = sol_cpu_kernels_get("avx2");
    if (!avx2) {
        print_message("no AVX2 on this CPU: the AVX2 softmax weights are not checked\n");
        skip();
    }
    enum { N = 67 };
    float s[N], want[N], max = 3.5f;
    for (int i = 0; i < N; i++)
        s[i] = want[i] = max - 100.0f * (float)i / (N - 1);
    s[5] = want[5] = s[N - 2] = want[N - 2] = -INFINITY;
    float want_sum = sol_exp_sum_ref(want, N, max), sum = avx2->exp_sum(s, N, max);
    assert_true(s[5] == 0.0f && s[N - 2] == 0.0f);
    assert_true(fabsf(s[0] - 1.0f) <= 1e-6f);
    for (int i = 0; i < N; i++)
        if (!(fabs((double)s[i] - want[i]) <= 1e-6 * want[i] + 1e-30))
            fail_msg("score %d: exp weight %.9g, reference %.9g", i, s[i], want[i]);
    assert_true(fabs((double)sum - want_sum) <= 1e-6 * want_sum);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_swiglu), cmocka_unit_test(test_exp_sum)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
