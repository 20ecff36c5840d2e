/*
 * server.h - `colloq serve`: the OpenAI-compatible HTTP server over the engine.
 * What cli/cmd_serve.c configures and runs, plus what the server_*.c files share
 * (server state, per-request jobs, metrics, auth, OpenAI mapping).  Internal to
 * libcolloq; the HTTP library (libmicrohttpd) is visible only inside server.c.
 */
#ifndef COLLOQ_SERVER_H
#define COLLOQ_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "colloq.h"
#include "engine.h"

struct json_t;

/* ---- configuration (cmd_serve.c fills it) ---- */

typedef struct {
    const char *model_path;
    const char *model_name;        /* id in /v1/models and responses; NULL = file name */
    const char *host;              /* IPv4 or IPv6 literal; default 127.0.0.1 */
    int         port;              /* 0 = any free port (printed on stdout) */
    int         n_parallel, n_ctx, n_threads, queue_max;
    colloq_cache_type cache_type;  /* each slot's KV cache (zero: F16) */
    int         prompt_chunk;      /* prompt tokens per step while others decode (0: engine default) */
    const char *chat_template;     /* NULL, a built-in name or a Jinja file */
    const char *const *api_keys;   /* n_api_keys keys; none = no auth */
    int         n_api_keys;
    size_t      max_body;          /* bytes; default 8 MiB */
    int         max_connections;
    int         idle_timeout_s;    /* idle / slow connections are closed after this */
    double      shutdown_timeout_s;/* SIGTERM: in-flight work may finish within this */
    int         load_delay_ms;     /* testing aid: wait before loading (shows /health 503) */
    bool        verbose;
    const char *safety_config;     /* --safety-config: redaction rules (JSON), NULL = none */
    const char *audit_dir;         /* --audit-log: audit log directory, NULL = none */
    int         audit_fsync;       /* colloq_audit_fsync (0 = always) */
    unsigned long long audit_max_bytes;   /* 0 = the audit log's default */
    int         audit_retention_days;     /* default 180; 0 keeps every file */
} colloq_server_config;

void colloq_server_default_config(colloq_server_config *c);
/* Start listening, load the model, serve until SIGTERM/SIGINT.  Returns an exit status
 * (0 after a graceful shutdown, 1 when the model cannot be loaded or the port bound). */
int  colloq_server_main(const colloq_server_config *c);

/* ---- growing byte buffer ---- */

typedef struct { char *p; size_t len, cap; bool oom; } srv_buf;
void srv_buf_add(srv_buf *b, const void *data, size_t n);
void srv_buf_free(srv_buf *b);

/* ---- metrics (server_metrics.c) ---- */

typedef struct srv_metrics srv_metrics;
srv_metrics *srv_metrics_new(void);
void srv_metrics_free(srv_metrics *m);
void srv_metrics_request(srv_metrics *m, const char *endpoint, int status);
void srv_metrics_ttft(srv_metrics *m, double seconds);
void srv_metrics_itl(srv_metrics *m, double seconds);
void srv_metrics_e2e(srv_metrics *m, double seconds);
void srv_metrics_tokens(srv_metrics *m, int prompt, int cached, int generated);
/* Prometheus text exposition of everything, with the engine's gauges (e may be NULL). */
void srv_metrics_render(srv_metrics *m, colloq_engine *e, bool ready, srv_buf *out);

/* ---- auth (server_auth.c) ---- */

typedef struct srv_auth srv_auth;
srv_auth *srv_auth_new(const char *const *keys, int n);
void srv_auth_free(srv_auth *a);
bool srv_auth_enabled(const srv_auth *a);
/* Check an Authorization header value ("Bearer KEY"); constant time in the key bytes.
 * key_id (>= 13 bytes) receives a short hash of the presented key for logs, never the key. */
bool srv_auth_check(const srv_auth *a, const char *header, char *key_id, size_t key_id_cap);

/* ---- OpenAI mapping (server_openai.c) ---- */

typedef enum { OAI_CHAT, OAI_COMPLETION } oai_kind;

/* An error answer: HTTP status and OpenAI's error object fields. */
typedef struct {
    int  status;
    char message[512];
    const char *type;              /* "invalid_request_error", ... */
    const char *param;             /* NULL = null */
    const char *code;              /* NULL = null */
} oai_error;

#define OAI_MAX_STOPS 16
#define OAI_MAX_N 16

typedef struct {
    oai_kind kind;
    bool   stream, include_usage;
    int    n;                      /* choices */
    int    max_tokens;             /* 0 = until the context is full */
    colloq_sampler_params sp;
    bool   seed_set;
    colloq_logit_bias *bias;       /* colloq_malloc'd */
    int    n_bias;
    int    logprobs;               /* -1 none, else top count (0..20) */
    bool   echo;
    char  *stops[OAI_MAX_STOPS + 8];   /* request stops + the chat format's */
    int    n_stops;
    colloq_token *prompt;          /* colloq_malloc'd */
    int    n_prompt;
    char   model[128];
    struct colloq_toolspec *tools; /* tools / tool_choice (NULL: none); server_grammar.c */
    struct colloq_grammar  *grammar;   /* response_format json_object / json_schema, or NULL */
    struct json_t *filtered;       /* messages / prompt after input filtering, for the audit log */
    struct json_t *filter_log;     /* input filter actions (array) or NULL; server_safety.c */
} oai_request;

typedef struct srv srv;

/* Parse and validate a request body (already a JSON object) into r; on failure fills e. */
int  oai_parse(srv *s, oai_kind kind, struct json_t *body, oai_request *r, oai_error *e);
void oai_request_free(oai_request *r);
/* Error JSON text (colloq_malloc'd). */
char *oai_error_json(const oai_error *e);
void oai_seterr(oai_error *e, int status, const char *type, const char *param, const char *code,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---- per-request job (server.c), read by server_openai.c's response builders ---- */

typedef struct {
    int      index;
    uint64_t engine_id;
    struct colloq_textstream *ts;
    srv_buf  text;                 /* all text so far */
    struct json_t *logprobs;       /* array of per-token entries, or NULL */
    size_t   lp_sent;              /* entries already streamed */
    bool     done, stopped_by_string;
    colloq_engine_result res;
    double   t_last;               /* last token time (inter-token latency) */
    struct job *job;
    struct srv_constraint *cons;   /* constrained output (server_grammar.c), or NULL */
    struct colloq_redact_stream *rs;   /* output filter (server_safety.c), or NULL */
    bool     blocked;              /* a block rule matched: finish_reason content_filter */
} job_choice;

typedef struct job {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    srv *s;
    oai_request req;
    char   id[48];
    long   created;
    double t_start;
    int    refs;                   /* connection + engine requests not yet done */
    int    n_done;
    bool   client_gone, finished_stream;
    int    fd;                     /* client socket, for hang-up checks */
    srv_buf sse;                   /* streamed bytes not yet sent */
    size_t sse_off;
    job_choice *ch;
    char   client[64];             /* client address, for the audit log */
    char   key_id[20];             /* hash of the API key presented, "" without auth */
    bool   audit_due, audited;     /* stream: record to write before the final chunks; written */
} job;

/* Response builders (server_openai.c); called with the job's lock held. */
struct json_t *oai_response(const job *j);
/* Append the first chunk of a chat stream (delta with the role). */
void oai_sse_role(job *j, job_choice *c);
/* Append SSE events for choice c's new text (and new logprob entries). */
void oai_sse_delta(job *j, job_choice *c, const char *text, size_t len);
/* Append choice c's final chunk (finish_reason). */
void oai_sse_finish(job *j, job_choice *c);
/* Append the usage chunk (when asked) and "data: [DONE]". */
void oai_sse_end(job *j);
/* Append a chat chunk whose delta is the given object (a new reference, consumed). */
void oai_sse_delta_obj(job *j, job_choice *c, struct json_t *delta);
/* One logprobs entry for token t (content-style object). */
struct json_t *oai_logprob_entry(srv *s, const colloq_engine_token *t);
const char *oai_finish_reason(const job_choice *c);

/* ---- server state ---- */

struct srv {
    colloq_server_config cfg;
    colloq_model *model;
    struct colloq_chat_fmt *fmt;
    colloq_engine *engine;
    srv_metrics *metrics;
    srv_auth *auth;
    char model_name[128];
    int n_vocab, n_ctx;
    struct colloq_grammar_vocab *gvocab;   /* token bytes and tries for constrained output */
    struct colloq_redact *redact;  /* --safety-config rules, or NULL */
    struct colloq_audit *audit;    /* --audit-log, or NULL */
    volatile int ready;            /* model loaded and engine running */
    volatile int stopping;
    pthread_mutex_t id_mu;
    uint64_t next_id;
};

/* ---- constrained output (server_grammar.c) ---- */

typedef struct srv_constraint srv_constraint;
/* Build s->gvocab once the model is loaded (a warning when it cannot). */
void srv_grammar_init(srv *s);
/* Read tools / tool_choice / response_format of a chat request into r (400 on errors). */
int  srv_grammar_parse(srv *s, struct json_t *body, oai_request *r, oai_error *e);
void srv_grammar_request_free(oai_request *r);
/* One choice's constraint (*out NULL when the request has none). */
int  srv_constraint_new(srv *s, const oai_request *r, srv_constraint **out, oai_error *e);
void srv_constraint_free(srv_constraint *k);
/* The engine's logits_hook; ud is the job_choice. */
int  srv_constraint_logits(void *ud, float *logits, int n_vocab);
/* After a generated token: 1 when the answer is complete (stop now), else 0. */
int  srv_constraint_token(srv_constraint *k, colloq_token t);
/* With tools, generated text goes through the tool-call parser: content reaches c->text
 * and the stream from there, calls become tool_calls deltas.  Returns false (nothing
 * done) when the choice has no tools.  Job lock held. */
bool srv_constraint_text(job *j, job_choice *c, const char *text, size_t len);
/* End of the choice's text (before its final chunk). */
void srv_constraint_finish(job *j, job_choice *c);
int  srv_constraint_n_calls(const srv_constraint *k);
struct json_t *srv_constraint_tool_calls(const srv_constraint *k);   /* new reference or NULL */

/* ---- safety filters and audit log (server_safety.c) ---- */

/* Load the rules and open the audit log (prints why and returns -1 when it cannot). */
int  srv_safety_init(srv *s);
void srv_safety_free(srv *s);
bool srv_safety_output_rules(const srv *s);
void srv_safety_request_free(oai_request *r);
/* Input rules on a messages array in place (block: -1 with a 400 content_filter error). */
int  srv_safety_messages(srv *s, struct json_t *msgs, oai_request *r, oai_error *e);
/* Input rules on a prompt: *out (colloq_malloc'd, NULL when unchanged) replaces it. */
int  srv_safety_prompt(srv *s, const char *text, size_t len, char **out, size_t *out_len, oai_request *r,
                       oai_error *e);
/* Token-id prompts cannot be filtered: refused while input rules are active. */
int  srv_safety_token_prompt(srv *s, struct json_t *tokens, oai_request *r, oai_error *e);
int  srv_safety_choice_new(srv *s, job_choice *c);
void srv_safety_choice_free(job_choice *c);
/* Output rules on choice c's text: *out and *out_len: what may go to the client (final: end of text).
 * Sets c->blocked when a block rule matched.  Job lock held. */
void srv_safety_output(job_choice *c, const char *text, size_t len, bool final, const char **out,
                       size_t *out_len);
/* Final chunks of every choice and [DONE] (a deferred stream end).  Job lock held. */
void srv_safety_stream_end(job *j);
/* Write job j's audit record (once; job lock NOT held).  0, or -1 when it could not be written. */
int  srv_safety_audit(job *j, int status, const char *error);

/* /tokenize and /detokenize bodies -> answer JSON (or an error). */
struct json_t *oai_tokenize(srv *s, struct json_t *body, oai_error *e);
struct json_t *oai_detokenize(srv *s, struct json_t *body, oai_error *e);
struct json_t *oai_models(srv *s);

#endif
