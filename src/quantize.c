/*
 * quantize.c - `colloq quantize` as a library function: reads a GGUF file,
 * chooses each tensor's output type (a plain type or a K-quant mix, rules below),
 * converts row by row over a thread pool while the writer streams the file out,
 * and copies every metadata key.  Knows tensor names and types, not model math;
 * never used at inference time.
 */
#include "quantize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "gguf.h"
#include "quant.h"
#include "threadpool.h"
#include "util.h"

/* ---- the mixes ---- */

typedef struct {
    const char *name;
    uint32_t    base;       /* type of most 2-D weights */
    uint32_t    ftype;      /* general.file_type (llama.cpp's numbering) */
    char        mix;        /* 0 plain, '3' / '4' / '5': the Q3_K_M / Q4_K_M / Q5_K_M rules */
} mix_spec;

static const mix_spec mixes[] = {
    { "F32", CT_F32, 0, 0 },     { "F16", CT_F16, 1, 0 },     { "BF16", CT_BF16, 32, 0 },
    { "Q4_0", CT_Q4_0, 2, 0 },   { "Q4_1", CT_Q4_1, 3, 0 },   { "Q5_0", CT_Q5_0, 8, 0 },
    { "Q5_1", CT_Q5_1, 9, 0 },   { "Q8_0", CT_Q8_0, 7, 0 },   { "Q2_K", CT_Q2_K, 10, 0 },
    { "Q3_K", CT_Q3_K, 11, 0 },  { "Q4_K", CT_Q4_K, 14, 0 },  { "Q5_K", CT_Q5_K, 16, 0 },
    { "Q6_K", CT_Q6_K, 18, 0 },
    { "Q3_K_M", CT_Q3_K, 12, '3' }, { "Q4_K_M", CT_Q4_K, 15, '4' }, { "Q5_K_M", CT_Q5_K, 17, '5' },
};

static const mix_spec *find_mix(const char *name) {
    for (size_t i = 0; name && i < sizeof mixes / sizeof mixes[0]; i++)
        if (!strcasecmp(mixes[i].name, name)) return &mixes[i];
    return NULL;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Layer index of "blk.N.<...>", or -1. */
static int layer_of(const char *name) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    char *end;
    long v = strtol(name + 4, &end, 10);
    return end != name + 4 && *end == '.' && v >= 0 && v < 1 << 20 ? (int)v : -1;
}

/* The layers that get more bits in the _M mixes: the first and last eighth, and every
 * third layer in between. */
static bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* A type whose blocks fit rows of ne0 elements: K-quants fall back to the 32-element
 * type of similar size (Q2_K/Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0),
 * and anything that still does not fit to F16. */
static uint32_t fit_rows(uint32_t t, int64_t ne0) {
    const colloq_type_traits *tr = colloq_type_get(t);
    if (ne0 % tr->blck == 0) return t;
    switch (t) {
    case CT_Q2_K: case CT_Q3_K: t = CT_Q4_0; break;
    case CT_Q4_K: t = CT_Q5_0; break;
    case CT_Q5_K: t = CT_Q5_1; break;
    case CT_Q6_K: t = CT_Q8_0; break;
    default: break;
    }
    return ne0 % colloq_type_get(t)->blck == 0 ? t : CT_F16;
}

/*
 * Rules (as the common llama.cpp mixes choose them):
 *  - 1-D tensors (norms, biases) are F32; tensors whose name does not end in ".weight" are
 *    copied unchanged.
 *  - output.weight (or token_embd.weight when the file has no output.weight, since it
 *    then doubles as the output) is Q6_K for every quantised type below 8 bits; Q8_0,
 *    F16, BF16 and F32 keep their own type.
 *  - Q4_K_M / Q5_K_M: attn_v and ffn_down are Q6_K in the layers more_bits() picks (the
 *    first and last eighth, every third in between); a fused attn_qkv is Q5_K / Q6_K.
 *  - Q3_K_M: attn_v is Q5_K in layers 0-1 and Q4_K elsewhere; ffn_down is Q5_K in the
 *    first sixteenth of the layers and Q4_K elsewhere; attn_output and attn_qkv are Q4_K.
 *  - Everything else gets the base type.  --pure keeps the base type everywhere.
 *  - Finally fit_rows(): rows whose length is not a multiple of the type's block.
 */
int colloq_quantize_tensor_type(const char *mix_name, bool pure, const char *name, int64_t ne0, uint32_t n_dims,
                                int n_layers, bool has_output) {
    const mix_spec *mx = find_mix(mix_name);
    if (!mx) return -1;
    if (n_dims < 2) return CT_F32;
    uint32_t t = mx->base;
    int l = layer_of(name);
    bool low_bits = t != CT_F32 && t != CT_F16 && t != CT_BF16 && t != CT_Q8_0;
    if (!pure) {
        if (low_bits && (!strcmp(name, "output.weight") || (!has_output && !strcmp(name, "token_embd.weight")))) {
            t = CT_Q6_K;
        } else if (mx->mix == '4' || mx->mix == '5') {
            if ((ends_with(name, ".attn_v.weight") || ends_with(name, ".ffn_down.weight")) && l >= 0 &&
                more_bits(l, n_layers))
                t = CT_Q6_K;
            else if (ends_with(name, ".attn_qkv.weight"))
                t = mx->mix == '4' ? CT_Q5_K : CT_Q6_K;
        } else if (mx->mix == '3') {
            if (ends_with(name, ".attn_v.weight")) t = l >= 0 && l < 2 ? CT_Q5_K : CT_Q4_K;
            else if (ends_with(name, ".ffn_down.weight")) t = l >= 0 && l < n_layers / 16 ? CT_Q5_K : CT_Q4_K;
            else if (ends_with(name, ".attn_output.weight") || ends_with(name, ".attn_qkv.weight")) t = CT_Q4_K;
        }
    }
    return (int)fit_rows(t, ne0);
}

/* ---- conversion ---- */

typedef struct {
    const gguf_tensor *src;
    uint32_t           type;      /* output type */
    int64_t            ne0, rows;
    uint64_t           in_row, out_row;
    struct qz_state   *st;
} qz_tensor;

typedef struct qz_state {
    colloq_pool     *pool;
    float           *scratch;     /* one row of floats per thread */
    int64_t          max_row;
    const qz_tensor *job;
    void            *buf;
    bool             verbose;
} qz_state;

static void convert_worker(void *ctx, int ith, int nth) {
    qz_state *st = ctx;
    const qz_tensor *t = st->job;
    const colloq_type_kernels *from = colloq_type_fast(t->src->type), *to = colloq_type_fast(t->type);
    float *row = st->scratch + (size_t)ith * (size_t)st->max_row;
    int64_t r0 = t->rows * ith / nth, r1 = t->rows * (ith + 1) / nth;
    for (int64_t r = r0; r < r1; r++) {
        from->to_float((const char *)t->src->data + (uint64_t)r * t->in_row, row, t->ne0);
        to->from_float(row, (char *)st->buf + (uint64_t)r * t->out_row, t->ne0);
    }
}

static int fill_tensor(void *ctx, void *buf, uint64_t nbytes) {
    qz_tensor *t = ctx;
    qz_state *st = t->st;
    if (nbytes != t->out_row * (uint64_t)t->rows) return -1;
    double t0 = colloq_now();
    if (t->type == t->src->type) {
        memcpy(buf, t->src->data, nbytes);
    } else {
        st->job = t;
        st->buf = buf;
        colloq_pool_run(st->pool, convert_worker, st);
    }
    if (st->verbose)
        colloq_log(1, "quantize: %-32.*s %-5s -> %-5s [%lld x %lld] %.2f s", (int)t->src->name.len, t->src->name.s,
                   colloq_type_get(t->src->type)->name, colloq_type_get(t->type)->name, (long long)t->ne0,
                   (long long)t->rows, colloq_now() - t0);
    return 0;
}

static bool same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (!strcmp(a, b)) return true;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Layer count: the largest blk.N index + 1 (the <arch>.block_count key need not agree). */
static int count_layers(const gguf_file *f) {
    int n = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)(t->name.len < 95 ? t->name.len : 95), t->name.s);
        int l = layer_of(name);
        if (l + 1 > n) n = l + 1;
    }
    return n;
}

int colloq_quantize_file(const char *in, const char *out, const colloq_quantize_params *p,
                         colloq_quantize_stats *stats, colloq_err *err) {
    colloq_quantize_stats stz = { 0 };
    if (!in || !out || !p) return colloq_seterr(err, COLLOQ_ERR_ARG, "quantize: input, output and parameters are required");
    const mix_spec *mx = find_mix(p->type);
    if (!mx)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "unknown type '%s' (expected F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 "
                             "Q2_K Q3_K Q4_K Q5_K Q6_K Q3_K_M Q4_K_M Q5_K_M)", p->type ? p->type : "");
    if (same_file(in, out)) return colloq_seterr(err, COLLOQ_ERR_ARG, "%s: the output must not be the input file", out);

    gguf_file *f = NULL;
    int rc = gguf_open(in, &f, err);
    if (rc != COLLOQ_OK) return rc;
    uint64_t nt = gguf_n_tensors(f);
    gguf_writer *w = gguf_writer_new();
    qz_tensor *list = colloq_calloc(nt ? nt : 1, sizeof *list);
    qz_state st = { .verbose = colloq_log_level >= 1 };
    if (!w || !list) { rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory", in); goto done; }

    for (uint64_t i = 0; i < gguf_n_kv(f); i++) gguf_writer_copy_kv(w, gguf_kv_at(f, i));
    gguf_writer_set_u32(w, "general.file_type", mx->ftype);
    bool quantised = mx->base != CT_F32 && mx->base != CT_F16 && mx->base != CT_BF16;
    if (quantised) gguf_writer_set_u32(w, "general.quantization_version", 2);

    int n_layers = count_layers(f);
    bool has_output = gguf_find_tensor(f, "output.weight") != NULL;
    for (uint64_t i = 0; i < nt; i++) {
        const gguf_tensor *src = gguf_tensor_at(f, i);
        qz_tensor *t = &list[i];
        char name[256];
        if (src->name.len >= sizeof name) {
            rc = colloq_seterr(err, COLLOQ_ERR_UNSUPPORTED, "%s: tensor name of %llu bytes is too long", in,
                               (unsigned long long)src->name.len);
            goto done;
        }
        snprintf(name, sizeof name, "%.*s", (int)src->name.len, src->name.s);
        t->src = src;
        t->st = &st;
        t->ne0 = src->ne[0];
        t->rows = 1;
        for (uint32_t d = 1; d < src->n_dims; d++) t->rows *= src->ne[d];   /* reader bounds the product */
        bool weight = ends_with(name, ".weight") || src->n_dims < 2;
        int ty = weight ? colloq_quantize_tensor_type(mx->name, p->pure, name, t->ne0, src->n_dims, n_layers, has_output)
                        : (int)src->type;
        t->type = (uint32_t)ty;
        if (weight && src->n_dims >= 2 &&   /* the rule's choice for rows that fit every block size */
            ty != colloq_quantize_tensor_type(mx->name, p->pure, name, 256, src->n_dims, n_layers, has_output))
            stz.n_fallback++;
        if (!colloq_type_row_size(src->type, t->ne0, &t->in_row) || !colloq_type_row_size(t->type, t->ne0, &t->out_row)) {
            rc = colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: tensor '%s': bad row length %lld", in, name, (long long)t->ne0);
            goto done;
        }
        if (t->ne0 > st.max_row) st.max_row = t->ne0;
        stz.n_tensors++;
        if (t->type == src->type) stz.n_copied++;
        else stz.n_converted++;
        stz.bytes_in += src->nbytes;
        stz.bytes_out += t->out_row * (uint64_t)t->rows;
        gguf_writer_add_tensor_cb(w, name, t->type, src->n_dims, src->ne, t->out_row * (uint64_t)t->rows, fill_tensor, t);
    }

    st.pool = colloq_pool_new(p->n_threads);
    if (!st.pool) { rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "quantize: cannot start the thread pool"); goto done; }
    colloq_kernels_init();
    size_t nth = (size_t)colloq_pool_size(st.pool);
    if (st.max_row > 0 && (uint64_t)st.max_row > SIZE_MAX / sizeof(float) / nth) {
        rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: rows of %lld elements are too long", in, (long long)st.max_row);
        goto done;
    }
    st.scratch = colloq_malloc(sizeof(float) * nth * (size_t)(st.max_row > 0 ? st.max_row : 1));
    if (!st.scratch) { rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "quantize: out of memory"); goto done; }
    rc = gguf_writer_write(w, out, (uint32_t)gguf_alignment(f), err);

done:
    colloq_pool_free(st.pool);
    colloq_free(st.scratch);
    colloq_free(list);
    gguf_writer_free(w);
    gguf_close(f);
    if (stats) *stats = stz;
    return rc;
}
