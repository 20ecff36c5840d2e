/*
 * test_model.c - model loading and the forward pass at the C level: tiny llama models
 * written with the GGUF writer (random weights, a byte-token vocabulary), compared with
 * a naive float64 forward pass written here; batch vs one-token evaluation, truncate and
 * re-evaluate, the context limit, thread-count independence, load errors with precise
 * messages (missing tensor, wrong shape or type, inconsistent hyper-parameters), and
 * failing allocations.
 * usage: test_model TMPDIR
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "colloq.h"
#include "gguf.h"
#include "model.h"
#include "quant.h"
#include "util.h"

static int failures;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
                              fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static char dir[512];

static const char *tmp_path(const char *name) {
    static char bufs[4][640];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

/* ------------------------------------------------------------------ tiny models */

typedef struct {
    int dim, n_layer, n_head, n_kv, ff, ctx, window;
    float factor;          /* linear RoPE scaling factor (1 = none) */
    float eps, base;
    bool tied;
    uint32_t wtype;        /* type of the 2-D weights */
    uint64_t seed;
} tparams;

#define NV 259             /* <unk> <s> </s> + 256 byte tokens */

static tparams tp_default(void) {
    tparams p = { .dim = 64, .n_layer = 2, .n_head = 4, .n_kv = 2, .ff = 96, .ctx = 512, .window = 0,
                  .factor = 1.0f, .eps = 1e-5f, .base = 10000.0f, .tied = false, .wtype = CT_F32, .seed = 1 };
    return p;
}

typedef struct {
    char     name[64];
    int64_t  ne[2];
    uint32_t type;
    float   *f;            /* values as the engine sees them (after the type's rounding) */
    void    *bytes;
    uint64_t nbytes;
    bool     removed;
} ttensor;

typedef struct {
    tparams  p;
    ttensor  t[64];
    int      n;
    uint64_t rng;
} tmodel;

static double rnd(tmodel *m) {           /* uniform in [-1, 1) */
    m->rng ^= m->rng << 13;
    m->rng ^= m->rng >> 7;
    m->rng ^= m->rng << 17;
    return (double)(m->rng >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* Encode f into type (replacing f by what the type stores). */
static void tt_encode(ttensor *t) {
    const colloq_type_traits *tr = colloq_type_get(t->type);
    int64_t n = t->ne[0] * t->ne[1];
    colloq_type_row_size(t->type, t->ne[0], &t->nbytes);
    t->nbytes *= (uint64_t)t->ne[1];
    free(t->bytes);
    t->bytes = malloc(t->nbytes);
    tr->from_float(t->f, t->bytes, n);
    tr->to_float(t->bytes, t->f, n);
}

static ttensor *tm_add(tmodel *m, const char *name, int64_t ne0, int64_t ne1, uint32_t type, bool norm) {
    ttensor *t = &m->t[m->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->type = type;
    t->f = malloc((size_t)(ne0 * ne1) * sizeof(float));
    double scale = norm ? 0.2 : 1.0 / sqrt((double)ne0);
    for (int64_t i = 0; i < ne0 * ne1; i++) t->f[i] = (float)(norm ? 1.0 + scale * rnd(m) : scale * rnd(m) * 1.7);
    if (!strcmp(name, "token_embd.weight"))
        for (int64_t i = 0; i < ne0 * ne1; i++) t->f[i] = (float)rnd(m);
    tt_encode(t);
    return t;
}

static ttensor *tm_get(tmodel *m, const char *name) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->t[i].name, name) && !m->t[i].removed) return &m->t[i];
    return NULL;
}

static void tm_build(tmodel *m, const tparams *p) {
    memset(m, 0, sizeof *m);
    m->p = *p;
    m->rng = 0x9e3779b97f4a7c15ull ^ p->seed;
    int hd = p->dim / p->n_head;
    tm_add(m, "token_embd.weight", p->dim, NV, p->wtype, false);
    tm_add(m, "output_norm.weight", p->dim, 1, CT_F32, true);
    if (!p->tied) tm_add(m, "output.weight", p->dim, NV, p->wtype, false);
    for (int l = 0; l < p->n_layer; l++) {
        char n[64];
#define ADD(s, a, b, ty, nm) (snprintf(n, sizeof n, "blk.%d." s, l), tm_add(m, n, a, b, ty, nm))
        ADD("attn_norm.weight", p->dim, 1, CT_F32, true);
        ADD("attn_q.weight", p->dim, p->n_head * hd, p->wtype, false);
        ADD("attn_k.weight", p->dim, p->n_kv * hd, p->wtype, false);
        ADD("attn_v.weight", p->dim, p->n_kv * hd, p->wtype, false);
        ADD("attn_output.weight", p->n_head * hd, p->dim, p->wtype, false);
        ADD("ffn_norm.weight", p->dim, 1, CT_F32, true);
        ADD("ffn_gate.weight", p->dim, p->ff, p->wtype, false);
        ADD("ffn_up.weight", p->dim, p->ff, p->wtype, false);
        ADD("ffn_down.weight", p->ff, p->dim, p->wtype, false);
#undef ADD
    }
}

static void tm_free(tmodel *m) {
    for (int i = 0; i < m->n; i++) { free(m->t[i].f); free(m->t[i].bytes); }
    m->n = 0;
}

/* Replace a tensor's shape (new random contents). */
static void tm_reshape(tmodel *m, const char *name, int64_t ne0, int64_t ne1) {
    ttensor *t = tm_get(m, name);
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    free(t->f);
    t->f = calloc((size_t)(ne0 * ne1), sizeof(float));
    tt_encode(t);
}

static void tm_retype(tmodel *m, const char *name, uint32_t type) {
    ttensor *t = tm_get(m, name);
    t->type = type;
    tt_encode(t);
}

typedef void (*kv_edit_fn)(gguf_writer *w);

static void set_vocab(gguf_writer *w) {
    static char texts[NV][8];
    const char *tok[NV];
    float scores[NV];
    int32_t types[NV];
    for (int i = 0; i < NV; i++) {
        if (i == 0) snprintf(texts[i], 8, "<unk>");
        else if (i == 1) snprintf(texts[i], 8, "<s>");
        else if (i == 2) snprintf(texts[i], 8, "</s>");
        else snprintf(texts[i], 8, "<0x%02X>", i - 3);
        tok[i] = texts[i];
        scores[i] = 0.0f;
        types[i] = i == 0 ? 2 : i < 3 ? 3 : 6;
    }
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tok, NV);
    gguf_writer_set_arr_num(w, "tokenizer.ggml.scores", GGUF_T_FLOAT32, scores, NV);
    gguf_writer_set_arr_num(w, "tokenizer.ggml.token_type", GGUF_T_INT32, types, NV);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
}

static bool tm_write(const tmodel *m, const char *path, kv_edit_fn edit) {
    const tparams *p = &m->p;
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_str(w, "general.name", "test tiny");
    gguf_writer_set_u32(w, "llama.context_length", (uint32_t)p->ctx);
    gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)p->dim);
    gguf_writer_set_u32(w, "llama.block_count", (uint32_t)p->n_layer);
    gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)p->ff);
    gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)p->n_head);
    gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)p->n_kv);
    gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", p->eps);
    gguf_writer_set_f32(w, "llama.rope.freq_base", p->base);
    if (p->factor != 1.0f) {
        gguf_writer_set_str(w, "llama.rope.scaling.type", "linear");
        gguf_writer_set_f32(w, "llama.rope.scaling.factor", p->factor);
    }
    if (p->window) gguf_writer_set_u32(w, "llama.attention.sliding_window", (uint32_t)p->window);
    set_vocab(w);
    if (edit) edit(w);
    for (int i = 0; i < m->n; i++) {
        const ttensor *t = &m->t[i];
        if (t->removed) continue;
        gguf_writer_add_tensor(w, t->name, t->type, t->ne[1] == 1 ? 1 : 2, t->ne, t->bytes, t->nbytes);
    }
    colloq_err err = { { 0 } };
    int rc = gguf_writer_write(w, path, 0, &err);
    gguf_writer_free(w);
    CHECK(rc == COLLOQ_OK, "writing %s: %s", path, err.msg);
    return rc == COLLOQ_OK;
}

/* ------------------------------------------------------------------ float64 reference */

static void ref_rmsnorm(const double *x, const float *g, double *out, int dim, double eps) {
    double ss = 0;
    for (int d = 0; d < dim; d++) ss += x[d] * x[d];
    double s = 1.0 / sqrt(ss / dim + eps);
    for (int d = 0; d < dim; d++) out[d] = x[d] * s * g[d];
}

/* y[r] = sum_c W[r][c] x[c], W = tensor [k, rows] */
static void ref_matvec(const ttensor *w, const double *x, double *y) {
    for (int64_t r = 0; r < w->ne[1]; r++) {
        double acc = 0;
        for (int64_t c = 0; c < w->ne[0]; c++) acc += (double)w->f[r * w->ne[0] + c] * x[c];
        y[r] = acc;
    }
}

static void ref_rope(double *v, int n_heads, int hd, double pos, double base) {
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; 2 * i < hd; i++) {
            double th = pos * pow(base, -2.0 * i / hd);
            double *x = v + h * hd + 2 * i, a = x[0], b = x[1];
            x[0] = a * cos(th) - b * sin(th);
            x[1] = a * sin(th) + b * cos(th);
        }
}

/* Logits of all n positions (n x NV), from position 0. */
static void ref_forward(tmodel *m, const colloq_token *toks, int n, double *logits) {
    const tparams *p = &m->p;
    int dim = p->dim, hd = dim / p->n_head, qd = p->n_head * hd, kvd = p->n_kv * hd, grp = p->n_head / p->n_kv;
    double *x = calloc((size_t)n * dim, sizeof(double)), *xn = calloc((size_t)dim, sizeof(double));
    double *q = calloc((size_t)n * qd, sizeof(double)), *k = calloc((size_t)n * kvd, sizeof(double));
    double *v = calloc((size_t)n * kvd, sizeof(double)), *att = calloc((size_t)qd, sizeof(double));
    double *o = calloc((size_t)dim, sizeof(double)), *g = calloc((size_t)p->ff, sizeof(double));
    double *u = calloc((size_t)p->ff, sizeof(double)), *sc = calloc((size_t)n, sizeof(double));
    const ttensor *emb = tm_get(m, "token_embd.weight");
    for (int i = 0; i < n; i++)
        for (int d = 0; d < dim; d++) x[i * dim + d] = emb->f[(size_t)toks[i] * dim + d];
    for (int l = 0; l < p->n_layer; l++) {
        char nm[64];
#define T(s) (snprintf(nm, sizeof nm, "blk.%d." s, l), tm_get(m, nm))
        for (int i = 0; i < n; i++) {
            ref_rmsnorm(x + i * dim, T("attn_norm.weight")->f, xn, dim, p->eps);
            ref_matvec(T("attn_q.weight"), xn, q + i * qd);
            ref_matvec(T("attn_k.weight"), xn, k + i * kvd);
            ref_matvec(T("attn_v.weight"), xn, v + i * kvd);
            ref_rope(q + i * qd, p->n_head, hd, i / (double)p->factor, p->base);
            ref_rope(k + i * kvd, p->n_kv, hd, i / (double)p->factor, p->base);
        }
        /* attention uses every position's k/v, so the residual update comes after */
        double *xnew = calloc((size_t)n * dim, sizeof(double));
        for (int i = 0; i < n; i++) {
            for (int h = 0; h < p->n_head; h++) {
                int kh = h / grp, lo = p->window ? i - p->window + 1 : 0;
                if (lo < 0) lo = 0;
                double mx = -INFINITY, sum = 0;
                for (int j = lo; j <= i; j++) {
                    double s = 0;
                    for (int d = 0; d < hd; d++) s += q[i * qd + h * hd + d] * k[j * kvd + kh * hd + d];
                    sc[j] = s / sqrt((double)hd);
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int j = lo; j <= i; j++) { sc[j] = exp(sc[j] - mx); sum += sc[j]; }
                for (int d = 0; d < hd; d++) {
                    double a = 0;
                    for (int j = lo; j <= i; j++) a += sc[j] / sum * v[j * kvd + kh * hd + d];
                    att[h * hd + d] = a;
                }
            }
            ref_matvec(T("attn_output.weight"), att, o);
            for (int d = 0; d < dim; d++) xnew[i * dim + d] = x[i * dim + d] + o[d];
            ref_rmsnorm(xnew + i * dim, T("ffn_norm.weight")->f, xn, dim, p->eps);
            ref_matvec(T("ffn_gate.weight"), xn, g);
            ref_matvec(T("ffn_up.weight"), xn, u);
            for (int f = 0; f < p->ff; f++) u[f] *= g[f] / (1.0 + exp(-g[f]));
            ref_matvec(T("ffn_down.weight"), u, o);
            for (int d = 0; d < dim; d++) xnew[i * dim + d] += o[d];
        }
#undef T
        memcpy(x, xnew, (size_t)n * dim * sizeof(double));
        free(xnew);
    }
    const ttensor *out = p->tied ? emb : tm_get(m, "output.weight");
    for (int i = 0; i < n; i++) {
        ref_rmsnorm(x + i * dim, tm_get(m, "output_norm.weight")->f, xn, dim, p->eps);
        ref_matvec(out, xn, logits + (size_t)i * NV);
    }
    free(x); free(xn); free(q); free(k); free(v); free(att); free(o); free(g); free(u); free(sc);
}

/* ------------------------------------------------------------------ helpers */

static colloq_model *load(const char *path, int threads) {
    colloq_model_params mp = colloq_model_default_params();
    mp.n_threads = threads;
    colloq_model *m = NULL;
    colloq_err err = { { 0 } };
    int rc = colloq_model_load(path, &mp, &m, &err);
    CHECK(rc == COLLOQ_OK, "load %s: %s", path, err.msg);
    return rc == COLLOQ_OK ? m : NULL;
}

static colloq_seq *seq_new(colloq_model *m, int n_ctx, colloq_cache_type ct) {
    colloq_seq_params sp = colloq_seq_default_params();
    sp.n_ctx = n_ctx;
    sp.cache_type = ct;
    colloq_seq *s = NULL;
    colloq_err err = { { 0 } };
    int rc = colloq_seq_init(m, &sp, &s, &err);
    CHECK(rc == COLLOQ_OK, "seq_init: %s", err.msg);
    return s;
}

static void make_tokens(colloq_token *t, int n, uint64_t seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        t[i] = (colloq_token)((seed >> 33) % NV);
    }
}

/* max |a - b| / max |b| over n values */
static double rel_diff_f(const float *a, const float *b, size_t n) {
    double md = 0, mb = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d;            /* NaN propagates */
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return md / mb;
}
static double rel_diff_d(const float *a, const double *b, size_t n) {
    double md = 0, mb = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return md / mb;
}

/* Engine (all logits, one batch) vs the float64 reference. */
static void compare_reference(const char *what, const tparams *p, int n, colloq_cache_type ct, double tol) {
    tmodel tm;
    tm_build(&tm, p);
    const char *path = tmp_path("ref.gguf");
    if (!tm_write(&tm, path, NULL)) { tm_free(&tm); return; }
    colloq_model *m = load(path, 2);
    colloq_seq *s = m ? seq_new(m, 0, ct) : NULL;
    if (s) {
        colloq_token *toks = malloc((size_t)n * sizeof *toks);
        float *lg = malloc((size_t)n * NV * sizeof(float));
        double *ref = malloc((size_t)n * NV * sizeof(double));
        make_tokens(toks, n, p->seed + 11);
        colloq_err err = { { 0 } };
        int rc = colloq_seq_eval(s, toks, n, lg, true, &err);
        CHECK(rc == COLLOQ_OK, "%s: eval: %s", what, err.msg);
        ref_forward(&tm, toks, n, ref);
        double d = rel_diff_d(lg, ref, (size_t)n * NV);
        CHECK(d < tol, "%s: engine vs float64 reference: relative difference %g (tolerance %g)", what, d, tol);
        /* and the logits are not trivially small: the model computes something */
        double mx = 0;
        for (size_t i = 0; i < (size_t)n * NV; i++) mx = fmax(mx, fabs(ref[i]));
        CHECK(mx > 0.1, "%s: reference logits are degenerate (max %g)", what, mx);
        free(toks); free(lg); free(ref);
    }
    colloq_seq_free(s);
    colloq_model_free(m);
    tm_free(&tm);
}

/* ------------------------------------------------------------------ tests */

static void test_reference(void) {
    tparams p = tp_default();
    compare_reference("f32 gqa", &p, 40, COLLOQ_CACHE_F32, 2e-6);
    compare_reference("f32 gqa, f16 cache", &p, 40, COLLOQ_CACHE_F16, 1e-3);

    p = tp_default();
    p.window = 7;
    p.factor = 2.0f;
    p.n_kv = 1;
    p.seed = 2;
    compare_reference("window 7 + linear rope x2 + mqa", &p, 50, COLLOQ_CACHE_F32, 2e-6);

    p = tp_default();
    p.tied = true;
    p.n_kv = 4;
    p.n_layer = 3;
    p.base = 500.0f;
    p.seed = 3;
    compare_reference("tied output, mha", &p, 30, COLLOQ_CACHE_F32, 2e-6);

    /* more than one chunk (256 positions) in one batch */
    p = tp_default();
    p.n_layer = 1;
    p.seed = 4;
    compare_reference("two chunks", &p, 300, COLLOQ_CACHE_F32, 2e-6);

    p = tp_default();
    p.wtype = CT_F16;
    p.seed = 5;
    compare_reference("f16 weights", &p, 20, COLLOQ_CACHE_F32, 2e-6);

    p = tp_default();
    p.wtype = CT_Q8_0;
    p.seed = 6;
    compare_reference("q8_0 weights", &p, 20, COLLOQ_CACHE_F32, 3e-2);
}

/* Same tokens in one batch vs one at a time (and in uneven pieces). */
static void batch_vs_single(const char *what, const tparams *p, int n, colloq_cache_type ct) {
    tmodel tm;
    tm_build(&tm, p);
    const char *path = tmp_path("batch.gguf");
    if (!tm_write(&tm, path, NULL)) { tm_free(&tm); return; }
    colloq_model *m = load(path, 2);
    colloq_seq *a = m ? seq_new(m, 512, ct) : NULL, *b = m ? seq_new(m, 512, ct) : NULL;
    if (a && b) {
        colloq_token *toks = malloc((size_t)n * sizeof *toks);
        float *la = malloc((size_t)n * NV * sizeof(float)), *lb = malloc((size_t)n * NV * sizeof(float));
        make_tokens(toks, n, 99);
        colloq_err err = { { 0 } };
        CHECK(colloq_seq_eval(a, toks, n, la, true, &err) == COLLOQ_OK, "%s: batch eval: %s", what, err.msg);
        for (int i = 0; i < n; i++)
            CHECK(colloq_seq_eval(b, toks + i, 1, lb + (size_t)i * NV, false, &err) == COLLOQ_OK,
                  "%s: single eval %d: %s", what, i, err.msg);
        CHECK(colloq_seq_n_past(a) == n && colloq_seq_n_past(b) == n, "%s: n_past %d / %d, expected %d", what,
              colloq_seq_n_past(a), colloq_seq_n_past(b), n);
        double d = rel_diff_f(lb, la, (size_t)n * NV);
        CHECK(d < 1e-5, "%s: batch vs one-at-a-time relative difference %g", what, d);

        /* uneven pieces, last-row logits only */
        colloq_seq_truncate(b, 0);
        float *last = malloc(NV * sizeof(float));
        int pieces[] = { 3, 1, 70, 200, 17 }, at = 0;
        for (int i = 0; i < 5 && at < n; i++) {
            int k = pieces[i] < n - at ? pieces[i] : n - at;
            CHECK(colloq_seq_eval(b, toks + at, k, last, false, &err) == COLLOQ_OK, "%s: piece: %s", what, err.msg);
            at += k;
            d = rel_diff_f(last, la + (size_t)(at - 1) * NV, NV);
            CHECK(d < 1e-5, "%s: piece ending at %d differs by %g", what, at, d);
        }
        free(last); free(toks); free(la); free(lb);
    }
    colloq_seq_free(a);
    colloq_seq_free(b);
    colloq_model_free(m);
    tm_free(&tm);
}

static void test_batch(void) {
    tparams p = tp_default();
    batch_vs_single("f32 cache", &p, 280, COLLOQ_CACHE_F32);
    batch_vs_single("f16 cache", &p, 60, COLLOQ_CACHE_F16);
    p.window = 5;
    p.seed = 8;
    batch_vs_single("sliding window", &p, 60, COLLOQ_CACHE_F32);
    /* one kv head: one-token steps split the query heads over the threads */
    p = tp_default();
    p.n_kv = 1;
    p.seed = 9;
    batch_vs_single("mqa", &p, 40, COLLOQ_CACHE_F16);
}

/* KV cache q8_0: refused for a head size that is not a multiple of 32, half the F16 memory,
 * independent of batching, and close to (but not the same as) an F32 cache. */
static void test_q8_cache(void) {
    tmodel tm;
    tparams p = tp_default();            /* head_dim 16 */
    tm_build(&tm, &p);
    const char *path = tmp_path("q8c16.gguf");
    if (tm_write(&tm, path, NULL)) {
        colloq_model *m = load(path, 2);
        if (m) {
            colloq_seq_params sp = colloq_seq_default_params();
            sp.cache_type = COLLOQ_CACHE_Q8_0;
            colloq_seq *s = NULL;
            colloq_err err = { { 0 } };
            int rc = colloq_seq_init(m, &sp, &s, &err);
            CHECK(rc == COLLOQ_ERR_UNSUPPORTED && s == NULL && strstr(err.msg, "divisible by 32") &&
                  strstr(err.msg, "is 16"), "q8_0 cache with head_dim 16: rc %d, %s", rc, err.msg);
        }
        colloq_model_free(m);
    }
    tm_free(&tm);

    p.dim = 128;                         /* head_dim 32 */
    p.seed = 12;
    batch_vs_single("q8_0 cache", &p, 120, COLLOQ_CACHE_Q8_0);

    tm_build(&tm, &p);
    path = tmp_path("q8c32.gguf");
    if (tm_write(&tm, path, NULL)) {
        colloq_model *m = load(path, 2);
        colloq_seq *a = m ? seq_new(m, 64, COLLOQ_CACHE_Q8_0) : NULL, *b = m ? seq_new(m, 64, COLLOQ_CACHE_F32) : NULL;
        if (a && b) {
            /* 2 (K, V) x layers x n_ctx x n_kv x (head_dim / 32) blocks x 34 bytes */
            size_t kv8, kv16;
            colloq_seq_estimate(m, 64, COLLOQ_CACHE_Q8_0, &kv8, NULL);
            colloq_seq_estimate(m, 64, COLLOQ_CACHE_F16, &kv16, NULL);
            CHECK(kv8 == 2u * 2 * 64 * 2 * 1 * 34, "q8_0 KV bytes %zu", kv8);
            CHECK(kv8 * 64 == kv16 * 34, "q8_0 KV %zu vs f16 %zu: not 34/64", kv8, kv16);
            CHECK(colloq_seq_memory(a) == colloq_seq_estimate(m, 64, COLLOQ_CACHE_Q8_0, NULL, NULL),
                  "q8_0 seq memory %zu differs from its estimate", colloq_seq_memory(a));
            colloq_token toks[50];
            make_tokens(toks, 50, 13);
            float *la = malloc(50 * NV * sizeof(float)), *lb = malloc(50 * NV * sizeof(float));
            colloq_err err = { { 0 } };
            CHECK(colloq_seq_eval(a, toks, 50, la, true, &err) == COLLOQ_OK, "q8_0 eval: %s", err.msg);
            CHECK(colloq_seq_eval(b, toks, 50, lb, true, &err) == COLLOQ_OK, "f32 eval: %s", err.msg);
            double d = rel_diff_f(la, lb, 50 * NV);
            CHECK(d > 1e-6 && d < 3e-2, "q8_0 vs f32 cache: relative difference %g (expected 1e-6 .. 3e-2)", d);
            free(la);
            free(lb);
        }
        colloq_seq_free(a);
        colloq_seq_free(b);
        colloq_model_free(m);
    }
    tm_free(&tm);
}

static void test_truncate_context_threads(void) {
    tmodel tm;
    tparams p = tp_default();
    tm_build(&tm, &p);
    const char *path = tmp_path("trunc.gguf");
    if (!tm_write(&tm, path, NULL)) { tm_free(&tm); return; }
    colloq_model *m1 = load(path, 1), *m2 = load(path, 2);
    if (!m1 || !m2) goto out;
    CHECK(colloq_model_n_vocab(m1) == NV, "n_vocab %d", colloq_model_n_vocab(m1));
    CHECK(colloq_model_n_ctx_train(m1) == 512, "n_ctx_train %d", colloq_model_n_ctx_train(m1));
    CHECK(!strcmp(colloq_model_arch(m1), "llama"), "arch %s", colloq_model_arch(m1));
    CHECK(colloq_token_bos(m1) == 1 && colloq_token_eos(m1) == 2, "bos %d eos %d", colloq_token_bos(m1),
          colloq_token_eos(m1));

    colloq_token toks[40], other[10];
    make_tokens(toks, 40, 5);
    make_tokens(other, 10, 6);
    float l1[NV], l2[NV], l3[NV];
    colloq_err err = { { 0 } };
    colloq_seq *s = seq_new(m1, 32, COLLOQ_CACHE_F16);
    if (s) {
        CHECK(colloq_seq_n_ctx(s) == 32, "n_ctx %d", colloq_seq_n_ctx(s));
        /* truncate + re-eval reproduces logits exactly */
        CHECK(colloq_seq_eval(s, toks, 20, NULL, false, &err) == COLLOQ_OK, "eval: %s", err.msg);
        CHECK(colloq_seq_eval(s, toks + 20, 5, l1, false, &err) == COLLOQ_OK, "eval: %s", err.msg);
        colloq_seq_truncate(s, 20);
        CHECK(colloq_seq_n_past(s) == 20, "n_past after truncate %d", colloq_seq_n_past(s));
        CHECK(colloq_seq_eval(s, other, 10, l2, false, &err) == COLLOQ_OK, "eval: %s", err.msg);
        CHECK(memcmp(l1, l2, sizeof l1) != 0, "different continuations gave the same logits");
        colloq_seq_truncate(s, 20);
        CHECK(colloq_seq_eval(s, toks + 20, 5, l2, false, &err) == COLLOQ_OK, "eval: %s", err.msg);
        CHECK(memcmp(l1, l2, sizeof l1) == 0, "truncate + re-eval: logits differ (rel %g)", rel_diff_f(l2, l1, NV));
        colloq_seq_truncate(s, 100);            /* beyond n_past: no effect */
        CHECK(colloq_seq_n_past(s) == 25, "truncate beyond n_past changed it to %d", colloq_seq_n_past(s));
        colloq_seq_truncate(s, 0);
        CHECK(colloq_seq_eval(s, toks, 25, l3, false, &err) == COLLOQ_OK, "eval: %s", err.msg);
        CHECK(rel_diff_f(l3, l1, NV) < 1e-5, "truncate to 0 + batch re-eval differs: %g", rel_diff_f(l3, l1, NV));

        /* context limit: 25 used of 32 */
        err.msg[0] = 0;
        int rc = colloq_seq_eval(s, toks, 8, l2, false, &err);
        CHECK(rc == COLLOQ_ERR_CONTEXT, "eval past n_ctx returned %d", rc);
        CHECK(strstr(err.msg, "25 positions used + 8 new tokens exceed n_ctx 32") != NULL, "message: %s", err.msg);
        CHECK(colloq_seq_n_past(s) == 25, "failed eval changed n_past to %d", colloq_seq_n_past(s));
        CHECK(colloq_seq_eval(s, toks, 7, NULL, false, &err) == COLLOQ_OK, "filling the context: %s", err.msg);
        CHECK(colloq_seq_eval(s, toks, 1, l2, false, &err) == COLLOQ_ERR_CONTEXT, "eval into a full context");
        CHECK(colloq_seq_eval(s, toks, 0, l2, false, &err) == COLLOQ_OK, "n = 0 must be a no-op");

        /* bad arguments */
        colloq_seq_truncate(s, 0);
        colloq_token bad[2] = { 5, NV };
        rc = colloq_seq_eval(s, bad, 2, l2, false, &err);
        CHECK(rc == COLLOQ_ERR_ARG && strstr(err.msg, "token id 259 at index 1 is out of range (n_vocab 259)"),
              "bad token: %d %s", rc, err.msg);
        bad[1] = -1;
        CHECK(colloq_seq_eval(s, bad, 2, l2, false, &err) == COLLOQ_ERR_ARG, "negative token accepted");
        CHECK(colloq_seq_eval(s, NULL, 3, l2, false, &err) == COLLOQ_ERR_ARG, "NULL tokens accepted");
        CHECK(colloq_seq_n_past(s) == 0, "failed evals changed n_past to %d", colloq_seq_n_past(s));

        /* memory accounting: KV = 2 (K, V) x layers x n_ctx x n_kv*hd x 2 bytes */
        size_t kv_expect = 2u * 2 * 32 * (2 * 16) * 2;
        size_t mem = colloq_seq_memory(s), est = colloq_seq_estimate(m1, 32, COLLOQ_CACHE_F16, NULL, NULL);
        CHECK(mem == est && mem > kv_expect, "seq memory %zu, estimate %zu, kv %zu", mem, est, kv_expect);
        colloq_seq_free(s);
    }

    /* n_ctx 0 = training context (512 < 4096) */
    s = seq_new(m1, 0, COLLOQ_CACHE_F32);
    if (s) CHECK(colloq_seq_n_ctx(s) == 512, "default n_ctx %d", colloq_seq_n_ctx(s));
    colloq_seq_free(s);

    /* one and two threads give identical logits */
    {
        colloq_seq *a = seq_new(m1, 64, COLLOQ_CACHE_F16), *b = seq_new(m2, 64, COLLOQ_CACHE_F16);
        float *la = malloc(40 * NV * sizeof(float)), *lb = malloc(40 * NV * sizeof(float));
        if (a && b) {
            CHECK(colloq_seq_eval(a, toks, 40, la, true, &err) == COLLOQ_OK, "eval 1 thread: %s", err.msg);
            CHECK(colloq_seq_eval(b, toks, 40, lb, true, &err) == COLLOQ_OK, "eval 2 threads: %s", err.msg);
            CHECK(memcmp(la, lb, 40 * NV * sizeof(float)) == 0, "1 vs 2 threads differ: %g",
                  rel_diff_f(la, lb, 40 * NV));
        }
        free(la); free(lb);
        colloq_seq_free(a);
        colloq_seq_free(b);
    }

    /* sequence parameters */
    colloq_seq_params sp = colloq_seq_default_params();
    colloq_seq *bad = NULL;
    sp.cache_type = COLLOQ_CACHE_Q8_0;
    CHECK(colloq_seq_init(m1, &sp, &bad, &err) == COLLOQ_ERR_UNSUPPORTED && !bad, "Q8_0 cache: %s", err.msg);
    sp.cache_type = COLLOQ_CACHE_F16;
    sp.n_ctx = -1;
    CHECK(colloq_seq_init(m1, &sp, &bad, &err) == COLLOQ_ERR_ARG && !bad, "n_ctx -1 accepted");

    /* describe */
    {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        colloq_model_describe(m1, f);
        fclose(f);
        CHECK(buf && strstr(buf, "architecture:     llama") && strstr(buf, "n_head_kv:        2") &&
              strstr(buf, "per sequence:     n_ctx 512") && strstr(buf, "blk.1.ffn_down.weight"),
              "describe output:\n%s", buf ? buf : "");
        free(buf);
    }
out:
    colloq_model_free(m1);
    colloq_model_free(m2);
    tm_free(&tm);
}

/* ------------------------------------------------------------------ load errors */

static void expect_load_error(const char *what, const tmodel *tm, kv_edit_fn edit, int status, const char *msg) {
    const char *path = tmp_path("bad.gguf");
    if (!tm_write(tm, path, edit)) return;
    colloq_model *m = NULL;
    colloq_err err = { { 0 } };
    int rc = colloq_model_load(path, NULL, &m, &err);
    CHECK(rc == status && !m, "%s: load returned %d (expected %d): %s", what, rc, status, err.msg);
    char full[1024];
    snprintf(full, sizeof full, "%s: %s", path, msg);
    CHECK(strcmp(err.msg, full) == 0, "%s: message\n  got:      %s\n  expected: %s", what, err.msg, full);
    colloq_model_free(m);
}

static void edit_kv3(gguf_writer *w) { gguf_writer_set_u32(w, "llama.attention.head_count_kv", 3); }
static void edit_head5(gguf_writer *w) { gguf_writer_set_u32(w, "llama.attention.head_count", 5); }
static void edit_odd_hd(gguf_writer *w) {
    gguf_writer_set_u32(w, "llama.embedding_length", 12);
    gguf_writer_set_u32(w, "llama.attention.head_count_kv", 4);
}
static void edit_no_layers(gguf_writer *w) { gguf_writer_set_u32(w, "llama.block_count", 0); }
static void edit_no_ctx(gguf_writer *w) { gguf_writer_set_u32(w, "llama.context_length", 0); }
static void edit_arch(gguf_writer *w) { gguf_writer_set_str(w, "general.architecture", "gpt9"); }
static void edit_rope_dim(gguf_writer *w) { gguf_writer_set_u32(w, "llama.rope.dimension_count", 7); }
static void edit_vocab_size(gguf_writer *w) { gguf_writer_set_u32(w, "llama.vocab_size", 100); }
static void edit_eps_type(gguf_writer *w) { gguf_writer_set_str(w, "llama.attention.layer_norm_rms_epsilon", "x"); }
static void edit_yarn(gguf_writer *w) {
    gguf_writer_set_str(w, "llama.rope.scaling.type", "yarn");
    gguf_writer_set_f32(w, "llama.rope.scaling.factor", 4.0f);
}

static void test_load_errors(void) {
    tparams p = tp_default();
    tmodel tm;
    tm_build(&tm, &p);

    tm_get(&tm, "blk.1.ffn_down.weight")->removed = true;
    expect_load_error("missing tensor", &tm, NULL, COLLOQ_ERR_FORMAT, "missing tensor 'blk.1.ffn_down.weight'");
    tm.t[tm.n - 1].removed = false;
    tm_get(&tm, "output_norm.weight")->removed = true;
    expect_load_error("missing output norm", &tm, NULL, COLLOQ_ERR_FORMAT, "missing tensor 'output_norm.weight'");
    for (int i = 0; i < tm.n; i++) tm.t[i].removed = false;

    tm_reshape(&tm, "blk.0.attn_k.weight", 64, 64);
    expect_load_error("wrong shape", &tm, NULL, COLLOQ_ERR_FORMAT,
                      "tensor 'blk.0.attn_k.weight' has shape [64, 64], expected [64, 32]");
    tm_reshape(&tm, "blk.0.attn_k.weight", 64, 32);
    tm_reshape(&tm, "blk.1.ffn_norm.weight", 32, 2);
    expect_load_error("wrong vector shape", &tm, NULL, COLLOQ_ERR_FORMAT,
                      "tensor 'blk.1.ffn_norm.weight' has shape [32, 2], expected [64]");
    tm_reshape(&tm, "blk.1.ffn_norm.weight", 64, 1);
    tm_reshape(&tm, "token_embd.weight", 64, 300);
    expect_load_error("embedding rows", &tm, NULL, COLLOQ_ERR_FORMAT,
                      "tensor 'token_embd.weight' has shape [64, 300], expected [64, 259]");
    tm_reshape(&tm, "token_embd.weight", 64, NV);

    tm_retype(&tm, "blk.0.attn_norm.weight", CT_Q8_0);
    expect_load_error("wrong type", &tm, NULL, COLLOQ_ERR_FORMAT,
                      "tensor 'blk.0.attn_norm.weight' has type Q8_0, expected F32, F16 or BF16");
    tm_retype(&tm, "blk.0.attn_norm.weight", CT_F32);

    expect_load_error("n_head % n_kv", &tm, edit_kv3, COLLOQ_ERR_FORMAT,
                      "llama.attention.head_count 4 is not a multiple of llama.attention.head_count_kv 3");
    expect_load_error("dim % n_head", &tm, edit_head5, COLLOQ_ERR_FORMAT,
                      "llama.embedding_length 64 is not a multiple of llama.attention.head_count 5");
    expect_load_error("odd head dim", &tm, edit_odd_hd, COLLOQ_ERR_FORMAT,
                      "head dimension 3 (llama.embedding_length 12 / llama.attention.head_count 4) is odd; "
                      "RoPE needs pairs");
    expect_load_error("zero layers", &tm, edit_no_layers, COLLOQ_ERR_FORMAT,
                      "hyper-parameter 'llama.block_count' = 0 is out of range (expected 1..1024)");
    expect_load_error("zero context", &tm, edit_no_ctx, COLLOQ_ERR_FORMAT,
                      "hyper-parameter 'llama.context_length' = 0 is out of range (expected 1..16777216)");
    expect_load_error("unknown arch", &tm, edit_arch, COLLOQ_ERR_UNSUPPORTED,
                      "architecture 'gpt9' is not supported (supported: llama, qwen2, qwen, falcon, baichuan, chatglm)");
    expect_load_error("odd rope dim", &tm, edit_rope_dim, COLLOQ_ERR_FORMAT,
                      "llama.rope.dimension_count 7 must be even and at most the head dimension 16");
    expect_load_error("vocab size", &tm, edit_vocab_size, COLLOQ_ERR_FORMAT,
                      "the tokenizer has 259 tokens but llama.vocab_size is 100");
    expect_load_error("rope scaling", &tm, edit_yarn, COLLOQ_ERR_UNSUPPORTED,
                      "llama.rope.scaling.type 'yarn' is not supported (only linear)");
    {   /* the key's type is the reader's message; only check the status and the key name */
        const char *path = tmp_path("bad.gguf");
        if (tm_write(&tm, path, edit_eps_type)) {
            colloq_model *m = NULL;
            colloq_err err = { { 0 } };
            int rc = colloq_model_load(path, NULL, &m, &err);
            CHECK(rc == COLLOQ_ERR_FORMAT && strstr(err.msg, "llama.attention.layer_norm_rms_epsilon"),
                  "eps as a string: %d %s", rc, err.msg);
            colloq_model_free(m);
        }
    }
    tm_free(&tm);

    colloq_model *m = NULL;
    colloq_err err = { { 0 } };
    int rc = colloq_model_load(tmp_path("does-not-exist.gguf"), NULL, &m, &err);
    CHECK(rc == COLLOQ_ERR_IO && !m, "missing file: %d %s", rc, err.msg);
    rc = colloq_model_load(NULL, NULL, &m, &err);
    CHECK(rc == COLLOQ_ERR_ARG, "NULL path: %d", rc);
}

/* Every allocation made by load and seq_init may fail: each failure is reported, never a crash
 * or a leak (the ASan build checks leaks). */
static void test_alloc_failures(void) {
    tparams p = tp_default();
    p.n_layer = 1;
    tmodel tm;
    tm_build(&tm, &p);
    const char *path = tmp_path("alloc.gguf");
    if (!tm_write(&tm, path, NULL)) { tm_free(&tm); return; }
    tm_free(&tm);
    bool done = false;
    int n_fail = 0;
    for (long k = 0; k < 100000 && !done; k++) {
        colloq_model_params mp = colloq_model_default_params();
        mp.n_threads = 1;
        colloq_model *m = NULL;
        colloq_seq *s = NULL;
        colloq_err err = { { 0 } };
        colloq_test_fail_alloc_after(k);
        int rc = colloq_model_load(path, &mp, &m, &err);
        if (rc == COLLOQ_OK) rc = colloq_seq_init(m, NULL, &s, &err);
        colloq_test_fail_alloc_after(-1);
        if (rc == COLLOQ_OK) {
            colloq_token t[3] = { 1, 70, 80 };
            float lg[NV];
            CHECK(colloq_seq_eval(s, t, 3, lg, false, &err) == COLLOQ_OK, "eval after alloc test: %s", err.msg);
            done = true;
        } else {
            n_fail++;
            CHECK(rc == COLLOQ_ERR_NOMEM && err.msg[0], "allocation %ld failing gave %d: %s", k, rc, err.msg);
        }
        colloq_seq_free(s);
        colloq_model_free(m);
    }
    CHECK(done && n_fail > 5, "allocation failure loop: done %d after %d failures", done, n_fail);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_model TMPDIR\n");
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    mkdir(dir, 0755);
    test_load_errors();
    test_truncate_context_threads();
    test_batch();
    test_q8_cache();
    test_reference();
    test_alloc_failures();
    if (failures) {
        fprintf(stderr, "test_model: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_model: all passed\n");
    return 0;
}
