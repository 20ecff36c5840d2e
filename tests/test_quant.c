/*
 * test_quant.c - tests of the tensor types, reference kernels, thread pool and
 * matmul.  One binary, one subcommand per ctest entry:
 *   types | f16 | quantizer | vecdot | matmul | pool | dump FILE
 * `dump` writes random blocks, quantizer output and half-precision conversions
 * for tests/quant_ref.py, which decodes them with its own numpy implementation.
 */
#include "matmul.h"
#include "quant.h"
#include "threadpool.h"
#include "util.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TEST_RNG_SEED 0x9e3779b97f4a7c15ull
#include "test_util.h"

/* A sane (finite, normal-range) random f16: magnitude 2^-12 .. 2^3, random sign. */
static uint16_t rnd_half(void) {
    float f = (float)ldexp(1.0 + rnd_unit(), rnd_int(-12, 2));
    return colloq_f32_to_f16(rnd() & 1 ? -f : f);
}

static const uint32_t all_types[] = { CT_F32, CT_F16, CT_BF16, CT_Q4_0, CT_Q4_1, CT_Q5_0, CT_Q5_1,
                                      CT_Q8_0, CT_Q8_1, CT_Q2_K, CT_Q3_K, CT_Q4_K, CT_Q5_K,
                                      CT_Q6_K, CT_Q8_K };
#define N_TYPES (int)(sizeof all_types / sizeof all_types[0])

/*
 * Random bytes for nb blocks of a type, with every scale field replaced by a sane
 * value.  Offsets are written here from the GGUF layouts, independently of the
 * library's structs.  Float element types get random finite values.
 */
static void random_blocks(uint32_t type, void *dst, int64_t nb) {
    const colloq_type_traits *tr = colloq_type_get(type);
    unsigned char *p = dst;
    size_t bs = (size_t)tr->type_size;
    int half_off[3] = { -1, -1, -1 };
    switch (type) {
    case CT_Q4_0: case CT_Q5_0: case CT_Q8_0: half_off[0] = 0; break;
    case CT_Q4_1: case CT_Q5_1: case CT_Q8_1: case CT_Q4_K: case CT_Q5_K:
        half_off[0] = 0; half_off[1] = 2; break;
    case CT_Q2_K: half_off[0] = 80; half_off[1] = 82; break;
    case CT_Q3_K: half_off[0] = 108; break;
    case CT_Q6_K: half_off[0] = 208; break;
    default: break;
    }
    for (int64_t b = 0; b < nb; b++, p += bs) {
        for (size_t i = 0; i < bs; i++) p[i] = (unsigned char)rnd();
        for (int k = 0; k < 3 && half_off[k] >= 0; k++) {
            uint16_t h = rnd_half();
            memcpy(p + half_off[k], &h, 2);
        }
        if (type == CT_F16) for (size_t i = 0; i < bs; i += 2) { uint16_t h = rnd_half(); memcpy(p + i, &h, 2); }
        if (type == CT_BF16) {
            uint16_t h = colloq_f32_to_bf16((float)rnd_gauss());
            memcpy(p, &h, 2);
        }
        if (type == CT_Q8_K || type == CT_F32) {
            for (size_t i = 0; i < bs / 4; i++) {
                float f = (float)(rnd_gauss() * ldexp(1.0, rnd_int(-10, 4)));
                memcpy(p + 4 * i, &f, 4);
            }
            if (type == CT_Q8_K) for (size_t i = 4; i < bs; i++) p[i] = (unsigned char)rnd();
        }
    }
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

/* Gaussian data whose scale changes every 256 elements (log-uniform 1e-3 .. 1e2). */
static void gauss_rows(float *x, int64_t n) {
    double s = 1;
    for (int64_t i = 0; i < n; i++) {
        if (i % 256 == 0) s = pow(10.0, -3 + 5 * rnd_unit());
        x[i] = (float)(rnd_gauss() * s);
    }
}

/* ---- types: traits, names, row sizes ---- */

static int test_types(void) {
    static const struct { uint32_t t; const char *name; int blck, size; uint32_t vdt; } want[] = {
        { CT_F32, "F32", 1, 4, CT_F32 },       { CT_F16, "F16", 1, 2, CT_F32 },
        { CT_BF16, "BF16", 1, 2, CT_F32 },     { CT_Q4_0, "Q4_0", 32, 18, CT_Q8_0 },
        { CT_Q4_1, "Q4_1", 32, 20, CT_Q8_1 },  { CT_Q5_0, "Q5_0", 32, 22, CT_Q8_0 },
        { CT_Q5_1, "Q5_1", 32, 24, CT_Q8_1 },  { CT_Q8_0, "Q8_0", 32, 34, CT_Q8_0 },
        { CT_Q8_1, "Q8_1", 32, 36, CT_Q8_1 },  { CT_Q2_K, "Q2_K", 256, 84, CT_Q8_K },
        { CT_Q3_K, "Q3_K", 256, 110, CT_Q8_K }, { CT_Q4_K, "Q4_K", 256, 144, CT_Q8_K },
        { CT_Q5_K, "Q5_K", 256, 176, CT_Q8_K }, { CT_Q6_K, "Q6_K", 256, 210, CT_Q8_K },
        { CT_Q8_K, "Q8_K", 256, 292, CT_Q8_K },
    };
    int n_known = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const colloq_type_traits *tr = colloq_type_get(want[i].t);
        CHECK(tr != NULL, "type %u missing", want[i].t);
        if (!tr) continue;
        CHECK(strcmp(tr->name, want[i].name) == 0, "name %s != %s", tr->name, want[i].name);
        CHECK(tr->blck == want[i].blck && tr->type_size == want[i].size, "%s: blck %d size %d",
              tr->name, tr->blck, tr->type_size);
        CHECK(tr->vec_dot_type == want[i].vdt, "%s: vec_dot_type %d", tr->name, tr->vec_dot_type);
        CHECK(tr->supported && tr->to_float && tr->from_float && tr->vec_dot, "%s: missing fn", tr->name);
        CHECK(colloq_type_from_name(want[i].name) == (int)want[i].t, "from_name(%s)", want[i].name);
        char lower[8];
        size_t k = 0;
        for (; want[i].name[k] && k < sizeof lower - 1; k++)
            lower[k] = (char)(want[i].name[k] | (want[i].name[k] >= 'A' && want[i].name[k] <= 'Z' ? 0x20 : 0));
        lower[k] = 0;
        CHECK(colloq_type_from_name(lower) == (int)want[i].t, "from_name(%s)", lower);
        const colloq_type_kernels *fk = colloq_type_fast(want[i].t);
        CHECK(fk && fk->to_float && fk->from_float && fk->vec_dot && fk->isa, "%s: fast table", tr->name);
        uint64_t rs = 0;
        CHECK(colloq_type_row_size(want[i].t, (int64_t)want[i].blck * 7, &rs) && rs == 7u * (uint64_t)want[i].size,
              "%s: row_size", tr->name);
        CHECK(colloq_type_row_size(want[i].t, 0, &rs) && rs == 0, "%s: row_size(0)", tr->name);
        if (want[i].blck > 1)
            CHECK(!colloq_type_row_size(want[i].t, want[i].blck + 1, &rs), "%s: partial block", tr->name);
        CHECK(!colloq_type_row_size(want[i].t, -want[i].blck, &rs), "%s: negative n", tr->name);
        /* Largest multiple of blck: n/blck * size overflows uint64 only for size > 2^64 blck / 2^63. */
        int64_t big = INT64_MAX - INT64_MAX % want[i].blck;
        bool ok = colloq_type_row_size(want[i].t, big, &rs);
        unsigned __int128 exact = (unsigned __int128)(uint64_t)(big / want[i].blck) * (uint64_t)want[i].size;
        CHECK(ok == (exact <= UINT64_MAX), "%s: overflow check", tr->name);
        n_known++;
    }
    for (uint32_t t = 0; t < 64; t++) {
        bool listed = false;
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) listed |= want[i].t == t;
        if (!listed) {
            CHECK(colloq_type_get(t) == NULL, "type %u should be unknown", t);
            uint64_t rs;
            CHECK(!colloq_type_row_size(t, 256, &rs), "row_size of unknown type %u", t);
            CHECK(colloq_type_fast(t) == NULL, "fast table of unknown type %u", t);
        }
    }
    CHECK(colloq_type_get(UINT32_MAX) == NULL, "huge id");
    CHECK(colloq_type_from_name("Q4_2") == -1 && colloq_type_from_name("") == -1
          && colloq_type_from_name(NULL) == -1, "unknown names");
    colloq_kernels_init();
    CHECK(colloq_kernels_isa() != NULL, "kernels isa");
    printf("types: %d known, kernels %s\n", n_known, colloq_kernels_isa());
    return 0;
}

/* ---- f16 / bf16 ---- */

static int test_f16(void) {
    int nan_count = 0;
    float prev = -INFINITY;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = colloq_f16_to_f32((uint16_t)h);
        bool is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (is_nan) {
            nan_count++;
            CHECK(isnan(f), "f16 %04x should be nan", h);
            CHECK(isnan(colloq_f16_to_f32(colloq_f32_to_f16(f))), "nan round trip %04x", h);
            continue;
        }
        CHECK(colloq_f32_to_f16(f) == h, "f16 round trip %04x -> %g -> %04x", h, f, colloq_f32_to_f16(f));
        if (h < 0x8000 && h <= 0x7c00) {           /* positive values are increasing */
            CHECK(f > prev || h == 0, "f16 order at %04x", h);
            prev = f;
        }
        uint16_t b = (uint16_t)h;                  /* bf16: same exhaustive round trip */
        float fb = colloq_bf16_to_f32(b);
        if (!isnan(fb)) CHECK(colloq_f32_to_bf16(fb) == b, "bf16 round trip %04x", h);
    }
    CHECK(nan_count == 2 * 1023, "nan count %d", nan_count);
    /* Ties to even, subnormals and overflow at the edges. */
    CHECK(colloq_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00, "tie down to even");
    CHECK(colloq_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02, "tie up to even");
    CHECK(colloq_f32_to_f16(0x1p-24f) == 0x0001, "smallest subnormal");
    CHECK(colloq_f32_to_f16(0x1p-25f) == 0x0000, "half of smallest subnormal ties to 0");
    CHECK(colloq_f32_to_f16(0x1.000002p-25f) == 0x0001, "just above half rounds up");
    CHECK(colloq_f32_to_f16(3 * 0x1p-25f) == 0x0002, "1.5 ulp subnormal ties to even");
    CHECK(colloq_f32_to_f16(65504.0f) == 0x7bff && colloq_f32_to_f16(65519.99f) == 0x7bff, "max half");
    CHECK(colloq_f32_to_f16(65520.0f) == 0x7c00 && colloq_f32_to_f16(-1e10f) == 0xfc00, "overflow");
    CHECK(colloq_f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80 && colloq_f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82,
          "bf16 ties to even");
    printf("f16: 65536 values round-trip, %d NaNs\n", nan_count);
    return 0;
}

/* ---- quantizer quality ---- */

/* Relative RMSE budget of each type's reference quantizer on gauss_rows data
 * (measured value in the comment; budgets leave ~10% margin). */
static double rmse_budget(uint32_t t) {
    switch (t) {
    case CT_F32:  return 1e-9;
    case CT_F16:  return 3e-4;      /* 0.00020 */
    case CT_BF16: return 2.5e-3;    /* 0.00165 */
    case CT_Q8_0: return 6e-3;      /* 0.00532 */
    case CT_Q8_1: return 6e-3;      /* 0.00532 */
    case CT_Q8_K: return 8e-3;      /* 0.00697: one scale per 256 */
    case CT_Q6_K: return 1.8e-2;    /* 0.01635 */
    case CT_Q5_0: return 4.5e-2;    /* 0.0397 */
    case CT_Q5_1: return 3.8e-2;    /* 0.0336 */
    case CT_Q5_K: return 3.9e-2;    /* 0.0346 */
    case CT_Q4_0: return 9e-2;      /* 0.0803 */
    case CT_Q4_1: return 7.8e-2;    /* 0.0692 */
    case CT_Q4_K: return 7.8e-2;    /* 0.0697 */
    case CT_Q3_K: return 1.6e-1;    /* 0.1430 */
    case CT_Q2_K: return 2.9e-1;    /* 0.2625 */
    default: return 0;
    }
}

static double rel_rmse(const float *x, const float *y, int64_t n) {
    double sum = 0;                     /* mean over 256-element rows of err^2 / rms^2 */
    int rows = 0;
    for (int64_t r = 0; r < n; r += 256, rows++) {
        double e = 0, s = 0;
        for (int64_t i = r; i < r + 256; i++) {
            double d = (double)x[i] - y[i];
            e += d * d;
            s += (double)x[i] * x[i];
        }
        sum += s > 0 ? e / s : 0;
    }
    return sqrt(sum / rows);
}

static int test_quantizer(void) {
    const int64_t n = 256 * 128;
    float *x = xmalloc(sizeof(float) * n), *y = xmalloc(sizeof(float) * n);
    void *q = xmalloc((size_t)n * 4);
    gauss_rows(x, n);
    for (int ti = 0; ti < N_TYPES; ti++) {
        const colloq_type_traits *tr = colloq_type_get(all_types[ti]);
        tr->from_float(x, q, n);
        tr->to_float(q, y, n);
        double e = rel_rmse(x, y, n);
        printf("quantizer %-5s relative rmse %.5f (budget %.5f)\n", tr->name, e, rmse_budget(all_types[ti]));
        CHECK(e <= rmse_budget(all_types[ti]), "%s rmse %g over budget", tr->name, e);
        /* Fast quantizer (activation path) must meet the same budget. */
        colloq_type_fast(all_types[ti])->from_float(x, q, n);
        colloq_type_fast(all_types[ti])->to_float(q, y, n);
        CHECK(rel_rmse(x, y, n) <= rmse_budget(all_types[ti]), "%s fast quantizer over budget", tr->name);

        /* Edge cases on one super-block: zeros, a constant, one spike, tiny values. */
        float z[512];
        for (int c = 0; c < 4; c++) {
            for (int i = 0; i < 512; i++)
                z[i] = c == 0 ? 0.0f : c == 1 ? 0.75f : c == 2 ? (i == 77 ? 50.0f : 0.01f * (float)(i % 7))
                     : 1e-12f * (float)(i % 5);
            tr->from_float(z, q, 512);
            tr->to_float(q, y, 512);
            double err = 0, ref = 0;
            bool finite = true;
            for (int i = 0; i < 512; i++) {
                finite &= isfinite(y[i]);
                err = fmax(err, fabs((double)y[i] - z[i]));
                ref = fmax(ref, fabs((double)z[i]));
            }
            CHECK(finite, "%s case %d: non-finite output", tr->name, c);
            if (c == 0) CHECK(err == 0, "%s: zeros decode to %g", tr->name, err);
            if (c == 1) CHECK(err <= 2e-3, "%s: constant 0.75 error %g", tr->name, err);
            if (c == 2) CHECK(fabs(y[77] - 50.0) <= 0.5, "%s: spike decodes to %g", tr->name, y[77]);
            if (c == 3) CHECK(err <= 1e-11, "%s: tiny values error %g", tr->name, err);
        }
        /* Non-finite input must not crash (output is unspecified). */
        for (int i = 0; i < 512; i++) z[i] = i % 3 == 0 ? NAN : i % 3 == 1 ? INFINITY : 1.0f;
        tr->from_float(z, q, 512);
    }
    free(x); free(y); free(q);
    return 0;
}

/* ---- vec_dot ---- */

/* Budget for a fast (SIMD) vec_dot against the reference, relative to sum |x_i*y_i|:
 * float accumulation plus the f16-rounded Q8_1 sum (2^-11 of the minimum term). */
#define FAST_BUDGET 1e-3

static int test_vecdot(void) {
    int checked = 0;
    for (int ti = 0; ti < N_TYPES; ti++) {
        uint32_t t = all_types[ti];
        const colloq_type_traits *tr = colloq_type_get(t), *ty = colloq_type_get(tr->vec_dot_type);
        const colloq_type_kernels *fk = colloq_type_fast(t);
        for (int iter = 0; iter < 40; iter++) {
            /* one block, an FFN-sized row (11008 = 43 * 256), then random lengths */
            int64_t n = iter == 0 ? tr->blck : iter == 1 ? (tr->blck == 1 ? 4099 : 11008)
                      : tr->blck == 1 ? rnd_int(1, 700) : (int64_t)tr->blck * rnd_int(2, 12);
            uint64_t xb, yb;
            colloq_type_row_size(t, n, &xb);
            colloq_type_row_size(tr->vec_dot_type, n, &yb);
            float *xf = xmalloc(sizeof(float) * n), *yf = xmalloc(sizeof(float) * n);
            float *xd = xmalloc(sizeof(float) * n), *yd = xmalloc(sizeof(float) * n);
            void *xq = xmalloc(xb), *yq = xmalloc(yb);
            gauss_rows(xf, n);
            gauss_rows(yf, n);
            if (iter % 2) random_blocks(t, xq, n / tr->blck);
            else tr->from_float(xf, xq, n);
            ty->from_float(yf, yq, n);
            tr->to_float(xq, xd, n);
            ty->to_float(yq, yd, n);
            double exact = 0, mag = 0;
            for (int64_t i = 0; i < n; i++) { exact += (double)xd[i] * yd[i]; mag += fabs((double)xd[i] * yd[i]); }
            float ref = tr->vec_dot(n, xq, yq);
            double bound = 0x1p-22 * mag + 0x1p-23 * fabs(exact) + 1e-30;
            CHECK(fabs(ref - exact) <= bound, "%s n=%lld: ref %.9g exact %.9g (bound %g)",
                  tr->name, (long long)n, ref, exact, bound);
            float fast = fk->vec_dot(n, xq, yq);
            if (iter % 2 == 0 || fk->vec_dot == tr->vec_dot)   /* fast kernels may rely on bsums / s */
                CHECK(fabs(fast - ref) <= FAST_BUDGET * mag + 1e-30, "%s (%s) n=%lld: fast %.9g ref %.9g",
                      tr->name, fk->isa, (long long)n, fast, ref);
            free(xf); free(yf); free(xd); free(yd); free(xq); free(yq);
            checked++;
        }
    }
    printf("vecdot: %d cases checked\n", checked);
    return 0;
}

/* ---- matmul ---- */

static int test_matmul(void) {
    colloq_pool *pools[4] = { NULL, colloq_pool_new(1), colloq_pool_new(2), colloq_pool_new(3) };
    CHECK(pools[1] && pools[2] && pools[3], "pool_new");
    static const int64_t rows_list[] = { 1, 2, 5, 7, 13, 33 };
    int cases = 0;
    for (int ti = 0; ti < N_TYPES; ti++) {
        uint32_t t = all_types[ti];
        const colloq_type_traits *tr = colloq_type_get(t), *ty = colloq_type_get(tr->vec_dot_type);
        for (int iter = 0; iter < 6; iter++) {
            int64_t k = (int64_t)tr->blck * (tr->blck == 1 ? rnd_int(1, 300) : rnd_int(1, 3));
            int64_t n_rows = rows_list[iter];
            int m = 1 + iter % 5;
            uint64_t wrow, pad = (uint64_t)(iter % 2) * (uint64_t)tr->type_size;   /* padded stride */
            colloq_type_row_size(t, k, &wrow);
            unsigned char *wd = xmalloc((wrow + pad) * (uint64_t)n_rows);
            float *wf = xmalloc(sizeof(float) * (size_t)k);
            for (int64_t r = 0; r < n_rows; r++) {
                if (r % 3 == 2) random_blocks(t, wd + r * (wrow + pad), k / tr->blck);
                else { gauss_rows(wf, k); tr->from_float(wf, wd + r * (wrow + pad), k); }
            }
            colloq_mat w = { .data = wd, .type = t, .k = k, .n_rows = n_rows, .row_bytes = wrow + pad };
            float *x = xmalloc(sizeof(float) * (size_t)(k * m));
            gauss_rows(x, k * m);
            /* Expected: float64 dot of the dequantised weight row and quantised activation row. */
            uint64_t xrow;
            colloq_type_row_size(tr->vec_dot_type, k, &xrow);
            unsigned char *xq = xmalloc(xrow * (uint64_t)m);
            float *xd = xmalloc(sizeof(float) * (size_t)k), *wdq = xmalloc(sizeof(float) * (size_t)k);
            double *want = xmalloc(sizeof(double) * (size_t)(m * n_rows)), *mag = xmalloc(sizeof(double) * (size_t)(m * n_rows));
            for (int i = 0; i < m; i++) ty->from_float(x + i * k, xq + i * xrow, k);
            for (int64_t r = 0; r < n_rows; r++) {
                colloq_mat_get_row(&w, r, wdq);
                tr->to_float(wd + r * (wrow + pad), xd, k);
                CHECK(memcmp(xd, wdq, sizeof(float) * (size_t)k) == 0, "%s get_row %lld", tr->name, (long long)r);
                for (int i = 0; i < m; i++) {
                    ty->to_float(xq + i * xrow, xd, k);
                    double s = 0, a = 0;
                    for (int64_t j = 0; j < k; j++) { s += (double)wdq[j] * xd[j]; a += fabs((double)wdq[j] * xd[j]); }
                    want[i * n_rows + r] = s;
                    mag[i * n_rows + r] = a;
                }
            }
            for (int pi = 0; pi < 4; pi++) {
                size_t sz = colloq_matmul_scratch(&w, m);
                CHECK(tr->vec_dot_type == CT_F32 ? sz == 0 : sz >= xrow * (uint64_t)m, "%s scratch %zu", tr->name, sz);
                unsigned char *scratch = xmalloc(sz + 1);
                float *y = xmalloc(sizeof(float) * (size_t)(m * n_rows));
                for (int64_t i = 0; i < m * n_rows; i++) y[i] = NAN;
                colloq_matmul(&w, x, m, y, scratch + (pi & 1), pools[pi]);   /* odd pointer too */
                /* Reference kernels in use: the reference budget; otherwise the fast one. */
                bool ref = colloq_type_fast(t)->vec_dot == tr->vec_dot
                        && colloq_type_fast(tr->vec_dot_type)->from_float == ty->from_float;
                for (int64_t i = 0; i < m * n_rows; i++) {
                    double bound = ref ? 0x1p-22 * mag[i] + 0x1p-23 * fabs(want[i]) : FAST_BUDGET * mag[i];
                    CHECK(fabs(y[i] - want[i]) <= bound + 1e-30, "%s threads=%d m=%d rows=%lld [%lld]: %g vs %g",
                          tr->name, colloq_pool_size(pools[pi]), m, (long long)n_rows, (long long)i, y[i], want[i]);
                }
                free(scratch); free(y);
                cases++;
            }
            free(wd); free(wf); free(x); free(xq); free(xd); free(wdq); free(want); free(mag);
        }
    }
    /* An unsupported type must not crash: output is zeroed. */
    float y1[3] = { 1, 2, 3 }, x1[32] = { 0 };
    unsigned char junk[64] = { 0 };
    colloq_mat bad = { .data = junk, .type = 4, .k = 32, .n_rows = 3, .row_bytes = 20 };
    colloq_matmul(&bad, x1, 1, y1, NULL, pools[2]);
    CHECK(y1[0] == 0 && y1[1] == 0 && y1[2] == 0, "bad type output not zeroed");
    CHECK(colloq_matmul_scratch(&bad, 1) == 0, "bad type scratch");
    for (int pi = 1; pi < 4; pi++) colloq_pool_free(pools[pi]);
    printf("matmul: %d cases checked\n", cases);
    return 0;
}

/* ---- thread pool ---- */

typedef struct {
    atomic_int counts[16];
    atomic_int bad_nth;
    int        expect_nth;
    int        slow;          /* thread index that sleeps, or -1 */
} pool_job;

static void pool_count(void *arg, int ith, int nth) {
    pool_job *j = arg;
    if (nth != j->expect_nth || ith < 0 || ith >= nth) atomic_fetch_add(&j->bad_nth, 1);
    else atomic_fetch_add(&j->counts[ith], 1);
    if (ith == j->slow) usleep(300);
}

static int test_pool(void) {
    int cores = colloq_physical_cores();
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    CHECK(cores >= 1 && cores <= (online > 0 ? online : 1), "physical cores %d (online %ld)", cores, online);
    colloq_pool *def = colloq_pool_new(0);
    CHECK(def && colloq_pool_size(def) == cores, "default pool size");
    colloq_pool_free(def);
    CHECK(colloq_pool_size(NULL) == 1, "NULL pool size");

    for (int n = 0; n <= 5; n++) {          /* n == 0: NULL pool */
        colloq_pool *p = n ? colloq_pool_new(n) : NULL;
        CHECK(!n || (p && colloq_pool_size(p) == n), "pool_new(%d)", n);
        pool_job j = { .expect_nth = n ? n : 1, .slow = -1 };
        bool ok = true;
        for (int r = 0; r < 1000 && ok; r++) {
            j.slow = r % 97 == 0 ? r % (n ? n : 1) : -1;
            colloq_pool_run(p, pool_count, &j);
            if (r % 250 == 125) usleep(2000);      /* let workers fall asleep, then wake them */
            for (int i = 0; i < j.expect_nth && ok; i++) {
                int c = atomic_load(&j.counts[i]);
                ok = c == r + 1;
                CHECK(ok, "n=%d run %d: thread %d ran %d times", n, r, i, c);
            }
        }
        CHECK(atomic_load(&j.bad_nth) == 0, "n=%d: wrong ith/nth", n);
        colloq_pool_free(p);
    }
    /* Create and free repeatedly, with and without work in between. */
    for (int i = 0; i < 60; i++) {
        colloq_pool *p = colloq_pool_new(1 + i % 4);
        CHECK(p != NULL, "pool_new in loop");
        pool_job j = { .expect_nth = 1 + i % 4, .slow = -1 };
        for (int r = 0; r < i % 3; r++) colloq_pool_run(p, pool_count, &j);
        for (int t = 0; t < j.expect_nth; t++) CHECK(atomic_load(&j.counts[t]) == i % 3, "loop counts");
        colloq_pool_free(p);
    }
    /* Allocation failure is reported as NULL, not a crash. */
    colloq_test_fail_alloc_after(0);
    colloq_pool *f = colloq_pool_new(3);
    colloq_test_fail_alloc_after(-1);
    CHECK(f == NULL, "pool_new under allocation failure");
    colloq_test_fail_alloc_after(1);
    f = colloq_pool_new(3);
    colloq_test_fail_alloc_after(-1);
    CHECK(f == NULL, "pool_new when the worker array fails");

    /* Overhead of one empty run on 2 threads (informational). */
    colloq_pool *p2 = colloq_pool_new(2);
    pool_job j = { .expect_nth = 2, .slow = -1 };
    double t0 = colloq_now();
    for (int r = 0; r < 2000; r++) colloq_pool_run(p2, pool_count, &j);
    double us = (colloq_now() - t0) / 2000 * 1e6;
    CHECK(atomic_load(&j.counts[0]) == 2000 && atomic_load(&j.counts[1]) == 2000, "overhead loop counts");
    colloq_pool_free(p2);
    printf("pool: ok, physical cores %d, %.2f us per empty run on 2 threads\n", cores, us);
    return 0;
}

/* ---- dump for tests/quant_ref.py ---- */

enum { REC_DEQUANT = 1, REC_QUANTIZED = 2, REC_F32_TO_F16 = 3, REC_F16_TO_F32 = 4, REC_F32_TO_BF16 = 5 };

static void put_record(FILE *f, uint32_t kind, uint32_t type, uint64_t n, const void *raw, uint64_t raw_len,
                       const void *a, size_t a_len, const void *b, size_t b_len) {
    uint32_t h[2] = { kind, type };
    uint64_t h2[2] = { n, raw_len };
    fwrite(h, sizeof h, 1, f);
    fwrite(h2, sizeof h2, 1, f);
    fwrite(raw, 1, raw_len, f);
    if (a_len) fwrite(a, 1, a_len, f);
    if (b_len) fwrite(b, 1, b_len, f);
}

static int do_dump(const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); return 2; }
    fwrite("CQDUMP1", 1, 8, f);
    for (int ti = 0; ti < N_TYPES; ti++) {
        uint32_t t = all_types[ti];
        const colloq_type_traits *tr = colloq_type_get(t);
        int64_t n = tr->blck == 1 ? 4096 : 64 * (int64_t)tr->blck;
        uint64_t bytes;
        colloq_type_row_size(t, n, &bytes);
        void *raw = xmalloc(bytes);
        float *y = xmalloc(sizeof(float) * n), *x = xmalloc(sizeof(float) * n);
        random_blocks(t, raw, n / tr->blck);
        if (t == CT_F16 || t == CT_BF16)           /* every bit pattern, NaN and Inf included */
            for (uint64_t i = 0; i < bytes; i++) ((unsigned char *)raw)[i] = (unsigned char)rnd();
        tr->to_float(raw, y, n);
        put_record(f, REC_DEQUANT, t, (uint64_t)n, raw, bytes, y, sizeof(float) * n, NULL, 0);
        gauss_rows(x, n);
        tr->from_float(x, raw, n);
        tr->to_float(raw, y, n);
        put_record(f, REC_QUANTIZED, t, (uint64_t)n, raw, bytes, x, sizeof(float) * n, y, sizeof(float) * n);
        free(raw); free(y); free(x);
    }
    /* f32 -> f16 / bf16 on a sample: random bit patterns in and around the half range,
     * exact ties, subnormal boundaries. */
    enum { NS = 200000 };
    float *in = xmalloc(sizeof(float) * NS);
    uint16_t *out = xmalloc(sizeof(uint16_t) * NS), *outb = xmalloc(sizeof(uint16_t) * NS);
    for (int i = 0; i < NS; i++) {
        uint32_t u;
        switch (i % 4) {
        case 0: u = (uint32_t)rnd(); break;                                       /* anything */
        case 1: u = (uint32_t)(rnd() & 0x807fffff) | (uint32_t)rnd_int(96, 145) << 23; break;
        case 2: u = ((uint32_t)(rnd() & 0x807fe000) | (uint32_t)rnd_int(100, 143) << 23) | 0x1000; break; /* f16 ties */
        default: u = ((uint32_t)(rnd() & 0x807f0000) | (uint32_t)rnd_int(1, 254) << 23) | 0x8000; break; /* bf16 ties */
        }
        if ((u & 0x7f800000u) == 0x7f800000u) u &= ~0x007fffffu;   /* keep Inf, drop NaN */
        memcpy(&in[i], &u, 4);
        out[i] = colloq_f32_to_f16(in[i]);
        outb[i] = colloq_f32_to_bf16(in[i]);
    }
    put_record(f, REC_F32_TO_F16, 0, NS, in, sizeof(float) * NS, out, sizeof(uint16_t) * NS, NULL, 0);
    put_record(f, REC_F32_TO_BF16, 0, NS, in, sizeof(float) * NS, outb, sizeof(uint16_t) * NS, NULL, 0);
    uint16_t *all = xmalloc(sizeof(uint16_t) * 65536);
    float *allf = xmalloc(sizeof(float) * 65536);
    for (uint32_t h = 0; h < 65536; h++) { all[h] = (uint16_t)h; allf[h] = colloq_f16_to_f32((uint16_t)h); }
    put_record(f, REC_F16_TO_F32, 0, 65536, all, sizeof(uint16_t) * 65536, allf, sizeof(float) * 65536, NULL, 0);
    free(in); free(out); free(outb); free(all); free(allf);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) { fprintf(stderr, "%s: write error\n", path); return 2; }
    return 0;
}

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "";
    const char *seed = getenv("COLLOQ_TEST_SEED");
    if (seed) rng_state = strtoull(seed, NULL, 0);
    if (strcmp(cmd, "dump") == 0) {
        if (argc < 3) { fprintf(stderr, "usage: test_quant dump FILE\n"); return 2; }
        return do_dump(argv[2]);
    }
    static const struct { const char *name; int (*fn)(void); } tests[] = {
        { "types", test_types }, { "f16", test_f16 }, { "quantizer", test_quantizer },
        { "vecdot", test_vecdot }, { "matmul", test_matmul }, { "pool", test_pool },
    };
    int ran = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (strcmp(cmd, tests[i].name) == 0 || strcmp(cmd, "all") == 0) {
            tests[i].fn();
            ran++;
        }
    }
    if (!ran) {
        fprintf(stderr, "usage: test_quant types|f16|quantizer|vecdot|matmul|pool|all|dump FILE\n");
        return 2;
    }
    if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
