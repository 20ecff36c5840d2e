/*
 * arch_falcon.c - the `falcon` architecture (Falcon 7B/40B/180B) as the common GGUF
 * converter writes it: falcon.* hyper-parameters, LayerNorm with bias, a parallel block
 * (x + attn(n) + mlp(n')), rotate-half RoPE, GELU (exact erf form, as the original's
 * nn.GELU), no linear biases.  7B layout: multi-query, one norm shared by both branches;
 * 40B/180B layout: attn_norm_2 for the MLP branch and several kv heads.  The converter
 * ("jploski" layout) regroups the original per-kv-group QKV rows into all Q rows, then K,
 * then V, so attn_qkv splits into three row ranges.  Declares and binds only.
 */
#include "arch_common.h"
#include "util.h"

static int falcon_load_hparams(colloq_model *m, colloq_err *err) {
    int rc;
    if ((rc = colloq_arch_hp_basic(m, false, err)) ||
        (rc = colloq_arch_hp_rope(m, 10000.0f, err)) ||
        (rc = colloq_hp_check(m, err)) ||
        (rc = colloq_arch_hp_head_lengths(m, err)))
        return rc;
    gguf_str layout;
    rc = gguf_get_str(m->file, "falcon.tensor_data_layout", &layout, err);
    if (rc < 0) return rc;
    if (rc == 0 && !gguf_str_eq(layout, "jploski")) {
        int len = layout.len > 32 ? 32 : (int)layout.len;
        return colloq_seterr(err, COLLOQ_ERR_UNSUPPORTED, "%s: falcon.tensor_data_layout '%.*s' is not "
                             "supported (expected 'jploski': Q, K and V rows each in one block)", m->path,
                             len, layout.s);
    }
    return COLLOQ_OK;
}

static int falcon_bind(colloq_model *m, colloq_err *err) {
    const colloq_hparams *hp = &m->hp;
    int64_t dim = hp->dim, qd = (int64_t)hp->n_head * hp->head_dim, ff = hp->n_ff;
    int rc = colloq_arch_bind_head(m, true, err);
    if (rc != COLLOQ_OK) return rc;
    for (int l = 0; l < hp->n_layer; l++) {
        colloq_layer *L = &m->layers[l];
        char n[64];
#define NAME(s) colloq_blk_name(n, sizeof n, l, s)
        if ((rc = colloq_bind_vec(m, NAME("attn_norm.weight"), true, dim, &L->attn_norm, err)) ||
            (rc = colloq_bind_vec(m, NAME("attn_norm.bias"), true, dim, &L->attn_norm_b, err)) ||
            (rc = colloq_bind_vec(m, NAME("attn_norm_2.weight"), false, dim, &L->ffn_norm, err)) ||
            (rc = colloq_bind_vec(m, NAME("attn_norm_2.bias"), L->ffn_norm != NULL, dim, &L->ffn_norm_b, err)) ||
            (rc = colloq_arch_bind_qkv(m, l, false, L, err)) ||
            (rc = colloq_bind_mat(m, NAME("attn_output.weight"), true, qd, dim, &L->wo, err)) ||
            (rc = colloq_bind_mat(m, NAME("ffn_up.weight"), true, dim, ff, &L->ffn_up, err)) ||
            (rc = colloq_bind_mat(m, NAME("ffn_down.weight"), true, ff, dim, &L->ffn_down, err)))
            return rc;
        if (!L->ffn_norm && L->ffn_norm_b)
            return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: '%s' without attn_norm_2.weight", m->path,
                                 NAME("attn_norm_2.bias"));
        /* every layer has the same layout: 7B (shared norm) or 40B (two norms) */
        if (l > 0 && (L->ffn_norm != NULL) != (m->layers[0].ffn_norm != NULL))
            return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: blk.%d has %s attn_norm_2 but blk.0 %s", m->path, l,
                                 L->ffn_norm ? "an" : "no", L->ffn_norm ? "has none" : "has one");
#undef NAME
    }
    return COLLOQ_OK;
}

const colloq_arch colloq_arch_falcon = {
    .name = "falcon",
    .norm = COLLOQ_NORM_LAYER,
    .rope = COLLOQ_ROPE_NEOX,
    .ffn = COLLOQ_FFN_GELU_ERF,
    .parallel_block = true,
    .alibi = false,
    .fused_qkv = true,
    .load_hparams = falcon_load_hparams,
    .bind = falcon_bind,
};
