/*
 * server_safety.c - `colloq serve`'s safety filters and audit log: loads --safety-config
 * and opens --audit-log at start; applies input rules to request messages and prompts
 * (block -> 400 content_filter), output rules to each choice's text through a redaction
 * stream, and writes one audit record per completion request before its response
 * completes.  No HTTP here; never logs a refused request's raw input or an API key.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "audit.h"
#include "redact.h"
#include "server.h"
#include "util.h"

int srv_safety_init(srv *s) {
    colloq_err err = { { 0 } };
    if (s->cfg.safety_config) {
        if (colloq_redact_load(s->cfg.safety_config, &s->redact, &err) != COLLOQ_OK) {
            fprintf(stderr, "colloq serve: --safety-config: %s\n", err.msg);
            return -1;
        }
        fprintf(stderr, "colloq serve: safety filters: %d detector%s from %s\n", colloq_redact_n_rules(s->redact),
                colloq_redact_n_rules(s->redact) == 1 ? "" : "s", s->cfg.safety_config);
    }
    if (s->cfg.audit_dir) {
        colloq_audit_params p = colloq_audit_default_params();
        p.fsync_mode = (colloq_audit_fsync)s->cfg.audit_fsync;
        if (s->cfg.audit_max_bytes) p.max_bytes = s->cfg.audit_max_bytes;
        p.retention_days = s->cfg.audit_retention_days;
        if (colloq_audit_open(s->cfg.audit_dir, &p, &s->audit, &err) != COLLOQ_OK) {
            fprintf(stderr, "colloq serve: --audit-log: %s\n", err.msg);
            colloq_redact_free(s->redact);
            s->redact = NULL;
            return -1;
        }
        static const char *const modes[] = { "always", "batch", "never" };
        fprintf(stderr, "colloq serve: audit log in %s (fsync %s, retention %d days)\n", s->cfg.audit_dir,
                modes[p.fsync_mode], p.retention_days);
    }
    return 0;
}

void srv_safety_free(srv *s) {
    colloq_audit_close(s->audit);
    colloq_redact_free(s->redact);
    s->audit = NULL;
    s->redact = NULL;
}

/* Whether any rule applies to dir. */
static bool has_rules(const srv *s, int dir) {
    if (!s->redact) return false;
    for (int i = 0; i < colloq_redact_n_rules(s->redact); i++)
        if (colloq_redact_rule_applies(s->redact, i, dir)) return true;
    return false;
}

bool srv_safety_output_rules(const srv *s) { return has_rules(s, COLLOQ_REDACT_OUTPUT); }

void srv_safety_request_free(oai_request *r) {
    json_decref(r->filtered);
    json_decref(r->filter_log);
    r->filtered = r->filter_log = NULL;
}

/* Input rules on one text; a replacement string (new reference) in *out, or NULL when
 * nothing changed.  -1 with e set when a block rule matched or on errors. */
static int filter_text(srv *s, const char *text, size_t len, json_t **out, oai_request *r, oai_error *e) {
    *out = NULL;
    char *safe = NULL;
    size_t n = 0;
    colloq_redact_record rec;
    colloq_err err = { { 0 } };
    int rc = colloq_redact_text(s->redact, COLLOQ_REDACT_INPUT, text, len, &safe, &n, &rec, &err);
    if (rc < 0) {
        oai_seterr(e, 500, "server_error", NULL, NULL, "safety filter: %s", err.msg);
        return -1;
    }
    if (!r->filter_log) r->filter_log = json_array();
    if (r->filter_log) colloq_redact_record_to_json(s->redact, &rec, "input", r->filter_log);
    if (rc == COLLOQ_REDACT_BLOCKED) {
        oai_seterr(e, 400, "invalid_request_error", "messages", "content_filter",
                   "the request was refused by the content filter (%s)",
                   colloq_redact_rule_name(s->redact, rec.blocked_by));
        return -1;
    }
    if (n != len || memcmp(safe, text, len)) {
        *out = json_stringn(safe, n);
        if (!*out) rc = -1;
    }
    colloq_free(safe);
    if (rc < 0) { oai_seterr(e, 500, "server_error", NULL, NULL, "out of memory"); return -1; }
    return 0;
}

int srv_safety_messages(srv *s, json_t *msgs, oai_request *r, oai_error *e) {
    if (has_rules(s, COLLOQ_REDACT_INPUT)) {
        size_t i, k;
        json_t *m, *part;
        json_array_foreach(msgs, i, m) {
            json_t *content = json_object_get(m, "content"), *safe;
            if (json_is_string(content)) {
                if (filter_text(s, json_string_value(content), json_string_length(content), &safe, r, e) < 0) return -1;
                if (safe) json_object_set_new(m, "content", safe);
            } else if (json_is_array(content)) {
                json_array_foreach(content, k, part) {
                    json_t *text = json_object_get(part, "text");
                    if (!json_is_string(text)) continue;
                    if (filter_text(s, json_string_value(text), json_string_length(text), &safe, r, e) < 0) return -1;
                    if (safe) json_object_set_new(part, "text", safe);
                }
            }
        }
    }
    if (s->audit) {
        json_decref(r->filtered);
        r->filtered = json_incref(msgs);
    }
    return 0;
}

int srv_safety_prompt(srv *s, const char *text, size_t len, char **out, size_t *out_len, oai_request *r,
                      oai_error *e) {
    *out = NULL;
    json_t *safe = NULL;
    if (has_rules(s, COLLOQ_REDACT_INPUT) && filter_text(s, text, len, &safe, r, e) < 0) return -1;
    if (safe) {
        *out_len = json_string_length(safe);
        *out = colloq_malloc(*out_len + 1);
        if (*out) memcpy(*out, json_string_value(safe), *out_len + 1);
    }
    if (s->audit) {
        json_decref(r->filtered);
        r->filtered = safe ? json_incref(safe) : json_stringn(text, len);
    }
    json_decref(safe);
    if (safe && !*out) { oai_seterr(e, 500, "server_error", NULL, NULL, "out of memory"); return -1; }
    return 0;
}

int srv_safety_token_prompt(srv *s, json_t *tokens, oai_request *r, oai_error *e) {
    if (has_rules(s, COLLOQ_REDACT_INPUT)) {
        oai_seterr(e, 400, "invalid_request_error", "prompt", NULL,
                   "token-id prompts are not accepted while input safety rules are active: send text");
        return -1;
    }
    if (s->audit) {
        json_decref(r->filtered);
        r->filtered = json_incref(tokens);
    }
    return 0;
}

/* ---- output ---- */

int srv_safety_choice_new(srv *s, job_choice *c) {
    if (!has_rules(s, COLLOQ_REDACT_OUTPUT)) return 0;
    colloq_err err;
    return colloq_redact_stream_new(s->redact, COLLOQ_REDACT_OUTPUT, &c->rs, &err) == COLLOQ_OK ? 0 : -1;
}

void srv_safety_choice_free(job_choice *c) {
    colloq_redact_stream_free(c->rs);
    c->rs = NULL;
}

void srv_safety_output(job_choice *c, const char *text, size_t len, bool final, const char **out, size_t *out_len) {
    if (!c->rs) {
        *out = text;
        *out_len = len;
        return;
    }
    colloq_err err = { { 0 } };
    int rc = final ? colloq_redact_stream_finish(c->rs, out, out_len, &err)
                   : colloq_redact_stream_feed(c->rs, text, len, out, out_len, &err);
    if (rc == COLLOQ_REDACT_BLOCKED) {
        c->blocked = true;
    } else if (rc < 0) {                  /* cannot filter: deliver nothing more, end as filtered */
        colloq_log(0, "colloq serve: safety filter: %s", err.msg);
        c->blocked = true;
        *out = "";
        *out_len = 0;
    }
}

void srv_safety_stream_end(job *j) {
    for (int i = 0; i < j->req.n; i++)
        if (j->ch[i].res.finish != COLLOQ_FINISH_CANCELLED) oai_sse_finish(j, &j->ch[i]);
    oai_sse_end(j);
}

/* ---- audit ---- */

/* Each choice as it stands (job lock held), output filter actions appended to filter;
 * NULL when out of memory. */
static json_t *choices_json(job *j, json_t *filter) {
    json_t *arr = json_array();
    for (int i = 0; arr && j->ch && i < j->req.n; i++) {
        job_choice *c = &j->ch[i];
        json_t *calls = c->cons ? srv_constraint_tool_calls(c->cons) : NULL;
        json_t *o = json_pack("{s:i, s:s%, s:s}", "index", i, "text", c->text.p ? c->text.p : "", c->text.len,
                              "finish_reason", c->done ? oai_finish_reason(c) : "incomplete");
        if (o && calls) json_object_set(o, "tool_calls", calls);
        json_decref(calls);
        if (!o || json_array_append_new(arr, o)) { json_decref(arr); return NULL; }
        if (c->rs && filter) {
            colloq_redact_record_to_json(j->s->redact, colloq_redact_stream_record(c->rs), "output", filter);
        }
    }
    return arr;
}

int srv_safety_audit(job *j, int status, const char *error) {
    srv *s = j->s;
    if (!s->audit) return 0;
    pthread_mutex_lock(&j->mu);
    if (j->audited) { pthread_mutex_unlock(&j->mu); return 0; }
    j->audited = true;
    json_t *filter = j->req.filter_log ? json_copy(j->req.filter_log) : json_array();
    json_t *choices = choices_json(j, filter);
    int gen = 0;
    for (int i = 0; j->ch && i < j->req.n; i++) gen += j->ch[i].res.n_gen;
    json_t *c0 = json_array_get(choices, 0);
    json_t *extra = json_object();
    if (extra && j->req.n > 1 && choices) json_object_set(extra, "choices", choices);
    colloq_audit_record rec = {
        .request_id = j->id[0] ? j->id : NULL,
        .key_id = j->key_id[0] ? j->key_id : NULL,
        .client = j->client[0] ? j->client : NULL,
        .model = j->req.model[0] ? j->req.model : s->model_name,
        .endpoint = j->req.kind == OAI_CHAT ? "/v1/chat/completions" : "/v1/completions",
        .messages = j->req.filtered,
        .answer = c0 ? json_string_value(json_object_get(c0, "text")) : NULL,
        .answer_len = c0 ? json_string_length(json_object_get(c0, "text")) : 0,
        .tool_calls = c0 ? json_object_get(c0, "tool_calls") : NULL,
        .filter = filter,
        .prompt_tokens = j->req.n_prompt,
        .completion_tokens = gen,
        .latency_s = colloq_now() - j->t_start,
        .status = status,
        .finish_reason = c0 ? json_string_value(json_object_get(c0, "finish_reason")) : NULL,
        .error = error,
        .extra = extra,
    };
    json_incref(rec.messages);
    pthread_mutex_unlock(&j->mu);
    colloq_err err = { { 0 } };
    int rc = filter && choices && extra ? colloq_audit_write(s->audit, &rec, &err)
                                        : colloq_seterr(&err, COLLOQ_ERR_NOMEM, "out of memory");
    json_decref(rec.messages);
    json_decref(filter);
    json_decref(choices);
    json_decref(extra);
    if (rc != COLLOQ_OK) {
        colloq_log(0, "colloq serve: request %s: audit log: %s", j->id, err.msg);
        return -1;
    }
    return 0;
}
