/*
 * arch_qwen2.c - the `qwen2` architecture (Qwen1.5, Qwen2, Qwen2.5) as the common GGUF
 * converter writes it: qwen2.* hyper-parameters, llama-like tensor names plus the
 * attn_q/k/v biases.  RMSNorm, RoPE on the two halves of each head (rotate-half) with
 * base 1e6 by default, grouped-query attention, SwiGLU.  Declares and binds only.
 */
#include "arch_common.h"
#include "util.h"

static int qwen2_load_hparams(colloq_model *m, colloq_err *err) {
    int rc;
    if ((rc = colloq_arch_hp_basic(m, true, err)) ||
        (rc = colloq_arch_hp_rope(m, 1000000.0f, err)) ||
        (rc = colloq_hp_check(m, err)) ||
        (rc = colloq_arch_hp_head_lengths(m, err)))
        return rc;
    return COLLOQ_OK;
}

static int qwen2_bind(colloq_model *m, colloq_err *err) {
    const colloq_hparams *hp = &m->hp;
    int64_t dim = hp->dim, qd = (int64_t)hp->n_head * hp->head_dim, kvd = (int64_t)hp->n_head_kv * hp->head_dim;
    int64_t ff = hp->n_ff;
    int rc = colloq_arch_bind_head(m, false, err);
    if (rc != COLLOQ_OK) return rc;
    for (int l = 0; l < hp->n_layer; l++) {
        colloq_layer *L = &m->layers[l];
        char n[64];
#define NAME(s) colloq_blk_name(n, sizeof n, l, s)
        if ((rc = colloq_bind_vec(m, NAME("attn_norm.weight"), true, dim, &L->attn_norm, err)) ||
            (rc = colloq_bind_mat(m, NAME("attn_q.weight"), true, dim, qd, &L->wq, err)) ||
            (rc = colloq_bind_mat(m, NAME("attn_k.weight"), true, dim, kvd, &L->wk, err)) ||
            (rc = colloq_bind_mat(m, NAME("attn_v.weight"), true, dim, kvd, &L->wv, err)) ||
            (rc = colloq_bind_vec(m, NAME("attn_q.bias"), true, qd, &L->bq, err)) ||
            (rc = colloq_bind_vec(m, NAME("attn_k.bias"), true, kvd, &L->bk, err)) ||
            (rc = colloq_bind_vec(m, NAME("attn_v.bias"), true, kvd, &L->bv, err)) ||
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

const colloq_arch colloq_arch_qwen2 = {
    .name = "qwen2",
    .norm = COLLOQ_NORM_RMS,
    .rope = COLLOQ_ROPE_NEOX,
    .ffn = COLLOQ_FFN_SWIGLU,
    .parallel_block = false,
    .alibi = false,
    .fused_qkv = false,
    .load_hparams = qwen2_load_hparams,
    .bind = qwen2_bind,
};
