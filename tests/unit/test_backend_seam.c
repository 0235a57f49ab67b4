/* The backend seam (kernels/backend.h, ABI 3): the CPU backend's memory,
 * weight placement, step state and timing entries; the test plugin's
 * poisoned memory really is out of the host's reach, a host pointer given
 * to an op is an error naming the op, and the loader refuses a plugin of
 * the previous interface. The engine suite on the plugin is
 * tests/backend/run.sh. */
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
    if (!strstr(err.msg, "interface 1, this sol speaks 4"))
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
        cmocka_unit_test(test_abi1_plugin_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
