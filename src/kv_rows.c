/*
 * kv_rows.c - the KV cache's rows: storing the forward pass's float key/value rows in
 * the cache's element type and reading tiles of them back as floats for attention.
 * Layout: per layer and kv head, [n_ctx][head_dim] elements (head-major, so a tile of
 * consecutive positions is one contiguous run).
 */
#include <string.h>

#include "model.h"
#include "util.h"

/* IEEE binary16 -> float without branches (auto-vectorisable): the exponent and
 * mantissa shifted into float position and rescaled by 2^112 give normals and
 * subnormals; all-ones exponents become inf/nan. */
static inline float f16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v;
    uint32_t em = h & 0x7fffu;
    v.u = em << 13;
    v.f *= 0x1p112f;
    v.u |= (em >= 0x7c00u ? 0x7f800000u : 0u) | ((uint32_t)(h & 0x8000u) << 16);
    return v.f;
}

/* Element offset of (layer l, kv head g, position p) in the cache. */
static size_t kv_index(const colloq_seq *s, int l, int g, int p) {
    const colloq_hparams *hp = &s->model->hp;
    return (((size_t)l * hp->n_head_kv + g) * (size_t)s->n_ctx + (size_t)p) * (size_t)hp->head_dim;
}

void colloq_kv_store(const colloq_seq *w, colloq_seq *s, int l, int row0, int n) {
    const colloq_hparams *hp = &s->model->hp;
    int hd = hp->head_dim, nkv = hp->n_head_kv;
    for (int i = 0; i < n; i++) {
        for (int g = 0; g < nkv; g++) {
            size_t at = kv_index(s, l, g, s->n_past + i), row = (size_t)(row0 + i);
            const float *k = w->k + (row * nkv + g) * hd, *v = w->v + (row * nkv + g) * hd;
            if (s->cache_type == COLLOQ_CACHE_F32) {
                memcpy((float *)s->k_cache + at, k, (size_t)hd * sizeof(float));
                memcpy((float *)s->v_cache + at, v, (size_t)hd * sizeof(float));
            } else {
                uint16_t *kc = (uint16_t *)s->k_cache + at, *vc = (uint16_t *)s->v_cache + at;
                for (int d = 0; d < hd; d++) {
                    kc[d] = colloq_f32_to_f16(k[d]);
                    vc[d] = colloq_f32_to_f16(v[d]);
                }
            }
        }
    }
}
typedef float    vf4 __attribute__((vector_size(16)));
typedef uint32_t vu4 __attribute__((vector_size(16)));
typedef uint16_t vh4 __attribute__((vector_size(8)));

/* f16_to_f32 on 4 elements at a time. */
static void f16_row_to_f32(const uint16_t *restrict x, float *restrict y, size_t n) {
    size_t e = 0;
    for (; e + 4 <= n; e += 4) {
        vh4 h;
        memcpy(&h, x + e, sizeof h);
        vu4 w = __builtin_convertvector(h, vu4);
        vu4 em = w & 0x7fffu;
        vf4 f = (vf4)(em << 13) * 0x1p112f;
        vu4 out = (vu4)f | ((vu4)(em >= 0x7c00u) & 0x7f800000u) | ((w & 0x8000u) << 16);
        memcpy(y + e, &out, sizeof out);
    }
    for (; e < n; e++) y[e] = f16_to_f32(x[e]);
}

const float *colloq_kv_load_tile(const colloq_seq *s, colloq_att_scratch *a, int l, int g, int t0, int tn,
                                 const float **k) {
    size_t at = kv_index(s, l, g, t0), cnt = (size_t)tn * s->model->hp.head_dim;
    if (s->cache_type == COLLOQ_CACHE_F32) {
        *k = (const float *)s->k_cache + at;
        return (const float *)s->v_cache + at;
    }
    f16_row_to_f32((const uint16_t *)s->k_cache + at, a->kt, cnt);
    f16_row_to_f32((const uint16_t *)s->v_cache + at, a->vt, cnt);
    *k = a->kt;
    return a->vt;
}
