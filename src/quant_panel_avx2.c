/*
 * quant_panel_avx2.c - AVX2 (+ FMA, F16C) matmul kernels: the block-major
 * activation quantisers and the packed-panel kernels of every quantised type
 * (quant_panel_body.h over 8 x 32-bit lanes, a 16-row panel as two halves; int8
 * products with vpmaddubsw + vpmaddwd).  Each kernel equals the scalar reference
 * of matmul_pack.c bit for bit.  Exposes only a const table that quant_kernels.c
 * registers after checking the CPU and the OS; no state.
 */
#if defined(__x86_64__) && defined(__AVX2__)

#include "matmul_pack.h"
#include "quant_blocks.h"
#include "quant_simd.h"

#include <immintrin.h>
#include <string.h>

#define INL static inline __attribute__((always_inline))

INL int32_t ld32(const void *p) { int32_t v; memcpy(&v, p, 4); return v; }

/* ---- activation quantisers: the reference levels, vectorised ---- */

/* Levels of x * inv rounded to nearest even, clamped to [-127, 127] (NaN -> -127). */
INL __m256i levels8(__m256 x, __m256 inv) {
    __m256 v = _mm256_mul_ps(x, inv);
    v = _mm256_max_ps(v, _mm256_set1_ps(-127.0f));   /* NaN in v gives the second operand */
    v = _mm256_min_ps(v, _mm256_set1_ps(127.0f));
    return _mm256_cvtps_epi32(v);                     /* MXCSR default: nearest even */
}
INL __m256 absmax_acc(__m256 acc, __m256 x) {
    return _mm256_max_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), x), acc);   /* NaN keeps acc */
}
INL float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}
/* Store 8 int32 levels (in [-127, 127]) as int8; returns their sum. */
INL int32_t store8(int8_t *dst, __m256i q) {
    int32_t v[8];
    _mm256_storeu_si256((__m256i *)v, q);
    int32_t s = 0;
    for (int i = 0; i < 8; i++) { dst[i] = (int8_t)v[i]; s += v[i]; }
    return s;
}

void colloq_act32_avx2(const float *x, int64_t k, void *vact, int64_t nt, int64_t t, int off) {
    colloq_act32 *act = vact;
    for (int64_t b = 0; b < k / 32; b++, x += 32) {
        __m256 m = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) m = absmax_acc(m, _mm256_loadu_ps(x + 8 * i));
        float amax = hmax8(m);
        uint16_t dh = (uint16_t)_cvtss_sh(amax / 127.0f, 0);
        float df = _cvtsh_ss(dh);
        __m256 inv = _mm256_set1_ps(df != 0 && __builtin_isfinite(df) ? 1.0f / df : 0.0f);
        colloq_act32 *a = &act[b * nt + t];
        int32_t s = 0;
        for (int i = 0; i < 4; i++) s += store8(a->qs + 8 * i, levels8(_mm256_loadu_ps(x + 8 * i), inv));
        a->d = df;
        a->sum = s;
        a->corr = -off * s;
        a->pad = 0;
    }
}

void colloq_act256_avx2(const float *x, int64_t k, void *vact, int64_t nt, int64_t t, int off) {
    colloq_act256 *act = vact;
    for (int64_t b = 0; b < k / 256; b++, x += 256) {
        __m256 m = _mm256_setzero_ps();
        for (int i = 0; i < 32; i++) m = absmax_acc(m, _mm256_loadu_ps(x + 8 * i));
        float amax = hmax8(m);
        colloq_act256 *a = &act[b * nt + t];
        memset(a, 0, sizeof *a);
        a->d = __builtin_isfinite(amax) ? amax / 127.0f : 0.0f;
        __m256 inv = _mm256_set1_ps(a->d != 0 ? 127.0f / amax : 0.0f);
        for (int i = 0; i < 16; i++) {
            int32_t s = store8(a->qs + 16 * i, levels8(_mm256_loadu_ps(x + 16 * i), inv));
            s += store8(a->qs + 16 * i + 8, levels8(_mm256_loadu_ps(x + 16 * i + 8), inv));
            a->bs16[i] = (int16_t)s;
            a->corr16[i] = -off * s;
        }
        for (int j = 0; j < 8; j++) a->bs32[j] = (int16_t)(a->bs16[2 * j] + a->bs16[2 * j + 1]);
    }
}

/* ---- the kernels: quant_panel_body.h over 8 x 32-bit lanes, two halves ---- */

#define LANES 8
#define HALVES 2
typedef __m256i V;
typedef __m256 VF;
#define vld(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define vst(p, v) _mm256_storeu_si256((__m256i *)(void *)(p), v)
#define vset1(x) _mm256_set1_epi32((int)(x))
#define vzero() _mm256_setzero_si256()
#define vand _mm256_and_si256
#define vor _mm256_or_si256
#define vadd _mm256_add_epi32
#define vsub _mm256_sub_epi32
#define vsrl16 _mm256_srli_epi16
#define vsll16 _mm256_slli_epi16
#define vsrl32 _mm256_srli_epi32
#define vsll32 _mm256_slli_epi32
#define vsra32 _mm256_srai_epi32
#define vmadd16 _mm256_madd_epi16
#define vcvt _mm256_cvtepi32_ps
#define vfld _mm256_loadu_ps
#define vfst _mm256_storeu_ps
#define vfset1 _mm256_set1_ps
#define vfmul _mm256_mul_ps
#define vfma _mm256_fmadd_ps
#define vfnma _mm256_fnmadd_ps
#define vhalf(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p)))
/* acc + 4-byte dot products of unsigned u (levels < 64: no saturation) with the dword at p. */
INL V vdp(V acc, V u, const void *p) {
    V prod = _mm256_maddubs_epi16(u, _mm256_set1_epi32(ld32(p)));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(prod, _mm256_set1_epi16(1)));
}
/* Q8_0 stored levels + 128: back to signed, then |w| * (a with w's sign). */
INL V vdp_q8(V acc, V u, const void *p) {
    V w = _mm256_xor_si256(u, _mm256_set1_epi8((char)0x80));
    V prod = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(_mm256_set1_epi32(ld32(p)), w));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(prod, _mm256_set1_epi16(1)));
}
#define Q8_CORR(a) 0
INL V vbitadd(V u, V h, int bit, int add) {
    V b = _mm256_set1_epi8((char)bit);
    V m = _mm256_cmpeq_epi8(_mm256_and_si256(h, b), b);
    return _mm256_add_epi8(u, _mm256_and_si256(m, _mm256_set1_epi8((char)add)));
}

#include "quant_panel_body.h"

const colloq_kernel_entry colloq_panel_avx2[] = {
    { CT_Q4_0, { 0 }, { colloq_act32_avx2, panel_q4_0, NULL, "avx2" } },
    { CT_Q4_1, { 0 }, { colloq_act32_avx2, panel_q4_1, NULL, "avx2" } },
    { CT_Q5_0, { 0 }, { colloq_act32_avx2, panel_q5_0, NULL, "avx2" } },
    { CT_Q5_1, { 0 }, { colloq_act32_avx2, panel_q5_1, NULL, "avx2" } },
    { CT_Q8_0, { 0 }, { colloq_act32_avx2, panel_q8_0, NULL, "avx2" } },
    { CT_Q2_K, { 0 }, { colloq_act256_avx2, panel_q2_K, NULL, "avx2" } },
    { CT_Q3_K, { 0 }, { colloq_act256_avx2, panel_q3_K, NULL, "avx2" } },
    { CT_Q4_K, { 0 }, { colloq_act256_avx2, panel_q4_K, NULL, "avx2" } },
    { CT_Q5_K, { 0 }, { colloq_act256_avx2, panel_q5_K, NULL, "avx2" } },
    { CT_Q6_K, { 0 }, { colloq_act256_avx2, panel_q6_K, NULL, "avx2" } },
    { CT_COUNT, { 0 }, { 0 } },
};

#endif
