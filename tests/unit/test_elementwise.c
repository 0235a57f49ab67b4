/* Vectorised elementwise kernels against the reference: SwiGLU's AVX2
 * polynomial exp across the range activations take, with a tail that is
 * not a multiple of the vector width, and the saturated ends. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_swiglu)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
