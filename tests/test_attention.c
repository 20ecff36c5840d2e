/*
 * test_attention.c - tests of attention (attention.c and its kernels attention_*.c).
 * One binary, one subcommand per ctest entry:
 *   exp      the kernels' exponential against exp() in double over [-87, 0]
 *   shapes   every kernel variant the host supports, on random shapes (head_dim 16..128
 *            with tails, GQA groups, MHA, sliding windows, ALiBi, F16 / F32 caches, several
 *            sequences in one pass), against a float64 reference and against the portable
 *            kernel with explicit budgets; and each variant's results bit for bit the same
 *            whatever the chunking, the batch composition and the thread count
 *   bench    times the variants on a TinyLlama-1.1B layer (prompt of 512) and a decode step
 * Drives colloq_attention_with on sequences of a hand-made model without weights: the
 * KV cache is filled through colloq_kv_store like the forward pass does.
 */
#include "attention_kern.h"
#include "model.h"
#include "quant_simd.h"
#include "threadpool.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_util.h"

static void *xcalloc(size_t n, size_t sz) {
    void *p = calloc(n ? n : 1, sz);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

/* ---- exp ---- */

static void test_exp(void) {
    double worst = 0.0, at = 0.0;
    for (int i = 0; i <= 4000000; i++) {
        float x = -87.0f * (float)i / 4000000.0f;
        double want = exp((double)x), got = colloq_att_exp_ref(x), rel = fabs(got - want) / want;
        if (rel > worst) worst = rel, at = x;
    }
    printf("exp: max relative error %.3g at %.9g\n", worst, at);
    CHECK(worst < 2e-7, "exp: relative error %.3g at x = %.9g (budget 2e-7)", worst, at);
    CHECK(colloq_att_exp_ref(0.0f) == 1.0f, "exp(0) = %.9g", colloq_att_exp_ref(0.0f));
    CHECK(colloq_att_exp_ref(-INFINITY) == 0.0f, "exp(-inf) = %g", colloq_att_exp_ref(-INFINITY));
    CHECK(colloq_att_exp_ref(-100.0f) == 0.0f, "exp(-100) = %g", colloq_att_exp_ref(-100.0f));
}

/* ---- a model without weights: hyper-parameters, architecture flags, pool ---- */

typedef struct {
    int hd, n_head, n_kv, window;
    bool alibi;
    colloq_cache_type ct;
    float qscale;                /* queries' scale: larger gives peakier softmaxes */
} shape;

typedef struct {
    colloq_model m;
    colloq_arch arch;
} test_model;

static void model_make(test_model *tm, const shape *sh, int n_threads) {
    memset(tm, 0, sizeof *tm);
    tm->arch.name = "test";
    tm->arch.alibi = sh->alibi;
    tm->arch.ffn = COLLOQ_FFN_SWIGLU;
    colloq_model *m = &tm->m;
    m->arch = &tm->arch;
    colloq_hparams *hp = &m->hp;
    hp->n_vocab = 16;
    hp->n_ctx_train = 1024;
    hp->n_head = sh->n_head;
    hp->n_head_kv = sh->n_kv;
    hp->head_dim = sh->hd;
    hp->dim = sh->n_head * sh->hd;
    hp->n_layer = 2;
    hp->n_ff = 16;
    hp->sliding_window = sh->window;
    m->layers = xcalloc((size_t)hp->n_layer, sizeof *m->layers);
    m->pool = colloq_pool_new(n_threads);
    m->n_threads = colloq_pool_size(m->pool);
}

static void model_free(test_model *tm) {
    colloq_pool_free(tm->m.pool);
    free(tm->m.layers);
}

static colloq_seq *seq_new(test_model *tm, int n_ctx, colloq_cache_type ct) {
    colloq_seq_params p = colloq_seq_default_params();
    p.n_ctx = n_ctx;
    p.cache_type = ct;
    colloq_seq *s = NULL;
    colloq_err err = { 0 };
    if (colloq_seq_init(&tm->m, &p, &s, &err) != COLLOQ_OK) {
        fprintf(stderr, "seq_init: %s\n", err.msg);
        exit(2);
    }
    return s;
}

/* ---- the data of a case: per sequence, q / k / v of every position ---- */

#define MAX_SEQ 3
#define LAYER 1

typedef struct {
    shape sh;
    int n_seq, len[MAX_SEQ], n_ctx;
    float *q[MAX_SEQ], *k[MAX_SEQ], *v[MAX_SEQ];     /* [len][n_head*hd], [len][n_kv*hd] x2 */
} case_data;

static float rnd_sym(void) { return (float)(2.0 * rnd_unit() - 1.0); }

static void case_make(case_data *c, const shape *sh, int n_seq, const int *len) {
    memset(c, 0, sizeof *c);
    c->sh = *sh;
    c->n_seq = n_seq;
    c->n_ctx = 0;
    size_t qd = (size_t)sh->n_head * sh->hd, kvd = (size_t)sh->n_kv * sh->hd;
    for (int s = 0; s < n_seq; s++) {
        c->len[s] = len[s];
        if (len[s] > c->n_ctx) c->n_ctx = len[s];
        c->q[s] = xcalloc((size_t)len[s] * qd, sizeof(float));
        c->k[s] = xcalloc((size_t)len[s] * kvd, sizeof(float));
        c->v[s] = xcalloc((size_t)len[s] * kvd, sizeof(float));
        for (size_t i = 0; i < (size_t)len[s] * qd; i++) c->q[s][i] = rnd_sym() * sh->qscale;
        for (size_t i = 0; i < (size_t)len[s] * kvd; i++) {
            float k = rnd_sym(), v = rnd_sym();
            if (sh->ct == COLLOQ_CACHE_F16) {          /* values the cache holds exactly */
                k = colloq_f16_to_f32(colloq_f32_to_f16(k));
                v = colloq_f16_to_f32(colloq_f32_to_f16(v));
            }
            c->k[s][i] = k;
            c->v[s][i] = v;
        }
    }
}

static void case_free(case_data *c) {
    for (int s = 0; s < c->n_seq; s++) free(c->q[s]), free(c->k[s]), free(c->v[s]);
}

/* float64 attention of sequence s, position p, head h into o[hd]. */
static void reference(const case_data *c, int s, int p, int h, double *o) {
    const shape *sh = &c->sh;
    int hd = sh->hd, g = h / (sh->n_head / sh->n_kv), lo = sh->window > 0 ? p - sh->window + 1 : 0;
    if (lo < 0) lo = 0;
    size_t qd = (size_t)sh->n_head * hd, kvd = (size_t)sh->n_kv * hd;
    const float *q = c->q[s] + (size_t)p * qd + (size_t)h * hd;
    double slope = 0.0;
    if (sh->alibi) {
        int n2 = 1;
        while (n2 * 2 <= sh->n_head) n2 *= 2;
        slope = h < n2 ? pow(2.0, -8.0 * (h + 1) / n2) : pow(2.0, -8.0 * (2 * (h - n2) + 1) / (2.0 * n2));
    }
    double *sc = xcalloc((size_t)(p - lo + 1), sizeof(double)), mx = -INFINITY, sum = 0.0;
    for (int j = lo; j <= p; j++) {
        const float *k = c->k[s] + (size_t)j * kvd + (size_t)g * hd;
        double d = 0.0;
        for (int e = 0; e < hd; e++) d += (double)q[e] * k[e];
        sc[j - lo] = d / sqrt((double)hd) + slope * (j - p);
        if (sc[j - lo] > mx) mx = sc[j - lo];
    }
    for (int e = 0; e < hd; e++) o[e] = 0.0;
    for (int j = lo; j <= p; j++) {
        double w = exp(sc[j - lo] - mx);
        const float *v = c->v[s] + (size_t)j * kvd + (size_t)g * hd;
        sum += w;
        for (int e = 0; e < hd; e++) o[e] += w * v[e];
    }
    for (int e = 0; e < hd; e++) o[e] /= sum;
    free(sc);
}

/* ---- running attention over a plan of steps ---- */

/* A plan: steps of groups (sequence, tokens); every sequence's tokens in order. */
#define MAX_STEPS 512
typedef struct {
    int n_steps;
    int ng[MAX_STEPS];
    int seq[MAX_STEPS][MAX_SEQ], n[MAX_STEPS][MAX_SEQ];
} plan;

/* out[s]: [len][n_head*hd] attention outputs of every position. */
static void run_plan(test_model *tm, const case_data *c, const plan *pl, colloq_att_item_fn fn, float **out) {
    const shape *sh = &c->sh;
    size_t qd = (size_t)sh->n_head * sh->hd, kvd = (size_t)sh->n_kv * sh->hd;
    colloq_seq *seqs[MAX_SEQ], *w = seq_new(tm, COLLOQ_CHUNK, sh->ct);
    for (int s = 0; s < c->n_seq; s++) seqs[s] = seq_new(tm, c->n_ctx, sh->ct);
    for (int st = 0; st < pl->n_steps; st++) {
        colloq_fwd_group gr[MAX_SEQ];
        int row = 0;
        for (int g = 0; g < pl->ng[st]; g++) {
            int s = pl->seq[st][g], n = pl->n[st][g], p0 = seqs[s]->n_past;
            gr[g] = (colloq_fwd_group){ .seq = seqs[s], .row0 = row, .n = n };
            memcpy(w->q + (size_t)row * qd, c->q[s] + (size_t)p0 * qd, (size_t)n * qd * sizeof(float));
            memcpy(w->k + (size_t)row * kvd, c->k[s] + (size_t)p0 * kvd, (size_t)n * kvd * sizeof(float));
            memcpy(w->v + (size_t)row * kvd, c->v[s] + (size_t)p0 * kvd, (size_t)n * kvd * sizeof(float));
            colloq_kv_store(w, seqs[s], LAYER, row, n);
            row += n;
        }
        memset(w->att, 0xff, (size_t)row * qd * sizeof(float));        /* NaNs: every row must be written */
        colloq_attention_with(w, gr, pl->ng[st], LAYER, fn);
        for (int g = 0; g < pl->ng[st]; g++) {
            int s = pl->seq[st][g];
            memcpy(out[s] + (size_t)seqs[s]->n_past * qd, w->att + (size_t)gr[g].row0 * qd,
                   (size_t)gr[g].n * qd * sizeof(float));
            seqs[s]->n_past += gr[g].n;
        }
    }
    for (int s = 0; s < c->n_seq; s++) colloq_seq_free(seqs[s]);
    colloq_seq_free(w);
}

/* Plans: 0 = all sequences in steps of up to COLLOQ_CHUNK rows together; 1 = one token
 * per step, one sequence alone; 2 = random pieces of the sequences mixed in steps. */
static void make_plan(const case_data *c, int kind, plan *pl) {
    int left[MAX_SEQ], n_left = 0;
    for (int s = 0; s < c->n_seq; s++) left[s] = c->len[s], n_left += c->len[s];
    pl->n_steps = 0;
    while (n_left > 0) {
        int st = pl->n_steps++, room = COLLOQ_CHUNK;
        if (st >= MAX_STEPS) { fprintf(stderr, "plan too long\n"); exit(2); }
        pl->ng[st] = 0;
        for (int s = 0; s < c->n_seq && room > 0; s++) {
            if (!left[s]) continue;
            int n = kind == 0 ? left[s] : kind == 1 ? 1 : rnd_int(1, left[s] < 80 ? left[s] : 80);
            if (n > room) n = room;
            if (kind == 2 && rnd_int(0, 2) == 0 && pl->ng[st] > 0) continue;
            pl->seq[st][pl->ng[st]] = s;
            pl->n[st][pl->ng[st]++] = n;
            left[s] -= n;
            n_left -= n;
            room -= n;
            if (kind == 1) break;
        }
    }
}

static const char *const isas[] = { "ref", "avx2", "avx512" };

/* FNV-1a hash of the outputs' bits (printed: builds can be compared). */
static uint64_t out_hash(const case_data *c, float **a) {
    size_t qd = (size_t)c->sh.n_head * c->sh.hd;
    uint64_t h = 0xcbf29ce484222325ull;
    for (int s = 0; s < c->n_seq; s++) {
        const unsigned char *b = (const unsigned char *)a[s];
        for (size_t i = 0; i < (size_t)c->len[s] * qd * sizeof(float); i++) h = (h ^ b[i]) * 0x100000001b3ull;
    }
    return h;
}

/* Largest |a - b| over the outputs, relative to max |v| (1 here by construction). */
static double max_diff(const case_data *c, float **a, float **b) {
    size_t qd = (size_t)c->sh.n_head * c->sh.hd;
    double worst = 0.0;
    for (int s = 0; s < c->n_seq; s++)
        for (size_t i = 0; i < (size_t)c->len[s] * qd; i++) {
            double d = fabs((double)a[s][i] - (double)b[s][i]);
            if (!(d <= worst)) worst = d;                      /* NaN counts as worst */
        }
    return worst;
}

static void test_case(const shape *sh, int n_seq, const int *len, const char *name) {
    case_data c;
    case_make(&c, sh, n_seq, len);
    size_t qd = (size_t)sh->n_head * sh->hd;
    float *ref[MAX_SEQ], *got[MAX_SEQ], *again[MAX_SEQ];
    for (int s = 0; s < n_seq; s++) {
        ref[s] = xcalloc((size_t)len[s] * qd, sizeof(float));
        got[s] = xcalloc((size_t)len[s] * qd, sizeof(float));
        again[s] = xcalloc((size_t)len[s] * qd, sizeof(float));
    }
    /* float64 reference */
    double *o = xcalloc((size_t)sh->hd, sizeof(double));
    for (int s = 0; s < n_seq; s++)
        for (int p = 0; p < len[s]; p++)
            for (int h = 0; h < sh->n_head; h++) {
                reference(&c, s, p, h, o);
                for (int e = 0; e < sh->hd; e++) ref[s][(size_t)p * qd + (size_t)h * sh->hd + e] = (float)o[e];
            }
    free(o);
    test_model m1, m3;
    model_make(&m1, sh, 1);
    model_make(&m3, sh, 3);
    plan pl[3];
    for (int k = 0; k < 3; k++) make_plan(&c, k, &pl[k]);
    float *portable[MAX_SEQ];
    for (int v = 0; v < 3; v++) {
        colloq_att_item_fn fn = colloq_att_kernel(isas[v]);
        if (!fn) {
            printf("%s: %s not supported here, skipped\n", name, isas[v]);
            continue;
        }
        run_plan(&m3, &c, &pl[0], fn, got);
        double err = max_diff(&c, got, ref);
        /* budget: float32 scores and sums; the scores' errors grow with qscale and head_dim */
        double budget = 2e-7 * (1.0 + sh->qscale) * sqrt((double)sh->hd);
        printf("%-34s %-6s max |out - float64 ref| %.3g (budget %.3g)", name, isas[v], err, budget);
        CHECK(err <= budget, "%s %s: max |out - ref| %.3g over budget %.3g", name, isas[v], err, budget);
        if (v == 0) {
            for (int s = 0; s < n_seq; s++) {
                portable[s] = xcalloc((size_t)len[s] * qd, sizeof(float));
                memcpy(portable[s], got[s], (size_t)len[s] * qd * sizeof(float));
            }
        } else {
            double d = max_diff(&c, got, portable);
            printf(", vs portable %.3g", d);
            CHECK(d <= budget / 2, "%s %s: max |out - portable| %.3g over budget %.3g", name, isas[v], d, budget / 2);
        }
        printf(", bits %016llx\n", (unsigned long long)out_hash(&c, got));
        /* the same bits however the tokens are chunked and batched, on 1 or 3 threads */
        for (int k = 1; k < 3; k++)
            for (int t = 0; t < 2; t++) {
                run_plan(t ? &m3 : &m1, &c, &pl[k], fn, again);
                for (int s = 0; s < n_seq; s++)
                    CHECK(!memcmp(again[s], got[s], (size_t)len[s] * qd * sizeof(float)),
                          "%s %s: sequence %d differs with plan %d on %d thread(s) (max diff %.3g)", name, isas[v],
                          s, k, t ? 3 : 1, max_diff(&c, again, got));
            }
    }
    for (int s = 0; s < n_seq; s++) {
        if (colloq_att_kernel("ref")) free(portable[s]);
        free(ref[s]), free(got[s]), free(again[s]);
    }
    model_free(&m1);
    model_free(&m3);
    case_free(&c);
}

static void test_shapes(void) {
    static const struct {
        const char *name;
        shape sh;
        int n_seq, len[MAX_SEQ];
    } cases[] = {
        { "tinyllama hd64 32/4", { 64, 32, 4, 0, false, COLLOQ_CACHE_F16, 1.0f }, 3, { 300, 70, 1 } },
        { "mistral hd128 8/2 f32", { 128, 8, 2, 0, false, COLLOQ_CACHE_F32, 4.0f }, 2, { 200, 65 } },
        { "hd80 mha alibi", { 80, 6, 6, 0, true, COLLOQ_CACHE_F16, 2.0f }, 2, { 150, 64 } },
        { "hd96 4/1 window48 f32", { 96, 4, 1, 48, false, COLLOQ_CACHE_F32, 1.0f }, 2, { 270, 31 } },
        { "hd33 6/2 window100 alibi", { 33, 6, 2, 100, true, COLLOQ_CACHE_F16, 3.0f }, 2, { 230, 129 } },
        { "hd64 16/2 window70 peaky", { 64, 16, 2, 70, false, COLLOQ_CACHE_F16, 8.0f }, 2, { 200, 100 } },
        { "hd16 160/1 (group > rows)", { 16, 160, 1, 0, false, COLLOQ_CACHE_F32, 1.0f }, 1, { 90 } },
        { "hd8 2/2 alibi f32", { 8, 2, 2, 0, true, COLLOQ_CACHE_F32, 1.0f }, 3, { 5, 130, 2 } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        test_case(&cases[i].sh, cases[i].n_seq, cases[i].len, cases[i].name);
}

/* ---- timing ---- */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One layer's attention for a prompt of n_prompt (steps of COLLOQ_CHUNK), and a decode step
 * after it: median milliseconds of reps runs per variant, on n_threads threads. */
static void bench_shape(const char *name, const shape *sh, int n_prompt, int n_threads, int reps) {
    int len[1] = { n_prompt + 1 };
    case_data c;
    case_make(&c, sh, 1, len);
    test_model m;
    model_make(&m, sh, n_threads);
    size_t qd = (size_t)sh->n_head * sh->hd;
    float *out[1] = { xcalloc((size_t)len[0] * qd, sizeof(float)) };
    plan pl;
    c.len[0] = n_prompt;                                 /* the prompt, then one decode step */
    make_plan(&c, 0, &pl);
    c.len[0] = n_prompt + 1;
    pl.n_steps++;
    pl.ng[pl.n_steps - 1] = 1;
    pl.seq[pl.n_steps - 1][0] = 0;
    pl.n[pl.n_steps - 1][0] = 1;
    for (int v = 0; v < 3; v++) {
        colloq_att_item_fn fn = colloq_att_kernel(isas[v]);
        if (!fn) continue;
        double t[32];
        for (int r = 0; r < reps && r < 32; r++) {
            double t0 = now();
            run_plan(&m, &c, &pl, fn, out);
            t[r] = 1e3 * (now() - t0);
        }
        qsort(t, (size_t)reps, sizeof t[0], cmp_double);
        printf("%-28s %-6s prompt %d + 1, %d thread(s): median %.2f ms (min %.2f)\n", name, isas[v], n_prompt,
               n_threads, t[reps / 2], t[0]);
    }
    free(out[0]);
    model_free(&m);
    case_free(&c);
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "shapes";
    if (!strcmp(what, "exp")) test_exp();
    else if (!strcmp(what, "shapes")) test_shapes();
    else if (!strcmp(what, "bench")) {
        int reps = argc > 2 ? atoi(argv[2]) : 5;
        shape tl = { 64, 32, 4, 0, false, COLLOQ_CACHE_F16, 1.0f }, mi = { 128, 32, 8, 0, false, COLLOQ_CACHE_F16, 1.0f };
        bench_shape("tinyllama-1.1B layer", &tl, 512, 2, reps);
        bench_shape("mistral-7B layer", &mi, 512, 2, reps);
        bench_shape("tinyllama-1.1B layer", &tl, 2000, 2, reps);
    } else {
        fprintf(stderr, "usage: test_attention exp|shapes|bench [REPS]\n");
        return 2;
    }
    if (failures) fprintf(stderr, "%d failure(s)\n", failures);
    else printf("ok\n");
    return failures ? 1 : 0;
}
