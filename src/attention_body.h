/*
 * attention_body.h - one attention work item (attention_kern.h) written once in GCC/Clang
 * generic vectors and compiled per instruction set: the includer defines VW (floats per
 * vector), ATT_RB x ATT_KC (the register block: query rows x vectors of keys or of value
 * elements), ATT_FN (the exported name) and may define ATT_TRANSPOSE (its own K-tile
 * transpose) and ATT_FMA / ATT_FMAF (fused multiply-adds of vectors / floats: written out,
 * so results do not depend on the compiler contracting a * b + c, i.e. on the build type).  Per key tile of the cache (tiles start at multiples of COLLOQ_ATT_KTILE):
 *   1. K tile transposed into scratch, kT[d][t];
 *   2. scores of a block of rows x all keys: register-blocked, one FMA chain over d per score;
 *   3. per row: mask (causal, window), ALiBi bias, max, the exponentials (att_exp), their sum;
 *   4. P x V: the row block's accumulators += p[t] x V[t] in key order.
 * Every score, exponential, sum and accumulator is computed in an order fixed by the row's
 * position alone, so results do not depend on threads, batching or which rows share an item
 * (rows of a block outside a key's range add p = 0 in step 4, which leaves their sums as
 * they are; only an accumulator that is exactly -0 could turn +0).
 */
#include <math.h>
#include <string.h>

#define KT COLLOQ_ATT_KTILE

typedef float   vf __attribute__((vector_size(VW * 4)));
typedef int32_t vi __attribute__((vector_size(VW * 4)));

#define INL static inline __attribute__((always_inline))

#ifndef ATT_FMA
#define ATT_FMA(a, b, c) ((a) * (b) + (c))
#define ATT_FMAF(a, b, c) ((a) * (b) + (c))
#endif

INL vf vload(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
INL void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }
INL vf splat(float x) {
    vf v;
    for (int i = 0; i < VW; i++) v[i] = x;
    return v;
}
INL vf vsel(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }
INL vf vmax(vf a, vf b) { return vsel(a > b, a, b); }
INL vf iota(void) {
    vf v;
    for (int i = 0; i < VW; i++) v[i] = (float)i;
    return v;
}

/* y[d] = x[d] * f for d < n. */
INL void att_scale(float *y, const float *x, float f, int n) {
    int d = 0;
    for (; d + VW <= n; d += VW) vstore(y + d, vload(x + d) * f);
    for (; d < n; d++) y[d] = x[d] * f;
}

/* Lanes summed / maximised pairwise, halves folded onto each other (a fixed tree). */
INL vf fold(vf v, int w) {
    vi m;
    for (int i = 0; i < VW; i++) m[i] = (i + w) & (VW - 1);
    return __builtin_shuffle(v, m);
}
INL float hsum(vf v) {
#pragma GCC unroll 8
    for (int w = VW / 2; w > 0; w /= 2) v += fold(v, w);
    return v[0];
}
INL float hmax(vf v) {
#pragma GCC unroll 8
    for (int w = VW / 2; w > 0; w /= 2) v = vmax(v, fold(v, w));
    return v[0];
}

/* e^x for x <= 0 (scores minus their running max): x = n ln2 + r with n = round(x log2 e)
 * and |r| <= ln2/2 (ln 2 in two parts, the first exact times n), e^r by its Taylor
 * polynomial of degree 7 (truncation < 6e-9 relative), 2^n put into the exponent bits.
 * Inputs below -87 (and -inf, NaN) give 0: e^-87 = 1.6e-38 next to the row's maximum
 * term 1.  Relative error against exp() in double: < 2e-7 (1.0e-7 measured over [-87, 0] by
 * tests/test_attention.c, which also asserts it). */
INL vf att_exp(vf x) {
    vi keep = x >= -87.0f;
    x = vsel(keep, x, splat(-87.0f));
    vf t = ATT_FMA(x, splat(1.44269504088896341f), splat(12582912.0f));   /* 1.5 x 2^23: rounds */
    vf n = t - 12582912.0f;
    vf r = ATT_FMA(n, splat(-0.693145751953125f), x);
    r = ATT_FMA(n, splat(-1.42860682030941723212e-6f), r);
    vf p = splat(1.0f / 5040.0f);
    p = ATT_FMA(p, r, splat(1.0f / 720.0f));
    p = ATT_FMA(p, r, splat(1.0f / 120.0f));
    p = ATT_FMA(p, r, splat(1.0f / 24.0f));
    p = ATT_FMA(p, r, splat(1.0f / 6.0f));
    p = ATT_FMA(p, r, splat(0.5f));
    p = ATT_FMA(p, r, splat(1.0f));
    p = ATT_FMA(p, r, splat(1.0f));
    vi e = (__builtin_convertvector(n, vi) + 127) << 23;
    return (vf)((vi)(p * (vf)e) & keep);
}

#ifndef ATT_TRANSPOSE
/* kT[d][t] = kt[t][d] for t < tn; keys tn.. of kT are zero (their scores are masked). */
static void att_transpose(const float *restrict kt, int tn, int hd, float *restrict kT) {
    for (int t = 0; t < tn; t++)
        for (int d = 0; d < hd; d++) kT[(size_t)d * KT + t] = kt[(size_t)t * hd + d];
    if (tn < KT)
        for (int d = 0; d < hd; d++) memset(kT + (size_t)d * KT + tn, 0, (size_t)(KT - tn) * sizeof(float));
}
#define ATT_TRANSPOSE att_transpose
#endif

/* Scores of rows [0, RB) (queries q, stride hd) against key vectors [0, nk) of kT (nk a
 * multiple of ATT_KC) into S (stride KT): s = sum over d in order of q[d] * k[d]. */
INL void att_scores(const float *q, int hd, const float *kT, int nk, float *S, const int RB) {
    for (int k0 = 0; k0 < nk; k0 += ATT_KC) {
        vf acc[ATT_RB][ATT_KC];
#pragma GCC unroll 8
        for (int rr = 0; rr < RB; rr++)
#pragma GCC unroll 8
            for (int c = 0; c < ATT_KC; c++) acc[rr][c] = splat(0.0f);
        for (int d = 0; d < hd; d++) {
            vf kv[ATT_KC];
#pragma GCC unroll 8
            for (int c = 0; c < ATT_KC; c++) kv[c] = vload(kT + (size_t)d * KT + (k0 + c) * VW);
#pragma GCC unroll 8
            for (int rr = 0; rr < RB; rr++) {
                vf qb = splat(q[(size_t)rr * hd + d]);
#pragma GCC unroll 8
                for (int c = 0; c < ATT_KC; c++) acc[rr][c] = ATT_FMA(qb, kv[c], acc[rr][c]);
            }
        }
#pragma GCC unroll 8
        for (int rr = 0; rr < RB; rr++)
#pragma GCC unroll 8
            for (int c = 0; c < ATT_KC; c++) vstore(S + (size_t)rr * KT + (k0 + c) * VW, acc[rr][c]);
    }
}

/* acc rows [0, RB) (stride hd) += P[r][t] x V[t] for t in [ta, tb], elements [d0, d0 + NC*VW). */
INL void att_pv(const float *P, const float *vt, int hd, int ta, int tb, float *acc, int d0, const int RB,
                const int NC) {
    vf a[ATT_RB][ATT_KC];
#pragma GCC unroll 8
    for (int rr = 0; rr < RB; rr++)
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) a[rr][c] = vload(acc + (size_t)rr * hd + d0 + c * VW);
    for (int t = ta; t <= tb; t++) {
        vf v[ATT_KC];
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) v[c] = vload(vt + (size_t)t * hd + d0 + c * VW);
#pragma GCC unroll 8
        for (int rr = 0; rr < RB; rr++) {
            vf pb = splat(P[(size_t)rr * KT + t]);
#pragma GCC unroll 8
            for (int c = 0; c < NC; c++) a[rr][c] = ATT_FMA(pb, v[c], a[rr][c]);
        }
    }
#pragma GCC unroll 8
    for (int rr = 0; rr < RB; rr++)
#pragma GCC unroll 8
        for (int c = 0; c < NC; c++) vstore(acc + (size_t)rr * hd + d0 + c * VW, a[rr][c]);
}

/* Every element of acc rows [0, RB) for keys [ta, tb]: full blocks of ATT_KC vectors, then
 * single vectors, then the hd % VW tail one element at a time. */
INL void att_pv_rows(const float *P, const float *vt, int hd, int ta, int tb, float *acc, const int RB) {
    int d = 0;
    for (; d + ATT_KC * VW <= hd; d += ATT_KC * VW) att_pv(P, vt, hd, ta, tb, acc, d, RB, ATT_KC);
    for (; d + VW <= hd; d += VW) att_pv(P, vt, hd, ta, tb, acc, d, RB, 1);
    for (; d < hd; d++)
        for (int rr = 0; rr < RB; rr++) {
            float s = acc[(size_t)rr * hd + d];
            for (int t = ta; t <= tb; t++) s = ATT_FMAF(P[(size_t)rr * KT + t], vt[(size_t)t * hd + d], s);
            acc[(size_t)rr * hd + d] = s;
        }
}

/* ALiBi slope of head h of n (Press et al., as Baichuan 13B defines it): with p the largest
 * power of two <= n, heads h < p get 2^(-8(h+1)/p) and the others the odd-numbered slopes
 * of 2p heads, 2^(-8(2(h-p)+1)/(2p)).  The bias slope * (key position - query position) is
 * added to the scaled scores (the original adds slope * key position: the same softmax). */
static float att_alibi_slope(int h, int n) {
    int p = 1;
    while (p * 2 <= n) p *= 2;
    if (h < p) return exp2f(-8.0f * (float)(h + 1) / (float)p);
    return exp2f(-8.0f * (float)(2 * (h - p) + 1) / (float)(2 * p));
}

/* Step 3 for row r: scores S (nk vectors) -> exponentials, updating the running max, sum
 * and (rescaled) accumulator.  Keys outside [ta, tb] get p = 0. */
static void att_softmax_row(colloq_att_scratch *a, int r, int hd, int nk, int ta, int tb, float bias0,
                            float slope) {
    float *S = a->s + (size_t)r * KT;
    vf lane = iota(), mv = splat(-INFINITY);
    for (int k = 0; k < nk; k++) {
        vf idx = lane + (float)(k * VW), v = vload(S + k * VW);
        if (slope != 0.0f) v = ATT_FMA(splat(slope), idx + bias0, v);
        v = vsel((idx >= (float)ta) & (idx <= (float)tb), v, splat(-INFINITY));
        vstore(S + k * VW, v);
        mv = vmax(mv, v);
    }
    float mt = hmax(mv);
    if (mt > a->mx[r]) {                                  /* rescale what was accumulated */
        float corr = att_exp(splat(a->mx[r] - mt))[0];
        float *acc = a->acc + (size_t)r * hd;
        a->sum[r] *= corr;
        att_scale(acc, acc, corr, hd);
        a->mx[r] = mt;
    }
    vf m = splat(a->mx[r]), sum = splat(0.0f);
    for (int k = 0; k < nk; k++) {
        vf p = att_exp(vload(S + k * VW) - m);
        vstore(S + k * VW, p);
        sum += p;
    }
    a->sum[r] += hsum(sum);
}

/* The keys [*ta, *tb] of tile [t0, t0 + tn) that position p attends to (tile-relative;
 * empty when *ta > *tb); returns p. */
INL int att_range(int p, int W, int t0, int tn, int *ta, int *tb) {
    int lo = W > 0 ? p - W + 1 : 0;
    *ta = (lo > t0 ? lo : t0) - t0;
    *tb = (p < t0 + tn - 1 ? p : t0 + tn - 1) - t0;
    return p;
}

void ATT_FN(const colloq_att_item *it) {
    const colloq_seq *s = it->s;
    colloq_att_scratch *a = it->a;
    const colloq_hparams *hp = &s->model->hp;
    int hd = hp->head_dim, nh = it->hb - it->ha, qdim = hp->n_head * hd, i0 = it->i0, i1 = it->i1;
    int W = hp->sliding_window, pos0 = s->n_past, nr = (i1 - i0) * nh;
    bool alibi = s->model->arch->alibi;
    float scale = 1.0f / sqrtf((float)hd);
    for (int r = 0; r < nr; r++) {
        int i = i0 + r / nh, h = it->ha + r % nh;
        att_scale(a->q + (size_t)r * hd, it->q + (size_t)i * qdim + (size_t)h * hd, scale, hd);
        memset(a->acc + (size_t)r * hd, 0, (size_t)hd * sizeof(float));
        a->mx[r] = -INFINITY;
        a->sum[r] = 0.0f;
    }
    int jhi = pos0 + i1 - 1, jlo = W > 0 ? pos0 + i0 - W + 1 : 0;
    if (jlo < 0) jlo = 0;
    for (int t0 = jlo - jlo % KT; t0 <= jhi; t0 += KT) {
        int tn = jhi - t0 + 1 < KT ? jhi - t0 + 1 : KT;
        int nk = ((tn + VW * ATT_KC - 1) / (VW * ATT_KC)) * ATT_KC;
        const float *kt, *vt = colloq_kv_load_tile(s, a, it->l, it->g, t0, tn, &kt);
        ATT_TRANSPOSE(kt, tn, hd, a->kT);
        int r = 0;
        for (; r + ATT_RB <= nr; r += ATT_RB)
            att_scores(a->q + (size_t)r * hd, hd, a->kT, nk, a->s + (size_t)r * KT, ATT_RB);
        for (; r < nr; r++) att_scores(a->q + (size_t)r * hd, hd, a->kT, nk, a->s + (size_t)r * KT, 1);
        for (r = 0; r < nr; r++) {
            int ta, tb, p = att_range(pos0 + i0 + r / nh, W, t0, tn, &ta, &tb);
            if (ta > tb) {
                memset(a->s + (size_t)r * KT, 0, KT * sizeof(float));
                continue;
            }
            float slope = alibi ? att_alibi_slope(it->ha + r % nh, hp->n_head) : 0.0f;
            att_softmax_row(a, r, hd, nk, ta, tb, (float)(t0 - p), slope);
        }
        for (r = 0; r < nr;) {
            int rb = r + ATT_RB <= nr ? ATT_RB : 1, ta = KT, tb = -1;
            for (int rr = r; rr < r + rb; rr++) {                 /* the block's union of keys */
                int lo, hi;
                att_range(pos0 + i0 + rr / nh, W, t0, tn, &lo, &hi);
                if (lo > hi) continue;
                ta = lo < ta ? lo : ta;
                tb = hi > tb ? hi : tb;
            }
            if (ta <= tb && rb == ATT_RB)
                att_pv_rows(a->s + (size_t)r * KT, vt, hd, ta, tb, a->acc + (size_t)r * hd, ATT_RB);
            else if (ta <= tb)
                att_pv_rows(a->s + (size_t)r * KT, vt, hd, ta, tb, a->acc + (size_t)r * hd, 1);
            r += rb;
        }
    }
    for (int r = 0; r < nr; r++) {
        int i = i0 + r / nh, h = it->ha + r % nh;
        att_scale(it->o + (size_t)i * qdim + (size_t)h * hd, a->acc + (size_t)r * hd, 1.0f / a->sum[r], hd);
    }
}
