/*
 * arch_baichuan.c - the `baichuan` architecture (Baichuan 1 and 2, 7B and 13B) as the
 * common GGUF converter writes it: baichuan.* hyper-parameters, the original W_pack split
 * into attn_q/k/v (Q and K rows permuted so that RoPE rotates adjacent pairs), RMSNorm,
 * SwiGLU.  The file does not say which positional scheme applies; as the reference
 * loader does, 40 layers means the 13B models (ALiBi, no RoPE), anything else RoPE.
 * Baichuan 2 (vocabulary of 125696 tokens) normalises each output row at inference
 * (NormHead); the converter stores the raw rows, so the per-logit 1/|row| is computed here.
 * Declares and binds only.
 */
#include <math.h>

#include "arch_common.h"
#include "util.h"

#define BAICHUAN_13B_LAYERS 40
#define BAICHUAN2_VOCAB     125696

/* The 13B layout: same tensors, ALiBi attention instead of RoPE. */
static const colloq_arch baichuan_alibi;

static int baichuan_load_hparams(colloq_model *m, colloq_err *err) {
    int rc;
    if ((rc = colloq_arch_hp_basic(m, true, err)) ||
        (rc = colloq_arch_hp_rope(m, 10000.0f, err)))
        return rc;
    if (m->hp.n_layer == BAICHUAN_13B_LAYERS) {
        m->arch = &baichuan_alibi;
        colloq_log(1, "%s: baichuan with %d layers: the 13B layout (ALiBi attention, no RoPE)", m->path,
                   BAICHUAN_13B_LAYERS);
    }
    if ((rc = colloq_hp_check(m, err)) ||
        (rc = colloq_arch_hp_head_lengths(m, err)))
        return rc;
    return COLLOQ_OK;
}

/* NormHead: logits = (W / |W_row|) . h, i.e. each logit times 1 / max(|row|, 1e-12). */
static int baichuan_norm_head(colloq_model *m, colloq_err *err) {
    int64_t nv = m->hp.n_vocab, dim = m->hp.dim;
    float *scale;
    int rc = colloq_arch_alloc_vec(m, nv, &scale, err);
    if (rc != COLLOQ_OK) return rc;
    float *row = colloq_malloc((size_t)dim * sizeof *row);
    if (!row) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory", m->path);
    for (int64_t v = 0; v < nv; v++) {
        colloq_mat_get_row(&m->output, v, row);
        double ss = 0.0;
        for (int64_t d = 0; d < dim; d++) ss += (double)row[d] * row[d];
        double norm = sqrt(ss);
        scale[v] = (float)(1.0 / (norm > 1e-12 ? norm : 1e-12));
    }
    colloq_free(row);
    m->output_scale = scale;
    colloq_log(1, "%s: Baichuan 2 vocabulary (%d tokens): output rows normalised (NormHead)", m->path,
               BAICHUAN2_VOCAB);
    return COLLOQ_OK;
}

static int baichuan_bind(colloq_model *m, colloq_err *err) {
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
            (rc = colloq_bind_mat(m, NAME("attn_output.weight"), true, qd, dim, &L->wo, err)) ||
            (rc = colloq_bind_vec(m, NAME("ffn_norm.weight"), true, dim, &L->ffn_norm, err)) ||
            (rc = colloq_bind_mat(m, NAME("ffn_gate.weight"), true, dim, ff, &L->ffn_gate, err)) ||
            (rc = colloq_bind_mat(m, NAME("ffn_up.weight"), true, dim, ff, &L->ffn_up, err)) ||
            (rc = colloq_bind_mat(m, NAME("ffn_down.weight"), true, ff, dim, &L->ffn_down, err)))
            return rc;
#undef NAME
    }
    if (hp->n_vocab == BAICHUAN2_VOCAB) return baichuan_norm_head(m, err);
    return COLLOQ_OK;
}

const colloq_arch colloq_arch_baichuan = {
    .name = "baichuan",
    .norm = COLLOQ_NORM_RMS,
    .rope = COLLOQ_ROPE_ADJACENT,
    .ffn = COLLOQ_FFN_SWIGLU,
    .parallel_block = false,
    .alibi = false,
    .fused_qkv = false,
    .load_hparams = baichuan_load_hparams,
    .bind = baichuan_bind,
};

static const colloq_arch baichuan_alibi = {
    .name = "baichuan",
    .norm = COLLOQ_NORM_RMS,
    .rope = COLLOQ_ROPE_NONE,
    .ffn = COLLOQ_FFN_SWIGLU,
    .parallel_block = false,
    .alibi = true,
    .fused_qkv = false,
    .load_hparams = baichuan_load_hparams,
    .bind = baichuan_bind,
};
