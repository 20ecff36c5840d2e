/*
 * quant_blocks.h - the byte layout of every quantised block, as GGUF stores it,
 * plus the helpers the reference kernels share.  Internal to the quant_* files
 * (and to SIMD variants of them); nothing here allocates or touches threads.
 *
 * f16 fields are raw IEEE binary16 bits (uint16_t).  All structs have 2-byte
 * alignment except block_q8_K (4, for its float d).
 */
#ifndef COLLOQ_QUANT_BLOCKS_H
#define COLLOQ_QUANT_BLOCKS_H

#include <assert.h>
#include <math.h>
#include <stdint.h>

#include "quant.h"
#include "util.h"

#define QK 32        /* elements per block of Q4_0 .. Q8_1 */
#define QK_K 256     /* elements per super-block of the K-quants */

/* Element j (< 16) in the low nibble of qs[j], element j + 16 in the high nibble. */
typedef struct { uint16_t d; uint8_t qs[QK / 2]; } block_q4_0;            /* (q - 8) * d */
typedef struct { uint16_t d, m; uint8_t qs[QK / 2]; } block_q4_1;         /* q * d + m */
/* As Q4_*, plus bit j of the little-endian uint32 qh is bit 4 of element j. */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK / 2]; } block_q5_0;     /* (q - 16) * d */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK / 2]; } block_q5_1;  /* q * d + m */
typedef struct { uint16_t d; int8_t qs[QK]; } block_q8_0;                 /* q * d */
typedef struct { uint16_t d, s; int8_t qs[QK]; } block_q8_1;              /* s = f16(d * sum q) */

/*
 * K-quants: 256 elements.  Sub-block of element e: e / 16 (Q2_K, Q3_K, Q6_K) or e / 32
 * (Q4_K, Q5_K).  Bit positions (n = e / 128, p = e % 128, j = p / 32, l = p % 32):
 *   Q2_K  2 bits at qs[32n + l] >> 2j;  value = d*(sc & 15)*q - dmin*(sc >> 4)
 *   Q3_K  low 2 bits as Q2_K, bit 2 = hmask[l] bit (4n + j);  value = d*(s6 - 32)*(u - 4)
 *   Q4_K  c = e / 64, i = e % 64: qs[32c + i % 32], low nibble if i < 32 else high;
 *         value = d*sc*q - dmin*m   (6-bit sc, m packed in scales[12], see kq_scale_min)
 *   Q5_K  as Q4_K plus bit 4 = qh[i % 32] bit (2c + i / 32)
 *   Q6_K  n, p as above, l = p % 32, k = p / 32: low 4 bits in ql[64n + l + 32(k & 1)]
 *         (low nibble for k < 2, high for k >= 2), high 2 bits at qh[32n + l] >> 2k;
 *         value = d * scales[e / 16] * (u - 32)
 *   Q8_K  value = d * qs[e] (float d), bsums[i] = sum of qs[16i .. 16i + 15]
 */
typedef struct { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d, dmin; } block_q2_K;
typedef struct { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; } block_q3_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[QK_K / 2]; } block_q4_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_K;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; } block_q6_K;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;

static_assert(sizeof(block_q4_0) == 18, "Q4_0 block size");
static_assert(sizeof(block_q4_1) == 20, "Q4_1 block size");
static_assert(sizeof(block_q5_0) == 22, "Q5_0 block size");
static_assert(sizeof(block_q5_1) == 24, "Q5_1 block size");
static_assert(sizeof(block_q8_0) == 34, "Q8_0 block size");
static_assert(sizeof(block_q8_1) == 36, "Q8_1 block size");
static_assert(sizeof(block_q2_K) == 84, "Q2_K block size");
static_assert(sizeof(block_q3_K) == 110, "Q3_K block size");
static_assert(sizeof(block_q4_K) == 144, "Q4_K block size");
static_assert(sizeof(block_q5_K) == 176, "Q5_K block size");
static_assert(sizeof(block_q6_K) == 210, "Q6_K block size");
static_assert(sizeof(block_q8_K) == 292, "Q8_K block size");

static inline float f16f(uint16_t h) { return colloq_f16_to_f32(h); }
static inline uint16_t f2h(float f) { return colloq_f32_to_f16(f); }

/* v rounded to nearest (ties to even) and clamped to [lo, hi]; NaN gives lo.
 * Clamps first, so the conversion never overflows; the rounding adds and removes
 * 1.5 * 2^23, exact for |v| < 2^22 (bounds here are far smaller). */
static inline int q_round_clamp(float v, int lo, int hi) {
    if (!(v >= (float)lo)) v = (float)lo;
    if (v > (float)hi) v = (float)hi;
    const float big = 12582912.0f;      /* not folded away: IEEE semantics (no -ffast-math) */
    return (int)((v + big) - big);
}

/* Levels (as floats) of (x - base) * inv rounded to nearest even and clamped to
 * [lo, hi]; NaN gives lo.  n is a multiple of 8; the fixed inner trip count lets
 * the compiler vectorise it at -O2. */
static inline void colloq_q_levels(int n, const float *x, float inv, float base, float lo, float hi,
                                   float *q) {
    const float big = 12582912.0f;      /* 1.5 * 2^23: (v + big) - big rounds to nearest */
    for (int i = 0; i < n; i += 8) {
        for (int j = i; j < i + 8; j++) {
            float v = (x[j] - base) * inv;
            v = v >= lo ? v : lo;
            v = v <= hi ? v : hi;
            q[j] = (v + big) - big;
        }
    }
}

/* sum a[i]*b[i] and sum a[i] with eight partial sums (n multiple of 8). */
static inline float colloq_dot8(int n, const float *a, const float *b) {
    float acc[8] = { 0 };
    for (int i = 0; i < n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
static inline float colloq_sum8(int n, const float *a) {
    float acc[8] = { 0 };
    for (int i = 0; i < n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
/* sum (scale * q[i] + offset - x[i])^2 (n multiple of 8). */
static inline float colloq_q_err(int n, const float *x, const float *q, float scale, float offset) {
    float acc[8] = { 0 };
    for (int i = 0; i < n; i += 8)
        for (int j = 0; j < 8; j++) {
            float r = scale * q[i + j] + offset - x[i + j];
            acc[j] += r * r;
        }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* Q4_K / Q5_K: 6-bit scale and min of sub-block j (0..7) from the packed 12 bytes. */
static inline void kq_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Q3_K: signed scale of sub-block i (0..15), already minus 32. */
static inline int q3k_scale(const uint8_t *s, int i) {
    int lo = i < 8 ? (s[i] & 15) : (s[i - 8] >> 4);
    int hi = (s[8 + (i & 3)] >> (2 * (i >> 2))) & 3;
    return (lo | (hi << 4)) - 32;
}

/*
 * Least-squares fitting helpers shared by the reference quantizers (quant_ref_fit.c).
 * Both try a small set of candidate scales, refit by least squares and keep the
 * candidate with the lowest squared error.
 *   colloq_fit_sym:    x[i] ~= d * q[i],      q in [qmin, qmax] (qmin < 0 < qmax); returns d.
 *   colloq_fit_affine: x[i] ~= s * q[i] + o,  q in [0, qmax], s >= 0; returns s, *o set;
 *                      with nonpos_offset the offset is constrained to o <= 0 (K-quant mins).
 */
float colloq_fit_sym(int n, const float *x, int qmin, int qmax, int8_t *q);
float colloq_fit_affine(int n, const float *x, int qmax, bool nonpos_offset, uint8_t *q, float *o);

/* Reference kernels, one set per type (quant_ref_basic.c, quant_ref_k.c). */
#define COLLOQ_DECLARE_REF(t)                                               \
    void colloq_##t##_to_float_ref(const void *x, float *y, int64_t n);    \
    void colloq_##t##_from_float_ref(const float *x, void *y, int64_t n);  \
    float colloq_##t##_vec_dot_ref(int64_t n, const void *x, const void *y);
COLLOQ_DECLARE_REF(f32)
COLLOQ_DECLARE_REF(f16)
COLLOQ_DECLARE_REF(bf16)
COLLOQ_DECLARE_REF(q4_0)
COLLOQ_DECLARE_REF(q4_1)
COLLOQ_DECLARE_REF(q5_0)
COLLOQ_DECLARE_REF(q5_1)
COLLOQ_DECLARE_REF(q8_0)
COLLOQ_DECLARE_REF(q8_1)
COLLOQ_DECLARE_REF(q2_K)
COLLOQ_DECLARE_REF(q3_K)
COLLOQ_DECLARE_REF(q4_K)
COLLOQ_DECLARE_REF(q5_K)
COLLOQ_DECLARE_REF(q6_K)
COLLOQ_DECLARE_REF(q8_K)
#undef COLLOQ_DECLARE_REF

#endif
