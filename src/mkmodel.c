/*
 * mkmodel.c - random-weight GGUF models of real shapes of the supported architectures.
 * Owns the shape table, the built-in SentencePiece-style vocabulary (with each family's
 * special tokens), each architecture's keys and tensor list as the common converter
 * writes them, and the deterministic weight generator (row r of tensor T depends only on
 * the seed, T's name and r, so the file is the same for any thread count).
 * Must not be used at inference time; knows no math beyond initialisation scales.
 */
#include "mkmodel.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gguf.h"
#include "quant.h"
#include "threadpool.h"
#include "util.h"

/* ---- shapes ---- */

/* ffn is the SwiGLU / MLP width the model computes with (qwen files state twice it). */
static const struct {
    const char *name, *arch;
    int dim, n_layers, n_heads, n_kv_heads, ffn, ctx, sliding_window, n_vocab;
    bool tied;
} shapes[] = {
    { "mistral-7b",    "llama",    4096, 32,  32,  8, 14336, 32768, 4096,      0, false },
    { "llama2-7b",     "llama",    4096, 32,  32, 32, 11008,  4096,    0,      0, false },
    { "tinyllama-1b",  "llama",    2048, 22,  32,  4,  5632,  2048,    0,      0, false },
    { "tiny",          "llama",      64,  2,   4,  2,   192,   512,    0,      0, false },
    { "qwen2-7b",      "qwen2",    3584, 28,  28,  4, 18944, 32768,    0, 152064, false },
    { "qwen-7b",       "qwen",     4096, 32,  32, 32, 11008,  8192,    0, 151936, false },
    { "falcon-7b",     "falcon",   4544, 32,  71,  1, 18176,  2048,    0,  65024, false },
    { "falcon-40b",    "falcon",   8192, 60, 128,  8, 32768,  2048,    0,  65024, false },
    { "baichuan2-7b",  "baichuan", 4096, 32,  32, 32, 11008,  4096,    0, 125696, false },
    { "baichuan2-13b", "baichuan", 5120, 40,  40, 40, 13696,  4096,    0, 125696, false },
    { "chatglm3-6b",   "chatglm",  4096, 28,  32,  2, 13696,  8192,    0,  65024, false },
};

#define SHAPE_NAMES "mistral-7b, llama2-7b, tinyllama-1b, tiny, qwen2-7b, qwen-7b, falcon-7b, falcon-40b, " \
                    "baichuan2-7b, baichuan2-13b or chatglm3-6b"

enum mk_arch { ARCH_LLAMA, ARCH_QWEN2, ARCH_QWEN, ARCH_FALCON, ARCH_BAICHUAN, ARCH_CHATGLM, N_ARCH };
static const char *const arch_names[N_ARCH] = { "llama", "qwen2", "qwen", "falcon", "baichuan", "chatglm" };

static int arch_id(const char *name) {
    for (int a = 0; a < N_ARCH; a++)
        if (!strcmp(name, arch_names[a])) return a;
    return -1;
}

int colloq_mkmodel_set_arch(colloq_mkmodel_params *p, const char *arch, colloq_err *err) {
    int a = arch_id(arch);
    if (a < 0)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "unknown architecture '%s' (expected llama, qwen2, qwen, "
                             "falcon, baichuan or chatglm)", arch);
    snprintf(p->arch, sizeof p->arch, "%s", arch_names[a]);
    p->rope_base = a == ARCH_QWEN2 ? 1000000.0f : 10000.0f;
    p->rms_eps = a == ARCH_QWEN || a == ARCH_BAICHUAN ? 1e-6f : 1e-5f;
    if (a == ARCH_QWEN || a == ARCH_BAICHUAN) p->n_kv_heads = p->n_heads;   /* no grouped-query attention */
    return COLLOQ_OK;
}

int colloq_mkmodel_shape(const char *name, colloq_mkmodel_params *p, colloq_err *err) {
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        if (strcmp(name, shapes[i].name) != 0) continue;
        memset(p, 0, sizeof *p);
        snprintf(p->shape, sizeof p->shape, "%s", shapes[i].name);
        colloq_mkmodel_set_arch(p, shapes[i].arch, NULL);
        p->dim = shapes[i].dim;
        p->n_layers = shapes[i].n_layers;
        p->n_heads = shapes[i].n_heads;
        p->n_kv_heads = shapes[i].n_kv_heads;
        p->ffn = shapes[i].ffn;
        p->ctx = shapes[i].ctx;
        p->sliding_window = shapes[i].sliding_window;
        p->n_vocab = shapes[i].n_vocab;
        p->tied = shapes[i].tied;
        p->rope_scale = 1.0f;
        p->type = CT_F16;
        p->seed = 1;
        return COLLOQ_OK;
    }
    return colloq_seterr(err, COLLOQ_ERR_ARG, "unknown shape '%s' (expected " SHAPE_NAMES ")", name);
}

/* The architecture of p (llama when unset). */
static int params_arch(const colloq_mkmodel_params *p) {
    return p->arch[0] ? arch_id(p->arch) : ARCH_LLAMA;
}

static bool type_allowed(uint32_t t) {
    return t == CT_F32 || t == CT_F16 || t == CT_BF16 || t == CT_Q8_0 || t == CT_Q4_0;
}

/* What only some architectures allow. */
static int check_arch(const colloq_mkmodel_params *p, colloq_err *err) {
    int a = params_arch(p);
    if (a < 0)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "unknown architecture '%.16s'", p->arch);
    if (p->sliding_window > 0 && a != ARCH_LLAMA)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "a sliding window is only written for llama, not %s", p->arch);
    if (p->rope_scale != 1.0f && (a == ARCH_QWEN || a == ARCH_FALCON || a == ARCH_CHATGLM))
        return colloq_seterr(err, COLLOQ_ERR_ARG, "the converter writes no RoPE scaling for %s", p->arch);
    if (a == ARCH_QWEN && p->n_kv_heads != p->n_heads)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "qwen has no grouped-query attention: kv-heads %d must equal "
                             "heads %d", p->n_kv_heads, p->n_heads);
    if (a == ARCH_CHATGLM && (p->dim / p->n_heads) % 4)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "chatglm rotates half of each head in pairs: head dimension %d "
                             "must be a multiple of 4", p->dim / p->n_heads);
    if (p->n_vocab < 0 || p->n_vocab > (1 << 22))
        return colloq_seterr(err, COLLOQ_ERR_ARG, "vocabulary size %d is out of range", p->n_vocab);
    if (p->n_vocab > 0 && p->vocab_path)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "a vocabulary size is only for the built-in vocabulary");
    return COLLOQ_OK;
}

int colloq_mkmodel_check(const colloq_mkmodel_params *p, colloq_err *err) {
    if (p->dim <= 0 || p->n_layers <= 0 || p->n_heads <= 0 || p->n_kv_heads <= 0 || p->ffn <= 0 || p->ctx <= 0)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "dim, layers, heads, kv-heads, ffn and ctx must be positive");
    if (p->dim > (1 << 20) || p->ffn > (1 << 22) || p->n_layers > 1024 || p->ctx > (1 << 24))
        return colloq_seterr(err, COLLOQ_ERR_ARG, "dimensions too large");
    if (p->dim % p->n_heads)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "dim %d is not a multiple of heads %d", p->dim, p->n_heads);
    if ((p->dim / p->n_heads) % 2)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "head dimension %d must be even for RoPE", p->dim / p->n_heads);
    int rc = check_arch(p, err);
    if (rc != COLLOQ_OK) return rc;
    if (p->n_kv_heads > p->n_heads || p->n_heads % p->n_kv_heads)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "heads %d is not a multiple of kv-heads %d", p->n_heads, p->n_kv_heads);
    if (p->sliding_window < 0)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "sliding window must be >= 0");
    if (!(p->rope_base > 0) || !(p->rope_scale > 0) || !(p->rms_eps > 0))
        return colloq_seterr(err, COLLOQ_ERR_ARG, "rope base, rope scale and rms eps must be positive");
    const colloq_type_traits *tr = colloq_type_get(p->type);
    if (!type_allowed(p->type) || !tr)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "weight type %u is not one of f32, f16, bf16, q8_0, q4_0", p->type);
    if (tr->blck > 1) {
        if (!tr->from_float)
            return colloq_seterr(err, COLLOQ_ERR_UNSUPPORTED, "type %s has no quantiser in this build", tr->name);
        if (p->dim % tr->blck || p->ffn % tr->blck)
            return colloq_seterr(err, COLLOQ_ERR_ARG, "dim %d and ffn %d must be multiples of %d for %s",
                                 p->dim, p->ffn, tr->blck, tr->name);
    }
    return COLLOQ_OK;
}

/* ---- built-in vocabulary ---- */

/* Words whose "▁"-prefixed prefixes become pieces; enough for a readable demo prompt. */
static const char *const builtin_words[] = {
    "the", "of", "and", "to", "in", "is", "was", "that", "for", "it", "with", "as", "on", "be",
    "at", "by", "this", "had", "not", "are", "but", "from", "or", "have", "an", "they", "which",
    "one", "you", "were", "her", "all", "she", "there", "would", "their", "we", "him", "been",
    "has", "when", "who", "will", "more", "no", "if", "out", "so", "said", "what", "up", "its",
    "about", "into", "than", "them", "can", "only", "other", "new", "some", "could", "time",
    "these", "two", "may", "then", "do", "first", "any", "my", "now", "such", "like", "our",
    "over", "man", "me", "even", "most", "made", "after", "also", "did", "many", "before",
    "must", "through", "back", "years", "where", "much", "your", "way", "well", "down",
    "should", "because", "each", "just", "those", "people", "how", "too", "little", "state",
    "good", "very", "make", "world", "still", "own", "see", "men", "work", "long", "get",
    "here", "between", "both", "life", "being", "under", "never", "day", "same", "another",
    "know", "while", "last", "might", "us", "great", "old", "year", "off", "come", "since",
    "against", "go", "came", "right", "used", "take", "three", "hello", "name", "quick",
    "brown", "fox", "jumps", "lazy", "dog", "capital", "city", "france", "paris", "once",
    "upon", "story", "model", "random", "weights", "text", "noise", "small", "house", "water",
    "river", "mountain", "sun", "moon", "light", "night", "morning", "king", "queen", "cat",
    "bird", "tree", "book", "school", "friend", "family", "money", "music", "color", "red",
    "blue", "green", "happy", "sad", "walk", "run", "read", "write", "speak", "think",
};

#define SPACE_MARK "\xe2\x96\x81"   /* U+2581, SentencePiece's word-boundary mark */

typedef struct {
    char   **text;     /* n strings (into arena) */
    float   *scores;
    int32_t *types;
    int      n, cap;
    char    *arena;
    size_t   arena_used, arena_cap;
} builtin_vocab;

static bool bv_has(const builtin_vocab *v, const char *s) {
    for (int i = 0; i < v->n; i++)
        if (!strcmp(v->text[i], s)) return true;
    return false;
}

/* Appends s (no duplicate check); the caller sized the arrays and arena for the worst case. */
static void bv_push(builtin_vocab *v, const char *s, float score, int32_t type) {
    size_t len = strlen(s) + 1;
    if (v->n >= v->cap || v->arena_used + len > v->arena_cap) return;   /* cannot happen: sized below */
    char *d = v->arena + v->arena_used;
    memcpy(d, s, len);
    v->arena_used += len;
    v->text[v->n] = d;
    v->scores[v->n] = score;
    v->types[v->n] = type;
    v->n++;
}

/* Adds s unless present. */
static void bv_add(builtin_vocab *v, const char *s, float score, int32_t type) {
    if (!bv_has(v, s)) bv_push(v, s, score, type);
}

static int bv_find(const builtin_vocab *v, const char *s) {
    for (int i = 0; i < v->n; i++)
        if (!strcmp(v->text[i], s)) return i;
    return -1;
}

/* Each family's special tokens (CONTROL 3 / USER_DEFINED 4) as its tokenizer has them,
 * and which of them are BOS / EOS. */
typedef struct {
    const char *tokens[10];
    int32_t     type;
    const char *bos, *eos;
    bool        add_bos;
} family_specials;

static const family_specials arch_specials[N_ARCH] = {
    [ARCH_LLAMA]    = { { NULL }, 3, "<s>", "</s>", true },
    [ARCH_QWEN2]    = { { "<|endoftext|>", "<|im_start|>", "<|im_end|>" }, 3, "<|endoftext|>", "<|im_end|>", false },
    [ARCH_QWEN]     = { { "<|endoftext|>", "<|im_start|>", "<|im_end|>" }, 3, "<|endoftext|>", "<|im_end|>", false },
    [ARCH_FALCON]   = { { "<|endoftext|>" }, 3, "<|endoftext|>", "<|endoftext|>", false },
    [ARCH_BAICHUAN] = { { "<reserved_106>", "<reserved_107>" }, 4, "<s>", "</s>", true },
    [ARCH_CHATGLM]  = { { "[MASK]", "[gMASK]", "[sMASK]", "sop", "eop", "<|system|>", "<|user|>", "<|assistant|>",
                          "<|observation|>" }, 3, "<s>", "</s>", false },
};

static void bv_free(builtin_vocab *v) {
    colloq_free(v->text);
    colloq_free(v->scores);
    colloq_free(v->types);
    colloq_free(v->arena);
    memset(v, 0, sizeof *v);
}

/* The built-in vocabulary of architecture a, padded with "[PAD<id>]" UNUSED tokens to
 * n_pad rows when n_pad is larger. */
static int bv_build(builtin_vocab *v, int a, int n_pad, colloq_err *err) {
    size_t n_words = sizeof builtin_words / sizeof builtin_words[0], chars = 0;
    for (size_t i = 0; i < n_words; i++) chars += strlen(builtin_words[i]);
    memset(v, 0, sizeof *v);
    v->cap = (int)(3 + 256 + 1 + 95 + chars + 10);
    v->arena_cap = (size_t)v->cap * 8 + chars * 24 + 10 * 32;
    if (n_pad > v->cap) {
        v->arena_cap += (size_t)(n_pad - v->cap) * 16;
        v->cap = n_pad;
    }
    v->text = colloq_calloc((size_t)v->cap, sizeof *v->text);
    v->scores = colloq_calloc((size_t)v->cap, sizeof *v->scores);
    v->types = colloq_calloc((size_t)v->cap, sizeof *v->types);
    v->arena = colloq_malloc(v->arena_cap);
    if (!v->text || !v->scores || !v->types || !v->arena) {
        bv_free(v);
        return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory building the built-in vocabulary");
    }
    bv_add(v, "<unk>", 0.0f, 2);   /* UNKNOWN */
    bv_add(v, "<s>", 0.0f, 3);     /* CONTROL */
    bv_add(v, "</s>", 0.0f, 3);
    char buf[64];
    for (int b = 0; b < 256; b++) {
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        bv_add(v, buf, 0.0f, 6);   /* BYTE */
    }
    /* Word pieces: every "▁" + prefix of every word, earlier words and shorter
     * prefixes scoring higher, so merging grows a word one character at a time. */
    float score = -1.0f;
    bv_add(v, SPACE_MARK, score, 1);
    for (size_t i = 0; i < n_words; i++) {
        size_t len = strlen(builtin_words[i]);
        for (size_t k = 1; k <= len; k++) {
            snprintf(buf, sizeof buf, SPACE_MARK "%.*s", (int)k, builtin_words[i]);
            score -= 1.0f;
            bv_add(v, buf, score, 1);
        }
    }
    /* Single printable ASCII characters, lowest scores (initial symbols, never merge results). */
    for (int c = 0x21; c < 0x7f; c++) {
        buf[0] = (char)c; buf[1] = 0;
        score -= 1.0f;
        bv_add(v, buf, score, 1);
    }
    const family_specials *fs = &arch_specials[a];
    for (int i = 0; i < 10 && fs->tokens[i]; i++) bv_add(v, fs->tokens[i], 0.0f, fs->type);
    while (v->n < n_pad) {
        snprintf(buf, sizeof buf, "[PAD%d]", v->n);
        bv_push(v, buf, 0.0f, 5);   /* UNUSED */
    }
    return COLLOQ_OK;
}

int colloq_mkmodel_builtin_vocab_size(void) {
    builtin_vocab v;
    if (bv_build(&v, ARCH_LLAMA, 0, NULL) != COLLOQ_OK) return -1;
    int n = v.n;
    bv_free(&v);
    return n;
}

/* ---- deterministic weights ---- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t name_hash(const char *s) {   /* FNV-1a */
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

enum init_kind { INIT_MATRIX, INIT_NORM, INIT_BIAS };

typedef struct mk_state mk_state;

typedef struct {
    mk_state *st;
    char      name[64];
    uint32_t  type;
    int64_t   ne[2];
    enum init_kind kind;
    uint64_t  seed;
    uint64_t  row_bytes;
} mk_tensor;

struct mk_state {
    colloq_pool *pool;
    float       *scratch;     /* n_threads rows of max_row floats */
    int64_t      max_row;
    int          n_threads;
    /* the job being filled */
    const mk_tensor *job;
    void        *buf;
    int          failed;
};

/* Row r of a tensor: uniform values.  Matrices: variance 1/ne0 (fan-in), so
 * activations keep their scale; norm gains: 1 +- 0.2; biases: 0 +- 0.3. */
static void gen_row(const mk_tensor *t, int64_t r, float *out) {
    uint64_t s = t->seed ^ ((uint64_t)r * 0xd1b54a32d192ed03ull);
    splitmix64(&s);
    float center = 0.0f, half;
    if (t->kind == INIT_NORM) { center = 1.0f; half = 0.2f; }
    else if (t->kind == INIT_BIAS) half = 0.3f;
    else half = sqrtf(3.0f / (float)t->ne[0]);
    const float inv24 = 1.0f / 16777216.0f;
    int64_t n = t->ne[0], i = 0;
    while (i < n) {
        uint64_t x = splitmix64(&s);
        float u0 = (float)(x >> 40) * inv24, u1 = (float)((x >> 8) & 0xffffff) * inv24;
        out[i++] = center + half * (2.0f * u0 - 1.0f);
        if (i < n) out[i++] = center + half * (2.0f * u1 - 1.0f);
    }
}

/* Q4_0 by plain round-to-nearest with the scale set by the largest magnitude (GGUF
 * layout: f16 scale, then element j in the low nibble of byte j and element j + 16 in
 * its high nibble, value (q - 8) * d).  The library's reference quantiser searches for
 * the least-squares scale, which random weights do not need and which is ~60x slower:
 * too slow for a 7B file. */
static void q4_0_round(const float *x, uint8_t *y, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++, x += 32, y += 18) {
        float amax = 0.0f, xm = 0.0f;
        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); xm = x[j]; }
        float d = xm / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = colloq_f32_to_f16(d);
        y[0] = (uint8_t)dh;
        y[1] = (uint8_t)(dh >> 8);
        for (int j = 0; j < 16; j++) {
            float a = x[j] * id + 8.5f, c = x[j + 16] * id + 8.5f;
            int qa = a < 0.0f ? 0 : a > 15.0f ? 15 : (int)a, qc = c < 0.0f ? 0 : c > 15.0f ? 15 : (int)c;
            y[2 + j] = (uint8_t)(qa | qc << 4);
        }
    }
}

static void store_row(uint32_t type, const float *x, void *dst, int64_t n) {
    if (type == CT_F32) {
        memcpy(dst, x, (size_t)n * sizeof(float));
    } else if (type == CT_F16) {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = colloq_f32_to_f16(x[i]);
    } else if (type == CT_BF16) {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = colloq_f32_to_bf16(x[i]);
    } else if (type == CT_Q4_0) {
        q4_0_round(x, dst, n);
    } else {
        colloq_type_get(type)->from_float(x, dst, n);   /* Q8_0; checked in colloq_mkmodel_check */
    }
}

static void fill_worker(void *ctx, int ith, int nth) {
    mk_state *st = ctx;
    const mk_tensor *t = st->job;
    int64_t rows = t->ne[1];
    int64_t per = (rows + nth - 1) / nth, r0 = per * ith, r1 = r0 + per < rows ? r0 + per : rows;
    float *row = st->scratch + (size_t)ith * (size_t)st->max_row;
    for (int64_t r = r0; r < r1; r++) {
        gen_row(t, r, row);
        store_row(t->type, row, (char *)st->buf + (uint64_t)r * t->row_bytes, t->ne[0]);
    }
}

static int fill_tensor(void *ctx, void *buf, uint64_t nbytes) {
    mk_tensor *t = ctx;
    mk_state *st = t->st;
    if (nbytes != t->row_bytes * (uint64_t)t->ne[1] || t->ne[0] > st->max_row) return -1;
    st->job = t;
    st->buf = buf;
    colloq_pool_run(st->pool, fill_worker, st);
    colloq_log(2, "mkmodel: generated %s", t->name);
    return 0;
}

/* ---- file assembly ---- */

static uint32_t file_type_of(uint32_t t) {   /* general.file_type as llama.cpp numbers it */
    switch (t) {
    case CT_F32: return 0;
    case CT_F16: return 1;
    case CT_Q4_0: return 2;
    case CT_Q8_0: return 7;
    case CT_BF16: return 32;
    default: return 0;
    }
}

static int add_tensor(gguf_writer *w, mk_tensor *list, int *n, mk_state *st, const colloq_mkmodel_params *p,
                      const char *name, int64_t ne0, int64_t ne1, colloq_err *err) {
    mk_tensor *t = &list[(*n)++];
    memset(t, 0, sizeof *t);
    t->st = st;
    snprintf(t->name, sizeof t->name, "%s", name);
    size_t len = strlen(name);
    t->kind = ne1 > 1 ? INIT_MATRIX : len > 5 && !strcmp(name + len - 5, ".bias") ? INIT_BIAS : INIT_NORM;
    t->type = ne1 == 1 ? CT_F32 : p->type;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    uint64_t seed = p->seed ^ name_hash(name);
    t->seed = splitmix64(&seed);
    uint64_t nbytes;
    if (!colloq_type_row_size(t->type, ne0, &t->row_bytes) || !colloq_mul_u64(t->row_bytes, (uint64_t)ne1, &nbytes))
        return colloq_seterr(err, COLLOQ_ERR_ARG, "tensor %s: bad size %lld x %lld", name, (long long)ne0, (long long)ne1);
    gguf_writer_add_tensor_cb(w, t->name, t->type, ne1 == 1 ? 1 : 2, t->ne, nbytes, fill_tensor, t);
    return COLLOQ_OK;
}

static int set_vocab(gguf_writer *w, const colloq_mkmodel_params *p, gguf_file **vf, builtin_vocab *bv,
                     int *n_vocab, colloq_err *err) {
    if (p->vocab_path) {
        int rc = gguf_open(p->vocab_path, vf, err);
        if (rc != COLLOQ_OK) return rc;
        const gguf_kv *toks = gguf_find_kv(*vf, "tokenizer.ggml.tokens");
        if (!toks || toks->type != GGUF_T_ARRAY || toks->v.arr.type != GGUF_T_STRING || toks->v.arr.n == 0 ||
            toks->v.arr.n > (1u << 24))
            return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: no usable tokenizer.ggml.tokens array", p->vocab_path);
        *n_vocab = (int)toks->v.arr.n;
        for (uint64_t i = 0; i < gguf_n_kv(*vf); i++) {
            const gguf_kv *kv = gguf_kv_at(*vf, i);
            if (kv->key.len >= 10 && !memcmp(kv->key.s, "tokenizer.", 10)) gguf_writer_copy_kv(w, kv);
        }
        return COLLOQ_OK;
    }
    int a = params_arch(p);
    int rc = bv_build(bv, a, p->n_vocab, err);
    if (rc != COLLOQ_OK) return rc;
    if (p->n_vocab > 0 && bv->n != p->n_vocab)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "vocabulary size %d is smaller than the built-in %s vocabulary "
                             "(%d tokens)", p->n_vocab, arch_names[a], bv->n);
    *n_vocab = bv->n;
    const family_specials *fs = &arch_specials[a];
    int bos = bv_find(bv, fs->bos), eos = bv_find(bv, fs->eos);
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_str(w, "tokenizer.ggml.pre", a == ARCH_CHATGLM ? "chatglm-spm" : "default");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)bv->text, (uint64_t)bv->n);
    gguf_writer_set_arr_num(w, "tokenizer.ggml.scores", GGUF_T_FLOAT32, bv->scores, (uint64_t)bv->n);
    gguf_writer_set_arr_num(w, "tokenizer.ggml.token_type", GGUF_T_INT32, bv->types, (uint64_t)bv->n);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)(bos >= 0 ? bos : 1));
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)(eos >= 0 ? eos : 2));
    gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", fs->add_bos);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    return COLLOQ_OK;
}

/* "<arch>.<key>" */
static const char *akey(char *buf, size_t cap, int a, const char *key) {
    snprintf(buf, cap, "%s.%s", arch_names[a], key);
    return buf;
}

/* The keys the common converter writes for each architecture (and nothing it does not). */
static void set_hparams(gguf_writer *w, const colloq_mkmodel_params *p, int n_vocab) {
    int a = params_arch(p), hd = p->dim / p->n_heads;
    char name[128], k[96];
#define KEY(s) akey(k, sizeof k, a, s)
    if (a == ARCH_LLAMA)
        snprintf(name, sizeof name, "colloq random-weight %s (not a trained model)", p->shape[0] ? p->shape : "custom");
    else
        snprintf(name, sizeof name, "colloq random-weight %s %s (not a trained model)", arch_names[a],
                 p->shape[0] ? p->shape : "custom");
    gguf_writer_set_str(w, "general.architecture", arch_names[a]);
    gguf_writer_set_str(w, "general.name", name);
    gguf_writer_set_u32(w, "general.file_type", file_type_of(p->type));
    if (colloq_type_get(p->type)->blck > 1) gguf_writer_set_u32(w, "general.quantization_version", 2);
    if (a == ARCH_LLAMA) gguf_writer_set_u32(w, KEY("vocab_size"), (uint32_t)n_vocab);
    if (a == ARCH_FALCON) gguf_writer_set_str(w, KEY("tensor_data_layout"), "jploski");
    if (a == ARCH_BAICHUAN) gguf_writer_set_str(w, KEY("tensor_data_layout"), "Meta AI original pth");
    gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)p->ctx);
    gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)p->dim);
    gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)p->n_layers);
    /* qwen states the original intermediate_size: both halves of its SwiGLU projection */
    gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)(a == ARCH_QWEN ? 2 * p->ffn : p->ffn));
    gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)p->n_heads);
    if (a != ARCH_QWEN) gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)p->n_kv_heads);
    if (a == ARCH_FALCON)
        gguf_writer_set_f32(w, KEY("attention.layer_norm_epsilon"), p->rms_eps);
    else
        gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), p->rms_eps);
    /* the falcon converter writes no base (the original's is 10000) */
    if (a != ARCH_FALCON || p->rope_base != 10000.0f) gguf_writer_set_f32(w, KEY("rope.freq_base"), p->rope_base);
    if (a == ARCH_LLAMA || a == ARCH_QWEN || a == ARCH_BAICHUAN)
        gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)hd);
    if (a == ARCH_CHATGLM) gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)(hd / 2));
    if (p->rope_scale != 1.0f) {
        gguf_writer_set_str(w, KEY("rope.scaling.type"), "linear");
        gguf_writer_set_f32(w, KEY("rope.scaling.factor"), p->rope_scale);
    }
    if (p->sliding_window > 0) gguf_writer_set_u32(w, KEY("attention.sliding_window"), (uint32_t)p->sliding_window);
#undef KEY
}

/* One layer's tensors: name suffix and shape [ne0, ne1] (ne1 = 1: a vector). */
typedef struct {
    const char *name;
    int64_t ne0, ne1;
} mk_shape;

static int layer_tensors(const colloq_mkmodel_params *p, mk_shape *out) {
    int a = params_arch(p);
    int64_t dim = p->dim, hd = p->dim / p->n_heads, kv = hd * p->n_kv_heads, ffn = p->ffn, qkv = dim + 2 * kv;
    int n = 0;
#define T(nm, e0, e1) (out[n++] = (mk_shape){ nm, e0, e1 })
    switch (a) {
    case ARCH_FALCON:   /* 7B layout (one kv head): one norm for both branches; else attn_norm_2 */
        T("attn_norm.weight", dim, 1); T("attn_norm.bias", dim, 1);
        if (p->n_kv_heads > 1) { T("attn_norm_2.weight", dim, 1); T("attn_norm_2.bias", dim, 1); }
        T("attn_qkv.weight", dim, qkv); T("attn_output.weight", dim, dim);
        T("ffn_up.weight", dim, ffn); T("ffn_down.weight", ffn, dim);
        break;
    case ARCH_QWEN:
    case ARCH_CHATGLM:  /* chatglm's ffn_up is gate and up in one: 2 x ffn rows */
        T("attn_norm.weight", dim, 1); T("attn_qkv.weight", dim, qkv); T("attn_qkv.bias", qkv, 1);
        T("attn_output.weight", dim, dim); T("ffn_norm.weight", dim, 1);
        if (a == ARCH_QWEN) { T("ffn_up.weight", dim, ffn); T("ffn_gate.weight", dim, ffn); }
        else T("ffn_up.weight", dim, 2 * ffn);
        T("ffn_down.weight", ffn, dim);
        break;
    default:            /* llama, baichuan (W_pack already split), qwen2 (+ q/k/v biases) */
        T("attn_norm.weight", dim, 1); T("attn_q.weight", dim, dim); T("attn_k.weight", dim, kv);
        T("attn_v.weight", dim, kv);
        if (a == ARCH_QWEN2) { T("attn_q.bias", dim, 1); T("attn_k.bias", kv, 1); T("attn_v.bias", kv, 1); }
        T("attn_output.weight", dim, dim); T("ffn_norm.weight", dim, 1); T("ffn_gate.weight", dim, ffn);
        T("ffn_up.weight", dim, ffn); T("ffn_down.weight", ffn, dim);
        break;
    }
#undef T
    return n;
}

#define MAX_LAYER_TENSORS 16

static int add_tensors(gguf_writer *w, mk_tensor *list, int *n, mk_state *st, const colloq_mkmodel_params *p,
                       int n_vocab, colloq_err *err) {
    int64_t dim = p->dim;
    mk_shape lt[MAX_LAYER_TENSORS];
    int nlt = layer_tensors(p, lt);
    char name[64];
    int rc = add_tensor(w, list, n, st, p, "token_embd.weight", dim, n_vocab, err);
    for (int l = 0; rc == COLLOQ_OK && l < p->n_layers; l++) {
        for (int j = 0; rc == COLLOQ_OK && j < nlt; j++) {
            snprintf(name, sizeof name, "blk.%d.%s", l, lt[j].name);
            rc = add_tensor(w, list, n, st, p, name, lt[j].ne0, lt[j].ne1, err);
        }
    }
    if (rc == COLLOQ_OK) rc = add_tensor(w, list, n, st, p, "output_norm.weight", dim, 1, err);
    if (rc == COLLOQ_OK && params_arch(p) == ARCH_FALCON) rc = add_tensor(w, list, n, st, p, "output_norm.bias", dim, 1, err);
    if (rc == COLLOQ_OK && !p->tied) rc = add_tensor(w, list, n, st, p, "output.weight", dim, n_vocab, err);
    return rc;
}

int colloq_mkmodel_write(const colloq_mkmodel_params *p, const char *path, colloq_err *err) {
    int rc = colloq_mkmodel_check(p, err);
    if (rc != COLLOQ_OK) return rc;

    mk_state st = { 0 };
    builtin_vocab bv = { 0 };
    gguf_file *vf = NULL;
    mk_tensor *list = NULL;
    int n_list = 0, n_vocab = 0;
    gguf_writer *w = gguf_writer_new();
    if (!w) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory");

    rc = set_vocab(w, p, &vf, &bv, &n_vocab, err);
    if (rc != COLLOQ_OK) goto done;
    set_hparams(w, p, n_vocab);

    st.pool = colloq_pool_new(p->n_threads);   /* NULL (no workers) still works: one thread */
    st.n_threads = colloq_pool_size(st.pool);
    /* the longest row: dim, ffn, or a fused QKV bias */
    int64_t qkv = p->dim + 2 * (int64_t)(p->dim / p->n_heads) * p->n_kv_heads;
    st.max_row = p->dim > p->ffn ? p->dim : p->ffn;
    if (qkv > st.max_row) st.max_row = qkv;
    st.scratch = colloq_malloc((size_t)st.n_threads * (size_t)st.max_row * sizeof(float));
    list = colloq_calloc((size_t)p->n_layers * MAX_LAYER_TENSORS + 4, sizeof *list);
    if (!st.scratch || !list) { rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory"); goto done; }

    rc = add_tensors(w, list, &n_list, &st, p, n_vocab, err);
    if (rc == COLLOQ_OK) rc = gguf_writer_write(w, path, 0, err);

done:
    gguf_writer_free(w);
    if (vf) gguf_close(vf);
    bv_free(&bv);
    colloq_free(list);
    colloq_free(st.scratch);
    if (st.pool) colloq_pool_free(st.pool);
    return rc;
}
