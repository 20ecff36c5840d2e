/*
 * matmul_pack.h - the contract between matmul.c, the packed-panel code
 * (matmul_pack.c: layouts, scalar packers and scalar reference kernels) and the
 * SIMD kernel files (quant_*_avx2.c, quant_*_avx512.c).  Internal to libcolloq.
 * Pure functions over caller memory: nothing here allocates or starts threads.
 *
 * Packed panels.  Quantised weights are multiplied in panels of 16 rows whose
 * blocks are interleaved so that one 64-byte vector holds 4 consecutive
 * quantised elements of each of the 16 rows ("a group": row r at bytes 4r..4r+3).
 * A dot-product instruction then gives 16 rows' partial sums in 16 lanes, and a
 * panel serves one token (decode) or many (prefill) with the same per-lane
 * arithmetic.  A panel holds exactly the bytes of its 16 row-major rows (missing
 * rows of the last panel are zero), so decode reads as many bytes as the file.
 * Layouts per block (or super-block), all little-endian, f16 as raw bits:
 *   Q4_0  d[16] f16 | 4 groups: group g = qs[4g..4g+3]                     (288 B)
 *   Q4_1  d[16], m[16] f16 | 4 qs groups                                   (320 B)
 *   Q5_0  d[16] | qh group | 4 qs groups                                   (352 B)
 *   Q5_1  d[16], m[16] | qh group | 4 qs groups                            (384 B)
 *         qh group: byte i of lane r, bit p = 5th bit of element
 *         (p < 4 ? 4p + i : 16 + 4(p - 4) + i)  (a private order, see pack_qh5)
 *   Q8_0  d[16] | 8 groups: group g = qs[4g..4g+3] XOR 0x80 (levels + 128)  (544 B)
 *   Q2_K  d[16], dmin[16] | scales: 4 groups (scales[4i..4i+3]) | qs: 16 groups,
 *         group 8n + g = qs[32n + 4g..+3]                                  (1344 B)
 *   Q3_K  d[16] | scales: 3 groups (the 12 packed bytes) | hmask: 8 groups
 *         (hmask[4g..]) | qs: 16 groups as Q2_K                            (1760 B)
 *   Q4_K  d[16], dmin[16] | scales: 3 groups | qs: 32 groups,
 *         group 8c + g = qs[32c + 4g..+3]                                  (2304 B)
 *   Q5_K  as Q4_K with qh: 8 groups (qh[4g..+3]) after the scales          (2816 B)
 *   Q6_K  d[16] | scales: 4 groups | for n = 0, 1: ql[64n + 4g..] (8 groups) |
 *         qh[32n + 4g..] (8 groups) | ql[64n + 32 + 4g..] (8 groups)        (3360 B)
 *         (in the order the kernels first read them, for the hardware prefetcher)
 *
 * Activations for packed kernels are quantised per token exactly as the weight
 * type's vec_dot_type reference quantiser does (same levels, same scale), and
 * stored block-major: block b of token t of an M-token batch is element
 * b * M + t of an array of colloq_act32 / colloq_act256.
 *
 * Per-lane arithmetic (the "recipe").  Block sums are exact int32; the float
 * part, per (weight row, token), is a sequential chain over blocks in order:
 *   32-blocks:  f = fmaf((float)S_b, dw_b * da_b, f)            S_b = sum w_e * a_e
 *               (+ f = fmaf((float)sum_a, m_b * da_b, f) for Q4_1 / Q5_1)
 *   K-quants:   g = 0; g = fmaf((float)S_j, (float)sc_j, g) for each sub-block j
 *               (S_j = sum q_e * a_e with signed levels), then f = fmaf(g, d * da, f)
 *               (+ f = fmaf((float)msum, -(dmin * da), f), msum = sum_j m_j * sum_j(a),
 *               for Q2_K / Q4_K / Q5_K).  Sub-blocks in ascending order, except Q6_K:
 *               8n + 0, 1, 4, 5, 2, 3, 6, 7 for n = 0, 1 (the order its kernels unpack).
 * with f starting at 0.  Every kernel of a type (scalar reference, AVX2, AVX-512)
 * computes this sequence exactly, so the result for a (row, token) pair does not
 * depend on the ISA, on how many tokens share the call, or on the thread count.
 */
#ifndef COLLOQ_MATMUL_PACK_H
#define COLLOQ_MATMUL_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <assert.h>

#include "quant.h"

#define COLLOQ_PANEL 16              /* weight rows per packed panel */

/* One 32-element activation block (types whose vec_dot_type is Q8_0 or Q8_1). */
typedef struct {
    int8_t  qs[32];
    float   d;          /* the f16 block scale of the reference quantiser, as float */
    int32_t corr;       /* -off * sum(qs): folds the weight type's level offset in */
    int32_t sum;        /* sum(qs) */
    int32_t pad;
} colloq_act32;         /* 48 bytes */

/* One 256-element activation super-block (vec_dot_type Q8_K). */
typedef struct {
    int8_t  qs[256];
    float   d;          /* the Q8_K scale */
    int32_t pad0[3];
    int16_t bs16[16];   /* sums of qs over 16-element sub-blocks */
    int16_t bs32[8];    /* sums over 32-element sub-blocks */
    int32_t corr16[16]; /* -off * bs16: folds the weight type's level offset in */
} colloq_act256;        /* 384 bytes */

static_assert(sizeof(colloq_act32) == 48, "colloq_act32 size");
static_assert(sizeof(colloq_act256) == 384, "colloq_act256 size");

/*
 * Quantise one token row x (k floats) into token t of a block-major batch of nt
 * tokens at act (colloq_act32 or colloq_act256 by kind); off is the weight type's
 * level offset (corr = -off * sum).
 */
typedef void (*colloq_act_fn)(const float *x, int64_t k, void *act, int64_t nt, int64_t t, int off);

/*
 * Accumulate nb blocks of one packed panel into nt tokens' lanes:
 * facc[t * 16 + r] continues the recipe chain of (panel row r, token t) over the
 * blocks.  act points at block 0 of token 0 of this call; block b of token t is at
 * act + (b * act_stride + t) elements.
 */
typedef void (*colloq_panel_fn)(const void *panel, int64_t nb, const void *act, int64_t act_stride,
                                int nt, float *facc);

/*
 * Float weights (F32, F16, BF16) multiply f32 activations without packing:
 * out[t * ldo + r] = dot(row r of w, token t of x) for r < nr, t < nt, where rows
 * are row_bytes apart and tokens k floats apart.  Each pair's sum is computed the
 * same way whatever nr and nt are (one accumulator per pair, fixed reduction).
 */
typedef void (*colloq_tile_fn)(int64_t k, const void *w, uint64_t row_bytes, int nr, const float *x,
                               int nt, float *out, int64_t ldo);

typedef struct {
    colloq_act_fn   act;        /* packed kinds */
    colloq_panel_fn panel;
    colloq_tile_fn  tile;       /* float kinds */
    const char     *isa;
} colloq_mmk;

/* Packed layout of a type: false when the type has none. */
typedef struct {
    int  blck;              /* elements per block */
    int  panel_block_bytes; /* bytes of one block of a 16-row panel (16 * type_size) */
    int  act_kind;          /* 32 or 256: colloq_act32 / colloq_act256 */
    int  off;               /* level offset folded into colloq_act32.corr / colloq_act256.corr16 */
} colloq_pack_info;
bool colloq_pack_info_get(uint32_t type, colloq_pack_info *out);

/* Pack blocks [b0, b1) of rows [0, nrows) (nrows <= 16; rows row_bytes apart,
 * starting at rows) into dst (b1 - b0 panel blocks).  Scalar, any platform. */
void colloq_pack_panel(uint32_t type, const void *rows, uint64_t row_bytes, int nrows,
                       int64_t b0, int64_t b1, void *dst);

/* Matmul kernels chosen for a type: NULL members when none (the matmul then uses
 * per-pair vec_dot).  Starts empty; colloq_kernels_init() fills it. */
const colloq_mmk *colloq_mmk_get(uint32_t type);
void colloq_mmk_set(uint32_t type, const colloq_mmk *k);

/* Scalar reference implementations (matmul_pack.c), what every SIMD variant must
 * equal bit for bit; NULL for types without them. */
const colloq_mmk *colloq_mmk_ref(uint32_t type);

#endif
