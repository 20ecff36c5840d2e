/*
 * arch_chatglm.c - the `chatglm` architecture (ChatGLM2/ChatGLM3-6B, also GLM-4-9B) as the
 * common GGUF converter writes it: chatglm.* hyper-parameters, RMSNorm, one attn_qkv matrix
 * with bias (the original query_key_value: Q rows, then K, then V, multi-query groups as kv
 * heads), RoPE on adjacent pairs of only the first chatglm.rope.dimension_count elements of
 * each head (half of it in these models), and the SwiGLU input projection stored as ONE
 * ffn_up of 2 x feed_forward_length rows: the first half is the gate (silu), the second the
 * up projection.  The prompt prefix "[gMASK]sop" is the chat template's and the
 * vocabulary's business (add_bos_token is false).  Declares and binds only.
 */
#include "arch_common.h"
#include "util.h"

static int chatglm_load_hparams(colloq_model *m, colloq_err *err) {
    colloq_hparams *hp = &m->hp;
    int rc;
    if ((rc = colloq_arch_hp_basic(m, true, err)) ||
        (rc = colloq_arch_hp_rope(m, 10000.0f, err)))
        return rc;
    /* the converter always writes the rotary width; without it, the original's default of
     * half the head dimension */
    if (hp->rope_dim == 0 && hp->n_head > 0) hp->rope_dim = hp->dim / hp->n_head / 2;
    if ((rc = colloq_hp_check(m, err)) ||
        (rc = colloq_arch_hp_head_lengths(m, err)))
        return rc;
    return COLLOQ_OK;
}

static int chatglm_bind(colloq_model *m, colloq_err *err) {
    const colloq_hparams *hp = &m->hp;
    int64_t dim = hp->dim, qd = (int64_t)hp->n_head * hp->head_dim, ff = hp->n_ff;
    int rc = colloq_arch_bind_head(m, false, err);
    if (rc != COLLOQ_OK) return rc;
    for (int l = 0; l < hp->n_layer; l++) {
        colloq_layer *L = &m->layers[l];
        colloq_mat gate_up;
        char n[64];
#define NAME(s) colloq_blk_name(n, sizeof n, l, s)
        if ((rc = colloq_bind_vec(m, NAME("attn_norm.weight"), true, dim, &L->attn_norm, err)) ||
            (rc = colloq_arch_bind_qkv(m, l, true, L, err)) ||
            (rc = colloq_bind_mat(m, NAME("attn_output.weight"), true, qd, dim, &L->wo, err)) ||
            (rc = colloq_bind_vec(m, NAME("ffn_norm.weight"), true, dim, &L->ffn_norm, err)) ||
            (rc = colloq_bind_mat(m, NAME("ffn_up.weight"), true, dim, 2 * ff, &gate_up, err)) ||
            (rc = colloq_bind_mat(m, NAME("ffn_down.weight"), true, ff, dim, &L->ffn_down, err)))
            return rc;
#undef NAME
        colloq_arch_rows(&gate_up, 0, ff, &L->ffn_gate);
        colloq_arch_rows(&gate_up, ff, ff, &L->ffn_up);
    }
    return COLLOQ_OK;
}

const colloq_arch colloq_arch_chatglm = {
    .name = "chatglm",
    .norm = COLLOQ_NORM_RMS,
    .rope = COLLOQ_ROPE_ADJACENT,
    .ffn = COLLOQ_FFN_SWIGLU,
    .parallel_block = false,
    .alibi = false,
    .fused_qkv = true,
    .load_hparams = chatglm_load_hparams,
    .bind = chatglm_bind,
};
