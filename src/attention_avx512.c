/*
 * attention_avx512.c - the attention work-item kernel (attention_body.h) compiled for
 * AVX-512F: vectors of 16 floats, blocks of 4 query rows x 4 vectors (16 accumulators),
 * and the key tile transposed in 16 x 16 blocks in registers.  attention.c calls it only
 * after the CPU and OS checks (colloq_att_kernel).
 */
#if defined(__x86_64__) && defined(__AVX512F__)

#include <immintrin.h>

#include "attention_kern.h"

/* kT[d][t] = kt[t][d] (t < tn, d < hd; kt rows of hd floats), keys tn..KTILE-1 zero:
 * 16 x 16 blocks, rows past tn and columns past hd read as zero (masked loads). */
static void transpose_avx512(const float *restrict kt, int tn, int hd, float *restrict kT) {
    for (int t0 = 0; t0 < COLLOQ_ATT_KTILE; t0 += 16) {
        for (int d0 = 0; d0 < hd; d0 += 16) {
            int nd = hd - d0 < 16 ? hd - d0 : 16;
            __mmask16 cols = (__mmask16)((1u << nd) - 1u);
            __m512 r[16], t[16];
            for (int i = 0; i < 16; i++)
                r[i] = t0 + i < tn ? _mm512_maskz_loadu_ps(cols, kt + (size_t)(t0 + i) * hd + d0)
                                   : _mm512_setzero_ps();
            for (int i = 0; i < 16; i += 2) {            /* pairs of rows interleaved */
                t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
            }
            for (int i = 0; i < 16; i += 4) {            /* r[i + c], lane k: rows i..i+3 of column 4k + c */
                __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
                __m512d c = _mm512_castps_pd(t[i + 2]), e = _mm512_castps_pd(t[i + 3]);
                r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
                r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
                r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, e));
                r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, e));
            }
            for (int c = 0; c < 4; c++) {                /* column 4k + c from lane k of r[c], r[4+c], ... */
                __m512 v0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88), v1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
                __m512 w0 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
                __m512 w1 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
                __m512 col[4] = { _mm512_shuffle_f32x4(v0, w0, 0x88), _mm512_shuffle_f32x4(v1, w1, 0x88),
                                  _mm512_shuffle_f32x4(v0, w0, 0xdd), _mm512_shuffle_f32x4(v1, w1, 0xdd) };
                for (int k = 0; k < 4; k++)
                    if (4 * k + c < nd) _mm512_storeu_ps(kT + (size_t)(d0 + 4 * k + c) * COLLOQ_ATT_KTILE + t0, col[k]);
            }
        }
    }
}

#define VW 16
#define ATT_FMA(a, b, c) ((vf)_mm512_fmadd_ps((__m512)(a), (__m512)(b), (__m512)(c)))
#define ATT_FMAF(a, b, c) __builtin_fmaf(a, b, c)
#define ATT_RB 4
#define ATT_KC 4
#define ATT_FN colloq_att_item_avx512
#define ATT_TRANSPOSE transpose_avx512
#include "attention_body.h"

#endif
