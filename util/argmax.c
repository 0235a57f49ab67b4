/* See argmax.h. */
#include "util/argmax.h"

#include <math.h>

int32_t sol_argmax_f32(const float *x, int64_t n)
{
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        max = x[i] > max ? x[i] : max;
    for (int64_t i = 0; i < n; i++)
        if (x[i] == max)
            return (int32_t)i;
    return 0;
}
