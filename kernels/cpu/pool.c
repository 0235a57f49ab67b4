/* Thread pool (see pool.h). Workers sleep on a condition variable between
 * jobs; tasks are claimed with an atomic counter so uneven tasks balance. */
#include "kernels/cpu/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct sol_pool {
    int n_threads;
    pthread_t *workers;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    unsigned long generation; /* bumped per job */
    int busy;                 /* workers still in the current job */
    int stop;
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

static void *worker_main(void *arg)
{
    sol_pool *pool = arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->stop && pool->generation == seen)
            pthread_cond_wait(&pool->wake, &pool->lock);
        if (pool->stop)
            break;
        seen = pool->generation;
        pthread_mutex_unlock(&pool->lock);
        run_tasks(pool);
        pthread_mutex_lock(&pool->lock);
        if (--pool->busy == 0)
            pthread_cond_signal(&pool->done);
    }
    pthread_mutex_unlock(&pool->lock);
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
    pool->stop = 1;
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
    pthread_mutex_lock(&pool->lock);
    pool->fn = fn;
    pool->ctx = ctx;
    pool->n_tasks = n_tasks;
    atomic_store(&pool->next_task, 0);
    pool->busy = pool->n_threads - 1;
    pool->generation++;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    run_tasks(pool);
    pthread_mutex_lock(&pool->lock);
    while (pool->busy > 0)
        pthread_cond_wait(&pool->done, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
}
