/*
 * arch_common.c - what the architecture files share: the decoder hyper-parameter keys,
 * RoPE base/scaling, the embedding and output head, fused-tensor row views, model-owned
 * float buffers.  Reads metadata and binds views; never touches activations.
 */
#include "arch_common.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

const char *colloq_arch_key(const colloq_model *m, char *buf, size_t cap, const char *suffix) {
    snprintf(buf, cap, "%s.%s", m->arch->name, suffix);
    return buf;
}

int colloq_arch_hp_basic(colloq_model *m, bool rms, colloq_err *err) {
    colloq_hparams *hp = &m->hp;
    char k[96];
#define KEY(s) colloq_arch_key(m, k, sizeof k, s)
    int rc;
    if ((rc = colloq_hp_u32(m, KEY("context_length"), true, 0, 1, COLLOQ_ARCH_MAX_CTX, &hp->n_ctx_train, err)) ||
        (rc = colloq_hp_u32(m, KEY("embedding_length"), true, 0, 1, COLLOQ_ARCH_MAX_DIM, &hp->dim, err)) ||
        (rc = colloq_hp_u32(m, KEY("block_count"), true, 0, 1, COLLOQ_ARCH_MAX_LAYER, &hp->n_layer, err)) ||
        (rc = colloq_hp_u32(m, KEY("feed_forward_length"), true, 0, 1, COLLOQ_ARCH_MAX_FF, &hp->n_ff, err)) ||
        (rc = colloq_hp_u32(m, KEY("attention.head_count"), true, 0, 1, COLLOQ_ARCH_MAX_HEAD, &hp->n_head, err)) ||
        (rc = colloq_hp_u32(m, KEY("attention.head_count_kv"), false, (uint32_t)hp->n_head, 1,
                            COLLOQ_ARCH_MAX_HEAD, &hp->n_head_kv, err)) ||
        (rc = colloq_hp_u32(m, KEY("vocab_size"), false, 0, 0, COLLOQ_ARCH_MAX_VOCAB, &hp->n_vocab, err)))
        return rc;
    if (gguf_find_kv(m->file, KEY("vocab_size")) && hp->n_vocab == 0)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: hyper-parameter '%s' is 0", m->path, k);
    const char *eps_key = KEY(rms ? "attention.layer_norm_rms_epsilon" : "attention.layer_norm_epsilon");
    if (!gguf_find_kv(m->file, eps_key))
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: missing hyper-parameter '%s'", m->path, eps_key);
    return colloq_hp_f32(m, eps_key, 1e-5f, 0.0f, 0.1f, &hp->norm_eps, err);
#undef KEY
}

int colloq_arch_hp_rope(colloq_model *m, float base_default, colloq_err *err) {
    colloq_hparams *hp = &m->hp;
    char k[96];
#define KEY(s) colloq_arch_key(m, k, sizeof k, s)
    int rc = colloq_hp_f32(m, KEY("rope.freq_base"), base_default, 0.0f, 1e12f, &hp->rope_base, err);
    if (rc != COLLOQ_OK) return rc;
    bool has_dim = gguf_find_kv(m->file, KEY("rope.dimension_count")) != NULL;
    rc = colloq_hp_u32(m, k, false, 0, has_dim ? 2 : 0, COLLOQ_ARCH_MAX_DIM, &hp->rope_dim, err);
    if (rc != COLLOQ_OK) return rc;
    float factor = 1.0f;
    gguf_str type;
    rc = gguf_get_str(m->file, KEY("rope.scaling.type"), &type, err);
    if (rc < 0) return rc;
    if (rc == 0 && !gguf_str_eq(type, "none")) {
        if (!gguf_str_eq(type, "linear")) {
            int len = type.len > 32 ? 32 : (int)type.len;
            return colloq_seterr(err, COLLOQ_ERR_UNSUPPORTED, "%s: %s '%.*s' is not supported (only linear)",
                                 m->path, k, len, type.s);
        }
        rc = colloq_hp_f32(m, KEY("rope.scaling.factor"), 1.0f, 0.0f, 1024.0f, &factor, err);
        if (rc != COLLOQ_OK) return rc;
    }
    hp->rope_scale = 1.0f / factor;
    return COLLOQ_OK;
#undef KEY
}

int colloq_arch_hp_head_lengths(colloq_model *m, colloq_err *err) {
    static const char *const keys[] = { "attention.key_length", "attention.value_length" };
    for (int i = 0; i < 2; i++) {
        char k[96];
        int v, rc = colloq_hp_u32(m, colloq_arch_key(m, k, sizeof k, keys[i]), false, (uint32_t)m->hp.head_dim,
                                  1, COLLOQ_ARCH_MAX_DIM, &v, err);
        if (rc != COLLOQ_OK) return rc;
        if (v != m->hp.head_dim)
            return colloq_seterr(err, COLLOQ_ERR_UNSUPPORTED, "%s: %s %d differs from embedding_length / "
                                 "head_count = %d", m->path, k, v, m->hp.head_dim);
    }
    return COLLOQ_OK;
}

int colloq_arch_bind_head(colloq_model *m, bool norm_bias, colloq_err *err) {
    int64_t dim = m->hp.dim, nv = m->hp.n_vocab;
    int rc;
    if ((rc = colloq_bind_mat(m, "token_embd.weight", true, dim, nv, &m->tok_embd, err)) ||
        (rc = colloq_bind_vec(m, "output_norm.weight", true, dim, &m->output_norm, err)) ||
        (norm_bias && (rc = colloq_bind_vec(m, "output_norm.bias", true, dim, &m->output_norm_b, err))) ||
        (rc = colloq_bind_mat(m, "output.weight", false, dim, nv, &m->output, err)))
        return rc;
    if (!m->output.data) {
        m->output = m->tok_embd;
        m->tied_output = true;
    }
    return COLLOQ_OK;
}

void colloq_arch_rows(const colloq_mat *w, int64_t r0, int64_t n, colloq_mat *out) {
    *out = *w;
    out->data = (const char *)w->data + (uint64_t)r0 * w->row_bytes;
    out->n_rows = n;
}

int colloq_arch_bind_qkv(colloq_model *m, int l, bool bias, colloq_layer *L, colloq_err *err) {
    const colloq_hparams *hp = &m->hp;
    int64_t qd = (int64_t)hp->n_head * hp->head_dim, kvd = (int64_t)hp->n_head_kv * hp->head_dim;
    char n[64];
    colloq_mat qkv;
    int rc = colloq_bind_mat(m, colloq_blk_name(n, sizeof n, l, "attn_qkv.weight"), true, hp->dim,
                             qd + 2 * kvd, &qkv, err);
    if (rc != COLLOQ_OK) return rc;
    colloq_arch_rows(&qkv, 0, qd, &L->wq);
    colloq_arch_rows(&qkv, qd, kvd, &L->wk);
    colloq_arch_rows(&qkv, qd + kvd, kvd, &L->wv);
    colloq_blk_name(n, sizeof n, l, "attn_qkv.bias");
    if (!bias) {
        if (gguf_find_tensor(m->file, n))
            return colloq_seterr(err, COLLOQ_ERR_UNSUPPORTED, "%s: tensor '%s' is not part of the %s "
                                 "architecture", m->path, n, m->arch->name);
        return COLLOQ_OK;
    }
    const float *b;
    if ((rc = colloq_bind_vec(m, n, true, qd + 2 * kvd, &b, err))) return rc;
    L->bq = b;
    L->bk = b + qd;
    L->bv = b + qd + kvd;
    return COLLOQ_OK;
}

int colloq_arch_alloc_vec(colloq_model *m, int64_t n, float **out, colloq_err *err) {
    *out = NULL;
    if (n <= 0 || (uint64_t)n > SIZE_MAX / sizeof(float))
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: bad vector length %lld", m->path, (long long)n);
    if (m->n_vecs == m->cap_vecs) {
        int cap = m->cap_vecs ? m->cap_vecs * 2 : 16;
        float **nv = colloq_realloc(m->vecs, (size_t)cap * sizeof *nv);
        if (!nv) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory", m->path);
        m->vecs = nv;
        m->cap_vecs = cap;
    }
    float *v = colloq_calloc((size_t)n, sizeof *v);
    if (!v) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory", m->path);
    m->vecs[m->n_vecs++] = v;
    *out = v;
    return COLLOQ_OK;
}
