/*
 * threadpool.h - a persistent pool of worker threads (spin briefly, then sleep).
 * The calling thread takes part as thread 0, so a pool of n uses n-1 workers.
 * Knows nothing of models or kernels.
 */
#ifndef COLLOQ_THREADPOOL_H
#define COLLOQ_THREADPOOL_H

typedef struct colloq_pool colloq_pool;
typedef void (*colloq_pool_fn)(void *ctx, int ith, int nth);

colloq_pool *colloq_pool_new(int n_threads);      /* n_threads <= 0: physical cores */
void         colloq_pool_free(colloq_pool *p);
int          colloq_pool_size(const colloq_pool *p);   /* 1 for NULL */
/* Run fn(ctx, ith, nth) for ith = 0..nth-1 in parallel; returns when all finished.
 * p may be NULL (runs fn(ctx, 0, 1)).  Not reentrant. */
void         colloq_pool_run(colloq_pool *p, colloq_pool_fn fn, void *ctx);
/* Number of physical cores (falls back to online CPUs). */
int          colloq_physical_cores(void);

#endif
