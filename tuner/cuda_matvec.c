/* The CUDA matvec tunable (see cuda_matvec.h). */
#include "tuner/cuda_matvec.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

int sol_cuda_mv_type_ok(sol_dtype t)
{
    switch (t) {
    case SOL_DT_F32:
    case SOL_DT_F16:
    case SOL_DT_BF16:
    case SOL_DT_Q8_0:
    case SOL_DT_Q4_0:
    case SOL_DT_Q4_1:
    case SOL_DT_Q4_K:
    case SOL_DT_Q6_K: return 1;
    default: return 0;
    }
}

size_t sol_cuda_mv_row_bytes(sol_dtype t, int64_t cols)
{
    if (!sol_cuda_mv_type_ok(t) || cols < 1 || cols % sol_dtype_block_elems(t))
        return 0;
    return (size_t)(cols / sol_dtype_block_elems(t)) * (size_t)sol_dtype_block_bytes(t);
}

/* A decimal number of at most 7 digits at *p (advanced past it); -1 when none. */
static long long number_at(const char **p)
{
    const char *s = *p;
    long long v = 0;
    int digits = 0;
    while (isdigit((unsigned char)*s) && digits < 8) {
        v = v * 10 + (*s++ - '0');
        digits++;
    }
    if (digits == 0 || digits > 7)
        return -1;
    *p = s;
    return v;
}

int sol_cuda_mv_problem_parse(const char *text, sol_cuda_mv_problem *pb, int *m_given, sol_err *err)
{
    static const char usage[] = "--shape: expected matvec:TYPE:NxK or matvec:TYPE:NxKxM (M 1..8) for the CUDA "
                                "matvec, got \"%s\"";
    memset(pb, 0, sizeof *pb);
    *m_given = 0;
    if (strncmp(text, "matvec:", 7) != 0)
        return sol_fail(err, SOL_ERR_USAGE, usage, text);
    const char *type = text + 7, *colon = strchr(type, ':');
    char name[16];
    if (!colon || colon == type || (size_t)(colon - type) >= sizeof name)
        return sol_fail(err, SOL_ERR_USAGE, usage, text);
    memcpy(name, type, (size_t)(colon - type));
    name[colon - type] = 0;
    const char *p = colon + 1;
    long long n = number_at(&p), k = -1, m = 1;
    if (n >= 0 && *p == 'x') {
        p++;
        k = number_at(&p);
    }
    if (k >= 0 && *p == 'x') {
        p++;
        m = number_at(&p);
        *m_given = 1;
    }
    if (n < 0 || k < 0 || m < 0 || *p)
        return sol_fail(err, SOL_ERR_USAGE, usage, text);
    if (sol_dtype_parse(name, &pb->type) || !sol_cuda_mv_type_ok(pb->type))
        return sol_fail(err, SOL_ERR_USAGE,
                        "--shape: \"%s\" is not a weight type the CUDA backend runs (f32 f16 bf16 q8_0 q4_0 q4_1 "
                        "q4_k q6_k)", name);
    int block = sol_dtype_block_elems(pb->type);
    if (n < 1 || k < 1 || n > 1 << 20 || k > 1 << 20 || m < 1 || m > SOL_CUDA_MV_MAX_INPUTS || k % block || k % 8)
        return sol_fail(err, SOL_ERR_USAGE,
                        "--shape: %lldx%lldx%lld is out of range (N, K 1..1048576, M 1..8) or K is not a multiple of "
                        "%d (%s's block, and 8)", n, k, m, block > 8 ? block : 8, name);
    pb->rows = n;
    pb->cols = k;
    pb->m = (int)m;
    return 0;
}

void sol_cuda_mv_problem_format(const sol_cuda_mv_problem *pb, char *shape, int cap)
{
    snprintf(shape, (size_t)cap, "%lldx%lldx%d", (long long)pb->rows, (long long)pb->cols, pb->m);
}

int sol_cuda_mv_batches_parse(const char *text, unsigned *mask, sol_err *err)
{
    *mask = 0;
    const char *p = text;
    for (int item = 1;; item++) {
        while (*p == ' ')
            p++;
        long long m = number_at(&p);
        while (*p == ' ')
            p++;
        if (m < 1 || m > SOL_CUDA_MV_MAX_INPUTS || (*p && *p != ','))
            return sol_fail(err, SOL_ERR_USAGE, "--batches: expected inputs 1..8 separated by commas (e.g. 1,8); "
                            "item %d of \"%s\" is not", item, text);
        *mask |= 1u << (m - 1);
        if (!*p)
            return 0;
        p++; /* the comma */
    }
}

enum { P_ROWS, P_THREADS, P_VEC, P_UNROLL, P_KSPLIT, P_INPUTS };

static void config_of(const int *values, sol_cuda_mv_config *c)
{
    c->rows_per_block = values[P_ROWS];
    c->threads_per_row = values[P_THREADS];
    c->vec_bytes = values[P_VEC];
    c->unroll = values[P_UNROLL];
    c->k_split = values[P_KSPLIT];
    c->max_inputs = values[P_INPUTS];
}

/* The plugin's rules for the shape, and one pass for the m inputs. */
static int mv_valid(const int *values, void *user)
{
    const sol_cuda_mv_space_ctx *ctx = user;
    sol_cuda_mv_config c;
    config_of(values, &c);
    if (c.max_inputs < ctx->pb.m || !ctx->row_bytes)
        return 0;
    return ctx->oracle.check(ctx->pb.type, ctx->pb.rows, ctx->pb.cols, ctx->row_bytes, &c, NULL, 0) == 0;
}

void sol_cuda_mv_space(const sol_cuda_mv_problem *pb, const sol_cuda_mv_oracle *oracle, sol_cuda_mv_space_ctx *ctx,
                       sol_tune_space *s)
{
    static const int rows[] = {1, 2, 4, 8, 16, 32}, threads[] = {1, 2, 4, 8, 16, 32, 64, 128, 256},
                     vec[] = {2, 4, 8, 16}, unroll[] = {1, 2, 4, 8}, ksplit[] = {1, 2, 4, 8};
    ctx->pb = *pb;
    ctx->row_bytes = sol_cuda_mv_row_bytes(pb->type, pb->cols);
    ctx->oracle = *oracle;
    sol_cuda_mv_config d;
    oracle->defaults(pb->type, pb->m == 1 ? 1 : SOL_CUDA_MV_MAX_INPUTS, &d);
    int inputs[2] = {pb->m, SOL_CUDA_MV_MAX_INPUTS};
    memset(s, 0, sizeof *s);
    s->kernel = pb->rmsnorm ? "cuda.matvec_rmsnorm" : "cuda.matvec";
    sol_space_add(s, "rows_per_block", rows, 6, d.rows_per_block);
    sol_space_add(s, "threads_per_row", threads, 9, d.threads_per_row);
    sol_space_add(s, "vec_bytes", vec, 4, d.vec_bytes);
    sol_space_add(s, "unroll", unroll, 4, d.unroll);
    /* the fused kernel has no K split: its one value, still named, so that
     * both kernels' parameters read the same */
    sol_space_add(s, "k_split", ksplit, pb->rmsnorm ? 1 : 4, d.k_split);
    /* one input: the built-in's 1 only (8 would only cost registers) */
    sol_space_add(s, "max_inputs", inputs, pb->m == 1 || pb->m == SOL_CUDA_MV_MAX_INPUTS ? 1 : 2, d.max_inputs);
    s->valid = mv_valid;
    s->user = ctx;
}

void sol_cuda_mv_config_from(const sol_tune_space *s, const sol_tune_config *c, sol_cuda_mv_config *out)
{
    int values[SOL_TUNE_MAX_PARAMS];
    sol_space_values(s, c, values);
    config_of(values, out);
}
