/*
 * arch_qwen.c - the `qwen` architecture (Qwen 1: Qwen-7B/14B and their chat models) as
 * the common GGUF converter writes it: one attn_qkv matrix with bias (the original
 * c_attn: Q, K, V rows one after the other), RMSNorm, rotate-half RoPE over the whole
 * head, SwiGLU whose width is HALF of qwen.feed_forward_length (the converter writes the
 * original intermediate_size, which counts both w1 and w2).  No grouped-query attention.
 * Declares and binds only.  Not modelled: the original's dynamic NTK and log-n query
 * scaling, which only act beyond its training sequence length.
 */
#include "arch_common.h"
#include "util.h"

static int qwen_load_hparams(colloq_model *m, colloq_err *err) {
    colloq_hparams *hp = &m->hp;
    int rc;
    if ((rc = colloq_arch_hp_basic(m, true, err)) ||
        (rc = colloq_arch_hp_rope(m, 10000.0f, err)))
        return rc;
    if (hp->n_ff % 2 != 0)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: qwen.feed_forward_length %d is odd (it counts the "
                             "two halves of the SwiGLU projection)", m->path, hp->n_ff);
    hp->n_ff /= 2;
    if (hp->n_head_kv != hp->n_head)
        return colloq_seterr(err, COLLOQ_ERR_UNSUPPORTED, "%s: qwen.attention.head_count_kv %d differs from "
                             "head_count %d (Qwen 1 has no grouped-query attention)", m->path, hp->n_head_kv,
                             hp->n_head);
    if ((rc = colloq_hp_check(m, err)) ||
        (rc = colloq_arch_hp_head_lengths(m, err)))
        return rc;
    return COLLOQ_OK;
}

static int qwen_bind(colloq_model *m, colloq_err *err) {
    const colloq_hparams *hp = &m->hp;
    int64_t dim = hp->dim, qd = (int64_t)hp->n_head * hp->head_dim, ff = hp->n_ff;
    int rc = colloq_arch_bind_head(m, false, err);
    if (rc != COLLOQ_OK) return rc;
    for (int l = 0; l < hp->n_layer; l++) {
        colloq_layer *L = &m->layers[l];
        char n[64];
#define NAME(s) colloq_blk_name(n, sizeof n, l, s)
        if ((rc = colloq_bind_vec(m, NAME("attn_norm.weight"), true, dim, &L->attn_norm, err)) ||
            (rc = colloq_arch_bind_qkv(m, l, true, L, err)) ||
            (rc = colloq_bind_mat(m, NAME("attn_output.weight"), true, qd, dim, &L->wo, err)) ||
            (rc = colloq_bind_vec(m, NAME("ffn_norm.weight"), true, dim, &L->ffn_norm, err)) ||
            (rc = colloq_bind_mat(m, NAME("ffn_gate.weight"), true, dim, ff, &L->ffn_gate, err)) ||
            (rc = colloq_bind_mat(m, NAME("ffn_up.weight"), true, dim, ff, &L->ffn_up, err)) ||
            (rc = colloq_bind_mat(m, NAME("ffn_down.weight"), true, ff, dim, &L->ffn_down, err)))
            return rc;
#undef NAME
    }
    return COLLOQ_OK;
}

const colloq_arch colloq_arch_qwen = {
    .name = "qwen",
    .norm = COLLOQ_NORM_RMS,
    .rope = COLLOQ_ROPE_NEOX,
    .ffn = COLLOQ_FFN_SWIGLU,
    .parallel_block = false,
    .alibi = false,
    .fused_qkv = true,
    .load_hparams = qwen_load_hparams,
    .bind = qwen_bind,
};
