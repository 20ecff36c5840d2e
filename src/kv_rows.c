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

typedef float  vf4 __attribute__((vector_size(16)));
typedef int8_t vb4 __attribute__((vector_size(4)));

/* nb Q8_0 blocks (34 bytes: f16 scale, 32 int8 levels) to floats: level x scale, the
 * same single rounding as the reference to_float. */
static void q8_0_blocks_to_f32(const char *restrict x, float *restrict y, size_t nb) {
    for (size_t b = 0; b < nb; b++, x += 34, y += 32) {
        uint16_t h;
        memcpy(&h, x, sizeof h);
        float d = colloq_f16_to_f32(h);
        for (int e = 0; e < 32; e += 4) {
            vb4 q;
            memcpy(&q, x + 2 + e, sizeof q);
            vf4 f = __builtin_convertvector(q, vf4) * d;
            memcpy(y + e, &f, sizeof f);
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
    if (s->cache_type == COLLOQ_CACHE_F16) {
        /* the F16 type's fast conversion (F16C where the kernels chosen at start have it);
         * exact either way, so the choice does not change results */
        colloq_kernels_init();
        colloq_to_float_fn cvt = colloq_type_fast(CT_F16)->to_float;
        cvt(kc, a->kt, (int64_t)cnt);
        cvt(vc, a->vt, (int64_t)cnt);
    } else {
        q8_0_blocks_to_f32(kc, a->kt, cnt / 32);
        q8_0_blocks_to_f32(vc, a->vt, cnt / 32);
    }
    *k = a->kt;
    return a->vt;
}
