/*
 * server.c - the HTTP side of `colloq serve` on libmicrohttpd (a thread per connection,
 * keep-alive, connection/header/body/idle limits): routing, auth and readiness checks,
 * per-request jobs fed by engine callbacks (textstream turns tokens into safe text),
 * SSE streaming through response callbacks, client hang-up -> engine cancel, model
 * loading in the background (/health 503 meanwhile) and graceful SIGTERM shutdown.
 * Request parsing and response shapes live in server_openai.c; metrics, auth beside it.
 */
#define _GNU_SOURCE      /* POLLRDHUP */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "chat.h"
#include "grammar.h"
#include "server.h"
#include "textstream.h"
#include "util.h"

#define WAIT_SLICE_MS 20       /* how often a waiting connection checks for a hang-up */

/* ---- buffers ---- */

void srv_buf_add(srv_buf *b, const void *data, size_t n) {
    if (b->oom || n == 0) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = colloq_realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = 0;
}

void srv_buf_free(srv_buf *b) {
    colloq_free(b->p);
    memset(b, 0, sizeof *b);
}

void colloq_server_default_config(colloq_server_config *c) {
    memset(c, 0, sizeof *c);
    c->host = "127.0.0.1";
    c->port = 8080;
    c->n_parallel = 4;
    c->queue_max = 64;
    c->max_body = 8u << 20;
    c->max_connections = 64;
    c->idle_timeout_s = 60;
    c->shutdown_timeout_s = 10.0;
    c->audit_retention_days = 180;
}

/* ---- jobs ---- */

static void job_unref(job *j) {
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0) return;
    for (int i = 0; i < j->req.n && j->ch; i++) {
        colloq_textstream_free(j->ch[i].ts);
        srv_constraint_free(j->ch[i].cons);
        srv_safety_choice_free(&j->ch[i]);
        srv_buf_free(&j->ch[i].text);
        json_decref(j->ch[i].logprobs);
    }
    colloq_free(j->ch);
    srv_buf_free(&j->sse);
    oai_request_free(&j->req);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    colloq_free(j);
}

/* Text for the client from choice c, already through the output filter (job lock held).
 * The one place generated text goes towards the client; choice_text below feeds it. */
static void choice_emit(job *j, job_choice *c, const char *text, size_t len) {
    if (len == 0 && !(c->logprobs && json_array_size(c->logprobs) > c->lp_sent && j->req.stream)) return;
    if (srv_constraint_text(j, c, text, len)) return;    /* tools: the parser splits content and calls */
    srv_buf_add(&c->text, text, len);
    if (j->req.stream) oai_sse_delta(j, c, text, len);
}

static void choice_text(job *j, job_choice *c, const char *text, size_t len) {
    srv_safety_output(c, text, len, false, &text, &len);   /* redaction holds back a possible match */
    choice_emit(j, c, text, len);
}

static int on_token(void *ud, const colloq_engine_token *t) {
    job_choice *c = ud;
    job *j = c->job;
    srv *s = j->s;
    double now = colloq_now();
    pthread_mutex_lock(&j->mu);
    if (t->index == 0) srv_metrics_ttft(s->metrics, now - j->t_start);
    else srv_metrics_itl(s->metrics, now - c->t_last);
    c->t_last = now;
    if (t->has_logprob) {
        if (!c->logprobs) c->logprobs = json_array();
        json_array_append_new(c->logprobs, oai_logprob_entry(s, t));
    }
    const char *out = NULL;
    size_t len = 0;
    bool stopped = false;
    colloq_textstream_push(c->ts, t->token, &out, &len, &stopped);
    choice_text(j, c, out, len);
    c->stopped_by_string = stopped;
    bool complete = srv_constraint_token(c->cons, t->token) > 0;   /* constrained answer finished */
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return stopped || complete || c->blocked ? 1 : 0;
}

static void on_done(void *ud, const colloq_engine_result *r) {
    job_choice *c = ud;
    job *j = c->job;
    srv *s = j->s;
    pthread_mutex_lock(&j->mu);
    c->res = *r;
    if (!c->stopped_by_string) {
        const char *out = NULL;
        size_t len = 0;
        colloq_textstream_flush(c->ts, &out, &len);
        choice_text(j, c, out, len);
    }
    if (c->rs) {                                        /* the output filter's held-back tail */
        const char *out = NULL;
        size_t len = 0;
        srv_safety_output(c, NULL, 0, true, &out, &len);
        choice_emit(j, c, out, len);
    }
    srv_constraint_finish(j, c);
    c->done = true;
    j->n_done++;
    bool defer = s->audit != NULL;                      /* the audit record goes before the final chunks */
    if (j->req.stream && !defer && r->finish != COLLOQ_FINISH_CANCELLED) oai_sse_finish(j, c);
    if (j->n_done == j->req.n && j->req.stream) {
        if (defer) {
            j->audit_due = true;                        /* stream_reader writes it, then ends the stream */
        } else {
            oai_sse_end(j);
            j->finished_stream = true;
        }
    }
    if (r->finish != COLLOQ_FINISH_CANCELLED) {
        srv_metrics_tokens(s->metrics, c->index == 0 ? r->n_prompt : 0, c->index == 0 ? r->n_cached : 0, r->n_gen);
        if (j->n_done == j->req.n) srv_metrics_e2e(s->metrics, colloq_now() - j->t_start);
    }
    if (r->finish == COLLOQ_FINISH_ERROR) colloq_log(0, "colloq serve: request %s failed: %s", j->id, r->error);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    job_unref(j);
}

static void job_cancel(job *j) {
    for (int i = 0; i < j->req.n; i++)
        if (!j->ch[i].done && j->ch[i].engine_id) colloq_engine_cancel(j->s->engine, j->ch[i].engine_id);
}

/* Whether the client closed its side (job lock not needed). */
static bool client_hung_up(int fd) {
    if (fd < 0) return false;
    struct pollfd p = { .fd = fd, .events = POLLRDHUP };
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* Wait on the job for up to one slice (lock held). */
static void job_wait_slice(job *j) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += WAIT_SLICE_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    pthread_cond_timedwait(&j->cv, &j->mu, &ts);
}

/* ---- per-connection request state ---- */

typedef struct {
    srv_buf body;
    bool too_large, answered;
    const char *endpoint;      /* metrics label */
    int status;
    double t0;
    char key_id[16];
} conn_req;

static enum MHD_Result send_text(struct MHD_Connection *conn, conn_req *cr, int status, const char *ctype,
                                 const char *text, size_t len, const char *retry_after) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", ctype);
    if (retry_after) MHD_add_response_header(resp, "Retry-After", retry_after);
    if (status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    cr->status = status;
    cr->answered = true;
    return rc;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, conn_req *cr, int status, json_t *o) {
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!txt) return send_text(conn, cr, 500, "application/json", "{\"error\":{\"message\":\"out of memory\","
                               "\"type\":\"server_error\",\"param\":null,\"code\":null}}", 79, NULL);
    enum MHD_Result rc = send_text(conn, cr, status, "application/json", txt, strlen(txt), NULL);
    free(txt);
    return rc;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, conn_req *cr, const oai_error *e) {
    char *txt = oai_error_json(e);
    const char *retry = e->status == 429 || e->status == 503 ? "1" : NULL;
    enum MHD_Result rc = send_text(conn, cr, e->status, "application/json", txt ? txt : "{}", txt ? strlen(txt) : 2,
                                   retry);
    colloq_free(txt);
    return rc;
}

static enum MHD_Result fail(struct MHD_Connection *conn, conn_req *cr, int status, const char *type,
                            const char *code, const char *msg) {
    oai_error e;
    oai_seterr(&e, status, type, NULL, code, "%s", msg);
    return send_error(conn, cr, &e);
}

/* ---- streaming ---- */

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    job *j = cls;
    (void)pos;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        if (j->sse_off < j->sse.len) {
            size_t n = j->sse.len - j->sse_off < max ? j->sse.len - j->sse_off : max;
            memcpy(buf, j->sse.p + j->sse_off, n);
            j->sse_off += n;
            if (j->sse_off == j->sse.len) j->sse.len = j->sse_off = 0;
            pthread_mutex_unlock(&j->mu);
            return (ssize_t)n;
        }
        if (j->audit_due && !j->client_gone) {         /* record first, then finish_reason and [DONE] */
            j->audit_due = false;
            pthread_mutex_unlock(&j->mu);
            int arc = srv_safety_audit(j, 200, NULL);
            pthread_mutex_lock(&j->mu);
            if (arc == 0) {
                srv_safety_stream_end(j);
                j->finished_stream = true;
            }
            continue;                                   /* not written: the stream ends without [DONE] */
        }
        if (j->finished_stream) { pthread_mutex_unlock(&j->mu); return MHD_CONTENT_READER_END_OF_STREAM; }
        if (j->client_gone || j->n_done == j->req.n) {     /* cancelled: no [DONE] to send */
            pthread_mutex_unlock(&j->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        job_wait_slice(j);
        if (j->sse_off >= j->sse.len && !j->finished_stream && client_hung_up(j->fd)) {
            j->client_gone = true;
            job_cancel(j);
        }
    }
}

static void stream_free(void *cls) {
    job *j = cls;
    pthread_mutex_lock(&j->mu);
    bool cancel = j->n_done < j->req.n;
    if (cancel) j->client_gone = true;
    pthread_mutex_unlock(&j->mu);
    if (cancel) job_cancel(j);
    srv_safety_audit(j, 499, "the client closed the connection");   /* no-op once written */
    job_unref(j);
}

/* ---- completions ---- */

/* The peer's address as text ("" when unknown). */
static void client_address(struct MHD_Connection *conn, char *out, size_t cap) {
    out[0] = 0;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)cap);
}

static enum MHD_Result completion(srv *s, struct MHD_Connection *conn, conn_req *cr, json_t *body, oai_kind kind) {
    oai_error e;
    job *j = colloq_calloc(1, sizeof *j);
    if (!j) return fail(conn, cr, 500, "server_error", NULL, "out of memory");
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->s = s;
    j->refs = 1;
    j->t_start = cr->t0;
    j->created = (long)time(NULL);
    client_address(conn, j->client, sizeof j->client);
    snprintf(j->key_id, sizeof j->key_id, "%s", cr->key_id);
    if (oai_parse(s, kind, body, &j->req, &e) < 0) {
        srv_safety_audit(j, e.status, e.message);
        job_unref(j);
        return send_error(conn, cr, &e);
    }
    pthread_mutex_lock(&s->id_mu);
    uint64_t seq = ++s->next_id;
    pthread_mutex_unlock(&s->id_mu);
    snprintf(j->id, sizeof j->id, "%s-%llx%06lx", kind == OAI_CHAT ? "chatcmpl" : "cmpl", (unsigned long long)seq,
             (unsigned long)(colloq_now() * 1e6) & 0xffffff);
    if (!j->req.seed_set) j->req.sp.seed = ((uint64_t)time(NULL) << 20) ^ (seq * 0x9e3779b97f4a7c15ull);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    j->fd = ci ? ci->connect_fd : -1;
    j->ch = colloq_calloc((size_t)j->req.n, sizeof *j->ch);
    if (!j->ch) { job_unref(j); return fail(conn, cr, 500, "server_error", NULL, "out of memory"); }
    for (int i = 0; i < j->req.n; i++) {
        job_choice *c = &j->ch[i];
        c->index = i;
        c->job = j;
        c->ts = colloq_textstream_new(s->model, (const char *const *)j->req.stops, j->req.n_stops, false);
        if (!c->ts) { job_unref(j); return fail(conn, cr, 500, "server_error", NULL, "out of memory"); }
        if (srv_constraint_new(s, &j->req, &c->cons, &e) < 0) { job_unref(j); return send_error(conn, cr, &e); }
        if (srv_safety_choice_new(s, c) < 0) { job_unref(j); return fail(conn, cr, 500, "server_error", NULL,
                                                                          "out of memory"); }
    }
    if (j->req.stream) {
        for (int i = 0; i < j->req.n; i++) oai_sse_role(j, &j->ch[i]);
    }
    /* submit every choice; seeds differ per choice so n > 1 gives different samples */
    int accepted = 0;
    colloq_err err = { { 0 } };
    int rc = COLLOQ_OK;
    for (int i = 0; i < j->req.n; i++) {
        colloq_engine_request q = {
            .prompt = j->req.prompt, .n_prompt = j->req.n_prompt, .max_tokens = j->req.max_tokens,
            .sampling = j->req.sp, .bias = j->req.bias, .n_bias = j->req.n_bias, .logprobs = j->req.logprobs,
            .cb = { .on_token = on_token, .on_done = on_done, .ud = &j->ch[i],
                    .logits_hook = j->ch[i].cons ? srv_constraint_logits : NULL },
        };
        q.sampling.seed += (uint64_t)i;
        pthread_mutex_lock(&j->mu);
        j->refs++;
        pthread_mutex_unlock(&j->mu);
        rc = colloq_engine_submit(s->engine, &q, &j->ch[i].engine_id, &err);
        if (rc != COLLOQ_OK) {
            pthread_mutex_lock(&j->mu);
            j->refs--;
            pthread_mutex_unlock(&j->mu);
            break;
        }
        accepted++;
    }
    if (rc != COLLOQ_OK) {
        /* withdraw the choices already queued and wait until the engine let them go */
        pthread_mutex_lock(&j->mu);
        j->client_gone = true;
        for (int i = 0; i < accepted; i++) colloq_engine_cancel(s->engine, j->ch[i].engine_id);
        while (j->n_done < accepted) job_wait_slice(j);
        pthread_mutex_unlock(&j->mu);
        srv_safety_audit(j, rc == COLLOQ_ENGINE_QUEUE_FULL ? 429 : rc == COLLOQ_ERR_CANCELLED ? 503 :
                            rc == COLLOQ_ERR_CONTEXT || rc == COLLOQ_ERR_ARG ? 400 : 500, err.msg);
        job_unref(j);
        if (rc == COLLOQ_ENGINE_QUEUE_FULL) return fail(conn, cr, 429, "rate_limit_error", "queue_full", err.msg);
        if (rc == COLLOQ_ERR_CANCELLED) return fail(conn, cr, 503, "server_error", "shutting_down", err.msg);
        if (rc == COLLOQ_ERR_CONTEXT) return fail(conn, cr, 400, "invalid_request_error", "context_length_exceeded",
                                                  err.msg);
        if (rc == COLLOQ_ERR_ARG) return fail(conn, cr, 400, "invalid_request_error", NULL, err.msg);
        return fail(conn, cr, 500, "server_error", NULL, err.msg);
    }
    if (j->req.stream) {
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, j,
                                                                      stream_free);
        if (!resp) {
            job_cancel(j);
            job_unref(j);
            return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        enum MHD_Result r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);                 /* the job's reference now belongs to the response */
        cr->status = 200;
        cr->answered = true;
        return r;
    }
    /* not streamed: wait for every choice, watching for a hang-up */
    pthread_mutex_lock(&j->mu);
    while (j->n_done < j->req.n) {
        job_wait_slice(j);
        if (!j->client_gone && j->n_done < j->req.n && client_hung_up(j->fd)) {
            j->client_gone = true;
            job_cancel(j);
        }
    }
    bool gone = j->client_gone, error = false;
    for (int i = 0; i < j->req.n; i++) error |= j->ch[i].res.finish == COLLOQ_FINISH_ERROR ||
                                               j->ch[i].res.finish == COLLOQ_FINISH_CANCELLED;
    json_t *resp = gone || error ? NULL : oai_response(j);
    char msg[300];
    snprintf(msg, sizeof msg, "%s", j->ch[0].res.error[0] ? j->ch[0].res.error : "the request was cancelled");
    pthread_mutex_unlock(&j->mu);
    int status = gone ? 499 : error ? (s->stopping ? 503 : 500) : 200;
    if (srv_safety_audit(j, status, status == 200 ? NULL : msg) < 0 && status == 200) {
        json_decref(resp);                              /* no record, no answer */
        resp = NULL;
        error = true;
        snprintf(msg, sizeof msg, "the audit log cannot be written");
    }
    job_unref(j);
    if (gone) return MHD_NO;                        /* nobody to answer */
    if (error) return fail(conn, cr, s->stopping ? 503 : 500, "server_error", NULL, msg);
    return send_json(conn, cr, 200, resp);
}

/* ---- routing ---- */

static const struct { const char *path, *method; } ROUTES[] = {
    { "/health", "GET" }, { "/metrics", "GET" }, { "/v1/models", "GET" },
    { "/v1/chat/completions", "POST" }, { "/v1/completions", "POST" },
    { "/tokenize", "POST" }, { "/detokenize", "POST" },
};

static enum MHD_Result dispatch(srv *s, struct MHD_Connection *conn, conn_req *cr, const char *url,
                                const char *method) {
    int route = -1;
    for (size_t i = 0; i < sizeof ROUTES / sizeof ROUTES[0]; i++)
        if (!strcmp(url, ROUTES[i].path)) route = (int)i;
    cr->endpoint = route >= 0 ? ROUTES[route].path : "other";
    if (route < 0) return fail(conn, cr, 404, "invalid_request_error", "not_found", "unknown endpoint");
    if (strcmp(method, ROUTES[route].method)) {
        if (!strcmp(method, "HEAD") && !strcmp(ROUTES[route].method, "GET")) {
            /* fall through: MHD sends headers only */
        } else {
            char msg[96];
            snprintf(msg, sizeof msg, "%s expects %s", ROUTES[route].path, ROUTES[route].method);
            return fail(conn, cr, 405, "invalid_request_error", "method_not_allowed", msg);
        }
    }
    bool ready = __atomic_load_n(&s->ready, __ATOMIC_ACQUIRE);
    if (route == 0)
        return send_json(conn, cr, ready ? 200 : 503, json_pack("{s:s}", "status", ready ? "ok" : "loading"));
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!srv_auth_check(s->auth, auth, cr->key_id, sizeof cr->key_id))
        return fail(conn, cr, 401, "invalid_request_error", "invalid_api_key",
                    auth ? "invalid API key" : "this server requires an API key (Authorization: Bearer KEY)");
    if (route == 1) {
        srv_buf out = { 0 };
        srv_metrics_render(s->metrics, ready ? s->engine : NULL, ready, &out);
        enum MHD_Result rc = send_text(conn, cr, out.oom ? 500 : 200, "text/plain; version=0.0.4; charset=utf-8",
                                       out.p ? out.p : "", out.len, NULL);
        srv_buf_free(&out);
        return rc;
    }
    if (!ready) return fail(conn, cr, 503, "server_error", "loading", "the model is still loading");
    if (route == 2) return send_json(conn, cr, 200, oai_models(s));

    /* POST bodies */
    if (cr->too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", s->cfg.max_body);
        return fail(conn, cr, 413, "invalid_request_error", "body_too_large", msg);
    }
    const char *txt = cr->body.p ? cr->body.p : "";
    for (size_t i = 0; i < cr->body.len;) {
        int n = colloq_utf8_seq_len((const unsigned char *)txt + i, cr->body.len - i);
        if (n <= 0) {
            char msg[96];
            snprintf(msg, sizeof msg, "the request body is not valid UTF-8 (byte %zu)", i);
            return fail(conn, cr, 400, "invalid_request_error", "invalid_utf8", msg);
        }
        i += (size_t)n;
    }
    json_error_t jerr;
    json_t *body = json_loadb(txt, cr->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!body) {
        char msg[300];
        snprintf(msg, sizeof msg, "malformed JSON body: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return fail(conn, cr, 400, "invalid_request_error", "invalid_json", msg);
    }
    if (!json_is_object(body)) {
        json_decref(body);
        return fail(conn, cr, 400, "invalid_request_error", "invalid_json", "the request body must be a JSON object");
    }
    enum MHD_Result rc;
    oai_error e;
    if (route == 3 || route == 4) {
        rc = completion(s, conn, cr, body, route == 3 ? OAI_CHAT : OAI_COMPLETION);
    } else {
        json_t *res = route == 5 ? oai_tokenize(s, body, &e) : oai_detokenize(s, body, &e);
        rc = res ? send_json(conn, cr, 200, res) : send_error(conn, cr, &e);
    }
    json_decref(body);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    srv *s = cls;
    (void)version;
    conn_req *cr = *con_cls;
    if (!cr) {
        cr = colloq_calloc(1, sizeof *cr);
        if (!cr) return MHD_NO;
        cr->t0 = colloq_now();
        cr->endpoint = "other";
        *con_cls = cr;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->cfg.max_body) {
            cr->too_large = true;
            cr->endpoint = "other";
            for (size_t i = 0; i < sizeof ROUTES / sizeof ROUTES[0]; i++)
                if (!strcmp(url, ROUTES[i].path)) cr->endpoint = ROUTES[i].path;
            char msg[96];
            snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", s->cfg.max_body);
            return fail(conn, cr, 413, "invalid_request_error", "body_too_large", msg);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!cr->answered) {
            if (cr->body.len + *upload_size > s->cfg.max_body) cr->too_large = true;
            else srv_buf_add(&cr->body, upload, *upload_size);
            if (cr->body.oom) return MHD_NO;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (cr->answered) return MHD_YES;
    return dispatch(s, conn, cr, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    srv *s = cls;
    (void)conn;
    conn_req *cr = *con_cls;
    if (!cr) return;
    if (cr->answered) srv_metrics_request(s->metrics, cr->endpoint, cr->status);
    colloq_log(1, "colloq serve: %s -> %d in %.1f ms%s%s%s", cr->endpoint, cr->status, (colloq_now() - cr->t0) * 1e3,
               cr->key_id[0] ? " (key " : "", cr->key_id, cr->key_id[0] ? ")" : "");
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && cr->status == 200)
        colloq_log(1, "colloq serve: %s: connection ended early (%d)", cr->endpoint, (int)toe);
    srv_buf_free(&cr->body);
    colloq_free(cr);
    *con_cls = NULL;
}

/* ---- lifetime ---- */

static void *loader(void *arg) {
    srv *s = arg;
    colloq_err err = { { 0 } };
    if (s->cfg.load_delay_ms > 0) usleep((useconds_t)s->cfg.load_delay_ms * 1000);
    colloq_model_params mp = colloq_model_default_params();
    mp.n_threads = s->cfg.n_threads;
    mp.verbose = s->cfg.verbose;
    int rc = colloq_model_load(s->cfg.model_path, &mp, &s->model, &err);
    if (rc == COLLOQ_OK && colloq_chat_fmt_init(s->model, s->cfg.chat_template, &s->fmt, &err) != COLLOQ_OK) {
        if (s->cfg.chat_template) rc = COLLOQ_ERR_ARG;    /* an explicit choice must work */
        else fprintf(stderr, "colloq serve: warning: %s\ncolloq serve: /v1/chat/completions answers 400 until "
                     "a format is chosen; /v1/completions works\n", err.msg);
    }
    if (rc == COLLOQ_OK) {
        colloq_engine_params ep = colloq_engine_default_params();
        ep.n_parallel = s->cfg.n_parallel;
        ep.n_ctx = s->cfg.n_ctx;
        ep.cache_type = s->cfg.cache_type;
        ep.prompt_chunk = s->cfg.prompt_chunk;
        ep.queue_max = s->cfg.queue_max;
        rc = colloq_engine_new(s->model, &ep, &s->engine, &err);
    }
    if (rc != COLLOQ_OK) {
        fprintf(stderr, "colloq serve: %s\n", err.msg);
        kill(getpid(), SIGUSR1);
        return NULL;
    }
    s->n_vocab = colloq_model_n_vocab(s->model);
    s->n_ctx = colloq_engine_n_ctx(s->engine);
    srv_grammar_init(s);
    fprintf(stderr, "colloq serve: model %s loaded (%s, %d slots x %d tokens of context); chat format: %s\n",
            s->model_name, colloq_model_arch(s->model), s->cfg.n_parallel, s->n_ctx,
            s->fmt ? colloq_chat_fmt_describe(s->fmt) : "none");
    __atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
    return NULL;
}

static struct MHD_Daemon *start_daemon(srv *s, int *port_out) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, s->cfg.host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)s->cfg.port);
    } else if (inet_pton(AF_INET6, s->cfg.host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)s->cfg.port);
        flags |= MHD_USE_IPv6;
    } else {
        fprintf(stderr, "colloq serve: --host '%s' is not an IPv4 or IPv6 address\n", s->cfg.host);
        return NULL;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)s->cfg.port, NULL, NULL, on_request, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->cfg.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->cfg.idle_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
        MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "colloq serve: cannot listen on %s port %d: %s\n", s->cfg.host, s->cfg.port,
                errno ? strerror(errno) : "unknown error");
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *port_out = di ? di->port : s->cfg.port;
    return d;
}

static const char *base_name(const char *p) {
    const char *b = strrchr(p, '/');
    return b ? b + 1 : p;
}

int colloq_server_main(const colloq_server_config *cfg) {
    srv s;
    memset(&s, 0, sizeof s);
    s.cfg = *cfg;
    if (!s.cfg.host) s.cfg.host = "127.0.0.1";
    if (!s.cfg.max_body) s.cfg.max_body = 8u << 20;
    snprintf(s.model_name, sizeof s.model_name, "%s", cfg->model_name ? cfg->model_name : base_name(cfg->model_path));
    pthread_mutex_init(&s.id_mu, NULL);
    s.metrics = srv_metrics_new();
    s.auth = srv_auth_new(cfg->api_keys, cfg->n_api_keys);
    if (!s.metrics || !s.auth) { fprintf(stderr, "colloq serve: out of memory\n"); return 1; }
    if (srv_safety_init(&s) < 0) { srv_metrics_free(s.metrics); srv_auth_free(s.auth); return 1; }

    /* Signals are taken by sigwait in this thread only. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int port = 0, status = 0;
    struct MHD_Daemon *d = start_daemon(&s, &port);
    if (!d) { srv_metrics_free(s.metrics); srv_auth_free(s.auth); srv_safety_free(&s); return 1; }
    bool v6 = strchr(s.cfg.host, ':') != NULL;
    printf("colloq serve: listening on http://%s%s%s:%d\n", v6 ? "[" : "", s.cfg.host, v6 ? "]" : "", port);
    fflush(stdout);
    if (srv_auth_enabled(s.auth)) fprintf(stderr, "colloq serve: API key required (%d key%s)\n", cfg->n_api_keys,
                                          cfg->n_api_keys == 1 ? "" : "s");
    pthread_t load_thread;
    if (pthread_create(&load_thread, NULL, loader, &s) != 0) {
        fprintf(stderr, "colloq serve: cannot start the loader thread\n");
        MHD_stop_daemon(d);
        srv_safety_free(&s);
        return 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    pthread_join(load_thread, NULL);
    if (sig == SIGUSR1) {
        status = 1;
    } else {
        fprintf(stderr, "colloq serve: %s: shutting down (in-flight work may finish within %.0f s)\n",
                sig == SIGTERM ? "SIGTERM" : "SIGINT", s.cfg.shutdown_timeout_s);
    }
    __atomic_store_n(&s.stopping, 1, __ATOMIC_RELEASE);
    MHD_socket lfd = MHD_quiesce_daemon(d);          /* stop accepting */
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    if (s.engine) {
        colloq_engine_close(s.engine);
        double until = colloq_now() + s.cfg.shutdown_timeout_s;
        colloq_engine_stats st;
        for (;;) {
            colloq_engine_get_stats(s.engine, &st);
            if ((st.active == 0 && st.queued == 0) || colloq_now() >= until) break;
            usleep(20000);
        }
        if (st.active || st.queued) {
            fprintf(stderr, "colloq serve: cancelling %d running and %d queued requests\n", st.active, st.queued);
            colloq_engine_cancel_all(s.engine);
        }
        usleep(100000);                              /* let waiting connections send what they have */
    }
    MHD_stop_daemon(d);
    colloq_engine_free(s.engine);
    colloq_chat_fmt_free(s.fmt);
    colloq_grammar_vocab_free(s.gvocab);
    colloq_model_free(s.model);
    srv_metrics_free(s.metrics);
    srv_auth_free(s.auth);
    srv_safety_free(&s);                             /* flushes and closes the audit log */
    pthread_mutex_destroy(&s.id_mu);
    if (status == 0) fprintf(stderr, "colloq serve: stopped\n");
    return status;
}
