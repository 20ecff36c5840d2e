/*
 * server_openai.c - the OpenAI API shapes: request bodies (chat completions,
 * completions, tokenize/detokenize) validated with jansson into engine-ready requests,
 * and the response objects, SSE chunks and error objects in OpenAI's exact layout.
 * Every bad input becomes an oai_error (status + message + param); nothing here does
 * I/O, holds locks of its own or talks to the engine.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chat.h"
#include "server.h"
#include "toolcall.h"
#include "util.h"

#define INVALID "invalid_request_error"

void oai_seterr(oai_error *e, int status, const char *type, const char *param, const char *code,
                const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->param = param;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

char *oai_error_json(const oai_error *e) {
    json_t *o = json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", e->message, "type",
                          e->type ? e->type : INVALID, "param", e->param ? json_string(e->param) : json_null(),
                          "code", e->code ? json_string(e->code) : json_null());
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    char *out = colloq_strdup(txt ? txt : "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
                                          "\"param\":null,\"code\":null}}");
    free(txt);
    return out;
}

void oai_request_free(oai_request *r) {
    srv_grammar_request_free(r);
    srv_safety_request_free(r);
    colloq_free(r->bias);
    colloq_free(r->prompt);
    for (int i = 0; i < r->n_stops; i++) colloq_free(r->stops[i]);
    memset(r, 0, sizeof *r);
}

/* ---- field readers: absent or null -> keep default; wrong type/range -> 400 ---- */

static int bad(oai_error *e, const char *param, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(oai_error *e, const char *param, const char *fmt, ...) {
    e->status = 400;
    e->type = INVALID;
    e->param = param;
    e->code = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}
#define BAD(param, ...) bad(e, param, __VA_ARGS__)

static int get_number(json_t *b, const char *k, double lo, double hi, double *out, oai_error *e) {
    json_t *v = json_object_get(b, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return BAD(k, "'%s' must be a number", k);
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi)) return BAD(k, "'%s' is %g, expected a value in [%g, %g]", k, d, lo, hi);
    *out = d;
    return 1;
}

static int get_int(json_t *b, const char *k, long long lo, long long hi, long long *out, oai_error *e) {
    json_t *v = json_object_get(b, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v)) return BAD(k, "'%s' must be an integer", k);
    long long x = json_integer_value(v);
    if (x < lo || x > hi) return BAD(k, "'%s' is %lld, expected an integer in [%lld, %lld]", k, x, lo, hi);
    *out = x;
    return 1;
}

static int get_bool(json_t *b, const char *k, bool *out, oai_error *e) {
    json_t *v = json_object_get(b, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return BAD(k, "'%s' must be a boolean", k);
    *out = json_is_true(v);
    return 1;
}

static int add_stop(oai_request *r, const char *s, size_t n) {
    if (r->n_stops >= (int)(sizeof r->stops / sizeof r->stops[0])) return 0;
    char *c = colloq_malloc(n + 1);
    if (!c) return -1;
    memcpy(c, s, n);
    c[n] = 0;
    r->stops[r->n_stops++] = c;
    return 0;
}

static int parse_stop(json_t *b, oai_request *r, oai_error *e) {
    json_t *v = json_object_get(b, "stop");
    if (!v || json_is_null(v)) return 0;
    if (json_is_string(v)) {
        if (json_string_length(v) == 0) return BAD("stop", "'stop' must not be empty");
        return add_stop(r, json_string_value(v), json_string_length(v)) < 0 ? BAD("stop", "out of memory") : 0;
    }
    if (!json_is_array(v)) return BAD("stop", "'stop' must be a string or an array of strings");
    if (json_array_size(v) > OAI_MAX_STOPS) return BAD("stop", "'stop' has more than %d strings", OAI_MAX_STOPS);
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        if (!json_is_string(x) || json_string_length(x) == 0)
            return BAD("stop", "'stop' entries must be non-empty strings");
        if (add_stop(r, json_string_value(x), json_string_length(x)) < 0) return BAD("stop", "out of memory");
    }
    return 0;
}

static int parse_bias(srv *s, json_t *b, oai_request *r, oai_error *e) {
    json_t *v = json_object_get(b, "logit_bias");
    if (!v || json_is_null(v)) return 0;
    if (!json_is_object(v)) return BAD("logit_bias", "'logit_bias' must be an object of token id -> bias");
    size_t n = json_object_size(v);
    if (n > 1024) return BAD("logit_bias", "'logit_bias' has more than 1024 entries");
    r->bias = colloq_malloc((n ? n : 1) * sizeof *r->bias);
    if (!r->bias) return BAD("logit_bias", "out of memory");
    const char *key;
    json_t *x;
    json_object_foreach(v, key, x) {
        char *end;
        long id = strtol(key, &end, 10);
        if (!*key || *end || id < 0 || id >= s->n_vocab)
            return BAD("logit_bias", "logit_bias: token id '%s' is out of range (the vocabulary has %d tokens)", key,
                       s->n_vocab);
        if (!json_is_number(x)) return BAD("logit_bias", "logit_bias: the bias of token %ld must be a number", id);
        double d = json_number_value(x);
        if (!(d >= -100 && d <= 100))
            return BAD("logit_bias", "logit_bias: the bias of token %ld is %g, expected [-100, 100]", id, d);
        r->bias[r->n_bias++] = (colloq_logit_bias){ .id = (colloq_token)id, .bias = (float)d };
    }
    return 0;
}

/* ---- prompts ---- */

static int tokenize(srv *s, const char *text, size_t len, bool add_bos, oai_request *r, oai_error *e,
                    const char *param) {
    colloq_err err = { { 0 } };
    int cap = (int)(len < (1u << 22) ? len : (1u << 22)) + 8;
    for (int attempt = 0; attempt < 2; attempt++) {
        colloq_free(r->prompt);
        r->prompt = colloq_malloc((size_t)cap * sizeof *r->prompt);
        if (!r->prompt) return oai_seterr(e, 500, "server_error", NULL, NULL, "out of memory"), -1;
        int n = colloq_tokenize(s->model, text, len, add_bos, true, r->prompt, cap, &err);
        if (n < 0) return BAD(param, "cannot tokenize the prompt: %s", err.msg);
        if (n <= cap) { r->n_prompt = n; return 0; }
        cap = n;
    }
    return BAD(param, "cannot tokenize the prompt");
}

static const char *const ROLES[] = { "system", "user", "assistant", "tool", "developer" };

/* Check the messages array and render it with the chat template. */
static int chat_prompt(srv *s, json_t *b, oai_request *r, oai_error *e) {
    json_t *msgs = json_object_get(b, "messages");
    if (!s->fmt)
        return oai_seterr(e, 400, INVALID, "messages", "no_chat_template", "this model has no chat template and the "
                          "server was started without --chat-template: use /v1/completions"), -1;
    if (!msgs) return BAD("messages", "'messages' is required");
    if (!json_is_array(msgs)) return BAD("messages", "'messages' must be an array");
    if (json_array_size(msgs) == 0) return BAD("messages", "'messages' must not be empty");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m)) return BAD("messages", "messages[%zu] must be an object", i);
        json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
        if (!json_is_string(role)) return BAD("messages", "messages[%zu].role must be a string", i);
        bool known = false;
        for (size_t k = 0; k < sizeof ROLES / sizeof ROLES[0]; k++) known |= !strcmp(json_string_value(role), ROLES[k]);
        if (!known)
            return BAD("messages", "messages[%zu].role '%s' is not one of system, user, assistant, tool, developer", i,
                       json_string_value(role));
        if (!content || json_is_null(content)) {
            if (strcmp(json_string_value(role), "assistant"))
                return BAD("messages", "messages[%zu].content is required", i);
        } else if (json_is_array(content)) {
            size_t k;
            json_t *part;
            json_array_foreach(content, k, part) {
                json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
                if (!json_is_object(part) || !json_is_string(type) || strcmp(json_string_value(type), "text") ||
                    !json_is_string(text))
                    return BAD("messages", "messages[%zu].content[%zu] must be {\"type\": \"text\", \"text\": string} "
                               "(other part types are not supported)", i, k);
            }
        } else if (!json_is_string(content)) {
            return BAD("messages", "messages[%zu].content must be a string or an array of text parts", i);
        }
    }
    /* "developer" is the newer name of "system" */
    json_t *copy = json_deep_copy(msgs);
    if (!copy) return oai_seterr(e, 500, "server_error", NULL, NULL, "out of memory"), -1;
    json_array_foreach(copy, i, m) {
        if (!strcmp(json_string_value(json_object_get(m, "role")), "developer"))
            json_object_set_new(m, "role", json_string("system"));
    }
    if (srv_safety_messages(s, copy, r, e) < 0) {     /* input rules: redact or refuse */
        json_decref(copy);
        return -1;
    }
    colloq_err err = { { 0 } };
    char *text = NULL;
    size_t len = 0;
    if (srv_grammar_parse(s, b, r, e) < 0) {           /* tools / response_format */
        json_decref(copy);
        return -1;
    }
    int rc = colloq_toolcall_render(s->fmt, copy, r->tools, true, &text, &len, &err);
    json_decref(copy);
    if (rc != COLLOQ_OK) {
        colloq_free(text);
        return rc == COLLOQ_ERR_ARG ? BAD("messages", "%s", err.msg)
                                    : (oai_seterr(e, 500, "server_error", NULL, NULL, "%s", err.msg), -1);
    }
    rc = tokenize(s, text, len, colloq_model_add_bos(s->model) && !colloq_chat_fmt_has_bos(s->fmt), r, e, "messages");
    colloq_free(text);
    if (rc < 0) return rc;
    int n_stops = 0;
    const char *const *stops = colloq_chat_fmt_stops(s->fmt, &n_stops);
    for (int k = 0; k < n_stops; k++)
        if (stops[k] && *stops[k] && add_stop(r, stops[k], strlen(stops[k])) < 0) return BAD(NULL, "out of memory");
    return 0;
}

static int token_array(srv *s, json_t *arr, oai_request *r, oai_error *e) {
    size_t n = json_array_size(arr), i;
    if (n == 0) return BAD("prompt", "'prompt' must not be empty");
    if (n > (size_t)s->n_ctx)
        return oai_seterr(e, 400, INVALID, "prompt", "context_length_exceeded", "the prompt has %zu tokens, more than "
                          "the context window of %d tokens", n, s->n_ctx), -1;
    r->prompt = colloq_malloc(n * sizeof *r->prompt);
    if (!r->prompt) return BAD("prompt", "out of memory");
    json_t *x;
    json_array_foreach(arr, i, x) {
        if (!json_is_integer(x)) return BAD("prompt", "prompt[%zu] must be a token id (integer)", i);
        long long id = json_integer_value(x);
        if (id < 0 || id >= s->n_vocab)
            return BAD("prompt", "prompt[%zu]: token id %lld is out of range (the vocabulary has %d tokens)", i, id,
                       s->n_vocab);
        r->prompt[i] = (colloq_token)id;
    }
    r->n_prompt = (int)n;
    return 0;
}

static int completion_prompt(srv *s, json_t *b, oai_request *r, oai_error *e) {
    json_t *p = json_object_get(b, "prompt");
    if (!p || json_is_null(p)) return BAD("prompt", "'prompt' is required");
    if (json_is_array(p) && json_array_size(p) == 1 &&
        (json_is_string(json_array_get(p, 0)) || json_is_array(json_array_get(p, 0))))
        p = json_array_get(p, 0);                  /* a batch of one */
    if (json_is_string(p)) {
        char *safe = NULL;                         /* input rules: redact or refuse */
        size_t n = 0;
        if (srv_safety_prompt(s, json_string_value(p), json_string_length(p), &safe, &n, r, e) < 0) return -1;
        int rc = tokenize(s, safe ? safe : json_string_value(p), safe ? n : json_string_length(p),
                          colloq_model_add_bos(s->model), r, e, "prompt");
        colloq_free(safe);
        return rc;
    }
    if (json_is_array(p)) {
        if (json_array_size(p) > 0 && !json_is_integer(json_array_get(p, 0)))
            return BAD("prompt", "'prompt' must be a string, an array of token ids, or an array holding one of those");
        if (srv_safety_token_prompt(s, p, r, e) < 0) return -1;
        return token_array(s, p, r, e);
    }
    return BAD("prompt", "'prompt' must be a string or an array of token ids");
}

/* ---- the request ---- */

int oai_parse(srv *s, oai_kind kind, json_t *b, oai_request *r, oai_error *e) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->n = 1;
    r->logprobs = -1;
    r->sp = colloq_sampler_default_params();
    r->sp.temperature = 1.0f;     /* OpenAI's defaults: plain sampling */
    r->sp.top_k = 0;
    r->sp.top_p = 1.0f;
    r->sp.min_p = 0.0f;
    snprintf(r->model, sizeof r->model, "%s", s->model_name);
    json_t *model = json_object_get(b, "model");
    if (model && !json_is_null(model) && !json_is_string(model)) return BAD("model", "'model' must be a string");
    json_t *user = json_object_get(b, "user");
    if (user && !json_is_null(user) && !json_is_string(user)) return BAD("user", "'user' must be a string");

    double d = 0;
    long long ll = 0;
    int rc;
    if (get_bool(b, "stream", &r->stream, e) < 0) return -1;
    json_t *so = json_object_get(b, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) return BAD("stream_options", "'stream_options' must be an object");
        if (get_bool(so, "include_usage", &r->include_usage, e) < 0) return -1;
    }
    const char *mt = kind == OAI_CHAT && json_object_get(b, "max_completion_tokens") ? "max_completion_tokens"
                                                                                       : "max_tokens";
    if ((rc = get_int(b, mt, 1, INT64_MAX, &ll, e)) < 0) return -1;
    if (rc) r->max_tokens = ll > s->n_ctx ? s->n_ctx : (int)ll;     /* clamped again to what fits */
    if ((rc = get_number(b, "temperature", 0, 2, &d, e)) < 0) return -1;
    if (rc) r->sp.temperature = (float)d;
    if ((rc = get_number(b, "top_p", 0, 1, &d, e)) < 0) return -1;
    if (rc) r->sp.top_p = (float)d;
    if ((rc = get_int(b, "top_k", 0, INT32_MAX, &ll, e)) < 0) return -1;
    if (rc) r->sp.top_k = (int)(ll > s->n_vocab ? s->n_vocab : ll);
    if ((rc = get_number(b, "min_p", 0, 1, &d, e)) < 0) return -1;
    if (rc) r->sp.min_p = (float)d;
    if ((rc = get_number(b, "presence_penalty", -2, 2, &d, e)) < 0) return -1;
    if (rc) r->sp.presence_penalty = (float)d;
    if ((rc = get_number(b, "frequency_penalty", -2, 2, &d, e)) < 0) return -1;
    if (rc) r->sp.frequency_penalty = (float)d;
    if ((rc = get_number(b, "repetition_penalty", 0.01, 10, &d, e)) < 0) return -1;
    if (rc) r->sp.repeat_penalty = (float)d;
    if ((rc = get_int(b, "seed", INT64_MIN, INT64_MAX, &ll, e)) < 0) return -1;
    if (rc) { r->sp.seed = (uint64_t)ll; r->seed_set = true; }
    if ((rc = get_int(b, "n", 1, OAI_MAX_N, &ll, e)) < 0) return -1;
    if (rc) r->n = (int)ll;
    if (kind == OAI_CHAT) {
        bool lp = false;
        if (get_bool(b, "logprobs", &lp, e) < 0) return -1;
        if ((rc = get_int(b, "top_logprobs", 0, 20, &ll, e)) < 0) return -1;
        if (rc && !lp) return BAD("top_logprobs", "'top_logprobs' needs 'logprobs': true");
        if (lp) r->logprobs = rc ? (int)ll : 0;
    } else {
        if ((rc = get_int(b, "logprobs", 0, 5, &ll, e)) < 0) return -1;
        if (rc) r->logprobs = (int)ll;
    }
    if (r->logprobs >= 0 && srv_safety_output_rules(s))   /* token texts would bypass redaction */
        return BAD("logprobs", "'logprobs' is not available while output safety rules are active");
    if (parse_stop(b, r, e) < 0 || parse_bias(s, b, r, e) < 0) return -1;
    if ((kind == OAI_CHAT ? chat_prompt(s, b, r, e) : completion_prompt(s, b, r, e)) < 0) return -1;
    if (r->n_prompt == 0) return BAD(kind == OAI_CHAT ? "messages" : "prompt", "the prompt has no tokens");
    if (r->n_prompt > s->n_ctx)
        return oai_seterr(e, 400, INVALID, kind == OAI_CHAT ? "messages" : "prompt", "context_length_exceeded",
                          "the prompt has %d tokens, more than the context window of %d tokens", r->n_prompt,
                          s->n_ctx), -1;
    return 0;
}

/* ---- token text ---- */

/* Token text as valid UTF-8 (bytes that do not form whole characters become U+FFFD). */
static json_t *piece_json(srv *s, colloq_token t, json_t **bytes_out) {
    char buf[256];
    int n = colloq_token_to_piece(s->model, t, false, buf, (int)sizeof buf);
    if (n < 0) n = 0;
    if (n > (int)sizeof buf) n = (int)sizeof buf;
    json_t *bytes = json_array();
    srv_buf clean = { 0 };
    for (int i = 0; i < n;) {
        int k = colloq_utf8_seq_len((const unsigned char *)buf + i, (size_t)(n - i));
        if (k <= 0) { srv_buf_add(&clean, "\xef\xbf\xbd", 3); k = 1; }
        else srv_buf_add(&clean, buf + i, (size_t)k);
        i += k;
    }
    for (int i = 0; i < n; i++) json_array_append_new(bytes, json_integer((unsigned char)buf[i]));
    json_t *str = json_stringn(clean.p ? clean.p : "", clean.len);
    srv_buf_free(&clean);
    *bytes_out = bytes;
    return str ? str : json_string("");
}

static double finite_lp(float x) { return isfinite(x) ? (double)x : -9999.0; }

json_t *oai_logprob_entry(srv *s, const colloq_engine_token *t) {
    json_t *bytes, *tok = piece_json(s, t->token, &bytes), *top = json_array();
    for (int i = 0; i < t->n_top; i++) {
        json_t *tb, *tt = piece_json(s, t->top[i].id, &tb);
        json_array_append_new(top, json_pack("{s:o, s:f, s:o}", "token", tt, "logprob", finite_lp(t->top[i].logprob),
                                             "bytes", tb));
    }
    return json_pack("{s:o, s:f, s:o, s:o}", "token", tok, "logprob", finite_lp(t->logprob), "bytes", bytes,
                     "top_logprobs", top);
}

/* ---- responses ---- */

const char *oai_finish_reason(const job_choice *c) {
    if (c->blocked) return "content_filter";
    if (c->res.finish == COLLOQ_FINISH_STOP && srv_constraint_n_calls(c->cons) > 0) return "tool_calls";
    return c->res.finish == COLLOQ_FINISH_LENGTH ? "length" : "stop";
}

static json_t *usage(const job *j) {
    int gen = 0;
    for (int i = 0; i < j->req.n; i++) gen += j->ch[i].res.n_gen;
    return json_pack("{s:i, s:i, s:i, s:{s:i}}", "prompt_tokens", j->req.n_prompt, "completion_tokens", gen,
                     "total_tokens", j->req.n_prompt + gen, "prompt_tokens_details", "cached_tokens",
                     j->ch[0].res.n_cached);
}

/* Legacy completions logprobs from content-style entries [from, to). */
static json_t *legacy_logprobs(const json_t *entries, size_t from, size_t to, size_t *offset) {
    json_t *tokens = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    for (size_t i = from; i < to; i++) {
        json_t *en = json_array_get(entries, i), *top = json_object(), *x;
        json_t *tok = json_object_get(en, "token");
        json_array_append(tokens, tok);
        json_array_append(lps, json_object_get(en, "logprob"));
        size_t k;
        json_array_foreach(json_object_get(en, "top_logprobs"), k, x)
            json_object_set(top, json_string_value(json_object_get(x, "token")), json_object_get(x, "logprob"));
        json_array_append_new(tops, top);
        json_array_append_new(offs, json_integer((json_int_t)*offset));
        *offset += json_string_length(tok);
    }
    return json_pack("{s:o, s:o, s:o, s:o}", "tokens", tokens, "token_logprobs", lps, "top_logprobs", tops,
                     "text_offset", offs);
}

static json_t *text_json(const srv_buf *b) {
    json_t *t = json_stringn(b->p ? b->p : "", b->len);
    return t ? t : json_string("");
}

json_t *oai_response(const job *j) {
    json_t *choices = json_array();
    bool chat = j->req.kind == OAI_CHAT;
    for (int i = 0; i < j->req.n; i++) {
        const job_choice *c = &j->ch[i];
        json_t *lp = json_null();
        if (c->logprobs) {
            size_t off = 0;
            lp = chat ? json_pack("{s:O}", "content", c->logprobs)
                      : legacy_logprobs(c->logprobs, 0, json_array_size(c->logprobs), &off);
        }
        json_t *ch = chat ? json_pack("{s:i, s:{s:s, s:o}, s:o, s:s}", "index", i, "message", "role", "assistant",
                                      "content", text_json(&c->text), "logprobs", lp, "finish_reason",
                                      oai_finish_reason(c))
                          : json_pack("{s:i, s:o, s:o, s:s}", "index", i, "text", text_json(&c->text), "logprobs", lp,
                                      "finish_reason", oai_finish_reason(c));
        json_t *calls = chat ? srv_constraint_tool_calls(c->cons) : NULL;
        if (calls) {                                   /* tool calls: content is null when empty */
            json_t *msg = json_object_get(ch, "message");
            json_object_set_new(msg, "tool_calls", calls);
            if (c->text.len == 0) json_object_set_new(msg, "content", json_null());
        }
        json_array_append_new(choices, ch);
    }
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:o, s:o}", "id", j->id, "object",
                     chat ? "chat.completion" : "text_completion", "created", (json_int_t)j->created, "model", j->req.model,
                     "system_fingerprint", "colloq-" COLLOQ_VERSION, "choices", choices, "usage", usage(j));
}

/* ---- SSE ---- */

static void sse_event(job *j, json_t *o) {
    if (!o) return;
    if (j->req.include_usage && !json_object_get(o, "usage")) json_object_set_new(o, "usage", json_null());
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!txt) return;
    srv_buf_add(&j->sse, "data: ", 6);
    srv_buf_add(&j->sse, txt, strlen(txt));
    srv_buf_add(&j->sse, "\n\n", 2);
    free(txt);
}

static json_t *chunk(const job *j, json_t *choice) {
    bool chat = j->req.kind == OAI_CHAT;
    json_t *arr = json_array();
    if (choice) json_array_append_new(arr, choice);
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:o}", "id", j->id, "object",
                     chat ? "chat.completion.chunk" : "text_completion", "created", (json_int_t)j->created, "model",
                     j->req.model, "system_fingerprint", "colloq-" COLLOQ_VERSION, "choices", arr);
}

void oai_sse_delta(job *j, job_choice *c, const char *text, size_t len) {
    bool chat = j->req.kind == OAI_CHAT;
    json_t *lp = json_null();
    size_t n_lp = c->logprobs ? json_array_size(c->logprobs) : 0;
    if (c->logprobs && n_lp > c->lp_sent) {
        json_t *part = json_array();
        for (size_t i = c->lp_sent; i < n_lp; i++) json_array_append(part, json_array_get(c->logprobs, i));
        if (chat) {
            lp = json_pack("{s:o}", "content", part);
        } else {
            size_t off = c->text.len - len;
            lp = legacy_logprobs(part, 0, json_array_size(part), &off);
            json_decref(part);
        }
        c->lp_sent = n_lp;
    }
    json_t *t = json_stringn(text, len);
    if (!t) t = json_string("");
    json_t *ch = chat ? json_pack("{s:i, s:{s:o}, s:o, s:n}", "index", c->index, "delta", "content", t, "logprobs", lp,
                                  "finish_reason")
                      : json_pack("{s:i, s:o, s:o, s:n}", "index", c->index, "text", t, "logprobs", lp, "finish_reason");
    sse_event(j, chunk(j, ch));
}

void oai_sse_delta_obj(job *j, job_choice *c, json_t *delta) {
    if (!delta) return;
    sse_event(j, chunk(j, json_pack("{s:i, s:o, s:n, s:n}", "index", c->index, "delta", delta, "logprobs",
                                    "finish_reason")));
}

void oai_sse_finish(job *j, job_choice *c) {
    bool chat = j->req.kind == OAI_CHAT;
    json_t *ch = chat ? json_pack("{s:i, s:{}, s:n, s:s}", "index", c->index, "delta", "logprobs", "finish_reason",
                                  oai_finish_reason(c))
                      : json_pack("{s:i, s:s, s:n, s:s}", "index", c->index, "text", "", "logprobs", "finish_reason",
                                  oai_finish_reason(c));
    sse_event(j, chunk(j, ch));
}

void oai_sse_end(job *j) {
    if (j->req.include_usage) {
        json_t *o = chunk(j, NULL);
        if (o) json_object_set_new(o, "usage", usage(j));
        sse_event(j, o);
    }
    srv_buf_add(&j->sse, "data: [DONE]\n\n", 14);
}

/* The first chunk of a chat stream announces the role. */
void oai_sse_role(job *j, job_choice *c) {
    if (j->req.kind != OAI_CHAT) return;
    json_t *ch = json_pack("{s:i, s:{s:s, s:s}, s:n, s:n}", "index", c->index, "delta", "role", "assistant", "content",
                           "", "logprobs", "finish_reason");
    sse_event(j, chunk(j, ch));
}

/* ---- small endpoints ---- */

json_t *oai_models(srv *s) {
    return json_pack("{s:s, s:[{s:s, s:s, s:I, s:s}]}", "object", "list", "data", "id", s->model_name, "object",
                     "model", "created", (json_int_t)0, "owned_by", "colloq");
}

json_t *oai_tokenize(srv *s, json_t *b, oai_error *e) {
    json_t *c = json_object_get(b, "content");
    if (!json_is_string(c)) { BAD("content", "'content' must be a string"); return NULL; }
    bool special = false;
    if (get_bool(b, "add_special", &special, e) < 0) return NULL;
    oai_request r;
    memset(&r, 0, sizeof r);
    if (tokenize(s, json_string_value(c), json_string_length(c), special && colloq_model_add_bos(s->model), &r, e,
                 "content") < 0) {
        oai_request_free(&r);
        return NULL;
    }
    json_t *arr = json_array();
    for (int i = 0; i < r.n_prompt; i++) json_array_append_new(arr, json_integer(r.prompt[i]));
    oai_request_free(&r);
    return json_pack("{s:o}", "tokens", arr);
}

json_t *oai_detokenize(srv *s, json_t *b, oai_error *e) {
    json_t *t = json_object_get(b, "tokens"), *x;
    if (!json_is_array(t)) { BAD("tokens", "'tokens' must be an array of token ids"); return NULL; }
    srv_buf out = { 0 };
    size_t i;
    json_array_foreach(t, i, x) {
        long long id = json_is_integer(x) ? json_integer_value(x) : -1;
        if (!json_is_integer(x) || id < 0 || id >= s->n_vocab) {
            srv_buf_free(&out);
            { BAD("tokens", "tokens[%zu] is not a token id in [0, %d)", i, s->n_vocab); return NULL; }
        }
        char buf[256];
        int n = colloq_token_to_piece(s->model, (colloq_token)id, false, buf, (int)sizeof buf);
        if (n > 0) srv_buf_add(&out, buf, (size_t)(n < (int)sizeof buf ? n : (int)sizeof buf));
    }
    /* invalid UTF-8 (a character split across the given ids) becomes U+FFFD */
    srv_buf clean = { 0 };
    for (size_t k = 0; k < out.len;) {
        int n = colloq_utf8_seq_len((const unsigned char *)out.p + k, out.len - k);
        if (n <= 0) { srv_buf_add(&clean, "\xef\xbf\xbd", 3); n = 1; }
        else srv_buf_add(&clean, out.p + k, (size_t)n);
        k += (size_t)n;
    }
    json_t *res = json_pack("{s:o}", "content", text_json(&clean));
    srv_buf_free(&out);
    srv_buf_free(&clean);
    return res;
}
