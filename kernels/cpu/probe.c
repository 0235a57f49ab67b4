/* CPU ceilings (see probe.h). Bandwidth kernels keep several independent
 * accumulators of 256-bit loads so the core is never the limit; the FMA
 * kernel keeps ten independent chains (latency 4 x 2 ports + margin). Byte
 * counts follow STREAM: copy moves 2 arrays, triad 3 (write-allocate
 * traffic not counted). */
#include "kernels/cpu_probe.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu/simd.h"
#include "util/clock.h"

#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>


/* ---- kernels -------------------------------------------------------- */

__attribute__((target("avx2"))) static uint64_t read_avx2(const uint64_t *p, int64_t n)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_xor_si256(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256((const __m256i *)(p + i + 4)));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256((const __m256i *)(p + i + 8)));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256((const __m256i *)(p + i + 12)));
    }
    __m256i a = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, a);
    uint64_t r = out[0] ^ out[1] ^ out[2] ^ out[3];
    for (; i < n; i++)
        r ^= p[i];
    return r;
}

static uint64_t read_scalar(const uint64_t *p, int64_t n)
{
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        a0 ^= p[i];
        a1 ^= p[i + 1];
        a2 ^= p[i + 2];
        a3 ^= p[i + 3];
    }
    for (; i < n; i++)
        a0 ^= p[i];
    return a0 ^ a1 ^ a2 ^ a3;
}

static void triad(double *a, const double *b, const double *c, double s, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        a[i] = b[i] + s * c[i];
}

/* Ten independent chains, each its own variable: with an array GCC kept
 * the chains in memory at -O2, so the loop measured store-to-load latency
 * (about a third of the FMA rate) instead of the FMA units. */
#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9)

/* FLOPs done: iters * 10 chains * 8 lanes * 2. */
__attribute__((target("avx2,fma"))) static float fma_avx2(int64_t iters)
{
    __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(1e-3f);
#define INIT(k) __m256 c##k = _mm256_set1_ps((float)k);
#define STEP(k) c##k = _mm256_fmadd_ps(c##k, x, y);
    CHAINS(INIT)
    for (int64_t i = 0; i < iters; i++) {
        CHAINS(STEP)
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(c8, c9));
#undef INIT
#undef STEP
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}

/* The integer dot of the q8 kernels (act_q8.h): per 32 byte pairs one
 * maddubs (u8 x s8 -> pairs summed to i16), one madd (-> i32) and an add.
 * Ops done: iters * 10 chains * 32 multiply-adds * 2. The empty asm makes
 * the weights opaque, so the compiler cannot hoist the products. */
__attribute__((target("avx2"))) static float int8_dot_avx2(int64_t iters)
{
    __m256i w = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
#define INIT(k) __m256i x##k = _mm256_set1_epi8((char)(k - 5)), a##k = _mm256_setzero_si256();
#define STEP(k) a##k = _mm256_add_epi32(a##k, _mm256_madd_epi16(_mm256_maddubs_epi16(w, x##k), ones));
    CHAINS(INIT)
    for (int64_t i = 0; i < iters; i++) {
        __asm__ volatile("" : "+x"(w));
        CHAINS(STEP)
    }
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)),
                                 _mm256_add_epi32(_mm256_add_epi32(a4, a5), _mm256_add_epi32(a6, a7)));
    s = _mm256_add_epi32(s, _mm256_add_epi32(a8, a9));
#undef INIT
#undef STEP
    return (float)_mm256_extract_epi32(s, 0);
}

static float fma_scalar(int64_t iters)
{
    float c[10];
    for (int k = 0; k < 10; k++)
        c[k] = (float)k;
    for (int64_t i = 0; i < iters; i++)
        for (int k = 0; k < 10; k++)
            c[k] = c[k] * 0.999f + 1e-3f;
    float s = 0;
    for (int k = 0; k < 10; k++)
        s += c[k];
    return s;
}

/* ---- parallel drivers ------------------------------------------------- */

typedef enum { JOB_READ, JOB_COPY, JOB_TRIAD, JOB_FMA, JOB_INT8 } job_kind;

typedef struct {
    job_kind kind;
    int avx2;
    uint64_t *src;
    uint64_t *dst;
    uint64_t *third;
    int64_t words;    /* per thread for caches; total for memory */
    int per_thread;   /* 1: every thread works on its own slice of `words` */
    int passes;       /* repeat the slice (cache probes) */
    int64_t iters;    /* FMA */
    volatile uint64_t sink[64];
} job;

static void run_job(void *arg, int task, int n_tasks)
{
    job *j = arg;
    int64_t begin, end;
    if (j->per_thread) {
        begin = (int64_t)task * j->words;
        end = begin + j->words;
    } else { /* 4-word (32-byte) aligned slices of one buffer */
        begin = j->words / 4 * task / n_tasks * 4;
        end = j->words / 4 * (task + 1) / n_tasks * 4;
    }
    uint64_t acc = 0;
    switch (j->kind) {
    case JOB_READ:
        for (int p = 0; p < j->passes; p++)
            acc ^= j->avx2 ? read_avx2(j->src + begin, end - begin) : read_scalar(j->src + begin, end - begin);
        break;
    case JOB_COPY:
        memcpy(j->dst + begin, j->src + begin, (size_t)(end - begin) * 8);
        break;
    case JOB_TRIAD:
        triad((double *)j->dst + begin, (const double *)j->src + begin, (const double *)j->third + begin, 3.0,
              end - begin);
        break;
    case JOB_FMA:
        acc = (uint64_t)(j->avx2 ? fma_avx2(j->iters) : fma_scalar(j->iters));
        break;
    case JOB_INT8:
        acc = (uint64_t)int8_dot_avx2(j->iters);
        break;
    }
    j->sink[task % 64] = acc;
}


/* Times `reps` runs of the job on n_tasks tasks after one warm-up; the
 * figure is amount / seconds. */
static void measure(sol_pool *pool, job *j, int n_tasks, double amount, const sol_probe_config *cfg,
                    sol_probe_result *r)
{
    double rate[64];
    int reps = cfg->reps < 64 ? cfg->reps : 64;
    sol_pool_run(pool, run_job, j, n_tasks); /* warm-up: page faults, clocks */
    for (int i = 0; i < reps; i++) {
        double t0 = sol_now_s();
        sol_pool_run(pool, run_job, j, n_tasks);
        rate[i] = amount / (sol_now_s() - t0);
    }
    r->median = sol_median(rate, reps, &r->min, &r->max);
    r->reps = reps;
}

static sol_probe_result *next_result(sol_probe_result *out, int cap, int *n, const char *kind, const char *unit)
{
    if (*n >= cap)
        return NULL;
    sol_probe_result *r = &out[(*n)++];
    memset(r, 0, sizeof *r);
    snprintf(r->kind, sizeof r->kind, "%s", kind);
    snprintf(r->unit, sizeof r->unit, "%s", unit);
    return r;
}

static int probe_on(sol_pool *pool, const sol_probe_config *cfg, sol_probe_result *out, int cap, int *n, sol_err *err)
{
    int threads = sol_pool_threads(pool), avx2 = sol_cpu_kernels_get("avx2") != NULL, /* the CPU has AVX2+FMA */ steps = avx2 ? 10 : 9, step = 0;
    int64_t words = cfg->buffer_bytes / 8 / 64 * 64;
    *n = 0;
    /* 2 MiB-aligned with transparent huge pages where the kernel allows:
     * hardware prefetchers stop at 4 KiB page boundaries. */
    size_t bytes_each = ((size_t)words * 8 + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
    uint64_t *a = aligned_alloc(2u << 20, bytes_each), *b = aligned_alloc(2u << 20, bytes_each);
    uint64_t *c = aligned_alloc(2u << 20, bytes_each);
    if (a && b && c) {
        madvise(a, bytes_each, MADV_HUGEPAGE);
        madvise(b, bytes_each, MADV_HUGEPAGE);
        madvise(c, bytes_each, MADV_HUGEPAGE);
    }
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return sol_fail(err, SOL_ERR_RUNTIME, "cannot allocate 3 x %lld MiB for the bandwidth probe",
                        (long long)(cfg->buffer_bytes >> 20));
    }
    for (int64_t i = 0; i < words; i++)
        a[i] = b[i] = c[i] = (uint64_t)i * 0x9e3779b97f4a7c15ULL;
    double bytes = (double)words * 8;
    sol_probe_result *r;
#define PROGRESS(what) \
    if (cfg->progress) \
    cfg->progress(cfg->user, what, ++step, steps)

    PROGRESS("memory read");
    job j = {.kind = JOB_READ, .avx2 = avx2, .src = a, .words = words, .passes = 1};
    if ((r = next_result(out, cap, n, "mem_read_bw", "B/s"))) {
        measure(pool, &j, threads, bytes, cfg, r);
        snprintf(r->method, sizeof r->method, "%s read of %lld MiB, %d threads", avx2 ? "avx2" : "scalar",
                 (long long)(cfg->buffer_bytes >> 20), threads);
    }
    PROGRESS("memory copy");
    j = (job){.kind = JOB_COPY, .src = a, .dst = b, .words = words};
    if ((r = next_result(out, cap, n, "mem_copy_bw", "B/s"))) {
        measure(pool, &j, threads, 2 * bytes, cfg, r);
        snprintf(r->method, sizeof r->method, "memcpy %lld MiB, %d threads, 2 arrays counted",
                 (long long)(cfg->buffer_bytes >> 20), threads);
    }
    PROGRESS("memory triad");
    j = (job){.kind = JOB_TRIAD, .src = a, .dst = b, .third = c, .words = words};
    if ((r = next_result(out, cap, n, "mem_triad_bw", "B/s"))) {
        measure(pool, &j, threads, 3 * bytes, cfg, r);
        snprintf(r->method, sizeof r->method, "a=b+s*c on f64, %lld MiB each, %d threads, 3 arrays counted",
                 (long long)(cfg->buffer_bytes >> 20), threads);
    }
    /* Caches: each thread reads its own half-cache-sized slice many times. */
    static const char *const level_kind[3] = {"l1_read_bw", "l2_read_bw", "l3_read_bw"};
    for (int level = 0; level < 3; level++) {
        PROGRESS(level_kind[level]);
        int64_t slice = cfg->cache_bytes[level] / 2 / 8 / 64 * 64;
        if (level == 2)
            slice /= threads > 0 ? threads : 1; /* L3 is shared */
        if (slice <= 0 || slice * threads > words)
            continue;
        int passes = (int)(bytes / 8 / (double)(slice * threads)) + 1;
        j = (job){.kind = JOB_READ, .avx2 = avx2, .src = a, .words = slice, .per_thread = 1, .passes = passes};
        if ((r = next_result(out, cap, n, level_kind[level], "B/s"))) {
            measure(pool, &j, threads, (double)slice * 8 * threads * passes, cfg, r);
            snprintf(r->method, sizeof r->method, "%s read of %lld KiB per thread x %d passes, %d threads",
                     avx2 ? "avx2" : "scalar", (long long)(slice * 8 >> 10), passes, threads);
        }
    }
    int64_t iters = 20 * 1000 * 1000;
    double flops = (double)iters * 10 * (avx2 ? 8 : 1) * 2;
    PROGRESS("fp32 FMA, one core");
    j = (job){.kind = JOB_FMA, .avx2 = avx2, .iters = iters};
    if ((r = next_result(out, cap, n, "fp32_peak_1core", "FLOP/s"))) {
        measure(pool, &j, 1, flops, cfg, r);
        snprintf(r->method, sizeof r->method, "%s, 10 independent chains, 1 thread", avx2 ? "avx2 fma" : "scalar");
    }
    PROGRESS("fp32 FMA, all cores");
    if ((r = next_result(out, cap, n, "fp32_peak", "FLOP/s"))) {
        measure(pool, &j, threads, flops * threads, cfg, r);
        snprintf(r->method, sizeof r->method, "%s, 10 independent chains, %d threads", avx2 ? "avx2 fma" : "scalar",
                 threads);
    }
    if (avx2) { /* the integer dots exist only as AVX2 kernels worth a ceiling */
        PROGRESS("int8 dot, all cores");
        j = (job){.kind = JOB_INT8, .iters = iters};
        if ((r = next_result(out, cap, n, "int8_peak", "OP/s"))) {
            measure(pool, &j, threads, (double)iters * 10 * 32 * 2 * threads, cfg, r);
            snprintf(r->method, sizeof r->method, "avx2 maddubs+madd, 10 independent chains, %d threads", threads);
        }
    }
    PROGRESS("done");
#undef PROGRESS
    free(a);
    free(b);
    free(c);
    return 0;
}

/* ---- the read check (probe.h) ----------------------------------------- */

struct sol_read_check {
    sol_pool *pool;
    uint64_t *buf;
    size_t bytes;
    job j;
};

int sol_read_check_open(int threads, int64_t bytes, sol_read_check **out, sol_err *err)
{
    sol_read_check *c = calloc(1, sizeof *c);
    size_t aligned = ((size_t)bytes + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
    if (c) {
        c->pool = sol_pool_new(threads);
        c->buf = aligned_alloc(2u << 20, aligned);
    }
    if (!c || !c->pool || !c->buf) {
        sol_read_check_close(c);
        return sol_fail(err, SOL_ERR_RUNTIME, "cannot set up a %lld MiB read check", (long long)(bytes >> 20));
    }
    madvise(c->buf, aligned, MADV_HUGEPAGE);
    c->bytes = aligned;
    int64_t words = (int64_t)(aligned / 8);
    for (int64_t i = 0; i < words; i++)
        c->buf[i] = (uint64_t)i * 0x9e3779b97f4a7c15ULL;
    c->j = (job){.kind = JOB_READ, .avx2 = sol_cpu_kernels_get("avx2") != NULL, .src = c->buf, .words = words,
                 .passes = 1};
    sol_pool_run(c->pool, run_job, &c->j, sol_pool_threads(c->pool)); /* warm-up */
    *out = c;
    return 0;
}

double sol_read_check_run(sol_read_check *c)
{
    double t0 = sol_now_s();
    sol_pool_run(c->pool, run_job, &c->j, sol_pool_threads(c->pool));
    return (double)c->bytes / (sol_now_s() - t0);
}

void sol_read_check_close(sol_read_check *c)
{
    if (!c)
        return;
    sol_pool_free(c->pool);
    free(c->buf);
    free(c);
}

int sol_probe_cpu(const sol_probe_config *cfg, sol_probe_result *out, int cap, int *n, sol_err *err)
{
    sol_pool *pool = sol_pool_new(cfg->threads);
    if (!pool)
        return sol_fail(err, SOL_ERR_RUNTIME, "cannot start %d threads", cfg->threads);
    int rc = probe_on(pool, cfg, out, cap, n, err);
    sol_pool_free(pool);
    return rc;
}
