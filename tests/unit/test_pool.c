/* Thread pool: every task of every job runs exactly once, across the spin
 * and the sleep paths, with any number of tasks and threads. */
#include <stdatomic.h>
#include <time.h>

#include "kernels/cpu/pool.h"
#include "tests/unit/helpers.h"

typedef struct {
    atomic_int hits[257];
    atomic_int calls;
} counter;

static void count_task(void *arg, int task, int n_tasks)
{
    counter *c = arg;
    assert_true(task >= 0 && task < n_tasks);
    atomic_fetch_add(&c->hits[task], 1);
    atomic_fetch_add(&c->calls, 1);
}

static void run_and_check(sol_pool *pool, int n_tasks)
{
    counter c;
    memset(&c, 0, sizeof c);
    sol_pool_run(pool, count_task, &c, n_tasks);
    assert_int_equal(atomic_load(&c.calls), n_tasks);
    for (int t = 0; t < n_tasks; t++)
        assert_int_equal(atomic_load(&c.hits[t]), 1);
}

static void test_every_task_once(void **state)
{
    (void)state;
    for (int threads = 1; threads <= 4; threads++) {
        sol_pool *pool = sol_pool_new(threads);
        assert_non_null(pool);
        assert_int_equal(sol_pool_threads(pool), threads);
        /* back-to-back jobs: the spinning path */
        for (int job = 0; job < 2000; job++)
            run_and_check(pool, job % 257);
        sol_pool_free(pool);
    }
}

static void test_sleeping_workers_wake(void **state)
{
    (void)state;
    sol_pool *pool = sol_pool_new(3);
    for (int job = 0; job < 20; job++) {
        /* long enough gaps that the workers go to sleep */
        struct timespec gap = {0, 3 * 1000 * 1000};
        nanosleep(&gap, NULL);
        run_and_check(pool, 64);
    }
    sol_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_task_once),
        cmocka_unit_test(test_sleeping_workers_wake),
    };
    return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
