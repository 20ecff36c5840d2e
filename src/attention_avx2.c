/*
 * attention_avx2.c - the attention work-item kernel (attention_body.h) compiled for AVX2
 * + FMA: vectors of 8 floats, blocks of 2 query rows x 4 vectors.  attention.c calls it
 * only after the CPU and OS checks (colloq_att_kernel).
 */
#if defined(__x86_64__) && defined(__AVX2__)

#include <immintrin.h>

#include "attention_kern.h"

#define VW 8
#define ATT_FMA(a, b, c) ((vf)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#define ATT_FMAF(a, b, c) __builtin_fmaf(a, b, c)
#define ATT_RB 2
#define ATT_KC 4
#define ATT_FN colloq_att_item_avx2
#include "attention_body.h"

#endif
