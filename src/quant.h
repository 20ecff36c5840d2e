/*
 * quant.h - tensor element types as GGUF/ggml define them: ids, block layouts,
 * and the scalar reference conversions and dot products every faster kernel is
 * tested against.  Pure functions over memory; no threads, no allocation.
 *
 * Block layouts are GGUF's published ones, bit for bit, so files written by
 * other quantizers load unchanged.
 */
#ifndef COLLOQ_QUANT_H
#define COLLOQ_QUANT_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

enum colloq_type {           /* ggml type ids as stored in GGUF tensor infos */
    CT_F32 = 0, CT_F16 = 1, CT_Q4_0 = 2, CT_Q4_1 = 3, CT_Q5_0 = 6, CT_Q5_1 = 7,
    CT_Q8_0 = 8, CT_Q8_1 = 9, CT_Q2_K = 10, CT_Q3_K = 11, CT_Q4_K = 12, CT_Q5_K = 13,
    CT_Q6_K = 14, CT_Q8_K = 15, CT_BF16 = 30, CT_COUNT = 40
};

/* x: n floats -> y: n/blck elements of the type (n multiple of blck). */
typedef void (*colloq_from_float_fn)(const float *x, void *y, int64_t n);
/* x: n/blck blocks -> y: n floats. */
typedef void (*colloq_to_float_fn)(const void *x, float *y, int64_t n);
/* sum_i dequant(x)[i] * dequant(y)[i], x of this type, y of vec_dot_type, n elements. */
typedef float (*colloq_vec_dot_fn)(int64_t n, const void *x, const void *y);

typedef struct {
    const char *name;          /* "Q4_0", "F16", ... as llama.cpp names them */
    int   blck;                /* elements per block (1 for float types) */
    int   type_size;           /* bytes per block */
    bool  supported;           /* has at least reference to_float */
    colloq_to_float_fn   to_float;
    colloq_from_float_fn from_float;        /* reference quantizer */
    enum colloq_type     vec_dot_type;      /* activations are converted to this type */
    colloq_vec_dot_fn    vec_dot;           /* reference dot(x: this type, y: vec_dot_type) */
} colloq_type_traits;

/* Traits of a type id; NULL for ids that are unknown or not in this build. */
const colloq_type_traits *colloq_type_get(uint32_t type);
/* Case-insensitive name lookup ("q4_0", "F16"); -1 if unknown. */
int colloq_type_from_name(const char *name);
/* Bytes for n elements (n must be a multiple of blck); false on overflow / bad n. */
bool colloq_type_row_size(uint32_t type, int64_t n, uint64_t *out);

/*
 * Reference accuracy.  Reference vec_dot sums each block in int32 (float types: one
 * product at a time), accumulates in double and rounds once to float, so for n
 * elements it is within 2^-23 * sum_i |x_i*y_i| + 2^-24 * |dot| of the float64 dot of
 * to_float(x) and to_float(y).  The Q4_1/Q5_1 minimum term uses the exact sum of the
 * Q8_1 levels, not the f16-rounded s field.  to_float rounds once per element to float
 * (exact for every layout where the product of the scales and the level fits 24 bits).
 * Block data must be 2-byte aligned (Q8_K and F32: 4), as GGUF rows always are.
 *
 * Kernel dispatch.  colloq_type_get() always gives the scalar reference.  Hot paths
 * (matmul) use colloq_type_fast(): a second per-type table that starts equal to the
 * reference and that colloq_kernels_init() (quant_kernels.c) may fill, once per
 * process, with SIMD variants chosen by CPU detection (COLLOQ_KERNELS=ref in the
 * environment forces the reference).  A variant keeps the type's vec_dot_type and
 * block layout and must match the reference within the budget tests/test_quant.c
 * states for fast kernels.  matmul calls colloq_kernels_init() itself; it is
 * idempotent and thread-safe, and colloq_type_set_fast() is only for it to call.
 */
typedef struct {
    colloq_to_float_fn   to_float;
    colloq_from_float_fn from_float;   /* used to quantise activations of this type */
    colloq_vec_dot_fn    vec_dot;      /* dot(x: this type, y: vec_dot_type) */
    const char          *isa;          /* "ref", "avx2", "avx512", ... */
} colloq_type_kernels;

/* The kernels to use for a type (never NULL when colloq_type_get(type) is not NULL). */
const colloq_type_kernels *colloq_type_fast(uint32_t type);
/* Replace a type's kernels (NULL members keep the current ones). */
void colloq_type_set_fast(uint32_t type, const colloq_type_kernels *k);
/* Choose kernels for this CPU once per process (see above). */
void colloq_kernels_init(void);
/* Name of the kernel set chosen ("ref" until colloq_kernels_init picks another). */
const char *colloq_kernels_isa(void);

#endif
