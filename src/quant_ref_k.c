/*
 * quant_ref_k.c - scalar reference kernels for the 256-element K-quants (Q2_K,
 * Q3_K, Q4_K, Q5_K, Q6_K) and their activation type Q8_K.  Each type has one
 * level decoder (bytes -> integer levels) and one packer (levels -> bytes) that
 * to_float, vec_dot and from_float share, so the bit layout lives in one place.
 * No allocation, no threads.  Layout summary: quant_blocks.h.
 */
#include "quant_blocks.h"

#include <string.h>

/* ---- level decoders and packers (element e = 0..255) ---- */

static void q2k_levels(const block_q2_K *b, int8_t *q) {
    for (int e = 0; e < QK_K; e++)
        q[e] = (int8_t)((b->qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3);
}
static void q2k_pack(const uint8_t *q, block_q2_K *b) {
    memset(b->qs, 0, sizeof b->qs);
    for (int e = 0; e < QK_K; e++)
        b->qs[32 * (e / 128) + e % 32] |= (uint8_t)(q[e] << (2 * ((e % 128) / 32)));
}

/* Q3_K levels are signed: u - 4 with u = low 2 bits | hmask bit << 2. */
static void q3k_levels(const block_q3_K *b, int8_t *q) {
    for (int e = 0; e < QK_K; e++) {
        int n = e / 128, j = (e % 128) / 32, l = e % 32;
        int lo = (b->qs[32 * n + l] >> (2 * j)) & 3;
        int hi = (b->hmask[l] >> (4 * n + j)) & 1;
        q[e] = (int8_t)((lo | hi << 2) - 4);
    }
}
static void q3k_pack(const int8_t *q, block_q3_K *b) {
    memset(b->qs, 0, sizeof b->qs);
    memset(b->hmask, 0, sizeof b->hmask);
    for (int e = 0; e < QK_K; e++) {
        int n = e / 128, j = (e % 128) / 32, l = e % 32, u = q[e] + 4;
        b->qs[32 * n + l] |= (uint8_t)((u & 3) << (2 * j));
        b->hmask[l] |= (uint8_t)(((u >> 2) & 1) << (4 * n + j));
    }
}
static void q3k_pack_scales(const int *sc, uint8_t *s) {   /* sc in -32..31 */
    memset(s, 0, 12);
    for (int i = 0; i < 16; i++) {
        int u = sc[i] + 32;
        if (i < 8) s[i] |= (uint8_t)(u & 15);
        else       s[i - 8] |= (uint8_t)((u & 15) << 4);
        s[8 + (i & 3)] |= (uint8_t)((u >> 4) << (2 * (i >> 2)));
    }
}

/* Q4_K (bits = 4) and Q5_K (bits = 5, qh != NULL). */
static void q45k_levels(const uint8_t *qs, const uint8_t *qh, int8_t *q) {
    for (int e = 0; e < QK_K; e++) {
        int c = e / 64, i = e % 64;
        int v = i < 32 ? qs[32 * c + i] & 15 : qs[32 * c + i - 32] >> 4;
        if (qh) v |= ((qh[i % 32] >> (2 * c + i / 32)) & 1) << 4;
        q[e] = (int8_t)v;
    }
}
static void q45k_pack(const uint8_t *q, uint8_t *qs, uint8_t *qh) {
    memset(qs, 0, QK_K / 2);
    if (qh) memset(qh, 0, QK_K / 8);
    for (int e = 0; e < QK_K; e++) {
        int c = e / 64, i = e % 64;
        qs[32 * c + i % 32] |= (uint8_t)((q[e] & 15) << (i < 32 ? 0 : 4));
        if (qh) qh[i % 32] |= (uint8_t)(((q[e] >> 4) & 1) << (2 * c + i / 32));
    }
}
static void kq_pack_scale_min(const int *sc, const int *m, uint8_t *s) {   /* 6-bit each */
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
}

/* Q6_K levels are signed: u - 32 with u = 4 low bits | 2 high bits << 4. */
static void q6k_levels(const block_q6_K *b, int8_t *q) {
    for (int e = 0; e < QK_K; e++) {
        int n = e / 128, k = (e % 128) / 32, l = e % 32;
        int lo = (b->ql[64 * n + l + 32 * (k & 1)] >> (k < 2 ? 0 : 4)) & 15;
        int hi = (b->qh[32 * n + l] >> (2 * k)) & 3;
        q[e] = (int8_t)((lo | hi << 4) - 32);
    }
}
static void q6k_pack(const int8_t *q, block_q6_K *b) {
    memset(b->ql, 0, sizeof b->ql);
    memset(b->qh, 0, sizeof b->qh);
    for (int e = 0; e < QK_K; e++) {
        int n = e / 128, k = (e % 128) / 32, l = e % 32, u = q[e] + 32;
        b->ql[64 * n + l + 32 * (k & 1)] |= (uint8_t)((u & 15) << (k < 2 ? 0 : 4));
        b->qh[32 * n + l] |= (uint8_t)((u >> 4) << (2 * k));
    }
}

/* ---- super-block scale quantisation shared by the quantizers ---- */

/*
 * Affine K-quant (Q2_K, Q4_K, Q5_K): x[e] ~= d*sc[j]*q[e] - dmin*m[j] with sub-block
 * j = e / sub, q in [0, qmax], sc and m in [0, smax].  Fits every sub-block, quantises
 * the sub-block scales and mins against f16 d / dmin, refits (d, dmin) by least
 * squares over the whole super-block (kept if it lowers the error), and finally tries
 * each sub-block's integer scale and min +-1.
 */
typedef struct { uint16_t d, dmin; int sc[16], m[16]; uint8_t q[QK_K]; } kq_affine;

/* Squared error of one sub-block at scale ds and offset -dm; writes its levels. */
static double kq_affine_sub(const float *x, int sub, int qmax, float ds, float dm, uint8_t *q) {
    float qf[32];
    colloq_q_levels(sub, x, ds > 0 ? 1.0f / ds : 0.0f, -dm, 0.0f, (float)qmax, qf);
    for (int l = 0; l < sub; l++) q[l] = (uint8_t)qf[l];
    return colloq_q_err(sub, x, qf, ds, -dm);
}

static double kq_affine_assign(const float *x, int sub, int qmax, kq_affine *r) {
    float d = f16f(r->d), dmin = f16f(r->dmin);
    double err = 0;
    for (int j = 0; j < QK_K / sub; j++)
        err += kq_affine_sub(x + j * sub, sub, qmax, d * (float)r->sc[j], dmin * (float)r->m[j],
                             r->q + j * sub);
    return err;
}

/* Try each sub-block's integer scale and min +-1 and keep what lowers the error. */
static void kq_affine_polish(const float *x, int sub, int qmax, int smax, kq_affine *r) {
    float d = f16f(r->d), dmin = f16f(r->dmin);
    uint8_t q[32];
    for (int j = 0; j < QK_K / sub; j++) {
        const float *xs = x + j * sub;
        double best = kq_affine_sub(xs, sub, qmax, d * (float)r->sc[j], dmin * (float)r->m[j], q);
        int bs = r->sc[j], bm = r->m[j];
        for (int ds = -1; ds <= 1; ds++)
            for (int dm = -1; dm <= 1; dm++) {
                int sc = r->sc[j] + ds, m = r->m[j] + dm;
                if ((ds == 0 && dm == 0) || sc < 0 || sc > smax || m < 0 || m > smax) continue;
                double e = kq_affine_sub(xs, sub, qmax, d * (float)sc, dmin * (float)m, q);
                if (e < best) { best = e; bs = sc; bm = m; }
            }
        r->sc[j] = bs;
        r->m[j] = bm;
        kq_affine_sub(xs, sub, qmax, d * (float)bs, dmin * (float)bm, r->q + j * sub);
    }
}

static int scale_level(float v, float d, int lo, int hi) {
    return d != 0 && isfinite(d) ? q_round_clamp(v / d, lo, hi) : 0;
}

static void kq_affine_quantize(const float *x, int sub, int qmax, int smax, kq_affine *r) {
    int nsub = QK_K / sub;
    float s[16], mn[16], smx = 0, mmx = 0;
    uint8_t q[32];
    for (int j = 0; j < nsub; j++) {
        float o;
        s[j] = colloq_fit_affine(sub, x + j * sub, qmax, true, q, &o);
        mn[j] = -o;
        smx = fmaxf(smx, s[j]);
        mmx = fmaxf(mmx, mn[j]);
    }
    r->d = f2h(smx / (float)smax);
    r->dmin = f2h(mmx / (float)smax);
    for (int j = 0; j < nsub; j++) {
        r->sc[j] = scale_level(s[j], f16f(r->d), 0, smax);
        r->m[j] = scale_level(mn[j], f16f(r->dmin), 0, smax);
    }
    double err = kq_affine_assign(x, sub, qmax, r);

    /* Least-squares (d, dmin) for the chosen integer levels. */
    double saa = 0, sab = 0, sbb = 0, sax = 0, sbx = 0;
    for (int e = 0; e < QK_K; e++) {
        double a = (double)r->sc[e / sub] * r->q[e], b = r->m[e / sub];
        saa += a * a; sab += a * b; sbb += b * b; sax += a * x[e]; sbx += b * x[e];
    }
    double det = saa * sbb - sab * sab, nd, nm;
    if (det > 1e-12 * saa * sbb && saa > 0) {
        nd = (sax * sbb - sab * sbx) / det;
        nm = -(saa * sbx - sab * sax) / det;
        if (nm < 0) { nm = 0; nd = sax / saa; }
    } else {
        nd = saa > 0 ? sax / saa : 0;
        nm = f16f(r->dmin);
    }
    if (nd > 0) {
        kq_affine t = *r;
        t.d = f2h((float)nd);
        t.dmin = f2h((float)nm);
        double e2 = kq_affine_assign(x, sub, qmax, &t);
        if (e2 < err) *r = t;
    }
    kq_affine_polish(x, sub, qmax, smax, r);
}

/*
 * Symmetric K-quant (Q3_K, Q6_K): x[e] ~= d*sc[e/16]*q[e], q in [qmin, qmax],
 * sc in [-sneg, sneg - 1].  The largest-magnitude sub-block scale maps to -sneg; then
 * d is refitted by least squares and each integer scale tried +-1, as above.
 */
typedef struct { uint16_t d; int sc[16]; int8_t q[QK_K]; } kq_sym;

/* Squared error of one 16-value sub-block at scale ds; writes its levels. */
static double kq_sym_sub(const float *x, int qmin, int qmax, float ds, int8_t *q) {
    float qf[16];
    colloq_q_levels(16, x, ds != 0 ? 1.0f / ds : 0.0f, 0.0f, (float)qmin, (float)qmax, qf);
    for (int l = 0; l < 16; l++) q[l] = (int8_t)qf[l];
    return colloq_q_err(16, x, qf, ds, 0.0f);
}

static double kq_sym_assign(const float *x, int qmin, int qmax, kq_sym *r) {
    float d = f16f(r->d);
    double err = 0;
    for (int j = 0; j < 16; j++)
        err += kq_sym_sub(x + 16 * j, qmin, qmax, d * (float)r->sc[j], r->q + 16 * j);
    return err;
}

/* Try each sub-block's integer scale +-1 and keep what lowers the error. */
static void kq_sym_polish(const float *x, int qmin, int qmax, int sneg, kq_sym *r) {
    float d = f16f(r->d);
    int8_t q[16];
    for (int j = 0; j < 16; j++) {
        int best_sc = r->sc[j];
        double best = kq_sym_sub(x + 16 * j, qmin, qmax, d * (float)best_sc, q);
        for (int ds = -1; ds <= 1; ds += 2) {
            int sc = r->sc[j] + ds;
            if (sc < -sneg || sc > sneg - 1) continue;
            double e = kq_sym_sub(x + 16 * j, qmin, qmax, d * (float)sc, q);
            if (e < best) { best = e; best_sc = sc; }
        }
        r->sc[j] = best_sc;
        kq_sym_sub(x + 16 * j, qmin, qmax, d * (float)best_sc, r->q + 16 * j);
    }
}

static void kq_sym_quantize(const float *x, int qmin, int qmax, int sneg, kq_sym *r) {
    float s[16], smx = 0;
    int8_t q[16];
    for (int j = 0; j < 16; j++) {
        s[j] = colloq_fit_sym(16, x + 16 * j, qmin, qmax, q);
        if (fabsf(s[j]) > fabsf(smx)) smx = s[j];
    }
    r->d = f2h(smx / (float)-sneg);
    for (int j = 0; j < 16; j++) r->sc[j] = scale_level(s[j], f16f(r->d), -sneg, sneg - 1);
    double err = kq_sym_assign(x, qmin, qmax, r);

    double saa = 0, sax = 0;
    for (int e = 0; e < QK_K; e++) {
        double a = (double)r->sc[e / 16] * r->q[e];
        saa += a * a; sax += a * x[e];
    }
    if (saa > 0) {
        kq_sym t = *r;
        t.d = f2h((float)(sax / saa));
        double e2 = kq_sym_assign(x, qmin, qmax, &t);
        if (e2 < err) *r = t;
    }
    kq_sym_polish(x, qmin, qmax, sneg, r);
}

/* Integer dot of one 256-level block with Q8_K levels, per sub-block of `sub`. */
static void sub_dots(const int8_t *q, const int8_t *y, int sub, int *isum, int *ysum) {
    for (int j = 0; j < QK_K / sub; j++) {
        int s = 0, t = 0;
        for (int l = 0; l < sub; l++) { s += q[j * sub + l] * y[j * sub + l]; t += y[j * sub + l]; }
        isum[j] = s;
        ysum[j] = t;
    }
}

/* ---- Q2_K ---- */

void colloq_q2_K_to_float_ref(const void *vx, float *y, int64_t n) {
    const block_q2_K *b = vx;
    int8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, b++, y += QK_K) {
        float d = f16f(b->d), dmin = f16f(b->dmin);
        q2k_levels(b, q);
        for (int e = 0; e < QK_K; e++) {
            int s = b->scales[e / 16];
            y[e] = d * (float)(s & 15) * (float)q[e] - dmin * (float)(s >> 4);
        }
    }
}
void colloq_q2_K_from_float_ref(const float *x, void *vy, int64_t n) {
    block_q2_K *b = vy;
    kq_affine r;
    for (int64_t i = 0; i < n / QK_K; i++, b++, x += QK_K) {
        kq_affine_quantize(x, 16, 3, 15, &r);
        b->d = r.d;
        b->dmin = r.dmin;
        for (int j = 0; j < 16; j++) b->scales[j] = (uint8_t)(r.sc[j] | r.m[j] << 4);
        q2k_pack(r.q, b);
    }
}
float colloq_q2_K_vec_dot_ref(int64_t n, const void *vx, const void *vy) {
    const block_q2_K *x = vx;
    const block_q8_K *y = vy;
    int8_t q[QK_K];
    int isum[16], ysum[16];
    double acc = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        q2k_levels(&x[i], q);
        sub_dots(q, y[i].qs, 16, isum, ysum);
        int64_t a = 0, m = 0;
        for (int j = 0; j < 16; j++) {
            a += (int64_t)(x[i].scales[j] & 15) * isum[j];
            m += (int64_t)(x[i].scales[j] >> 4) * ysum[j];
        }
        acc += (double)y[i].d * ((double)f16f(x[i].d) * a - (double)f16f(x[i].dmin) * m);
    }
    return (float)acc;
}

/* ---- Q3_K ---- */

void colloq_q3_K_to_float_ref(const void *vx, float *y, int64_t n) {
    const block_q3_K *b = vx;
    int8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, b++, y += QK_K) {
        float d = f16f(b->d);
        q3k_levels(b, q);
        for (int e = 0; e < QK_K; e++) y[e] = d * (float)q3k_scale(b->scales, e / 16) * (float)q[e];
    }
}
void colloq_q3_K_from_float_ref(const float *x, void *vy, int64_t n) {
    block_q3_K *b = vy;
    kq_sym r;
    for (int64_t i = 0; i < n / QK_K; i++, b++, x += QK_K) {
        kq_sym_quantize(x, -4, 3, 32, &r);
        b->d = r.d;
        q3k_pack_scales(r.sc, b->scales);
        q3k_pack(r.q, b);
    }
}
float colloq_q3_K_vec_dot_ref(int64_t n, const void *vx, const void *vy) {
    const block_q3_K *x = vx;
    const block_q8_K *y = vy;
    int8_t q[QK_K];
    int isum[16], ysum[16];
    double acc = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        q3k_levels(&x[i], q);
        sub_dots(q, y[i].qs, 16, isum, ysum);
        int64_t a = 0;
        for (int j = 0; j < 16; j++) a += (int64_t)q3k_scale(x[i].scales, j) * isum[j];
        acc += (double)y[i].d * f16f(x[i].d) * a;
    }
    return (float)acc;
}

/* ---- Q4_K / Q5_K ---- */

static void q45k_to_float(const uint16_t *dd, const uint8_t *scales, const int8_t *q, float *y) {
    float d = f16f(dd[0]), dmin = f16f(dd[1]);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        kq_scale_min(scales, j, &sc, &m);
        float ds = d * (float)sc, dm = dmin * (float)m;
        for (int l = 0; l < 32; l++) y[32 * j + l] = ds * (float)q[32 * j + l] - dm;
    }
}
static double q45k_dot(uint16_t d, uint16_t dmin, const uint8_t *scales, const int8_t *q,
                       const block_q8_K *y) {
    int isum[16], ysum[16];
    sub_dots(q, y->qs, 32, isum, ysum);
    int64_t a = 0, mm = 0;
    for (int j = 0; j < 8; j++) {
        int sc, m;
        kq_scale_min(scales, j, &sc, &m);
        a += (int64_t)sc * isum[j];
        mm += (int64_t)m * ysum[j];
    }
    return (double)y->d * ((double)f16f(d) * a - (double)f16f(dmin) * mm);
}

void colloq_q4_K_to_float_ref(const void *vx, float *y, int64_t n) {
    const block_q4_K *b = vx;
    int8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, b++, y += QK_K) {
        uint16_t dd[2] = { b->d, b->dmin };
        q45k_levels(b->qs, NULL, q);
        q45k_to_float(dd, b->scales, q, y);
    }
}
void colloq_q4_K_from_float_ref(const float *x, void *vy, int64_t n) {
    block_q4_K *b = vy;
    kq_affine r;
    for (int64_t i = 0; i < n / QK_K; i++, b++, x += QK_K) {
        kq_affine_quantize(x, 32, 15, 63, &r);
        b->d = r.d;
        b->dmin = r.dmin;
        kq_pack_scale_min(r.sc, r.m, b->scales);
        q45k_pack(r.q, b->qs, NULL);
    }
}
float colloq_q4_K_vec_dot_ref(int64_t n, const void *vx, const void *vy) {
    const block_q4_K *x = vx;
    const block_q8_K *y = vy;
    int8_t q[QK_K];
    double acc = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        q45k_levels(x[i].qs, NULL, q);
        acc += q45k_dot(x[i].d, x[i].dmin, x[i].scales, q, &y[i]);
    }
    return (float)acc;
}

void colloq_q5_K_to_float_ref(const void *vx, float *y, int64_t n) {
    const block_q5_K *b = vx;
    int8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, b++, y += QK_K) {
        uint16_t dd[2] = { b->d, b->dmin };
        q45k_levels(b->qs, b->qh, q);
        q45k_to_float(dd, b->scales, q, y);
    }
}
void colloq_q5_K_from_float_ref(const float *x, void *vy, int64_t n) {
    block_q5_K *b = vy;
    kq_affine r;
    for (int64_t i = 0; i < n / QK_K; i++, b++, x += QK_K) {
        kq_affine_quantize(x, 32, 31, 63, &r);
        b->d = r.d;
        b->dmin = r.dmin;
        kq_pack_scale_min(r.sc, r.m, b->scales);
        q45k_pack(r.q, b->qs, b->qh);
    }
}
float colloq_q5_K_vec_dot_ref(int64_t n, const void *vx, const void *vy) {
    const block_q5_K *x = vx;
    const block_q8_K *y = vy;
    int8_t q[QK_K];
    double acc = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        q45k_levels(x[i].qs, x[i].qh, q);
        acc += q45k_dot(x[i].d, x[i].dmin, x[i].scales, q, &y[i]);
    }
    return (float)acc;
}

/* ---- Q6_K ---- */

void colloq_q6_K_to_float_ref(const void *vx, float *y, int64_t n) {
    const block_q6_K *b = vx;
    int8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, b++, y += QK_K) {
        float d = f16f(b->d);
        q6k_levels(b, q);
        for (int e = 0; e < QK_K; e++) y[e] = d * (float)b->scales[e / 16] * (float)q[e];
    }
}
void colloq_q6_K_from_float_ref(const float *x, void *vy, int64_t n) {
    block_q6_K *b = vy;
    kq_sym r;
    for (int64_t i = 0; i < n / QK_K; i++, b++, x += QK_K) {
        kq_sym_quantize(x, -32, 31, 128, &r);
        b->d = r.d;
        for (int j = 0; j < 16; j++) b->scales[j] = (int8_t)r.sc[j];
        q6k_pack(r.q, b);
    }
}
float colloq_q6_K_vec_dot_ref(int64_t n, const void *vx, const void *vy) {
    const block_q6_K *x = vx;
    const block_q8_K *y = vy;
    int8_t q[QK_K];
    int isum[16], ysum[16];
    double acc = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        q6k_levels(&x[i], q);
        sub_dots(q, y[i].qs, 16, isum, ysum);
        int64_t a = 0;
        for (int j = 0; j < 16; j++) a += (int64_t)x[i].scales[j] * isum[j];
        acc += (double)y[i].d * f16f(x[i].d) * a;
    }
    return (float)acc;
}

/* ---- Q8_K: float d = amax / 127, round to nearest, bsums ---- */

void colloq_q8_K_to_float_ref(const void *vx, float *y, int64_t n) {
    const block_q8_K *b = vx;
    for (int64_t i = 0; i < n / QK_K; i++, b++, y += QK_K)
        for (int e = 0; e < QK_K; e++) y[e] = b->d * (float)b->qs[e];
}
void colloq_q8_K_from_float_ref(const float *x, void *vy, int64_t n) {
    block_q8_K *b = vy;
    for (int64_t i = 0; i < n / QK_K; i++, b++, x += QK_K) {
        float amax = 0;
        for (int e = 0; e < QK_K; e++) amax = fmaxf(amax, fabsf(x[e]));
        b->d = isfinite(amax) ? amax / 127.0f : 0.0f;
        float inv = b->d != 0 ? 127.0f / amax : 0.0f;
        for (int e = 0; e < QK_K; e++) b->qs[e] = (int8_t)q_round_clamp(x[e] * inv, -127, 127);
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += b->qs[16 * j + l];
            b->bsums[j] = (int16_t)s;
        }
    }
}
/* Uses the levels, not bsums, so hand-made blocks with stale bsums still dot exactly. */
float colloq_q8_K_vec_dot_ref(int64_t n, const void *vx, const void *vy) {
    const block_q8_K *x = vx, *y = vy;
    double acc = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int s = 0;
        for (int e = 0; e < QK_K; e++) s += x[i].qs[e] * y[i].qs[e];
        acc += (double)x[i].d * y[i].d * s;
    }
    return (float)acc;
}
