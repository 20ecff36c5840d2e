/*
 * test_kernels.c - tests of the SIMD kernels and the matmul built on them.  One
 * binary, one subcommand per ctest entry:
 *   act | panels | tiles | vecdot | batch | pack | quantize DIR
 * Every variant the host supports (scalar reference, AVX2, AVX-512) is run on
 * random shapes with tails, against the scalar reference with explicit budgets;
 * packed-panel kernels must equal their scalar reference bit for bit.  `batch`
 * checks that a matmul row does not depend on the batch or the thread count;
 * `quantize` round-trips a model through colloq_quantize_file to every type.
 */
#include "gguf.h"
#include "matmul.h"
#include "mkmodel.h"
#include "quantize.h"
#include "matmul_pack.h"
#include "quant.h"
#include "quant_simd.h"
#include "threadpool.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static void *xmalloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) / 64 * 64 + 64);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

/* Gaussian data whose scale changes every 256 elements (log-uniform 1e-3 .. 1e2),
 * with an occasional outlier. */
static void gauss_rows(float *x, int64_t n) {
    double s = 1;
    for (int64_t i = 0; i < n; i++) {
        if (i % 256 == 0) s = pow(10.0, -3 + 5 * rnd_unit());
        x[i] = (float)(rnd_gauss() * s * (rnd() % 97 == 0 ? 20 : 1));
    }
}

/* Weights of a type: quantised gaussian rows, or (every third row) random bytes with
 * sane f16 scales, so every bit pattern of the levels is exercised. */
static void random_rows(uint32_t t, unsigned char *w, int64_t n_rows, int64_t k, uint64_t row_bytes) {
    const colloq_type_traits *tr = colloq_type_get(t);
    float *f = xmalloc(sizeof(float) * (size_t)k);
    for (int64_t r = 0; r < n_rows; r++) {
        unsigned char *row = w + (uint64_t)r * row_bytes;
        gauss_rows(f, k);
        tr->from_float(f, row, k);
        if (r % 3 != 2 || tr->blck == 1) continue;
        /* random level bytes; keep the f16 scale fields from the quantiser */
        uint64_t rb;
        colloq_type_row_size(t, k, &rb);
        unsigned char *keep = xmalloc(rb);
        memcpy(keep, row, rb);
        for (uint64_t i = 0; i < rb; i++) row[i] = (unsigned char)rnd();
        int bs = tr->type_size, hoff[2] = { -1, -1 };
        switch (t) {
        case CT_Q4_0: case CT_Q5_0: case CT_Q8_0: hoff[0] = 0; break;
        case CT_Q4_1: case CT_Q5_1: case CT_Q4_K: case CT_Q5_K: hoff[0] = 0; hoff[1] = 2; break;
        case CT_Q2_K: hoff[0] = 80; hoff[1] = 82; break;
        case CT_Q3_K: hoff[0] = 108; break;
        case CT_Q6_K: hoff[0] = 208; break;
        default: break;
        }
        for (int64_t b = 0; b < k / tr->blck; b++)
            for (int h = 0; h < 2; h++)
                if (hoff[h] >= 0) memcpy(row + b * bs + hoff[h], keep + b * bs + hoff[h], 2);
        free(keep);
    }
    free(f);
}

static const uint32_t packed_types[] = { CT_Q4_0, CT_Q4_1, CT_Q5_0, CT_Q5_1, CT_Q8_0,
                                         CT_Q2_K, CT_Q3_K, CT_Q4_K, CT_Q5_K, CT_Q6_K };
#define N_PACKED (int)(sizeof packed_types / sizeof packed_types[0])
static const uint32_t all_types[] = { CT_F32, CT_F16, CT_BF16, CT_Q4_0, CT_Q4_1, CT_Q5_0, CT_Q5_1,
                                      CT_Q8_0, CT_Q2_K, CT_Q3_K, CT_Q4_K, CT_Q5_K, CT_Q6_K };
#define N_ALL (int)(sizeof all_types / sizeof all_types[0])

/* ---- the variants of this host ---- */

typedef struct {
    const char *isa;
    const colloq_kernel_entry *dot, *panel;
} variant;

static int host_variants(variant *v) {
    int n = 0;
#if defined(__x86_64__)
    if (colloq_kernels_supported("avx2")) v[n++] = (variant){ "avx2", colloq_dot_avx2, colloq_panel_avx2 };
    if (colloq_kernels_supported("avx512")) v[n++] = (variant){ "avx512", colloq_dot_avx512, colloq_panel_avx512 };
#endif
    (void)v;
    return n;
}

static const colloq_kernel_entry *find_entry(const colloq_kernel_entry *t, uint32_t type) {
    for (; t && t->type != CT_COUNT; t++)
        if (t->type == type) return t;
    return NULL;
}

/* ---- act: activation quantisers equal the reference levels ---- */

static int test_act(void) {
    variant v[4];
    int nv = host_variants(v), checked = 0;
    for (int kind = 32; kind <= 256; kind += 224) {
        uint32_t t = kind == 32 ? CT_Q4_0 : CT_Q4_K;
        const colloq_mmk *ref = colloq_mmk_ref(t);
        size_t asz = kind == 32 ? sizeof(colloq_act32) : sizeof(colloq_act256);
        for (int iter = 0; iter < 30; iter++) {
            int64_t k = (int64_t)kind * rnd_int(1, 12), nt = rnd_int(1, 5), tok = rnd_int(0, (int)nt - 1);
            float *x = xmalloc(sizeof(float) * (size_t)k);
            gauss_rows(x, k);
            if (iter == 1) memset(x, 0, sizeof(float) * (size_t)k);
            if (iter == 2) for (int64_t i = 0; i < k; i++) x[i] = 1e-30f * (float)(i % 7);
            if (iter == 3) { x[5] = INFINITY; x[9] = NAN; }
            if (iter == 4) x[k - 1] = NAN;
            size_t bytes = asz * (size_t)(k / kind) * (size_t)nt;
            unsigned char *a0 = xmalloc(bytes), *a1 = xmalloc(bytes);
            memset(a0, 0x5a, bytes);
            ref->act(x, k, a0, nt, tok, 8);
            for (int i = 0; i < nv; i++) {
                const colloq_kernel_entry *e = find_entry(v[i].panel, t);
                if (!e || !e->mm.act) continue;
                memset(a1, 0x5a, bytes);
                e->mm.act(x, k, a1, nt, tok, 8);
                CHECK(memcmp(a0, a1, bytes) == 0, "act%d %s k=%lld iter %d differs from the reference", kind,
                      v[i].isa, (long long)k, iter);
                checked++;
            }
            free(x); free(a0); free(a1);
        }
    }
    printf("act: %d comparisons, %d variants\n", checked, nv);
    return 0;
}

/* ---- panels: bit-exact against the scalar recipe; the recipe against float64 ---- */

/* Block-major activations of nt random tokens for type t (reference quantiser). */
static void *make_act(uint32_t t, int64_t k, int nt, float *xf) {
    colloq_pack_info pi;
    colloq_pack_info_get(t, &pi);
    size_t asz = pi.act_kind == 32 ? sizeof(colloq_act32) : sizeof(colloq_act256);
    void *act = xmalloc(asz * (size_t)(k / pi.blck) * (size_t)nt);
    for (int i = 0; i < nt; i++) {
        gauss_rows(xf + (int64_t)i * k, k);
        colloq_mmk_ref(t)->act(xf + (int64_t)i * k, k, act, nt, i, pi.off);
    }
    return act;
}

static int test_panels(void) {
    variant v[4];
    int nv = host_variants(v), exact = 0, cases = 0;
    for (int ti = 0; ti < N_PACKED; ti++) {
        uint32_t t = packed_types[ti];
        const colloq_type_traits *tr = colloq_type_get(t), *ty = colloq_type_get(tr->vec_dot_type);
        colloq_pack_info pi;
        CHECK(colloq_pack_info_get(t, &pi), "%s: no pack info", tr->name);
        CHECK(pi.panel_block_bytes == 16 * tr->type_size, "%s: panel block %d bytes", tr->name, pi.panel_block_bytes);
        for (int iter = 0; iter < 12; iter++) {
            int64_t nb = iter == 0 ? 1 : rnd_int(1, tr->blck == 32 ? 40 : 6), k = nb * tr->blck;
            int nrows = iter < 2 ? 16 : rnd_int(1, 16), nt = iter == 3 ? 70 : rnd_int(1, 9);
            uint64_t rb = (uint64_t)tr->type_size * (uint64_t)nb + (uint64_t)(iter % 2) * 4;   /* padded stride */
            unsigned char *w = xmalloc(rb * 16);
            random_rows(t, w, nrows, k, rb);
            float *xf = xmalloc(sizeof(float) * (size_t)(k * nt));
            void *act = make_act(t, k, nt, xf);
            unsigned char *panel = xmalloc((size_t)(pi.panel_block_bytes * nb));
            colloq_pack_panel(t, w, rb, nrows, 0, nb, panel);
            float *f0 = xmalloc(sizeof(float) * 16 * (size_t)nt), *f1 = xmalloc(sizeof(float) * 16 * (size_t)nt);
            memset(f0, 0, sizeof(float) * 16 * (size_t)nt);
            colloq_mmk_ref(t)->panel(panel, nb, act, nt, nt, f0);

            /* the recipe vs float64 over dequantised weights and activations */
            uint64_t yb;
            colloq_type_row_size(tr->vec_dot_type, k, &yb);
            unsigned char *yq = xmalloc(yb);
            float *wd = xmalloc(sizeof(float) * (size_t)k), *yd = xmalloc(sizeof(float) * (size_t)k);
            for (int i = 0; i < nt; i++) {
                ty->from_float(xf + (int64_t)i * k, yq, k);
                ty->to_float(yq, yd, k);
                for (int r = 0; r < 16; r++) {
                    double s = 0, mag = 0;
                    if (r < nrows) {
                        tr->to_float(w + (uint64_t)r * rb, wd, k);
                        for (int64_t e = 0; e < k; e++) { s += (double)wd[e] * yd[e]; mag += fabs((double)wd[e] * yd[e]); }
                    }
                    double got = f0[i * 16 + r];
                    CHECK(fabs(got - s) <= 2e-6 * mag + 1e-30, "%s recipe nb=%lld row %d tok %d: %.9g vs %.9g (mag %g)",
                          tr->name, (long long)nb, r, i, got, s, mag);
                }
            }
            cases++;
            for (int i = 0; i < nv; i++) {
                const colloq_kernel_entry *e = find_entry(v[i].panel, t);
                if (!e || !e->mm.panel) continue;
                /* whole call, then the same blocks split in two calls (as on-the-fly packing does) */
                memset(f1, 0, sizeof(float) * 16 * (size_t)nt);
                e->mm.panel(panel, nb, act, nt, nt, f1);
                CHECK(memcmp(f0, f1, sizeof(float) * 16 * (size_t)nt) == 0, "%s %s nb=%lld nt=%d: not bit-exact",
                      tr->name, v[i].isa, (long long)nb, nt);
                int64_t h = nb / 2;
                size_t asz = pi.act_kind == 32 ? sizeof(colloq_act32) : sizeof(colloq_act256);
                memset(f1, 0, sizeof(float) * 16 * (size_t)nt);
                e->mm.panel(panel, h, act, nt, nt, f1);
                e->mm.panel(panel + h * pi.panel_block_bytes, nb - h, (char *)act + (size_t)(h * nt) * asz, nt, nt, f1);
                CHECK(memcmp(f0, f1, sizeof(float) * 16 * (size_t)nt) == 0, "%s %s split: not bit-exact", tr->name,
                      v[i].isa);
                exact++;
            }
            free(w); free(xf); free(act); free(panel); free(f0); free(f1); free(yq); free(wd); free(yd);
        }
    }
    printf("panels: %d cases against float64, %d bit-exact variant comparisons\n", cases, exact);
    return 0;
}


/* ---- vecdot: every variant's row-major vec_dot against the reference ---- */

static int test_vecdot(void) {
    variant v[4];
    int nv = host_variants(v), checked = 0;
    for (int ti = 0; ti < N_ALL; ti++) {
        uint32_t t = all_types[ti];
        const colloq_type_traits *tr = colloq_type_get(t), *ty = colloq_type_get(tr->vec_dot_type);
        for (int iter = 0; iter < 16; iter++) {
            int64_t n = tr->blck == 1 ? (iter == 0 ? 1 : rnd_int(1, 700)) : (int64_t)tr->blck * rnd_int(1, 24);
            uint64_t xb, yb;
            colloq_type_row_size(t, n, &xb);
            colloq_type_row_size(tr->vec_dot_type, n, &yb);
            unsigned char *xbuf = xmalloc(3 * xb), *yq = xmalloc(yb), *xq = xbuf + (iter % 2 ? 2 : 0) * xb;
            float *yf = xmalloc(sizeof(float) * (size_t)n), *xd = xmalloc(sizeof(float) * (size_t)n),
                  *yd = xmalloc(sizeof(float) * (size_t)n);
            random_rows(t, xbuf, 3, n, xb);     /* row 2: random level bytes */
            gauss_rows(yf, n);
            ty->from_float(yf, yq, n);
            tr->to_float(xq, xd, n);
            ty->to_float(yq, yd, n);
            double mag = 0;
            for (int64_t i = 0; i < n; i++) mag += fabs((double)xd[i] * yd[i]);
            float ref = tr->vec_dot(n, xq, yq);
            for (int i = 0; i < nv; i++) {
                const colloq_kernel_entry *e = find_entry(v[i].dot, t);
                if (!e || !e->k.vec_dot) continue;
                float got = e->k.vec_dot(n, xq, yq);
                /* float accumulation over blocks: well inside 1e-4 of sum |x_i y_i| */
                CHECK(fabs((double)got - ref) <= 1e-4 * mag + 1e-30, "%s %s n=%lld: %.9g vs ref %.9g (mag %g)",
                      tr->name, v[i].isa, (long long)n, got, ref, mag);
                checked++;
            }
            free(xbuf); free(yq); free(yf); free(xd); free(yd);
        }
    }
    /* fast conversions: bit-exact with the reference on finite data */
    for (int i = 0; i < nv; i++) {
        const uint32_t conv[] = { CT_F16, CT_BF16, CT_Q8_0, CT_Q8_1, CT_Q8_K };
        for (size_t c = 0; c < sizeof conv / sizeof conv[0]; c++) {
            const colloq_kernel_entry *e = find_entry(v[i].dot, conv[c]);
            const colloq_type_traits *tr = colloq_type_get(conv[c]);
            int64_t n = 256 * 5 + (tr->blck == 1 ? 7 : 0);
            uint64_t rb;
            colloq_type_row_size(conv[c], n, &rb);
            float *x = xmalloc(sizeof(float) * (size_t)n), *y0 = xmalloc(sizeof(float) * (size_t)n),
                  *y1 = xmalloc(sizeof(float) * (size_t)n);
            unsigned char *q0 = xmalloc(rb), *q1 = xmalloc(rb);
            gauss_rows(x, n);
            x[3] = 1e-7f; x[4] = 70000.0f; x[5] = -0.0f;   /* subnormal, overflow, negative zero (f16) */
            tr->from_float(x, q0, n);
            if (e && e->k.from_float) {
                e->k.from_float(x, q1, n);
                CHECK(memcmp(q0, q1, rb) == 0, "%s %s from_float differs from the reference", tr->name, v[i].isa);
                checked++;
            }
            if (e && e->k.to_float) {
                tr->to_float(q0, y0, n);
                e->k.to_float(q0, y1, n);
                CHECK(memcmp(y0, y1, sizeof(float) * (size_t)n) == 0, "%s %s to_float differs", tr->name, v[i].isa);
                checked++;
            }
            free(x); free(y0); free(y1); free(q0); free(q1);
        }
    }
    printf("vecdot: %d comparisons, %d variants\n", checked, nv);
    return 0;
}

/* ---- tiles: float weights; any tile shape gives the one-pair bits ---- */

static int test_tiles(void) {
    variant v[4];
    int nv = host_variants(v), checked = 0;
    const uint32_t ft[] = { CT_F32, CT_F16, CT_BF16 };
    for (int i = 0; i < nv; i++)
        for (int fi = 0; fi < 3; fi++) {
            const colloq_kernel_entry *e = find_entry(v[i].dot, ft[fi]);
            const colloq_type_traits *tr = colloq_type_get(ft[fi]);
            if (!e || !e->mm.tile) continue;
            for (int iter = 0; iter < 12; iter++) {
                int64_t k = iter == 0 ? 1 : iter == 1 ? 4096 : rnd_int(2, 300);
                int nr = rnd_int(1, 11), nt = rnd_int(1, 9);
                uint64_t rb = (uint64_t)k * (uint64_t)tr->type_size + (uint64_t)(iter % 2) * 8;
                unsigned char *w = xmalloc(rb * (uint64_t)nr);
                float *x = xmalloc(sizeof(float) * (size_t)(k * nt)), *wf = xmalloc(sizeof(float) * (size_t)k);
                float *out = xmalloc(sizeof(float) * (size_t)(nt * (nr + 3)));
                for (int r = 0; r < nr; r++) { gauss_rows(wf, k); tr->from_float(wf, w + r * rb, k); }
                gauss_rows(x, k * nt);
                int64_t ldo = nr + 3;
                e->mm.tile(k, w, rb, nr, x, nt, out, ldo);
                for (int r = 0; r < nr; r++) {
                    tr->to_float(w + r * rb, wf, k);
                    for (int t = 0; t < nt; t++) {
                        double s = 0, mag = 0;
                        for (int64_t j = 0; j < k; j++) {
                            s += (double)wf[j] * x[t * k + j];
                            mag += fabs((double)wf[j] * x[t * k + j]);
                        }
                        float one;
                        e->mm.tile(k, w + r * rb, rb, 1, x + t * k, 1, &one, 1);
                        CHECK(memcmp(&one, &out[t * ldo + r], sizeof one) == 0, "%s %s tile %dx%d [%d,%d]: %.9g vs %.9g",
                              tr->name, v[i].isa, nr, nt, r, t, out[t * ldo + r], one);
                        float vd = e->k.vec_dot(k, w + r * rb, x + t * k);
                        CHECK(memcmp(&one, &vd, sizeof vd) == 0, "%s %s vec_dot != 1x1 tile", tr->name, v[i].isa);
                        CHECK(fabs(one - s) <= 1e-5 * mag + 1e-30, "%s %s k=%lld: %.9g vs %.9g", tr->name, v[i].isa,
                              (long long)k, one, s);
                        checked++;
                    }
                }
                free(w); free(x); free(wf); free(out);
            }
        }
    printf("tiles: %d pairs checked, %d variants\n", checked, nv);
    return 0;
}

/* ---- batch: a row's result does not depend on M, the other rows, threads or packing ---- */

static int test_batch(void) {
    colloq_pool *pools[3] = { NULL, colloq_pool_new(1), colloq_pool_new(2) };
    CHECK(pools[1] && pools[2], "pool_new");
    int cases = 0, packed_cases = 0;
    for (int ti = 0; ti < N_ALL; ti++) {
        uint32_t t = all_types[ti];
        const colloq_type_traits *tr = colloq_type_get(t);
        for (int iter = 0; iter < 3; iter++) {
            int64_t k = tr->blck == 1 ? rnd_int(1, 200) : (int64_t)tr->blck * rnd_int(1, tr->blck == 32 ? 12 : 3);
            int64_t n_rows = iter == 0 ? 16 : rnd_int(1, 60);
            const int M = iter == 2 ? 70 : 7;       /* 70: more than one token group */
            uint64_t rb;
            colloq_type_row_size(t, k, &rb);
            rb += (uint64_t)(iter % 2) * 4;          /* padded stride (GGUF rows stay 4-byte aligned) */
            unsigned char *w = xmalloc(rb * (uint64_t)n_rows);
            random_rows(t, w, n_rows, k, rb);
            colloq_mat m = { .data = w, .type = t, .k = k, .n_rows = n_rows, .row_bytes = rb };
            float *x = xmalloc(sizeof(float) * (size_t)(k * M));
            gauss_rows(x, k * M);
            size_t sz = colloq_matmul_scratch(&m, M);
            unsigned char *scr = xmalloc(sz + 1);
            float *yb = xmalloc(sizeof(float) * (size_t)(M * n_rows)), *y1 = xmalloc(sizeof(float) * (size_t)n_rows);
            float *yp = xmalloc(sizeof(float) * (size_t)(M * n_rows));
            colloq_matmul(&m, x, M, yb, scr, pools[2]);
            for (int pack = 0; pack < 2; pack++) {
                if (pack) {
                    CHECK(colloq_mat_pack(&m, pools[2]) == COLLOQ_OK, "%s: pack failed", tr->name);
                    if (!m.packed) break;
                    packed_cases++;
                    colloq_matmul(&m, x, M, yp, scr + 1, pools[1]);
                    CHECK(memcmp(yb, yp, sizeof(float) * (size_t)(M * n_rows)) == 0,
                          "%s rows=%lld k=%lld: packed batch differs from unpacked", tr->name, (long long)n_rows,
                          (long long)k);
                }
                for (int i = 0; i < M; i++) {
                    colloq_matmul(&m, x + (int64_t)i * k, 1, y1, scr, pools[i % 3]);
                    CHECK(memcmp(y1, yb + (int64_t)i * n_rows, sizeof(float) * (size_t)n_rows) == 0,
                          "%s (%s) rows=%lld k=%lld pack=%d: row %d alone (threads %d) differs from the batch of %d",
                          tr->name, colloq_kernels_isa(), (long long)n_rows, (long long)k, pack, i,
                          colloq_pool_size(pools[i % 3]), M);
                }
                /* a different batch around row 3: other rows replaced by new data */
                float *x2 = xmalloc(sizeof(float) * (size_t)(k * 5));
                gauss_rows(x2, k * 5);
                memcpy(x2 + 2 * k, x + 3 * k, sizeof(float) * (size_t)k);
                float *y5 = xmalloc(sizeof(float) * (size_t)(5 * n_rows));
                colloq_matmul(&m, x2, 5, y5, scr, pools[1]);
                CHECK(memcmp(y5 + 2 * n_rows, yb + 3 * n_rows, sizeof(float) * (size_t)n_rows) == 0,
                      "%s: row depends on its neighbours in the batch", tr->name);
                free(x2); free(y5);
                cases++;
            }
            colloq_mat_unpack(&m);
            CHECK(m.packed == NULL, "unpack");
            free(w); free(x); free(scr); free(yb); free(y1); free(yp);
        }
    }
    colloq_pool_free(pools[1]);
    colloq_pool_free(pools[2]);
    printf("batch: %d cases (%d packed), kernels %s: rows bit-identical for M = 1, 5, 7, 70 and 1-2 threads\n",
           cases, packed_cases, colloq_kernels_isa());
    return 0;
}

/* ---- multi: several products over the same activations ---- */

static int test_multi(void) {
    colloq_pool *pools[2] = { colloq_pool_new(1), colloq_pool_new(2) };
    CHECK(pools[0] && pools[1], "pool_new");
    /* same type (one shared job), a mix with one activation layout (Q4_1 + Q5_1), mixes that
     * fall back to separate products (Q4_K + Q6_K: other level offset; float types) */
    static const uint32_t sets[][3] = {
        { CT_Q4_0, CT_Q4_0, CT_Q4_0 }, { CT_Q8_0, CT_Q8_0, 0 }, { CT_Q4_1, CT_Q5_1, 0 },
        { CT_Q4_K, CT_Q4_K, CT_Q6_K }, { CT_Q5_K, CT_Q5_K, 0 }, { CT_Q6_K, CT_Q6_K, CT_Q6_K },
        { CT_Q2_K, CT_Q3_K, 0 }, { CT_F16, CT_F16, 0 }, { CT_Q5_0, CT_Q8_0, CT_Q4_0 },
    };
    int cases = 0;
    for (size_t si = 0; si < sizeof sets / sizeof sets[0]; si++) {
        int n = sets[si][2] ? 3 : 2, blck = 1;
        for (int i = 0; i < n; i++)
            if (colloq_type_get(sets[si][i])->blck > blck) blck = colloq_type_get(sets[si][i])->blck;
        for (int iter = 0; iter < 4; iter++) {
            int64_t k = (int64_t)blck * rnd_int(1, blck == 32 ? 8 : 2);
            const int M = iter == 0 ? 1 : iter == 1 ? 7 : 70;
            colloq_mat w[3];
            unsigned char *wd[3];
            float *ys[3], *yr[3];
            size_t sz = 0;
            for (int i = 0; i < n; i++) {
                uint32_t t = sets[si][i];
                int64_t nr = i == 0 ? 16 * rnd_int(1, 3) : rnd_int(1, 50);
                uint64_t rb;
                colloq_type_row_size(t, k, &rb);
                wd[i] = xmalloc(rb * (uint64_t)nr);
                random_rows(t, wd[i], nr, k, rb);
                w[i] = (colloq_mat){ .data = wd[i], .type = t, .k = k, .n_rows = nr, .row_bytes = rb };
                if (iter == 3) CHECK(colloq_mat_pack(&w[i], pools[1]) == COLLOQ_OK, "pack");
                ys[i] = xmalloc(sizeof(float) * (size_t)(M * nr));
                yr[i] = xmalloc(sizeof(float) * (size_t)(M * nr));
                size_t s1 = colloq_matmul_scratch(&w[i], M);
                if (s1 > sz) sz = s1;
            }
            float *x = xmalloc(sizeof(float) * (size_t)(k * M));
            gauss_rows(x, k * M);
            unsigned char *scr = xmalloc(sz + 1);
            const colloq_mat *wp[3] = { &w[0], &w[1], &w[2] };
            colloq_pool *pool = pools[iter % 2];
            colloq_matmul_multi(wp, ys, n, x, M, scr + (iter & 1), pool);
            for (int i = 0; i < n; i++) {
                colloq_matmul(&w[i], x, M, yr[i], scr, pool);
                CHECK(memcmp(ys[i], yr[i], sizeof(float) * (size_t)(M * w[i].n_rows)) == 0,
                      "multi %s+%s%s%s M=%d k=%lld: product %d differs from its own matmul", colloq_type_get(sets[si][0])->name,
                      colloq_type_get(sets[si][1])->name, n > 2 ? "+" : "", n > 2 ? colloq_type_get(sets[si][2])->name : "",
                      M, (long long)k, i);
                colloq_mat_unpack(&w[i]);
                free(wd[i]); free(ys[i]); free(yr[i]);
            }
            free(x); free(scr);
            cases++;
        }
    }
    colloq_pool_free(pools[0]);
    colloq_pool_free(pools[1]);
    printf("multi: %d cases, kernels %s: bit-identical to separate products\n", cases, colloq_kernels_isa());
    return 0;
}

/* ---- pack: the load-time copy ---- */

static int test_pack(void) {
    bool simd = strcmp(colloq_kernels_isa(), "ref") != 0;
    int checked = 0;
    for (int ti = 0; ti < N_PACKED; ti++) {
        uint32_t t = packed_types[ti];
        const colloq_type_traits *tr = colloq_type_get(t);
        int64_t k = tr->blck * 2, n_rows = 37;
        uint64_t rb;
        colloq_type_row_size(t, k, &rb);
        unsigned char *w = xmalloc(rb * (uint64_t)n_rows);
        random_rows(t, w, n_rows, k, rb);
        colloq_mat m = { .data = w, .type = t, .k = k, .n_rows = n_rows, .row_bytes = rb };
        CHECK(colloq_mat_pack(&m, NULL) == COLLOQ_OK, "%s pack", tr->name);
        CHECK((m.packed != NULL) == simd, "%s: packed only with SIMD panel kernels", tr->name);
        if (m.packed) {
            CHECK(colloq_mat_packed_bytes(&m) == 3u * 16u * rb, "%s packed bytes %llu", tr->name,
                  (unsigned long long)colloq_mat_packed_bytes(&m));
            /* a view that is not the packed matrix must not use its panels */
            colloq_mat view = m;
            view.n_rows = 5;
            view.data = w + 16 * rb;
            float x[512], y0[64], y1[64];
            gauss_rows(x, k);
            size_t sz = colloq_matmul_scratch(&m, 1);
            void *scr = xmalloc(sz);
            colloq_mat plain = { .data = w + 16 * rb, .type = t, .k = k, .n_rows = 5, .row_bytes = rb };
            colloq_matmul(&view, x, 1, y0, scr, NULL);
            colloq_matmul(&plain, x, 1, y1, scr, NULL);
            CHECK(memcmp(y0, y1, sizeof(float) * 5) == 0, "%s: a stale packed pointer was used", tr->name);
            free(scr);
            /* packing twice is a no-op; unpack frees */
            void *p = m.packed;
            CHECK(colloq_mat_pack(&m, NULL) == COLLOQ_OK && m.packed == p, "%s: repack", tr->name);
            colloq_mat_unpack(&m);
            CHECK(!m.packed && colloq_mat_packed_bytes(&m) == 0, "%s unpack", tr->name);
            /* allocation failure: reported, the matrix stays usable */
            colloq_test_fail_alloc_after(0);
            CHECK(colloq_mat_pack(&m, NULL) == COLLOQ_ERR_NOMEM && !m.packed, "%s: pack without memory", tr->name);
            colloq_test_fail_alloc_after(-1);
            checked++;
        }
        free(w);
    }
    printf("pack: %d types packed (kernels %s)\n", checked, colloq_kernels_isa());
    return 0;
}


/* ---- quantize: every type and mix through colloq_quantize_file ---- */

/* Relative RMSE budget of a tensor converted to type t from the uniform random weights
 * mkmodel writes (largest measured value in the comments; budgets ~25% above). */
static double qz_budget(uint32_t t) {
    switch (t) {
    case CT_F32:  return 0;
    case CT_F16:  return 3e-4;     /* 0.00022 */
    case CT_BF16: return 2.2e-3;   /* 0.00175 */
    case CT_Q8_0: return 4.8e-3;   /* 0.00378 */
    case CT_Q6_K: return 1.6e-2;   /* 0.0125 */
    case CT_Q5_0: return 3.6e-2;   /* 0.0284 */
    case CT_Q5_1: case CT_Q5_K: return 3.4e-2;   /* 0.0263, 0.0267 */
    case CT_Q4_0: return 7.4e-2;   /* 0.0592 */
    case CT_Q4_1: case CT_Q4_K: return 6.8e-2;   /* 0.0542, 0.0543 */
    case CT_Q3_K: return 1.5e-1;   /* 0.119 */
    case CT_Q2_K: return 2.8e-1;   /* 0.219 */
    default: return 0;
    }
}

static const gguf_tensor *tensor_named(const gguf_file *f, const char *name) { return gguf_find_tensor(f, name); }

static uint32_t type_of(const gguf_file *f, const char *name) {
    const gguf_tensor *t = tensor_named(f, name);
    return t ? t->type : 999;
}

/* Dequantised tensor (rows * ne0 floats) through the fast to_float. */
static float *dequant(const gguf_tensor *t, int64_t *count) {
    int64_t rows = 1;
    for (uint32_t d = 1; d < t->n_dims; d++) rows *= t->ne[d];
    uint64_t rb;
    colloq_type_row_size(t->type, t->ne[0], &rb);
    float *out = xmalloc(sizeof(float) * (size_t)(rows * t->ne[0]));
    for (int64_t r = 0; r < rows; r++)
        colloq_type_fast(t->type)->to_float((const char *)t->data + r * rb, out + r * t->ne[0], t->ne[0]);
    *count = rows * t->ne[0];
    return out;
}

/* Logits of tokens 1..5 (last position) of a model file. */
static bool model_logits(const char *path, float *out, int nv) {
    colloq_model *m = NULL;
    colloq_seq *sq = NULL;
    colloq_err err;
    colloq_model_params mp = colloq_model_default_params();
    mp.n_threads = 2;
    bool ok = colloq_model_load(path, &mp, &m, &err) == COLLOQ_OK && colloq_model_n_vocab(m) == nv &&
              colloq_seq_init(m, NULL, &sq, &err) == COLLOQ_OK;
    colloq_token toks[5] = { 1, 2, 3, 4, 5 };
    ok = ok && colloq_seq_eval(sq, toks, 5, out, false, &err) == COLLOQ_OK;
    if (!ok) fprintf(stderr, "%s: %s\n", path, err.msg);
    colloq_seq_free(sq);
    colloq_model_free(m);
    return ok;
}

static double cosine(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) { ab += (double)a[i] * b[i]; aa += (double)a[i] * a[i]; bb += (double)b[i] * b[i]; }
    return ab / sqrt(aa * bb + 1e-300);
}

static int test_quantize(const char *dir) {
    char src[512], src64[512], dst[512];
    snprintf(src, sizeof src, "%s/qz-src.gguf", dir);
    snprintf(src64, sizeof src64, "%s/qz-src64.gguf", dir);
    snprintf(dst, sizeof dst, "%s/qz-out.gguf", dir);
    colloq_err err;
    colloq_mkmodel_params mp;
    colloq_mkmodel_shape("tiny", &mp, &err);
    mp.type = CT_F32;
    CHECK(colloq_mkmodel_write(&mp, src64, &err) == COLLOQ_OK, "mkmodel: %s", err.msg);
    mp.dim = 256;
    mp.n_layers = 8;
    mp.ffn = 512;
    CHECK(colloq_mkmodel_write(&mp, src, &err) == COLLOQ_OK, "mkmodel: %s", err.msg);
    gguf_file *in = NULL;
    if (gguf_open(src, &in, &err) != COLLOQ_OK) { CHECK(0, "open %s: %s", src, err.msg); return 0; }
    int nv = (int)tensor_named(in, "output.weight")->ne[1];
    float *ref_logits = xmalloc(sizeof(float) * (size_t)nv), *logits = xmalloc(sizeof(float) * (size_t)nv);
    CHECK(model_logits(src, ref_logits, nv), "F32 model does not run");

    static const struct { const char *type; uint32_t ftype; double min_cos; } mixes[] = {
        /* minimum cosine of the logits to the F32 model's: about 1.5x the measured distance
         * (F16 1.00000, BF16 0.99997, Q8_0 0.9997, Q6_K 0.9985, Q5_* 0.993, Q4_0 0.971,
         * Q4_1/Q4_K 0.983, Q3_K 0.882, Q2_K 0.680, Q3_K_M 0.945, Q4_K_M 0.985, Q5_K_M 0.995) */
        { "F32", 0, 0.99999 }, { "F16", 1, 0.9999 }, { "BF16", 32, 0.9999 }, { "Q8_0", 7, 0.9995 },
        { "Q6_K", 18, 0.997 }, { "Q5_0", 8, 0.99 }, { "Q5_1", 9, 0.99 }, { "Q5_K", 16, 0.99 },
        { "Q4_0", 2, 0.955 }, { "Q4_1", 3, 0.974 }, { "Q4_K", 14, 0.974 }, { "Q3_K", 11, 0.82 },
        { "Q2_K", 10, 0.52 }, { "Q3_K_M", 12, 0.92 }, { "Q4_K_M", 15, 0.977 }, { "Q5_K_M", 17, 0.992 },
    };
    for (size_t mi = 0; mi < sizeof mixes / sizeof mixes[0]; mi++) {
        colloq_quantize_params qp = { .type = mixes[mi].type, .n_threads = 2 };
        colloq_quantize_stats st;
        int rc = colloq_quantize_file(src, dst, &qp, &st, &err);
        CHECK(rc == COLLOQ_OK, "quantize %s: %s", mixes[mi].type, err.msg);
        gguf_file *out = NULL;
        if (rc != COLLOQ_OK || gguf_open(dst, &out, &err) != COLLOQ_OK) { CHECK(0, "open output: %s", err.msg); continue; }
        /* metadata: every key copied; file type and quantisation version set */
        for (uint64_t i = 0; i < gguf_n_kv(in); i++) {
            const gguf_kv *a = gguf_kv_at(in, i);
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)a->key.len, a->key.s);
            const gguf_kv *b = gguf_find_kv(out, key);
            CHECK(b && b->type == a->type, "%s: key %s not copied", mixes[mi].type, key);
            if (b && a->type == GGUF_T_STRING)
                CHECK(a->v.str.len == b->v.str.len && !memcmp(a->v.str.s, b->v.str.s, a->v.str.len), "%s: %s value",
                      mixes[mi].type, key);
            if (b && a->type == GGUF_T_ARRAY) CHECK(a->v.arr.n == b->v.arr.n, "%s: %s length", mixes[mi].type, key);
        }
        uint32_t ft = 999, qv = 0;
        gguf_get_u32(out, "general.file_type", &ft, NULL);
        CHECK(ft == mixes[mi].ftype, "%s: general.file_type %u", mixes[mi].type, ft);
        bool quantised = strcmp(mixes[mi].type, "F32") && strcmp(mixes[mi].type, "F16") && strcmp(mixes[mi].type, "BF16");
        CHECK(!quantised || (gguf_get_u32(out, "general.quantization_version", &qv, NULL) == 0 && qv == 2),
              "%s: quantization_version", mixes[mi].type);
        /* tensors: same names and shapes, the rule's type, values within the type's error */
        CHECK(gguf_n_tensors(out) == gguf_n_tensors(in) && st.n_tensors == (int)gguf_n_tensors(in), "%s: tensor count",
              mixes[mi].type);
        for (uint64_t i = 0; i < gguf_n_tensors(in); i++) {
            const gguf_tensor *a = gguf_tensor_at(in, i);
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)a->name.len, a->name.s);
            const gguf_tensor *b = tensor_named(out, name);
            if (!b) { CHECK(0, "%s: %s missing", mixes[mi].type, name); continue; }
            CHECK(a->n_dims == b->n_dims && !memcmp(a->ne, b->ne, sizeof a->ne), "%s: %s shape", mixes[mi].type, name);
            int want = colloq_quantize_tensor_type(mixes[mi].type, false, name, a->ne[0], a->n_dims, 8, true);
            CHECK((int)b->type == want, "%s: %s is %s, rule says %d", mixes[mi].type, name,
                  colloq_type_get(b->type)->name, want);
            if (a->n_dims == 1) CHECK(b->type == CT_F32, "%s: 1-D %s not F32", mixes[mi].type, name);
            int64_t n0, n1;
            float *x = dequant(a, &n0), *y = dequant(b, &n1);
            double e = 0, r = 0;
            for (int64_t j = 0; j < n0; j++) { e += ((double)x[j] - y[j]) * ((double)x[j] - y[j]); r += (double)x[j] * x[j]; }
            double rel = sqrt(e / (r + 1e-300));
            CHECK(n0 == n1 && rel <= qz_budget(b->type), "%s: %s (%s) relative rmse %.5f > %.5f", mixes[mi].type, name,
                  colloq_type_get(b->type)->name, rel, qz_budget(b->type));
            free(x); free(y);
        }
        /* the mixes' per-tensor choices on this 8-layer model */
        if (!strcmp(mixes[mi].type, "Q4_K_M") || !strcmp(mixes[mi].type, "Q5_K_M")) {
            uint32_t base = mixes[mi].type[1] == '4' ? CT_Q4_K : CT_Q5_K;
            CHECK(type_of(out, "output.weight") == CT_Q6_K && type_of(out, "token_embd.weight") == base, "%s head",
                  mixes[mi].type);
            for (int l = 0; l < 8; l++) {   /* more bits in layers 0, 3, 6, 7 */
                char n1[64], n2[64], n3[64];
                snprintf(n1, sizeof n1, "blk.%d.attn_v.weight", l);
                snprintf(n2, sizeof n2, "blk.%d.ffn_down.weight", l);
                snprintf(n3, sizeof n3, "blk.%d.ffn_up.weight", l);
                uint32_t more = l == 0 || l == 3 || l == 6 || l == 7 ? CT_Q6_K : base;
                CHECK(type_of(out, n1) == more && type_of(out, n2) == more && type_of(out, n3) == base, "%s layer %d",
                      mixes[mi].type, l);
            }
        }
        if (!strcmp(mixes[mi].type, "Q3_K_M"))
            CHECK(type_of(out, "blk.1.attn_v.weight") == CT_Q5_K && type_of(out, "blk.2.attn_v.weight") == CT_Q4_K &&
                  type_of(out, "blk.5.ffn_down.weight") == CT_Q4_K && type_of(out, "blk.5.attn_output.weight") == CT_Q4_K &&
                  type_of(out, "blk.5.ffn_gate.weight") == CT_Q3_K && type_of(out, "output.weight") == CT_Q6_K,
                  "Q3_K_M choices");
        if (!strcmp(mixes[mi].type, "Q4_0"))
            CHECK(type_of(out, "output.weight") == CT_Q6_K && type_of(out, "blk.0.attn_v.weight") == CT_Q4_0, "Q4_0 choices");
        if (!strcmp(mixes[mi].type, "Q8_0")) CHECK(type_of(out, "output.weight") == CT_Q8_0, "Q8_0 output");
        gguf_close(out);
        /* the converted model runs, close to the F32 one */
        bool ran = model_logits(dst, logits, nv);
        double c = ran ? cosine(ref_logits, logits, nv) : 0;
        CHECK(ran && c >= mixes[mi].min_cos, "%s: logits cosine %.5f < %.5f", mixes[mi].type, c, mixes[mi].min_cos);
        printf("quantize %-7s %5.1f%% of F32 bytes, logits cosine %.5f\n", mixes[mi].type,
               100.0 * (double)st.bytes_out / (double)st.bytes_in, c);
    }
    /* --pure, and rows that do not fit 256-element blocks */
    colloq_quantize_params qp = { .type = "q4_0", .n_threads = 1, .pure = true };
    CHECK(colloq_quantize_file(src, dst, &qp, NULL, &err) == COLLOQ_OK, "pure: %s", err.msg);
    gguf_file *out = NULL;
    if (gguf_open(dst, &out, &err) == COLLOQ_OK) {
        CHECK(type_of(out, "output.weight") == CT_Q4_0, "--pure output type");
        gguf_close(out);
    }
    static const struct { const char *type; uint32_t want; } fb[] = {
        { "Q4_K", CT_Q5_0 }, { "Q5_K", CT_Q5_1 }, { "Q6_K", CT_Q8_0 }, { "Q2_K", CT_Q4_0 }, { "Q3_K", CT_Q4_0 },
    };
    for (size_t i = 0; i < sizeof fb / sizeof fb[0]; i++) {
        colloq_quantize_stats st;
        qp = (colloq_quantize_params){ .type = fb[i].type };
        CHECK(colloq_quantize_file(src64, dst, &qp, &st, &err) == COLLOQ_OK, "%s (64): %s", fb[i].type, err.msg);
        if (gguf_open(dst, &out, &err) != COLLOQ_OK) continue;
        CHECK(type_of(out, "blk.0.ffn_up.weight") == fb[i].want && type_of(out, "blk.1.ffn_down.weight") == fb[i].want &&
              st.n_fallback > 0, "%s: rows of 64/192 fall back to %s", fb[i].type, colloq_type_get(fb[i].want)->name);
        gguf_close(out);
    }
    CHECK(colloq_quantize_tensor_type("Q4_K", false, "blk.0.ffn_up.weight", 100, 2, 8, true) == CT_F16,
          "rows of 100 fall back to F16");
    /* errors */
    qp = (colloq_quantize_params){ .type = "Q4_2" };
    CHECK(colloq_quantize_file(src, dst, &qp, NULL, &err) == COLLOQ_ERR_ARG && strstr(err.msg, "Q4_2"), "unknown type");
    qp.type = "Q8_0";
    CHECK(colloq_quantize_file(src, src, &qp, NULL, &err) == COLLOQ_ERR_ARG, "output = input");
    char missing[600];
    snprintf(missing, sizeof missing, "%s/does-not-exist.gguf", dir);
    CHECK(colloq_quantize_file(missing, dst, &qp, NULL, &err) == COLLOQ_ERR_IO, "missing input: %s", err.msg);
    gguf_close(in);
    free(ref_logits); free(logits);
    remove(src); remove(src64); remove(dst);
    return 0;
}

/* ---- main ---- */

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_kernels act|panels|tiles|vecdot|batch|pack|multi|quantize DIR\n");
        return 2;
    }
    const char *w = argv[1];
    if (!strcmp(w, "act")) test_act();
    else if (!strcmp(w, "panels")) test_panels();
    else if (!strcmp(w, "vecdot")) test_vecdot();
    else if (!strcmp(w, "tiles")) test_tiles();
    else if (!strcmp(w, "batch")) test_batch();
    else if (!strcmp(w, "pack")) test_pack();
    else if (!strcmp(w, "multi")) test_multi();
    else if (!strcmp(w, "quantize") && argc > 2) test_quantize(argv[2]);
    else { fprintf(stderr, "unknown test '%s'\n", w); return 2; }
    if (failures) fprintf(stderr, "%d failure(s)\n", failures);
    return failures ? 1 : 0;
}
