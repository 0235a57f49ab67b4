/* MLA's absorbed projections (DeepSeek-V2 §2.1.2): per head, a small matrix
 * times that head's vector, for every row of the step. The matrices are
 * the engine's (W_UK folded into the queries, W_UV applied to the attended
 * latent); one task per (row, head). */
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/quant.h"

typedef struct {
    const sol_weight_view *w;
    int n_heads;
    const float *x;
    int64_t x_stride;
    float *y;
    int64_t y_stride;
} head_matmul_job;

static void head_matmul_task(void *arg, int task, int n_tasks)
{
    (void)n_tasks;
    const head_matmul_job *job = arg;
    const sol_weight_view *w = job->w;
    int64_t out = w->rows / job->n_heads, h = task % job->n_heads;
    const float *x = job->x + (size_t)task * job->x_stride;
    float *y = job->y + (size_t)task * job->y_stride;
    const char *rows = (const char *)w->data + (size_t)(h * out) * w->row_bytes;
    for (int64_t j = 0; j < out; j++)
        y[j] = sol_dot(w->type, rows + (size_t)j * w->row_bytes, x, w->cols);
}

void sol_cpu_head_matmul(sol_backend *b, const sol_weight_view *w, int n_heads, const float *x, int64_t x_stride,
                         float *y, int64_t y_stride)
{
    cpu_ctx *ctx = b->ctx;
    forget_quantized(b);
    head_matmul_job job = {w, n_heads, x, x_stride, y, y_stride};
    sol_pool_run(ctx->pool, head_matmul_task, &job, ctx->rows * n_heads);
}
