/* The backend seam (kernels/backend.h, ABI 4): the CPU backend's memory,
 * weight placement, step state and timing entries; the test plugin's
 * poisoned memory really is out of the host's reach, a host pointer given
 * to an op is an error naming the op, the ABI 4 ops and a batched step
 * queued on the plugin give the CPU backend's bytes, and the loader
 * refuses a plugin of the previous interface. The engine suite on the
 * plugin is tests/backend/run.sh. */
#include "tests/unit/kernel_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernels/cpu.h"
#include "kernels/cuda/loader.h"
#include "kernels/formats.h"

static void test_cpu_memory_roundtrip(void **state)
{
    (void)state;
    sol_backend *be = cpu_backend(1);
    sol_err err = {0};
    float host[100], back[100];
    for (int i = 0; i < 100; i++)
        host[i] = (float)i * 0.5f;
    void *buf = NULL;
    assert_int_equal(be->alloc(be, sizeof host, &buf, &err), 0);
    assert_int_equal((uintptr_t)buf % 64, 0); /* the alignment the dots' float order assumes */
    assert_int_equal(be->upload(be, buf, host, sizeof host, &err), 0);
    assert_int_equal(be->download(be, back, buf, sizeof back, &err), 0);
    assert_memory_equal(host, back, sizeof host);
    be->free(be, buf);
    be->free(be, NULL);
    be->destroy(be);
}

/* Views sharing data share one copy; the copy holds the same bytes. With
 * mapped_weights the views stay where they were. */
static void test_cpu_load_weights(void **state)
{
    (void)state;
    uint8_t data[2][4 * 256]; /* 4 rows of 128 f16 */
    for (size_t i = 0; i < sizeof data; i++)
        ((uint8_t *)data)[i] = (uint8_t)(i * 7);
    sol_weight_view a = {SOL_DT_F16, data[0], 4, 128, 256}, tied = a, b = {SOL_DT_F16, data[1], 4, 128, 256};
    sol_weight_view *views[] = {&a, &tied, &b};
    for (int mapped = 0; mapped < 2; mapped++) {
        sol_backend *be = NULL;
        sol_err err = {0};
        sol_cpu_options opt = {.threads = 1, .mapped_weights = mapped};
        assert_int_equal(sol_cpu_backend_new(&opt, &be, &err), 0);
        a.data = tied.data = data[0];
        b.data = data[1];
        void *handle = NULL;
        assert_int_equal(be->load_weights(be, views, 3, &handle, &err), 0);
        assert_ptr_equal(a.data, tied.data);
        if (mapped) {
            assert_null(handle);
            assert_ptr_equal(a.data, data[0]);
        } else {
            assert_non_null(handle);
            assert_ptr_not_equal(a.data, data[0]);
            assert_ptr_not_equal(b.data, data[1]);
            assert_memory_equal(a.data, data[0], sizeof data[0]);
            assert_memory_equal(b.data, data[1], sizeof data[1]);
        }
        be->free(be, handle);
        be->destroy(be);
    }
}

/* One interval per mark, ending at the next mark or at sync; a new step
 * starts afresh. */
static void test_cpu_marks_and_sync(void **state)
{
    (void)state;
    sol_backend *be = cpu_backend(1);
    sol_err err = {0};
    double s[8];
    for (int step = 0; step < 2; step++) {
        begin_step(be, 1, step);
        for (int i = 0; i < 3 + step; i++) {
            be->mark(be, "op", i);
            usleep(1000);
        }
        assert_int_equal(be->sync(be, &err), 0);
        int n = be->op_seconds(be, s, 8);
        assert_int_equal(n, 3 + step);
        for (int i = 0; i < n; i++)
            assert_true(s[i] >= 0.9e-3 && s[i] < 1.0);
    }
    assert_int_equal(be->op_seconds(be, s, 2), 2); /* at most cap */
    be->destroy(be);
}

/* The greedy rule every backend's argmax follows (util/argmax.h). */
static void test_cpu_argmax_rule(void **state)
{
    (void)state;
    sol_backend *be = cpu_backend(1);
    const float nan = NAN, inf = INFINITY;
    struct {
        float x[5];
        int32_t want;
    } cases[] = {
        {{1, 3, 2, 3, 0}, 1},          /* ties: the first */
        {{nan, 1, nan, 2, 2}, 3},      /* NaNs never win */
        {{nan, nan, nan, nan, nan}, 0},
        {{-inf, -inf, -inf, -inf, -inf}, 0},
        {{-5, -4, -inf, -4.5f, -9}, 1},
        {{0, 0, 0, 0, inf}, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t got = -1;
        be->argmax(be, cases[i].x, 5, &got);
        assert_int_equal(got, cases[i].want);
    }
    be->destroy(be);
}

/* The CPU backend's batched-step bound, which the plugin passes on. */
static int cpu_backend_caps_max_seqs(void)
{
    sol_backend *be = cpu_backend(1);
    int n = be->caps.max_seqs;
    be->destroy(be);
    return n;
}

static const sol_cuda_plugin *poison_plugin(void)
{
    const char *path = getenv("SOL_TEST_POISON");
    if (!path)
        fail_msg("SOL_TEST_POISON is not set (make unit sets it to build/test/poison.so)");
    const sol_cuda_plugin *p = NULL;
    sol_err err = {0};
    if (sol_plugin_load(path, &p, &err))
        fail_msg("%s", err.msg);
    assert_non_null(p->backend_new);
    assert_null(p->device_count);
    return p;
}

/* A backend of the poison plugin, one thread. */
static sol_backend *poison_backend(void)
{
    const sol_cuda_plugin *p = poison_plugin();
    sol_plugin_backend_options opt = {.threads = 1};
    sol_backend *be = NULL;
    sol_err err = {0};
    if (p->backend_new(&opt, &be, &err))
        fail_msg("poison backend: %s", err.msg);
    return be;
}

static void on_segv(int sig)
{
    (void)sig;
    _exit(42);
}

/* A read of poisoned memory by the host faults: the negative control that
 * makes the engine suite on this backend mean something. */
static void test_poisoned_memory_faults(void **state)
{
    (void)state;
    sol_backend *be = poison_backend();
    sol_err err = {0};
    float one = 1.0f, back = 0;
    void *buf = NULL;
    assert_int_equal(be->alloc(be, sizeof one, &buf, &err), 0);
    assert_int_equal(be->upload(be, buf, &one, sizeof one, &err), 0);
    assert_int_equal(be->download(be, &back, buf, sizeof back, &err), 0);
    assert_true(back == 1.0f);
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        struct sigaction sa = {.sa_handler = on_segv};
        sigaction(SIGSEGV, &sa, NULL);
        volatile float v = *(volatile float *)buf; /* must fault */
        (void)v;
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 42);
    be->free(be, buf);
    be->destroy(be);
}

/* A host pointer handed to an op is an asynchronous error naming the op;
 * after it nothing runs and sync keeps reporting it. */
static void test_host_pointer_is_an_error(void **state)
{
    (void)state;
    sol_backend *be = poison_backend();
    sol_err err = {0};
    float *dev = NULL, host[64] = {0};
    assert_int_equal(be->alloc(be, sizeof host, (void **)&dev, &err), 0);
    begin_step(be, 1, 0);
    be->mark(be, "attn.residual", 4);
    be->add(be, dev, host, 64);
    assert_int_equal(be->sync(be, &err), SOL_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "layer 4 attn.residual: y "));
    assert_non_null(strstr(err.msg, "is not backend memory"));
    memset(&err, 0, sizeof err);
    assert_int_equal(be->sync(be, &err), SOL_ERR_RUNTIME);
    be->free(be, dev);
    be->destroy(be);
}

/* ---- the ABI 4 ops through the plugin ------------------------------------- */

enum { E4 = 4, H4 = 32, F4 = 32, K4 = 2, ROWS4 = 4, HEADS4 = 2, DH4 = 16, CAP4 = 8 };

/* Everything the ABI 4 sequence reads and writes; on the plugin each
 * buffer is backend memory, uploaded from (and downloaded into) these. */
typedef struct {
    float gate[E4 * F4 * H4], up[E4 * F4 * H4], down[E4 * H4 * F4];
    float logits[ROWS4 * E4], bias[E4], x[ROWS4 * H4], weights[ROWS4 * K4], out[ROWS4 * H4];
    int32_t ids[ROWS4 * K4];
    float scaled[ROWS4 * H4], g[ROWS4 * H4], u[ROWS4 * H4], heads[ROWS4 * HEADS4 * DH4], norm[DH4];
    float q[ROWS4 * HEADS4 * DH4], k[ROWS4 * DH4], v[ROWS4 * DH4], attn[ROWS4 * HEADS4 * DH4];
    float kcache[2 * CAP4 * DH4], vcache[2 * CAP4 * DH4];
} abi4_data;

static void abi4_fill(abi4_data *d)
{
    float *all = (float *)d;
    for (size_t i = 0; i < sizeof *d / sizeof(float); i++)
        all[i] = (float)sin(0.37 * (double)i) * 1.5f;
    memset(d->ids, 0, sizeof d->ids);
    memset(d->kcache, 0, sizeof d->kcache + sizeof d->vcache);
}

/* A buffer of the backend holding host's bytes (the CPU backend's memory
 * is the host's: it is used in place). */
static void *placed(sol_backend *be, int plugin, void *host, size_t bytes)
{
    if (!plugin)
        return host;
    void *dev = NULL;
    sol_err err = {0};
    if (be->alloc(be, bytes, &dev, &err) || be->upload(be, dev, host, bytes, &err))
        fail_msg("%s", err.msg);
    return dev;
}

/* route, moe_ffn on its choices, scale, softcap, geglu, head_rmsnorm, then
 * a batched step of 2 sequences (kv_write, attention) on d, as the engine
 * would call them; results land in d. */
static void abi4_sequence(sol_backend *be, int plugin, abi4_data *d)
{
    sol_err err = {0};
    void *handle = NULL;
    sol_weight_view gate = {SOL_DT_F32, d->gate, E4 * F4, H4, H4 * sizeof(float)},
                    up = {SOL_DT_F32, d->up, E4 * F4, H4, H4 * sizeof(float)},
                    down = {SOL_DT_F32, d->down, E4 * H4, F4, F4 * sizeof(float)};
    sol_weight_view *views[] = {&gate, &up, &down};
    if (plugin && be->load_weights(be, views, 3, &handle, &err))
        fail_msg("%s", err.msg);
    abi4_data *dev = placed(be, plugin, d, sizeof *d); /* one buffer: the fields at their offsets */
    begin_step(be, ROWS4, 3);
    sol_router r = {.n_experts = E4, .k = K4, .sigmoid = 1, .bias = dev->bias, .n_groups = 2, .groups_kept = 1,
                    .norm = 1, .scale = 2.5f};
    be->mark(be, "ffn.route", 0);
    be->route(be, dev->logits, &r, dev->ids, dev->weights);
    r.k = 99; /* the plugin copied the router at the call */
    be->mark(be, "ffn.experts", 0);
    be->moe_ffn(be, &gate, &up, &down, E4, dev->x, dev->ids, dev->weights, K4, dev->out);
    be->scale(be, dev->scaled, 0.75f, H4);
    be->softcap(be, dev->scaled, 1.0f, 2, H4);
    be->geglu(be, dev->g, dev->u, H4);
    be->head_rmsnorm(be, dev->heads, dev->norm, 1e-6f, HEADS4, DH4);
    sol_step_state two = {.pos = 1, .rows = ROWS4, .seqs = 2};
    if (be->begin_step(be, &two, &err))
        fail_msg("%s", err.msg);
    sol_kv_cache_layer cache = {SOL_DT_F32, dev->kcache, dev->vcache, CAP4, DH4, 0, CAP4 * DH4 * sizeof(float)};
    be->kv_write(be, dev->k, dev->v, &cache);
    be->attention(be, dev->q, &cache, HEADS4, 1, DH4, 0, 2.0f, dev->attn);
    if (be->sync(be, &err))
        fail_msg("%s", err.msg);
    if (plugin) {
        if (be->download(be, d, dev, sizeof *d, &err))
            fail_msg("%s", err.msg);
        be->free(be, dev);
        be->free(be, handle);
    }
}

/* The plugin, queuing (SOL_POISON_DEFER=1) or not, gives the CPU
 * backend's bytes for every ABI 4 op and for a batched step. */
static void test_abi4_ops_on_plugin(void **state)
{
    (void)state;
    static abi4_data want, got;
    abi4_fill(&want);
    sol_backend *cpu = cpu_backend(1);
    abi4_sequence(cpu, 0, &want);
    cpu->destroy(cpu);
    for (int defer = 0; defer < 2; defer++) {
        setenv("SOL_POISON_DEFER", defer ? "1" : "0", 1);
        sol_backend *be = poison_backend();
        unsetenv("SOL_POISON_DEFER");
        assert_int_equal(be->caps.max_seqs, cpu_backend_caps_max_seqs());
        abi4_fill(&got);
        abi4_sequence(be, 1, &got);
        be->destroy(be);
        assert_memory_equal(&got, &want, sizeof want);
    }
}

/* The router's bias is backend memory: a host one is an error naming the op. */
static void test_route_host_bias_is_an_error(void **state)
{
    (void)state;
    sol_backend *be = poison_backend();
    sol_err err = {0};
    float *dev = NULL, host_bias[E4] = {0};
    assert_int_equal(be->alloc(be, 64 * sizeof *dev, (void **)&dev, &err), 0);
    begin_step(be, 1, 0);
    sol_router r = {.n_experts = E4, .k = 1, .bias = host_bias, .scale = 1};
    be->mark(be, "ffn.route", 2);
    be->route(be, dev, &r, (int32_t *)(dev + 16), dev + 32);
    assert_int_equal(be->sync(be, &err), SOL_ERR_RUNTIME);
    assert_non_null(strstr(err.msg, "layer 2 ffn.route: router bias "));
    be->free(be, dev);
    be->destroy(be);
}

static void test_abi1_plugin_refused(void **state)
{
    (void)state;
    const char *path = getenv("SOL_TEST_ABI1");
    if (!path)
        fail_msg("SOL_TEST_ABI1 is not set (make unit sets it to build/test/abi1.so)");
    const sol_cuda_plugin *p = NULL;
    sol_err err = {0};
    assert_int_equal(sol_plugin_load(path, &p, &err), SOL_ERR_RUNTIME);
    assert_null(p);
    char want[64];
    snprintf(want, sizeof want, "interface 1, this sol speaks %d", SOL_CUDA_PLUGIN_ABI);
    if (!strstr(err.msg, want))
        fail_msg("%s", err.msg);
    assert_null(strchr(err.msg, '\n'));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_memory_roundtrip),
        cmocka_unit_test(test_cpu_load_weights),
        cmocka_unit_test(test_cpu_marks_and_sync),
        cmocka_unit_test(test_cpu_argmax_rule),
        cmocka_unit_test(test_poisoned_memory_faults),
        cmocka_unit_test(test_host_pointer_is_an_error),
        cmocka_unit_test(test_abi4_ops_on_plugin),
        cmocka_unit_test(test_route_host_bias_is_an_error),
        cmocka_unit_test(test_abi1_plugin_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
