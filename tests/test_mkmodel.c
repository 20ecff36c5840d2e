/*
 * test_mkmodel.c - the random-weight model writer: metadata keys and tensor shapes a
 * Llama loader expects, weight statistics, quantised types against the F32 values,
 * determinism (same seed and any thread count -> same bytes), argument checks, and
 * copying tokenizer.* keys from a vocabulary file when one is given.
 * usage: test_mkmodel TMPDIR [VOCAB.gguf]
 */
#define _GNU_SOURCE   /* memmem */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gguf.h"
#include "mkmodel.h"
#include "quant.h"
#include "util.h"

static int failures;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
                              fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static char dir[512];

static const char *tmp(const char *name) {
    static char bufs[4][640];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

static colloq_mkmodel_params tiny(uint32_t type) {
    colloq_mkmodel_params p;
    colloq_err err;
    int rc = colloq_mkmodel_shape("tiny", &p, &err);
    CHECK(rc == COLLOQ_OK, "tiny shape: %s", err.msg);
    p.type = type;
    p.seed = 7;
    p.n_threads = 2;
    return p;
}

static bool write_model(const colloq_mkmodel_params *p, const char *path) {
    colloq_err err = { { 0 } };
    int rc = colloq_mkmodel_write(p, path, &err);
    CHECK(rc == COLLOQ_OK, "write %s: %s", path, err.msg);
    return rc == COLLOQ_OK;
}

static bool same_file(const char *a, const char *b) {
    char *da = NULL, *db = NULL;
    size_t la = 0, lb = 0;
    colloq_err err;
    bool same = colloq_read_file(a, &da, &la, &err) == COLLOQ_OK && colloq_read_file(b, &db, &lb, &err) == COLLOQ_OK &&
                la == lb && !memcmp(da, db, la);
    colloq_free(da);
    colloq_free(db);
    return same;
}

static uint32_t get_u32(const gguf_file *f, const char *key) {
    uint32_t v = 0xffffffffu;
    colloq_err err;
    CHECK(gguf_get_u32(f, key, &v, &err) == 0, "key %s missing or not u32", key);
    return v;
}

static void check_float_tensor(const gguf_tensor *t, int64_t ne0, int64_t ne1) {
    CHECK(t->ne[0] == ne0 && t->ne[1] == ne1, "%.*s: shape %lld x %lld, want %lld x %lld", (int)t->name.len,
          t->name.s, (long long)t->ne[0], (long long)t->ne[1], (long long)ne0, (long long)ne1);
}

/* Layout, metadata and statistics of an F32 tiny model. */
static void test_layout(void) {
    colloq_mkmodel_params p = tiny(CT_F32);
    p.sliding_window = 8;
    p.rope_scale = 2.0f;
    if (!write_model(&p, tmp("f32.gguf"))) return;
    gguf_file *f = NULL;
    colloq_err err;
    if (gguf_open(tmp("f32.gguf"), &f, &err) != COLLOQ_OK) { CHECK(0, "open: %s", err.msg); return; }
    gguf_str s;
    CHECK(gguf_get_str(f, "general.architecture", &s, &err) == 0 && gguf_str_eq(s, "llama"), "architecture");
    CHECK(gguf_get_str(f, "general.name", &s, &err) == 0 && memmem(s.s, s.len, "random", 6) &&
          memmem(s.s, s.len, "not a trained model", 19), "general.name must say random weights");
    CHECK(get_u32(f, "llama.embedding_length") == 64, "embedding_length");
    CHECK(get_u32(f, "llama.block_count") == 2, "block_count");
    CHECK(get_u32(f, "llama.feed_forward_length") == 192, "feed_forward_length");
    CHECK(get_u32(f, "llama.attention.head_count") == 4, "head_count");
    CHECK(get_u32(f, "llama.attention.head_count_kv") == 2, "head_count_kv");
    CHECK(get_u32(f, "llama.context_length") == 512, "context_length");
    CHECK(get_u32(f, "llama.attention.sliding_window") == 8, "sliding_window");
    CHECK(get_u32(f, "llama.rope.dimension_count") == 16, "rope.dimension_count");
    CHECK(get_u32(f, "general.file_type") == 0, "file_type");
    CHECK(gguf_get_str(f, "llama.rope.scaling.type", &s, &err) == 0 && gguf_str_eq(s, "linear"), "rope scaling type");
    float fv = 0;
    CHECK(gguf_get_f32(f, "llama.rope.scaling.factor", &fv, &err) == 0 && fv == 2.0f, "rope scaling factor");
    CHECK(gguf_get_f32(f, "llama.rope.freq_base", &fv, &err) == 0 && fv == 10000.0f, "rope base");
    CHECK(gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &fv, &err) == 0 && fv > 0, "rms eps");

    const gguf_kv *toks = gguf_find_kv(f, "tokenizer.ggml.tokens");
    int n_vocab = colloq_mkmodel_builtin_vocab_size();
    CHECK(n_vocab > 3 + 256 + 300, "built-in vocabulary has only %d tokens", n_vocab);
    CHECK(toks && toks->type == GGUF_T_ARRAY && toks->v.arr.n == (uint64_t)n_vocab, "tokenizer.ggml.tokens");
    if (toks && toks->v.arr.n > 300) {
        CHECK(gguf_str_eq(gguf_arr_str(toks, 0), "<unk>") && gguf_str_eq(gguf_arr_str(toks, 1), "<s>") &&
              gguf_str_eq(gguf_arr_str(toks, 2), "</s>") && gguf_str_eq(gguf_arr_str(toks, 3), "<0x00>") &&
              gguf_str_eq(gguf_arr_str(toks, 258), "<0xFF>") && gguf_str_eq(gguf_arr_str(toks, 259), "\xe2\x96\x81"),
              "special and byte tokens");
    }
    const gguf_kv *types = gguf_find_kv(f, "tokenizer.ggml.token_type");
    CHECK(types && types->v.arr.n == (uint64_t)n_vocab && gguf_arr_num(types, 1) == 3 && gguf_arr_num(types, 10) == 6,
          "token types");
    CHECK(get_u32(f, "tokenizer.ggml.bos_token_id") == 1 && get_u32(f, "tokenizer.ggml.eos_token_id") == 2, "bos/eos");
    CHECK(gguf_get_str(f, "tokenizer.ggml.model", &s, &err) == 0 && gguf_str_eq(s, "llama"), "tokenizer model");

    CHECK(gguf_n_tensors(f) == 1 + 2 * 9 + 2, "tensor count %llu", (unsigned long long)gguf_n_tensors(f));
    static const struct { const char *name; int64_t ne0, ne1; } want[] = {
        { "blk.0.attn_norm.weight", 64, 1 }, { "blk.1.attn_q.weight", 64, 64 }, { "blk.1.attn_k.weight", 64, 32 },
        { "blk.0.attn_v.weight", 64, 32 }, { "blk.0.attn_output.weight", 64, 64 }, { "blk.1.ffn_norm.weight", 64, 1 },
        { "blk.0.ffn_gate.weight", 64, 192 }, { "blk.0.ffn_up.weight", 64, 192 }, { "blk.1.ffn_down.weight", 192, 64 },
        { "output_norm.weight", 64, 1 },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const gguf_tensor *t = gguf_find_tensor(f, want[i].name);
        CHECK(t != NULL, "tensor %s missing", want[i].name);
        if (t) {
            check_float_tensor(t, want[i].ne0, want[i].ne1);
            CHECK(t->type == CT_F32, "%s type %u", want[i].name, t->type);
            CHECK(t->n_dims == (want[i].ne1 == 1 ? 1u : 2u), "%s n_dims %u", want[i].name, t->n_dims);
        }
    }
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight"), *out = gguf_find_tensor(f, "output.weight");
    CHECK(emb && out, "token_embd / output missing");
    if (emb) check_float_tensor(emb, 64, n_vocab);
    if (out) check_float_tensor(out, 64, n_vocab);

    /* statistics: matrices uniform with variance 1/fan_in, norm gains 1 +- 0.2 */
    const gguf_tensor *q = gguf_find_tensor(f, "blk.0.ffn_down.weight");
    if (q) {
        const float *x = q->data;
        int64_t n = q->ne[0] * q->ne[1];
        double sum = 0, sq = 0, lim = sqrt(3.0 / (double)q->ne[0]) * 1.0001;
        bool in_range = true;
        for (int64_t i = 0; i < n; i++) { sum += x[i]; sq += (double)x[i] * x[i]; in_range &= fabs(x[i]) <= lim; }
        double mean = sum / (double)n, var = sq / (double)n - mean * mean;
        CHECK(in_range, "ffn_down values outside +-sqrt(3/fan_in)");
        CHECK(fabs(mean) < 0.01 && fabs(var * (double)q->ne[0] - 1.0) < 0.05, "ffn_down mean %g var*fan_in %g", mean,
              var * (double)q->ne[0]);
    }
    const gguf_tensor *g = gguf_find_tensor(f, "output_norm.weight");
    if (g) {
        const float *x = g->data;
        bool ok = true, varied = false;
        for (int i = 0; i < 64; i++) { ok &= x[i] >= 0.8f && x[i] <= 1.2f; varied |= x[i] != x[0]; }
        CHECK(ok && varied, "norm gains not in [0.8, 1.2] or constant");
    }
    gguf_close(f);
}

/* Same seed -> same bytes, whatever the thread count; another seed -> other weights. */
static void test_determinism(void) {
    colloq_mkmodel_params p = tiny(CT_Q4_0);
    if (!write_model(&p, tmp("a.gguf"))) return;
    p.n_threads = 1;
    if (!write_model(&p, tmp("b.gguf"))) return;
    CHECK(same_file(tmp("a.gguf"), tmp("b.gguf")), "1 and 2 threads wrote different files");
    p.seed = 8;
    if (!write_model(&p, tmp("c.gguf"))) return;
    CHECK(!same_file(tmp("a.gguf"), tmp("c.gguf")), "seeds 7 and 8 wrote the same file");
}

/* Every type: 2-D tensors of that type, 1-D F32; values match the F32 file within the type's error. */
static void test_types(void) {
    static const struct { uint32_t type; uint32_t ftype; double tol; } cases[] = {
        { CT_F16, 1, 1e-3 }, { CT_BF16, 32, 8e-3 }, { CT_Q8_0, 7, 1.5e-2 }, { CT_Q4_0, 2, 0.25 },
    };
    gguf_file *ref = NULL;
    colloq_err err;
    if (gguf_open(tmp("f32.gguf"), &ref, &err) != COLLOQ_OK) { CHECK(0, "open f32: %s", err.msg); return; }
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        colloq_mkmodel_params p = tiny(cases[c].type);
        p.sliding_window = 8;
        p.rope_scale = 2.0f;
        p.tied = true;
        if (!write_model(&p, tmp("t.gguf"))) continue;
        gguf_file *f = NULL;
        if (gguf_open(tmp("t.gguf"), &f, &err) != COLLOQ_OK) { CHECK(0, "open: %s", err.msg); continue; }
        const colloq_type_traits *tr = colloq_type_get(cases[c].type);
        CHECK(get_u32(f, "general.file_type") == cases[c].ftype, "%s: file_type", tr->name);
        CHECK(gguf_find_tensor(f, "output.weight") == NULL, "%s: tied model has output.weight", tr->name);
        CHECK(gguf_n_tensors(f) == 1 + 2 * 9 + 1, "%s: tensor count", tr->name);
        for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
            const gguf_tensor *t = gguf_tensor_at(f, i);
            char name[96];
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.s);
            CHECK(t->type == (t->n_dims == 1 ? (uint32_t)CT_F32 : cases[c].type), "%s: %s has type %u", tr->name, name,
                  t->type);
            const gguf_tensor *r = gguf_find_tensor(ref, name);
            if (!r || t->n_dims != 2) continue;
            int64_t n = t->ne[0] * t->ne[1];
            float *x = colloq_malloc((size_t)n * sizeof(float));
            if (!x) continue;
            tr->to_float(t->data, x, n);
            const float *y = r->data;
            double maxd = 0, scale = sqrt(3.0 / (double)t->ne[0]);
            for (int64_t k = 0; k < n; k++) maxd = fmax(maxd, fabs((double)x[k] - y[k]));
            CHECK(maxd <= cases[c].tol * scale, "%s: %s differs from f32 by %g (scale %g)", tr->name, name, maxd, scale);
            colloq_free(x);
        }
        gguf_close(f);
    }
    gguf_close(ref);
}

static void test_errors(void) {
    colloq_mkmodel_params p;
    colloq_err err = { { 0 } };
    CHECK(colloq_mkmodel_shape("llama-70b", &p, &err) == COLLOQ_ERR_ARG && strstr(err.msg, "llama-70b"), "unknown shape");
    static const char *const shapes[] = { "mistral-7b", "llama2-7b", "tinyllama-1b", "tiny" };
    for (int i = 0; i < 4; i++) {
        CHECK(colloq_mkmodel_shape(shapes[i], &p, &err) == COLLOQ_OK, "shape %s", shapes[i]);
        p.type = CT_Q4_0;
        CHECK(colloq_mkmodel_check(&p, &err) == COLLOQ_OK, "shape %s invalid for q4_0: %s", shapes[i], err.msg);
    }
    CHECK(colloq_mkmodel_shape("mistral-7b", &p, &err) == 0 && p.dim == 4096 && p.n_layers == 32 && p.n_kv_heads == 8 &&
          p.ffn == 14336 && p.sliding_window == 4096 && p.ctx == 32768 && !p.tied, "mistral-7b shape");
    CHECK(colloq_mkmodel_shape("tinyllama-1b", &p, &err) == 0 && p.dim == 2048 && p.n_layers == 22 && p.n_kv_heads == 4 &&
          p.ffn == 5632, "tinyllama-1b shape");
    p = tiny(CT_F32); p.dim = 60;                      /* not a multiple of 4 heads * even */
    p.n_heads = 4;
    CHECK(colloq_mkmodel_check(&p, &err) == COLLOQ_ERR_ARG, "head dim 15 accepted");
    p = tiny(CT_F32); p.n_kv_heads = 3;
    CHECK(colloq_mkmodel_check(&p, &err) == COLLOQ_ERR_ARG, "kv heads 3 of 4 accepted");
    p = tiny(CT_Q8_0); p.dim = 48; p.n_heads = 3; p.n_kv_heads = 1;
    CHECK(colloq_mkmodel_check(&p, &err) == COLLOQ_ERR_ARG, "q8_0 with dim 48 accepted");
    p.type = CT_F16;
    CHECK(colloq_mkmodel_check(&p, &err) == COLLOQ_OK, "f16 with dim 48 rejected: %s", err.msg);
    p = tiny(CT_Q4_1);
    CHECK(colloq_mkmodel_check(&p, &err) == COLLOQ_ERR_ARG, "q4_1 accepted");
    p = tiny(CT_F32); p.rope_base = 0;
    CHECK(colloq_mkmodel_check(&p, &err) == COLLOQ_ERR_ARG, "rope base 0 accepted");
    p = tiny(CT_F32); p.vocab_path = tmp("does-not-exist.gguf");
    CHECK(colloq_mkmodel_write(&p, tmp("x.gguf"), &err) == COLLOQ_ERR_IO, "missing vocab file: %s", err.msg);
    p = tiny(CT_F32);
    CHECK(colloq_mkmodel_write(&p, tmp("no-such-dir/x.gguf"), &err) == COLLOQ_ERR_IO, "unwritable path: %s", err.msg);
    /* allocation failures fail the call, never the process */
    for (long n = 0; n < 40; n += 3) {
        colloq_test_fail_alloc_after(n);
        int rc = colloq_mkmodel_write(&p, tmp("oom.gguf"), &err);
        colloq_test_fail_alloc_after(-1);
        CHECK(rc == COLLOQ_OK || rc == COLLOQ_ERR_NOMEM || rc == COLLOQ_ERR_IO, "alloc %ld: rc %d", n, rc);
    }
}

static void test_vocab_copy(const char *vocab) {
    FILE *fp = fopen(vocab, "rb");
    if (!fp) { printf("mkmodel: %s absent, vocabulary copy not tested\n", vocab); return; }
    fclose(fp);
    colloq_mkmodel_params p = tiny(CT_Q8_0);
    p.vocab_path = vocab;
    if (!write_model(&p, tmp("v.gguf"))) return;
    gguf_file *v = NULL, *f = NULL;
    colloq_err err;
    if (gguf_open(vocab, &v, &err) != 0 || gguf_open(tmp("v.gguf"), &f, &err) != 0) {
        CHECK(0, "open: %s", err.msg);
    } else {
        int n_tok = 0;
        for (uint64_t i = 0; i < gguf_n_kv(v); i++) {
            const gguf_kv *kv = gguf_kv_at(v, i);
            if (kv->key.len < 10 || memcmp(kv->key.s, "tokenizer.", 10)) continue;
            n_tok++;
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.s);
            const gguf_kv *c = gguf_find_kv(f, key);
            CHECK(c && c->type == kv->type, "%s not copied", key);
            if (c && kv->type == GGUF_T_ARRAY) {
                CHECK(c->v.arr.n == kv->v.arr.n && c->v.arr.type == kv->v.arr.type, "%s array differs", key);
                if (c->v.arr.n && kv->v.arr.type == GGUF_T_STRING) {
                    gguf_str a = gguf_arr_str(kv, kv->v.arr.n - 1), b = gguf_arr_str(c, c->v.arr.n - 1);
                    CHECK(a.len == b.len && !memcmp(a.s, b.s, a.len), "%s last element differs", key);
                }
            }
        }
        CHECK(n_tok >= 3, "vocab file has only %d tokenizer keys", n_tok);
        const gguf_kv *toks = gguf_find_kv(v, "tokenizer.ggml.tokens");
        const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
        CHECK(toks && emb && (uint64_t)emb->ne[1] == toks->v.arr.n, "token_embd rows != vocabulary size");
    }
    if (f) gguf_close(f);
    if (v) gguf_close(v);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: test_mkmodel TMPDIR [VOCAB.gguf]\n"); return 2; }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    mkdir(dir, 0755);
    test_layout();
    test_determinism();
    test_types();
    test_errors();
    if (argc > 2) test_vocab_copy(argv[2]);
    if (failures) { fprintf(stderr, "%d check(s) failed\n", failures); return 1; }
    printf("mkmodel: all checks passed\n");
    return 0;
}
