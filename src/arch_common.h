/*
 * arch_common.h - helpers shared by the architecture files (arch_*.c): the hyper-parameter
 * keys every converter writes for a decoder (<arch>.context_length, .embedding_length, ...),
 * RoPE base and scaling, the embedding/output head, and row-range views that split a fused
 * tensor (attn_qkv, a doubled ffn_up) into the separate matrices forward.c multiplies.
 * Internal to the model layer; binds and checks only, no math on activations.
 */
#ifndef COLLOQ_ARCH_COMMON_H
#define COLLOQ_ARCH_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"

/* Limits every architecture file checks its keys against. */
#define COLLOQ_ARCH_MAX_DIM   (1u << 16)
#define COLLOQ_ARCH_MAX_LAYER 1024u
#define COLLOQ_ARCH_MAX_FF    (1u << 20)
#define COLLOQ_ARCH_MAX_HEAD  1024u
#define COLLOQ_ARCH_MAX_VOCAB (1u << 22)
#define COLLOQ_ARCH_MAX_CTX   (1u << 24)

/* Reads <arch>.context_length, .embedding_length, .block_count, .feed_forward_length,
 * .attention.head_count (all required), .attention.head_count_kv (default: head_count),
 * .vocab_size (optional, not 0), and the norm epsilon: .attention.layer_norm_rms_epsilon
 * when rms, else .attention.layer_norm_epsilon (required; the converters always write it). */
int colloq_arch_hp_basic(colloq_model *m, bool rms, colloq_err *err);

/* Reads <arch>.rope.freq_base (default base_default), .rope.dimension_count (optional,
 * >= 2; hp->rope_dim stays 0 = the head dimension when absent) and .rope.scaling.type /
 * .factor (none or linear; anything else is UNSUPPORTED).  Call before colloq_hp_check. */
int colloq_arch_hp_rope(colloq_model *m, float base_default, colloq_err *err);

/* After colloq_hp_check: <arch>.attention.key_length / value_length, when present, must
 * equal the head dimension (these architectures have no other layout). */
int colloq_arch_hp_head_lengths(colloq_model *m, colloq_err *err);

/* key into buf as "<arch>.<suffix>". */
const char *colloq_arch_key(const colloq_model *m, char *buf, size_t cap, const char *suffix);

/* token_embd.weight, output_norm.weight (+ output_norm.bias when norm_bias) and the
 * optional output.weight (absent: tied to token_embd). */
int colloq_arch_bind_head(colloq_model *m, bool norm_bias, colloq_err *err);

/* out = rows [r0, r0 + n) of w (a view into the same mapping; r0 + n <= w->n_rows). */
void colloq_arch_rows(const colloq_mat *w, int64_t r0, int64_t n, colloq_mat *out);

/* blk.<l>.attn_qkv.weight ([dim -> n_head*hd + 2*n_kv*hd], Q rows then K rows then V rows)
 * split into L->wq / wk / wv, and blk.<l>.attn_qkv.bias (required when bias, else must be
 * absent) split into L->bq / bk / bv. */
int colloq_arch_bind_qkv(colloq_model *m, int l, bool bias, colloq_layer *L, colloq_err *err);

/* *out = a zeroed float buffer of n elements owned by the model (freed with it). */
int colloq_arch_alloc_vec(colloq_model *m, int64_t n, float **out, colloq_err *err);

#endif
