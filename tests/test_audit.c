/*
 * test_audit.c - the audit log: SHA-256 and key ids, record contents, rotation by size
 * and age, retention, recovery of a partial last line, the directory lock, and many
 * threads writing at once.  `test_audit child DIR THREADS BIG` is the writer that
 * audit_kill.py kills with SIGKILL: it prints each request id once its write returned.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "audit.h"
#include "sha256.h"
#include "util.h"

static int n_fail, n_check;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        n_check++;                                                         \
        if (!(cond)) {                                                     \
            n_fail++;                                                      \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
        }                                                                  \
    } while (0)

static char base_dir[512];

static void rm_rf(const char *dir) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

static const char *fresh_dir(const char *name) {
    static char d[600];
    snprintf(d, sizeof d, "%s/%s", base_dir, name);
    rm_rf(d);
    return d;
}

static char *slurp(const char *path, size_t *len) {
    char *s;
    colloq_err err;
    if (colloq_read_file(path, &s, len, &err)) return NULL;
    return s;
}

/* Every line of every audit file in dir, parsed; counts lines and checks each ends in '\n'. */
static json_t *read_all(const char *dir, int *n_files) {
    char **paths;
    int n;
    colloq_err err;
    json_t *all = json_array();
    if (colloq_audit_list(dir, &paths, &n, &err)) { CHECK(0, "list: %s", err.msg); return all; }
    for (int i = 0; i < n; i++) {
        size_t len;
        char *s = slurp(paths[i], &len);
        CHECK(s && (len == 0 || s[len - 1] == '\n'), "%s: last line incomplete", paths[i]);
        for (char *line = s; line && line < s + len;) {
            char *nl = memchr(line, '\n', (size_t)(s + len - line));
            if (!nl) break;
            json_error_t je;
            json_t *o = json_loadb(line, (size_t)(nl - line), JSON_ALLOW_NUL, &je);
            CHECK(o && json_is_object(o), "%s: bad line: %s", paths[i], je.text);
            if (o) json_array_append_new(all, o);
            line = nl + 1;
        }
        colloq_free(s);
    }
    if (n_files) *n_files = n;
    colloq_audit_free_list(paths, n);
    return all;
}

/* ------------------------------------------------------------------ tests */

static void test_sha256(void) {
    static const struct { size_t n; char c; const char *hex; } v[] = {
        { 0, 'a', "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
        { 55, 'a', "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318" },
        { 56, 'a', "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a" },
        { 64, 'a', "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb" },
        { 119, 'a', "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb" },
        { 1000, 'a', "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3" },
    };
    char buf[1000], hex[65];
    uint8_t d[32];
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
        memset(buf, v[k].c, v[k].n);
        colloq_sha256(buf, v[k].n, d);
        for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
        CHECK(!strcmp(hex, v[k].hex), "sha256 of %zu bytes: %s", v[k].n, hex);
    }
    colloq_sha256("abc", 3, d);
    CHECK(d[0] == 0xba && d[1] == 0x78 && d[31] == 0xad, "sha256 abc");
    char id[COLLOQ_AUDIT_KEY_ID_LEN], id2[COLLOQ_AUDIT_KEY_ID_LEN];
    colloq_audit_key_id("sk-test-123", id);
    CHECK(!strcmp(id, "k_f79f3bec2796fc1b"), "key id %s", id);
    colloq_audit_key_id("sk-test-124", id2);
    CHECK(strcmp(id, id2) != 0, "different keys, same id");
}

static void test_records(void) {
    const char *dir = fresh_dir("records");
    colloq_audit *a;
    colloq_err err;
    CHECK(colloq_audit_open(dir, NULL, &a, &err) == 0, "open: %s", err.msg);
    json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", "my phone is [REDACTED:phone_cn]\nthanks");
    json_t *filter = json_pack("[{s:s, s:s, s:s, s:i}]", "stage", "input", "detector", "phone_cn", "action", "redact",
                               "count", 1);
    char kid[COLLOQ_AUDIT_KEY_ID_LEN];
    colloq_audit_key_id("sk-secret-key-value", kid);
    const char answer[] = "line one\nline \"two\" \xff\xfe 你好\0end";
    for (int k = 0; k < 3; k++) {
        char rid[32];
        snprintf(rid, sizeof rid, "req-%d", k);
        colloq_audit_record r = { .request_id = rid, .key_id = kid, .client = "127.0.0.1:5555", .model = "tiny",
                                  .endpoint = "/v1/chat/completions", .messages = msgs, .answer = answer,
                                  .answer_len = sizeof answer - 1, .filter = filter, .prompt_tokens = 12 + k,
                                  .completion_tokens = 34, .latency_s = 1.25, .status = 200,
                                  .finish_reason = "stop" };
        CHECK(colloq_audit_write(a, &r, &err) == 0, "write: %s", err.msg);
    }
    json_t *extra = json_pack("{s:[i,i]}", "choices", 1, 2);
    colloq_audit_record bad = { .request_id = "req-err", .status = 400, .error = "content_filter", .extra = extra };
    CHECK(colloq_audit_write(a, &bad, &err) == 0, "write: %s", err.msg);
    json_decref(extra);
    extra = json_pack("{s:s, s:i}", "request_id", "req-json", "status", 200);
    CHECK(colloq_audit_write_json(a, extra, &err) == 0 && !json_object_get(extra, "ts"), "write_json");
    json_decref(extra);
    char *path = colloq_strdup(colloq_audit_current_file(a));
    colloq_audit_close(a);
    CHECK(strstr(path, "/audit-") && strstr(path, ".jsonl"), "file name %s", path);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "file mode %o", st.st_mode & 0777);

    size_t len;
    char *raw = slurp(path, &len);
    CHECK(raw && !strstr(raw, "sk-secret-key-value"), "the API key reached the log");
    int lines = 0;
    for (size_t i = 0; raw && i < len; i++) lines += raw[i] == '\n';
    CHECK(lines == 5, "%d lines", lines);
    colloq_free(raw);
    json_t *all = read_all(dir, NULL);
    CHECK(json_array_size(all) == 5, "records %zu", json_array_size(all));
    json_t *r0 = json_array_get(all, 0);
    const char *ts = json_string_value(json_object_get(r0, "ts"));
    CHECK(ts && strlen(ts) == 24 && ts[10] == 'T' && ts[23] == 'Z', "ts %s", ts ? ts : "(none)");
    CHECK(!strcmp(json_string_value(json_object_get(r0, "request_id")), "req-0"), "request id");
    CHECK(!strcmp(json_string_value(json_object_get(r0, "key_id")), kid), "key id");
    CHECK(!strcmp(json_string_value(json_object_get(r0, "client")), "127.0.0.1:5555"), "client");
    CHECK(json_equal(json_object_get(r0, "messages"), msgs), "messages");
    CHECK(json_equal(json_object_get(r0, "filter"), filter), "filter");
    const char want_answer[] = "line one\nline \"two\" \xEF\xBF\xBD\xEF\xBF\xBD 你好\0end";
    json_t *ans = json_object_get(r0, "answer");
    CHECK(json_string_length(ans) == sizeof want_answer - 1 &&
          !memcmp(json_string_value(ans), want_answer, sizeof want_answer - 1), "answer %s", json_string_value(ans));
    CHECK(json_integer_value(json_object_get(json_object_get(r0, "usage"), "prompt_tokens")) == 12, "usage");
    CHECK(json_integer_value(json_object_get(r0, "latency_ms")) == 1250, "latency");
    CHECK(json_integer_value(json_object_get(r0, "status")) == 200, "status");
    json_t *r3 = json_array_get(all, 3);
    CHECK(json_is_null(json_object_get(r3, "key_id")) && json_is_null(json_object_get(r3, "answer")) &&
          !strcmp(json_string_value(json_object_get(r3, "error")), "content_filter") &&
          json_array_size(json_object_get(r3, "choices")) == 2, "error record");
    json_t *r4 = json_array_get(all, 4);
    CHECK(json_is_string(json_object_get(r4, "ts")) && !strcmp(json_string_value(json_object_get(r4, "request_id")),
                                                                 "req-json"), "json record");
    json_decref(all);
    json_decref(msgs);
    json_decref(filter);

    /* Reopen: the same young, small file is continued. */
    CHECK(colloq_audit_open(dir, NULL, &a, &err) == 0, "reopen: %s", err.msg);
    CHECK(!strcmp(colloq_audit_current_file(a), path), "continued %s", colloq_audit_current_file(a));
    /* One writer per directory. */
    colloq_audit *b = NULL;
    CHECK(colloq_audit_open(dir, NULL, &b, &err) == COLLOQ_ERR_IO && !b && strstr(err.msg, "another process"),
          "second writer: %s", err.msg);
    colloq_audit_close(a);
    colloq_free(path);

    colloq_audit_params p = colloq_audit_default_params();
    p.max_bytes = 0;
    CHECK(colloq_audit_open(dir, &p, &a, &err) == COLLOQ_ERR_ARG, "bad params");
    colloq_audit_fsync m;
    CHECK(colloq_audit_parse_fsync("batch", &m) && m == COLLOQ_AUDIT_FSYNC_BATCH && !colloq_audit_parse_fsync("x", &m),
          "parse fsync");
    CHECK(colloq_audit_open("/proc/colloq-no-such-dir/x", NULL, &a, &err) == COLLOQ_ERR_IO, "bad dir");
}

static void write_n(colloq_audit *a, int from, int n, int pad) {
    char *text = colloq_malloc((size_t)pad + 1);
    memset(text, 'x', (size_t)pad);
    text[pad] = 0;
    for (int k = from; k < from + n; k++) {
        char rid[32];
        colloq_err err;
        snprintf(rid, sizeof rid, "r%06d", k);
        colloq_audit_record r = { .request_id = rid, .answer = text, .answer_len = (size_t)pad, .status = 200 };
        CHECK(colloq_audit_write(a, &r, &err) == 0, "write %d: %s", k, err.msg);
    }
    colloq_free(text);
}

/* Records come back in order, each once, numbered from..from+n-1. */
static void check_sequence(json_t *all, int n) {
    CHECK((int)json_array_size(all) == n, "%zu records, want %d", json_array_size(all), n);
    for (int k = 0; k < n && k < (int)json_array_size(all); k++) {
        char rid[32];
        snprintf(rid, sizeof rid, "r%06d", k);
        const char *got = json_string_value(json_object_get(json_array_get(all, (size_t)k), "request_id"));
        CHECK(got && !strcmp(got, rid), "record %d is %s", k, got ? got : "(none)");
    }
}

static void test_rotation(void) {
    const char *dir = fresh_dir("rotation");
    colloq_audit_params p = colloq_audit_default_params();
    p.max_bytes = 1000;
    p.fsync_mode = COLLOQ_AUDIT_FSYNC_NEVER;
    colloq_audit *a;
    colloq_err err;
    CHECK(colloq_audit_open(dir, &p, &a, &err) == 0, "open: %s", err.msg);
    write_n(a, 0, 40, 200);                 /* ~330 bytes each: 3 per file */
    write_n(a, 40, 1, 3000);                /* bigger than max_bytes: a file of its own */
    write_n(a, 41, 2, 10);
    colloq_audit_close(a);
    char **paths;
    int n;
    CHECK(colloq_audit_list(dir, &paths, &n, &err) == 0 && n >= 14, "%d files", n);
    for (int i = 0; i < n; i++) {
        struct stat st;
        stat(paths[i], &st);
        CHECK(st.st_size <= 1000 || i == n - 2, "%s: %lld bytes", paths[i], (long long)st.st_size);
    }
    colloq_audit_free_list(paths, n);
    int nf;
    json_t *all = read_all(dir, &nf);
    check_sequence(all, 43);
    json_decref(all);

    /* Age: a file older than rotate_s is not continued, nor written after. */
    dir = fresh_dir("rotation_age");
    p = colloq_audit_default_params();
    p.rotate_s = 1;
    p.fsync_mode = COLLOQ_AUDIT_FSYNC_BATCH;
    p.batch_ms = 50;
    CHECK(colloq_audit_open(dir, &p, &a, &err) == 0, "open: %s", err.msg);
    write_n(a, 0, 2, 10);
    char *first = colloq_strdup(colloq_audit_current_file(a));
    usleep(1100 * 1000);
    write_n(a, 2, 1, 10);
    CHECK(strcmp(first, colloq_audit_current_file(a)) < 0, "age rotation: %s then %s", first,
          colloq_audit_current_file(a));
    colloq_audit_close(a);
    colloq_free(first);
    all = read_all(dir, &nf);
    check_sequence(all, 3);
    CHECK(nf == 2, "%d files", nf);
    json_decref(all);
}

static void touch_old(const char *dir, const char *name, int days_ago) {
    char path[800];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) { fputs("{\"v\":1}\n", f); fclose(f); }
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= (time_t)days_ago * 86400;
    tv[1] = tv[0];
    utimes(path, tv);
}

static bool exists(const char *dir, const char *name) {
    char path[800];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void test_retention(void) {
    const char *dir = fresh_dir("retention");
    mkdir(dir, 0700);
    touch_old(dir, "audit-20000101-000000.jsonl", 400);
    touch_old(dir, "audit-20000101-000000.jsonl.partial", 400);
    touch_old(dir, "audit-20000102-000000.jsonl", 181);
    touch_old(dir, "audit-20000103-000000.jsonl", 179);
    touch_old(dir, "notes.txt", 400);
    colloq_audit *a;
    colloq_err err;
    CHECK(colloq_audit_open(dir, NULL, &a, &err) == 0, "open: %s", err.msg);
    CHECK(!exists(dir, "audit-20000101-000000.jsonl") && !exists(dir, "audit-20000101-000000.jsonl.partial") &&
          !exists(dir, "audit-20000102-000000.jsonl"), "old files kept");
    CHECK(exists(dir, "audit-20000103-000000.jsonl") && exists(dir, "notes.txt"), "young or foreign file deleted");
    /* The 179-day-old file is too old to continue: a new one sorts after it. */
    const char *cur = strrchr(colloq_audit_current_file(a), '/') + 1;
    CHECK(strcmp(cur, "audit-20000103-000000.jsonl") > 0, "current %s", cur);
    colloq_audit_close(a);

    dir = fresh_dir("retention_off");
    mkdir(dir, 0700);
    touch_old(dir, "audit-20000101-000000.jsonl", 4000);
    colloq_audit_params p = colloq_audit_default_params();
    p.retention_days = 0;
    CHECK(colloq_audit_open(dir, &p, &a, &err) == 0, "open: %s", err.msg);
    CHECK(exists(dir, "audit-20000101-000000.jsonl"), "retention 0 deleted a file");
    colloq_audit_close(a);
}

static void append_raw(const char *path, const char *s) {
    int fd = open(path, O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, s, strlen(s)) == (ssize_t)strlen(s), "append to %s", path);
    if (fd >= 0) close(fd);
}

static void test_recovery(void) {
    const char *dir = fresh_dir("recovery");
    colloq_audit *a;
    colloq_err err;
    CHECK(colloq_audit_open(dir, NULL, &a, &err) == 0, "open: %s", err.msg);
    write_n(a, 0, 3, 20);
    char *path = colloq_strdup(colloq_audit_current_file(a));
    colloq_audit_close(a);
    append_raw(path, "{\"v\":1,\"ts\":\"2024-01-01T00:00:00.000Z\",\"request_id\":\"r0000");   /* cut short */
    CHECK(colloq_audit_open(dir, NULL, &a, &err) == 0, "reopen: %s", err.msg);
    CHECK(!strcmp(colloq_audit_current_file(a), path), "continued");
    write_n(a, 3, 2, 20);
    colloq_audit_close(a);
    json_t *all = read_all(dir, NULL);
    check_sequence(all, 5);
    json_decref(all);
    char qpath[800];
    snprintf(qpath, sizeof qpath, "%s.partial", path);
    size_t len;
    char *q = slurp(qpath, &len);
    CHECK(q && !strcmp(q, "{\"v\":1,\"ts\":\"2024-01-01T00:00:00.000Z\",\"request_id\":\"r0000\n"), "quarantine %s",
          q ? q : "(none)");
    colloq_free(q);

    /* A file that is nothing but a partial line, newest of several. */
    dir = fresh_dir("recovery_only");
    mkdir(dir, 0700);
    char p2[800];
    snprintf(p2, sizeof p2, "%s/audit-20990101-000000-2.jsonl", dir);
    int fd = open(p2, O_WRONLY | O_CREAT, 0600);
    CHECK(fd >= 0 && write(fd, "{\"v\":1,\"x\":\"\0\0\0", 15) == 15, "write");
    close(fd);
    snprintf(p2, sizeof p2, "%s/audit-20990101-000000.jsonl", dir);
    fd = open(p2, O_WRONLY | O_CREAT, 0600);
    CHECK(fd >= 0 && write(fd, "{\"v\":1}\n{\"v\":1,\"par", 19) == 19, "write");
    close(fd);
    CHECK(colloq_audit_open(dir, NULL, &a, &err) == 0, "open: %s", err.msg);
    /* Only the newest (-2) is recovered and continued; the older one is left for verify to report. */
    CHECK(strstr(colloq_audit_current_file(a), "audit-20990101-000000-2.jsonl") != NULL, "newest by sequence: %s",
          colloq_audit_current_file(a));
    write_n(a, 0, 1, 5);
    colloq_audit_close(a);
    snprintf(p2, sizeof p2, "%s/audit-20990101-000000-2.jsonl", dir);
    q = slurp(p2, &len);
    CHECK(q && len > 0 && strlen(q) == len && memchr(q, '\n', len) == q + len - 1 &&
          strncmp(q, "{\"v\":1,\"ts\"", 11) == 0, "recovered file");
    colloq_free(q);
    colloq_free(path);
}

/* A write the file system refuses half-way (file size limit) leaves no partial record. */
static void test_write_failure(void) {
    const char *dir = fresh_dir("write_failure");
    colloq_audit_params p = colloq_audit_default_params();
    p.fsync_mode = COLLOQ_AUDIT_FSYNC_NEVER;
    colloq_audit *a;
    colloq_err err;
    CHECK(colloq_audit_open(dir, &p, &a, &err) == 0, "open: %s", err.msg);
    write_n(a, 0, 2, 10);
    struct stat st;
    CHECK(stat(colloq_audit_current_file(a), &st) == 0, "stat");
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)st.st_size + 100;
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    char big[1000];
    memset(big, 'b', sizeof big);
    colloq_audit_record r = { .request_id = "too-big", .answer = big, .answer_len = sizeof big, .status = 200 };
    CHECK(colloq_audit_write(a, &r, &err) == COLLOQ_ERR_IO, "write past the size limit succeeded");
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    struct stat st2;
    CHECK(stat(colloq_audit_current_file(a), &st2) == 0 && st2.st_size == st.st_size, "cut back to %lld, is %lld",
          (long long)st.st_size, (long long)st2.st_size);
    write_n(a, 2, 1, 10);
    colloq_audit_close(a);
    json_t *all = read_all(dir, NULL);
    check_sequence(all, 3);
    json_decref(all);
}

typedef struct { colloq_audit *a; int id, n, bad; } writer_arg;

static void *writer_main(void *p) {
    writer_arg *w = p;
    for (int k = 0; k < w->n; k++) {
        char rid[32], ans[200];
        colloq_err err;
        snprintf(rid, sizeof rid, "t%d-%d", w->id, k);
        int pad = (w->id * 37 + k * 11) % 150;
        memset(ans, 'a' + w->id, (size_t)pad);
        colloq_audit_record r = { .request_id = rid, .answer = ans, .answer_len = (size_t)pad, .status = 200 };
        if (colloq_audit_write(w->a, &r, &err)) w->bad++;
    }
    return NULL;
}

static void concurrent(const char *name, colloq_audit_fsync mode, int threads, int per_thread, uint64_t max_bytes) {
    const char *dir = fresh_dir(name);
    colloq_audit_params p = colloq_audit_default_params();
    p.fsync_mode = mode;
    p.max_bytes = max_bytes;
    p.batch_ms = 20;
    colloq_audit *a;
    colloq_err err;
    CHECK(colloq_audit_open(dir, &p, &a, &err) == 0, "open: %s", err.msg);
    pthread_t th[16];
    writer_arg w[16];
    for (int t = 0; t < threads; t++) {
        w[t] = (writer_arg){ a, t, per_thread, 0 };
        pthread_create(&th[t], NULL, writer_main, &w[t]);
    }
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        CHECK(w[t].bad == 0, "thread %d: %d failed writes", t, w[t].bad);
    }
    colloq_audit_close(a);
    int nf;
    json_t *all = read_all(dir, &nf);
    CHECK((int)json_array_size(all) == threads * per_thread, "%s: %zu records", name, json_array_size(all));
    /* Each (thread, k) exactly once, and each thread's records in order. */
    int *next = colloq_calloc((size_t)threads, sizeof *next);
    for (size_t i = 0; i < json_array_size(all); i++) {
        int t, k;
        const char *rid = json_string_value(json_object_get(json_array_get(all, i), "request_id"));
        CHECK(rid && sscanf(rid, "t%d-%d", &t, &k) == 2 && t >= 0 && t < threads && next[t] == k, "order: %s",
              rid ? rid : "(none)");
        if (rid && sscanf(rid, "t%d-%d", &t, &k) == 2 && t >= 0 && t < threads) next[t] = k + 1;
    }
    colloq_free(next);
    CHECK(max_bytes > 1000000 || nf > 3, "%s: %d files", name, nf);
    json_decref(all);
}

/* ------------------------------------------------------------------ kill -9 child */

static int child_main(const char *dir, int threads, int big);

typedef struct { colloq_audit *a; int id, big; } child_arg;
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

static void *child_thread(void *p) {
    child_arg *c = p;
    size_t pad = c->big && c->id == 0 ? 1000000 : 64;
    char *ans = colloq_malloc(pad);
    memset(ans, 'z', pad);
    for (long k = 0;; k++) {
        char rid[64], line[80];
        colloq_err err;
        snprintf(rid, sizeof rid, "p%d-t%d-%ld", (int)getpid(), c->id, k);
        colloq_audit_record r = { .request_id = rid, .answer = ans, .answer_len = pad, .status = 200 };
        if (colloq_audit_write(c->a, &r, &err)) { fprintf(stderr, "child: %s\n", err.msg); _exit(3); }
        int n = snprintf(line, sizeof line, "%s\n", rid);
        pthread_mutex_lock(&out_mu);
        ssize_t w = write(1, line, (size_t)n);   /* reported only after the record is durable */
        pthread_mutex_unlock(&out_mu);
        if (w != n) _exit(4);
    }
    return NULL;
}

static int child_main(const char *dir, int threads, int big) {
    colloq_audit *a;
    colloq_err err;
    if (colloq_audit_open(dir, NULL, &a, &err)) { fprintf(stderr, "child: %s\n", err.msg); return 2; }
    if (write(1, "ready\n", 6) != 6) return 4;
    pthread_t th[16];
    child_arg c[16];
    if (threads > 16) threads = 16;
    for (int t = 0; t < threads; t++) {
        c[t] = (child_arg){ a, t, big };
        pthread_create(&th[t], NULL, child_thread, &c[t]);
    }
    for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
    colloq_audit_close(a);   /* reached only with 0 threads: open, recover, close */
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 5 && !strcmp(argv[1], "child")) return child_main(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc < 2) { fprintf(stderr, "usage: test_audit TMPDIR | test_audit child DIR THREADS BIG\n"); return 2; }
    snprintf(base_dir, sizeof base_dir, "%s", argv[1]);
    rm_rf(base_dir);
    if (mkdir(base_dir, 0700) && errno != EEXIST) { perror(base_dir); return 1; }
    test_sha256();
    test_records();
    test_rotation();
    test_retention();
    test_recovery();
    test_write_failure();
    concurrent("threads_never", COLLOQ_AUDIT_FSYNC_NEVER, 8, 300, 20000);
    concurrent("threads_batch", COLLOQ_AUDIT_FSYNC_BATCH, 8, 100, 64ull << 20);
    concurrent("threads_always", COLLOQ_AUDIT_FSYNC_ALWAYS, 4, 25, 3000);
    printf("test_audit: %d checks, %d failed\n", n_check, n_fail);
    return n_fail ? 1 : 0;
}
