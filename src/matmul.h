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

/* A weight matrix view: rows of K elements of `type`, n_rows rows, row stride in bytes.
 * packed: NULL, or the interleaved copy colloq_mat_pack made (owned by this struct:
 * a packed colloq_mat must not be copied; views made by copying before packing are fine). */
typedef struct {
    const void *data;
    uint32_t    type;
    int64_t     k;          /* elements per row (ne[0]) */
    int64_t     n_rows;     /* ne[1] */
    uint64_t    row_bytes;
    void       *packed;
} colloq_mat;

/* y[m][n] = sum_k W[n][k] * x[m][k]   for m < M, n < n_rows.
 * x: M rows of K floats (contiguous), y: M rows of n_rows floats (contiguous).
 * scratch: at least colloq_matmul_scratch(W, M) bytes (for quantised activations),
 * so the hot path never allocates. */
size_t colloq_matmul_scratch(const colloq_mat *w, int m);
void   colloq_matmul(const colloq_mat *w, const float *x, int m, float *y,
                     void *scratch, colloq_pool *pool);
/* y[i] = W[i] x for n (<= 4) matrices with the same K: the same results bit for bit as n
 * colloq_matmul calls, but when all use the packed path with the same activation layout
 * (e.g. Q, K and V of one type) the activations are quantised once and the panels of all
 * n run as one pool job (one wake-up and one final wait instead of n).  scratch: at least
 * the largest colloq_matmul_scratch(W[i], M). */
void   colloq_matmul_multi(const colloq_mat *const *w, float *const *y, int n, const float *x, int m,
                           void *scratch, colloq_pool *pool);
/* Row r of W dequantised into out (K floats): used for embedding lookups. */
void   colloq_mat_get_row(const colloq_mat *w, int64_t r, float *out);

/* Results.  Each y[m][n] is computed the same way whatever M is, whatever the other
 * rows of x are, and whatever the pool size: a batch gives bit-identical rows to
 * one-row calls (the server relies on it).
 *
 * Packing (optional, at load time).  For quantised types with SIMD panel kernels,
 * colloq_mat_pack stores an interleaved copy of W (as many bytes as W) so products
 * need no repacking per call; without it, colloq_matmul packs small pieces on the
 * fly and gives the same results bit for bit, only slower for small M.  No-op (0)
 * when the type has no packed kernels, or COLLOQ_REPACK=0 is set; COLLOQ_ERR_NOMEM
 * when the copy cannot be allocated (W stays usable, unpacked).  pool may be NULL. */
int    colloq_mat_pack(colloq_mat *w, colloq_pool *pool);
void   colloq_mat_unpack(colloq_mat *w);          /* frees w->packed; safe when NULL */
uint64_t colloq_mat_packed_bytes(const colloq_mat *w);   /* 0 when not packed */

#endif
