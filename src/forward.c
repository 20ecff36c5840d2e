/*
 * forward.c - the decoder forward pass over a batch of tokens, driven by the
 * architecture descriptor (norm kind, RoPE style, FFN kind, parallel block, biases):
 * embeddings, per layer the attention block (projections, RoPE, storing K/V through
 * kv_rows.c, attention.c) and FFN, the final norm and the logits.  The rows of one pass
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
    const colloq_mat *w[2] = { &L->ffn_up, &L->ffn_gate };
    float *const out2[2] = { s->up, s->gate };
    colloq_matmul_multi(w, out2, m->arch->ffn == COLLOQ_FFN_SWIGLU ? 2 : 1, in, n, s->mm_scratch, m->pool);
    add_bias(s->up, L->ffn_up_b, n, ff);
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
        const colloq_mat *qkv[3] = { &L->wq, &L->wk, &L->wv };
        float *const qkv_out[3] = { s->q, s->k, s->v };
        colloq_matmul_multi(qkv, qkv_out, 3, s->xn, n, s->mm_scratch, pool);
        add_bias(s->q, L->bq, n, qd);
        add_bias(s->k, L->bk, n, kvd);
        add_bias(s->v, L->bv, n, kvd);
        if (m->arch->rope != COLLOQ_ROPE_NONE) {
            rope_apply(s, s->q, n, hp->n_head);
            rope_apply(s, s->k, n, hp->n_head_kv);
        }
        for (int g = 0; g < ng; g++) colloq_kv_store(s, gr[g].seq, l, gr[g].row0, gr[g].n);
        colloq_attention(s, gr, ng, l);
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
