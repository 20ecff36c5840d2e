/*
 * tokenizer.c - the vocabulary: tokenizer.* GGUF metadata (texts, scores, types,
 * special ids, add_* flags) checked and copied, the text -> id index, special-token
 * splitting, BOS/EOS/end-of-generation sets and dispatch to the algorithm files
 * (tok_spm.c, tok_bpe.c).  Algorithm-neutral: it never merges or splits plain text
 * itself, and it knows GGUF metadata only, never model weights.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

/* Longest text colloq_vocab_tokenize accepts (bytes); keeps every count in an int. */
#define TOK_MAX_TEXT ((size_t)INT32_MAX / 8)
/* Most tokens a vocabulary may have (the index needs 2x slots). */
#define TOK_MAX_VOCAB (1 << 26)

/* ------------------------------------------------------------------ index */

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u;                       /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h ^ (h >> 15);
}

static int index_build(colloq_vocab *v) {
    uint32_t cap = 16;
    while (cap < 2u * (uint32_t)v->n) cap <<= 1;
    v->index.slots = colloq_malloc((size_t)cap * sizeof *v->index.slots);
    if (!v->index.slots) return COLLOQ_ERR_NOMEM;
    v->index.cap = cap;
    for (uint32_t i = 0; i < cap; i++) v->index.slots[i] = -1;
    for (int id = 0; id < v->n; id++) {
        uint32_t len = v->text_len[id];
        if (len == 0) continue;
        for (uint32_t i = hash_bytes(v->text[id], len) & (cap - 1);; i = (i + 1) & (cap - 1)) {
            colloq_token o = v->index.slots[i];
            if (o < 0 || (v->text_len[o] == len && !memcmp(v->text[o], v->text[id], len))) {
                v->index.slots[i] = id;                 /* a later duplicate replaces */
                break;
            }
        }
    }
    return COLLOQ_OK;
}

colloq_token tok_index_find(const colloq_vocab *v, const char *s, size_t len) {
    if (!v || !v->index.slots || len == 0 || len > UINT32_MAX) return -1;
    uint32_t mask = v->index.cap - 1;
    for (uint32_t i = hash_bytes(s, len) & mask;; i = (i + 1) & mask) {
        colloq_token id = v->index.slots[i];
        if (id < 0) return -1;
        if (v->text_len[id] == len && !memcmp(v->text[id], s, len)) return id;
    }
}

/* ------------------------------------------------------------------ loading */

static const char *model_key = "tokenizer.ggml.model";
static const char *tokens_key = "tokenizer.ggml.tokens";

/* A token id key: -1 when absent (or stored as a negative signed value, the
 * converters' "none"); otherwise it must name a token. */
static int read_token_id(const gguf_file *f, const char *key, int n, colloq_token *out, colloq_err *err) {
    *out = -1;
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return COLLOQ_OK;
    int64_t id;
    switch (kv->type) {
    case GGUF_T_UINT8: case GGUF_T_UINT16: case GGUF_T_UINT32: case GGUF_T_UINT64:
        id = kv->v.u64 > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)kv->v.u64;
        break;
    case GGUF_T_INT8: case GGUF_T_INT16: case GGUF_T_INT32: case GGUF_T_INT64:
        if (kv->v.i64 < 0) return COLLOQ_OK;
        id = kv->v.i64;
        break;
    default:
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: %s has type %s, expected an integer token id",
                             gguf_path(f), key, gguf_vtype_name(kv->type));
    }
    if (id >= n)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT,
                             "%s: %s = %lld is out of range (the vocabulary has %d tokens)",
                             gguf_path(f), key, (long long)id, n);
    *out = (colloq_token)id;
    return COLLOQ_OK;
}

/* A string key copied into dst (cap bytes with the NUL); "" when absent. */
static int read_short_str(const gguf_file *f, const char *key, char *dst, size_t cap, bool required,
                          colloq_err *err) {
    gguf_str s;
    dst[0] = 0;
    int rc = gguf_get_str(f, key, &s, err);
    if (rc < 0) return rc;
    if (rc == 1) {
        if (required) return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: no %s: the file has no vocabulary",
                                           gguf_path(f), key);
        return COLLOQ_OK;
    }
    if (s.len >= cap || memchr(s.s, 0, s.len))
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: %s is not a short name (%llu bytes)",
                             gguf_path(f), key, (unsigned long long)s.len);
    memcpy(dst, s.s, s.len);
    dst[s.len] = 0;
    return COLLOQ_OK;
}

/* A numeric array that, when present, has one element per token. */
static int check_per_token_array(const gguf_file *f, const char *key, int n, const gguf_kv **out,
                                 colloq_err *err) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    *out = NULL;
    if (!kv) return COLLOQ_OK;
    if (kv->type != GGUF_T_ARRAY || kv->v.arr.type == GGUF_T_STRING || kv->v.arr.type == GGUF_T_BOOL)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: %s has type %s%s%s, expected a numeric array",
                             gguf_path(f), key, gguf_vtype_name(kv->type),
                             kv->type == GGUF_T_ARRAY ? " of " : "",
                             kv->type == GGUF_T_ARRAY ? gguf_vtype_name(kv->v.arr.type) : "");
    if (kv->v.arr.n != (uint64_t)n)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: %s has %llu entries but %s has %d",
                             gguf_path(f), key, (unsigned long long)kv->v.arr.n, tokens_key, n);
    *out = kv;
    return COLLOQ_OK;
}

static int load_tokens(colloq_vocab *v, const gguf_file *f, colloq_err *err) {
    const char *path = gguf_path(f);
    const gguf_kv *kv = gguf_find_kv(f, tokens_key);
    if (!kv) return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: no %s: the file has no vocabulary", path, tokens_key);
    if (kv->type != GGUF_T_ARRAY || kv->v.arr.type != GGUF_T_STRING)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: %s has type %s, expected an array of strings",
                             path, tokens_key, gguf_vtype_name(kv->type));
    if (kv->v.arr.n == 0 || kv->v.arr.n > TOK_MAX_VOCAB)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: %s has %llu tokens (expected 1..%d)", path,
                             tokens_key, (unsigned long long)kv->v.arr.n, TOK_MAX_VOCAB);
    int n = (int)kv->v.arr.n;
    const gguf_kv *kscores, *ktypes;
    int rc = check_per_token_array(f, "tokenizer.ggml.scores", n, &kscores, err);
    if (rc == COLLOQ_OK) rc = check_per_token_array(f, "tokenizer.ggml.token_type", n, &ktypes, err);
    if (rc) return rc;

    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        gguf_str s = gguf_arr_str(kv, (uint64_t)i);
        if (s.len > UINT32_MAX / 2)
            return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: %s[%d] is %llu bytes long", path, tokens_key,
                                 i, (unsigned long long)s.len);
        total += s.len + 1;                          /* each <= 2^31, n <= 2^26: no overflow */
    }
    v->n = n;
    v->text = colloq_malloc((size_t)n * sizeof *v->text);
    v->text_len = colloq_malloc((size_t)n * sizeof *v->text_len);
    v->scores = colloq_malloc((size_t)n * sizeof *v->scores);
    v->types = colloq_malloc((size_t)n * sizeof *v->types);
    char *blob = total <= SIZE_MAX ? colloq_malloc((size_t)total) : NULL;
    if (!v->text || !v->text_len || !v->scores || !v->types || !blob) {
        colloq_free(blob);
        if (v->text) v->text[0] = NULL;              /* text[0] owns the blob */
        return colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory for %d tokens", path, n);
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        gguf_str s = gguf_arr_str(kv, (uint64_t)i);
        v->text[i] = blob + off;
        if (s.len) memcpy(blob + off, s.s, s.len);
        blob[off + s.len] = 0;
        v->text_len[i] = (uint32_t)s.len;
        off += s.len + 1;

        double sc = kscores ? gguf_arr_num(kscores, (uint64_t)i) : 0.0;
        v->scores[i] = isnan(sc) ? -INFINITY : (float)sc;

        double ty = ktypes ? gguf_arr_num(ktypes, (uint64_t)i) : CTOK_NORMAL;
        if (!(ty >= 0 && ty <= CTOK_BYTE) || ty != (int)ty)
            return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: tokenizer.ggml.token_type[%d] = %g is not a token type (1..6)",
                                 path, i, ty);
        v->types[i] = ty == 0 ? CTOK_NORMAL : (int32_t)ty;   /* 0: "undefined", read as normal */
    }
    return COLLOQ_OK;
}

static bool is_special_type(int type) {
    return type == CTOK_CONTROL || type == CTOK_USER_DEFINED || type == CTOK_UNKNOWN;
}

typedef struct { uint32_t len; colloq_token id; } len_id;

static int cmp_special(const void *a, const void *b) {
    const len_id *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static int build_specials(colloq_vocab *v) {
    int n = 0;
    for (int i = 0; i < v->n; i++) n += is_special_type(v->types[i]) && v->text_len[i] > 0;
    v->specials = colloq_malloc((size_t)(n ? n : 1) * sizeof *v->specials);
    v->special_lens = colloq_malloc((size_t)(n ? n : 1) * sizeof *v->special_lens);
    if (!v->specials || !v->special_lens) return COLLOQ_ERR_NOMEM;
    len_id *order = colloq_malloc((size_t)(n ? n : 1) * sizeof *order);
    if (!order) return COLLOQ_ERR_NOMEM;
    n = 0;
    for (int i = 0; i < v->n; i++)
        if (is_special_type(v->types[i]) && v->text_len[i] > 0) order[n++] = (len_id){ v->text_len[i], i };
    qsort(order, (size_t)n, sizeof *order, cmp_special);
    for (int i = 0; i < n; i++) v->specials[i] = order[i].id;
    colloq_free(order);
    v->n_specials = n;
    memset(v->special_first, 0, sizeof v->special_first);
    v->n_special_lens = 0;
    for (int i = 0; i < n; i++) {
        colloq_token t = v->specials[i];
        uint8_t c = (uint8_t)v->text[t][0];
        v->special_first[c >> 3] |= (uint8_t)(1u << (c & 7));
        if (v->n_special_lens == 0 || v->special_lens[v->n_special_lens - 1] != v->text_len[t])
            v->special_lens[v->n_special_lens++] = v->text_len[t];
    }
    return COLLOQ_OK;
}

static int build_eog(colloq_vocab *v) {
    static const char *const markers[] = {
        "<|end_of_turn|>", "<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>",
    };
    enum { N_MARKERS = sizeof markers / sizeof markers[0] };
    v->eog = colloq_malloc((N_MARKERS + 2) * sizeof *v->eog);
    if (!v->eog) return COLLOQ_ERR_NOMEM;
    colloq_token cand[N_MARKERS + 2];
    int nc = 0;
    cand[nc++] = v->eos;
    cand[nc++] = v->eot;
    for (int i = 0; i < N_MARKERS; i++) {
        colloq_token t = tok_index_find(v, markers[i], strlen(markers[i]));
        if (t >= 0 && (v->types[t] == CTOK_CONTROL || v->types[t] == CTOK_USER_DEFINED)) cand[nc++] = t;
    }
    v->n_eog = 0;
    for (int i = 0; i < nc; i++) {
        bool dup = cand[i] < 0;
        for (int j = 0; j < v->n_eog && !dup; j++) dup = v->eog[j] == cand[i];
        if (!dup) v->eog[v->n_eog++] = cand[i];
    }
    return COLLOQ_OK;
}

/* The file's add_* flags override the model defaults the algorithm set. */
static int read_flags(colloq_vocab *v, const gguf_file *f, colloq_err *err) {
    static const char *const keys[3] = {
        "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", "tokenizer.ggml.add_space_prefix",
    };
    bool *dst[3] = { &v->add_bos, &v->add_eos, &v->add_space_prefix };
    for (int i = 0; i < 3; i++) {
        bool b;
        int rc = gguf_get_bool(f, keys[i], &b, err);
        if (rc < 0) return rc;
        if (rc == 0) *dst[i] = b;
    }
    return COLLOQ_OK;
}

int colloq_vocab_load(const gguf_file *f, colloq_vocab **out, colloq_err *err) {
    if (!out) return colloq_seterr(err, COLLOQ_ERR_ARG, "colloq_vocab_load: NULL out");
    *out = NULL;
    if (!f) return colloq_seterr(err, COLLOQ_ERR_ARG, "colloq_vocab_load: NULL file");
    const char *path = gguf_path(f);
    colloq_vocab *v = colloq_calloc(1, sizeof *v);
    if (!v) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory (vocabulary)", path);
    v->bos = v->eos = v->unk = v->pad = v->eot = -1;

    int rc = read_short_str(f, model_key, v->model, sizeof v->model, true, err);
    if (rc == COLLOQ_OK) rc = read_short_str(f, "tokenizer.ggml.pre", v->pre, sizeof v->pre, false, err);
    if (rc == COLLOQ_OK && strcmp(v->model, "llama") && strcmp(v->model, "gpt2"))
        rc = colloq_seterr(err, COLLOQ_ERR_UNSUPPORTED, "%s: %s = \"%s\" is not supported (only \"llama\" and \"gpt2\")",
                           path, model_key, v->model);
    if (rc == COLLOQ_OK) rc = load_tokens(v, f, err);
    static const char *const id_keys[5] = {
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
        "tokenizer.ggml.padding_token_id", "tokenizer.ggml.eot_token_id",
    };
    colloq_token *ids[5] = { &v->bos, &v->eos, &v->unk, &v->pad, &v->eot };
    for (int i = 0; i < 5 && rc == COLLOQ_OK; i++) rc = read_token_id(f, id_keys[i], v->n, ids[i], err);
    if (rc == COLLOQ_OK && index_build(v))
        rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory (token index)", path);
    if (rc == COLLOQ_OK)
        rc = !strcmp(v->model, "llama") ? tok_spm_init(v, f, err) : tok_bpe_init(v, f, err);
    if (rc == COLLOQ_OK && (!v->encode || !v->decode))
        rc = colloq_seterr(err, COLLOQ_ERR_UNSUPPORTED, "%s: tokenizer model %s has no encoder", path, v->model);
    if (rc == COLLOQ_OK) rc = read_flags(v, f, err);
    if (rc == COLLOQ_OK && (build_specials(v) || build_eog(v)))
        rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory (special tokens)", path);
    if (rc != COLLOQ_OK) {
        colloq_vocab_free(v);
        return rc;
    }
    colloq_log(2, "%s: vocabulary %s (pre '%s'), %d tokens, %d special, bos %d eos %d unk %d, add_bos %d",
               path, v->model, v->pre, v->n, v->n_specials, v->bos, v->eos, v->unk, v->add_bos);
    *out = v;
    return COLLOQ_OK;
}

void colloq_vocab_free(colloq_vocab *v) {
    if (!v) return;
    if (v->impl_free && v->impl) v->impl_free(v->impl);
    if (v->text) colloq_free(v->text[0]);            /* the blob holding every text */
    colloq_free(v->text);
    colloq_free(v->text_len);
    colloq_free(v->scores);
    colloq_free(v->types);
    colloq_free(v->index.slots);
    colloq_free(v->eog);
    colloq_free(v->specials);
    colloq_free(v->special_lens);
    colloq_free(v);
}

/* ------------------------------------------------------------------ accessors */

int colloq_vocab_n(const colloq_vocab *v) { return v ? v->n : 0; }
const char *colloq_vocab_model_name(const colloq_vocab *v) { return v ? v->model : ""; }
colloq_token colloq_vocab_bos(const colloq_vocab *v) { return v ? v->bos : -1; }
colloq_token colloq_vocab_eos(const colloq_vocab *v) { return v ? v->eos : -1; }
bool colloq_vocab_add_bos(const colloq_vocab *v) { return v && v->add_bos && v->bos >= 0; }
bool colloq_vocab_add_eos(const colloq_vocab *v) { return v && v->add_eos && v->eos >= 0; }

bool colloq_vocab_is_eog(const colloq_vocab *v, colloq_token t) {
    if (!v || t < 0) return false;
    for (int i = 0; i < v->n_eog; i++)
        if (v->eog[i] == t) return true;
    return false;
}

int colloq_vocab_token_type(const colloq_vocab *v, colloq_token t) {
    return v && t >= 0 && t < v->n ? v->types[t] : 0;
}

const char *colloq_vocab_text(const colloq_vocab *v, colloq_token t) {
    return v && t >= 0 && t < v->n ? v->text[t] : "";
}

colloq_token colloq_vocab_find(const colloq_vocab *v, const char *text) {
    return text ? tok_index_find(v, text, strlen(text)) : -1;
}

/* ------------------------------------------------------------------ tokenize */

typedef struct { size_t pos; uint32_t len; colloq_token id; } special_hit;

static int cmp_hit_priority(const void *a, const void *b) {
    const special_hit *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static int cmp_hit_pos(const void *a, const void *b) {
    const special_hit *x = a, *y = b;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Find the special tokens to split out of text.  Longer texts win: tokens are taken
 * longest first (then lowest id), each at every occurrence, left to right, that does
 * not overlap one already taken.  On success *hits (sorted by position, caller frees)
 * holds *n_hits entries. */
static int find_specials(const colloq_vocab *v, const char *text, size_t len, bool parse_special,
                         special_hit **hits, size_t *n_hits) {
    *hits = NULL;
    *n_hits = 0;
    size_t n = 0, cap = 0;
    special_hit *h = NULL;
    for (size_t p = 0; p < len; p++) {
        uint8_t c = (uint8_t)text[p];
        if (!(v->special_first[c >> 3] & (1u << (c & 7)))) continue;
        for (int k = 0; k < v->n_special_lens; k++) {
            uint32_t l = v->special_lens[k];
            if (l > len - p) continue;
            colloq_token t = tok_index_find(v, text + p, l);
            if (t < 0 || !is_special_type(v->types[t])) continue;
            if (!parse_special && v->types[t] != CTOK_USER_DEFINED) continue;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                special_hit *nh = colloq_realloc(h, nc * sizeof *nh);
                if (!nh) { colloq_free(h); return COLLOQ_ERR_NOMEM; }
                h = nh;
                cap = nc;
            }
            h[n++] = (special_hit){ p, l, t };
        }
    }
    if (n == 0) return COLLOQ_OK;
    uint8_t *taken = colloq_calloc(len, 1);
    if (!taken) { colloq_free(h); return COLLOQ_ERR_NOMEM; }
    qsort(h, n, sizeof *h, cmp_hit_priority);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        bool free_span = true;
        for (uint32_t j = 0; j < h[i].len && free_span; j++) free_span = !taken[h[i].pos + j];
        if (!free_span) continue;
        memset(taken + h[i].pos, 1, h[i].len);
        h[kept++] = h[i];
    }
    colloq_free(taken);
    qsort(h, kept, sizeof *h, cmp_hit_pos);
    *hits = h;
    *n_hits = kept;
    return COLLOQ_OK;
}

typedef struct { colloq_token *out; size_t cap, n; } tok_sink;

static void sink_put(tok_sink *s, colloq_token t) {
    if (s->n < s->cap) s->out[s->n] = t;
    s->n++;
}

/* Encode one plain segment (with the space prefix when the vocabulary wants it). */
static int encode_plain(const colloq_vocab *v, const char *s, size_t len, tok_sink *sink, colloq_err *err) {
    char *tmp = NULL;
    if (v->add_space_prefix) {
        tmp = colloq_malloc(len + 1);
        if (!tmp) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "tokenize: out of memory");
        tmp[0] = ' ';
        memcpy(tmp + 1, s, len);
        s = tmp;
        len++;
    }
    size_t room = sink->n < sink->cap ? sink->cap - sink->n : 0;
    int rc = v->encode(v, s, len, room ? sink->out + sink->n : NULL, (int)room, err);
    colloq_free(tmp);
    if (rc < 0) return rc;
    sink->n += (size_t)rc;
    return COLLOQ_OK;
}

int colloq_vocab_tokenize(const colloq_vocab *v, const char *text, size_t len, bool add_bos,
                          bool parse_special, colloq_token *out, int cap, colloq_err *err) {
    if (!v) return colloq_seterr(err, COLLOQ_ERR_ARG, "tokenize: no vocabulary");
    if (!text && len) return colloq_seterr(err, COLLOQ_ERR_ARG, "tokenize: NULL text");
    if (cap < 0 || (!out && cap > 0)) return colloq_seterr(err, COLLOQ_ERR_ARG, "tokenize: bad output buffer (cap %d)", cap);
    if (len > TOK_MAX_TEXT)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "tokenize: text of %zu bytes is longer than %zu", len, TOK_MAX_TEXT);
    tok_sink sink = { out, (size_t)cap, 0 };
    if (add_bos && v->add_bos && v->bos >= 0) sink_put(&sink, v->bos);

    special_hit *hits = NULL;
    size_t n_hits = 0;
    if (v->n_specials && find_specials(v, text, len, parse_special, &hits, &n_hits))
        return colloq_seterr(err, COLLOQ_ERR_NOMEM, "tokenize: out of memory");
    size_t at = 0;
    int rc = COLLOQ_OK;
    for (size_t i = 0; i <= n_hits && rc == COLLOQ_OK; i++) {
        size_t end = i < n_hits ? hits[i].pos : len;
        if (end > at) rc = encode_plain(v, text + at, end - at, &sink, err);
        if (i < n_hits) {
            sink_put(&sink, hits[i].id);
            at = hits[i].pos + hits[i].len;
        }
        if (sink.n > INT_MAX) rc = colloq_seterr(err, COLLOQ_ERR_ARG, "tokenize: more than INT_MAX tokens");
    }
    colloq_free(hits);
    if (rc != COLLOQ_OK) return rc;
    if (add_bos && v->add_eos && v->eos >= 0) sink_put(&sink, v->eos);
    return sink.n > INT_MAX ? colloq_seterr(err, COLLOQ_ERR_ARG, "tokenize: more than INT_MAX tokens")
                            : (int)sink.n;
}

/* ------------------------------------------------------------------ decode */

static int copy_out(const char *s, size_t n, char *buf, int cap) {
    if (buf && cap > 0) memcpy(buf, s, n < (size_t)cap ? n : (size_t)cap);
    return n > INT_MAX ? INT_MAX : (int)n;
}

int colloq_vocab_piece(const colloq_vocab *v, colloq_token t, bool render_special, char *buf, int cap) {
    if (!v || t < 0 || t >= v->n || cap < 0 || (!buf && cap > 0)) return COLLOQ_ERR_ARG;
    int type = v->types[t];
    if (type == CTOK_CONTROL || (type == CTOK_UNKNOWN && render_special))
        return render_special ? copy_out(v->text[t], v->text_len[t], buf, cap) : 0;
    return v->decode(v, t, buf, cap);
}

int colloq_vocab_detokenize(const colloq_vocab *v, const colloq_token *ids, int n, bool remove_space_prefix,
                            bool render_special, char *buf, int cap) {
    if (!v || n < 0 || (!ids && n > 0) || cap < 0 || (!buf && cap > 0)) return COLLOQ_ERR_ARG;
    size_t total = 0;
    bool strip = remove_space_prefix && v->add_space_prefix;   /* at a segment start */
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= v->n) return COLLOQ_ERR_ARG;
        size_t room = total < (size_t)cap ? (size_t)cap - total : 0;
        char *dst = room ? buf + total : NULL;
        int k = colloq_vocab_piece(v, ids[i], render_special, dst, (int)(room > INT_MAX ? INT_MAX : room));
        if (k < 0) return k;
        int type = v->types[ids[i]];
        if (type == CTOK_CONTROL || type == CTOK_USER_DEFINED) {
            strip = remove_space_prefix && v->add_space_prefix;   /* a new plain segment follows */
        } else if (strip && k > 0) {
            char first = 0;
            if (dst) first = dst[0];
            else colloq_vocab_piece(v, ids[i], render_special, &first, 1);
            strip = false;
            if (first == ' ') {
                if (dst) memmove(dst, dst + 1, ((size_t)k < room ? (size_t)k : room) - 1);
                k--;
            }
        }
        total += (size_t)k;
        if (total > INT_MAX) return COLLOQ_ERR_ARG;
    }
    return (int)total;
}
