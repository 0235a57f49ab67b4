/* What the kernel tests share: seeded random numbers (xorshift64*, each test
 * file its own stream through TEST_RNG_SEED), and the AVX2 table or a skip. */
#ifndef SOL_TESTS_KERNEL_TEST_H
#define SOL_TESTS_KERNEL_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "kernels/cpu.h"
#include "kernels/cpu/simd.h"

#ifndef TEST_RNG_SEED
#define TEST_RNG_SEED 0x9e3779b97f4a7c15ull
#endif

static uint64_t rng_state = TEST_RNG_SEED;

static inline uint64_t rng_u64(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static inline double rng_uniform(void) { return (double)(rng_u64() >> 11) * 0x1p-53; }

static inline float rng_normal(void)
{
    double u = rng_uniform() + 0x1p-60, v = rng_uniform();
    return (float)(sqrt(-2 * log(u)) * cos(2 * M_PI * v));
}

/* A CPU backend of `threads` threads (the test fails without one). */
static inline sol_backend *cpu_backend(int threads)
{
    sol_backend *be = NULL;
    sol_err err = {0};
    sol_cpu_options opt = {.threads = threads};
    if (sol_cpu_backend_new(&opt, &be, &err))
        fail_msg("CPU backend: %s", err.msg);
    return be;
}

/* The ops that follow work on `rows` rows at positions pos.. (no tokens). */
static inline void begin_step(sol_backend *be, int rows, int64_t pos)
{
    sol_err err = {0};
    sol_step_state s = {.pos = pos, .rows = rows, .tokens = NULL};
    if (be->begin_step(be, &s, &err))
        fail_msg("begin_step: %s", err.msg);
}

/* The table under test: AVX2 where this CPU has it, else the test is skipped. */
static inline const sol_cpu_kernels *avx2_or_skip(void)
{
    const sol_cpu_kernels *k = sol_cpu_kernels_get("avx2");
    if (!k) {
        print_message("no AVX2+FMA+F16C on this CPU (or not an x86 build): skipped\n");
        skip();
    }
    return k;
}

#endif
