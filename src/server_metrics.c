/*
 * server_metrics.c - the server's Prometheus metrics: request counts by endpoint and
 * status, token counters, histograms (time to first token, inter-token latency,
 * end-to-end latency) and the engine's gauges, rendered in the text exposition
 * format (HELP/TYPE lines, _bucket/_sum/_count).  Thread-safe; no I/O.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "server.h"
#include "util.h"

#define N_BUCKETS 14
static const double BOUNDS[N_BUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120 };

typedef struct { uint64_t count[N_BUCKETS + 1]; double sum; uint64_t n; } histo;

#define MAX_SERIES 128
typedef struct { char endpoint[32]; int status; uint64_t n; } req_series;

struct srv_metrics {
    pthread_mutex_t mu;
    req_series req[MAX_SERIES];
    int n_req;
    histo ttft, itl, e2e;
    uint64_t prompt, cached, generated;
};

srv_metrics *srv_metrics_new(void) {
    srv_metrics *m = colloq_calloc(1, sizeof *m);
    if (m) pthread_mutex_init(&m->mu, NULL);
    return m;
}

void srv_metrics_free(srv_metrics *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    colloq_free(m);
}

void srv_metrics_request(srv_metrics *m, const char *endpoint, int status) {
    pthread_mutex_lock(&m->mu);
    int i = 0;
    while (i < m->n_req && (m->req[i].status != status || strcmp(m->req[i].endpoint, endpoint))) i++;
    if (i == m->n_req && m->n_req < MAX_SERIES) {
        snprintf(m->req[i].endpoint, sizeof m->req[i].endpoint, "%s", endpoint);
        m->req[i].status = status;
        m->n_req++;
    }
    if (i < m->n_req) m->req[i].n++;
    pthread_mutex_unlock(&m->mu);
}

static void observe(srv_metrics *m, histo *h, double v) {
    pthread_mutex_lock(&m->mu);
    int b = 0;
    while (b < N_BUCKETS && v > BOUNDS[b]) b++;
    h->count[b]++;
    h->sum += v;
    h->n++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_ttft(srv_metrics *m, double s) { observe(m, &m->ttft, s); }
void srv_metrics_itl(srv_metrics *m, double s) { observe(m, &m->itl, s); }
void srv_metrics_e2e(srv_metrics *m, double s) { observe(m, &m->e2e, s); }

void srv_metrics_tokens(srv_metrics *m, int prompt, int cached, int generated) {
    pthread_mutex_lock(&m->mu);
    m->prompt += (uint64_t)prompt;
    m->cached += (uint64_t)cached;
    m->generated += (uint64_t)generated;
    pthread_mutex_unlock(&m->mu);
}

static void addf(srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(srv_buf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) srv_buf_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void head(srv_buf *b, const char *name, const char *type, const char *help) {
    addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_histo(srv_buf *b, const char *name, const char *help, const histo *h) {
    head(b, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i < N_BUCKETS; i++) {
        cum += h->count[i];
        addf(b, "%s_bucket{le=\"%g\"} %llu\n", name, BOUNDS[i], (unsigned long long)cum);
    }
    cum += h->count[N_BUCKETS];
    addf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    addf(b, "%s_sum %.9g\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->n);
}

static void counter(srv_buf *b, const char *name, const char *help, uint64_t v) {
    head(b, name, "counter", help);
    addf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge(srv_buf *b, const char *name, const char *help, double v) {
    head(b, name, "gauge", help);
    addf(b, "%s %.9g\n", name, v);
}

void srv_metrics_render(srv_metrics *m, colloq_engine *e, bool ready, srv_buf *b) {
    colloq_engine_stats st;
    memset(&st, 0, sizeof st);
    if (e) colloq_engine_get_stats(e, &st);
    pthread_mutex_lock(&m->mu);
    head(b, "colloq_http_requests_total", "counter", "HTTP requests answered, by endpoint and status code.");
    for (int i = 0; i < m->n_req; i++)
        addf(b, "colloq_http_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n", m->req[i].endpoint,
             m->req[i].status, (unsigned long long)m->req[i].n);
    counter(b, "colloq_prompt_tokens_total", "Prompt tokens of finished completion requests.", m->prompt);
    counter(b, "colloq_prompt_cached_tokens_total", "Prompt tokens reused from the prefix cache.", m->cached);
    counter(b, "colloq_generation_tokens_total", "Tokens generated.", m->generated);
    render_histo(b, "colloq_time_to_first_token_seconds", "Time from request arrival to the first generated token.",
                 &m->ttft);
    render_histo(b, "colloq_inter_token_latency_seconds", "Time between consecutive generated tokens of a sequence.",
                 &m->itl);
    render_histo(b, "colloq_request_duration_seconds", "End-to-end latency of completion requests.", &m->e2e);
    pthread_mutex_unlock(&m->mu);
    gauge(b, "colloq_ready", "1 when the model is loaded and requests are served.", ready ? 1 : 0);
    gauge(b, "colloq_queue_length", "Requests waiting for a slot.", st.queued);
    gauge(b, "colloq_queue_capacity", "Requests the queue holds before answering 429.", st.queue_max);
    gauge(b, "colloq_slots_active", "Slots generating or evaluating a prompt.", st.active);
    gauge(b, "colloq_slots", "Parallel slots.", st.n_slots);
    gauge(b, "colloq_kv_cache_used_tokens", "Positions held in the slots' KV caches (incl. prefix cache).",
          (double)st.kv_used);
    gauge(b, "colloq_kv_cache_usage_ratio", "Fraction of KV cache positions in use.",
          st.kv_total ? (double)st.kv_used / (double)st.kv_total : 0.0);
    counter(b, "colloq_prefix_cache_hits_total", "Requests that reused a cached prompt prefix.", st.prefix_hits);
    counter(b, "colloq_engine_steps_total", "Batched forward passes run by the scheduler.", st.steps);
    head(b, "colloq_engine_busy_seconds_total", "counter", "Time the scheduler spent evaluating.");
    addf(b, "colloq_engine_busy_seconds_total %.6f\n", st.busy_seconds);
    counter(b, "colloq_requests_cancelled_total", "Sequences cancelled (client gone, shutdown).", st.requests_cancelled);
    gauge(b, "colloq_cancel_latency_steps_max", "Most scheduler steps a cancelled sequence kept its slot after the "
          "cancel.", st.cancel_steps_max);
}
