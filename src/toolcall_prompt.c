/*
 * toolcall_prompt.c - the prompt side of tool calling: render with the chat template's
 * own tool support when its prompt teaches the <tool_call> format, otherwise describe
 * the tools in the system prompt and rewrite earlier calls and tool results as text
 * the template can render.  Uses chat.h for rendering; must not know the model.
 */
#define _GNU_SOURCE   /* memmem */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "toolcall.h"
#include "util.h"

/* ---- a growable string ---- */

typedef struct { char *p; size_t n, cap; bool oom; } sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *np = colloq_realloc(b->p, cap);
        if (!np) { b->oom = true; return; }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_json(sbuf *b, const json_t *v) {
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) { b->oom = true; return; }
    sb_str(b, s);
    free(s);
}

char *colloq_toolcall_system_text(const colloq_toolspec *ts) {
    sbuf b = { 0 };
    const json_t *tools = colloq_toolspec_tools_json(ts);
    sb_str(&b, "# Tools\n\nYou may call functions to help with the user's request. "
               "The functions, with their parameters as JSON Schema:\n<tools>\n");
    for (size_t i = 0; i < json_array_size(tools); i++) {
        sb_json(&b, json_array_get(tools, i));
        sb_str(&b, "\n");
    }
    sb_str(&b, "</tools>\n\nTo call functions, answer with one block per call, each exactly in this form:\n"
               COLLOQ_TOOLCALL_OPEN "\n{\"name\": <function name>, \"arguments\": <the arguments as a JSON object>}\n"
               COLLOQ_TOOLCALL_CLOSE "\nThe results come back to you inside <tool_response></tool_response> tags.");
    const char *forced = colloq_toolspec_forced(ts);
    if (forced) {
        sb_str(&b, "\nCall the function ");
        sb_str(&b, forced);
        sb_str(&b, " now.");
    } else if (colloq_toolspec_mode(ts) == COLLOQ_TOOLS_REQUIRED) {
        sb_str(&b, "\nCall at least one function now.");
    }
    if (b.oom) { colloq_free(b.p); return NULL; }
    return b.p;
}

/* Text of a message's content: a string, or the text parts of an array. */
static void content_text(sbuf *b, const json_t *c) {
    if (json_is_string(c)) { sb_put(b, json_string_value(c), json_string_length(c)); return; }
    for (size_t i = 0; json_is_array(c) && i < json_array_size(c); i++) {
        const json_t *t = json_object_get(json_array_get(c, i), "text");
        if (json_is_string(t)) sb_put(b, json_string_value(t), json_string_length(t));
    }
}

/* For templates with tool support: the arguments of earlier calls as objects (the
 * OpenAI wire format has them as JSON text; templates apply tojson to them). */
static json_t *native_messages(const json_t *messages) {
    json_t *out = json_deep_copy(messages);
    for (size_t i = 0; out && i < json_array_size(out); i++) {
        json_t *calls = json_object_get(json_array_get(out, i), "tool_calls");
        for (size_t k = 0; k < json_array_size(calls); k++) {
            json_t *fn = json_object_get(json_array_get(calls, k), "function");
            json_t *args = json_object_get(fn, "arguments");
            if (!json_is_string(args)) continue;
            json_t *obj = json_loadb(json_string_value(args), json_string_length(args), 0, NULL);
            if (obj) json_object_set_new(fn, "arguments", obj);
        }
    }
    return out;
}

static json_t *text_message(const char *role, const char *s, size_t n) {
    json_t *m = json_object(), *c = json_stringn(s, n);
    if (!m || !c || json_object_set_new(m, "role", json_string(role)) || json_object_set_new(m, "content", c)) {
        json_decref(m);
        return NULL;
    }
    return m;
}

/* For templates without tool support: calls and results as plain text, consecutive
 * user messages merged, the tool description in the system prompt (or, when
 * in_user, at the start of the first user message). */
static json_t *text_messages(const json_t *messages, const char *desc, bool in_user) {
    json_t *out = json_array();
    sbuf pend = { 0 };                      /* user text waiting to be added */
    sbuf sys = { 0 };                       /* system text: its own message, or the first user's start */
    bool have_pend = false, ok = out != NULL;
    size_t first = 0;
    const json_t *m0 = json_array_get(messages, 0);
    const json_t *r0 = json_object_get(m0, "role");
    if (json_is_string(r0) && !strcmp(json_string_value(r0), "system") && (desc || in_user)) {
        content_text(&sys, json_object_get(m0, "content"));
        first = 1;
    }
    if (desc) {
        if (sys.n) sb_str(&sys, "\n\n");
        sb_str(&sys, desc);
    }
    bool desc_done = sys.n == 0;
    if (!desc_done && !in_user) {
        json_t *m = sys.oom ? NULL : text_message("system", sys.p, sys.n);
        ok = ok && m && !json_array_append_new(out, m);
        desc_done = true;
    }
    for (size_t i = first; ok && i < json_array_size(messages); i++) {
        const json_t *m = json_array_get(messages, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!role) role = "";
        bool user_like = !strcmp(role, "user") || !strcmp(role, "tool");
        if (user_like) {
            if (have_pend) sb_str(&pend, "\n");
            if (!desc_done) { sb_put(&pend, sys.p, sys.n); sb_str(&pend, "\n\n"); desc_done = true; }
            if (!strcmp(role, "tool")) sb_str(&pend, "<tool_response>\n");
            content_text(&pend, json_object_get(m, "content"));
            if (!strcmp(role, "tool")) sb_str(&pend, "\n</tool_response>");
            have_pend = true;
            continue;
        }
        if (have_pend) {
            json_t *u = pend.oom ? NULL : text_message("user", pend.p ? pend.p : "", pend.n);
            ok = u && !json_array_append_new(out, u);
            pend.n = 0;
            have_pend = false;
        }
        const json_t *calls = json_object_get(m, "tool_calls");
        if (!strcmp(role, "assistant") && json_array_size(calls)) {
            sbuf a = { 0 };
            content_text(&a, json_object_get(m, "content"));
            for (size_t k = 0; k < json_array_size(calls); k++) {
                const json_t *fn = json_object_get(json_array_get(calls, k), "function");
                const json_t *args = json_object_get(fn, "arguments"), *name = json_object_get(fn, "name");
                if (a.n) sb_str(&a, "\n");
                sb_str(&a, COLLOQ_TOOLCALL_OPEN "\n{\"name\": ");
                if (json_is_string(name)) sb_json(&a, name);
                else sb_str(&a, "\"\"");
                sb_str(&a, ", \"arguments\": ");
                if (json_is_string(args)) sb_str(&a, json_string_value(args));
                else if (args) sb_json(&a, args);
                else sb_str(&a, "{}");
                sb_str(&a, "}\n" COLLOQ_TOOLCALL_CLOSE);
            }
            json_t *nm = a.oom ? NULL : text_message("assistant", a.p, a.n);
            ok = nm && !json_array_append_new(out, nm);
            colloq_free(a.p);
            continue;
        }
        json_t *copy = json_deep_copy(m);
        ok = copy && !json_array_append_new(out, copy);
    }
    if (ok && have_pend) {
        json_t *u = pend.oom ? NULL : text_message("user", pend.p ? pend.p : "", pend.n);
        ok = u && !json_array_append_new(out, u);
    }
    ok = ok && !pend.oom && !sys.oom;
    colloq_free(pend.p);
    colloq_free(sys.p);
    if (!ok) { json_decref(out); return NULL; }
    return out;
}

int colloq_toolcall_render(const colloq_chat_fmt *f, const json_t *messages, const colloq_toolspec *ts,
                           bool add_generation_prompt, char **out, size_t *out_len, colloq_err *err) {
    *out = NULL;
    *out_len = 0;
    bool tools = colloq_toolspec_mode(ts) != COLLOQ_TOOLS_NONE;
    json_t *msgs = native_messages(messages);
    if (!msgs) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "tool calls: out of memory");
    /* the template's own tool support, when it teaches our format */
    int rc = colloq_chat_render(f, msgs, tools ? colloq_toolspec_tools_json(ts) : NULL, add_generation_prompt,
                                out, out_len, err);
    json_decref(msgs);
    if (rc == COLLOQ_OK && (!tools || memmem(*out, *out_len, COLLOQ_TOOLCALL_OPEN, strlen(COLLOQ_TOOLCALL_OPEN))))
        return COLLOQ_OK;
    colloq_free(*out);
    *out = NULL;
    /* the tools described in the system prompt, history as text */
    char *desc = tools ? colloq_toolcall_system_text(ts) : NULL;
    if (tools && !desc) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "tool calls: out of memory");
    for (int attempt = 0; attempt < 2; attempt++) {
        json_t *tm = text_messages(messages, desc, attempt == 1);
        if (!tm) { rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "tool calls: out of memory"); break; }
        rc = colloq_chat_render(f, tm, NULL, add_generation_prompt, out, out_len, err);
        json_decref(tm);
        if (rc != COLLOQ_ERR_ARG) break;                 /* retry without a system message */
    }
    colloq_free(desc);
    return rc;
}
