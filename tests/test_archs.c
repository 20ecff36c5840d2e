/*
 * test_archs.c - loading the qwen2, qwen, falcon, baichuan and chatglm architectures:
 * hyper-parameters as each converter states them (qwen's doubled FFN width, chatglm's
 * half-width rotary, baichuan's 13B-by-layer-count and Baichuan 2 NormHead), fused tensors
 * bound as row views, chatglm's "[gMASK]sop" prefix tokens, the forward pass giving the
 * same logits in one batch and token by token, and precise load errors for malformed
 * files (each made by rewriting a valid random model with one change).
 * usage: test_archs SCRATCH_DIR
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "colloq.h"
#include "mkmodel.h"
#include "model.h"
#include "quant.h"
#include "util.h"

static int failures;
static char dir[512];

#define CHECK(c, ...) do {                                                    \
        if (!(c)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #c); \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                            \
            failures++;                                                       \
        }                                                                     \
    } while (0)

static const char *tmp(const char *name) {
    static char buf[4][640];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* A tiny F32 model of `arch` (shape "tiny" with the given changes) at path. */
static void make(const char *arch, int layers, int dim, int heads, int kv, int n_vocab, const char *path) {
    colloq_mkmodel_params p;
    colloq_err err = { { 0 } };
    int rc = colloq_mkmodel_shape("tiny", &p, &err);
    if (rc == COLLOQ_OK) rc = colloq_mkmodel_set_arch(&p, arch, &err);
    if (layers) p.n_layers = layers;
    if (dim) p.dim = dim;
    if (heads) p.n_heads = heads;
    if (kv) p.n_kv_heads = kv;
    p.n_vocab = n_vocab;
    p.type = CT_F32;
    p.n_threads = 1;
    if (rc == COLLOQ_OK) rc = colloq_mkmodel_write(&p, path, &err);
    CHECK(rc == COLLOQ_OK, "mkmodel %s: %s", arch, err.msg);
}

static int load_rc(const char *path, colloq_model **m, colloq_err *err) {
    colloq_model_params mp = colloq_model_default_params();
    mp.n_threads = 2;
    *m = NULL;
    return colloq_model_load(path, &mp, m, err);
}

static colloq_model *load(const char *path, colloq_err *err) {
    colloq_model *m;
    return load_rc(path, &m, err) == COLLOQ_OK ? m : NULL;
}

/* ---- rewriting a file with one change ---- */

typedef struct {
    const char *drop_key, *set_key, *set_str;   /* set_str NULL: set_key gets set_u32 */
    uint32_t set_u32;
    const char *drop_tensor;
    const char *add_vec[2];       /* extra F32 vector tensors of add_n elements */
    int64_t add_n;
    const char *reshape;          /* a 2-D tensor written with half its rows */
} edit;

static bool str_is(gguf_str s, const char *z) { return gguf_str_eq(s, z); }

static bool rewrite(const char *src, const char *dst, const edit *e) {
    colloq_err err = { { 0 } };
    gguf_file *f;
    if (gguf_open(src, &f, &err) != COLLOQ_OK) {
        fprintf(stderr, "rewrite: %s\n", err.msg);
        return false;
    }
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        if (e->drop_key && str_is(kv->key, e->drop_key)) continue;
        gguf_writer_copy_kv(w, kv);
    }
    if (e->set_key && e->set_str) gguf_writer_set_str(w, e->set_key, e->set_str);
    else if (e->set_key) gguf_writer_set_u32(w, e->set_key, e->set_u32);
    char name[128];
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.s);
        if (e->drop_tensor && !strcmp(name, e->drop_tensor)) continue;
        int64_t ne[4] = { t->ne[0], t->ne[1], t->ne[2], t->ne[3] };
        uint64_t nbytes = t->nbytes;
        if (e->reshape && !strcmp(name, e->reshape)) {
            ne[1] /= 2;
            nbytes /= 2;
        }
        gguf_writer_add_tensor(w, name, t->type, t->n_dims, ne, t->data, nbytes);
    }
    float *extra = e->add_n ? calloc((size_t)e->add_n, sizeof *extra) : NULL;
    for (int j = 0; j < 2 && extra; j++) {
        int64_t ne[4] = { e->add_n, 1, 1, 1 };
        if (e->add_vec[j])
            gguf_writer_add_tensor(w, e->add_vec[j], CT_F32, 1, ne, extra, (uint64_t)e->add_n * sizeof(float));
    }
    int rc = gguf_writer_write(w, dst, 0, &err);
    gguf_writer_free(w);
    gguf_close(f);
    free(extra);
    if (rc != COLLOQ_OK) fprintf(stderr, "rewrite %s: %s\n", dst, err.msg);
    return rc == COLLOQ_OK;
}

static void expect_error(const char *what, const char *src, const edit *e, int status, const char *msg) {
    const char *path = tmp("edited.gguf");
    if (!rewrite(src, path, e)) {
        CHECK(false, "%s: cannot write the edited file", what);
        return;
    }
    colloq_err err = { { 0 } };
    colloq_model *m;
    int rc = load_rc(path, &m, &err);
    CHECK(!m && rc == status, "%s: status %d, expected %d", what, rc, status);
    if (m) {
        colloq_model_free(m);
        return;
    }
    CHECK(strstr(err.msg, msg) != NULL, "%s: message '%s' lacks '%s'", what, err.msg, msg);
}

/* ---- loading ---- */

static bool is_rows(const colloq_mat *v, const colloq_mat *base, int64_t r0, int64_t n) {
    return v->data == (const char *)base->data + (uint64_t)r0 * base->row_bytes && v->n_rows == n &&
           v->k == base->k && v->type == base->type;
}

static void test_hparams_and_binding(void) {
    colloq_err err = { { 0 } };
    colloq_model *m;

    make("qwen2", 0, 0, 0, 0, 0, tmp("qwen2.gguf"));
    if ((m = load(tmp("qwen2.gguf"), &err))) {
        CHECK(!strcmp(colloq_model_arch(m), "qwen2"), "arch");
        CHECK(m->hp.rope_base == 1e6f && m->hp.rope_dim == 16 && m->arch->rope == COLLOQ_ROPE_NEOX, "qwen2 rope");
        CHECK(m->layers[1].bq && m->layers[1].bk && m->layers[1].bv && !m->layers[1].bo, "qwen2 biases");
        colloq_model_free(m);
    } else CHECK(false, "qwen2: %s", err.msg);

    make("qwen", 0, 0, 0, 0, 0, tmp("qwen.gguf"));
    if ((m = load(tmp("qwen.gguf"), &err))) {
        const colloq_layer *L = &m->layers[0];
        CHECK(m->hp.n_ff == 192 && L->ffn_up.n_rows == 192, "qwen n_ff %d (file states twice the width)", m->hp.n_ff);
        CHECK(m->hp.n_head_kv == 4 && is_rows(&L->wk, &L->wq, 64, 64) && is_rows(&L->wv, &L->wq, 128, 64),
              "qwen fused qkv views");
        CHECK(L->bk == L->bq + 64 && L->bv == L->bq + 128, "qwen fused bias");
        colloq_model_free(m);
    } else CHECK(false, "qwen: %s", err.msg);

    make("falcon", 0, 0, 0, 1, 0, tmp("falcon7.gguf"));
    make("falcon", 0, 0, 8, 2, 0, tmp("falcon40.gguf"));
    if ((m = load(tmp("falcon7.gguf"), &err))) {
        const colloq_layer *L = &m->layers[1];
        CHECK(m->hp.n_head_kv == 1 && !L->ffn_norm && L->attn_norm_b && m->output_norm_b, "falcon 7B layout");
        CHECK(is_rows(&L->wk, &L->wq, 64, 16) && is_rows(&L->wv, &L->wq, 80, 16) && !L->bq, "falcon MQA views");
        CHECK(m->arch->ffn == COLLOQ_FFN_GELU_ERF && m->arch->parallel_block && m->arch->norm == COLLOQ_NORM_LAYER,
              "falcon descriptor");
        colloq_model_free(m);
    } else CHECK(false, "falcon 7B: %s", err.msg);
    if ((m = load(tmp("falcon40.gguf"), &err))) {
        const colloq_layer *L = &m->layers[0];
        CHECK(L->ffn_norm && L->ffn_norm_b && is_rows(&L->wv, &L->wq, 80, 16), "falcon 40B layout");
        colloq_model_free(m);
    } else CHECK(false, "falcon 40B: %s", err.msg);

    make("baichuan", 0, 0, 0, 0, 0, tmp("baichuan7.gguf"));
    make("baichuan", 40, 96, 6, 6, 0, tmp("baichuan13.gguf"));
    make("baichuan", 0, 0, 0, 0, 125696, tmp("baichuan2.gguf"));
    if ((m = load(tmp("baichuan7.gguf"), &err))) {
        CHECK(!m->arch->alibi && m->arch->rope == COLLOQ_ROPE_ADJACENT && !m->output_scale, "baichuan 7B");
        colloq_model_free(m);
    } else CHECK(false, "baichuan 7B: %s", err.msg);
    if ((m = load(tmp("baichuan13.gguf"), &err))) {
        CHECK(m->arch->alibi && m->arch->rope == COLLOQ_ROPE_NONE && m->hp.rope_dim == 0 &&
              !strcmp(colloq_model_arch(m), "baichuan"), "baichuan 13B: ALiBi");
        colloq_model_free(m);
    } else CHECK(false, "baichuan 13B: %s", err.msg);
    if ((m = load(tmp("baichuan2.gguf"), &err))) {
        CHECK(m->hp.n_vocab == 125696 && m->output_scale, "Baichuan 2 NormHead");
        if (m->output_scale) {
            float *row = malloc(64 * sizeof *row);
            bool ok = true;
            for (int v = 0; v < m->hp.n_vocab; v += 9973) {
                colloq_mat_get_row(&m->output, v, row);
                double ss = 0;
                for (int d = 0; d < 64; d++) ss += (double)row[d] * row[d];
                ok &= fabs(m->output_scale[v] * sqrt(ss) - 1.0) < 1e-6;
            }
            CHECK(ok, "NormHead factors are 1/|row|");
            free(row);
        }
        colloq_model_free(m);
    } else CHECK(false, "Baichuan 2: %s", err.msg);

    make("chatglm", 0, 0, 0, 0, 0, tmp("chatglm.gguf"));
    if ((m = load(tmp("chatglm.gguf"), &err))) {
        const colloq_layer *L = &m->layers[0];
        CHECK(m->hp.rope_dim == 8 && m->hp.head_dim == 16 && m->arch->rope == COLLOQ_ROPE_ADJACENT, "chatglm rotary");
        CHECK(L->bq && L->bk == L->bq + 64 && L->bv == L->bq + 96 && is_rows(&L->wv, &L->wq, 96, 32), "chatglm qkv");
        CHECK(is_rows(&L->ffn_up, &L->ffn_gate, 192, 192) && L->ffn_gate.n_rows == 192, "chatglm gate/up halves");
        /* the GLM prefix: two special tokens, no BOS in front */
        colloq_token ids[64];
        const char *text = "[gMASK]sop<|user|>\n hello<|assistant|>";
        int n = colloq_tokenize(m, text, strlen(text), colloq_model_add_bos(m), true, ids, 64, &err);
        const colloq_vocab *v = m->vocab;
        CHECK(n >= 5 && ids[0] == colloq_vocab_find(v, "[gMASK]") && ids[1] == colloq_vocab_find(v, "sop") &&
              ids[2] == colloq_vocab_find(v, "<|user|>") && ids[n - 1] == colloq_vocab_find(v, "<|assistant|>"),
              "[gMASK]sop prefix: %d ids, first %d %d", n, n > 0 ? ids[0] : -1, n > 1 ? ids[1] : -1);
        colloq_model_free(m);
    } else CHECK(false, "chatglm: %s", err.msg);
}

/* ---- one batch vs token by token, every architecture ---- */

static void test_batch_vs_single(void) {
    static const char *const files[] = { "qwen2.gguf", "qwen.gguf", "falcon7.gguf", "falcon40.gguf",
                                         "baichuan13.gguf", "chatglm.gguf" };
    enum { N = 21 };
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        colloq_err err = { { 0 } };
        colloq_model *m = load(tmp(files[f]), &err);
        if (!m) {
            CHECK(false, "%s: %s", files[f], err.msg);
            continue;
        }
        int nv = colloq_model_n_vocab(m);
        colloq_token toks[N];
        for (int i = 0; i < N; i++) toks[i] = (colloq_token)((i * 37 + 11) % nv);
        float *a = malloc((size_t)N * nv * sizeof *a), *b = malloc((size_t)nv * sizeof *b);
        colloq_seq_params sp = colloq_seq_default_params();
        sp.n_ctx = 64;
        sp.cache_type = COLLOQ_CACHE_F32;
        colloq_seq *s1 = NULL, *s2 = NULL;
        int rc = colloq_seq_init(m, &sp, &s1, &err);
        if (rc == COLLOQ_OK) rc = colloq_seq_init(m, &sp, &s2, &err);
        if (rc == COLLOQ_OK) rc = colloq_seq_eval(s1, toks, N, a, true, &err);
        double worst = 0, scale = 0;
        for (int i = 0; rc == COLLOQ_OK && i < N; i++) {
            rc = colloq_seq_eval(s2, &toks[i], 1, b, false, &err);
            for (int v = 0; v < nv; v++) {
                double d = fabs((double)a[(size_t)i * nv + v] - b[v]);
                worst = d > worst ? d : worst;
                scale = fabs(b[v]) > scale ? fabs(b[v]) : scale;
            }
        }
        CHECK(rc == COLLOQ_OK, "%s: %s", files[f], err.msg);
        CHECK(worst <= 1e-4 * scale && scale > 0, "%s: batch vs token by token differ by %g (scale %g)", files[f],
              worst, scale);
        colloq_seq_free(s1);
        colloq_seq_free(s2);
        free(a);
        free(b);
        colloq_model_free(m);
    }
}

/* ---- malformed files ---- */

static void test_errors(void) {
    expect_error("qwen odd ffn", tmp("qwen.gguf"), &(edit){ .set_key = "qwen.feed_forward_length", .set_u32 = 385 },
                 COLLOQ_ERR_FORMAT, "is odd");
    expect_error("qwen gqa", tmp("qwen.gguf"), &(edit){ .set_key = "qwen.attention.head_count_kv", .set_u32 = 2 },
                 COLLOQ_ERR_UNSUPPORTED, "no grouped-query attention");
    expect_error("qwen no qkv bias", tmp("qwen.gguf"), &(edit){ .drop_tensor = "blk.1.attn_qkv.bias" },
                 COLLOQ_ERR_FORMAT, "missing tensor 'blk.1.attn_qkv.bias'");
    expect_error("qwen2 no k bias", tmp("qwen2.gguf"), &(edit){ .drop_tensor = "blk.0.attn_k.bias" },
                 COLLOQ_ERR_FORMAT, "missing tensor 'blk.0.attn_k.bias'");
    expect_error("qwen2 yarn", tmp("qwen2.gguf"), &(edit){ .set_key = "qwen2.rope.scaling.type", .set_str = "yarn" },
                 COLLOQ_ERR_UNSUPPORTED, "qwen2.rope.scaling.type 'yarn' is not supported");
    expect_error("falcon layout", tmp("falcon40.gguf"),
                 &(edit){ .set_key = "falcon.tensor_data_layout", .set_str = "per-group" },
                 COLLOQ_ERR_UNSUPPORTED, "falcon.tensor_data_layout 'per-group'");
    expect_error("falcon eps", tmp("falcon7.gguf"), &(edit){ .drop_key = "falcon.attention.layer_norm_epsilon" },
                 COLLOQ_ERR_FORMAT, "missing hyper-parameter 'falcon.attention.layer_norm_epsilon'");
    expect_error("falcon qkv bias", tmp("falcon7.gguf"), &(edit){ .add_vec = { "blk.0.attn_qkv.bias" }, .add_n = 96 },
                 COLLOQ_ERR_UNSUPPORTED, "'blk.0.attn_qkv.bias' is not part of the falcon architecture");
    expect_error("falcon half norm", tmp("falcon7.gguf"), &(edit){ .add_vec = { "blk.1.attn_norm_2.weight" }, .add_n = 64 },
                 COLLOQ_ERR_FORMAT, "missing tensor 'blk.1.attn_norm_2.bias'");
    expect_error("falcon mixed layouts", tmp("falcon7.gguf"),
                 &(edit){ .add_vec = { "blk.1.attn_norm_2.weight", "blk.1.attn_norm_2.bias" }, .add_n = 64 },
                 COLLOQ_ERR_FORMAT, "blk.1 has an attn_norm_2 but blk.0 has none");
    expect_error("falcon bias without norm", tmp("falcon7.gguf"), &(edit){ .add_vec = { "blk.0.attn_norm_2.bias" }, .add_n = 64 },
                 COLLOQ_ERR_FORMAT, "'blk.0.attn_norm_2.bias' without attn_norm_2.weight");
    expect_error("falcon norm bias", tmp("falcon40.gguf"), &(edit){ .drop_tensor = "blk.1.attn_norm_2.bias" },
                 COLLOQ_ERR_FORMAT, "missing tensor 'blk.1.attn_norm_2.bias'");
    expect_error("falcon qkv rows", tmp("falcon40.gguf"), &(edit){ .reshape = "blk.0.attn_qkv.weight" },
                 COLLOQ_ERR_FORMAT, "tensor 'blk.0.attn_qkv.weight' has shape [64, 48], expected [64, 96]");
    expect_error("chatglm ffn_up", tmp("chatglm.gguf"), &(edit){ .reshape = "blk.1.ffn_up.weight" },
                 COLLOQ_ERR_FORMAT, "tensor 'blk.1.ffn_up.weight' has shape [64, 192], expected [64, 384]");
    expect_error("chatglm rope dim", tmp("chatglm.gguf"), &(edit){ .set_key = "chatglm.rope.dimension_count", .set_u32 = 18 },
                 COLLOQ_ERR_FORMAT, "chatglm.rope.dimension_count 18 must be even and at most the head dimension 16");
    expect_error("baichuan no v", tmp("baichuan13.gguf"), &(edit){ .drop_tensor = "blk.39.attn_v.weight" },
                 COLLOQ_ERR_FORMAT, "missing tensor 'blk.39.attn_v.weight'");
    expect_error("baichuan vocab 0", tmp("baichuan7.gguf"), &(edit){ .set_key = "baichuan.vocab_size", .set_u32 = 0 },
                 COLLOQ_ERR_FORMAT, "'baichuan.vocab_size' is 0");
    expect_error("chatglm no ctx", tmp("chatglm.gguf"), &(edit){ .drop_key = "chatglm.context_length" },
                 COLLOQ_ERR_FORMAT, "missing hyper-parameter 'chatglm.context_length'");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_archs SCRATCH_DIR\n");
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    mkdir(dir, 0755);
    test_hparams_and_binding();
    test_batch_vs_single();
    test_errors();
    if (failures) {
        fprintf(stderr, "test_archs: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_archs: all checks passed\n");
    return 0;
}
