/*
 * textstream.c - generated tokens -> text that is safe to show while streaming
 * (textstream.h): whole UTF-8 characters only (an invalid sequence becomes one U+FFFD
 * per maximal invalid subpart), a possible stop-string prefix is held back until it is
 * decided, a completed stop string ends the stream and is never shown.  Knows the
 * vocabulary (token pieces and types), nothing of the model's weights or the sampler.
 */
#define _GNU_SOURCE   /* memmem */
#include <string.h>

#include "model.h"
#include "textstream.h"
#include "util.h"

struct colloq_textstream {
    const colloq_model *m;
    char   **stops;
    size_t  *stop_len;
    int      n_stops;
    bool     render_special;
    bool     stopped;
    unsigned char raw[4];      /* an incomplete UTF-8 sequence (its valid prefix) */
    int      n_raw, raw_need;
    char    *pend;             /* valid text not yet emitted (may start a stop string) */
    size_t   n_pend, cap_pend;
    char    *text;             /* everything emitted, NUL-terminated */
    size_t   n_text, cap_text;
    char    *piece;            /* token text scratch */
    int      cap_piece;
    bool     oom;
};

static const char replacement[3] = { '\xef', '\xbf', '\xbd' };   /* U+FFFD */

/* ------------------------------------------------------------------ buffers */

static bool grow(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    char *p = colloq_realloc(*buf, c);
    if (!p) return false;
    *buf = p;
    *cap = c;
    return true;
}

static void pend_add(colloq_textstream *ts, const void *b, size_t n) {
    if (!grow(&ts->pend, &ts->cap_pend, ts->n_pend + n)) { ts->oom = true; return; }
    memcpy(ts->pend + ts->n_pend, b, n);
    ts->n_pend += n;
}

/* Move pend[0..n) to the emitted text; the rest of pend (from skip) stays pending. */
static void emit_pend(colloq_textstream *ts, size_t n, size_t skip) {
    if (!grow(&ts->text, &ts->cap_text, ts->n_text + n + 1)) { ts->oom = true; return; }
    if (n) memcpy(ts->text + ts->n_text, ts->pend, n);
    ts->n_text += n;
    ts->text[ts->n_text] = 0;
    if (skip > ts->n_pend) skip = ts->n_pend;
    if (skip < ts->n_pend) memmove(ts->pend, ts->pend + skip, ts->n_pend - skip);
    ts->n_pend -= skip;
}

/* ------------------------------------------------------------------ UTF-8 */

/* Bytes a sequence starting with lead byte c has (0: c cannot start one). */
static int utf8_need(unsigned char c) {
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) return 2;
    if (c >= 0xe0 && c <= 0xef) return 3;
    if (c >= 0xf0 && c <= 0xf4) return 4;
    return 0;
}

/* Whether c may follow the bytes in raw[0..n) (n >= 1). */
static bool utf8_next_ok(const unsigned char *raw, int n, unsigned char c) {
    if (n == 1) {
        unsigned char lo = 0x80, hi = 0xbf;
        if (raw[0] == 0xe0) lo = 0xa0;
        else if (raw[0] == 0xed) hi = 0x9f;
        else if (raw[0] == 0xf0) lo = 0x90;
        else if (raw[0] == 0xf4) hi = 0x8f;
        return c >= lo && c <= hi;
    }
    return (c & 0xc0) == 0x80;
}

static void decode_bytes(colloq_textstream *ts, const unsigned char *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = b[i];
        if (ts->n_raw) {
            if (utf8_next_ok(ts->raw, ts->n_raw, c)) {
                ts->raw[ts->n_raw++] = c;
                if (ts->n_raw == ts->raw_need) {
                    pend_add(ts, ts->raw, (size_t)ts->n_raw);
                    ts->n_raw = 0;
                }
                continue;
            }
            pend_add(ts, replacement, 3);   /* the incomplete sequence; c starts afresh */
            ts->n_raw = 0;
        }
        int need = utf8_need(c);
        if (need == 1) pend_add(ts, &c, 1);
        else if (need == 0) pend_add(ts, replacement, 3);
        else { ts->raw[0] = c; ts->n_raw = 1; ts->raw_need = need; }
    }
}

/* ------------------------------------------------------------------ stop strings */

/* Earliest complete stop string in pend: its offset, or -1. */
static long find_stop(const colloq_textstream *ts) {
    long best = -1;
    if (!ts->n_pend) return -1;
    for (int i = 0; i < ts->n_stops; i++) {
        const char *p = memmem(ts->pend, ts->n_pend, ts->stops[i], ts->stop_len[i]);
        if (p && (best < 0 || p - ts->pend < best)) best = p - ts->pend;
    }
    return best;
}

/* Longest tail of pend + raw that is a proper prefix of some stop string. */
static size_t held_tail(const colloq_textstream *ts) {
    size_t total = ts->n_pend + (size_t)ts->n_raw, best = 0;
    for (int i = 0; i < ts->n_stops; i++) {
        size_t sl = ts->stop_len[i];
        for (size_t h = sl - 1 < total ? sl - 1 : total; h > best; h--) {
            /* compare the last h bytes of pend+raw with stop[0..h) */
            size_t from = total - h;
            bool eq = true;
            for (size_t k = 0; k < h && eq; k++) {
                size_t at = from + k;
                unsigned char c = at < ts->n_pend ? (unsigned char)ts->pend[at] : ts->raw[at - ts->n_pend];
                eq = c == (unsigned char)ts->stops[i][k];
            }
            if (eq) { best = h; break; }
        }
    }
    return best;
}

/* Emit what is decided; final: nothing more will come. */
static void settle(colloq_textstream *ts, bool final) {
    long at = find_stop(ts);
    if (at >= 0) {
        emit_pend(ts, (size_t)at, ts->n_pend);
        ts->n_raw = 0;
        ts->stopped = true;
        return;
    }
    size_t keep = final ? 0 : held_tail(ts);
    size_t total = ts->n_pend + (size_t)ts->n_raw;
    size_t n = total - keep < ts->n_pend ? total - keep : ts->n_pend;
    if (n) emit_pend(ts, n, n);
}

/* ------------------------------------------------------------------ API */

colloq_textstream *colloq_textstream_new(const colloq_model *m, const char *const *stops, int n_stops,
                                         bool render_special) {
    colloq_textstream *ts = colloq_calloc(1, sizeof *ts);
    if (!ts) return NULL;
    ts->m = m;
    ts->render_special = render_special;
    if (n_stops > 0 && stops) {
        ts->stops = colloq_calloc((size_t)n_stops, sizeof *ts->stops);
        ts->stop_len = colloq_calloc((size_t)n_stops, sizeof *ts->stop_len);
        if (!ts->stops || !ts->stop_len) { colloq_textstream_free(ts); return NULL; }
        for (int i = 0; i < n_stops; i++) {
            size_t len = stops[i] ? strlen(stops[i]) : 0;
            if (!len) continue;                     /* an empty stop string would stop at once */
            char *s = colloq_strdup(stops[i]);
            if (!s) { colloq_textstream_free(ts); return NULL; }
            ts->stops[ts->n_stops] = s;
            ts->stop_len[ts->n_stops++] = len;
        }
    }
    ts->text = colloq_malloc(1);
    if (!ts->text) { colloq_textstream_free(ts); return NULL; }
    ts->text[0] = 0;
    ts->cap_text = 1;
    return ts;
}

void colloq_textstream_free(colloq_textstream *ts) {
    if (!ts) return;
    for (int i = 0; i < ts->n_stops; i++) colloq_free(ts->stops[i]);
    colloq_free(ts->stops);
    colloq_free(ts->stop_len);
    colloq_free(ts->pend);
    colloq_free(ts->text);
    colloq_free(ts->piece);
    colloq_free(ts);
}

void colloq_textstream_reset(colloq_textstream *ts) {
    if (!ts) return;
    ts->stopped = false;
    ts->oom = false;
    ts->n_raw = 0;
    ts->n_pend = 0;
    ts->n_text = 0;
    if (ts->text) ts->text[0] = 0;
}

static int finish_call(colloq_textstream *ts, size_t before, const char **out, size_t *len, bool *stopped) {
    if (out) *out = ts->text + before;
    if (len) *len = ts->n_text - before;
    if (stopped) *stopped = ts->stopped;
    if (ts->oom) {
        ts->oom = false;
        return COLLOQ_ERR_NOMEM;
    }
    return COLLOQ_OK;
}

/* A control token whose own text is a stop string (shown as nothing without render_special). */
static bool is_stop_token(colloq_textstream *ts, colloq_token t) {
    if (ts->render_special || !ts->n_stops || !ts->m || !ts->m->vocab) return false;
    if (colloq_vocab_token_type(ts->m->vocab, t) != CTOK_CONTROL) return false;
    const char *s = colloq_vocab_text(ts->m->vocab, t);
    for (int i = 0; s && i < ts->n_stops; i++)
        if (!strcmp(s, ts->stops[i])) return true;
    return false;
}

int colloq_textstream_push_text(colloq_textstream *ts, const char *bytes, size_t n, const char **out, size_t *len,
                                bool *stopped) {
    if (!ts) return COLLOQ_ERR_ARG;
    size_t before = ts->n_text;
    if (!ts->stopped && n) {
        decode_bytes(ts, (const unsigned char *)bytes, n);
        settle(ts, false);
    }
    return finish_call(ts, before, out, len, stopped);
}

int colloq_textstream_push(colloq_textstream *ts, colloq_token t, const char **out, size_t *len, bool *stopped) {
    if (!ts) return COLLOQ_ERR_ARG;
    size_t before = ts->n_text;
    if (ts->stopped) return finish_call(ts, before, out, len, stopped);
    if (is_stop_token(ts, t)) {
        if (ts->n_raw) { pend_add(ts, replacement, 3); ts->n_raw = 0; }
        settle(ts, true);                  /* a stop inside the held text still wins */
        ts->stopped = true;
        return finish_call(ts, before, out, len, stopped);
    }
    int n = ts->m ? colloq_token_to_piece(ts->m, t, ts->render_special, ts->piece, ts->cap_piece) : 0;
    if (n > ts->cap_piece) {
        char *p = colloq_realloc(ts->piece, (size_t)n);
        if (!p) {
            finish_call(ts, before, out, len, stopped);
            return COLLOQ_ERR_NOMEM;
        }
        ts->piece = p;
        ts->cap_piece = n;
        n = colloq_token_to_piece(ts->m, t, ts->render_special, ts->piece, ts->cap_piece);
    }
    if (n > 0 && n <= ts->cap_piece) {
        decode_bytes(ts, (const unsigned char *)ts->piece, (size_t)n);
        settle(ts, false);
    }
    return finish_call(ts, before, out, len, stopped);
}

int colloq_textstream_flush(colloq_textstream *ts, const char **out, size_t *len) {
    if (!ts) return COLLOQ_ERR_ARG;
    size_t before = ts->n_text;
    if (!ts->stopped) {
        if (ts->n_raw) { pend_add(ts, replacement, 3); ts->n_raw = 0; }
        settle(ts, true);
    }
    return finish_call(ts, before, out, len, NULL);
}

const char *colloq_textstream_text(const colloq_textstream *ts, size_t *len) {
    if (len) *len = ts ? ts->n_text : 0;
    return ts && ts->text ? ts->text : "";
}
