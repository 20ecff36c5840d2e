/*
 * quant_simd.h - how the SIMD kernel files (quant_*_avx2.c, quant_*_avx512.c)
 * hand their kernels to quant_kernels.c: each exports const tables, never code
 * that runs before the CPU and OS checks.  Internal to libcolloq.
 */
#ifndef COLLOQ_QUANT_SIMD_H
#define COLLOQ_QUANT_SIMD_H

#include "matmul_pack.h"
#include "quant.h"

/* One type's kernels from one file; NULL members are not provided.  Tables end
 * with an entry whose type is CT_COUNT. */
typedef struct {
    uint32_t            type;
    colloq_type_kernels k;      /* vec_dot / from_float / to_float (quant.h) */
    colloq_mmk          mm;     /* matmul kernels (matmul_pack.h) */
} colloq_kernel_entry;

/* Whether this CPU and OS can run a kernel set ("ref", "avx2", "avx512"): tests
 * use it to exercise every variant the host supports. */
bool colloq_kernels_supported(const char *isa);

#if defined(__x86_64__)
extern const colloq_kernel_entry colloq_panel_avx512[];
extern const colloq_kernel_entry colloq_dot_avx512[];
extern const colloq_kernel_entry colloq_panel_avx2[];
extern const colloq_kernel_entry colloq_dot_avx2[];
/* The activation quantisers, shared by the panel and dot files of an ISA. */
void colloq_act32_avx512(const float *x, int64_t k, void *act, int64_t nt, int64_t t, int off);
void colloq_act256_avx512(const float *x, int64_t k, void *act, int64_t nt, int64_t t, int off);
void colloq_act32_avx2(const float *x, int64_t k, void *act, int64_t nt, int64_t t, int off);
void colloq_act256_avx2(const float *x, int64_t k, void *act, int64_t nt, int64_t t, int off);
#endif

#endif
