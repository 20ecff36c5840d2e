/*
 * matmul.c - weight x activation products for the forward pass: quantises each
 * activation row once into caller scratch (the weight type's vec_dot_type), then
 * splits the weight rows into contiguous ranges over the pool and calls the
 * type's fast vec_dot per (weight row, activation row).  Never allocates; knows
 * tensor types and shapes, not models.
 */
#include "matmul.h"
#include "threadpool.h"
#include "util.h"

#include <string.h>

#define SCRATCH_ALIGN 64

typedef struct {
    const colloq_mat    *w;
    const float         *x;          /* m rows of k floats */
    int                  m;
    float               *y;          /* m rows of n_rows floats */
    unsigned char       *xq;         /* m rows of xq_row bytes in vec_dot_type */
    uint64_t             xq_row;
    colloq_from_float_fn quant;      /* float -> vec_dot_type */
    colloq_vec_dot_fn    dot;
} mm_job;

/* Row size of the activations in vec_dot_type; 0 when w cannot be multiplied. */
static uint64_t act_row_bytes(const colloq_mat *w) {
    const colloq_type_traits *tr = colloq_type_get(w->type);
    uint64_t wrow, xrow;
    if (!tr || w->k <= 0 || w->n_rows < 0) return 0;
    if (!colloq_type_row_size(w->type, w->k, &wrow) || w->row_bytes < wrow) return 0;
    if (!colloq_type_row_size(tr->vec_dot_type, w->k, &xrow)) return 0;
    return xrow;
}

size_t colloq_matmul_scratch(const colloq_mat *w, int m) {
    const colloq_type_traits *tr = colloq_type_get(w->type);
    uint64_t row = act_row_bytes(w), total;
    if (!row || m <= 0 || tr->vec_dot_type == CT_F32) return 0;
    if (!colloq_mul_u64(row, (uint64_t)m, &total) || !colloq_add_u64(total, SCRATCH_ALIGN, &total)
        || total > SIZE_MAX)
        return 0;
    return (size_t)total;
}

static void mm_quantize(void *arg, int ith, int nth) {
    mm_job *j = arg;
    for (int r = ith; r < j->m; r += nth)
        j->quant(j->x + (int64_t)r * j->w->k, j->xq + (uint64_t)r * j->xq_row, j->w->k);
}

static void mm_rows(void *arg, int ith, int nth) {
    mm_job *j = arg;
    const colloq_mat *w = j->w;
    int64_t r0 = w->n_rows * ith / nth, r1 = w->n_rows * (ith + 1) / nth;
    const unsigned char *wd = w->data;
    for (int64_t r = r0; r < r1; r++) {
        const void *wrow = wd + (uint64_t)r * w->row_bytes;
        for (int i = 0; i < j->m; i++)
            j->y[(int64_t)i * w->n_rows + r] = j->dot(w->k, wrow, j->xq + (uint64_t)i * j->xq_row);
    }
}

void colloq_matmul(const colloq_mat *w, const float *x, int m, float *y,
                   void *scratch, colloq_pool *pool) {
    if (m <= 0) return;
    uint64_t xrow = act_row_bytes(w);
    if (!xrow) {       /* programmer error: the model layer validates types and shapes */
        colloq_log(0, "matmul: unsupported weight type %u or shape (k=%lld)", (unsigned)w->type,
                   (long long)w->k);
        if (w->n_rows > 0) memset(y, 0, sizeof(float) * (size_t)m * (size_t)w->n_rows);
        return;
    }
    colloq_kernels_init();
    const colloq_type_traits *tr = colloq_type_get(w->type);
    mm_job job = { .w = w, .x = x, .m = m, .y = y, .xq_row = xrow,
                   .quant = colloq_type_fast(tr->vec_dot_type)->from_float,
                   .dot = colloq_type_fast(w->type)->vec_dot };
    if (tr->vec_dot_type == CT_F32) {
        job.xq = (unsigned char *)(uintptr_t)x;         /* read only */
    } else {
        uintptr_t a = ((uintptr_t)scratch + SCRATCH_ALIGN - 1) & ~(uintptr_t)(SCRATCH_ALIGN - 1);
        job.xq = (unsigned char *)a;
        if (m > 1 && colloq_pool_size(pool) > 1) colloq_pool_run(pool, mm_quantize, &job);
        else mm_quantize(&job, 0, 1);
    }
    colloq_pool_run(pool, mm_rows, &job);
}

void colloq_mat_get_row(const colloq_mat *w, int64_t r, float *out) {
    const colloq_type_kernels *k = colloq_type_fast(w->type);
    uint64_t need;
    if (!k || r < 0 || r >= w->n_rows || !colloq_type_row_size(w->type, w->k, &need)
        || w->row_bytes < need) {
        colloq_log(0, "mat_get_row: bad row %lld or matrix (type %u)", (long long)r, (unsigned)w->type);
        if (w->k > 0) memset(out, 0, sizeof(float) * (size_t)w->k);
        return;
    }
    colloq_kernels_init();
    k->to_float((const unsigned char *)w->data + (uint64_t)r * w->row_bytes, out, w->k);
}
