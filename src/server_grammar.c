/*
 * server_grammar.c - the server's side of constrained output: reading response_format
 * and tools from a chat request, one constraint per choice (a grammar state for JSON
 * mode / json_schema, or the tool-call constraint and output parser), the engine's
 * logits hook, and the tool_calls parts of responses and streams.  Called from
 * server.c / server_openai.c at a few marked points; no HTTP and no engine internals.
 */
#include <jansson.h>
#include <string.h>

#include "grammar.h"
#include "server.h"
#include "toolcall.h"
#include "util.h"

struct srv_constraint {
    const colloq_grammar_vocab *gv;
    colloq_grammar_state   *gs;      /* response_format */
    colloq_toolcall        *tc;      /* tools (auto / required) */
    colloq_toolcall_parser *parser;  /* tools: content vs calls in the output */
    int  budget;                     /* tokens this choice may generate */
    int  generated;
    bool broken;                     /* a token broke the constraint (the mask was not applied) */
};

void srv_grammar_init(srv *s) {
    colloq_err err = { { 0 } };
    if (colloq_grammar_vocab_from_model(s->model, &s->gvocab, &err) != COLLOQ_OK)
        fprintf(stderr, "colloq serve: warning: constrained output unavailable: %s\n", err.msg);
}

int srv_grammar_parse(srv *s, json_t *body, oai_request *r, oai_error *e) {
    colloq_err err = { { 0 } };
    int rc = colloq_toolspec_parse(body, NULL, &r->tools, &err);
    if (rc == COLLOQ_OK) {
        rc = colloq_toolcall_response_format(body, NULL, &r->grammar, &err);
        if (rc != COLLOQ_OK) {
            oai_seterr(e, rc == COLLOQ_ERR_ARG ? 400 : 500, rc == COLLOQ_ERR_ARG ? "invalid_request_error" : "server_error",
                       "response_format", NULL, "%s", err.msg);
            return -1;
        }
    } else {
        oai_seterr(e, rc == COLLOQ_ERR_ARG ? 400 : 500, rc == COLLOQ_ERR_ARG ? "invalid_request_error" : "server_error",
                   strncmp(err.msg, "tool_choice", 11) ? "tools" : "tool_choice", NULL, "%s", err.msg);
        return -1;
    }
    if (r->grammar && colloq_toolspec_mode(r->tools) != COLLOQ_TOOLS_NONE) {
        oai_seterr(e, 400, "invalid_request_error", "response_format", NULL,
                   "response_format json_object/json_schema cannot be combined with tools (use tool_choice \"none\")");
        return -1;
    }
    if ((r->grammar || colloq_toolspec_mode(r->tools) != COLLOQ_TOOLS_NONE) && !s->gvocab) {
        oai_seterr(e, 500, "server_error", NULL, NULL, "constrained output is unavailable for this model");
        return -1;
    }
    return 0;
}

void srv_grammar_request_free(oai_request *r) {
    colloq_toolspec_free(r->tools);
    colloq_grammar_free(r->grammar);
    r->tools = NULL;
    r->grammar = NULL;
}

int srv_constraint_new(srv *s, const oai_request *r, srv_constraint **out, oai_error *e) {
    *out = NULL;
    bool tools = colloq_toolspec_mode(r->tools) != COLLOQ_TOOLS_NONE;
    if (!tools && !r->grammar) return 0;
    srv_constraint *k = colloq_calloc(1, sizeof *k);
    colloq_err err = { { 0 } };
    int rc = k ? COLLOQ_OK : COLLOQ_ERR_NOMEM;
    if (k) {
        k->gv = s->gvocab;
        int room = s->n_ctx - r->n_prompt;
        k->budget = r->max_tokens > 0 && r->max_tokens < room ? r->max_tokens : room;
        if (tools) {
            rc = colloq_toolcall_new(r->tools, s->gvocab, &k->tc, &err);
            if (!rc) rc = colloq_toolcall_parser_new(&k->parser, &err);
        } else {
            rc = colloq_grammar_state_new(r->grammar, s->gvocab, &k->gs, &err);
        }
    }
    if (rc) {
        srv_constraint_free(k);
        oai_seterr(e, 500, "server_error", NULL, NULL, "%s", rc == COLLOQ_ERR_NOMEM ? "out of memory" : err.msg);
        return -1;
    }
    *out = k;
    return 0;
}

void srv_constraint_free(srv_constraint *k) {
    if (!k) return;
    colloq_grammar_state_free(k->gs);
    colloq_toolcall_free(k->tc);
    colloq_toolcall_parser_free(k->parser);
    colloq_free(k);
}

int srv_constraint_logits(void *ud, float *logits, int n_vocab) {
    job_choice *c = ud;
    srv_constraint *k = c->cons;
    if (!k || k->broken) return 0;
    int left = k->budget - k->generated;
    int n = k->tc ? colloq_toolcall_mask_logits(k->tc, left, logits, n_vocab)
                  : colloq_grammar_state_mask_logits(k->gs, left, logits, n_vocab);
    return n > 0 ? 0 : -1;
}

int srv_constraint_token(srv_constraint *k, colloq_token t) {
    if (!k || k->broken) return 0;
    k->generated++;
    colloq_err err = { { 0 } };
    size_t n = 0;
    const char *p = colloq_grammar_vocab_piece(k->gv, t, &n);
    int rc = k->tc ? colloq_toolcall_accept(k->tc, t, p, n, &err) : colloq_grammar_state_accept(k->gs, t, &err);
    if (rc != COLLOQ_OK) {
        k->broken = true;
        colloq_log(0, "colloq serve: constrained output: %s", err.msg);
        return 1;
    }
    return k->tc ? colloq_toolcall_done(k->tc) : colloq_grammar_state_done(k->gs);
}

/* ---- tool calls in the output ---- */

typedef struct { job *j; job_choice *c; } sink_ctx;

static void on_content(void *ud, const char *s, size_t n) {
    sink_ctx *x = ud;
    srv_buf_add(&x->c->text, s, n);
    if (x->j->req.stream) oai_sse_delta(x->j, x->c, s, n);
}

static void on_call_begin(void *ud, int index, const char *id, const char *name) {
    sink_ctx *x = ud;
    if (x->j->req.stream) oai_sse_delta_obj(x->j, x->c, colloq_toolcall_delta_begin(index, id, name));
}

static void on_call_args(void *ud, int index, const char *s, size_t n) {
    sink_ctx *x = ud;
    if (x->j->req.stream) oai_sse_delta_obj(x->j, x->c, colloq_toolcall_delta_args(index, s, n));
}

static const colloq_toolcall_sink SINK = { on_content, on_call_begin, on_call_args };

bool srv_constraint_text(job *j, job_choice *c, const char *text, size_t len) {
    srv_constraint *k = c->cons;
    if (!k || !k->parser) return false;
    sink_ctx x = { j, c };
    colloq_toolcall_parser_feed(k->parser, text, len, &SINK, &x);
    return true;
}

void srv_constraint_finish(job *j, job_choice *c) {
    srv_constraint *k = c->cons;
    if (!k || !k->parser) return;
    sink_ctx x = { j, c };
    colloq_toolcall_parser_finish(k->parser, &SINK, &x);
}

int srv_constraint_n_calls(const srv_constraint *k) {
    return k && k->parser ? colloq_toolcall_parser_n_calls(k->parser) : 0;
}

json_t *srv_constraint_tool_calls(const srv_constraint *k) {
    return k && k->parser ? colloq_toolcall_parser_calls(k->parser) : NULL;
}
