/* A persistent thread pool: run(fn, ctx, n_tasks) calls fn(ctx, task) for
 * every task across the workers and the caller, and returns when all are
 * done. Workers spin briefly for the next job, then sleep (pool.c). */
#ifndef SOL_KERNELS_CPU_POOL_H
#define SOL_KERNELS_CPU_POOL_H

typedef struct sol_pool sol_pool;
typedef void (*sol_pool_fn)(void *ctx, int task, int n_tasks);

/* n_threads counts the caller: 1 = no worker threads. NULL on failure. */
sol_pool *sol_pool_new(int n_threads);
void sol_pool_free(sol_pool *pool);
int sol_pool_threads(const sol_pool *pool);
void sol_pool_run(sol_pool *pool, sol_pool_fn fn, void *ctx, int n_tasks);

#endif
