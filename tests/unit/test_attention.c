/* The CPU backend's attention: the tiled prefill path (many query rows,
 * blocks of keys through the dispatched block kernels) against a float64
 * softmax over the same cache, with GQA, sliding windows, f32 and f16
 * caches, row counts that are not multiples of the tile, and keys that span
 * several blocks; the one-row decode paths (per head for short caches, key
 * ranges split across tasks and merged for long ones) against the same
 * reference; Gemma-2's soft-capped scores in each of those paths. */
#define TEST_RNG_SEED 0x3707344a4093822cull
#include "tests/unit/kernel_test.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/cpu/half.h"

static float uniform(void) { return (float)(2 * rng_uniform() - 1); }

typedef struct {
    int n_heads, n_kv, dh;
    int64_t pos0, window;
    int m;
    sol_dtype type;
    float softcap; /* 0: none */
} shape;

/* float64 softmax(q.k / sqrt(dh)) . v over the visible keys of each row,
 * each score s soft-capped (cap * tanh(s / cap)) when softcap > 0. */
static void reference(const shape *s, const float *q, const float *k, const float *v, double *out)
{
    int group = s->n_heads / s->n_kv;
    int64_t width = (int64_t)s->n_kv * s->dh;
    for (int r = 0; r < s->m; r++)
        for (int h = 0; h < s->n_heads; h++) {
            int64_t pos = s->pos0 + r, lo = s->window > 0 && pos + 1 > s->window ? pos + 1 - s->window : 0;
            const float *qh = q + ((size_t)r * s->n_heads + h) * s->dh;
            int64_t off = (int64_t)(h / group) * s->dh;
            double max = -INFINITY, sum = 0;
            double *o = out + ((size_t)r * s->n_heads + h) * s->dh;
            double *score = malloc(sizeof *score * (size_t)(pos + 1));
            for (int64_t t = lo; t <= pos; t++) {
                double d = 0;
                for (int i = 0; i < s->dh; i++)
                    d += (double)qh[i] * k[t * width + off + i];
                score[t] = d / sqrt((double)s->dh);
                if (s->softcap > 0)
                    score[t] = s->softcap * tanh(score[t] / s->softcap);
                max = fmax(max, score[t]);
            }
            memset(o, 0, sizeof *o * (size_t)s->dh);
            for (int64_t t = lo; t <= pos; t++) {
                double w = exp(score[t] - max);
                sum += w;
                for (int i = 0; i < s->dh; i++)
                    o[i] += w * v[t * width + off + i];
            }
            for (int i = 0; i < s->dh; i++)
                o[i] /= sum;
            free(score);
        }
}

static void check(sol_backend *be, const shape *s)
{
    int64_t width = (int64_t)s->n_kv * s->dh, slots = s->pos0 + s->m;
    size_t elem = s->type == SOL_DT_F16 ? 2 : 4;
    float *k = malloc(sizeof *k * (size_t)(slots * width)), *v = malloc(sizeof *v * (size_t)(slots * width));
    float *q = malloc(sizeof *q * (size_t)s->m * s->n_heads * s->dh);
    float *out = malloc(sizeof *out * (size_t)s->m * s->n_heads * s->dh);
    double *want = malloc(sizeof *want * (size_t)s->m * s->n_heads * s->dh);
    void *ck = malloc(elem * (size_t)(slots * width)), *cv = malloc(elem * (size_t)(slots * width));
    for (int64_t i = 0; i < slots * width; i++) {
        k[i] = 2 * uniform();
        v[i] = uniform();
        if (s->type == SOL_DT_F16) { /* the reference sees what the cache holds */
            ((uint16_t *)ck)[i] = sol_f32_to_f16(k[i]);
            ((uint16_t *)cv)[i] = sol_f32_to_f16(v[i]);
            k[i] = sol_f16_to_f32(((uint16_t *)ck)[i]);
            v[i] = sol_f16_to_f32(((uint16_t *)cv)[i]);
        } else {
            ((float *)ck)[i] = k[i];
            ((float *)cv)[i] = v[i];
        }
    }
    for (int64_t i = 0; i < (int64_t)s->m * s->n_heads * s->dh; i++)
        q[i] = 2 * uniform();
    sol_kv_cache_layer cache = {s->type, ck, cv, slots, width};
    reference(s, q, k, v, want);
    /* all rows at once (prefill), then row by row (decode) */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) {
            begin_step(be, s->m, s->pos0);
            be->attention(be, q, &cache, s->n_heads, s->n_kv, s->dh, s->window, s->softcap, out);
        } else {
            for (int r = 0; r < s->m; r++) {
                begin_step(be, 1, s->pos0 + r);
                be->attention(be, q + (size_t)r * s->n_heads * s->dh, &cache, s->n_heads, s->n_kv, s->dh, s->window,
                              s->softcap, out + (size_t)r * s->n_heads * s->dh);
            }
        }
        for (int64_t i = 0; i < (int64_t)s->m * s->n_heads * s->dh; i++)
            if (!(fabs(out[i] - want[i]) <= 2e-5 * (1 + fabs(want[i]))))
                fail_msg("%s m=%d pos0=%lld window=%lld heads %d/%d dh %d (%s) softcap %g: element %lld is %.7g, "
                         "float64 %.7g",
                         pass ? "decode" : "prefill", s->m, (long long)s->pos0, (long long)s->window, s->n_heads,
                         s->n_kv, s->dh, sol_dtype_name(s->type), s->softcap, (long long)i, out[i], want[i]);
    }
    free(k);
    free(v);
    free(q);
    free(out);
    free(want);
    free(ck);
    free(cv);
}

static void test_attention_paths(void **state)
{
    (void)state;
    sol_backend *be = cpu_backend(2);
    const shape shapes[] = {
        {9, 3, 64, 0, 0, 27, SOL_DT_F32},    /* SmolLM2's heads, rows not a multiple of the tile */
        {9, 3, 64, 0, 0, 27, SOL_DT_F16},
        {4, 1, 32, 70, 0, 13, SOL_DT_F16},   /* MQA, a cache already holding 70 keys: blocks of 64 */
        {8, 2, 24, 5, 16, 40, SOL_DT_F32},   /* sliding window of 16; dh not a multiple of 8 */
        {2, 2, 128, 130, 50, 9, SOL_DT_F16}, /* MHA, window inside a long cache */
        {6, 2, 8, 0, 0, 1, SOL_DT_F32},      /* one row */
        /* decode over long caches: key ranges split across tasks, then merged */
        {9, 3, 64, 300, 0, 3, SOL_DT_F16},
        {4, 2, 64, 400, 200, 2, SOL_DT_F32}, /* a window of 200 inside 400 keys */
        {8, 1, 64, 1000, 0, 1, SOL_DT_F16},  /* MQA: one KV head, many ranges */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check(be, &shapes[i]);
    be->destroy(be);
}

/* Soft-capped scores (Gemma-2's 50, and caps of 1-2 where nearly every
 * score is bent) in the prefill tiles, the one-pass decode and the split
 * decode, against the capped float64 softmax. */
static void test_attention_softcap(void **state)
{
    (void)state;
    sol_backend *be = cpu_backend(2);
    const shape shapes[] = {
        {9, 3, 64, 0, 0, 27, SOL_DT_F32, 1.5f},    /* prefill tiles; decode per head below 16 keys */
        {8, 2, 24, 5, 16, 40, SOL_DT_F16, 1.0f},   /* a window; dh not a multiple of 8 */
        {9, 3, 64, 300, 0, 3, SOL_DT_F16, 2.0f},   /* decode split across key ranges */
        {4, 2, 64, 400, 200, 2, SOL_DT_F32, 50.0f},
        {6, 2, 8, 3, 0, 1, SOL_DT_F32, 1.0f},      /* one row, few keys: per head */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check(be, &shapes[i]);
    be->destroy(be);
}

/* The block kernels of every table agree with the reference on awkward
 * sizes (queries not a multiple of 4). */
static void test_block_kernels(void **state)
{
    (void)state;
    enum { NQ = 7, NK = 5, DH = 40, STRIDE = 9 };
    float q[NQ * DH], k[NK * DH], v[NK * DH], w[NQ * STRIDE];
    for (int i = 0; i < NQ * DH; i++)
        q[i] = uniform();
    for (int i = 0; i < NK * DH; i++) {
        k[i] = uniform();
        v[i] = uniform();
    }
    for (int i = 0; i < NQ * STRIDE; i++)
        w[i] = uniform();
    const char *isas[] = {"scalar", "avx2"};
    for (int t = 0; t < 2; t++) {
        const sol_cpu_kernels *kern = sol_cpu_kernels_get(isas[t]);
        if (!kern) {
            print_message("no %s kernels on this CPU: skipped\n", isas[t]);
            continue;
        }
        float s[NQ * STRIDE], acc[NQ * DH], want_acc[NQ * DH];
        kern->cross_dots(q, NQ, k, NK, DH, s, STRIDE);
        for (int i = 0; i < NQ * DH; i++)
            acc[i] = want_acc[i] = (float)i / 100;
        kern->attn_weighted_sum(w, STRIDE, NQ, v, NK, DH, acc);
        for (int i = 0; i < NQ; i++)
            for (int j = 0; j < NK; j++) {
                double d = 0;
                for (int e = 0; e < DH; e++)
                    d += (double)q[i * DH + e] * k[j * DH + e];
                assert_true(fabs(s[i * STRIDE + j] - d) <= 1e-5);
                for (int e = 0; e < DH; e++)
                    want_acc[i * DH + e] += w[i * STRIDE + j] * v[j * DH + e];
            }
        for (int i = 0; i < NQ * DH; i++)
            assert_true(fabs(acc[i] - want_acc[i]) <= 1e-5);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_paths),
        cmocka_unit_test(test_attention_softcap),
        cmocka_unit_test(test_block_kernels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
