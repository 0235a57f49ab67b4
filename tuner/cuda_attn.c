/* The CUDA decode attention tunable (see cuda_attn.h). */
#include "tuner/cuda_attn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The numbers of "AxBxC..." at p: how many (at most cap), -1 when the text
 * is not such a list of decimal numbers of at most 7 digits. */
static int numbers_of(const char *p, long long *out, int cap)
{
    int n = 0;
    while (n < cap) {
        char *end;
        if (*p < '0' || *p > '9')
            return -1;
        long long v = strtoll(p, &end, 10);
        if (end - p > 7)
            return -1;
        out[n++] = v;
        if (!*end)
            return n;
        if (*end != 'x')
            return -1;
        p = end + 1;
    }
    return -1;
}

int sol_cuda_attn_problem_parse(const char *text, sol_cuda_attn_problem *pb, int *rows_given, sol_err *err)
{
    static const char usage[] = "--shape: expected attention:KV:HxGxDxC or attention:KV:HxGxDxCxR (H query heads, G "
                                "KV heads, head dim D, C cache slots, R rows 1..8; KV f16 or f32), got \"%s\"";
    memset(pb, 0, sizeof *pb);
    *rows_given = 0;
    if (strncmp(text, "attention:", 10) != 0)
        return sol_fail(err, SOL_ERR_USAGE, usage, text);
    const char *kv = text + 10, *colon = strchr(kv, ':');
    if (!colon)
        return sol_fail(err, SOL_ERR_USAGE, usage, text);
    if ((size_t)(colon - kv) == 3 && !strncmp(kv, "f16", 3))
        pb->kv_type = SOL_DT_F16;
    else if ((size_t)(colon - kv) == 3 && !strncmp(kv, "f32", 3))
        pb->kv_type = SOL_DT_F32;
    else
        return sol_fail(err, SOL_ERR_USAGE, "--shape: the CUDA attention's cache is f16 or f32, not \"%.*s\"",
                        (int)(colon - kv), kv);
    long long v[5];
    int n = numbers_of(colon + 1, v, 5);
    if (n != 4 && n != 5)
        return sol_fail(err, SOL_ERR_USAGE, usage, text);
    long long rows = n == 5 ? v[4] : 1;
    *rows_given = n == 5;
    if (v[0] < 1 || v[0] > 1024 || v[1] < 1 || v[0] % v[1] || v[2] < 1 || v[2] > 256 || v[3] < 32 ||
        v[3] > 1 << 20 || rows < 1 || rows > 8)
        return sol_fail(err, SOL_ERR_USAGE,
                        "--shape: %lldx%lldx%lldx%lldx%lld is out of range (H 1..1024 a multiple of G, D 1..256, C "
                        "32..1048576, R 1..8)", v[0], v[1], v[2], v[3], rows);
    pb->n_heads = (int)v[0];
    pb->n_kv_heads = (int)v[1];
    pb->head_dim = (int)v[2];
    pb->capacity = v[3];
    pb->rows = (int)rows;
    return 0;
}

void sol_cuda_attn_problem_format(const sol_cuda_attn_problem *pb, char *shape, int cap)
{
    snprintf(shape, (size_t)cap, "%dx%dx%dx%lldx%d", pb->n_heads, pb->n_kv_heads, pb->head_dim,
             (long long)pb->capacity, pb->rows);
}

void sol_cuda_attn_request_of(const sol_cuda_attn_problem *pb, const sol_cuda_attn_config *params,
                              sol_cuda_attn_request *req)
{
    memset(req, 0, sizeof *req);
    req->n_heads = pb->n_heads;
    req->n_kv_heads = pb->n_kv_heads;
    req->head_dim = pb->head_dim;
    req->kv_type = pb->kv_type;
    req->capacity = pb->capacity;
    req->pos = pb->capacity - 1;
    req->rows = pb->rows;
    req->params = *params;
}

double sol_cuda_attn_bytes(const sol_cuda_attn_problem *pb)
{
    double elem = pb->kv_type == SOL_DT_F16 ? 2 : 4, keys = (double)pb->capacity;
    double kv = pb->rows * keys * pb->n_kv_heads * pb->head_dim * 2 * elem;
    return kv + 2.0 * 4 * pb->rows * pb->n_heads * pb->head_dim; /* + q and the output, f32 */
}

enum { P_DPL, P_HEADS, P_WARPS, P_SLOTS };

static void config_of(const int *values, sol_cuda_attn_config *c)
{
    c->dims_per_lane = values[P_DPL];
    c->heads_per_block = values[P_HEADS];
    c->warps = values[P_WARPS];
    c->slots_per_split = values[P_SLOTS];
}

static int attn_valid(const int *values, void *user)
{
    const sol_cuda_attn_space_ctx *ctx = user;
    sol_cuda_attn_config c;
    sol_cuda_attn_request req;
    config_of(values, &c);
    sol_cuda_attn_request_of(&ctx->pb, &c, &req);
    return ctx->oracle.check(&req, NULL, 0) == 0;
}

void sol_cuda_attn_space(const sol_cuda_attn_problem *pb, const sol_cuda_attn_oracle *oracle,
                         sol_cuda_attn_space_ctx *ctx, sol_tune_space *s)
{
    static const int heads[] = {1, 2, 4, 8}, warps[] = {2, 4, 8, 16}, slots[] = {64, 128, 256, 512, 1024, 2048};
    ctx->pb = *pb;
    ctx->oracle = *oracle;
    sol_cuda_attn_config d;
    oracle->defaults(pb->head_dim, pb->n_heads / pb->n_kv_heads, &d);
    memset(s, 0, sizeof *s);
    s->kernel = "cuda.attention";
    sol_space_add(s, "dims_per_lane", &d.dims_per_lane, 1, d.dims_per_lane);
    sol_space_add(s, "heads_per_block", heads, 4, d.heads_per_block);
    sol_space_add(s, "warps", warps, 4, d.warps);
    sol_space_add(s, "slots_per_split", slots, 6, d.slots_per_split);
    s->valid = attn_valid;
    s->user = ctx;
}

void sol_cuda_attn_config_from(const sol_tune_space *s, const sol_tune_config *c, sol_cuda_attn_config *out)
{
    int values[SOL_TUNE_MAX_PARAMS];
    sol_space_values(s, c, values);
    config_of(values, out);
}
