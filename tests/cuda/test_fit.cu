// The weights-fit rule (kernels/cuda/fit.h) on the host: weights that fit
// pass; weights that do not are refused in one line naming both sizes and
// the device, before anything is allocated.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include <cstring>

#include "kernels/cuda/fit.h"

static const size_t kGiB = (size_t)1 << 30;

static void test_fits(void **state)
{
    (void)state;
    char why[256] = "untouched";
    assert_int_equal(sol_cuda_weights_fit(13 * kGiB, 70 * kGiB, 80 * kGiB, 0, "NVIDIA H100", why, sizeof why), 0);
    assert_int_equal(sol_cuda_weights_fit(70 * kGiB, 70 * kGiB, 80 * kGiB, 0, "NVIDIA H100", why, sizeof why), 0);
    assert_string_equal(why, "untouched"); // nothing written when it fits
}

static void test_too_large(void **state)
{
    (void)state;
    char why[256];
    assert_int_equal(sol_cuda_weights_fit(140 * kGiB + kGiB / 2, 79 * kGiB, 80 * kGiB, 1, "NVIDIA H100 80GB HBM3",
                                          why, sizeof why),
                     1);
    assert_string_equal(why, "the weights need 140.50 GiB; cuda device 1 (NVIDIA H100 80GB HBM3) has 79.00 GiB free "
                             "of 80.00 GiB");
    assert_null(strchr(why, '\n'));
    assert_int_equal(sol_cuda_weights_fit(70 * kGiB + 1, 70 * kGiB, 80 * kGiB, 0, "", why, sizeof why), 1);
    assert_non_null(strstr(why, "cuda device 0 (?)")); // a device without a name still says which
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fits),
        cmocka_unit_test(test_too_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
