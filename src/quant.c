/*
 * quant.c - the type table: names, block sizes and reference kernels of every
 * supported tensor type, name/size lookups, and the mutable "fast" kernel table
 * that colloq_kernels_init() may point at SIMD variants.  No math here (see
 * quant_ref_*.c), no allocation, no threads.
 */
#include "quant_blocks.h"

#include <strings.h>

#define REF(id, nm, b, sz, t, vdt)                                             \
    [id] = { .name = nm, .blck = b, .type_size = sz, .supported = true,        \
             .to_float = colloq_##t##_to_float_ref,                            \
             .from_float = colloq_##t##_from_float_ref,                        \
             .vec_dot_type = vdt, .vec_dot = colloq_##t##_vec_dot_ref }

static const colloq_type_traits traits[CT_COUNT] = {
    REF(CT_F32,  "F32",  1, 4, f32, CT_F32),
    REF(CT_F16,  "F16",  1, 2, f16, CT_F32),
    REF(CT_BF16, "BF16", 1, 2, bf16, CT_F32),
    REF(CT_Q4_0, "Q4_0", QK, sizeof(block_q4_0), q4_0, CT_Q8_0),
    REF(CT_Q4_1, "Q4_1", QK, sizeof(block_q4_1), q4_1, CT_Q8_1),
    REF(CT_Q5_0, "Q5_0", QK, sizeof(block_q5_0), q5_0, CT_Q8_0),
    REF(CT_Q5_1, "Q5_1", QK, sizeof(block_q5_1), q5_1, CT_Q8_1),
    REF(CT_Q8_0, "Q8_0", QK, sizeof(block_q8_0), q8_0, CT_Q8_0),
    REF(CT_Q8_1, "Q8_1", QK, sizeof(block_q8_1), q8_1, CT_Q8_1),
    REF(CT_Q2_K, "Q2_K", QK_K, sizeof(block_q2_K), q2_K, CT_Q8_K),
    REF(CT_Q3_K, "Q3_K", QK_K, sizeof(block_q3_K), q3_K, CT_Q8_K),
    REF(CT_Q4_K, "Q4_K", QK_K, sizeof(block_q4_K), q4_K, CT_Q8_K),
    REF(CT_Q5_K, "Q5_K", QK_K, sizeof(block_q5_K), q5_K, CT_Q8_K),
    REF(CT_Q6_K, "Q6_K", QK_K, sizeof(block_q6_K), q6_K, CT_Q8_K),
    REF(CT_Q8_K, "Q8_K", QK_K, sizeof(block_q8_K), q8_K, CT_Q8_K),
};
#undef REF

#define FAST(id, t) [id] = { colloq_##t##_to_float_ref, colloq_##t##_from_float_ref, \
                             colloq_##t##_vec_dot_ref, "ref" }

/* Written only by colloq_type_set_fast (from colloq_kernels_init, under pthread_once). */
static colloq_type_kernels fast[CT_COUNT] = {
    FAST(CT_F32, f32),   FAST(CT_F16, f16),   FAST(CT_BF16, bf16),
    FAST(CT_Q4_0, q4_0), FAST(CT_Q4_1, q4_1), FAST(CT_Q5_0, q5_0), FAST(CT_Q5_1, q5_1),
    FAST(CT_Q8_0, q8_0), FAST(CT_Q8_1, q8_1),
    FAST(CT_Q2_K, q2_K), FAST(CT_Q3_K, q3_K), FAST(CT_Q4_K, q4_K), FAST(CT_Q5_K, q5_K),
    FAST(CT_Q6_K, q6_K), FAST(CT_Q8_K, q8_K),
};
#undef FAST

const colloq_type_traits *colloq_type_get(uint32_t type) {
    if (type >= CT_COUNT || !traits[type].name) return NULL;
    return &traits[type];
}

int colloq_type_from_name(const char *name) {
    if (!name) return -1;
    for (int t = 0; t < CT_COUNT; t++)
        if (traits[t].name && strcasecmp(traits[t].name, name) == 0) return t;
    return -1;
}

bool colloq_type_row_size(uint32_t type, int64_t n, uint64_t *out) {
    const colloq_type_traits *tr = colloq_type_get(type);
    if (!tr || n < 0 || n % tr->blck != 0) return false;
    uint64_t bytes;
    if (!colloq_mul_u64((uint64_t)(n / tr->blck), (uint64_t)tr->type_size, &bytes)) return false;
    if (out) *out = bytes;
    return true;
}

const colloq_type_kernels *colloq_type_fast(uint32_t type) {
    if (!colloq_type_get(type)) return NULL;
    return &fast[type];
}

void colloq_type_set_fast(uint32_t type, const colloq_type_kernels *k) {
    if (!colloq_type_get(type) || !k) return;
    colloq_type_kernels *f = &fast[type];
    if (k->to_float) f->to_float = k->to_float;
    if (k->from_float) f->from_float = k->from_float;
    if (k->vec_dot) f->vec_dot = k->vec_dot;
    if (k->isa) f->isa = k->isa;
}
