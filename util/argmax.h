/* The greedy choice over a row of logits, one definition for the host
 * sampler and the CPU backend (the CUDA kernel follows the same rule). */
#ifndef SOL_UTIL_ARGMAX_H
#define SOL_UTIL_ARGMAX_H

#include <stdint.h>

/* The first index of the largest of x[0..n) (NaNs never win; 0 when no
 * element compares equal to the max, e.g. all NaN). Two passes: the max, a
 * loop the compiler vectorises, then its first position; the one-pass loop
 * carried a dependency through x[best] and took ~170 us on a 49k
 * vocabulary. */
int32_t sol_argmax_f32(const float *x, int64_t n);

#endif
