/*
 * quant_ref_basic.c - scalar reference kernels for the float types (F32, F16,
 * BF16) and the 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1):
 * dequantisation, quantisation (least-squares scale search) and dot products.
 * The reference every SIMD variant is tested against; no allocation, no threads.
 *
 * Dot products sum each block in int32 and accumulate block results in double,
 * then round once to float (see quant.h for the error budget).
 */
#include "quant_blocks.h"

#include <string.h>

/* ---- F32 ---- */

void colloq_f32_to_float_ref(const void *x, float *y, int64_t n) { memcpy(y, x, (size_t)n * sizeof(float)); }
void colloq_f32_from_float_ref(const float *x, void *y, int64_t n) { memcpy(y, x, (size_t)n * sizeof(float)); }

float colloq_f32_vec_dot_ref(int64_t n, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    double acc = 0;
    for (int64_t i = 0; i < n; i++) acc += (double)x[i] * y[i];
    return (float)acc;
}

/* ---- F16 (activations: F32) ---- */

void colloq_f16_to_float_ref(const void *vx, float *y, int64_t n) {
    const uint16_t *x = vx;
    for (int64_t i = 0; i < n; i++) y[i] = f16f(x[i]);
}
void colloq_f16_from_float_ref(const float *x, void *vy, int64_t n) {
    uint16_t *y = vy;
    for (int64_t i = 0; i < n; i++) y[i] = f2h(x[i]);
}
float colloq_f16_vec_dot_ref(int64_t n, const void *vx, const void *vy) {
    const uint16_t *x = vx;
    const float *y = vy;
    double acc = 0;
    for (int64_t i = 0; i < n; i++) acc += (double)f16f(x[i]) * y[i];
    return (float)acc;
}

/* ---- BF16 (activations: F32) ---- */

void colloq_bf16_to_float_ref(const void *vx, float *y, int64_t n) {
    const uint16_t *x = vx;
    for (int64_t i = 0; i < n; i++) y[i] = colloq_bf16_to_f32(x[i]);
}
void colloq_bf16_from_float_ref(const float *x, void *vy, int64_t n) {
    uint16_t *y = vy;
    for (int64_t i = 0; i < n; i++) y[i] = colloq_f32_to_bf16(x[i]);
}
float colloq_bf16_vec_dot_ref(int64_t n, const void *vx, const void *vy) {
    const uint16_t *x = vx;
    const float *y = vy;
    double acc = 0;
    for (int64_t i = 0; i < n; i++) acc += (double)colloq_bf16_to_f32(x[i]) * y[i];
    return (float)acc;
}

/* ---- shared nibble / 5th-bit access ---- */

static inline uint32_t load_qh(const uint8_t *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Unsigned level of element j (0..31) of a 4-bit block (+ optional 5th bits). */
static inline int nib(const uint8_t *qs, int j) { return j < 16 ? qs[j] & 15 : qs[j - 16] >> 4; }
static inline int nib5(const uint8_t *qs, uint32_t qh, int j) { return nib(qs, j) | (int)((qh >> j) & 1) << 4; }

static void pack_nibbles(const int *u, uint8_t *qs) {
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)(u[j] | u[j + 16] << 4);
}
static uint32_t pack_qh(const int *u) {
    uint32_t qh = 0;
    for (int j = 0; j < QK; j++) qh |= (uint32_t)((u[j] >> 4) & 1) << j;
    return qh;
}
static void store_qh(uint32_t qh, uint8_t *b) {
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(qh >> (8 * i));
}

/* Sum of q8 levels of a 32-element block. */
static inline int sum_q8(const int8_t *q) {
    int s = 0;
    for (int j = 0; j < QK; j++) s += q[j];
    return s;
}

/* Symmetric block quantisation: levels u = q - off in [0, 2*off). Returns the f16 scale. */
static uint16_t quant_sym_block(const float *x, int off, int *u) {
    int8_t q[QK];
    float d = colloq_fit_sym(QK, x, -off, off - 1, q);
    uint16_t dh = f2h(d);
    float df = f16f(dh);
    float inv = df != 0 ? 1.0f / df : 0.0f;
    for (int j = 0; j < QK; j++) u[j] = q_round_clamp(x[j] * inv, -off, off - 1) + off;
    return dh;
}

/* Affine block quantisation: levels u in [0, qmax]; *mh receives the f16 offset. */
static uint16_t quant_aff_block(const float *x, int qmax, int *u, uint16_t *mh) {
    uint8_t q[QK];
    float o;
    float s = colloq_fit_affine(QK, x, qmax, false, q, &o);
    uint16_t dh = f2h(s);
    *mh = f2h(o);
    float df = f16f(dh), mf = f16f(*mh);
    float inv = df != 0 ? 1.0f / df : 0.0f;
    for (int j = 0; j < QK; j++) u[j] = q_round_clamp((x[j] - mf) * inv, 0, qmax);
    return dh;
}

/* ---- Q4_0 ---- */

void colloq_q4_0_to_float_ref(const void *vx, float *y, int64_t n) {
    const block_q4_0 *b = vx;
    for (int64_t i = 0; i < n / QK; i++, b++, y += QK) {
        float d = f16f(b->d);
        for (int j = 0; j < QK; j++) y[j] = (float)(nib(b->qs, j) - 8) * d;
    }
}
void colloq_q4_0_from_float_ref(const float *x, void *vy, int64_t n) {
    block_q4_0 *b = vy;
    int u[QK];
    for (int64_t i = 0; i < n / QK; i++, b++, x += QK) {
        b->d = quant_sym_block(x, 8, u);
        pack_nibbles(u, b->qs);
    }
}
float colloq_q4_0_vec_dot_ref(int64_t n, const void *vx, const void *vy) {
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    double acc = 0;
    for (int64_t i = 0; i < n / QK; i++) {
        int s = 0;
        for (int j = 0; j < QK; j++) s += (nib(x[i].qs, j) - 8) * y[i].qs[j];
        acc += (double)f16f(x[i].d) * f16f(y[i].d) * s;
    }
    return (float)acc;
}

/* ---- Q4_1 (activations: Q8_1) ---- */

void colloq_q4_1_to_float_ref(const void *vx, float *y, int64_t n) {
    const block_q4_1 *b = vx;
    for (int64_t i = 0; i < n / QK; i++, b++, y += QK) {
        float d = f16f(b->d), m = f16f(b->m);
        for (int j = 0; j < QK; j++) y[j] = (float)nib(b->qs, j) * d + m;
    }
}
void colloq_q4_1_from_float_ref(const float *x, void *vy, int64_t n) {
    block_q4_1 *b = vy;
    int u[QK];
    for (int64_t i = 0; i < n / QK; i++, b++, x += QK) {
        b->d = quant_aff_block(x, 15, u, &b->m);
        pack_nibbles(u, b->qs);
    }
}
/* The m term uses the exact sum of the q8 levels, not the f16-rounded s field. */
float colloq_q4_1_vec_dot_ref(int64_t n, const void *vx, const void *vy) {
    const block_q4_1 *x = vx;
    const block_q8_1 *y = vy;
    double acc = 0;
    for (int64_t i = 0; i < n / QK; i++) {
        int s = 0;
        for (int j = 0; j < QK; j++) s += nib(x[i].qs, j) * y[i].qs[j];
        double dy = f16f(y[i].d);
        acc += (double)f16f(x[i].d) * dy * s + (double)f16f(x[i].m) * dy * sum_q8(y[i].qs);
    }
    return (float)acc;
}

/* ---- Q5_0 ---- */

void colloq_q5_0_to_float_ref(const void *vx, float *y, int64_t n) {
    const block_q5_0 *b = vx;
    for (int64_t i = 0; i < n / QK; i++, b++, y += QK) {
        float d = f16f(b->d);
        uint32_t qh = load_qh(b->qh);
        for (int j = 0; j < QK; j++) y[j] = (float)(nib5(b->qs, qh, j) - 16) * d;
    }
}
void colloq_q5_0_from_float_ref(const float *x, void *vy, int64_t n) {
    block_q5_0 *b = vy;
    int u[QK];
    for (int64_t i = 0; i < n / QK; i++, b++, x += QK) {
        b->d = quant_sym_block(x, 16, u);
        store_qh(pack_qh(u), b->qh);
        for (int j = 0; j < QK; j++) u[j] &= 15;
        pack_nibbles(u, b->qs);
    }
}
float colloq_q5_0_vec_dot_ref(int64_t n, const void *vx, const void *vy) {
    const block_q5_0 *x = vx;
    const block_q8_0 *y = vy;
    double acc = 0;
    for (int64_t i = 0; i < n / QK; i++) {
        uint32_t qh = load_qh(x[i].qh);
        int s = 0;
        for (int j = 0; j < QK; j++) s += (nib5(x[i].qs, qh, j) - 16) * y[i].qs[j];
        acc += (double)f16f(x[i].d) * f16f(y[i].d) * s;
    }
    return (float)acc;
}

/* ---- Q5_1 (activations: Q8_1) ---- */

void colloq_q5_1_to_float_ref(const void *vx, float *y, int64_t n) {
    const block_q5_1 *b = vx;
    for (int64_t i = 0; i < n / QK; i++, b++, y += QK) {
        float d = f16f(b->d), m = f16f(b->m);
        uint32_t qh = load_qh(b->qh);
        for (int j = 0; j < QK; j++) y[j] = (float)nib5(b->qs, qh, j) * d + m;
    }
}
void colloq_q5_1_from_float_ref(const float *x, void *vy, int64_t n) {
    block_q5_1 *b = vy;
    int u[QK];
    for (int64_t i = 0; i < n / QK; i++, b++, x += QK) {
        b->d = quant_aff_block(x, 31, u, &b->m);
        store_qh(pack_qh(u), b->qh);
        for (int j = 0; j < QK; j++) u[j] &= 15;
        pack_nibbles(u, b->qs);
    }
}
float colloq_q5_1_vec_dot_ref(int64_t n, const void *vx, const void *vy) {
    const block_q5_1 *x = vx;
    const block_q8_1 *y = vy;
    double acc = 0;
    for (int64_t i = 0; i < n / QK; i++) {
        uint32_t qh = load_qh(x[i].qh);
        int s = 0;
        for (int j = 0; j < QK; j++) s += nib5(x[i].qs, qh, j) * y[i].qs[j];
        double dy = f16f(y[i].d);
        acc += (double)f16f(x[i].d) * dy * s + (double)f16f(x[i].m) * dy * sum_q8(y[i].qs);
    }
    return (float)acc;
}

/* ---- Q8_0 / Q8_1: round to nearest with d = amax / 127 (the activation formats) ---- */

static uint16_t quant_q8_block(const float *x, int8_t *q) {
    float amax = 0;
    for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
    uint16_t dh = f2h(amax / 127.0f);
    float df = f16f(dh);
    float inv = df != 0 && isfinite(df) ? 1.0f / df : 0.0f;
    for (int j = 0; j < QK; j++) q[j] = (int8_t)q_round_clamp(x[j] * inv, -127, 127);
    return dh;
}

void colloq_q8_0_to_float_ref(const void *vx, float *y, int64_t n) {
    const block_q8_0 *b = vx;
    for (int64_t i = 0; i < n / QK; i++, b++, y += QK) {
        float d = f16f(b->d);
        for (int j = 0; j < QK; j++) y[j] = (float)b->qs[j] * d;
    }
}
void colloq_q8_0_from_float_ref(const float *x, void *vy, int64_t n) {
    block_q8_0 *b = vy;
    for (int64_t i = 0; i < n / QK; i++, b++, x += QK) b->d = quant_q8_block(x, b->qs);
}
float colloq_q8_0_vec_dot_ref(int64_t n, const void *vx, const void *vy) {
    const block_q8_0 *x = vx, *y = vy;
    double acc = 0;
    for (int64_t i = 0; i < n / QK; i++) {
        int s = 0;
        for (int j = 0; j < QK; j++) s += x[i].qs[j] * y[i].qs[j];
        acc += (double)f16f(x[i].d) * f16f(y[i].d) * s;
    }
    return (float)acc;
}

void colloq_q8_1_to_float_ref(const void *vx, float *y, int64_t n) {
    const block_q8_1 *b = vx;
    for (int64_t i = 0; i < n / QK; i++, b++, y += QK) {
        float d = f16f(b->d);
        for (int j = 0; j < QK; j++) y[j] = (float)b->qs[j] * d;
    }
}
void colloq_q8_1_from_float_ref(const float *x, void *vy, int64_t n) {
    block_q8_1 *b = vy;
    for (int64_t i = 0; i < n / QK; i++, b++, x += QK) {
        b->d = quant_q8_block(x, b->qs);
        b->s = f2h(f16f(b->d) * (float)sum_q8(b->qs));
    }
}
float colloq_q8_1_vec_dot_ref(int64_t n, const void *vx, const void *vy) {
    const block_q8_1 *x = vx, *y = vy;
    double acc = 0;
    for (int64_t i = 0; i < n / QK; i++) {
        int s = 0;
        for (int j = 0; j < QK; j++) s += x[i].qs[j] * y[i].qs[j];
        acc += (double)f16f(x[i].d) * f16f(y[i].d) * s;
    }
    return (float)acc;
}
