/*
 * kv_rows.c - the KV cache's rows: storing the forward pass's float key/value rows in
 * the cache's element type and reading tiles of them back as floats for attention.
 * Layout: per layer and kv head, n_ctx rows of head_dim elements (head-major, so a tile
 * of consecutive positions is one contiguous run); a row is head_dim floats, f16 values,
 * or head_dim / 32 Q8_0 blocks (GGUF's layout).
 */
#include <string.h>

#include "model.h"
#include "quant.h"
#include "util.h"

/* Byte offset of the row (layer l, kv head g, position p) in the cache. */
static size_t kv_offset(const colloq_seq *s, int l, int g, int p) {
    const colloq_hparams *hp = &s->model->hp;
    return (((size_t)l * hp->n_head_kv + g) * (size_t)s->n_ctx + (size_t)p) * s->row_bytes;
}

/* One row of hd floats into the cache's type at dst. */
static void store_row(const colloq_seq *s, const float *x, char *dst, int hd) {
    if (s->cache_type == COLLOQ_CACHE_F32) {
        memcpy(dst, x, (size_t)hd * sizeof(float));
    } else if (s->cache_type == COLLOQ_CACHE_F16) {
        for (int d = 0; d < hd; d++) {
            uint16_t h = colloq_f32_to_f16(x[d]);
            memcpy(dst + 2 * (size_t)d, &h, sizeof h);
        }
    } else {
        /* Q8_0 blocks as GGUF lays them out: f16 scale amax / 127, then 32 int8 levels
         * round(x / scale); the reference quantizer, so the levels are exactly defined */
        colloq_type_get(CT_Q8_0)->from_float(x, dst, hd);
    }
}

void colloq_kv_store(const colloq_seq *w, colloq_seq *s, int l, int row0, int n) {
    const colloq_hparams *hp = &s->model->hp;
    int hd = hp->head_dim, nkv = hp->n_head_kv;
    for (int i = 0; i < n; i++) {
        for (int g = 0; g < nkv; g++) {
            size_t at = kv_offset(s, l, g, s->n_past + i), row = (size_t)(row0 + i);
            store_row(s, w->k + (row * nkv + g) * hd, (char *)s->k_cache + at, hd);
            store_row(s, w->v + (row * nkv + g) * hd, (char *)s->v_cache + at, hd);
        }
    }
}

const float *colloq_kv_load_tile(const colloq_seq *s, colloq_att_scratch *a, int l, int g, int t0, int tn,
                                 const float **k) {
    size_t at = kv_offset(s, l, g, t0), cnt = (size_t)tn * s->model->hp.head_dim;
    const char *kc = (const char *)s->k_cache + at, *vc = (const char *)s->v_cache + at;
    if (s->cache_type == COLLOQ_CACHE_F32) {
        *k = (const float *)(const void *)kc;
        return (const float *)(const void *)vc;
    }
    /* F16 or Q8_0 rows to floats with the type's fast conversion (F16C / AVX where the
     * kernels chosen at start have them): exact either way, so the choice does not change
     * results (a Q8_0 value is an 8-bit level times an f16 scale) */
    colloq_kernels_init();
    colloq_to_float_fn cvt = colloq_type_fast(s->cache_type == COLLOQ_CACHE_F16 ? CT_F16 : CT_Q8_0)->to_float;
    cvt(kc, a->kt, (int64_t)cnt);
    cvt(vc, a->vt, (int64_t)cnt);
    *k = a->kt;
    return a->vt;
}
