/*
 * redact_detect.c - the built-in personal-data detectors: mainland-China mobile and
 * international phone numbers, bank cards (Luhn), PRC resident ID numbers (region,
 * birth date, ISO 7064 MOD 11-2), e-mail and IPv4 addresses.  Each answers for one start
 * position only and says "need more" whenever unread text could change its answer.
 * Must not allocate, keep state, or look at text before x->floor.
 */
#include "redact_internal.h"

#include <string.h>

/* Byte at p, or -1 past the end of a final text.  Past the end of a text that may still
 * grow, the detector cannot decide yet: return RD_MORE from the caller. */
#define GET(c, p)                                           \
    do {                                                    \
        size_t p_ = (p);                                    \
        if (p_ >= x->n) {                                   \
            if (!x->final) return RD_MORE;                  \
            (c) = -1;                                       \
        } else {                                            \
            (c) = x->t[p_];                                 \
        }                                                   \
    } while (0)

static inline bool is_digit(int c) { return c >= '0' && c <= '9'; }
static inline bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static inline bool is_sep(int c) { return c == ' ' || c == '-'; }

/* Byte k positions before i, or -1 when that lies before the floor or the text. */
static int before(const rd_text *x, size_t i, size_t k) {
    if (i < k || i - k < x->floor) return -1;
    return x->t[i - k];
}

bool rd_luhn_ok(const char *d, size_t n) {
    int sum = 0;
    for (size_t k = 0; k < n; k++) {
        int v = d[n - 1 - k] - '0';
        if (k & 1) { v *= 2; if (v > 9) v -= 9; }
        sum += v;
    }
    return sum % 10 == 0;
}

/* ---- mainland-China mobile: [+86|0086|86][sep] 1[3-9]d [sep] dddd [sep] dddd ---- */

static rd_result det_phone_cn(const rd_text *x, size_t i, size_t *end) {
    int c, c2;
    GET(c, i);
    if (c != '+' && c != '0' && c != '8' && c != '1') return RD_NONE;
    if (is_digit(before(x, i, 1))) return RD_NONE;
    size_t p = i;
    if (c != '1') {                        /* country prefix */
        static const char *const pre[] = { "+86", "0086", "86" };
        const char *want = c == '+' ? pre[0] : c == '0' ? pre[1] : pre[2];
        for (size_t k = 1; want[k]; k++) {
            GET(c2, p + k);
            if (c2 != want[k]) return RD_NONE;
        }
        p += strlen(want);
        GET(c2, p);
        if (is_sep(c2)) p++;
    }
    GET(c, p);
    if (c != '1') return RD_NONE;
    GET(c, p + 1);
    if (c < '3' || c > '9') return RD_NONE;
    GET(c, p + 2);
    if (!is_digit(c)) return RD_NONE;
    p += 3;
    for (int g = 0; g < 2; g++) {          /* two groups of four */
        GET(c, p);
        if (is_sep(c)) p++;
        for (int k = 0; k < 4; k++, p++) {
            GET(c, p);
            if (!is_digit(c)) return RD_NONE;
        }
    }
    GET(c, p);
    if (is_digit(c)) return RD_NONE;       /* a longer number, not a phone */
    *end = p;
    return RD_MATCH;
}

/* ---- international: '+' then digit groups split by single ' ', '-', '.' or "(ddd)";
 * 7..15 digits (E.164); the match ends at the last group boundary within 15 digits ---- */

static rd_result det_phone_intl(const rd_text *x, size_t i, size_t *end) {
    int c, c2;
    GET(c, i);
    if (c != '+') return RD_NONE;
    if (is_digit(before(x, i, 1))) return RD_NONE;
    GET(c, i + 1);
    if (!is_digit(c)) return RD_NONE;
    size_t p = i + 1, best = 0;
    int digits = 0;
    for (;;) {
        GET(c, p);
        if (c == '(') {                    /* "(0)", "(415)": 1..4 digits in parentheses */
            int k = 0;
            for (;;) {
                GET(c2, p + 1 + (size_t)k);
                if (!is_digit(c2) || k == 4) break;
                k++;
            }
            if (k == 0 || c2 != ')') break;
            digits += k;
            if (digits > 15) break;
            p += (size_t)k + 2;
        } else if (is_digit(c)) {
            while (is_digit(c)) {
                if (++digits > 15) break;
                p++;
                GET(c, p);
            }
            if (digits > 15) break;
        } else {
            break;
        }
        if (digits >= 7) best = p;
        GET(c, p);
        if (c == ' ' || c == '-' || c == '.') {
            GET(c2, p + 1);
            if (!is_digit(c2) && c2 != '(') break;
            p++;
        } else if (c != '(' && !is_digit(c)) {
            break;
        }
    }
    if (!best) return RD_NONE;
    *end = best;
    return RD_MATCH;
}

/* ---- bank card: 13..19 digits, optionally in groups (>= 3 digits each) split by single
 * spaces or dashes, starting a digit run; longest Luhn-valid prefix at a group end ---- */

static rd_result det_card(const rd_text *x, size_t i, size_t *end) {
    int c, c2;
    GET(c, i);
    if (!is_digit(c)) return RD_NONE;
    int b1 = before(x, i, 1);
    if (is_digit(b1) || (is_sep(b1) && is_digit(before(x, i, 2)))) return RD_NONE;
    char d[20];
    size_t p = i, best = 0, total = 0;
    for (;;) {
        size_t k = 0;
        GET(c, p);
        while (is_digit(c)) {
            if (total + k == 19) return best ? (*end = best, RD_MATCH) : RD_NONE;
            d[total + k] = (char)c;
            k++;
            p++;
            GET(c, p);
        }
        if (k < 3) break;                  /* too short a group: the card ended before it */
        total += k;
        if (total >= 13 && rd_luhn_ok(d, total)) best = p;
        if (!is_sep(c)) break;
        GET(c2, p + 1);
        if (!is_digit(c2)) break;
        p++;
    }
    if (!best) return RD_NONE;
    *end = best;
    return RD_MATCH;
}

/* ---- PRC resident ID: 6 region digits, 8 birth-date digits, 3 digits, check char;
 * optional single space or dash between the 6-8-4 groups ---- */

static bool region_ok(int a, int b) {
    int r = a * 10 + b;
    return (r >= 11 && r <= 15) || (r >= 21 && r <= 23) || (r >= 31 && r <= 37) ||
           (r >= 41 && r <= 46) || (r >= 50 && r <= 54) || (r >= 61 && r <= 65) ||
           r == 71 || r == 81 || r == 82 || r == 83 || r == 91;
}

static bool date_ok(const char *s) {
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[4] - '0') * 10 + (s[5] - '0');
    int d = (s[6] - '0') * 10 + (s[7] - '0');
    static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (y < 1900 || y > 2099 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1]) return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return !(m == 2 && d == 29 && !leap);
}

bool rd_cn_id_ok(const char *s) {
    static const int w[17] = { 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2 };
    static const char check[] = "10X98765432";
    int sum = 0;
    for (int k = 0; k < 17; k++) {
        if (!is_digit(s[k])) return false;
        sum += (s[k] - '0') * w[k];
    }
    char last = s[17] == 'x' ? 'X' : s[17];
    return last == check[sum % 11] && region_ok(s[0] - '0', s[1] - '0') && date_ok(s + 6);
}

static rd_result det_cn_id(const rd_text *x, size_t i, size_t *end) {
    int c;
    GET(c, i);
    if (c < '1' || c > '9') return RD_NONE;
    if (is_digit(before(x, i, 1))) return RD_NONE;
    char id[18];
    size_t p = i;
    int n = 0;
    static const int group_end[2] = { 6, 14 };
    for (int g = 0; g < 3; g++) {
        int stop = g < 2 ? group_end[g] : 18;
        while (n < stop) {
            GET(c, p);
            bool ok = is_digit(c) || (n == 17 && (c == 'X' || c == 'x'));
            if (!ok) return RD_NONE;
            id[n++] = (char)c;
            p++;
        }
        if (g < 2) {
            GET(c, p);
            if (is_sep(c)) p++;
        }
    }
    GET(c, p);
    if (is_digit(c) || is_alpha(c)) return RD_NONE;
    if (!rd_cn_id_ok(id)) return RD_NONE;
    *end = p;
    return RD_MATCH;
}

/* ---- e-mail: local part (1..64 of [A-Za-z0-9._%+-], starting a run of such bytes) '@'
 * domain labels; the match ends after the last label that is alphabetic (>= 2 letters) ---- */

static inline bool is_local(int c) {
    return is_digit(c) || is_alpha(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
static inline bool is_label(int c) { return is_digit(c) || is_alpha(c) || c == '-'; }

static rd_result det_email(const rd_text *x, size_t i, size_t *end) {
    int c, c2;
    GET(c, i);
    if (!is_local(c)) return RD_NONE;
    if (is_local(before(x, i, 1))) return RD_NONE;
    size_t p = i;
    while (is_local(c)) {
        if (++p - i > 64) return RD_NONE;
        GET(c, p);
    }
    if (c != '@') return RD_NONE;
    size_t dom = ++p, best = 0;
    int labels = 0;
    for (;;) {
        size_t ls = p;
        bool alpha = true;
        for (;;) {
            GET(c, p);
            if (!is_label(c)) break;
            alpha = alpha && is_alpha(c);
            if (++p - ls > 63 || p - dom > 253) return RD_NONE;
        }
        if (p == ls) break;
        if (labels++ >= 1 && alpha && p - ls >= 2) best = p;
        if (c != '.') break;
        GET(c2, p + 1);
        if (!is_label(c2)) break;
        p++;
    }
    if (!best) return RD_NONE;
    *end = best;
    return RD_MATCH;
}

/* ---- IPv4: four decimal octets 0..255, not part of a longer dotted number ---- */

static rd_result det_ipv4(const rd_text *x, size_t i, size_t *end) {
    int c, c2;
    GET(c, i);
    if (!is_digit(c)) return RD_NONE;
    int b1 = before(x, i, 1);
    if (is_digit(b1) || (b1 == '.' && is_digit(before(x, i, 2)))) return RD_NONE;
    size_t p = i;
    for (int o = 0; o < 4; o++) {
        if (o > 0) {
            GET(c, p);
            if (c != '.') return RD_NONE;
            p++;
        }
        int k = 0, v = 0;
        for (;;) {
            GET(c, p);
            if (!is_digit(c)) break;
            if (++k > 3) return RD_NONE;
            v = v * 10 + (c - '0');
            p++;
        }
        if (k == 0 || v > 255) return RD_NONE;
    }
    GET(c, p);
    if (c == '.') {
        GET(c2, p + 1);
        if (is_digit(c2)) return RD_NONE;
    }
    *end = p;
    return RD_MATCH;
}

const rd_builtin rd_builtins[] = {
    { "phone_cn",   det_phone_cn,   24 },
    { "phone_intl", det_phone_intl, 72 },
    { "bank_card",  det_card,       48 },
    { "cn_id",      det_cn_id,      24 },
    { "email",      det_email,      330 },
    { "ipv4",       det_ipv4,       20 },
    { NULL, NULL, 0 },
};
