/*
 * matmul.h - the one entry point the forward pass uses for weight x activation
 * products, with kernel selection and threads behind it.  Typed math only:
 * knows tensor types and shapes, not models.
 */
#ifndef COLLOQ_MATMUL_H
#define COLLOQ_MATMUL_H

#include <stdint.h>
#include "quant.h"

typedef struct colloq_pool colloq_pool;   /* thread pool (threadpool.h); may be NULL = single thread */

/* A weight matrix view: rows of K elements of `type`, n_rows rows, row stride in bytes. */
typedef struct {
    const void *data;
    uint32_t    type;
    int64_t     k;          /* elements per row (ne[0]) */
    int64_t     n_rows;     /* ne[1] */
    uint64_t    row_bytes;
} colloq_mat;

/* y[m][n] = sum_k W[n][k] * x[m][k]   for m < M, n < n_rows.
 * x: M rows of K floats (contiguous), y: M rows of n_rows floats (contiguous).
 * scratch: at least colloq_matmul_scratch(W, M) bytes (for quantised activations),
 * so the hot path never allocates. */
size_t colloq_matmul_scratch(const colloq_mat *w, int m);
void   colloq_matmul(const colloq_mat *w, const float *x, int m, float *y,
                     void *scratch, colloq_pool *pool);
/* Row r of W dequantised into out (K floats): used for embedding lookups. */
void   colloq_mat_get_row(const colloq_mat *w, int64_t r, float *out);

#endif
