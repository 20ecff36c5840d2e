/*
 * jinja_unicode.c - the Python str semantics templates rely on: UTF-8 decoding,
 * str.isspace / isprintable / splitlines boundaries, upper/lower/title case with
 * Python's multi-character special cases, and repr(float).  Case mappings come from
 * the C library's C.UTF-8 locale (a private locale_t, never the global locale).
 * Must not allocate except through jbuf, nor know templates.
 */
#define _GNU_SOURCE
#include "jinja_internal.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

/* ---- UTF-8 ---- */

uint32_t ju_next(const char *s, size_t n, size_t *i) {
    const unsigned char *p = (const unsigned char *)s + *i;
    size_t left = n - *i;
    uint32_t c = p[0];
    int k = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (c < 0x80 || (size_t)k > left || c < 0xc0) { (*i)++; return c; }
    if (k == 2) c = ((c & 0x1f) << 6) | (p[1] & 0x3f);
    else if (k == 3) c = ((c & 0x0f) << 12) | ((uint32_t)(p[1] & 0x3f) << 6) | (p[2] & 0x3f);
    else c = ((c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3f) << 12) | ((uint32_t)(p[2] & 0x3f) << 6) | (p[3] & 0x3f);
    *i += (size_t)k;
    return c;
}

size_t ju_put(char *o, uint32_t c) {
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xc0 | (c >> 6)); o[1] = (char)(0x80 | (c & 0x3f)); return 2; }
    if (c < 0x10000) {
        o[0] = (char)(0xe0 | (c >> 12)); o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        o[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (c >> 18)); o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3f)); o[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

size_t ju_ncp(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

size_t ju_cp_offset(const char *s, size_t n, size_t cp) {
    size_t i = 0;
    while (cp > 0 && i < n) { ju_next(s, n, &i); cp--; }
    return i;
}

/* ---- classification ---- */

static pthread_once_t loc_once = PTHREAD_ONCE_INIT;
static locale_t loc;

static void loc_init(void) {
    loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    if (!loc) loc = newlocale(LC_CTYPE_MASK, "en_US.UTF-8", (locale_t)0);
}

static locale_t get_loc(void) {
    pthread_once(&loc_once, loc_init);
    return loc;
}

bool ju_isspace(uint32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f);
    return c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
           c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

bool ju_islinebreak(uint32_t c) {
    return c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1e) ||
           c == 0x85 || c == 0x2028 || c == 0x2029;
}

/* Format and separator characters the C library calls printable but Python does not. */
static const uint32_t nonprint[][2] = {
    {0xa0,0xa0}, {0xad,0xad}, {0x600,0x605}, {0x61c,0x61c}, {0x6dd,0x6dd}, {0x70f,0x70f},
    {0x890,0x891}, {0x8e2,0x8e2}, {0x1680,0x1680}, {0x180e,0x180e}, {0x2000,0x200f},
    {0x202a,0x202f}, {0x205f,0x2064}, {0x2066,0x206f}, {0x3000,0x3000}, {0xfeff,0xfeff},
    {0xfff9,0xfffb}, {0x110bd,0x110bd}, {0x110cd,0x110cd}, {0x13430,0x13438},
    {0x1bca0,0x1bca3}, {0x1d173,0x1d17a}, {0xe0001,0xe0001}, {0xe0020,0xe007f},
};

bool ju_isprintable(uint32_t c) {
    if (c < 0x80) return c >= 0x20 && c < 0x7f;
    if ((c >= 0xe000 && c <= 0xf8ff) || c >= 0xf0000) return false;   /* private use */
    if (c >= 0xd800 && c <= 0xdfff) return false;
    for (size_t i = 0; i < sizeof nonprint / sizeof nonprint[0]; i++)
        if (c >= nonprint[i][0] && c <= nonprint[i][1]) return false;
    locale_t l = get_loc();
    if (!l) return false;
    return iswprint_l((wint_t)c, l) != 0;
}

bool ju_isalpha(uint32_t c) {
    if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    locale_t l = get_loc();
    return l && iswalpha_l((wint_t)c, l);
}

bool ju_isdigit(uint32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    locale_t l = get_loc();
    return l && iswdigit_l((wint_t)c, l);
}

bool ju_isalnum(uint32_t c) { return ju_isalpha(c) || ju_isdigit(c); }

bool ju_isupper(uint32_t c) {
    if (c < 0x80) return c >= 'A' && c <= 'Z';
    locale_t l = get_loc();
    return l && iswupper_l((wint_t)c, l);
}

bool ju_islower(uint32_t c) {
    if (c < 0x80) return c >= 'a' && c <= 'z';
    locale_t l = get_loc();
    return l && iswlower_l((wint_t)c, l);
}

bool ju_iscased(uint32_t c) {
    if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    locale_t l = get_loc();
    if (!l) return false;
    return iswupper_l((wint_t)c, l) || iswlower_l((wint_t)c, l) ||
           towupper_l((wint_t)c, l) != (wint_t)c || towlower_l((wint_t)c, l) != (wint_t)c;
}

/* ---- case mapping ---- */

/* Code points whose Python upper/lower/title is not the simple one-to-one mapping
 * (multi-character results, and title case that differs from upper case). */
static const struct { uint32_t cp; const char *upper, *lower, *title; } special[] = {
    { 0x00df, "\x53" "\x53", NULL, "\x53" "\x73" },
    { 0x0130, NULL, "\x69" "\xcc\x87", NULL },
    { 0x0149, "\xca\xbc" "\x4e", NULL, "\xca\xbc" "\x4e" },
    { 0x01c4, NULL, NULL, "\xc7\x85" },
    { 0x01c5, NULL, NULL, "\xc7\x85" },
    { 0x01c6, NULL, NULL, "\xc7\x85" },
    { 0x01c7, NULL, NULL, "\xc7\x88" },
    { 0x01c8, NULL, NULL, "\xc7\x88" },
    { 0x01c9, NULL, NULL, "\xc7\x88" },
    { 0x01ca, NULL, NULL, "\xc7\x8b" },
    { 0x01cb, NULL, NULL, "\xc7\x8b" },
    { 0x01cc, NULL, NULL, "\xc7\x8b" },
    { 0x01f0, "\x4a" "\xcc\x8c", NULL, "\x4a" "\xcc\x8c" },
    { 0x01f1, NULL, NULL, "\xc7\xb2" },
    { 0x01f2, NULL, NULL, "\xc7\xb2" },
    { 0x01f3, NULL, NULL, "\xc7\xb2" },
    { 0x0390, "\xce\x99" "\xcc\x88" "\xcc\x81", NULL, "\xce\x99" "\xcc\x88" "\xcc\x81" },
    { 0x03b0, "\xce\xa5" "\xcc\x88" "\xcc\x81", NULL, "\xce\xa5" "\xcc\x88" "\xcc\x81" },
    { 0x0587, "\xd4\xb5" "\xd5\x92", NULL, "\xd4\xb5" "\xd6\x82" },
    { 0x10d0, NULL, NULL, "\xe1\x83\x90" },
    { 0x10d1, NULL, NULL, "\xe1\x83\x91" },
    { 0x10d2, NULL, NULL, "\xe1\x83\x92" },
    { 0x10d3, NULL, NULL, "\xe1\x83\x93" },
    { 0x10d4, NULL, NULL, "\xe1\x83\x94" },
    { 0x10d5, NULL, NULL, "\xe1\x83\x95" },
    { 0x10d6, NULL, NULL, "\xe1\x83\x96" },
    { 0x10d7, NULL, NULL, "\xe1\x83\x97" },
    { 0x10d8, NULL, NULL, "\xe1\x83\x98" },
    { 0x10d9, NULL, NULL, "\xe1\x83\x99" },
    { 0x10da, NULL, NULL, "\xe1\x83\x9a" },
    { 0x10db, NULL, NULL, "\xe1\x83\x9b" },
    { 0x10dc, NULL, NULL, "\xe1\x83\x9c" },
    { 0x10dd, NULL, NULL, "\xe1\x83\x9d" },
    { 0x10de, NULL, NULL, "\xe1\x83\x9e" },
    { 0x10df, NULL, NULL, "\xe1\x83\x9f" },
    { 0x10e0, NULL, NULL, "\xe1\x83\xa0" },
    { 0x10e1, NULL, NULL, "\xe1\x83\xa1" },
    { 0x10e2, NULL, NULL, "\xe1\x83\xa2" },
    { 0x10e3, NULL, NULL, "\xe1\x83\xa3" },
    { 0x10e4, NULL, NULL, "\xe1\x83\xa4" },
    { 0x10e5, NULL, NULL, "\xe1\x83\xa5" },
    { 0x10e6, NULL, NULL, "\xe1\x83\xa6" },
    { 0x10e7, NULL, NULL, "\xe1\x83\xa7" },
    { 0x10e8, NULL, NULL, "\xe1\x83\xa8" },
    { 0x10e9, NULL, NULL, "\xe1\x83\xa9" },
    { 0x10ea, NULL, NULL, "\xe1\x83\xaa" },
    { 0x10eb, NULL, NULL, "\xe1\x83\xab" },
    { 0x10ec, NULL, NULL, "\xe1\x83\xac" },
    { 0x10ed, NULL, NULL, "\xe1\x83\xad" },
    { 0x10ee, NULL, NULL, "\xe1\x83\xae" },
    { 0x10ef, NULL, NULL, "\xe1\x83\xaf" },
    { 0x10f0, NULL, NULL, "\xe1\x83\xb0" },
    { 0x10f1, NULL, NULL, "\xe1\x83\xb1" },
    { 0x10f2, NULL, NULL, "\xe1\x83\xb2" },
    { 0x10f3, NULL, NULL, "\xe1\x83\xb3" },
    { 0x10f4, NULL, NULL, "\xe1\x83\xb4" },
    { 0x10f5, NULL, NULL, "\xe1\x83\xb5" },
    { 0x10f6, NULL, NULL, "\xe1\x83\xb6" },
    { 0x10f7, NULL, NULL, "\xe1\x83\xb7" },
    { 0x10f8, NULL, NULL, "\xe1\x83\xb8" },
    { 0x10f9, NULL, NULL, "\xe1\x83\xb9" },
    { 0x10fa, NULL, NULL, "\xe1\x83\xba" },
    { 0x10fd, NULL, NULL, "\xe1\x83\xbd" },
    { 0x10fe, NULL, NULL, "\xe1\x83\xbe" },
    { 0x10ff, NULL, NULL, "\xe1\x83\xbf" },
    { 0x1e96, "\x48" "\xcc\xb1", NULL, "\x48" "\xcc\xb1" },
    { 0x1e97, "\x54" "\xcc\x88", NULL, "\x54" "\xcc\x88" },
    { 0x1e98, "\x57" "\xcc\x8a", NULL, "\x57" "\xcc\x8a" },
    { 0x1e99, "\x59" "\xcc\x8a", NULL, "\x59" "\xcc\x8a" },
    { 0x1e9a, "\x41" "\xca\xbe", NULL, "\x41" "\xca\xbe" },
    { 0x1f50, "\xce\xa5" "\xcc\x93", NULL, "\xce\xa5" "\xcc\x93" },
    { 0x1f52, "\xce\xa5" "\xcc\x93" "\xcc\x80", NULL, "\xce\xa5" "\xcc\x93" "\xcc\x80" },
    { 0x1f54, "\xce\xa5" "\xcc\x93" "\xcc\x81", NULL, "\xce\xa5" "\xcc\x93" "\xcc\x81" },
    { 0x1f56, "\xce\xa5" "\xcc\x93" "\xcd\x82", NULL, "\xce\xa5" "\xcc\x93" "\xcd\x82" },
    { 0x1f80, "\xe1\xbc\x88" "\xce\x99", NULL, NULL },
    { 0x1f81, "\xe1\xbc\x89" "\xce\x99", NULL, NULL },
    { 0x1f82, "\xe1\xbc\x8a" "\xce\x99", NULL, NULL },
    { 0x1f83, "\xe1\xbc\x8b" "\xce\x99", NULL, NULL },
    { 0x1f84, "\xe1\xbc\x8c" "\xce\x99", NULL, NULL },
    { 0x1f85, "\xe1\xbc\x8d" "\xce\x99", NULL, NULL },
    { 0x1f86, "\xe1\xbc\x8e" "\xce\x99", NULL, NULL },
    { 0x1f87, "\xe1\xbc\x8f" "\xce\x99", NULL, NULL },
    { 0x1f88, "\xe1\xbc\x88" "\xce\x99", NULL, NULL },
    { 0x1f89, "\xe1\xbc\x89" "\xce\x99", NULL, NULL },
    { 0x1f8a, "\xe1\xbc\x8a" "\xce\x99", NULL, NULL },
    { 0x1f8b, "\xe1\xbc\x8b" "\xce\x99", NULL, NULL },
    { 0x1f8c, "\xe1\xbc\x8c" "\xce\x99", NULL, NULL },
    { 0x1f8d, "\xe1\xbc\x8d" "\xce\x99", NULL, NULL },
    { 0x1f8e, "\xe1\xbc\x8e" "\xce\x99", NULL, NULL },
    { 0x1f8f, "\xe1\xbc\x8f" "\xce\x99", NULL, NULL },
    { 0x1f90, "\xe1\xbc\xa8" "\xce\x99", NULL, NULL },
    { 0x1f91, "\xe1\xbc\xa9" "\xce\x99", NULL, NULL },
    { 0x1f92, "\xe1\xbc\xaa" "\xce\x99", NULL, NULL },
    { 0x1f93, "\xe1\xbc\xab" "\xce\x99", NULL, NULL },
    { 0x1f94, "\xe1\xbc\xac" "\xce\x99", NULL, NULL },
    { 0x1f95, "\xe1\xbc\xad" "\xce\x99", NULL, NULL },
    { 0x1f96, "\xe1\xbc\xae" "\xce\x99", NULL, NULL },
    { 0x1f97, "\xe1\xbc\xaf" "\xce\x99", NULL, NULL },
    { 0x1f98, "\xe1\xbc\xa8" "\xce\x99", NULL, NULL },
    { 0x1f99, "\xe1\xbc\xa9" "\xce\x99", NULL, NULL },
    { 0x1f9a, "\xe1\xbc\xaa" "\xce\x99", NULL, NULL },
    { 0x1f9b, "\xe1\xbc\xab" "\xce\x99", NULL, NULL },
    { 0x1f9c, "\xe1\xbc\xac" "\xce\x99", NULL, NULL },
    { 0x1f9d, "\xe1\xbc\xad" "\xce\x99", NULL, NULL },
    { 0x1f9e, "\xe1\xbc\xae" "\xce\x99", NULL, NULL },
    { 0x1f9f, "\xe1\xbc\xaf" "\xce\x99", NULL, NULL },
    { 0x1fa0, "\xe1\xbd\xa8" "\xce\x99", NULL, NULL },
    { 0x1fa1, "\xe1\xbd\xa9" "\xce\x99", NULL, NULL },
    { 0x1fa2, "\xe1\xbd\xaa" "\xce\x99", NULL, NULL },
    { 0x1fa3, "\xe1\xbd\xab" "\xce\x99", NULL, NULL },
    { 0x1fa4, "\xe1\xbd\xac" "\xce\x99", NULL, NULL },
    { 0x1fa5, "\xe1\xbd\xad" "\xce\x99", NULL, NULL },
    { 0x1fa6, "\xe1\xbd\xae" "\xce\x99", NULL, NULL },
    { 0x1fa7, "\xe1\xbd\xaf" "\xce\x99", NULL, NULL },
    { 0x1fa8, "\xe1\xbd\xa8" "\xce\x99", NULL, NULL },
    { 0x1fa9, "\xe1\xbd\xa9" "\xce\x99", NULL, NULL },
    { 0x1faa, "\xe1\xbd\xaa" "\xce\x99", NULL, NULL },
    { 0x1fab, "\xe1\xbd\xab" "\xce\x99", NULL, NULL },
    { 0x1fac, "\xe1\xbd\xac" "\xce\x99", NULL, NULL },
    { 0x1fad, "\xe1\xbd\xad" "\xce\x99", NULL, NULL },
    { 0x1fae, "\xe1\xbd\xae" "\xce\x99", NULL, NULL },
    { 0x1faf, "\xe1\xbd\xaf" "\xce\x99", NULL, NULL },
    { 0x1fb2, "\xe1\xbe\xba" "\xce\x99", NULL, "\xe1\xbe\xba" "\xcd\x85" },
    { 0x1fb3, "\xce\x91" "\xce\x99", NULL, NULL },
    { 0x1fb4, "\xce\x86" "\xce\x99", NULL, "\xce\x86" "\xcd\x85" },
    { 0x1fb6, "\xce\x91" "\xcd\x82", NULL, "\xce\x91" "\xcd\x82" },
    { 0x1fb7, "\xce\x91" "\xcd\x82" "\xce\x99", NULL, "\xce\x91" "\xcd\x82" "\xcd\x85" },
    { 0x1fbc, "\xce\x91" "\xce\x99", NULL, NULL },
    { 0x1fc2, "\xe1\xbf\x8a" "\xce\x99", NULL, "\xe1\xbf\x8a" "\xcd\x85" },
    { 0x1fc3, "\xce\x97" "\xce\x99", NULL, NULL },
    { 0x1fc4, "\xce\x89" "\xce\x99", NULL, "\xce\x89" "\xcd\x85" },
    { 0x1fc6, "\xce\x97" "\xcd\x82", NULL, "\xce\x97" "\xcd\x82" },
    { 0x1fc7, "\xce\x97" "\xcd\x82" "\xce\x99", NULL, "\xce\x97" "\xcd\x82" "\xcd\x85" },
    { 0x1fcc, "\xce\x97" "\xce\x99", NULL, NULL },
    { 0x1fd2, "\xce\x99" "\xcc\x88" "\xcc\x80", NULL, "\xce\x99" "\xcc\x88" "\xcc\x80" },
    { 0x1fd3, "\xce\x99" "\xcc\x88" "\xcc\x81", NULL, "\xce\x99" "\xcc\x88" "\xcc\x81" },
    { 0x1fd6, "\xce\x99" "\xcd\x82", NULL, "\xce\x99" "\xcd\x82" },
    { 0x1fd7, "\xce\x99" "\xcc\x88" "\xcd\x82", NULL, "\xce\x99" "\xcc\x88" "\xcd\x82" },
    { 0x1fe2, "\xce\xa5" "\xcc\x88" "\xcc\x80", NULL, "\xce\xa5" "\xcc\x88" "\xcc\x80" },
    { 0x1fe3, "\xce\xa5" "\xcc\x88" "\xcc\x81", NULL, "\xce\xa5" "\xcc\x88" "\xcc\x81" },
    { 0x1fe4, "\xce\xa1" "\xcc\x93", NULL, "\xce\xa1" "\xcc\x93" },
    { 0x1fe6, "\xce\xa5" "\xcd\x82", NULL, "\xce\xa5" "\xcd\x82" },
    { 0x1fe7, "\xce\xa5" "\xcc\x88" "\xcd\x82", NULL, "\xce\xa5" "\xcc\x88" "\xcd\x82" },
    { 0x1ff2, "\xe1\xbf\xba" "\xce\x99", NULL, "\xe1\xbf\xba" "\xcd\x85" },
    { 0x1ff3, "\xce\xa9" "\xce\x99", NULL, NULL },
    { 0x1ff4, "\xce\x8f" "\xce\x99", NULL, "\xce\x8f" "\xcd\x85" },
    { 0x1ff6, "\xce\xa9" "\xcd\x82", NULL, "\xce\xa9" "\xcd\x82" },
    { 0x1ff7, "\xce\xa9" "\xcd\x82" "\xce\x99", NULL, "\xce\xa9" "\xcd\x82" "\xcd\x85" },
    { 0x1ffc, "\xce\xa9" "\xce\x99", NULL, NULL },
    { 0xfb00, "\x46" "\x46", NULL, "\x46" "\x66" },
    { 0xfb01, "\x46" "\x49", NULL, "\x46" "\x69" },
    { 0xfb02, "\x46" "\x4c", NULL, "\x46" "\x6c" },
    { 0xfb03, "\x46" "\x46" "\x49", NULL, "\x46" "\x66" "\x69" },
    { 0xfb04, "\x46" "\x46" "\x4c", NULL, "\x46" "\x66" "\x6c" },
    { 0xfb05, "\x53" "\x54", NULL, "\x53" "\x74" },
    { 0xfb06, "\x53" "\x54", NULL, "\x53" "\x74" },
    { 0xfb13, "\xd5\x84" "\xd5\x86", NULL, "\xd5\x84" "\xd5\xb6" },
    { 0xfb14, "\xd5\x84" "\xd4\xb5", NULL, "\xd5\x84" "\xd5\xa5" },
    { 0xfb15, "\xd5\x84" "\xd4\xbb", NULL, "\xd5\x84" "\xd5\xab" },
    { 0xfb16, "\xd5\x8e" "\xd5\x86", NULL, "\xd5\x8e" "\xd5\xb6" },
    { 0xfb17, "\xd5\x84" "\xd4\xbd", NULL, "\xd5\x84" "\xd5\xad" },
};

static const char *special_map(uint32_t c, int mode) {
    if (c < 0xdf) return NULL;
    size_t lo = 0, hi = sizeof special / sizeof special[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (special[mid].cp == c) {
            return mode == JU_UPPER ? special[mid].upper :
                   mode == JU_LOWER ? special[mid].lower : special[mid].title;
        }
        if (special[mid].cp < c) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

static uint32_t simple_map(uint32_t c, int mode) {
    if (c < 0x80) {
        if (mode == JU_LOWER) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
        return (c >= 'a' && c <= 'z') ? c - 32 : c;
    }
    locale_t l = get_loc();
    if (!l) return c;
    return (uint32_t)(mode == JU_LOWER ? towlower_l((wint_t)c, l) : towupper_l((wint_t)c, l));
}

bool ju_case1(jbuf *b, uint32_t c, int mode) {
    const char *sp = special_map(c, mode);
    if (sp) return jb_puts(b, sp);
    char tmp[4];
    return jb_put(b, tmp, ju_put(tmp, simple_map(c, mode)));
}

static bool case_ignorable(uint32_t c) {
    return c == '\'' || c == '.' || c == ':' || c == '^' || c == '`' || c == 0xad ||
           (c >= 0x300 && c <= 0x36f) || c == 0x2019;
}

/* Python's final-sigma rule for lower(): a capital sigma ending a word. */
static bool final_sigma(const char *s, size_t n, size_t at, size_t after) {
    size_t i = at;
    bool before = false;
    while (i > 0) {
        size_t j = i - 1;
        while (j > 0 && ((unsigned char)s[j] & 0xc0) == 0x80) j--;
        size_t k = j;
        uint32_t c = ju_next(s, n, &k);
        if (case_ignorable(c)) { i = j; continue; }
        before = ju_iscased(c);
        break;
    }
    if (!before) return false;
    size_t k = after;
    while (k < n) {
        uint32_t c = ju_next(s, n, &k);
        if (case_ignorable(c)) continue;
        return !ju_iscased(c);
    }
    return true;
}

bool ju_case(jbuf *b, const char *s, size_t n, int mode) {
    size_t i = 0;
    bool prev_cased = false, first = true;
    while (i < n) {
        size_t at = i;
        uint32_t c = ju_next(s, n, &i);
        int m;
        switch (mode) {
        case JU_UPPER: m = JU_UPPER; break;
        case JU_LOWER: m = JU_LOWER; break;
        case JU_TITLE: m = prev_cased ? JU_LOWER : JU_TITLE; break;
        case JU_CAPITALIZE: m = first ? JU_TITLE : JU_LOWER; break;
        default: m = ju_isupper(c) ? JU_LOWER : ju_islower(c) ? JU_UPPER : -1; break;
        }
        prev_cased = ju_iscased(c);
        first = false;
        if (m < 0) { if (!jb_put(b, s + at, i - at)) return false; continue; }
        if (m == JU_LOWER && c == 0x3a3) {
            if (!jb_puts(b, final_sigma(s, n, at, i) ? "\xcf\x82" : "\xcf\x83")) return false;
            continue;
        }
        if (!ju_case1(b, c, m)) return false;
    }
    return true;
}

/* ---- repr(float): the shortest digits that read back exactly ---- */

void ju_float_repr(double x, char *buf, size_t cap) {
    if (x != x) { snprintf(buf, cap, "nan"); return; }
    if (isinf(x)) { snprintf(buf, cap, x > 0 ? "inf" : "-inf"); return; }
    if (x == 0) { snprintf(buf, cap, signbit(x) ? "-0.0" : "0.0"); return; }
    char tmp[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, x);
        if (strtod(tmp, NULL) == x) break;
    }
    /* tmp = [-]d[.ddd]e[+-]XX */
    char digits[24];
    size_t nd = 0;
    const char *p = tmp;
    bool neg = false;
    if (*p == '-') { neg = true; p++; }
    for (; *p && *p != 'e' && nd < sizeof digits - 1; p++) if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    if (nd == 0) digits[nd++] = '0';
    int e = *p == 'e' ? atoi(p + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    char out[64];
    size_t o = 0;
    if (neg) out[o++] = '-';
    if (e < -4 || e >= 16) {
        out[o++] = digits[0];
        if (nd > 1) { out[o++] = '.'; for (size_t i = 1; i < nd; i++) out[o++] = digits[i]; }
        o += (size_t)snprintf(out + o, sizeof out - o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    } else if (e < 0) {
        out[o++] = '0'; out[o++] = '.';
        for (int i = 0; i < -e - 1; i++) out[o++] = '0';
        for (size_t i = 0; i < nd; i++) out[o++] = digits[i];
    } else {
        for (int i = 0; i <= e; i++) out[o++] = (size_t)i < nd ? digits[i] : '0';
        out[o++] = '.';
        if ((size_t)e + 1 < nd) for (size_t i = (size_t)e + 1; i < nd; i++) out[o++] = digits[i];
        else out[o++] = '0';
    }
    out[o] = 0;
    snprintf(buf, cap, "%s", out);
}
