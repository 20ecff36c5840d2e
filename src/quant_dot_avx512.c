/*
 * quant_dot_avx512.c - AVX-512 (F/BW/VL/DQ + VNNI) row-major kernels:
 * vec_dot of every quantised type against its activation type (256-bit vpdpbusd,
 * quant_dot_body.h), float tiles of F32/F16/BF16 weights (16-lane FMA), and fast
 * conversions (Q8_0/Q8_1/Q8_K quantisers with the reference's levels, F16/BF16).
 * Exposes only a const table that quant_kernels.c registers after checking the
 * CPU and the OS; no state.
 */
#if defined(__x86_64__) && defined(__AVX512F__)

#include "quant_blocks.h"
#include "quant_simd.h"

#include <immintrin.h>
#include <string.h>

#define INL static inline __attribute__((always_inline))

typedef __m256i Y;
#define yld(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define ydp(acc, u, a) _mm256_dpbusd_epi32(acc, u, a)
INL Y ybitadd(Y u, Y h, int bit, int add) {
    return _mm256_mask_add_epi8(u, _mm256_test_epi8_mask(h, _mm256_set1_epi8((char)bit)), u,
                                _mm256_set1_epi8((char)add));
}

#define W 16
#define TILE_T 4
typedef __m512 VF;
#define fzero _mm512_setzero_ps
#define fld _mm512_loadu_ps
#define ffma _mm512_fmadd_ps
#define fhsum _mm512_reduce_add_ps
#define wld_f32(p) _mm512_loadu_ps(p)
#define wld_f16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p)))
#define wld_bf16(p) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(p))), 16))
#define fst _mm512_storeu_ps
#define fmul _mm512_mul_ps
#define fset1 _mm512_set1_ps
#define wld_q8(p) _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p))))

#define ACT32 colloq_act32_avx512
#define ACT256 colloq_act256_avx512

#include "quant_dot_body.h"

/* ---- F16 / BF16 from float (to float: quant_dot_body.h) ---- */

static void from_float_f16(const float *x, void *vy, int64_t n) {
    uint16_t *y = vy;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        /* NaN: the reference's canonical quiet NaN (sign kept) */
        __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        __m256i sign = _mm256_and_si256(h, _mm256_set1_epi16((short)0x8000));
        h = _mm256_mask_mov_epi16(h, nan, _mm256_or_si256(sign, _mm256_set1_epi16(0x7e00)));
        _mm256_storeu_si256((__m256i *)(y + i), h);
    }
    for (; i < n; i++) y[i] = f2h(x[i]);
}
static void from_float_bf16(const float *x, void *vy, int64_t n) {
    uint16_t *y = vy;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i u = _mm512_castps_si512(_mm512_loadu_ps(x + i));
        __m512i r = _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1)));
        __m512i v = _mm512_srli_epi32(_mm512_add_epi32(u, r), 16);
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
        v = _mm512_mask_mov_epi32(v, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtepi32_epi16(v));
    }
    for (; i < n; i++) y[i] = colloq_f32_to_bf16(x[i]);
}

#define ISA "avx512"
const colloq_kernel_entry colloq_dot_avx512[] = {
    { CT_F32, { NULL, NULL, tile_f32_dot, ISA }, { NULL, NULL, tile_f32, ISA } },
    { CT_F16, { to_float_f16, from_float_f16, tile_f16_dot, ISA }, { NULL, NULL, tile_f16, ISA } },
    { CT_BF16, { to_float_bf16, from_float_bf16, tile_bf16_dot, ISA }, { NULL, NULL, tile_bf16, ISA } },
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
