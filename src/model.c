/*
 * model.c - loading a model: open the GGUF file, look the architecture up in the
 * table, read and check hyper-parameters, bind every tensor (presence, type, exact
 * shape) as a view into the mapping, load the vocabulary, start the thread pool.
 * Also the colloq_model_* public functions and colloq_model_describe.
 * Does no math on activations (forward.c) and allocates no per-sequence memory (kvcache.c).
 */
#include "model.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "quant.h"
#include "util.h"

/* ---- the architecture table: one row per arch_<name>.c ---- */

static const colloq_arch *const arch_table[] = {
    &colloq_arch_llama,
    &colloq_arch_qwen2,
    &colloq_arch_qwen,
    &colloq_arch_falcon,
    &colloq_arch_baichuan,
    &colloq_arch_chatglm,
};

static const colloq_arch *arch_find(gguf_str name) {
    for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0]; i++)
        if (gguf_str_eq(name, arch_table[i]->name)) return arch_table[i];
    return NULL;
}

static void arch_list(char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0] && used < cap; i++) {
        int w = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", arch_table[i]->name);
        if (w < 0) break;
        used += (size_t)w;
    }
}

colloq_model_params colloq_model_default_params(void) {
    colloq_model_params p = { .n_threads = 0, .verbose = false };
    return p;
}

/* ---- hyper-parameter helpers for arch files ---- */

int colloq_hp_u32(colloq_model *m, const char *key, bool required, uint32_t def,
                  uint32_t lo, uint32_t hi, int *out, colloq_err *err) {
    uint32_t v;
    int rc = gguf_get_u32(m->file, key, &v, err);
    if (rc < 0) return rc;
    if (rc == 1) {
        if (required)
            return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: missing hyper-parameter '%s'", m->path, key);
        v = def;
    }
    if (v < lo || v > hi)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: hyper-parameter '%s' = %" PRIu32
                             " is out of range (expected %" PRIu32 "..%" PRIu32 ")", m->path, key, v, lo, hi);
    *out = (int)v;
    return COLLOQ_OK;
}

int colloq_hp_f32(colloq_model *m, const char *key, float def, float lo, float hi,
                  float *out, colloq_err *err) {
    float v;
    int rc = gguf_get_f32(m->file, key, &v, err);
    if (rc < 0) return rc;
    if (rc == 1) v = def;
    if (!(v > lo && v <= hi))
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: hyper-parameter '%s' = %g is out of range "
                             "(expected > %g and <= %g)", m->path, key, (double)v, (double)lo, (double)hi);
    *out = v;
    return COLLOQ_OK;
}

int colloq_hp_check(colloq_model *m, colloq_err *err) {
    colloq_hparams *hp = &m->hp;
    const char *a = m->arch->name;
    if (hp->dim % hp->n_head != 0)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: %s.embedding_length %d is not a multiple of "
                             "%s.attention.head_count %d", m->path, a, hp->dim, a, hp->n_head);
    if (hp->n_head_kv > hp->n_head || hp->n_head % hp->n_head_kv != 0)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: %s.attention.head_count %d is not a multiple of "
                             "%s.attention.head_count_kv %d", m->path, a, hp->n_head, a, hp->n_head_kv);
    hp->head_dim = hp->dim / hp->n_head;
    if (m->arch->rope != COLLOQ_ROPE_NONE) {
        if (hp->rope_dim == 0) hp->rope_dim = hp->head_dim;
        if (hp->head_dim % 2 != 0)
            return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: head dimension %d (%s.embedding_length %d / "
                                 "%s.attention.head_count %d) is odd; RoPE needs pairs",
                                 m->path, hp->head_dim, a, hp->dim, a, hp->n_head);
        if (hp->rope_dim % 2 != 0 || hp->rope_dim > hp->head_dim)
            return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: %s.rope.dimension_count %d must be even and "
                                 "at most the head dimension %d", m->path, a, hp->rope_dim, hp->head_dim);
    } else {
        hp->rope_dim = 0;
    }
    return COLLOQ_OK;
}

/* ---- tensor binding ---- */

const char *colloq_blk_name(char *buf, size_t cap, int layer, const char *suffix) {
    snprintf(buf, cap, "blk.%d.%s", layer, suffix);
    return buf;
}

static void shape_str(char *buf, size_t cap, const gguf_tensor *t) {
    size_t used = 0;
    buf[0] = 0;
    for (uint32_t d = 0; d < t->n_dims && used < cap; d++) {
        int w = snprintf(buf + used, cap - used, "%s%" PRId64, d ? ", " : "", t->ne[d]);
        if (w < 0) break;
        used += (size_t)w;
    }
}

/* Presence, type with to_float, and exact shape [ne0, ne1] (ne1 = 1 for vectors). */
static int find_checked(colloq_model *m, const char *name, bool required, int64_t ne0, int64_t ne1,
                        bool is_mat, const gguf_tensor **out, colloq_err *err) {
    *out = NULL;
    const gguf_tensor *t = gguf_find_tensor(m->file, name);
    if (!t) {
        if (!required) return COLLOQ_OK;
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: missing tensor '%s'", m->path, name);
    }
    const colloq_type_traits *tr = colloq_type_get(t->type);
    if (!tr || !tr->supported || !tr->to_float || (is_mat && !tr->vec_dot))
        return colloq_seterr(err, COLLOQ_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s, which this build "
                             "cannot %s", m->path, name, tr ? tr->name : "?",
                             is_mat ? "multiply with" : "convert to float");
    /* Norm weights and biases are float in every converter's output; a quantised one
     * means a mislabelled or broken file. */
    if (!is_mat && t->type != CT_F32 && t->type != CT_F16 && t->type != CT_BF16)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: tensor '%s' has type %s, expected F32, F16 or BF16",
                             m->path, name, tr->name);
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1) {
        char got[96];
        shape_str(got, sizeof got, t);
        if (is_mat)
            return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: tensor '%s' has shape [%s], expected [%" PRId64
                                 ", %" PRId64 "]", m->path, name, got, ne0, ne1);
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: tensor '%s' has shape [%s], expected [%" PRId64 "]",
                             m->path, name, got, ne0);
    }
    *out = t;
    return COLLOQ_OK;
}

int colloq_bind_mat(colloq_model *m, const char *name, bool required, int64_t k, int64_t n_rows,
                    colloq_mat *out, colloq_err *err) {
    memset(out, 0, sizeof *out);
    const gguf_tensor *t;
    int rc = find_checked(m, name, required, k, n_rows, true, &t, err);
    if (rc != COLLOQ_OK || !t) return rc;
    uint64_t row;
    if (!colloq_type_row_size(t->type, k, &row))
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: tensor '%s': bad row length %" PRId64,
                             m->path, name, k);
    out->data = t->data;
    out->type = t->type;
    out->k = k;
    out->n_rows = n_rows;
    out->row_bytes = row;
    m->weight_bytes += t->nbytes;
    return COLLOQ_OK;
}

int colloq_bind_vec(colloq_model *m, const char *name, bool required, int64_t n,
                    const float **out, colloq_err *err) {
    *out = NULL;
    const gguf_tensor *t;
    int rc = find_checked(m, name, required, n, 1, false, &t, err);
    if (rc != COLLOQ_OK || !t) return rc;
    if (m->n_vecs == m->cap_vecs) {
        int cap = m->cap_vecs ? m->cap_vecs * 2 : 16;
        float **nv = colloq_realloc(m->vecs, (size_t)cap * sizeof *nv);
        if (!nv) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory binding '%s'", m->path, name);
        m->vecs = nv;
        m->cap_vecs = cap;
    }
    float *v = colloq_malloc((size_t)n * sizeof *v);
    if (!v) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory binding '%s'", m->path, name);
    colloq_type_get(t->type)->to_float(t->data, v, n);
    m->vecs[m->n_vecs++] = v;
    m->weight_bytes += t->nbytes;
    *out = v;
    return COLLOQ_OK;
}

/* ---- load / free ---- */

static int load_arch(colloq_model *m, colloq_err *err) {
    gguf_str name;
    int rc = gguf_get_str(m->file, "general.architecture", &name, err);
    if (rc < 0) return rc;
    if (rc == 1) return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: missing key 'general.architecture'", m->path);
    m->arch = arch_find(name);
    if (!m->arch) {
        char list[128];
        arch_list(list, sizeof list);
        int len = name.len > 64 ? 64 : (int)name.len;
        return colloq_seterr(err, COLLOQ_ERR_UNSUPPORTED, "%s: architecture '%.*s' is not supported "
                             "(supported: %s)", m->path, len, name.s, list);
    }
    return colloq_forward_check_arch(m->arch, err);
}

static int load_vocab(colloq_model *m, colloq_err *err) {
    int rc = colloq_vocab_load(m->file, &m->vocab, err);
    if (rc != COLLOQ_OK) return rc;
    int nv = colloq_vocab_n(m->vocab);
    if (m->hp.n_vocab == 0) m->hp.n_vocab = nv;
    if (nv > m->hp.n_vocab)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: the tokenizer has %d tokens but %s.vocab_size is %d",
                             m->path, nv, m->arch->name, m->hp.n_vocab);
    return COLLOQ_OK;
}

static void log_memory(const colloq_model *m) {
    int n_ctx = colloq_seq_default_n_ctx(m);
    size_t kv, scr;
    colloq_seq_estimate(m, n_ctx, COLLOQ_CACHE_F16, &kv, &scr);
    const colloq_hparams *hp = &m->hp;
    colloq_log(0, "%s: %s, %d layers, dim %d, %d heads (%d kv), ffn %d, vocab %d, train ctx %d",
               m->path, m->arch->name, hp->n_layer, hp->dim, hp->n_head, hp->n_head_kv, hp->n_ff,
               hp->n_vocab, hp->n_ctx_train);
    colloq_log(0, "%s: weights %.1f MiB mapped (file %.1f MiB), %d threads", m->path,
               (double)m->weight_bytes / 1048576.0, (double)gguf_file_size(m->file) / 1048576.0, m->n_threads);
    colloq_log(0, "%s: per sequence at n_ctx %d: KV cache (F16) %.1f MiB + scratch %.1f MiB", m->path,
               n_ctx, (double)kv / 1048576.0, (double)scr / 1048576.0);
}

/* Load-time packed copies of the weights the matmul multiplies (matmul.h), or their
 * release (pack = false).  Not enough memory only costs speed: the rest stays unpacked. */
static void pack_weights(colloq_model *m, bool pack) {
    int n = m->layers ? m->hp.n_layer : 0;
    uint64_t packed = 0;
    for (int l = -1; l < n; l++) {
        colloq_layer *L = l >= 0 ? &m->layers[l] : NULL;
        colloq_mat *w[] = { L ? &L->wq : &m->output, L ? &L->wk : NULL, L ? &L->wv : NULL, L ? &L->wo : NULL,
                            L ? &L->ffn_gate : NULL, L ? &L->ffn_up : NULL, L ? &L->ffn_down : NULL };
        for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
            if (!w[i]) continue;
            if (!pack) {
                colloq_mat_unpack(w[i]);
            } else if (colloq_mat_pack(w[i], m->pool) != COLLOQ_OK) {
                colloq_log(0, "%s: not enough memory for packed weights; using slower unpacked products", m->path);
                m->packed_bytes = packed;
                return;
            }
            packed += colloq_mat_packed_bytes(w[i]);
        }
    }
    m->packed_bytes = pack ? packed : 0;
    if (pack && packed) colloq_log(1, "%s: %.1f MiB of weights packed for the %s kernels", m->path,
                                   (double)packed / 1048576.0, colloq_kernels_isa());
}

int colloq_model_load(const char *path, const colloq_model_params *p, colloq_model **out, colloq_err *err) {
    if (!path || !out) return colloq_seterr(err, COLLOQ_ERR_ARG, "colloq_model_load: path and out are required");
    *out = NULL;
    colloq_model_params def = colloq_model_default_params();
    if (!p) p = &def;
    if (p->n_threads < 0 || p->n_threads > 1024)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "%s: n_threads %d is out of range (0..1024)", path, p->n_threads);
    colloq_model *m = colloq_calloc(1, sizeof *m);
    if (!m) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory", path);
    m->verbose = p->verbose;
    m->path = colloq_strdup(path);
    if (!m->path) { colloq_free(m); return colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory", path); }
    if (pthread_mutex_init(&m->eval_lock, NULL) != 0) {
        colloq_free(m->path);
        colloq_free(m);
        return colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: cannot create a mutex", path);
    }
    int rc = gguf_open(path, &m->file, err);
    if (rc == COLLOQ_OK) rc = load_arch(m, err);
    if (rc == COLLOQ_OK) rc = m->arch->load_hparams(m, err);
    if (rc == COLLOQ_OK) rc = load_vocab(m, err);
    if (rc == COLLOQ_OK) {
        m->layers = colloq_calloc((size_t)m->hp.n_layer, sizeof *m->layers);
        if (!m->layers) rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory", path);
    }
    if (rc == COLLOQ_OK) rc = m->arch->bind(m, err);
    if (rc == COLLOQ_OK) {
        m->pool = colloq_pool_new(p->n_threads);
        if (!m->pool) rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: cannot start the thread pool", path);
        else m->n_threads = colloq_pool_size(m->pool);
    }
    if (rc == COLLOQ_OK) pack_weights(m, true);
    if (rc != COLLOQ_OK) {
        colloq_model_free(m);
        return rc;
    }
    if (m->verbose) log_memory(m);
    *out = m;
    return COLLOQ_OK;
}

void colloq_model_free(colloq_model *m) {
    if (!m) return;
    colloq_pool_free(m->pool);
    pack_weights(m, false);
    for (int i = 0; i < m->n_vecs; i++) colloq_free(m->vecs[i]);
    colloq_free(m->vecs);
    colloq_free(m->layers);
    colloq_vocab_free(m->vocab);
    gguf_close(m->file);
    pthread_mutex_destroy(&m->eval_lock);
    colloq_free(m->path);
    colloq_free(m);
}

int colloq_model_n_vocab(const colloq_model *m) { return m ? m->hp.n_vocab : 0; }
int colloq_model_n_ctx_train(const colloq_model *m) { return m ? m->hp.n_ctx_train : 0; }
const char *colloq_model_arch(const colloq_model *m) { return m ? m->arch->name : ""; }

/* ---- describe ---- */

static double mib(size_t n) { return (double)n / 1048576.0; }

void colloq_model_describe(const colloq_model *m, void *FILE_stream) {
    FILE *out = FILE_stream ? (FILE *)FILE_stream : stdout;
    if (!m) return;
    const colloq_hparams *hp = &m->hp;
    const colloq_arch *a = m->arch;
    fprintf(out, "file:             %s\n", m->path);
    fprintf(out, "architecture:     %s\n", a->name);
    fprintf(out, "n_vocab:          %d (tokenizer: %s, %d tokens)\n", hp->n_vocab,
            colloq_vocab_model_name(m->vocab), colloq_vocab_n(m->vocab));
    fprintf(out, "n_ctx_train:      %d\n", hp->n_ctx_train);
    fprintf(out, "n_embd:           %d\n", hp->dim);
    fprintf(out, "n_layer:          %d\n", hp->n_layer);
    fprintf(out, "n_ff:             %d\n", hp->n_ff);
    fprintf(out, "n_head:           %d\n", hp->n_head);
    fprintf(out, "n_head_kv:        %d\n", hp->n_head_kv);
    fprintf(out, "head_dim:         %d\n", hp->head_dim);
    fprintf(out, "norm:             %s, eps %g\n", a->norm == COLLOQ_NORM_RMS ? "RMSNorm" : "LayerNorm",
            (double)hp->norm_eps);
    if (a->rope != COLLOQ_ROPE_NONE)
        fprintf(out, "rope:             %s, dim %d, base %g, linear scale %g\n",
                a->rope == COLLOQ_ROPE_ADJACENT ? "adjacent pairs" : "neox halves", hp->rope_dim,
                (double)hp->rope_base, 1.0 / (double)hp->rope_scale);
    if (a->alibi) fprintf(out, "positions:        ALiBi (no RoPE), slopes for %d heads\n", hp->n_head);
    if (hp->sliding_window) fprintf(out, "sliding_window:   %d\n", hp->sliding_window);
    fprintf(out, "ffn:              %s\n", a->ffn == COLLOQ_FFN_SWIGLU ? "SwiGLU" : "GELU");
    fprintf(out, "output:           %s%s\n", m->tied_output ? "tied to token_embd" : "output.weight",
            m->output_scale ? ", rows normalised (NormHead)" : "");
    fprintf(out, "weights:          %.1f MiB mapped from the file\n", mib(m->weight_bytes));
    if (m->packed_bytes)
        fprintf(out, "packed weights:   %.1f MiB in memory (copies laid out for the %s kernels)\n",
                mib(m->packed_bytes), colloq_kernels_isa());
    int n_ctx = colloq_seq_default_n_ctx(m);
    size_t kv16, scr, kv32, kv8 = 0;
    colloq_seq_estimate(m, n_ctx, COLLOQ_CACHE_F16, &kv16, &scr);
    colloq_seq_estimate(m, n_ctx, COLLOQ_CACHE_F32, &kv32, NULL);
    char q8[48] = "";
    if (m->hp.head_dim % 32 == 0) {
        colloq_seq_estimate(m, n_ctx, COLLOQ_CACHE_Q8_0, &kv8, NULL);
        snprintf(q8, sizeof q8, ", Q8_0: %.1f MiB", mib(kv8));
    }
    fprintf(out, "per sequence:     n_ctx %d: KV cache %.1f MiB (F16; F32: %.1f MiB%s) + scratch %.1f MiB "
            "(%d threads) = %.1f MiB\n", n_ctx, mib(kv16), mib(kv32), q8, mib(scr), m->n_threads, mib(kv16 + scr));
    fprintf(out, "\n");
    gguf_describe(m->file, out);
}

size_t colloq_model_packed_bytes(const colloq_model *m) { return m ? (size_t)m->packed_bytes : 0; }
