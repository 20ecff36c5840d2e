/*
 * attention.c - causal self-attention of one layer over the rows of a forward pass:
 * grouped-query heads, sliding window, ALiBi, and an online softmax over key tiles read
 * from each sequence's KV cache (kv_rows.c), so memory stays O(tile) for any prompt
 * length.  Work items (kv head x block of positions) are spread over the pool.
 */
#include <math.h>
#include <string.h>

#include "model.h"
#include "util.h"

typedef struct {
    colloq_seq *w;                  /* workspace: q, att, attention scratch */
    const colloq_fwd_group *gr;     /* the sequences whose caches are read */
    int ng, l;
    int split;                      /* parts the heads of a kv group are split into */
    int items[COLLOQ_FWD_MAX_GROUPS + 1];   /* prefix sums of work items per group */
} att_job;

/* Attention inner loops in GCC/Clang generic vectors of 4 floats (SSE2 on any x86-64,
 * NEON on arm64), so they are SIMD without ISA-specific files; tails (head_dim % 4)
 * run scalar.  The summation order is fixed, so results do not depend on threads or
 * on how tokens are batched. */
typedef float    vf4 __attribute__((vector_size(16)));
typedef uint32_t vu4 __attribute__((vector_size(16)));
typedef uint16_t vh4 __attribute__((vector_size(8)));

static inline vf4 vload(const float *p) { vf4 v; memcpy(&v, p, sizeof v); return v; }
static inline void vstore(float *p, vf4 v) { memcpy(p, &v, sizeof v); }

static inline float dot_f32(const float *a, const float *b, int n) {
    vf4 acc0 = { 0 }, acc1 = { 0 }, acc2 = { 0 }, acc3 = { 0 };
    int d = 0;
    for (; d + 16 <= n; d += 16) {
        acc0 += vload(a + d) * vload(b + d);
        acc1 += vload(a + d + 4) * vload(b + d + 4);
        acc2 += vload(a + d + 8) * vload(b + d + 8);
        acc3 += vload(a + d + 12) * vload(b + d + 12);
    }
    for (; d + 4 <= n; d += 4) acc0 += vload(a + d) * vload(b + d);
    acc0 += acc1 + (acc2 + acc3);
    float sum = 0.0f;
    for (; d < n; d++) sum += a[d] * b[d];
    return sum + ((acc0[0] + acc0[1]) + (acc0[2] + acc0[3]));
}

static inline void axpy_f32(float *restrict y, float a, const float *restrict x, int n) {
    int d = 0;
    for (; d + 4 <= n; d += 4) vstore(y + d, vload(y + d) + a * vload(x + d));
    for (; d < n; d++) y[d] += a * x[d];
}

/* ALiBi slope of head h of n (Press et al., as Baichuan 13B defines it): with p the largest
 * power of two <= n, heads h < p get 2^(-8(h+1)/p) and the others the odd-numbered slopes
 * of 2p heads, 2^(-8(2(h-p)+1)/(2p)).  The bias slope * (key position - query position) is
 * added to the scaled scores (the original adds slope * key position: the same softmax). */
static float alibi_slope(int h, int n) {
    int p = 1;
    while (p * 2 <= n) p *= 2;
    if (h < p) return exp2f(-8.0f * (float)(h + 1) / (float)p);
    return exp2f(-8.0f * (float)(2 * (h - p) + 1) / (float)(2 * p));
}

/* One work item: positions [i0, i1) of the chunk for heads [ha, hb), which all read kv
 * head g.  Row r of the item is position i0 + r / nh, head ha + r % nh. */
static void att_item(const att_job *j, const colloq_fwd_group *grp, colloq_att_scratch *a, int g, int ha,
                     int hb, int i0, int i1) {
    const colloq_seq *s = grp->seq, *w = j->w;
    const colloq_hparams *hp = &s->model->hp;
    int hd = hp->head_dim, nh = hb - ha, qdim = hp->n_head * hd;
    int W = hp->sliding_window, pos0 = s->n_past, nr = (i1 - i0) * nh;
    bool alibi = s->model->arch->alibi;
    const float *qrows = w->q + (size_t)grp->row0 * qdim;
    float *orows = w->att + (size_t)grp->row0 * qdim;
    float scale = 1.0f / sqrtf((float)hd);
    for (int r = 0; r < nr; r++) {
        int i = i0 + r / nh, h = ha + r % nh;
        const float *q = qrows + (size_t)i * qdim + (size_t)h * hd;
        for (int d = 0; d < hd; d++) a->q[(size_t)r * hd + d] = q[d] * scale;
        memset(a->acc + (size_t)r * hd, 0, (size_t)hd * sizeof(float));
        a->mx[r] = -INFINITY;
        a->sum[r] = 0.0f;
    }
    int jhi = pos0 + i1 - 1, jlo = W > 0 ? pos0 + i0 - W + 1 : 0;
    if (jlo < 0) jlo = 0;
    for (int t0 = jlo; t0 <= jhi; t0 += COLLOQ_ATT_KTILE) {
        int tn = jhi - t0 + 1 < COLLOQ_ATT_KTILE ? jhi - t0 + 1 : COLLOQ_ATT_KTILE;
        const float *kt, *vt = colloq_kv_load_tile(s, a, j->l, g, t0, tn, &kt);
        for (int r = 0; r < nr; r++) {
            int p = pos0 + i0 + r / nh;                  /* this row's position */
            int lo = W > 0 ? p - W + 1 : 0, hi = p;
            int ta = (lo > t0 ? lo : t0) - t0, tb = (hi < t0 + tn - 1 ? hi : t0 + tn - 1) - t0;
            if (ta > tb) continue;
            const float *q = a->q + (size_t)r * hd;
            float *sc = a->s, *acc = a->acc + (size_t)r * hd;
            float mt = -INFINITY, slope = alibi ? alibi_slope(ha + r % nh, hp->n_head) : 0.0f;
            for (int t = ta; t <= tb; t++) {
                sc[t] = dot_f32(q, kt + (size_t)t * hd, hd) + slope * (float)(t0 + t - p);
                mt = sc[t] > mt ? sc[t] : mt;
            }
            if (mt > a->mx[r]) {                          /* rescale what was accumulated */
                float corr = expf(a->mx[r] - mt);
                a->sum[r] *= corr;
                for (int d = 0; d < hd; d++) acc[d] *= corr;
                a->mx[r] = mt;
            }
            float m = a->mx[r], sum = 0.0f;
            for (int t = ta; t <= tb; t++) {
                float pt = expf(sc[t] - m);
                sum += pt;
                axpy_f32(acc, pt, vt + (size_t)t * hd, hd);
            }
            a->sum[r] += sum;
        }
    }
    for (int r = 0; r < nr; r++) {
        int i = i0 + r / nh, h = ha + r % nh;
        float *o = orows + (size_t)i * qdim + (size_t)h * hd, inv = 1.0f / a->sum[r];
        for (int d = 0; d < hd; d++) o[d] = a->acc[(size_t)r * hd + d] * inv;
    }
}

/* Work items: per sequence, kv head x block of positions, and when that gives fewer
 * items than threads (decode with few kv heads), the heads of a group are split as well.
 * Items are numbered across the sequences (prefix sums in j->items). */
static void att_worker(void *ctx, int ith, int nth) {
    const att_job *j = ctx;
    const colloq_seq *w = j->w;
    const colloq_hparams *hp = &w->model->hp;
    if (ith >= w->n_att_scr) return;                     /* cannot happen: the pool size is fixed */
    colloq_att_scratch *a = &w->att_scr[ith];
    int grp = hp->n_head / hp->n_head_kv, qb = w->att_qb, split = j->split, gi = 0;
    for (int it = ith; it < j->items[j->ng]; it += nth) {
        while (it >= j->items[gi + 1]) gi++;
        const colloq_fwd_group *G = &j->gr[gi];
        int nqb = (G->n + qb - 1) / qb, k = it - j->items[gi];
        int g = k / (nqb * split), b = k / split % nqb, part = k % split;
        int i0 = b * qb, i1 = i0 + qb < G->n ? i0 + qb : G->n;
        int ha = g * grp + grp * part / split, hb = g * grp + grp * (part + 1) / split;
        att_item(j, G, a, g, ha, hb, i0, i1);
    }
}

void colloq_attention(colloq_seq *w, const colloq_fwd_group *gr, int ng, int l) {
    const colloq_hparams *hp = &w->model->hp;
    int nth = colloq_pool_size(w->model->pool), grp = hp->n_head / hp->n_head_kv, base = 0;
    att_job job = { .w = w, .gr = gr, .ng = ng, .l = l, .split = 1 };
    for (int g = 0; g < ng; g++) base += hp->n_head_kv * ((gr[g].n + w->att_qb - 1) / w->att_qb);
    if (base < nth) job.split = (nth + base - 1) / base < grp ? (nth + base - 1) / base : grp;
    job.items[0] = 0;
    for (int g = 0; g < ng; g++)
        job.items[g + 1] = job.items[g] + hp->n_head_kv * ((gr[g].n + w->att_qb - 1) / w->att_qb) * job.split;
    colloq_pool_run(w->model->pool, att_worker, &job);
}