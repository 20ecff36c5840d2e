/*
 * tok_bpe_pre.c - the pre-tokenizer table for byte-level BPE: for each
 * tokenizer.ggml.pre name, the regexes (PCRE2, UTF + UCP, JIT when available)
 * that cut text into chunks, compiled once at load.  Owns chunking only: no
 * vocabulary, no merges, no GGUF.  Never aborts on any input bytes.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>
#include "tok_bpe_pre.h"

/* ---- the table ----
 * Regexes are written as their families publish them (Hugging Face
 * tokenizer.json pre_tokenizer patterns).  Two adjustments, applied when
 * compiling (see rewrite_pattern):
 *   - \s and \S mean Unicode White_Space exactly (the Oniguruma meaning used by
 *     Hugging Face tokenizers), independent of the PCRE2 version's \s;
 *   - case-insensitive groups (?i:'s|...) are spelled as explicit [sS] classes
 *     here, so that Unicode case folding (U+017F, U+212A) cannot widen them. */

#define RX_CONTRACTIONS_CI "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"

/* GPT-2 (also MPT, GPT-NeoX, OLMo, ...) */
#define RX_GPT2 \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"

/* Llama 3 (tiktoken cl100k style): numbers in groups of up to three digits. */
#define RX_LLAMA3 \
    RX_CONTRACTIONS_CI "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}" \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* Qwen2: as Llama 3 but every digit is its own chunk. */
#define RX_QWEN2 \
    RX_CONTRACTIONS_CI "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}" \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* CJK ideographs + the range below them + Hangul, as DeepSeek publishes it. */
#define RX_DEEPSEEK_CJK "[\\x{4e00}-\\x{9fa5}\\x{800}-\\x{4e00}\\x{ac00}-\\x{d7ff}]+"

/* DeepSeek LLM: a fixed list of cased-letter ranges instead of \p{L}. */
#define RX_DEEPSEEK_LLM_LETTERS \
    "\\s?[A-Za-z\\x{b5}\\x{c0}-\\x{d6}\\x{d8}-\\x{f6}\\x{f8}-\\x{1ba}\\x{1bc}-\\x{1bf}" \
    "\\x{1c4}-\\x{293}\\x{295}-\\x{2af}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37b}-\\x{37d}" \
    "\\x{37f}\\x{386}\\x{388}-\\x{38a}\\x{38c}\\x{38e}-\\x{3a1}\\x{3a3}-\\x{3f5}" \
    "\\x{3f7}-\\x{481}\\x{48a}-\\x{52f}\\x{531}-\\x{556}\\x{10a0}-\\x{10c5}" \
    "\\x{13a0}-\\x{13f5}\\x{13f8}-\\x{13fd}\\x{1c90}-\\x{1cba}\\x{1cbd}-\\x{1cbf}" \
    "\\x{1d00}-\\x{1d2b}\\x{1d6b}-\\x{1d77}\\x{1d79}-\\x{1d9a}\\x{1e00}-\\x{1f15}" \
    "\\x{1f18}-\\x{1f1d}\\x{1f20}-\\x{1f45}\\x{1f48}-\\x{1f4d}\\x{1f50}-\\x{1f57}" \
    "\\x{1f59}\\x{1f5b}\\x{1f5d}\\x{1f5f}-\\x{1f7d}\\x{1f80}-\\x{1fb4}\\x{1fb6}-\\x{1fbc}" \
    "\\x{1fbe}\\x{1fc2}-\\x{1fc4}\\x{1fc6}-\\x{1fcc}\\x{1fd0}-\\x{1fd3}\\x{1fd6}-\\x{1fdb}" \
    "\\x{1fe0}-\\x{1fec}\\x{1ff2}-\\x{1ff4}\\x{1ff6}-\\x{1ffc}\\x{2102}\\x{2107}" \
    "\\x{210a}-\\x{2113}\\x{2115}\\x{2119}-\\x{211d}\\x{2124}\\x{2126}\\x{2128}" \
    "\\x{212a}-\\x{212d}\\x{212f}-\\x{2134}\\x{2139}\\x{213c}-\\x{213f}\\x{2145}-\\x{2149}" \
    "\\x{214e}\\x{2183}\\x{2184}\\x{2c00}-\\x{2c7b}\\x{2c7e}-\\x{2ce4}\\x{2ceb}-\\x{2cee}" \
    "\\x{2cf2}\\x{2cf3}\\x{a640}-\\x{a66d}\\x{a680}-\\x{a69b}\\x{a722}-\\x{a76f}" \
    "\\x{a771}-\\x{a787}\\x{a78b}-\\x{a78e}\\x{ab70}-\\x{abbf}\\x{fb00}-\\x{fb06}" \
    "\\x{fb13}-\\x{fb17}\\x{ff21}-\\x{ff3a}\\x{ff41}-\\x{ff5a}\\x{10400}-\\x{1044f}" \
    "\\x{104b0}-\\x{104d3}\\x{104d8}-\\x{104fb}\\x{10c80}-\\x{10cb2}\\x{10cc0}-\\x{10cf2}" \
    "\\x{118a0}-\\x{118df}\\x{1e900}-\\x{1e943}]+"
#define RX_DEEPSEEK_LLM_PUNCT \
    "\\s?[!-/:-~\\x{ff01}-\\x{ff0f}\\x{ff1a}-\\x{ff5e}\\x{2018}-\\x{201f}\\x{3000}-\\x{3002}]+"

/* Tekken / GPT-4o: split camelCase words (upper run, then lower run). */
#define RX_UPPER "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]"
#define RX_LOWER "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]"
#define RX_TEKKEN \
    "[^\\r\\n\\p{L}\\p{N}]?" RX_UPPER "*" RX_LOWER "+|[^\\r\\n\\p{L}\\p{N}]?" RX_UPPER "+" \
    RX_LOWER "*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_GPT4O \
    "[^\\r\\n\\p{L}\\p{N}]?" RX_UPPER "*" RX_LOWER "+" RX_CONTRACTIONS_CI "?" \
    "|[^\\r\\n\\p{L}\\p{N}]?" RX_UPPER "+" RX_LOWER "*" RX_CONTRACTIONS_CI "?" \
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* BLOOM / Poro: everything up to whitespace or a few punctuation marks
 * (the parentheses and '|' inside the class are literal, as published). */
#define RX_BLOOM \
    " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{ff0c}\\x{3001}\\x{964}\\x{6d4}\\x{60c})]+"

#define MAX_RE 6

typedef struct {
    const char *kind;
    const char *rx[MAX_RE + 1];      /* NULL-terminated, applied in order */
    bool ignore_merges;
    bool add_bos;
} pre_kind;

static const pre_kind KINDS[] = {
    { "gpt-2",          { RX_GPT2, NULL }, false, false },
    { "llama3",         { RX_LLAMA3, NULL }, true, true },
    { "llama3-merges",  { RX_LLAMA3, NULL }, false, false },   /* dbrx, smaug, chatglm */
    { "qwen2",          { RX_QWEN2, NULL }, false, false },
    { "deepseek-llm",   { "[\\r\\n]", RX_DEEPSEEK_LLM_LETTERS, RX_DEEPSEEK_LLM_PUNCT,
                          "\\s+$", RX_DEEPSEEK_CJK, "\\p{N}+", NULL }, false, false },
    { "deepseek-coder", { "[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RX_DEEPSEEK_CJK,
                          "\\p{N}", NULL }, false, false },
    { "deepseek-v3",    { "\\p{N}{1,3}", "[\\x{4e00}-\\x{9fa5}\\x{3040}-\\x{309f}\\x{30a0}-\\x{30ff}]+",
                          "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+"
                          "|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*"
                          "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", NULL }, false, false },
    /* Falcon: ASCII + Unicode punctuation runs first, then GPT-2, then digit triples. */
    { "falcon",         { "[\\p{P}\\$\\+<=>\\^~\\|`]+", RX_GPT2, "[0-9][0-9][0-9]", NULL },
                        false, false },
    /* StarCoder / Refact: single digits first, then GPT-2. */
    { "starcoder",      { "\\p{N}", RX_GPT2, NULL }, false, false },
    { "bloom",          { RX_BLOOM, NULL }, false, false },
    { "viking",         { RX_BLOOM, "\\p{N}", NULL }, false, false },
    { "tekken",         { RX_TEKKEN, NULL }, true, true },
    { "gpt-4o",         { RX_GPT4O, NULL }, false, false },
};

/* tokenizer.ggml.pre values -> table entry */
static const struct { const char *name, *kind; } NAMES[] = {
    { "gpt-2", "gpt-2" }, { "mpt", "gpt-2" }, { "olmo", "gpt-2" }, { "jais", "gpt-2" },
    { "phi-2", "gpt-2" }, { "gigachat", "gpt-2" }, { "jina-es", "gpt-2" },
    { "jina-de", "gpt-2" }, { "jina-v1-en", "gpt-2" }, { "jina-v2-es", "gpt-2" },
    { "jina-v2-de", "gpt-2" }, { "jina-v2-code", "gpt-2" }, { "roberta-bpe", "gpt-2" },
    { "exaone4", "gpt-2" }, { "trillion", "gpt-2" }, { "granite-docling", "gpt-2" },
    { "default", "gpt-2" },
    { "llama3", "llama3" }, { "llama-v3", "llama3" }, { "llama-bpe", "llama3" },
    { "falcon3", "llama3" }, { "falcon-h1", "llama3" }, { "pixtral", "llama3" },
    { "midm-2.0", "llama3" }, { "lfm2", "llama3" },
    { "dbrx", "llama3-merges" }, { "smaug-bpe", "llama3-merges" },
    { "chatglm-bpe", "llama3-merges" }, { "glm4", "llama3-merges" },
    { "qwen2", "qwen2" }, { "deepseek-r1-qwen", "qwen2" }, { "stablelm2", "qwen2" },
    { "megrez", "qwen2" }, { "hunyuan", "qwen2" }, { "grok-2", "qwen2" },
    { "deepseek-llm", "deepseek-llm" }, { "deepseek-coder", "deepseek-coder" },
    { "deepseek-v3", "deepseek-v3" }, { "hunyuan-dense", "deepseek-v3" },
    { "falcon", "falcon" },
    { "starcoder", "starcoder" }, { "refact", "starcoder" }, { "command-r", "starcoder" },
    { "smollm", "starcoder" }, { "codeshell", "starcoder" }, { "exaone", "starcoder" },
    { "minerva-7b", "starcoder" },
    { "bloom", "bloom" }, { "poro-chat", "bloom" }, { "gpt3-finnish", "bloom" },
    { "viking", "viking" }, { "tekken", "tekken" },
    { "gpt-4o", "gpt-4o" }, { "llama4", "gpt-4o" }, { "minimax-m2", "gpt-4o" },
};

/* Unicode White_Space, as the body of a character class. */
#define WS_CLASS_BODY "\\t-\\r\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}" \
                      "\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"

struct tok_bpe_pre {
    const pre_kind *kind;
    int n_re;
    pcre2_code *re[MAX_RE];
    uint32_t ovec_pairs;                 /* enough for every regex's capture groups */
    pcre2_general_context *gctx;
};

static void *pre_malloc(PCRE2_SIZE n, void *ud) { (void)ud; return colloq_malloc(n); }
static void  pre_free(void *p, void *ud) { (void)ud; colloq_free(p); }

/* Replace \s / \S by explicit White_Space classes.  Returns a new string or NULL
 * (out of memory, or \S inside a class, which no table entry uses). */
static char *rewrite_pattern(const char *rx) {
    size_t body = strlen(WS_CLASS_BODY), n = 0, cap = strlen(rx) + 1;
    for (const char *s = rx; *s; s++)
        if (s[0] == '\\' && s[1]) { if (s[1] == 's' || s[1] == 'S') cap += body + 3; s++; }
    char *o = colloq_malloc(cap);
    if (!o) return NULL;
    bool in_class = false;
    for (const char *s = rx; *s; s++) {
        if (*s == '\\' && s[1]) {
            if (s[1] == 's' || s[1] == 'S') {
                if (in_class && s[1] == 'S') { colloq_free(o); return NULL; }
                if (!in_class) { o[n++] = '['; if (s[1] == 'S') o[n++] = '^'; }
                memcpy(o + n, WS_CLASS_BODY, body); n += body;
                if (!in_class) o[n++] = ']';
            } else {
                o[n++] = s[0]; o[n++] = s[1];
            }
            s++;
            continue;
        }
        if (*s == '[' && !in_class) in_class = true;
        else if (*s == ']' && in_class) in_class = false;
        o[n++] = *s;
    }
    o[n] = 0;
    return o;
}

void tok_spans_free(tok_spans *s) {
    colloq_free(s->v);
    s->v = NULL; s->n = s->cap = 0;
}

static int spans_push(tok_spans *s, size_t off, size_t len) {
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        tok_span *nv = colloq_realloc(s->v, nc * sizeof *nv);
        if (!nv) return COLLOQ_ERR_NOMEM;
        s->v = nv; s->cap = nc;
    }
    s->v[s->n].off = off;
    s->v[s->n].len = len;
    s->n++;
    return 0;
}

const char *tok_bpe_pre_name_at(size_t i) {
    return i < sizeof NAMES / sizeof NAMES[0] ? NAMES[i].name : NULL;
}

const char *tok_bpe_pre_kind(const tok_bpe_pre *p) { return p->kind->kind; }
bool tok_bpe_pre_ignore_merges(const tok_bpe_pre *p) { return p->kind->ignore_merges; }
bool tok_bpe_pre_default_add_bos(const tok_bpe_pre *p) { return p->kind->add_bos; }

void tok_bpe_pre_free(tok_bpe_pre *p) {
    if (!p) return;
    for (int i = 0; i < p->n_re; i++) pcre2_code_free(p->re[i]);
    pcre2_general_context_free(p->gctx);
    colloq_free(p);
}

int tok_bpe_pre_new(const char *name, tok_bpe_pre **out, colloq_err *err) {
    *out = NULL;
    const char *kname = NULL;
    if (!name || !*name) {
        kname = "gpt-2";
    } else {
        for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
            if (!strcmp(NAMES[i].name, name)) { kname = NAMES[i].kind; break; }
    }
    if (!kname)
        return colloq_seterr(err, COLLOQ_ERR_UNSUPPORTED,
                             "unknown byte-level BPE pre-tokenizer '%s' (tokenizer.ggml.pre)", name);
    const pre_kind *k = NULL;
    for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++)
        if (!strcmp(KINDS[i].kind, kname)) k = &KINDS[i];
    if (!k) return colloq_seterr(err, COLLOQ_ERR_UNSUPPORTED, "pre-tokenizer table has no '%s'", kname);

    tok_bpe_pre *p = colloq_calloc(1, sizeof *p);
    if (!p) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory (pre-tokenizer)");
    p->kind = k;
    p->ovec_pairs = 1;
    p->gctx = pcre2_general_context_create(pre_malloc, pre_free, NULL);
    pcre2_compile_context *cctx = p->gctx ? pcre2_compile_context_create(p->gctx) : NULL;
    if (!cctx) { tok_bpe_pre_free(p); return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory (pre-tokenizer)"); }

    int rc = 0;
    for (int i = 0; k->rx[i]; i++) {
        char *pat = rewrite_pattern(k->rx[i]);
        if (!pat) {
            rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "pre-tokenizer '%s' regex %d: out of memory "
                               "(or \\S inside a class)", k->kind, i);
            break;
        }
        int ecode;
        PCRE2_SIZE eoff;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY,
                                       &ecode, &eoff, cctx);
        colloq_free(pat);
        if (!re) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ecode, msg, sizeof msg);
            rc = colloq_seterr(err, ecode == PCRE2_ERROR_HEAP_FAILED ? COLLOQ_ERR_NOMEM : COLLOQ_ERR_UNSUPPORTED,
                               "pre-tokenizer '%s' regex %d does not compile at offset %zu: %s",
                               k->kind, i, (size_t)eoff, (const char *)msg);
            break;
        }
        p->re[p->n_re++] = re;
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);   /* the interpreter is the fallback */
        uint32_t groups = 0;
        pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &groups);
        if (groups + 1 > p->ovec_pairs) p->ovec_pairs = groups + 1;
    }
    pcre2_compile_context_free(cctx);
    if (rc) { tok_bpe_pre_free(p); return rc; }
    *out = p;
    return 0;
}

static size_t utf8_char_len(const unsigned char *s, size_t avail) {
    int k = colloq_utf8_seq_len(s, avail);
    return k > 0 ? (size_t)k : 1;
}

/* Apply regex re inside each span of in, appending matches and gaps to out. */
static int split_one(const tok_bpe_pre *p, pcre2_code *re, const char *text, const tok_spans *in,
                     tok_spans *out, pcre2_match_data *md, colloq_err *err) {
    for (size_t i = 0; i < in->n; i++) {
        const unsigned char *subj = (const unsigned char *)text + in->v[i].off;
        size_t slen = in->v[i].len, pos = 0, last = 0;
        while (pos < slen) {
            int rc = pcre2_match(re, subj, slen, pos, PCRE2_NO_UTF_CHECK, md, NULL);
            if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
                rc = pcre2_match(re, subj, slen, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {
                PCRE2_UCHAR msg[160];
                pcre2_get_error_message(rc, msg, sizeof msg);
                return colloq_seterr(err, rc == PCRE2_ERROR_NOMEMORY ? COLLOQ_ERR_NOMEM : COLLOQ_ERR_ARG,
                                     "pre-tokenizer '%s': match failed: %s",
                                     p->kind->kind, (const char *)msg);
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            if (ms < pos || me < ms || me > slen)
                return colloq_seterr(err, COLLOQ_ERR_ARG, "pre-tokenizer '%s': bad match bounds",
                                     p->kind->kind);
            if (me == ms) {                     /* empty match: not a chunk; step one character */
                pos = ms + utf8_char_len(subj + ms, slen - ms);
                continue;
            }
            if (ms > last && spans_push(out, in->v[i].off + last, ms - last)) goto nomem;
            if (spans_push(out, in->v[i].off + ms, me - ms)) goto nomem;
            last = pos = me;
        }
        if (last < slen && spans_push(out, in->v[i].off + last, slen - last)) goto nomem;
    }
    return 0;
nomem:
    return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory (pre-tokenizer chunks)");
}

int tok_bpe_pre_split(const tok_bpe_pre *p, const char *text, size_t len, tok_spans *out,
                      colloq_err *err) {
    out->n = 0;
    if (len == 0) return 0;
    pcre2_match_data *md = pcre2_match_data_create(p->ovec_pairs, p->gctx);
    if (!md) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory (pre-tokenizer)");
    tok_spans a = {0}, b = {0};
    const unsigned char *u = (const unsigned char *)text;
    size_t pos = 0;
    int rc = 0;
    while (pos < len && rc == 0) {
        size_t e = pos;
        int k;
        while (e < len && (k = colloq_utf8_seq_len(u + e, len - e)) > 0) e += (size_t)k;
        if (e == pos) {                          /* a run of bytes that are not UTF-8 */
            while (e < len && colloq_utf8_seq_len(u + e, len - e) == 0) e++;
            if (spans_push(out, pos, e - pos)) rc = COLLOQ_ERR_NOMEM;
            pos = e;
            continue;
        }
        a.n = 0;
        if (spans_push(&a, pos, e - pos)) { rc = COLLOQ_ERR_NOMEM; break; }
        for (int r = 0; r < p->n_re && rc == 0; r++) {
            b.n = 0;
            rc = split_one(p, p->re[r], text, &a, &b, md, err);
            tok_spans t = a; a = b; b = t;
        }
        for (size_t i = 0; i < a.n && rc == 0; i++)
            if (spans_push(out, a.v[i].off, a.v[i].len)) rc = COLLOQ_ERR_NOMEM;
        pos = e;
    }
    if (rc == COLLOQ_ERR_NOMEM) colloq_seterr(err, rc, "out of memory (pre-tokenizer chunks)");
    tok_spans_free(&a);
    tok_spans_free(&b);
    pcre2_match_data_free(md);
    return rc;
}
