/*
 * matmul_pack.c - packed 16-row panels for the matmul (layouts in matmul_pack.h):
 * the scalar packer, the scalar reference activation quantisers and panel kernels
 * that define the per-lane recipe every SIMD variant must reproduce bit for bit,
 * and the table of matmul kernels colloq_kernels_init() fills.  Pure functions
 * over caller memory plus that one table; no allocation, no threads.
 */
#include "matmul_pack.h"
#include "quant_blocks.h"

#include <string.h>

/* ---- layouts ---- */

bool colloq_pack_info_get(uint32_t type, colloq_pack_info *out) {
    colloq_pack_info p = { 0 };
    switch (type) {
    case CT_Q4_0: p = (colloq_pack_info){ QK, 16 * 18, 32, 8 }; break;
    case CT_Q4_1: p = (colloq_pack_info){ QK, 16 * 20, 32, 0 }; break;
    case CT_Q5_0: p = (colloq_pack_info){ QK, 16 * 22, 32, 16 }; break;
    case CT_Q5_1: p = (colloq_pack_info){ QK, 16 * 24, 32, 0 }; break;
    case CT_Q8_0: p = (colloq_pack_info){ QK, 16 * 34, 32, 128 }; break;
    case CT_Q2_K: p = (colloq_pack_info){ QK_K, 16 * 84, 256, 0 }; break;
    case CT_Q3_K: p = (colloq_pack_info){ QK_K, 16 * 110, 256, 4 }; break;
    case CT_Q4_K: p = (colloq_pack_info){ QK_K, 16 * 144, 256, 0 }; break;
    case CT_Q5_K: p = (colloq_pack_info){ QK_K, 16 * 176, 256, 0 }; break;
    case CT_Q6_K: p = (colloq_pack_info){ QK_K, 16 * 210, 256, 32 }; break;
    default: return false;
    }
    if (out) *out = p;
    return true;
}

/* ---- packer ---- */

/* n groups: group g lane r = 4 bytes at src_r + 4g (for rows r < nrows, else 0). */
static void put_groups(uint8_t *dst, const uint8_t *const *src, int nrows, int off, int n, uint8_t xr) {
    for (int g = 0; g < n; g++)
        for (int r = 0; r < COLLOQ_PANEL; r++)
            for (int i = 0; i < 4; i++)
                dst[64 * g + 4 * r + i] = r < nrows ? (uint8_t)(src[r][off + 4 * g + i] ^ xr) : 0;
}
/* One 2-byte field per row (f16 scales). */
static void put_halves(uint8_t *dst, const uint8_t *const *src, int nrows, int off) {
    for (int r = 0; r < COLLOQ_PANEL; r++) {
        dst[2 * r] = r < nrows ? src[r][off] : 0;
        dst[2 * r + 1] = r < nrows ? src[r][off + 1] : 0;
    }
}
/* Q5_0 / Q5_1 5th bits in the private order of matmul_pack.h. */
static void put_qh5(uint8_t *dst, const uint8_t *const *src, int nrows, int off) {
    for (int r = 0; r < COLLOQ_PANEL; r++) {
        uint32_t qh = 0;
        if (r < nrows)
            for (int i = 0; i < 4; i++) qh |= (uint32_t)src[r][off + i] << (8 * i);
        for (int i = 0; i < 4; i++) {
            uint8_t b = 0;
            for (int p = 0; p < 8; p++) {
                int e = p < 4 ? 4 * p + i : 16 + 4 * (p - 4) + i;
                b |= (uint8_t)(((qh >> e) & 1) << p);
            }
            dst[4 * r + i] = b;
        }
    }
}

void colloq_pack_panel(uint32_t type, const void *rows, uint64_t row_bytes, int nrows,
                       int64_t b0, int64_t b1, void *vdst) {
    const colloq_type_traits *tr = colloq_type_get(type);
    colloq_pack_info pi;
    if (!tr || !colloq_pack_info_get(type, &pi)) return;
    uint8_t *dst = vdst;
    for (int64_t b = b0; b < b1; b++, dst += pi.panel_block_bytes) {
        const uint8_t *src[COLLOQ_PANEL];
        for (int r = 0; r < COLLOQ_PANEL; r++)
            src[r] = (const uint8_t *)rows + (uint64_t)(r < nrows ? r : 0) * row_bytes
                   + (uint64_t)b * (uint64_t)tr->type_size;
        uint8_t *p = dst;
        switch (type) {
        case CT_Q4_0:
            put_halves(p, src, nrows, 0);
            put_groups(p + 32, src, nrows, 2, 4, 0);
            break;
        case CT_Q4_1:
            put_halves(p, src, nrows, 0);
            put_halves(p + 32, src, nrows, 2);
            put_groups(p + 64, src, nrows, 4, 4, 0);
            break;
        case CT_Q5_0:
            put_halves(p, src, nrows, 0);
            put_qh5(p + 32, src, nrows, 2);
            put_groups(p + 96, src, nrows, 6, 4, 0);
            break;
        case CT_Q5_1:
            put_halves(p, src, nrows, 0);
            put_halves(p + 32, src, nrows, 2);
            put_qh5(p + 64, src, nrows, 4);
            put_groups(p + 128, src, nrows, 8, 4, 0);
            break;
        case CT_Q8_0:
            put_halves(p, src, nrows, 0);
            put_groups(p + 32, src, nrows, 2, 8, 0x80);
            break;
        case CT_Q2_K:     /* scales[16] qs[64] d dmin */
            put_halves(p, src, nrows, 80);
            put_halves(p + 32, src, nrows, 82);
            put_groups(p + 64, src, nrows, 0, 4, 0);
            put_groups(p + 320, src, nrows, 16, 16, 0);
            break;
        case CT_Q3_K:     /* hmask[32] qs[64] scales[12] d */
            put_halves(p, src, nrows, 108);
            put_groups(p + 32, src, nrows, 96, 3, 0);
            put_groups(p + 224, src, nrows, 0, 8, 0);
            put_groups(p + 736, src, nrows, 32, 16, 0);
            break;
        case CT_Q4_K:     /* d dmin scales[12] qs[128] */
            put_halves(p, src, nrows, 0);
            put_halves(p + 32, src, nrows, 2);
            put_groups(p + 64, src, nrows, 4, 3, 0);
            put_groups(p + 256, src, nrows, 16, 32, 0);
            break;
        case CT_Q5_K:     /* d dmin scales[12] qh[32] qs[128] */
            put_halves(p, src, nrows, 0);
            put_halves(p + 32, src, nrows, 2);
            put_groups(p + 64, src, nrows, 4, 3, 0);
            put_groups(p + 256, src, nrows, 16, 8, 0);
            put_groups(p + 768, src, nrows, 48, 32, 0);
            break;
        case CT_Q6_K:     /* ql[128] qh[64] scales[16] d */
            put_halves(p, src, nrows, 208);
            put_groups(p + 32, src, nrows, 192, 4, 0);
            for (int n = 0; n < 2; n++) {
                put_groups(p + 288 + 1536 * n, src, nrows, 64 * n, 8, 0);
                put_groups(p + 800 + 1536 * n, src, nrows, 128 + 32 * n, 8, 0);
                put_groups(p + 1312 + 1536 * n, src, nrows, 64 * n + 32, 8, 0);
            }
            break;
        default:
            break;
        }
    }
}

/* ---- reference activation quantisers (the reference quantisers' levels) ---- */

static void act32_ref(const float *x, int64_t k, void *vact, int64_t nt, int64_t t, int off) {
    colloq_act32 *act = vact;
    for (int64_t b = 0; b < k / QK; b++) {
        block_q8_0 q;
        colloq_q8_0_from_float_ref(x + b * QK, &q, QK);
        colloq_act32 *a = &act[b * nt + t];
        memcpy(a->qs, q.qs, QK);
        a->d = f16f(q.d);
        int s = 0;
        for (int j = 0; j < QK; j++) s += q.qs[j];
        a->sum = s;
        a->corr = -off * s;
        a->pad = 0;
    }
}

static void act256_ref(const float *x, int64_t k, void *vact, int64_t nt, int64_t t, int off) {
    colloq_act256 *act = vact;
    for (int64_t b = 0; b < k / QK_K; b++) {
        block_q8_K q;
        colloq_q8_K_from_float_ref(x + b * QK_K, &q, QK_K);
        colloq_act256 *a = &act[b * nt + t];
        memset(a, 0, sizeof *a);
        memcpy(a->qs, q.qs, QK_K);
        a->d = q.d;
        for (int j = 0; j < 16; j++) {
            a->bs16[j] = q.bsums[j];
            a->corr16[j] = -off * q.bsums[j];
        }
        for (int j = 0; j < 8; j++) a->bs32[j] = (int16_t)(q.bsums[2 * j] + q.bsums[2 * j + 1]);
    }
}

/* ---- reference panel kernels: decode lane r of a panel block, then the recipe ---- */

static inline uint8_t gbyte(const uint8_t *groups, int g, int r, int i) { return groups[64 * g + 4 * r + i]; }
static inline float half_at(const uint8_t *p, int r) {
    return f16f((uint16_t)(p[2 * r] | p[2 * r + 1] << 8));
}

/* 32-element types: unsigned levels u[32] of lane r (5th bit from the private qh order). */
static void lane_nibbles(const uint8_t *qs, const uint8_t *qh, int r, int *u) {
    for (int e = 0; e < 32; e++) {
        int g = (e % 16) / 4, i = e % 4;
        int v = gbyte(qs, g, r, i);
        u[e] = e < 16 ? v & 15 : v >> 4;
        if (qh) {
            int p = e < 16 ? g : 4 + g;
            u[e] |= ((qh[4 * r + i] >> p) & 1) << 4;
        }
    }
}

static void panel32_ref(uint32_t type, const void *panel, int64_t nb, const void *vact, int64_t stride,
                        int nt, float *facc) {
    colloq_pack_info pi;
    colloq_pack_info_get(type, &pi);
    const colloq_act32 *act = vact;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = (const uint8_t *)panel + b * pi.panel_block_bytes;
        for (int r = 0; r < COLLOQ_PANEL; r++) {
            int u[32];
            float dw = half_at(p, r), mw = 0;
            switch (type) {
            case CT_Q4_0: lane_nibbles(p + 32, NULL, r, u); break;
            case CT_Q4_1: mw = half_at(p + 32, r); lane_nibbles(p + 64, NULL, r, u); break;
            case CT_Q5_0: lane_nibbles(p + 96, p + 32, r, u); break;
            case CT_Q5_1: mw = half_at(p + 32, r); lane_nibbles(p + 128, p + 64, r, u); break;
            default:  /* Q8_0: stored levels + 128 */
                for (int e = 0; e < 32; e++) u[e] = gbyte(p + 32, e / 4, r, e % 4);
                break;
            }
            for (int t = 0; t < nt; t++) {
                const colloq_act32 *a = &act[b * stride + t];
                int32_t s = 0;
                for (int e = 0; e < 32; e++) s += (int32_t)(u[e] - pi.off) * a->qs[e];
                float *f = &facc[t * COLLOQ_PANEL + r];
                *f = fmaf((float)s, dw * a->d, *f);
                if (type == CT_Q4_1 || type == CT_Q5_1) *f = fmaf((float)a->sum, mw * a->d, *f);
            }
        }
    }
}

/* K-quants: signed levels q[256] (offsets applied) and per-sub-block scales of lane r. */
static void lane_kquant(uint32_t type, const uint8_t *p, int r, int *q, int *sc, int *mn, float *d, float *dmin) {
    switch (type) {
    case CT_Q2_K:
        *d = half_at(p, r);
        *dmin = half_at(p + 32, r);
        for (int j = 0; j < 16; j++) {
            int s = gbyte(p + 64, j / 4, r, j % 4);
            sc[j] = s & 15;
            mn[j] = s >> 4;
        }
        for (int e = 0; e < 256; e++) {
            int n = e / 128, j = (e % 128) / 32, l = e % 32;
            q[e] = (gbyte(p + 320, 8 * n + l / 4, r, l % 4) >> (2 * j)) & 3;
        }
        break;
    case CT_Q3_K: {
        uint8_t s12[12];
        *d = half_at(p, r);
        *dmin = 0;
        for (int i = 0; i < 12; i++) s12[i] = gbyte(p + 32, i / 4, r, i % 4);
        for (int j = 0; j < 16; j++) sc[j] = q3k_scale(s12, j);
        for (int e = 0; e < 256; e++) {
            int n = e / 128, j = (e % 128) / 32, l = e % 32;
            int lo = (gbyte(p + 736, 8 * n + l / 4, r, l % 4) >> (2 * j)) & 3;
            int hi = (gbyte(p + 224, l / 4, r, l % 4) >> (4 * n + j)) & 1;
            q[e] = (lo | hi << 2) - 4;
        }
        break;
    }
    case CT_Q4_K:
    case CT_Q5_K: {
        uint8_t s12[12];
        const uint8_t *qh = type == CT_Q5_K ? p + 256 : NULL, *qs = type == CT_Q5_K ? p + 768 : p + 256;
        *d = half_at(p, r);
        *dmin = half_at(p + 32, r);
        for (int i = 0; i < 12; i++) s12[i] = gbyte(p + 64, i / 4, r, i % 4);
        for (int j = 0; j < 8; j++) kq_scale_min(s12, j, &sc[j], &mn[j]);
        for (int e = 0; e < 256; e++) {
            int c = e / 64, i = e % 64, l = i % 32;
            int v = gbyte(qs, 8 * c + l / 4, r, l % 4);
            q[e] = i < 32 ? v & 15 : v >> 4;
            if (qh) q[e] |= ((gbyte(qh, l / 4, r, l % 4) >> (2 * c + i / 32)) & 1) << 4;
        }
        break;
    }
    default: {  /* Q6_K */
        *d = half_at(p, r);
        *dmin = 0;
        for (int j = 0; j < 16; j++) sc[j] = (int8_t)gbyte(p + 32, j / 4, r, j % 4);
        for (int e = 0; e < 256; e++) {
            int n = e / 128, k = (e % 128) / 32, l = e % 32;
            int v = gbyte(p + 288 + 1536 * n + 1024 * (k & 1), l / 4, r, l % 4);
            int lo = k < 2 ? v & 15 : v >> 4;
            int hi = (gbyte(p + 800 + 1536 * n, l / 4, r, l % 4) >> (2 * k)) & 3;
            q[e] = (lo | hi << 4) - 32;
        }
        break;
    }
    }
}

static void panel256_ref(uint32_t type, const void *panel, int64_t nb, const void *vact, int64_t stride,
                         int nt, float *facc) {
    static const int q6k_order[16] = { 0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15 };
    colloq_pack_info pi;
    colloq_pack_info_get(type, &pi);
    const colloq_act256 *act = vact;
    int sub = type == CT_Q4_K || type == CT_Q5_K ? 32 : 16;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = (const uint8_t *)panel + b * pi.panel_block_bytes;
        for (int r = 0; r < COLLOQ_PANEL; r++) {
            int q[256], sc[16], mn[16] = { 0 };
            float d, dmin;
            lane_kquant(type, p, r, q, sc, mn, &d, &dmin);
            for (int t = 0; t < nt; t++) {
                const colloq_act256 *a = &act[b * stride + t];
                int32_t msum = 0;
                float g = 0;
                for (int i = 0; i < 256 / sub; i++) {
                    int j = type == CT_Q6_K ? q6k_order[i] : i;
                    int32_t s = 0;
                    for (int l = 0; l < sub; l++) s += q[j * sub + l] * a->qs[j * sub + l];
                    g = fmaf((float)s, (float)sc[j], g);
                    msum += mn[j] * (sub == 32 ? a->bs32[j] : a->bs16[j]);
                }
                float *f = &facc[t * COLLOQ_PANEL + r];
                *f = fmaf(g, d * a->d, *f);
                if (type == CT_Q2_K || type == CT_Q4_K || type == CT_Q5_K)
                    *f = fmaf((float)msum, -(dmin * a->d), *f);
            }
        }
    }
}

#define PANEL_REF(t, T, kind)                                                                    \
    static void panel_##t##_ref(const void *panel, int64_t nb, const void *act, int64_t stride, \
                                int nt, float *facc) {                                            \
        panel##kind##_ref(T, panel, nb, act, stride, nt, facc);                                   \
    }
PANEL_REF(q4_0, CT_Q4_0, 32)
PANEL_REF(q4_1, CT_Q4_1, 32)
PANEL_REF(q5_0, CT_Q5_0, 32)
PANEL_REF(q5_1, CT_Q5_1, 32)
PANEL_REF(q8_0, CT_Q8_0, 32)
PANEL_REF(q2_K, CT_Q2_K, 256)
PANEL_REF(q3_K, CT_Q3_K, 256)
PANEL_REF(q4_K, CT_Q4_K, 256)
PANEL_REF(q5_K, CT_Q5_K, 256)
PANEL_REF(q6_K, CT_Q6_K, 256)
#undef PANEL_REF

static const colloq_mmk mmk_ref[CT_COUNT] = {
    [CT_Q4_0] = { act32_ref, panel_q4_0_ref, NULL, "ref" },
    [CT_Q4_1] = { act32_ref, panel_q4_1_ref, NULL, "ref" },
    [CT_Q5_0] = { act32_ref, panel_q5_0_ref, NULL, "ref" },
    [CT_Q5_1] = { act32_ref, panel_q5_1_ref, NULL, "ref" },
    [CT_Q8_0] = { act32_ref, panel_q8_0_ref, NULL, "ref" },
    [CT_Q2_K] = { act256_ref, panel_q2_K_ref, NULL, "ref" },
    [CT_Q3_K] = { act256_ref, panel_q3_K_ref, NULL, "ref" },
    [CT_Q4_K] = { act256_ref, panel_q4_K_ref, NULL, "ref" },
    [CT_Q5_K] = { act256_ref, panel_q5_K_ref, NULL, "ref" },
    [CT_Q6_K] = { act256_ref, panel_q6_K_ref, NULL, "ref" },
};

const colloq_mmk *colloq_mmk_ref(uint32_t type) {
    if (type >= CT_COUNT || !mmk_ref[type].panel) return NULL;
    return &mmk_ref[type];
}

/* ---- the table the matmul uses (written only from colloq_kernels_init, once) ---- */

static colloq_mmk mmk_fast[CT_COUNT];

const colloq_mmk *colloq_mmk_get(uint32_t type) {
    static const colloq_mmk none = { NULL, NULL, NULL, "none" };
    if (type >= CT_COUNT) return &none;
    return &mmk_fast[type];
}

void colloq_mmk_set(uint32_t type, const colloq_mmk *k) {
    if (type >= CT_COUNT || !k || !colloq_type_get(type)) return;
    colloq_mmk *f = &mmk_fast[type];
    if (k->act) f->act = k->act;
    if (k->panel) f->panel = k->panel;
    if (k->tile) f->tile = k->tile;
    if (k->isa) f->isa = k->isa;
}
