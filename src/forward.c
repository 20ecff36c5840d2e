/*
 * forward.c - the decoder forward pass over a batch of tokens, driven by the
 * architecture descriptor (norm kind, RoPE style, FFN kind, parallel block, biases):
 * embeddings, per layer attention (RoPE, grouped-query, causal + sliding window, online
 * softmax over key tiles) and FFN, the final norm and the logits.  The rows of one pass
 * may belong to several sequences (colloq_forward_groups): every matmul runs over all
 * rows, attention per sequence over its own KV cache.  Works in the buffers
 * colloq_seq_init allocated: never allocates, never does I/O.
 */
#include <math.h>
#include <string.h>

#include "model.h"
#include "util.h"

int colloq_forward_check_arch(const colloq_arch *a, colloq_err *err) {
    /* ALiBi is done in att_item; a fused QKV arrives as three row views bound by the arch file */
    if (a->alibi && a->rope != COLLOQ_ROPE_NONE)
        return colloq_seterr(err, COLLOQ_ERR_UNSUPPORTED, "architecture '%s': ALiBi together with RoPE is "
                             "not implemented", a->name);
    return COLLOQ_OK;
}

/* ---- element-wise pieces ---- */

/* out[i] = norm(x[i]) * g (+ b) for rows [i0, i1) of dim. */
static void norm_range(const colloq_model *m, const float *x, float *out, int i0, int i1,
                       const float *g, const float *b) {
    int dim = m->hp.dim;
    double eps = m->hp.norm_eps;
    for (int i = i0; i < i1; i++) {
        const float *xi = x + (size_t)i * dim;
        float *oi = out + (size_t)i * dim;
        double mean = 0.0, ss = 0.0;
        if (m->arch->norm == COLLOQ_NORM_LAYER) {
            for (int d = 0; d < dim; d++) mean += xi[d];
            mean /= dim;
        }
        for (int d = 0; d < dim; d++) {
            double c = xi[d] - mean;
            ss += c * c;
        }
        float scale = (float)(1.0 / sqrt(ss / dim + eps)), fm = (float)mean;
        for (int d = 0; d < dim; d++) oi[d] = (xi[d] - fm) * scale * g[d];
        if (b)
            for (int d = 0; d < dim; d++) oi[d] += b[d];
    }
}

typedef struct {
    const colloq_model *m;
    const float *x, *g, *b;
    float *out;
    int n;
} norm_job;

static void norm_worker(void *ctx, int ith, int nth) {
    const norm_job *j = ctx;
    norm_range(j->m, j->x, j->out, j->n * ith / nth, j->n * (ith + 1) / nth, j->g, j->b);
}

/* Rows split over the pool when there are several. */
static void norm_rows(const colloq_model *m, const float *x, float *out, int n,
                      const float *g, const float *b) {
    if (n < 2) {
        norm_range(m, x, out, 0, n, g, b);
        return;
    }
    norm_job job = { .m = m, .x = x, .g = g, .b = b, .out = out, .n = n };
    colloq_pool_run(m->pool, norm_worker, &job);
}

static void add_bias(float *y, const float *b, int n, int width) {
    if (!b) return;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < width; j++) y[(size_t)i * width + j] += b[j];
}

static void add_into(float *x, const float *y, size_t count) {
    for (size_t i = 0; i < count; i++) x[i] += y[i];
}

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

/* ---- RoPE ---- */

/* cos/sin of every row's position (row row0 + i of group g is at g->seq->n_past + i). */
static void rope_tables(colloq_seq *s, const colloq_fwd_group *gr, int ng) {
    const colloq_hparams *hp = &s->model->hp;
    int half = hp->rope_dim / 2;
    for (int g = 0; g < ng; g++)
        for (int i = 0; i < gr[g].n; i++) {
            size_t row = (size_t)(gr[g].row0 + i);
            double p = (double)(gr[g].seq->n_past + i) * (double)hp->rope_scale;
            for (int r = 0; r < half; r++) {
                double a = p * s->inv_freq[r];
                s->rope_cos[row * half + r] = (float)cos(a);
                s->rope_sin[row * half + r] = (float)sin(a);
            }
        }
}

/* Rotate the first rope_dim elements of each of n_heads heads in n rows. */
static void rope_apply(const colloq_seq *s, float *v, int n, int n_heads) {
    const colloq_hparams *hp = &s->model->hp;
    int half = hp->rope_dim / 2, hd = hp->head_dim;
    bool adjacent = s->model->arch->rope == COLLOQ_ROPE_ADJACENT;
    for (int i = 0; i < n; i++) {
        const float *c = s->rope_cos + (size_t)i * half, *sn = s->rope_sin + (size_t)i * half;
        for (int h = 0; h < n_heads; h++) {
            float *x = v + ((size_t)i * n_heads + h) * hd;
            for (int r = 0; r < half; r++) {
                int a = adjacent ? 2 * r : r, b = adjacent ? 2 * r + 1 : r + half;
                float x0 = x[a], x1 = x[b];
                x[a] = x0 * c[r] - x1 * sn[r];
                x[b] = x0 * sn[r] + x1 * c[r];
            }
        }
    }
}

/* ---- KV cache ---- */

/* Element offset of (layer l, kv head g, position p) in the cache. */
static size_t kv_index(const colloq_seq *s, int l, int g, int p) {
    const colloq_hparams *hp = &s->model->hp;
    return (((size_t)l * hp->n_head_kv + g) * (size_t)s->n_ctx + (size_t)p) * (size_t)hp->head_dim;
}

/* Rows [row0, row0 + n) of the workspace w's k/v into s's cache at positions s->n_past.. */
static void kv_store(const colloq_seq *w, colloq_seq *s, int l, int row0, int n) {
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

/* ---- attention ---- */

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

/* Key tile [t0, t0 + tn) of kv head g as floats: *k and the returned V rows
 * ([tn][head_dim]); views into an F32 cache, converted into scratch for F16. */
static const float *att_load_tile(const colloq_seq *s, colloq_att_scratch *a, int l, int g, int t0, int tn,
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
        const float *kt, *vt = att_load_tile(s, a, j->l, g, t0, tn, &kt);
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

static void attention(colloq_seq *w, const colloq_fwd_group *gr, int ng, int l) {
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

/* ---- FFN ---- */

static float silu(float x) { return x / (1.0f + expf(-x)); }
static float gelu(float x) {
    return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}
static float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

/* The activation over [0, cnt) split in contiguous ranges over the pool. */
typedef struct {
    const colloq_seq *s;
    size_t cnt;
} act_job;

static void act_worker(void *ctx, int ith, int nth) {
    const act_job *j = ctx;
    float *up = j->s->up;
    const float *gate = j->s->gate;
    size_t e0 = j->cnt * (size_t)ith / (size_t)nth, e1 = j->cnt * (size_t)(ith + 1) / (size_t)nth;
    if (j->s->model->arch->ffn == COLLOQ_FFN_SWIGLU)
        for (size_t e = e0; e < e1; e++) up[e] *= silu(gate[e]);
    else if (j->s->model->arch->ffn == COLLOQ_FFN_GELU_ERF)
        for (size_t e = e0; e < e1; e++) up[e] = gelu_erf(up[e]);
    else
        for (size_t e = e0; e < e1; e++) up[e] = gelu(up[e]);
}

/* out = FFN(in) for n rows. */
static void ffn(colloq_seq *s, const colloq_layer *L, const float *in, float *out, int n) {
    colloq_model *m = s->model;
    int ff = m->hp.n_ff;
    colloq_matmul(&L->ffn_up, in, n, s->up, s->mm_scratch, m->pool);
    add_bias(s->up, L->ffn_up_b, n, ff);
    if (m->arch->ffn == COLLOQ_FFN_SWIGLU)
        colloq_matmul(&L->ffn_gate, in, n, s->gate, s->mm_scratch, m->pool);
    act_job job = { .s = s, .cnt = (size_t)n * ff };
    colloq_pool_run(m->pool, act_worker, &job);
    colloq_matmul(&L->ffn_down, s->up, n, out, s->mm_scratch, m->pool);
    add_bias(out, L->ffn_down_b, n, m->hp.dim);
}

/* ---- one pass ---- */

void colloq_forward_groups(colloq_seq *s, const colloq_fwd_group *gr, int ng, const colloq_token *toks) {
    colloq_model *m = s->model;
    const colloq_hparams *hp = &m->hp;
    colloq_pool *pool = m->pool;
    int dim = hp->dim, qd = hp->n_head * hp->head_dim, kvd = hp->n_head_kv * hp->head_dim;
    int n = 0;
    for (int g = 0; g < ng; g++) n += gr[g].n;
    size_t cnt = (size_t)n * dim;

    for (int i = 0; i < n; i++) colloq_mat_get_row(&m->tok_embd, toks[i], s->x + (size_t)i * dim);
    if (m->arch->rope != COLLOQ_ROPE_NONE) rope_tables(s, gr, ng);

    for (int l = 0; l < hp->n_layer; l++) {
        const colloq_layer *L = &m->layers[l];
        norm_rows(m, s->x, s->xn, n, L->attn_norm, L->attn_norm_b);
        colloq_matmul(&L->wq, s->xn, n, s->q, s->mm_scratch, pool);
        colloq_matmul(&L->wk, s->xn, n, s->k, s->mm_scratch, pool);
        colloq_matmul(&L->wv, s->xn, n, s->v, s->mm_scratch, pool);
        add_bias(s->q, L->bq, n, qd);
        add_bias(s->k, L->bk, n, kvd);
        add_bias(s->v, L->bv, n, kvd);
        if (m->arch->rope != COLLOQ_ROPE_NONE) {
            rope_apply(s, s->q, n, hp->n_head);
            rope_apply(s, s->k, n, hp->n_head_kv);
        }
        for (int g = 0; g < ng; g++) kv_store(s, gr[g].seq, l, gr[g].row0, gr[g].n);
        attention(s, gr, ng, l);
        colloq_matmul(&L->wo, s->att, n, s->tmp, s->mm_scratch, pool);
        add_bias(s->tmp, L->bo, n, dim);
        if (m->arch->parallel_block) {
            /* both branches read the layer input: the FFN uses its own norm when it has one */
            if (L->ffn_norm) norm_rows(m, s->x, s->xn, n, L->ffn_norm, L->ffn_norm_b);
            ffn(s, L, s->xn, s->tmp2, n);
            add_into(s->x, s->tmp, cnt);
            add_into(s->x, s->tmp2, cnt);
        } else {
            add_into(s->x, s->tmp, cnt);
            norm_rows(m, s->x, s->xn, n, L->ffn_norm, L->ffn_norm_b);
            ffn(s, L, s->xn, s->tmp, n);
            add_into(s->x, s->tmp, cnt);
        }
    }
    for (int g = 0; g < ng; g++) gr[g].seq->n_past += gr[g].n;
}

/* Logit rows times the model's per-token factor (a normalised output head), if any. */
static void scale_logits(const colloq_model *m, float *logits, int n_rows) {
    if (!m->output_scale) return;
    int nv = m->hp.n_vocab;
    for (int i = 0; i < n_rows; i++)
        for (int v = 0; v < nv; v++) logits[(size_t)i * nv + v] *= m->output_scale[v];
}

void colloq_forward_logits(colloq_seq *s, const int *rows, int n_rows, float *logits) {
    colloq_model *m = s->model;
    int dim = m->hp.dim;
    for (int i = 0; i < n_rows; i++)
        norm_range(m, s->x + (size_t)rows[i] * dim, s->xn + (size_t)i * dim, 0, 1, m->output_norm,
                   m->output_norm_b);
    colloq_matmul(&m->output, s->xn, n_rows, logits, s->mm_scratch, m->pool);
    scale_logits(m, logits, n_rows);
}

void colloq_forward_chunk(colloq_seq *s, const colloq_token *toks, int n, float *logits,
                          bool all_logits, bool want_last) {
    colloq_model *m = s->model;
    colloq_fwd_group g = { .seq = s, .row0 = 0, .n = n };
    colloq_forward_groups(s, &g, 1, toks);
    if (all_logits) {
        norm_rows(m, s->x, s->xn, n, m->output_norm, m->output_norm_b);
        colloq_matmul(&m->output, s->xn, n, logits, s->mm_scratch, m->pool);
        scale_logits(m, logits, n);
    } else if (want_last) {
        int last = n - 1;
        colloq_forward_logits(s, &last, 1, logits);
    }
}

/* ---- public entry ---- */

int colloq_seq_eval(colloq_seq *s, const colloq_token *toks, int n, float *logits,
                    bool all_logits, colloq_err *err) {
    if (!s) return colloq_seterr(err, COLLOQ_ERR_ARG, "colloq_seq_eval: no sequence");
    if (n < 0 || (n > 0 && !toks))
        return colloq_seterr(err, COLLOQ_ERR_ARG, "colloq_seq_eval: bad token array (n = %d)", n);
    if (n == 0) return COLLOQ_OK;
    if (n > s->n_ctx - s->n_past)
        return colloq_seterr(err, COLLOQ_ERR_CONTEXT, "context window full: %d positions used + %d new "
                             "tokens exceed n_ctx %d", s->n_past, n, s->n_ctx);
    colloq_model *m = s->model;
    int nv = m->hp.n_vocab;
    for (int i = 0; i < n; i++)
        if (toks[i] < 0 || toks[i] >= nv)
            return colloq_seterr(err, COLLOQ_ERR_ARG, "token id %d at index %d is out of range (n_vocab %d)",
                                 (int)toks[i], i, nv);
    pthread_mutex_lock(&m->eval_lock);
    for (int c0 = 0; c0 < n; c0 += s->chunk) {
        int nc = n - c0 < s->chunk ? n - c0 : s->chunk;
        bool last = c0 + nc == n;
        float *lg = logits && all_logits ? logits + (size_t)c0 * nv : logits;
        colloq_forward_chunk(s, toks + c0, nc, lg, logits && all_logits, logits && !all_logits && last);
    }
    pthread_mutex_unlock(&m->eval_lock);
    return COLLOQ_OK;
}
