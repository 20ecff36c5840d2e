/*
 * conversation.c - multi-turn chat over one sequence (conversation.h).  The cache is
 * described by its tokens and, where known, the length of rendered text each token
 * prefix stands for; a new turn re-renders the conversation and keeps the longest part
 * of the cache that still matches (by text for generated answers, by tokens otherwise),
 * evaluates only the rest, and applies the context-full policy first.  No I/O, no
 * knowledge of formats beyond chat.h.
 */
#include <string.h>

#include <jansson.h>

#include "conversation.h"
#include "model.h"
#include "textstream.h"
#include "util.h"

struct colloq_conv {
    colloq_model          *m;
    colloq_seq            *seq;
    const colloq_chat_fmt *fmt;
    colloq_conv_params     p;
    char                 **stops;         /* format's + user's */
    int                    n_stops;
    colloq_textstream     *ts;
    json_t                *msgs;          /* every message */
    int                    hidden;        /* messages [n_sys, hidden) are out of the prompt */
    int                    n_ctx, n_vocab;
    bool                   space_prefix;  /* the tokenizer puts a space before each plain segment */

    /* The cache: toks[0..n_cached) are the sequence's positions; tok_end[i] >= 0 when
     * toks[0..i] stand exactly for ctext[0..tok_end[i]), else -1. */
    colloq_token          *toks;
    int64_t               *tok_end;
    int                    n_cached;
    char                  *ctext;
    size_t                 n_ctext, cap_ctext;

    float                 *logits;        /* [n_vocab] */
    char                  *piece;
    int                    cap_piece;
};

static const char *const overflow_names[] = { "drop-oldest", "shift", "error" };

int colloq_overflow_from_name(const char *name, colloq_overflow *out) {
    for (int i = 0; name && i < 3; i++)
        if (!strcmp(name, overflow_names[i])) { *out = (colloq_overflow)i; return 0; }
    return -1;
}

const char *colloq_overflow_name(colloq_overflow o) {
    return (unsigned)o < 3 ? overflow_names[o] : "?";
}

colloq_conv_params colloq_conv_default_params(void) {
    colloq_conv_params p = { COLLOQ_OVERFLOW_DROP_OLDEST, -1, 256, NULL, 0 };
    return p;
}

/* ------------------------------------------------------------------ messages */

static const char *role_at(const colloq_conv *c, size_t i) {
    return json_string_value(json_object_get(json_array_get(c->msgs, i), "role"));
}

static int n_system(const colloq_conv *c) {
    int n = 0;
    while ((size_t)n < json_array_size(c->msgs) && role_at(c, (size_t)n) && !strcmp(role_at(c, (size_t)n), "system"))
        n++;
    return n;
}

/* The messages the prompt is rendered from: leading system messages + msgs[hidden..]. */
static json_t *visible(const colloq_conv *c) {
    json_t *v = json_array();
    if (!v) return NULL;
    int ns = n_system(c), hid = c->hidden < ns ? ns : c->hidden;
    for (size_t i = 0; i < json_array_size(c->msgs); i++) {
        if ((int)i >= ns && (int)i < hid) continue;
        if (json_array_append(v, json_array_get(c->msgs, i))) { json_decref(v); return NULL; }
    }
    return v;
}

int colloq_conv_render(const colloq_conv *c, bool add_generation_prompt, char **out, size_t *len, colloq_err *err) {
    json_t *v = visible(c);
    if (!v) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "conversation: out of memory");
    int rc = colloq_chat_render(c->fmt, v, NULL, add_generation_prompt, out, len, err);
    json_decref(v);
    return rc;
}

const json_t *colloq_conv_messages(const colloq_conv *c) { return c ? c->msgs : NULL; }

int colloq_conv_n_hidden(const colloq_conv *c) {
    if (!c) return 0;
    int ns = n_system(c);
    return c->hidden > ns ? c->hidden - ns : 0;
}

int colloq_conv_n_cache(const colloq_conv *c) { return c ? c->n_cached : 0; }

const colloq_token *colloq_conv_cache_tokens(const colloq_conv *c, int *n) {
    if (n) *n = c ? c->n_cached : 0;
    return c ? c->toks : NULL;
}

const char *colloq_conv_system(const colloq_conv *c) {
    if (!c || !n_system(c)) return NULL;
    return json_string_value(json_object_get(json_array_get(c->msgs, 0), "content"));
}

int colloq_conv_set_system(colloq_conv *c, const char *text, colloq_err *err) {
    bool has = n_system(c) > 0;
    if (!text || !*text) {
        if (has) {
            json_array_remove(c->msgs, 0);
            if (c->hidden > 0) c->hidden--;
        }
        return COLLOQ_OK;
    }
    json_t *msg = json_pack("{s:s, s:s}", "role", "system", "content", text);
    if (!msg) return colloq_seterr(err, COLLOQ_ERR_ARG, "the system prompt must be valid UTF-8");
    int bad = has ? json_array_set_new(c->msgs, 0, msg) : json_array_insert_new(c->msgs, 0, msg);
    if (bad) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "conversation: out of memory");
    if (!has) c->hidden++;
    return COLLOQ_OK;
}

void colloq_conv_reset(colloq_conv *c) {
    if (!c) return;
    int ns = n_system(c);
    while ((int)json_array_size(c->msgs) > ns) json_array_remove(c->msgs, json_array_size(c->msgs) - 1);
    c->hidden = ns;
}

int colloq_conv_load(colloq_conv *c, const json_t *messages, colloq_err *err) {
    if (json_is_object(messages)) messages = json_object_get(messages, "messages");
    if (!json_is_array(messages))
        return colloq_seterr(err, COLLOQ_ERR_ARG, "a conversation is a JSON array of messages (or an object with one "
                             "as \"messages\")");
    json_t *copy = json_deep_copy(messages);
    if (!copy) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "conversation: out of memory");
    json_t *old = c->msgs;
    int old_hidden = c->hidden;
    c->msgs = copy;
    c->hidden = n_system(c);
    char *out = NULL;
    int rc = colloq_conv_render(c, false, &out, NULL, err);
    colloq_free(out);
    if (rc != COLLOQ_OK) {
        c->msgs = old;
        c->hidden = old_hidden;
        json_decref(copy);
        return rc;
    }
    json_decref(old);
    return COLLOQ_OK;
}

/* ------------------------------------------------------------------ setup */

static int piece_of(colloq_conv *c, colloq_token t, bool special, const char **out) {
    int n = colloq_token_to_piece(c->m, t, special, c->piece, c->cap_piece);
    if (n > c->cap_piece) {
        char *p = colloq_realloc(c->piece, (size_t)n);
        if (!p) return COLLOQ_ERR_NOMEM;
        c->piece = p;
        c->cap_piece = n;
        n = colloq_token_to_piece(c->m, t, special, c->piece, c->cap_piece);
    }
    *out = c->piece;
    return n < 0 ? 0 : n;
}

/* Tokenize text into a fresh array (*out, colloq_free).  Returns the count or < 0. */
static int tokenize(colloq_conv *c, const char *text, size_t len, bool add_bos, colloq_token **out, colloq_err *err) {
    *out = NULL;
    int cap = (int)(len < (1u << 26) ? len : (1u << 26)) + 8;
    for (int attempt = 0; attempt < 2; attempt++) {
        colloq_token *t = colloq_malloc((size_t)cap * sizeof *t);
        if (!t) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "conversation: out of memory");
        int n = colloq_tokenize(c->m, text, len, add_bos, true, t, cap, err);
        if (n >= 0 && n <= cap) { *out = t; return n; }
        colloq_free(t);
        if (n < 0) return n;
        cap = n;
    }
    return colloq_seterr(err, COLLOQ_ERR_ARG, "conversation: the token count changed between calls");
}

void colloq_conv_free(colloq_conv *c) {
    if (!c) return;
    for (int i = 0; i < c->n_stops; i++) colloq_free(c->stops[i]);
    colloq_free(c->stops);
    colloq_textstream_free(c->ts);
    json_decref(c->msgs);
    colloq_free(c->toks);
    colloq_free(c->tok_end);
    colloq_free(c->ctext);
    colloq_free(c->logits);
    colloq_free(c->piece);
    colloq_free(c);
}

int colloq_conv_new(colloq_model *m, colloq_seq *seq, const colloq_chat_fmt *fmt, const colloq_conv_params *p,
                    colloq_conv **out, colloq_err *err) {
    if (!m || !seq || !fmt || !out) return colloq_seterr(err, COLLOQ_ERR_ARG, "conversation: missing model, sequence or format");
    *out = NULL;
    colloq_conv *c = colloq_calloc(1, sizeof *c);
    if (!c) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "conversation: out of memory");
    c->m = m;
    c->seq = seq;
    c->fmt = fmt;
    c->p = p ? *p : colloq_conv_default_params();
    if (c->p.batch <= 0) c->p.batch = 256;
    if ((unsigned)c->p.overflow > COLLOQ_OVERFLOW_ERROR) c->p.overflow = COLLOQ_OVERFLOW_DROP_OLDEST;
    c->n_ctx = colloq_seq_n_ctx(seq);
    c->n_vocab = colloq_model_n_vocab(m);
    int n_fmt = 0;
    const char *const *fs = colloq_chat_fmt_stops(fmt, &n_fmt);
    int n_user = c->p.stops ? c->p.n_stops : 0;
    c->stops = colloq_calloc((size_t)(n_fmt + n_user + 1), sizeof *c->stops);
    c->toks = colloq_malloc((size_t)c->n_ctx * sizeof *c->toks);
    c->tok_end = colloq_malloc((size_t)c->n_ctx * sizeof *c->tok_end);
    c->logits = colloq_malloc((size_t)c->n_vocab * sizeof *c->logits);
    c->msgs = json_array();
    bool ok = c->stops && c->toks && c->tok_end && c->logits && c->msgs;
    for (int i = 0; ok && i < n_fmt + n_user; i++) {
        const char *s = i < n_fmt ? fs[i] : c->p.stops[i - n_fmt];
        if (s && *s) ok = (c->stops[c->n_stops++] = colloq_strdup(s)) != NULL;
    }
    c->p.stops = NULL;
    c->p.n_stops = 0;
    if (ok) c->ts = colloq_textstream_new(m, (const char *const *)c->stops, c->n_stops, false);
    if (!ok || !c->ts) {
        colloq_conv_free(c);
        return colloq_seterr(err, COLLOQ_ERR_NOMEM, "conversation: out of memory");
    }
    /* Does tokenizing put a space in front of plain text?  Then text cut in the middle
     * of a segment cannot be tokenized on its own without changing it. */
    colloq_token t[8];
    colloq_err ignore;
    const char *pc = NULL;
    if (colloq_tokenize(m, "a", 1, false, false, t, 8, &ignore) >= 1 && piece_of(c, t[0], false, &pc) > 0)
        c->space_prefix = pc[0] == ' ';
    colloq_seq_truncate(seq, 0);
    *out = c;
    return COLLOQ_OK;
}

/* ------------------------------------------------------------------ the cache */

static bool ctext_append(colloq_conv *c, const char *s, size_t n) {
    if (c->n_ctext + n + 1 > c->cap_ctext) {
        size_t cap = c->cap_ctext ? c->cap_ctext : 256;
        while (cap < c->n_ctext + n + 1) cap *= 2;
        char *p = colloq_realloc(c->ctext, cap);
        if (!p) return false;
        c->ctext = p;
        c->cap_ctext = cap;
    }
    if (n) memcpy(c->ctext + c->n_ctext, s, n);
    c->n_ctext += n;
    c->ctext[c->n_ctext] = 0;
    return true;
}

typedef struct {
    int           keep;      /* cached tokens kept */
    colloq_token *fresh;     /* tokens to evaluate (owned) */
    int           n_fresh;
} reuse_plan;

static bool is_special(const colloq_conv *c, colloq_token t) {
    int ty = colloq_vocab_token_type(c->m->vocab, t);
    return ty == CTOK_CONTROL || ty == CTOK_USER_DEFINED;
}

/* Choose what of the cache to keep for the prompt P (full: its whole tokenization). */
static int plan_reuse(colloq_conv *c, const char *P, size_t nP, const colloq_token *full, int n_full,
                      reuse_plan *plan, colloq_err *err) {
    size_t lcp = 0;
    while (lcp < nP && lcp < c->n_ctext && P[lcp] == c->ctext[lcp]) lcp++;
    /* by tokens: the common prefix with the whole tokenization; at least one token is
     * evaluated so that there are logits to sample from */
    int kb = 0;
    while (kb < n_full && kb < c->n_cached && full[kb] == c->toks[kb]) kb++;
    if (kb == n_full) kb = n_full - 1;
    /* by text: the longest cached prefix whose text the new prompt starts with; the rest
     * tokenized on its own, valid when that cannot change its text (it starts with a
     * special token, or the tokenizer adds no space prefix) */
    int ka = c->n_cached - 1;
    while (ka >= 0 && (c->tok_end[ka] < 0 || (size_t)c->tok_end[ka] > lcp)) ka--;
    if (ka >= 0 && (size_t)c->tok_end[ka] < nP) {
        size_t e = (size_t)c->tok_end[ka];
        colloq_token *rt = NULL;
        int nr = tokenize(c, P + e, nP - e, false, &rt, err);
        if (nr < 0) return nr;
        bool valid = nr > 0 && ka + 1 + nr < c->n_ctx;
        if (valid && c->space_prefix) {
            const char *st = is_special(c, rt[0]) ? colloq_vocab_text(c->m->vocab, rt[0]) : NULL;
            valid = st && !strncmp(P + e, st, strlen(st));
        }
        if (valid && nr < n_full - kb) {
            plan->keep = ka + 1;
            plan->fresh = rt;
            plan->n_fresh = nr;
            return COLLOQ_OK;
        }
        colloq_free(rt);
    }
    plan->keep = kb;
    plan->n_fresh = n_full - kb;
    plan->fresh = colloq_malloc((size_t)(plan->n_fresh > 0 ? plan->n_fresh : 1) * sizeof *plan->fresh);
    if (!plan->fresh) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "conversation: out of memory");
    memcpy(plan->fresh, full + kb, (size_t)plan->n_fresh * sizeof *full);
    for (int i = 0; i < kb; i++)
        if (c->tok_end[i] > (int64_t)lcp) c->tok_end[i] = -1;
    return COLLOQ_OK;
}

/* ------------------------------------------------------------------ a turn */

/* Room kept for the answer when deciding whether the prompt fits. */
static int answer_room(const colloq_conv *c) {
    int room = c->p.n_predict >= 0 && c->p.n_predict < c->n_ctx / 2 ? c->p.n_predict : c->n_ctx / 4;
    return room > 0 ? room : 1;
}

static void drop_user_message(colloq_conv *c, size_t idx) {
    if (idx < json_array_size(c->msgs)) json_array_remove(c->msgs, idx);
}

/* Render and tokenize the visible messages, applying the overflow policy. */
static int fit_prompt(colloq_conv *c, size_t idx_user, char **P, size_t *nP, colloq_token **full, int *n_full,
                      colloq_conv_stats *st, colloq_err *err) {
    int room = answer_room(c), dropped = 0, turns = 0;
    bool overflowed = false, short_room = false;
    for (;;) {
        colloq_free(*P);
        colloq_free(*full);
        *P = NULL;
        *full = NULL;
        int rc = colloq_conv_render(c, true, P, nP, err);
        if (rc != COLLOQ_OK) return rc;
        int n = tokenize(c, *P, *nP, !colloq_chat_fmt_has_bos(c->fmt), full, err);
        if (n < 0) return n;
        if (n == 0) return colloq_seterr(err, COLLOQ_ERR_ARG, "the rendered prompt has no tokens");
        *n_full = n;
        bool fits = n + room <= c->n_ctx;
        if (overflowed && c->p.overflow == COLLOQ_OVERFLOW_SHIFT) fits = fits && n <= c->n_ctx / 2;
        if (fits) break;
        if (c->p.overflow == COLLOQ_OVERFLOW_ERROR)
            return colloq_seterr(err, COLLOQ_ERR_CONTEXT, "the conversation does not fit the context: its prompt has %d "
                                 "tokens and %d more are kept for the answer, the context has %d (policy 'error': "
                                 "/reset, a larger --ctx, or --context-overflow drop-oldest)", n, room, c->n_ctx);
        overflowed = true;
        /* the oldest turn: from the first visible non-system message to the next user message */
        size_t from = (size_t)c->hidden, next = from + 1;
        while (next < idx_user && strcmp(role_at(c, next) ? role_at(c, next) : "", "user")) next++;
        if (from >= idx_user || next > idx_user || next == from) {
            if (n + room <= c->n_ctx) break;                       /* SHIFT: fits, only not half */
            if (n < c->n_ctx) { short_room = true; break; }
            return colloq_seterr(err, COLLOQ_ERR_CONTEXT, "the message does not fit the context: the prompt with only "
                                 "the system prompt and this message has %d tokens, the context has %d", n, c->n_ctx);
        }
        dropped += (int)(next - from);
        turns++;
        c->hidden = (int)next;
    }
    st->n_dropped = dropped;
    int len = 0;
    if (dropped)
        len = snprintf(st->notice, sizeof st->notice, "context full: took the %d oldest turn%s (%d message%s) out of "
                       "the prompt (policy '%s'%s); the system prompt is kept", turns, turns == 1 ? "" : "s",
                       dropped, dropped == 1 ? "" : "s", colloq_overflow_name(c->p.overflow),
                       c->p.overflow == COLLOQ_OVERFLOW_SHIFT ? ": the prompt now fills at most half the context" : "");
    if (short_room && len >= 0 && (size_t)len < sizeof st->notice)
        snprintf(st->notice + len, sizeof st->notice - (size_t)len, "%sonly %d tokens of the context are left for "
                 "the answer", len ? "; " : "", c->n_ctx - *n_full);
    return COLLOQ_OK;
}

static int eval_tokens(colloq_conv *c, const colloq_token *t, int n, const volatile sig_atomic_t *cancel,
                       bool *cancelled, colloq_err *err) {
    for (int i = 0; i < n; i += c->p.batch) {
        if (cancel && *cancel) { *cancelled = true; return COLLOQ_OK; }
        int k = n - i < c->p.batch ? n - i : c->p.batch;
        int rc = colloq_seq_eval(c->seq, t + i, k, c->logits, false, err);
        if (rc != COLLOQ_OK) {
            c->n_cached = colloq_seq_n_past(c->seq);
            return rc;
        }
        for (int j = 0; j < k; j++) {
            c->toks[c->n_cached] = t[i + j];
            c->tok_end[c->n_cached++] = -1;
        }
    }
    return COLLOQ_OK;
}

static int generate(colloq_conv *c, colloq_sampler *smp, colloq_conv_emit_fn emit, void *ud,
                    const volatile sig_atomic_t *cancel, colloq_conv_stats *st, colloq_err *err) {
    colloq_textstream_reset(c->ts);
    bool aligned = true;          /* ctext still matches the cache token by token */
    st->stop = "length";
    for (int n_gen = 0; c->p.n_predict < 0 || n_gen < c->p.n_predict;) {
        if (cancel && *cancel) { st->stop = "cancelled"; break; }
        colloq_token t = colloq_sampler_sample(smp, c->logits);
        colloq_sampler_accept(smp, t);
        st->n_generated = ++n_gen;
        if (colloq_token_is_eog(c->m, t)) { st->stop = "eog"; break; }
        const char *out = NULL;
        size_t len = 0;
        bool stopped = false;
        if (colloq_textstream_push(c->ts, t, &out, &len, &stopped) != COLLOQ_OK)
            return colloq_seterr(err, COLLOQ_ERR_NOMEM, "conversation: out of memory");
        bool user_stop = len && emit && emit(ud, out, len) != 0;
        if (c->n_cached >= c->n_ctx) {
            st->stop = "context";
            snprintf(st->notice, sizeof st->notice, "the context of %d tokens is full: the answer was cut after %d "
                     "tokens", c->n_ctx, n_gen);
            break;
        }
        int rc = colloq_seq_eval(c->seq, &t, 1, c->logits, false, err);
        if (rc != COLLOQ_OK) return rc;
        const char *pc = NULL;
        int np = piece_of(c, t, false, &pc);
        if (colloq_vocab_token_type(c->m->vocab, t) == CTOK_CONTROL) aligned = false;
        if (aligned && np > 0 && !ctext_append(c, pc, (size_t)np))
            return colloq_seterr(err, COLLOQ_ERR_NOMEM, "conversation: out of memory");
        c->toks[c->n_cached] = t;
        c->tok_end[c->n_cached++] = aligned ? (int64_t)c->n_ctext : -1;
        if (stopped) { st->stop = "stop"; break; }
        if (user_stop) { st->stop = "cancelled"; break; }
    }
    const char *out = NULL;
    size_t len = 0;
    if (colloq_textstream_flush(c->ts, &out, &len) != COLLOQ_OK)
        return colloq_seterr(err, COLLOQ_ERR_NOMEM, "conversation: out of memory");
    if (len && emit) emit(ud, out, len);
    return COLLOQ_OK;
}

int colloq_conv_turn(colloq_conv *c, const char *user_text, colloq_sampler *smp, colloq_conv_emit_fn emit, void *ud,
                     const volatile sig_atomic_t *cancel, colloq_conv_stats *stats, colloq_err *err) {
    colloq_conv_stats local;
    colloq_conv_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    st->stop = "cancelled";
    if (!c || !user_text || !smp) return colloq_seterr(err, COLLOQ_ERR_ARG, "conversation: bad arguments");
    json_t *msg = json_pack("{s:s, s:s}", "role", "user", "content", user_text);
    if (!msg) return colloq_seterr(err, COLLOQ_ERR_ARG, "the message must be valid UTF-8");
    if (json_array_append_new(c->msgs, msg)) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "conversation: out of memory");
    size_t idx_user = json_array_size(c->msgs) - 1;
    int saved_hidden = c->hidden;
    if (c->hidden < n_system(c)) c->hidden = n_system(c);

    double t0 = colloq_now();
    char *P = NULL;
    size_t nP = 0;
    colloq_token *full = NULL;
    int n_full = 0;
    reuse_plan plan = { 0, NULL, 0 };
    int rc = fit_prompt(c, idx_user, &P, &nP, &full, &n_full, st, err);
    if (rc == COLLOQ_OK) rc = plan_reuse(c, P, nP, full, n_full, &plan, err);
    colloq_free(full);
    if (rc != COLLOQ_OK) {
        drop_user_message(c, idx_user);
        c->hidden = saved_hidden;
        colloq_free(P);
        colloq_free(plan.fresh);
        return rc;
    }
    /* keep the planned prefix; the cache text becomes the new prompt */
    colloq_seq_truncate(c->seq, plan.keep);
    c->n_cached = plan.keep;
    c->n_ctext = 0;
    bool cancelled = false;
    if (!ctext_append(c, P, nP)) rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "conversation: out of memory");
    colloq_free(P);
    if (rc == COLLOQ_OK) rc = eval_tokens(c, plan.fresh, plan.n_fresh, cancel, &cancelled, err);
    if (rc == COLLOQ_OK && !cancelled) {
        c->tok_end[c->n_cached - 1] = (int64_t)c->n_ctext;
        for (int i = 0; i < plan.n_fresh; i++) colloq_sampler_accept(smp, plan.fresh[i]);
    }
    colloq_free(plan.fresh);
    st->n_reused = plan.keep;
    st->n_evaluated = c->n_cached - plan.keep;
    st->n_prompt = c->n_cached;
    double t1 = colloq_now();
    st->prompt_ms = (t1 - t0) * 1000.0;
    if (rc != COLLOQ_OK || cancelled) {
        drop_user_message(c, idx_user);
        c->hidden = saved_hidden;
        st->n_cache = c->n_cached;
        if (cancelled) snprintf(st->notice, sizeof st->notice, "cancelled before the answer began: the message was "
                                "not added");
        return rc;
    }

    rc = generate(c, smp, emit, ud, cancel, st, err);
    st->gen_ms = (colloq_now() - t1) * 1000.0;
    st->n_cache = c->n_cached;
    if (rc != COLLOQ_OK) return rc;
    size_t alen = 0;
    const char *answer = colloq_textstream_text(c->ts, &alen);
    json_t *a = json_object();
    if (!a || json_object_set_new(a, "role", json_string("assistant")) ||
        json_object_set_new(a, "content", json_stringn(answer, alen))) {
        json_decref(a);
        return colloq_seterr(err, COLLOQ_ERR_NOMEM, "conversation: out of memory");
    }
    if (json_array_append_new(c->msgs, a)) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "conversation: out of memory");
    return COLLOQ_OK;
}
