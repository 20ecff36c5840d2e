/*
 * jinja_format.c - Python's str.format for templates: replacement fields with
 * automatic or explicit numbering, keyword names, .attribute and [key] access
 * (through the sandboxed lookups), !r/!s conversions and the common part of the
 * format-spec mini-language.  Must not know statements or scopes.
 */
#include "jinja_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint32_t fill; char align, sign; bool alt, zero, comma;
    int64_t width, prec; char type;
} fspec;

static int parse_spec(jr *r, const char *s, size_t n, fspec *f) {
    memset(f, 0, sizeof *f);
    f->fill = ' '; f->prec = -1; f->width = -1;
    size_t i = 0;
    if (n >= 2) {
        size_t k = 0;
        uint32_t c0 = ju_next(s, n, &k);
        if (k < n && strchr("<>=^", s[k])) { f->fill = c0; f->align = s[k]; i = k + 1; }
    }
    if (!f->align && i < n && strchr("<>=^", s[i])) f->align = s[i++];
    if (i < n && strchr("+- ", s[i])) f->sign = s[i++];
    if (i < n && s[i] == '#') { f->alt = true; i++; }
    if (i < n && s[i] == '0') { f->zero = true; i++; }
    int64_t w = -1;
    while (i < n && s[i] >= '0' && s[i] <= '9') { w = (w < 0 ? 0 : w) * 10 + (s[i++] - '0'); if (w > 1000000) return jr_fail(r, "Too many decimal digits in format string"); }
    f->width = w;
    if (i < n && (s[i] == ',' || s[i] == '_')) { f->comma = true; i++; }
    if (i < n && s[i] == '.') {
        i++;
        int64_t p = 0;
        bool any = false;
        while (i < n && s[i] >= '0' && s[i] <= '9') { p = p * 10 + (s[i++] - '0'); any = true; if (p > 10000) return jr_fail(r, "precision too big"); }
        if (!any) return jr_fail(r, "Format specifier missing precision");
        f->prec = p;
    }
    if (i < n) f->type = s[i++];
    if (i != n) return jr_fail(r, "Invalid format specifier");
    return 0;
}

static void put_padded(jbuf *b, const char *s, size_t n, const fspec *f, char dflt_align) {
    int64_t len = (int64_t)ju_ncp(s, n), pad = f->width > len ? f->width - len : 0;
    char align = f->align ? f->align : dflt_align;
    char fb[4];
    size_t fl = ju_put(fb, f->fill);
    int64_t left = align == '>' ? pad : align == '^' ? pad / 2 : 0;
    if (align == '=' && n && strchr("+- ", s[0])) { jb_putc(b, s[0]); s++; n--; left = pad; }
    else if (align == '=') left = pad;
    for (int64_t i = 0; i < left; i++) jb_put(b, fb, fl);
    jb_put(b, s, n);
    for (int64_t i = left; i < pad; i++) jb_put(b, fb, fl);
}

static int format_value(jr *r, jbuf *b, jv v, const char *spec, size_t sn) {
    if (sn == 0) {
        if (jv_tostr(b, v) < 0) return jr_fail(r, "value nested too deeply");
        return 0;
    }
    fspec f;
    if (parse_spec(r, spec, sn, &f) < 0) return -1;
    if (f.zero && !f.align) { f.fill = '0'; f.align = '='; }
    char tmp[512], fmt[32];
    if (v.type == JV_STR) {
        if (f.type && f.type != 's') return jr_fail(r, "Unknown format code '%c' for object of type 'str'", f.type);
        size_t len = jv_sn(v);
        if (f.prec >= 0) len = ju_cp_offset(jv_sp(v), jv_sn(v), (size_t)f.prec);
        put_padded(b, jv_sp(v), len, &f, '<');
        return 0;
    }
    if (jv_is_intlike(v) && (!f.type || strchr("dboxXcn", f.type))) {
        long long x = (long long)jv_as_int(v);
        char t = f.type ? f.type : 'd';
        if (f.prec >= 0) return jr_fail(r, "Precision not allowed in integer format specifier");
        if (t == 'c') {
            char u[4];
            if (x < 0 || x > 0x10ffff) return jr_fail(r, "%%c arg not in range(0x110000)");
            put_padded(b, u, ju_put(u, (uint32_t)x), &f, '>');
            return 0;
        }
        unsigned long long ux = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
        char digits[80];
        size_t nd = 0;
        int base = t == 'b' ? 2 : t == 'o' ? 8 : (t == 'x' || t == 'X') ? 16 : 10;
        do { int d = (int)(ux % (unsigned)base); digits[nd++] = (char)(d < 10 ? '0' + d : (t == 'X' ? 'A' : 'a') + d - 10); ux /= (unsigned)base; } while (ux);
        size_t o = 0;
        if (x < 0) tmp[o++] = '-';
        else if (f.sign == '+') tmp[o++] = '+';
        else if (f.sign == ' ') tmp[o++] = ' ';
        if (f.alt && base != 10) { tmp[o++] = '0'; tmp[o++] = t == 'b' ? 'b' : t == 'o' ? 'o' : t; }
        for (size_t i = nd; i-- > 0;) {
            tmp[o++] = digits[i];
            if (f.comma && base == 10 && i && i % 3 == 0) tmp[o++] = ',';
        }
        put_padded(b, tmp, o, &f, '>');
        return 0;
    }
    if (jv_is_num(v)) {
        double x = jv_as_float(v);
        char t = f.type ? f.type : 'g';
        if (!strchr("eEfFgGn%", t)) return jr_fail(r, "Unknown format code '%c' for object of type 'float'", t);
        if (!f.type && f.prec < 0) {
            char rep[64];
            ju_float_repr(x, rep, sizeof rep);
            if (f.sign == '+' && x >= 0) { snprintf(tmp, sizeof tmp, "+%s", rep); put_padded(b, tmp, strlen(tmp), &f, '>'); }
            else put_padded(b, rep, strlen(rep), &f, '>');
            return 0;
        }
        int prec = f.prec >= 0 ? (int)f.prec : 6;
        if (t == '%') { x *= 100; t = 'f'; }
        if (t == 'n') t = 'g';
        snprintf(fmt, sizeof fmt, "%%%s%s.*%c", f.sign == '+' ? "+" : f.sign == ' ' ? " " : "", f.alt ? "#" : "", t);
        snprintf(tmp, sizeof tmp - 2, fmt, prec, x);
        if (f.type == '%') strcat(tmp, "%");
        put_padded(b, tmp, strlen(tmp), &f, '>');
        return 0;
    }
    return jr_fail(r, "unsupported format string passed to %s.__format__", jv_typename(v));
}

static int resolve_field(jr *r, const char *s, size_t n, jcall *c, int *mode, size_t *auto_idx, jv *out) {
    size_t i = 0;
    while (i < n && s[i] != '.' && s[i] != '[') i++;
    jv cur;
    if (i == 0) {
        if (*mode == 2) return jr_fail(r, "cannot switch from manual field specification to automatic field numbering");
        *mode = 1;
        if (*auto_idx >= c->npos) return jr_fail(r, "Replacement index %zu out of range for positional args tuple", *auto_idx);
        cur = jv_ref(c->pos[(*auto_idx)++]);
    } else if (s[0] >= '0' && s[0] <= '9') {
        if (*mode == 1) return jr_fail(r, "cannot switch from automatic field numbering to manual field specification");
        *mode = 2;
        size_t idx = 0;
        for (size_t k = 0; k < i; k++) {
            if (s[k] < '0' || s[k] > '9') return jr_fail(r, "invalid field name");
            idx = idx * 10 + (size_t)(s[k] - '0');
            if (idx > 1000000) return jr_fail(r, "Too many decimal digits in format string");
        }
        if (idx >= c->npos) return jr_fail(r, "Replacement index %zu out of range for positional args tuple", idx);
        cur = jv_ref(c->pos[idx]);
    } else {
        size_t k;
        for (k = 0; k < c->nkw; k++)
            if (jv_sn(c->kwn[k]) == i && memcmp(jv_sp(c->kwn[k]), s, i) == 0) break;
        if (k == c->nkw) return jr_fail(r, "KeyError: '%.*s'", (int)(i > 100 ? 100 : i), s);
        cur = jv_ref(c->kwv[k]);
    }
    while (i < n) {
        jv next;
        int rc;
        if (s[i] == '.') {
            size_t st = ++i;
            while (i < n && s[i] != '.' && s[i] != '[') i++;
            if (i == st) { jv_unref(cur); return jr_fail(r, "Empty attribute in format string"); }
            rc = je_getattr(r, cur, s + st, i - st, &next);
        } else {
            size_t st = ++i;
            while (i < n && s[i] != ']') i++;
            if (i >= n) { jv_unref(cur); return jr_fail(r, "Missing ']' in format string"); }
            bool digits = i > st;
            int64_t num = 0;
            for (size_t k = st; k < i && digits; k++) {
                if (s[k] < '0' || s[k] > '9' || num > 1000000000) digits = false;
                else num = num * 10 + (s[k] - '0');
            }
            jv key = digits ? jv_int(num) : jv_str(s + st, i - st);
            rc = je_getitem(r, cur, key, &next);
            jv_unref(key);
            i++;
        }
        jv_unref(cur);
        if (rc < 0) return -1;
        cur = next;
    }
    *out = cur;
    return 0;
}

static int format_into(jr *r, jbuf *b, const char *s, size_t n, jcall *c, int *mode, size_t *auto_idx, int depth) {
    if (depth > 2) return jr_fail(r, "Max string recursion exceeded");
    size_t i = 0;
    while (i < n) {
        char ch = s[i];
        if (ch == '}') {
            if (i + 1 < n && s[i + 1] == '}') { jb_putc(b, '}'); i += 2; continue; }
            return jr_fail(r, "Single '}' encountered in format string");
        }
        if (ch != '{') { jb_putc(b, ch); i++; continue; }
        if (i + 1 < n && s[i + 1] == '{') { jb_putc(b, '{'); i += 2; continue; }
        size_t st = ++i;
        int level = 1;
        while (i < n) {
            if (s[i] == '{') level++;
            else if (s[i] == '}' && --level == 0) break;
            i++;
        }
        if (i >= n) return jr_fail(r, "expected '}' before end of string");
        const char *f = s + st;
        size_t fn = i - st, name_end = 0;
        i++;
        while (name_end < fn && f[name_end] != '!' && f[name_end] != ':') {
            if (f[name_end] == '[') while (name_end < fn && f[name_end] != ']') name_end++;
            if (name_end < fn) name_end++;
        }
        char conv = 0;
        size_t p = name_end;
        if (p < fn && f[p] == '!') {
            if (p + 1 >= fn) return jr_fail(r, "end of string while looking for conversion specifier");
            conv = f[p + 1];
            p += 2;
            if (p < fn && f[p] != ':') return jr_fail(r, "expected ':' after conversion specifier");
        }
        jv v;
        if (resolve_field(r, f, name_end, c, mode, auto_idx, &v) < 0) return -1;
        if (conv) {
            jbuf t = { 0 };
            int rc = 0;
            if (conv == 's') rc = jv_tostr(&t, v);
            else if (conv == 'r' || conv == 'a') rc = jv_repr(&t, v, 0);
            else { jb_free(&t); jv_unref(v); return jr_fail(r, "Unknown conversion specifier %c", conv); }
            jv_unref(v);
            if (rc < 0) { jb_free(&t); return jr_fail(r, "value nested too deeply"); }
            v = jb_take_str(&t);
        }
        const char *spec = p < fn ? f + p + 1 : "";
        size_t sn = p < fn ? fn - p - 1 : 0;
        int rc;
        if (memchr(spec, '{', sn)) {
            jbuf sb = { 0 };
            rc = format_into(r, &sb, spec, sn, c, mode, auto_idx, depth + 1);
            if (rc == 0) rc = format_value(r, b, v, sb.p ? sb.p : "", sb.n);
            jb_free(&sb);
        } else {
            rc = format_value(r, b, v, spec, sn);
        }
        jv_unref(v);
        if (rc < 0) return -1;
    }
    return 0;
}

int jm_str_format(jr *r, jv fmt, jcall *c, jv *out) {
    jbuf b = { 0 };
    int mode = 0;
    size_t auto_idx = 0;
    if (format_into(r, &b, jv_sp(fmt), jv_sn(fmt), c, &mode, &auto_idx, 0) < 0) { jb_free(&b); return -1; }
    *out = jb_take_str(&b);
    return 0;
}
