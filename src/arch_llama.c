/*
 * arch_llama.c - the `llama` architecture as llama.cpp's converter writes it (Llama 2,
 * Mistral and its fine-tunes): llama.* hyper-parameters and tensor names.
 * RMSNorm, RoPE on adjacent pairs, SwiGLU FFN, grouped-query attention, optional
 * linear RoPE scaling and sliding window.  Declares and binds only; the math is forward.c's.
 */
#include <string.h>

#include "model.h"
#include "util.h"

#define MAX_DIM   (1u << 16)
#define MAX_LAYER 1024u
#define MAX_FF    (1u << 20)
#define MAX_HEAD  1024u
#define MAX_VOCAB (1u << 22)
#define MAX_CTX   (1u << 24)

static int llama_rope_scale(colloq_model *m, colloq_err *err) {
    float factor = 1.0f;
    gguf_str type;
    int rc = gguf_get_str(m->file, "llama.rope.scaling.type", &type, err);
    if (rc < 0) return rc;
    if (rc == 0 && !gguf_str_eq(type, "none")) {
        if (!gguf_str_eq(type, "linear")) {
            int len = type.len > 32 ? 32 : (int)type.len;
            return colloq_seterr(err, COLLOQ_ERR_UNSUPPORTED, "%s: llama.rope.scaling.type '%.*s' is not "
                                 "supported (only linear)", m->path, len, type.s);
        }
        rc = colloq_hp_f32(m, "llama.rope.scaling.factor", 1.0f, 0.0f, 1024.0f, &factor, err);
        if (rc != COLLOQ_OK) return rc;
    } else if (gguf_find_kv(m->file, "llama.rope.scale_linear")) {
        rc = colloq_hp_f32(m, "llama.rope.scale_linear", 1.0f, 0.0f, 1024.0f, &factor, err);
        if (rc != COLLOQ_OK) return rc;
    }
    m->hp.rope_scale = 1.0f / factor;
    return COLLOQ_OK;
}

static int llama_load_hparams(colloq_model *m, colloq_err *err) {
    colloq_hparams *hp = &m->hp;
    int rc;
    if ((rc = colloq_hp_u32(m, "llama.context_length", true, 0, 1, MAX_CTX, &hp->n_ctx_train, err)) ||
        (rc = colloq_hp_u32(m, "llama.embedding_length", true, 0, 1, MAX_DIM, &hp->dim, err)) ||
        (rc = colloq_hp_u32(m, "llama.block_count", true, 0, 1, MAX_LAYER, &hp->n_layer, err)) ||
        (rc = colloq_hp_u32(m, "llama.feed_forward_length", true, 0, 1, MAX_FF, &hp->n_ff, err)) ||
        (rc = colloq_hp_u32(m, "llama.attention.head_count", true, 0, 1, MAX_HEAD, &hp->n_head, err)) ||
        (rc = colloq_hp_u32(m, "llama.attention.head_count_kv", false, (uint32_t)hp->n_head, 1, MAX_HEAD,
                            &hp->n_head_kv, err)) ||
        (rc = colloq_hp_u32(m, "llama.vocab_size", false, 0, 0, MAX_VOCAB, &hp->n_vocab, err)) ||
        (rc = colloq_hp_u32(m, "llama.attention.sliding_window", false, 0, 0, MAX_CTX, &hp->sliding_window, err)))
        return rc;
    if (gguf_find_kv(m->file, "llama.vocab_size") && hp->n_vocab == 0)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: hyper-parameter 'llama.vocab_size' is 0", m->path);
    if (!gguf_find_kv(m->file, "llama.attention.layer_norm_rms_epsilon"))
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: missing hyper-parameter "
                             "'llama.attention.layer_norm_rms_epsilon'", m->path);
    if ((rc = colloq_hp_f32(m, "llama.attention.layer_norm_rms_epsilon", 1e-5f, 0.0f, 0.1f, &hp->norm_eps, err)) ||
        (rc = colloq_hp_f32(m, "llama.rope.freq_base", 10000.0f, 0.0f, 1e12f, &hp->rope_base, err)))
        return rc;
    bool has_rope_dim = gguf_find_kv(m->file, "llama.rope.dimension_count") != NULL;
    if ((rc = colloq_hp_u32(m, "llama.rope.dimension_count", false, 0, has_rope_dim ? 2 : 0, MAX_DIM,
                            &hp->rope_dim, err)) ||
        (rc = llama_rope_scale(m, err)) ||
        (rc = colloq_hp_check(m, err)))
        return rc;
    /* Files may state the per-head sizes; this architecture needs them equal to dim / n_head. */
    static const char *const head_keys[] = { "llama.attention.key_length", "llama.attention.value_length" };
    for (int i = 0; i < 2; i++) {
        int v;
        if ((rc = colloq_hp_u32(m, head_keys[i], false, (uint32_t)hp->head_dim, 1, MAX_DIM, &v, err)))
            return rc;
        if (v != hp->head_dim)
            return colloq_seterr(err, COLLOQ_ERR_UNSUPPORTED, "%s: %s %d differs from embedding_length / "
                                 "head_count = %d", m->path, head_keys[i], v, hp->head_dim);
    }
    return COLLOQ_OK;
}

static int llama_bind(colloq_model *m, colloq_err *err) {
    const colloq_hparams *hp = &m->hp;
    int64_t dim = hp->dim, qd = (int64_t)hp->n_head * hp->head_dim, kvd = (int64_t)hp->n_head_kv * hp->head_dim;
    int64_t ff = hp->n_ff, nv = hp->n_vocab;
    int rc;
    if ((rc = colloq_bind_mat(m, "token_embd.weight", true, dim, nv, &m->tok_embd, err)) ||
        (rc = colloq_bind_vec(m, "output_norm.weight", true, dim, &m->output_norm, err)) ||
        (rc = colloq_bind_mat(m, "output.weight", false, dim, nv, &m->output, err)))
        return rc;
    if (!m->output.data) {
        m->output = m->tok_embd;
        m->tied_output = true;
    }
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
    return COLLOQ_OK;
}

const colloq_arch colloq_arch_llama = {
    .name = "llama",
    .norm = COLLOQ_NORM_RMS,
    .rope = COLLOQ_ROPE_ADJACENT,
    .ffn = COLLOQ_FFN_SWIGLU,
    .parallel_block = false,
    .alibi = false,
    .fused_qkv = false,
    .load_hparams = llama_load_hparams,
    .bind = llama_bind,
};
