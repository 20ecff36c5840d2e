/*
 * jinja_lex.c - the template lexer and the parse arena.  Follows Jinja2's lexer
 * with trim_blocks and lstrip_blocks on: newline normalisation and the dropped
 * final newline, {{ }} {% %} {# #} with - and + whitespace control, raw blocks,
 * Python string-literal escapes, integers, floats and operators.
 * Must not build syntax trees or evaluate anything.
 */
#include "jinja_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */

struct jchunk { jchunk *next; size_t cap; size_t used; char data[]; };

void *ja_alloc(jarena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->used + n > a->head->cap) {
        size_t cap = n > 65536 ? n : 65536;
        jchunk *c = colloq_malloc(sizeof(jchunk) + cap);
        if (!c) return NULL;
        c->next = a->head; c->cap = cap; c->used = 0;
        a->head = c;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

void ja_free(jarena *a) {
    jchunk *c = a->head;
    while (c) { jchunk *n = c->next; colloq_free(c); c = n; }
    a->head = NULL;
}

jstr *ja_jstr(jarena *a, const char *s, size_t n) {
    jstr *j = ja_alloc(a, sizeof(jstr) + n + 1);
    if (!j) return NULL;
    j->h.rc = -1; j->h.type = JV_STR;
    j->ascii = -1; j->len = n;
    if (n) memcpy(j->s, s, n);
    j->s[n] = 0;
    return j;
}

/* ---- lexer ---- */

typedef struct {
    const char *s; size_t n;     /* normalised source */
    size_t pos;
    int line;
    bool line_starting;
    jarena *a;
    jtok *toks; size_t ntok, cap;
    colloq_err *err;
    char bal[JINJA_MAX_PARSE_DEPTH]; int nbal;
} lexer;

static int lex_fail(lexer *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int lex_fail(lexer *L, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return colloq_seterr(L->err, COLLOQ_ERR_FORMAT, "line %d: %s", L->line, msg);
}

static jtok *push(lexer *L, uint8_t type, int line) {
    if (L->ntok == L->cap) {
        size_t nc = L->cap ? L->cap * 2 : 256;
        jtok *nt = colloq_realloc(L->toks, nc * sizeof(jtok));
        if (!nt) return NULL;
        L->toks = nt; L->cap = nc;
    }
    jtok *t = &L->toks[L->ntok++];
    memset(t, 0, sizeof *t);
    t->type = type; t->line = line;
    return t;
}

static int count_nl(const char *s, size_t n) {
    int c = 0;
    for (size_t i = 0; i < n; i++) c += s[i] == '\n';
    return c;
}

/* byte length of the (Unicode) whitespace character at i, or 0 */
static size_t ws_at(const char *s, size_t n, size_t i) {
    if (i >= n) return 0;
    size_t j = i;
    uint32_t c = ju_next(s, n, &j);
    return ju_isspace(c) ? j - i : 0;
}

static size_t skip_ws(const char *s, size_t n, size_t i) {
    size_t k;
    while ((k = ws_at(s, n, i)) != 0) i += k;
    return i;
}

/* length of text after Python's rstrip() */
static size_t rstrip_len(const char *s, size_t n) {
    size_t end = n;
    while (end > 0) {
        size_t j = end - 1;
        while (j > 0 && ((unsigned char)s[j] & 0xc0) == 0x80) j--;
        size_t k = j;
        if (!ju_isspace(ju_next(s, end, &k))) break;
        end = j;
    }
    return end;
}

static int emit_data(lexer *L, const char *s, size_t n, int line) {
    if (n == 0) return 0;
    jtok *t = push(L, JT_DATA, line);
    if (!t) return colloq_seterr(L->err, COLLOQ_ERR_NOMEM, "out of memory");
    t->s = s; t->n = n;
    return 0;
}

/* Text before a tag: apply '-' stripping or lstrip_blocks, then emit it. */
static int emit_text(lexer *L, size_t from, size_t to, char sign, bool is_var) {
    const char *text = L->s + from;
    size_t n = to - from;
    int line = L->line;
    if (sign == '-') {
        n = rstrip_len(text, n);
    } else if (sign != '+' && !is_var) {
        size_t lpos = n;
        while (lpos > 0 && text[lpos - 1] != '\n') lpos--;
        if ((lpos > 0 || L->line_starting) && lpos < n && skip_ws(text, n, lpos) == n) n = lpos;
    }
    L->line += count_nl(text, to - from);
    return emit_data(L, text, n, line);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode a string literal body as Python's unicode_escape codec does. */
static int decode_string(lexer *L, const char *s, size_t n, jtok *t) {
    char *out = ja_alloc(L->a, n * 2 + 16);
    if (!out) return colloq_seterr(L->err, COLLOQ_ERR_NOMEM, "out of memory");
    size_t o = 0, i = 0;
    while (i < n) {
        if (s[i] != '\\') { out[o++] = s[i++]; continue; }
        i++;
        char c = s[i];
        if ((unsigned char)c >= 0x80) {
            /* backslashreplace then unicode-escape: "\" + "xNN" / "uNNNN" / "UNNNNNNNN" */
            uint32_t cp = ju_next(s, n, &i);
            out[o++] = '\\';
            o += (size_t)snprintf(out + o, 16, cp < 0x100 ? "x%02x" : cp < 0x10000 ? "u%04x" : "U%08x", cp);
            continue;
        }
        i++;
        uint32_t cp;
        switch (c) {
        case '\n': continue;
        case '\\': out[o++] = '\\'; continue;
        case '\'': out[o++] = '\''; continue;
        case '"': out[o++] = '"'; continue;
        case 'a': out[o++] = 7; continue;
        case 'b': out[o++] = 8; continue;
        case 'f': out[o++] = 12; continue;
        case 'n': out[o++] = '\n'; continue;
        case 'r': out[o++] = '\r'; continue;
        case 't': out[o++] = '\t'; continue;
        case 'v': out[o++] = 11; continue;
        case 'x': case 'u': case 'U': {
            int want = c == 'x' ? 2 : c == 'u' ? 4 : 8;
            cp = 0;
            for (int k = 0; k < want; k++) {
                int h = i < n ? hexval(s[i]) : -1;
                if (h < 0)
                    return lex_fail(L, "truncated \\%s escape",
                                    c == 'x' ? "xXX" : c == 'u' ? "uXXXX" : "UXXXXXXXX");
                cp = cp * 16 + (uint32_t)h;
                i++;
            }
            if (cp > 0x10ffff) return lex_fail(L, "illegal Unicode character");
            if (cp >= 0xd800 && cp <= 0xdfff) return lex_fail(L, "surrogate escapes are not supported");
            o += ju_put(out + o, cp);
            continue;
        }
        case 'N': return lex_fail(L, "\\N{...} escapes are not supported");
        default:
            if (c >= '0' && c <= '7') {
                cp = (uint32_t)(c - '0');
                for (int k = 0; k < 2 && i < n && s[i] >= '0' && s[i] <= '7'; k++) cp = cp * 8 + (uint32_t)(s[i++] - '0');
                o += ju_put(out + o, cp);
                continue;
            }
            out[o++] = '\\';
            out[o++] = c;
        }
    }
    t->s = out; t->n = o;
    return 0;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* (\d+_)*\d+ starting at i; returns end or i when none */
static size_t digits_us(const char *s, size_t n, size_t i) {
    if (i >= n || !is_digit(s[i])) return i;
    size_t j = i;
    for (;;) {
        while (j < n && is_digit(s[j])) j++;
        if (j + 1 < n && s[j] == '_' && is_digit(s[j + 1])) { j++; continue; }
        return j;
    }
}

static size_t match_float(const char *s, size_t n, size_t i) {
    if (i > 0 && s[i - 1] == '.') return 0;
    size_t j = digits_us(s, n, i);
    if (j == i) return 0;
    size_t frac_end = 0;
    if (j < n && s[j] == '.') {
        size_t k = digits_us(s, n, j + 1);
        if (k > j + 1) frac_end = k;
    }
    size_t k = frac_end ? frac_end : j;
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        size_t m = k + 1;
        if (m < n && (s[m] == '+' || s[m] == '-')) m++;
        size_t e = digits_us(s, n, m);
        if (e > m) return e - i;
    }
    return frac_end ? frac_end - i : 0;
}

static size_t match_int(const char *s, size_t n, size_t i, int *base) {
    *base = 10;
    if (i >= n || !is_digit(s[i])) return 0;
    if (s[i] == '0' && i + 1 < n) {
        char p = (char)(s[i + 1] | 0x20);
        int b = p == 'b' ? 2 : p == 'o' ? 8 : p == 'x' ? 16 : 0;
        if (b) {
            size_t j = i + 2, cnt = 0;
            for (;;) {
                size_t k = j;
                if (k < n && s[k] == '_') k++;
                int h = k < n ? hexval(s[k]) : -1;
                if (h < 0 || h >= b) break;
                j = k + 1; cnt++;
            }
            if (cnt) { *base = b; return j - i; }
        }
    }
    size_t j = i + 1;
    char lead = s[i];
    for (;;) {
        size_t k = j;
        if (k < n && s[k] == '_') k++;
        if (k < n && is_digit(s[k]) && (lead != '0' || s[k] == '0')) { j = k + 1; continue; }
        break;
    }
    return j - i;
}

static int lex_number(lexer *L) {
    const char *s = L->s;
    size_t i = L->pos, fl = match_float(s, L->n, i);
    char buf[128];
    if (fl) {
        jtok *t = push(L, JT_FLOAT, L->line);
        if (!t) return colloq_seterr(L->err, COLLOQ_ERR_NOMEM, "out of memory");
        size_t o = 0;
        if (fl >= sizeof buf) return lex_fail(L, "number literal too long");
        for (size_t k = i; k < i + fl; k++) if (s[k] != '_') buf[o++] = s[k];
        buf[o] = 0;
        t->f = strtod(buf, NULL);
        L->pos += fl;
        return 1;
    }
    int base;
    size_t il = match_int(s, L->n, i, &base);
    if (!il) return 0;
    jtok *t = push(L, JT_INT, L->line);
    if (!t) return colloq_seterr(L->err, COLLOQ_ERR_NOMEM, "out of memory");
    size_t o = 0;
    for (size_t k = i + (base != 10 ? 2 : 0); k < i + il; k++) {
        if (s[k] == '_') continue;
        if (o >= sizeof buf - 1) return lex_fail(L, "integer literal too large");
        buf[o++] = s[k];
    }
    buf[o] = 0;
    errno = 0;
    unsigned long long v = strtoull(buf, NULL, base);
    if (errno || v > (unsigned long long)INT64_MAX) return lex_fail(L, "integer literal too large");
    t->i = (int64_t)v;
    L->pos += il;
    return 1;
}

static const struct { const char *op; uint8_t type; } ops[] = {
    {"//", JT_FLOORDIV}, {"**", JT_POW}, {"==", JT_EQ}, {"!=", JT_NE}, {">=", JT_GTEQ},
    {"<=", JT_LTEQ}, {"+", JT_ADD}, {"-", JT_SUB}, {"/", JT_DIV}, {"*", JT_MUL},
    {"%", JT_MOD}, {"~", JT_TILDE}, {"[", JT_LBRACKET}, {"]", JT_RBRACKET}, {"(", JT_LPAREN},
    {")", JT_RPAREN}, {"{", JT_LBRACE}, {"}", JT_RBRACE}, {">", JT_GT}, {"<", JT_LT},
    {"=", JT_ASSIGN}, {".", JT_DOT}, {":", JT_COLON}, {"|", JT_PIPE}, {",", JT_COMMA},
    {";", JT_SEMICOLON},
};

/* Tokens inside {{ }} or {% %}; returns 0 when the closing delimiter was consumed. */
static int lex_tag(lexer *L, bool block) {
    const char *s = L->s;
    size_t n = L->n;
    L->nbal = 0;
    while (L->pos < n) {
        size_t p = L->pos;
        char c = s[p];
        /* closing delimiter, only with balanced brackets */
        if (L->nbal == 0) {
            char close = block ? '%' : '}';
            size_t end = 0;
            bool trim_ws = false, trim_nl = false;
            if (c == '-' && p + 2 < n + 0 && s[p + 1] == close && s[p + 2] == '}') { end = p + 3; trim_ws = true; }
            else if (block && c == '+' && p + 2 < n + 0 && s[p + 1] == '%' && s[p + 2] == '}') end = p + 3;
            else if (c == close && p + 1 < n && s[p + 1] == '}') { end = p + 2; trim_nl = block; }
            if (end) {
                if (!push(L, block ? JT_BLOCK_END : JT_VAR_END, L->line))
                    return colloq_seterr(L->err, COLLOQ_ERR_NOMEM, "out of memory");
                if (trim_ws) {
                    size_t e = skip_ws(s, n, end);
                    L->line += count_nl(s + end, e - end);
                    end = e;
                } else if (trim_nl && end < n && s[end] == '\n') {
                    end++;
                    L->line++;
                }
                L->line_starting = end > 0 && s[end - 1] == '\n';
                L->pos = end;
                return 0;
            }
        }
        size_t w = ws_at(s, n, p);
        if (w) {
            size_t e = skip_ws(s, n, p);
            L->line += count_nl(s + p, e - p);
            L->pos = e;
            continue;
        }
        int rc = lex_number(L);
        if (rc < 0) return rc;
        if (rc > 0) continue;
        if (c == '_' || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) {
            size_t e = p + 1;
            while (e < n && (s[e] == '_' || is_digit(s[e]) || ((s[e] | 0x20) >= 'a' && (s[e] | 0x20) <= 'z'))) e++;
            jtok *t = push(L, JT_NAME, L->line);
            if (!t) return colloq_seterr(L->err, COLLOQ_ERR_NOMEM, "out of memory");
            t->s = s + p; t->n = e - p;
            L->pos = e;
            continue;
        }
        if (c == '\'' || c == '"') {
            size_t e = p + 1;
            while (e < n && s[e] != c) e += s[e] == '\\' ? 2 : 1;
            if (e >= n) return lex_fail(L, "unexpected char '%c' at %zu", c, p);
            jtok *t = push(L, JT_STRING, L->line);
            if (!t) return colloq_seterr(L->err, COLLOQ_ERR_NOMEM, "out of memory");
            rc = decode_string(L, s + p + 1, e - p - 1, t);
            if (rc) return rc;
            L->line += count_nl(s + p, e + 1 - p);
            L->pos = e + 1;
            continue;
        }
        size_t k;
        for (k = 0; k < sizeof ops / sizeof ops[0]; k++) {
            size_t ol = strlen(ops[k].op);
            if (p + ol <= n && memcmp(s + p, ops[k].op, ol) == 0) break;
        }
        if (k == sizeof ops / sizeof ops[0]) {
            size_t j = p;
            uint32_t cp = ju_next(s, n, &j);
            if (cp < 0x80) return lex_fail(L, "unexpected char '%c' at %zu", (char)cp, p);
            return lex_fail(L, "unexpected char U+%04X at %zu", cp, p);
        }
        uint8_t type = ops[k].type;
        if (type == JT_LPAREN || type == JT_LBRACKET || type == JT_LBRACE) {
            if (L->nbal >= JINJA_MAX_PARSE_DEPTH) return lex_fail(L, "brackets nested too deeply");
            L->bal[L->nbal++] = type == JT_LPAREN ? ')' : type == JT_LBRACKET ? ']' : '}';
        } else if (type == JT_RPAREN || type == JT_RBRACKET || type == JT_RBRACE) {
            if (L->nbal == 0) return lex_fail(L, "unexpected '%c'", c);
            char want = L->bal[--L->nbal];
            if (want != c) return lex_fail(L, "unexpected '%c', expected '%c'", c, want);
        }
        if (!push(L, type, L->line)) return colloq_seterr(L->err, COLLOQ_ERR_NOMEM, "out of memory");
        L->pos = p + strlen(ops[k].op);
    }
    return 1;   /* end of template inside the tag: the parser reports it */
}

/* "{%" sign? ws "raw" ws ("-%}" ws | "%}") at p; returns end or 0 */
static size_t match_raw_begin(const char *s, size_t n, size_t p, char *sign) {
    size_t i = p + 2;
    *sign = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) *sign = s[i++];
    i = skip_ws(s, n, i);
    if (i + 3 > n || memcmp(s + i, "raw", 3) != 0) return 0;
    i = skip_ws(s, n, i + 3);
    if (i + 3 <= n && memcmp(s + i, "-%}", 3) == 0) return skip_ws(s, n, i + 3);
    if (i + 2 <= n && memcmp(s + i, "%}", 2) == 0) return i + 2;
    return 0;
}

static int lex_raw(lexer *L) {
    const char *s = L->s;
    size_t n = L->n;
    for (size_t p = L->pos; p + 1 < n; p++) {
        if (s[p] != '{' || s[p + 1] != '%') continue;
        size_t i = p + 2;
        char sign = 0;
        if (i < n && (s[i] == '-' || s[i] == '+')) sign = s[i++];
        i = skip_ws(s, n, i);
        if (i + 6 > n || memcmp(s + i, "endraw", 6) != 0) continue;
        i = skip_ws(s, n, i + 6);
        size_t end;
        if (i + 3 <= n && memcmp(s + i, "+%}", 3) == 0) end = i + 3;
        else if (i + 3 <= n && memcmp(s + i, "-%}", 3) == 0) end = skip_ws(s, n, i + 3);
        else if (i + 2 <= n && memcmp(s + i, "%}", 2) == 0) end = i + 2 + (i + 2 < n && s[i + 2] == '\n');
        else continue;
        int rc = emit_text(L, L->pos, p, sign, false);
        if (rc) return rc;
        L->line += count_nl(s + p, end - p);
        L->line_starting = s[end - 1] == '\n';
        L->pos = end;
        return 0;
    }
    return lex_fail(L, "Missing end of raw directive");
}

static int lex_comment(lexer *L) {
    const char *s = L->s;
    size_t n = L->n;
    for (size_t p = L->pos; p + 1 < n; p++) {
        size_t end = 0;
        if ((s[p] == '+' || s[p] == '-') && p + 2 < n && s[p + 1] == '#' && s[p + 2] == '}') {
            end = p + 3;
            if (s[p] == '-') end = skip_ws(s, n, end);
        } else if (s[p] == '#' && s[p + 1] == '}') {
            end = p + 2;
            if (end < n && s[end] == '\n') end++;
        }
        if (!end) continue;
        L->line += count_nl(s + L->pos, end - L->pos);
        L->line_starting = s[end - 1] == '\n';
        L->pos = end;
        return 0;
    }
    return lex_fail(L, "Missing end of comment tag");
}

/* Normalise newlines to \n and drop one final newline (keep_trailing_newline off). */
static char *normalise(jarena *a, const char *src, size_t len, size_t *outn) {
    char *o = ja_alloc(a, len + 1);
    if (!o) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') { o[n++] = '\n'; if (i + 1 < len && src[i + 1] == '\n') i++; }
        else o[n++] = src[i];
    }
    if (n > 0 && o[n - 1] == '\n') n--;
    o[n] = 0;
    *outn = n;
    return o;
}

int jlex(const char *src, size_t len, jarena *a, jtok **toks, size_t *ntoks, colloq_err *err) {
    for (size_t i = 0; i < len;) {
        int k = colloq_utf8_seq_len((const unsigned char *)src + i, len - i);
        if (k <= 0) return colloq_seterr(err, COLLOQ_ERR_FORMAT, "template is not valid UTF-8 (byte %zu)", i);
        i += (size_t)k;
    }
    lexer L = { 0 };
    L.a = a; L.err = err; L.line = 1; L.line_starting = true;
    L.s = normalise(a, src, len, &L.n);
    if (!L.s) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory");
    int rc = 0;
    while (L.pos < L.n && rc == 0) {
        const char *s = L.s;
        size_t n = L.n, p = L.pos;
        /* find the next tag opener */
        size_t q = p;
        char kind = 0;
        for (; q + 1 < n; q++) {
            if (s[q] == '{' && (s[q + 1] == '{' || s[q + 1] == '%' || s[q + 1] == '#')) { kind = s[q + 1]; break; }
        }
        if (!kind) { rc = emit_text(&L, p, n, 0, true); L.pos = n; break; }
        char sign = 0;
        if (kind == '%') {
            char rs;
            size_t re = match_raw_begin(s, n, q, &rs);
            if (re) {
                rc = emit_text(&L, p, q, rs, false);
                if (rc) break;
                L.line += count_nl(s + q, re - q);
                L.line_starting = s[re - 1] == '\n';
                L.pos = re;
                rc = lex_raw(&L);
                continue;
            }
        }
        size_t after = q + 2;
        if (after < n && (s[after] == '-' || s[after] == '+')) sign = s[after++];
        rc = emit_text(&L, p, q, sign, kind == '{');
        if (rc) break;
        L.line_starting = false;
        L.pos = after;
        if (kind == '#') { rc = lex_comment(&L); continue; }
        if (!push(&L, kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, L.line)) {
            rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory");
            break;
        }
        rc = lex_tag(&L, kind == '%');
        if (rc > 0) rc = 0;     /* unterminated tag: EOF follows */
    }
    if (rc == 0 && !push(&L, JT_EOF, L.line)) rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory");
    if (rc) { colloq_free(L.toks); return rc; }
    /* move the tokens into the arena so the template owns them */
    jtok *t = ja_alloc(a, L.ntok * sizeof(jtok));
    if (!t) { colloq_free(L.toks); return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory"); }
    memcpy(t, L.toks, L.ntok * sizeof(jtok));
    colloq_free(L.toks);
    *toks = t;
    *ntoks = L.ntok;
    return 0;
}

const char *jt_describe(const jtok *t) {
    static const char *names[] = {
        "end of template", "template data / text", "begin of print statement",
        "end of print statement", "begin of statement block", "end of statement block",
        "name", "string", "integer", "float",
        "+", "-", "/", "//", "*", "%", "**", "~", "[", "]", "(", ")", "{", "}",
        "==", "!=", ">", ">=", "<", "<=", "=", ".", ":", "|", ",", ";",
    };
    return t->type < sizeof names / sizeof names[0] ? names[t->type] : "?";
}
