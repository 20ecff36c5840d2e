/*
 * quant_panel_avx512.c - AVX-512 (F/BW/VL/DQ + VNNI) matmul kernels: the
 * block-major activation quantisers and the packed-panel kernels of every
 * quantised type (layouts and the per-lane recipe in matmul_pack.h), one 512-bit
 * lane per weight row, int8 products with vpdpbusd.  Each kernel equals the
 * scalar reference of matmul_pack.c bit for bit.  Exposes only a const table that
 * quant_kernels.c registers after checking the CPU and the OS; no state.
 */
#if defined(__x86_64__) && defined(__AVX512F__)

#include "matmul_pack.h"
#include "quant_blocks.h"
#include "quant_simd.h"

#include <immintrin.h>
#include <string.h>

#define INL static inline __attribute__((always_inline))

/* ---- activation quantisers: the reference levels, vectorised ---- */

/* Levels of x * inv rounded to nearest even, clamped to [-127, 127] (NaN -> -127). */
INL __m512i levels16(__m512 x, __m512 inv) {
    __m512 v = _mm512_mul_ps(x, inv);
    v = _mm512_max_ps(v, _mm512_set1_ps(-127.0f));   /* NaN in v gives the second operand */
    v = _mm512_min_ps(v, _mm512_set1_ps(127.0f));
    return _mm512_cvtps_epi32(v);                     /* MXCSR default: nearest even */
}
INL __m512 absmax_acc(__m512 acc, __m512 x) {
    __m512 a = _mm512_andnot_ps(_mm512_set1_ps(-0.0f), x);
    return _mm512_max_ps(a, acc);                     /* a NaN element keeps acc (as fmaxf) */
}

void colloq_act32_avx512(const float *x, int64_t k, void *vact, int64_t nt, int64_t t, int off) {
    colloq_act32 *act = vact;
    for (int64_t b = 0; b < k / 32; b++, x += 32) {
        __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
        float amax = _mm512_reduce_max_ps(absmax_acc(absmax_acc(_mm512_setzero_ps(), x0), x1));
        uint16_t dh = (uint16_t)_cvtss_sh(amax / 127.0f, 0);
        float df = _cvtsh_ss(dh);
        float inv = df != 0 && __builtin_isfinite(df) ? 1.0f / df : 0.0f;
        __m512i q0 = levels16(x0, _mm512_set1_ps(inv)), q1 = levels16(x1, _mm512_set1_ps(inv));
        colloq_act32 *a = &act[b * nt + t];
        _mm_storeu_si128((__m128i *)a->qs, _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(a->qs + 16), _mm512_cvtepi32_epi8(q1));
        int32_t s = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
        a->d = df;
        a->sum = s;
        a->corr = -off * s;
        a->pad = 0;
    }
}

void colloq_act256_avx512(const float *x, int64_t k, void *vact, int64_t nt, int64_t t, int off) {
    colloq_act256 *act = vact;
    for (int64_t b = 0; b < k / 256; b++, x += 256) {
        __m512 m = _mm512_setzero_ps();
        #pragma GCC unroll 16
        for (int i = 0; i < 16; i++) m = absmax_acc(m, _mm512_loadu_ps(x + 16 * i));
        float amax = _mm512_reduce_max_ps(m);
        colloq_act256 *a = &act[b * nt + t];
        a->d = __builtin_isfinite(amax) ? amax / 127.0f : 0.0f;
        __m512 inv = _mm512_set1_ps(a->d != 0 ? 127.0f / amax : 0.0f);
        #pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            __m512i q = levels16(_mm512_loadu_ps(x + 16 * i), inv);
            _mm_storeu_si128((__m128i *)(a->qs + 16 * i), _mm512_cvtepi32_epi8(q));
            a->bs16[i] = (int16_t)_mm512_reduce_add_epi32(q);
            a->corr16[i] = -off * a->bs16[i];
        }
        #pragma GCC unroll 16
        for (int j = 0; j < 8; j++) a->bs32[j] = (int16_t)(a->bs16[2 * j] + a->bs16[2 * j + 1]);
        memset(a->pad0, 0, sizeof a->pad0);
    }
}

/* ---- the kernels: quant_panel_body.h over 16 x 32-bit lanes ---- */

#define LANES 16
#define HALVES 1
typedef __m512i V;
typedef __m512 VF;
#define vld(p) _mm512_loadu_si512((const void *)(p))
#define vst(p, v) _mm512_storeu_si512((void *)(p), v)
#define vset1(x) _mm512_set1_epi32((int)(x))
#define vzero() _mm512_setzero_si512()
#define vand _mm512_and_si512
#define vor _mm512_or_si512
#define vadd _mm512_add_epi32
#define vsub _mm512_sub_epi32
#define vsrl16 _mm512_srli_epi16
#define vsll16 _mm512_slli_epi16
#define vsrl32 _mm512_srli_epi32
#define vsll32 _mm512_slli_epi32
#define vsra32 _mm512_srai_epi32
#define vmadd16 _mm512_madd_epi16
#define vcvt _mm512_cvtepi32_ps
/* vpdpbusd with the activation dword as an embedded broadcast: one fused uop instead of
 * a broadcast load plus the product (the compiler does not fold it itself). */
INL V vdp(V acc, V u, const void *p) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(u), "m"(*(const int32_t *)p));
    return acc;
}
#define vdp_q8 vdp
#define Q8_CORR(a) ((a)->corr)
#define vfld _mm512_loadu_ps
#define vfst _mm512_storeu_ps
#define vfset1 _mm512_set1_ps
#define vfmul _mm512_mul_ps
#define vfma _mm512_fmadd_ps
#define vfnma _mm512_fnmadd_ps
#define vhalf(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p)))
INL V vbitadd(V u, V h, int bit, int add) {
    return _mm512_mask_add_epi8(u, _mm512_test_epi8_mask(h, _mm512_set1_epi8((char)bit)), u,
                                _mm512_set1_epi8((char)add));
}

#include "quant_panel_body.h"

const colloq_kernel_entry colloq_panel_avx512[] = {
    { CT_Q4_0, { 0 }, { colloq_act32_avx512, panel_q4_0, NULL, "avx512" } },
    { CT_Q4_1, { 0 }, { colloq_act32_avx512, panel_q4_1, NULL, "avx512" } },
    { CT_Q5_0, { 0 }, { colloq_act32_avx512, panel_q5_0, NULL, "avx512" } },
    { CT_Q5_1, { 0 }, { colloq_act32_avx512, panel_q5_1, NULL, "avx512" } },
    { CT_Q8_0, { 0 }, { colloq_act32_avx512, panel_q8_0, NULL, "avx512" } },
    { CT_Q2_K, { 0 }, { colloq_act256_avx512, panel_q2_K, NULL, "avx512" } },
    { CT_Q3_K, { 0 }, { colloq_act256_avx512, panel_q3_K, NULL, "avx512" } },
    { CT_Q4_K, { 0 }, { colloq_act256_avx512, panel_q4_K, NULL, "avx512" } },
    { CT_Q5_K, { 0 }, { colloq_act256_avx512, panel_q5_K, NULL, "avx512" } },
    { CT_Q6_K, { 0 }, { colloq_act256_avx512, panel_q6_K, NULL, "avx512" } },
    { CT_COUNT, { 0 }, { 0 } },
};

#endif
