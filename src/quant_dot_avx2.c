/*
 * quant_dot_avx2.c - AVX2 (+ FMA, F16C) row-major kernels: vec_dot of every
 * quantised type against its activation type (vpmaddubsw + vpmaddwd,
 * quant_dot_body.h), float tiles of F32/F16/BF16 weights (8-lane FMA), and fast
 * conversions (Q8_0/Q8_1/Q8_K quantisers with the reference's levels, F16/BF16).
 * Exposes only a const table that quant_kernels.c registers after checking the
 * CPU and the OS; no state.
 */
#if defined(__x86_64__) && defined(__AVX2__)

#include "quant_blocks.h"
#include "quant_simd.h"

#include <immintrin.h>
#include <string.h>

#define INL static inline __attribute__((always_inline))

typedef __m256i Y;
#define yld(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
/* acc + 4-byte dots of unsigned u (< 128 with |a| <= 127: no int16 saturation) with a. */
INL Y ydp(Y acc, Y u, Y a) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, a), _mm256_set1_epi16(1)));
}
INL Y ybitadd(Y u, Y h, int bit, int add) {
    Y b = _mm256_set1_epi8((char)bit);
    return _mm256_add_epi8(u, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(h, b), b), _mm256_set1_epi8((char)add)));
}

#define W 8
#define TILE_T 2
typedef __m256 VF;
#define fzero _mm256_setzero_ps
#define fld _mm256_loadu_ps
#define ffma _mm256_fmadd_ps
#define wld_f32(p) _mm256_loadu_ps(p)
#define wld_f16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#define wld_bf16(p) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p))), 16))
#define fst _mm256_storeu_ps
#define fmul _mm256_mul_ps
#define fset1 _mm256_set1_ps
#define wld_q8(p) _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(p))))
INL float fhsum(VF v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#define ACT32 colloq_act32_avx2
#define ACT256 colloq_act256_avx2

#include "quant_dot_body.h"

/* ---- F16 / BF16 from float (to float: quant_dot_body.h) ---- */

static void from_float_f16(const float *x, void *vy, int64_t n) {
    uint16_t *y = vy;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) {   /* NaN: the reference's rule */
            for (int j = 0; j < 8; j++) y[i + j] = f2h(x[i + j]);
            continue;
        }
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    for (; i < n; i++) y[i] = f2h(x[i]);
}
#define ISA "avx2"
const colloq_kernel_entry colloq_dot_avx2[] = {
    { CT_F32, { NULL, NULL, tile_f32_dot, ISA }, { NULL, NULL, tile_f32, ISA } },
    { CT_F16, { to_float_f16, from_float_f16, tile_f16_dot, ISA }, { NULL, NULL, tile_f16, ISA } },
    { CT_BF16, { to_float_bf16, NULL, tile_bf16_dot, ISA }, { NULL, NULL, tile_bf16, ISA } },
    { CT_Q4_0, { NULL, NULL, dot_q4_0, ISA }, { 0 } },
    { CT_Q4_1, { NULL, NULL, dot_q4_1, ISA }, { 0 } },
    { CT_Q5_0, { NULL, NULL, dot_q5_0, ISA }, { 0 } },
    { CT_Q5_1, { NULL, NULL, dot_q5_1, ISA }, { 0 } },
    { CT_Q8_0, { to_float_q8_0, from_float_q8_0, dot_q8_0, ISA }, { 0 } },
    { CT_Q8_1, { NULL, from_float_q8_1, NULL, ISA }, { 0 } },
    { CT_Q2_K, { NULL, NULL, dot_q2_K, ISA }, { 0 } },
    { CT_Q3_K, { NULL, NULL, dot_q3_K, ISA }, { 0 } },
    { CT_Q4_K, { NULL, NULL, dot_q4_K, ISA }, { 0 } },
    { CT_Q5_K, { NULL, NULL, dot_q5_K, ISA }, { 0 } },
    { CT_Q6_K, { NULL, NULL, dot_q6_K, ISA }, { 0 } },
    { CT_Q8_K, { NULL, from_float_q8_K, NULL, ISA }, { 0 } },
    { CT_COUNT, { 0 }, { 0 } },
};

#endif
