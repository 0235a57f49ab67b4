/* Thread pool (see pool.h). Between jobs a worker first spins on the job
 * counter (a decode step hands out hundreds of short jobs, microseconds
 * apart, so sleeping on every one would cost more than the work), then
 * sleeps on a condition variable. Tasks are claimed with an atomic counter
 * so uneven tasks balance. */
#include "kernels/cpu/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* About 0.2-0.5 ms of pause instructions before a worker sleeps. */
enum { SPIN_ROUNDS = 1 << 13 };

struct sol_pool {
    int n_threads;
    pthread_t *workers;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    atomic_uint generation; /* bumped per job */
    atomic_int busy;        /* workers still in the current job */
    atomic_int sleepers;    /* workers waiting on `wake` */
    atomic_int stop;
    sol_pool_fn fn;
    void *ctx;
    int n_tasks;
    atomic_int next_task;
};

static void run_tasks(sol_pool *pool)
{
    int task;
    while ((task = atomic_fetch_add(&pool->next_task, 1)) < pool->n_tasks)
        pool->fn(pool->ctx, task, pool->n_tasks);
}

/* Waits until the job counter moves past `seen` (or stop): spin, then sleep. */
static void wait_for_job(sol_pool *pool, unsigned seen)
{
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        if (atomic_load(&pool->generation) != seen || atomic_load(&pool->stop))
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&pool->lock);
    atomic_fetch_add(&pool->sleepers, 1);
    /* checked after announcing ourselves: the poster either sees a sleeper
     * and broadcasts under the lock, or we see its new generation here */
    while (atomic_load(&pool->generation) == seen && !atomic_load(&pool->stop))
        pthread_cond_wait(&pool->wake, &pool->lock);
    atomic_fetch_sub(&pool->sleepers, 1);
    pthread_mutex_unlock(&pool->lock);
}

static void *worker_main(void *arg)
{
    sol_pool *pool = arg;
    unsigned seen = 0;
    for (;;) {
        wait_for_job(pool, seen);
        if (atomic_load(&pool->stop))
            break;
        seen = atomic_load(&pool->generation);
        run_tasks(pool);
        if (atomic_fetch_sub(&pool->busy, 1) == 1) {
            pthread_mutex_lock(&pool->lock);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->lock);
        }
    }
    return NULL;
}

sol_pool *sol_pool_new(int n_threads)
{
    sol_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->n_threads = n_threads < 1 ? 1 : n_threads;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->busy, 0);
    atomic_init(&pool->sleepers, 0);
    atomic_init(&pool->stop, 0);
    atomic_init(&pool->next_task, 0);
    pool->workers = calloc((size_t)pool->n_threads, sizeof *pool->workers);
    if (!pool->workers) {
        sol_pool_free(pool);
        return NULL;
    }
    for (int i = 1; i < pool->n_threads; i++)
        if (pthread_create(&pool->workers[i], NULL, worker_main, pool) != 0) {
            pool->n_threads = i; /* run with the threads we got */
            break;
        }
    return pool;
}

void sol_pool_free(sol_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 1; pool->workers && i < pool->n_threads; i++)
        pthread_join(pool->workers[i], NULL);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->done);
    free(pool->workers);
    free(pool);
}

int sol_pool_threads(const sol_pool *pool) { return pool->n_threads; }

void sol_pool_run(sol_pool *pool, sol_pool_fn fn, void *ctx, int n_tasks)
{
    if (pool->n_threads == 1 || n_tasks <= 1) {
        for (int t = 0; t < n_tasks; t++)
            fn(ctx, t, n_tasks);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    pool->n_tasks = n_tasks;
    atomic_store(&pool->next_task, 0);
    atomic_store(&pool->busy, pool->n_threads - 1);
    atomic_fetch_add(&pool->generation, 1); /* publishes the job (seq_cst) */
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->lock);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->lock);
    }
    run_tasks(pool);
    for (int i = 0; i < SPIN_ROUNDS && atomic_load(&pool->busy) > 0; i++)
        cpu_relax();
    if (atomic_load(&pool->busy) > 0) {
        pthread_mutex_lock(&pool->lock);
        while (atomic_load(&pool->busy) > 0)
            pthread_cond_wait(&pool->done, &pool->lock);
        pthread_mutex_unlock(&pool->lock);
    }
}
