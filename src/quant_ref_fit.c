/*
 * quant_ref_fit.c - least-squares scale search used by the reference quantizers:
 * fits one group of values to integer levels (symmetric d*q or affine s*q + o)
 * by trying a small set of candidate scales and refitting each by least squares.
 * Pure arithmetic on caller buffers; no allocation, no block layouts.
 *
 * Each candidate costs one pass: the levels are computed and the sums that give
 * the least-squares fit and its error in closed form are accumulated together.
 */
#include "quant_blocks.h"

#include <float.h>

#define FIT_MAX 64          /* largest group the helpers are called with (32) */
#define FIT_STEPS 6         /* candidates per direction: scale factor 1 + k/30, |k| <= 6 */

/* ---- symmetric: x ~= d * q ---- */

/* Levels for inverse scale inv; returns sum x*q and sum q*q. */
static void sym_pass(int n, const float *x, float inv, int qmin, int qmax, float *q,
                     float *sxq, float *sqq) {
    colloq_q_levels(n, x, inv, 0.0f, (float)qmin, (float)qmax, q);
    *sxq = colloq_dot8(n, x, q);
    *sqq = colloq_dot8(n, q, q);
}

float colloq_fit_sym(int n, const float *x, int qmin, int qmax, int8_t *qout) {
    float q[FIT_MAX];
    assert(n <= FIT_MAX && n % 8 == 0);
    float amax = 0, xm = 0;
    for (int i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > amax) { amax = a; xm = x[i]; }
    }
    for (int i = 0; i < n; i++) qout[i] = 0;
    if (!(amax > 1e-30f) || !isfinite(amax)) return 0.0f;   /* zero group or non-finite input */

    /* Minimising sum (x - d q)^2 with d = sxq/sqq is maximising sxq^2/sqq. */
    float best = 0, best_d = 0;
    const int ends[2] = { qmin, qmax };   /* the largest |x| maps to either end */
    for (int e = 0; e < 2; e++) {
        for (int k = -FIT_STEPS; k <= FIT_STEPS; k++) {
            float inv = (float)ends[e] * (1.0f + (float)k / 30.0f) / xm, sxq, sqq;
            sym_pass(n, x, inv, qmin, qmax, q, &sxq, &sqq);
            if (sqq > 0 && sxq * sxq > best * sqq) {
                best = sxq * sxq / sqq;
                best_d = sxq / sqq;
                for (int i = 0; i < n; i++) qout[i] = (int8_t)q[i];
            }
        }
    }
    /* Polish: requantise with the fitted scale and refit while that helps. */
    for (int it = 0; it < 2 && best_d != 0; it++) {
        float sxq, sqq;
        sym_pass(n, x, 1.0f / best_d, qmin, qmax, q, &sxq, &sqq);
        if (!(sqq > 0 && sxq * sxq > best * sqq)) break;
        best = sxq * sxq / sqq;
        best_d = sxq / sqq;
        for (int i = 0; i < n; i++) qout[i] = (int8_t)q[i];
    }
    return best_d;
}

/* ---- affine: x ~= s * q + o ---- */

typedef struct { float sx, sxx; int n; bool nonpos; } aff_data;

/* Least-squares (s, o) for levels with sums sq, sqq, sxq; s >= 0, optionally o <= 0.
 * Returns the squared error of that fit. */
static float aff_solve(const aff_data *a, float sq, float sqq, float sxq, float *s, float *o) {
    float n = (float)a->n, det = n * sqq - sq * sq;
    if (det > 0) {
        *s = (n * sxq - sq * a->sx) / det;
        *o = (sqq * a->sx - sq * sxq) / det;
    } else {                                     /* all levels equal */
        *s = 0;
        *o = a->sx / n;
    }
    if (a->nonpos && *o > 0) { *o = 0; *s = sqq > 0 ? sxq / sqq : 0; }
    if (*s < 0) { *s = 0; *o = a->sx / n; if (a->nonpos && *o > 0) *o = 0; }
    /* sum (s q + o - x)^2 expanded */
    float err = a->sxx + *s * *s * sqq + n * *o * *o + 2 * *s * *o * sq - 2 * *s * sxq - 2 * *o * a->sx;
    return err > 0 ? err : 0;
}

static float aff_pass(const aff_data *a, const float *x, float inv, float base, int qmax, float *q,
                      float *s, float *o) {
    colloq_q_levels(a->n, x, inv, base, 0.0f, (float)qmax, q);
    return aff_solve(a, colloq_sum8(a->n, q), colloq_dot8(a->n, q, q), colloq_dot8(a->n, x, q), s, o);
}

float colloq_fit_affine(int n, const float *x, int qmax, bool nonpos, uint8_t *qout, float *oout) {
    float q[FIT_MAX];
    assert(n <= FIT_MAX && n % 8 == 0);
    aff_data a = { 0, 0, n, nonpos };
    float xmin = x[0], xmax = x[0];
    for (int i = 0; i < n; i++) {
        if (x[i] < xmin) xmin = x[i];
        if (x[i] > xmax) xmax = x[i];
        a.sx += x[i];
        a.sxx += x[i] * x[i];
    }
    if (nonpos && xmin > 0) xmin = 0;
    for (int i = 0; i < n; i++) qout[i] = 0;
    if (!(xmax > xmin) || !isfinite(xmax - xmin) || !isfinite(a.sxx)) {   /* constant or bad */
        *oout = isfinite(xmin) ? xmin : 0.0f;
        return 0.0f;
    }
    float best_e = FLT_MAX, best_s = 0, best_o = xmin;
    for (int k = -FIT_STEPS; k <= FIT_STEPS; k++) {
        float inv = (float)qmax * (1.0f + (float)k / 30.0f) / (xmax - xmin), s, o;
        float err = aff_pass(&a, x, inv, xmin, qmax, q, &s, &o);
        if (err < best_e) {
            best_e = err; best_s = s; best_o = o;
            for (int i = 0; i < n; i++) qout[i] = (uint8_t)q[i];
        }
    }
    for (int it = 0; it < 2 && best_s > 0; it++) {
        float s, o;
        float err = aff_pass(&a, x, 1.0f / best_s, best_o, qmax, q, &s, &o);
        if (!(err < best_e)) break;
        best_e = err; best_s = s; best_o = o;
        for (int i = 0; i < n; i++) qout[i] = (uint8_t)q[i];
    }
    *oout = best_o;
    return best_s;
}
