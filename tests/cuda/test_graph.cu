// The decode-step graph's bookkeeping (kernels/cuda/launch.cuh, graph.cu),
// on the host without a GPU: which steps record, what a recorded launch's
// key holds, and that recording runs nothing.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include <cstring>

#include "kernels/cuda/cuda_backend.h"

// backend.cu's, which this test does not link: the first error only.
int sol_cuda_note(cuda_ctx *c, cudaError_t e, const char *call)
{
    if (e != cudaSuccess && !c->failed) {
        c->failed = 1;
        snprintf(c->error, sizeof c->error, "%s: %s%s%s", c->op ? c->op : "?", call ? call : "", call ? ": " : "",
                 cudaGetErrorName(e));
    }
    return c->failed;
}

__global__ void probe_kernel(sol_weight_view w, const float *x, int n, float *y)
{
    (void)w, (void)x, (void)n, (void)y;
}

__global__ void other_kernel(const float *x, int n, float *y) { (void)x, (void)n, (void)y; }

static void test_profiled_steps(void **state)
{
    (void)state;
    sol_cuda_graph g = {};
    g.enabled = 1;
    g.profile_every = 16;
    for (int64_t step = 0; step < 40; step++)
        assert_int_equal(sol_cuda_graph_step(g, step), step % 16 != 0);
    g.profile_every = 0; // never profiled: every decode step a graph
    for (int64_t step = 0; step < 40; step++)
        assert_true(sol_cuda_graph_step(g, step));
    g.enabled = 0; // --no-graph
    g.profile_every = 16;
    for (int64_t step = 0; step < 40; step++)
        assert_false(sol_cuda_graph_step(g, step));
}

// A view with its padding filled with `fill`, then the same fields.
static sol_weight_view view_with_padding(int fill, const void *data)
{
    sol_weight_view w;
    memset(&w, fill, sizeof w);
    w.type = SOL_DT_Q4_K;
    w.data = data;
    w.rows = 4096;
    w.cols = 11008;
    w.row_bytes = 11008 / 256 * 144;
    return w;
}

// The key of one recorded step: probe_kernel then other_kernel.
static sol_cuda_key record_step(const sol_weight_view &w, const float *x, float *y, unsigned grid)
{
    cuda_ctx *c = new cuda_ctx();
    c->graph.recording = 1;
    c->op = "attn.q";
    c->layer = 3;
    sol_cuda_launch(c, probe_kernel, grid, 128, 0, w, x, 7, y);
    c->op = "ffn.down";
    sol_cuda_launch(c, other_kernel, 1, 32, 0, x, 7, y);
    assert_int_equal(c->graph.work.size(), 2); // recorded, not run
    assert_string_equal(c->graph.work[0].op, "attn.q");
    assert_int_equal(c->graph.work[0].layer, 3);
    assert_string_equal(c->graph.work[1].op, "ffn.down");
    assert_false(c->failed);
    sol_cuda_key key = c->graph.key;
    delete c;
    return key;
}

static void test_equal_launches_equal_keys(void **state)
{
    (void)state;
    static float x[8], y[8], other[8];
    sol_cuda_key a = record_step(view_with_padding(0x00, x), x, y, 32);
    sol_cuda_key b = record_step(view_with_padding(0xff, x), x, y, 32); // padding differs: ignored
    assert_true(a == b);
    assert_true(a.size() > 2 * sizeof(void *));
    assert_false(a == record_step(view_with_padding(0, x), x, other, 32)); // an argument differs
    assert_false(a == record_step(view_with_padding(0, x), x, y, 33));     // the grid differs
    assert_false(a == record_step(view_with_padding(0, y), x, y, 32));     // the weights differ
}

// A step with nothing recorded replays nothing and captures nothing.
static void test_empty_step_flushes_nothing(void **state)
{
    (void)state;
    cuda_ctx *c = new cuda_ctx();
    c->graph.recording = 1;
    assert_int_equal(sol_cuda_flush(c), 0);
    assert_int_equal(c->graph.recording, 0);
    assert_int_equal(c->graph.captures, 0);
    assert_int_equal(c->graph.replays, 0);
    delete c;
}

// After an error nothing more is recorded (or run).
static void test_failed_records_nothing(void **state)
{
    (void)state;
    static float x[8], y[8];
    cuda_ctx *c = new cuda_ctx();
    c->graph.recording = 1;
    c->failed = 1;
    sol_cuda_launch(c, other_kernel, 1, 32, 0, x, 7, y);
    assert_int_equal(c->graph.work.size(), 0);
    assert_int_equal(sol_cuda_flush(c), 1);
    assert_int_equal(c->graph.work.size(), 0);
    assert_int_equal(c->graph.key.size(), 0);
    delete c;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profiled_steps),
        cmocka_unit_test(test_equal_launches_equal_keys),
        cmocka_unit_test(test_empty_step_flushes_nothing),
        cmocka_unit_test(test_failed_records_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
