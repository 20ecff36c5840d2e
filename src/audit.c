/*
 * audit.c - the audit log: file naming and listing, crash recovery of the newest file,
 * one-write appends under a mutex with the fsync policy, rotation by size and age,
 * retention, the batch fsync thread, and SHA-256 for API-key ids.  Must not keep an API
 * key or write a record in more than one piece when the kernel lets it finish in one.
 */
#include "audit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "sha256.h"

void colloq_audit_key_id(const char *key, char out[COLLOQ_AUDIT_KEY_ID_LEN]) {
    static const char prefix[] = "colloq-audit-key:";
    size_t kl = strlen(key), pl = sizeof prefix - 1;
    uint8_t d[32];
    char *buf = colloq_malloc(pl + kl);
    if (buf) {
        memcpy(buf, prefix, pl);
        memcpy(buf + pl, key, kl);
        colloq_sha256(buf, pl + kl, d);
        memset(buf, 0, pl + kl);
        colloq_free(buf);
    } else {
        colloq_sha256(key, kl, d);           /* out of memory: still never the key itself */
    }
    out[0] = 'k';
    out[1] = '_';
    for (int k = 0; k < 8; k++) snprintf(out + 2 + 2 * k, 3, "%02x", d[k]);
}

/* ------------------------------------------------------------------ names and times */

void colloq_audit_format_time(double unix_s, char *out) {
    time_t sec = (time_t)unix_s;
    int ms = (int)((unix_s - (double)sec) * 1000.0);
    if (ms < 0) ms = 0;
    if (ms > 999) ms = 999;
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", ms);
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct { char stamp[16]; long seq; } file_key;   /* "YYYYMMDD-HHMMSS", then -N */

/* audit-YYYYMMDD-HHMMSS.jsonl or audit-YYYYMMDD-HHMMSS-N.jsonl */
static bool parse_name(const char *name, file_key *k) {
    if (strncmp(name, "audit-", 6)) return false;
    const char *s = name + 6;
    for (int i = 0; i < 15; i++) {
        bool want_dash = i == 8;
        if (want_dash ? s[i] != '-' : (s[i] < '0' || s[i] > '9')) return false;
    }
    memcpy(k->stamp, s, 15);
    k->stamp[15] = 0;
    s += 15;
    k->seq = 0;
    if (*s == '-') {
        char *end;
        s++;
        if (*s < '0' || *s > '9') return false;
        k->seq = strtol(s, &end, 10);
        if (k->seq <= 0 || k->seq > 1000000) return false;
        s = end;
    }
    return !strcmp(s, ".jsonl");
}

static int key_cmp(const file_key *a, const file_key *b) {
    int c = strcmp(a->stamp, b->stamp);
    return c ? c : (a->seq > b->seq) - (a->seq < b->seq);
}

typedef struct { file_key key; char *path; } listed;

static int listed_cmp(const void *a, const void *b) {
    return key_cmp(&((const listed *)a)->key, &((const listed *)b)->key);
}

static char *path_join(const char *dir, const char *name) {
    size_t dl = strlen(dir), nl = strlen(name);
    char *p = colloq_malloc(dl + nl + 2);
    if (!p) return NULL;
    memcpy(p, dir, dl);
    p[dl] = '/';
    memcpy(p + dl + 1, name, nl + 1);
    return p;
}

static int list_files(const char *dir, listed **out, int *n_out, colloq_err *err) {
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) return colloq_seterr(err, COLLOQ_ERR_IO, "%s: %s", dir, strerror(errno));
    listed *v = NULL;
    int n = 0, cap = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        file_key k;
        if (!parse_name(e->d_name, &k)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            listed *nv = colloq_realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) { rc = COLLOQ_ERR_NOMEM; break; }
            v = nv;
        }
        v[n].key = k;
        if (!(v[n].path = path_join(dir, e->d_name))) { rc = COLLOQ_ERR_NOMEM; break; }
        n++;
    }
    closedir(d);
    if (rc) {
        for (int i = 0; i < n; i++) colloq_free(v[i].path);
        colloq_free(v);
        return colloq_seterr(err, rc, "out of memory");
    }
    if (n) qsort(v, (size_t)n, sizeof *v, listed_cmp);
    *out = v;
    *n_out = n;
    return 0;
}

int colloq_audit_list(const char *dir, char ***paths, int *n, colloq_err *err) {
    listed *v;
    int rc = list_files(dir, &v, n, err);
    *paths = NULL;
    if (rc) return rc;
    char **p = colloq_calloc((size_t)*n + 1, sizeof *p);
    if (!p) {
        for (int i = 0; i < *n; i++) colloq_free(v[i].path);
        colloq_free(v);
        return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < *n; i++) p[i] = v[i].path;
    colloq_free(v);
    *paths = p;
    return 0;
}

void colloq_audit_free_list(char **paths, int n) {
    if (!paths) return;
    for (int i = 0; i < n; i++) colloq_free(paths[i]);
    colloq_free(paths);
}

/* ------------------------------------------------------------------ the log */

struct colloq_audit {
    char  *dir;
    colloq_audit_params p;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    pthread_t thread;
    bool   thread_on, stop, dirty;
    int    lock_fd, fd, dir_fd;
    char  *path;                       /* current file */
    file_key key;
    uint64_t size;
    double created;                    /* wall time the current file was started */
};

colloq_audit_params colloq_audit_default_params(void) {
    colloq_audit_params p = { COLLOQ_AUDIT_FSYNC_ALWAYS, 64ull << 20, 86400, 180, 1000 };
    return p;
}

bool colloq_audit_parse_fsync(const char *s, colloq_audit_fsync *out) {
    if (!strcmp(s, "always")) *out = COLLOQ_AUDIT_FSYNC_ALWAYS;
    else if (!strcmp(s, "batch")) *out = COLLOQ_AUDIT_FSYNC_BATCH;
    else if (!strcmp(s, "never")) *out = COLLOQ_AUDIT_FSYNC_NEVER;
    else return false;
    return true;
}

/* Move an unfinished last line of path to path.partial and cut it off. */
static int recover(const char *path, colloq_err *err) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return colloq_seterr(err, COLLOQ_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    char buf[65536];
    if (fstat(fd, &st)) { rc = colloq_seterr(err, COLLOQ_ERR_IO, "%s: %s", path, strerror(errno)); goto done; }
    off_t size = st.st_size, keep = 0;
    if (size == 0) goto done;
    if (pread(fd, buf, 1, size - 1) != 1) { rc = colloq_seterr(err, COLLOQ_ERR_IO, "%s: read failed", path); goto done; }
    if (buf[0] == '\n') goto done;
    for (off_t end = size; end > 0 && !keep;) {      /* find the last newline */
        off_t start = end > (off_t)sizeof buf ? end - (off_t)sizeof buf : 0;
        ssize_t got = pread(fd, buf, (size_t)(end - start), start);
        if (got != end - start) { rc = colloq_seterr(err, COLLOQ_ERR_IO, "%s: read failed", path); goto done; }
        for (ssize_t i = got - 1; i >= 0; i--)
            if (buf[i] == '\n') { keep = start + i + 1; break; }
        end = start;
    }
    char *qpath = colloq_malloc(strlen(path) + 9);
    if (!qpath) { rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory"); goto done; }
    sprintf(qpath, "%s.partial", path);
    int qfd = open(qpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (qfd < 0) rc = colloq_seterr(err, COLLOQ_ERR_IO, "%s: %s", qpath, strerror(errno));
    for (off_t at = keep; !rc && at < size;) {
        size_t want = size - at > (off_t)sizeof buf ? sizeof buf : (size_t)(size - at);
        ssize_t got = pread(fd, buf, want, at);
        if (got <= 0 || write(qfd, buf, (size_t)got) != got)
            rc = colloq_seterr(err, COLLOQ_ERR_IO, "%s: cannot quarantine the partial line", qpath);
        at += got > 0 ? got : 0;
    }
    if (!rc && write(qfd, "\n", 1) != 1) rc = colloq_seterr(err, COLLOQ_ERR_IO, "%s: write failed", qpath);
    if (!rc && fdatasync(qfd)) rc = colloq_seterr(err, COLLOQ_ERR_IO, "%s: %s", qpath, strerror(errno));
    if (qfd >= 0) close(qfd);
    if (!rc && (ftruncate(fd, keep) || fdatasync(fd)))
        rc = colloq_seterr(err, COLLOQ_ERR_IO, "%s: cannot cut the partial line: %s", path, strerror(errno));
    if (!rc)
        colloq_log(0, "audit: %s: partial last line (%lld bytes, a write cut short by a crash) moved to %s",
                   path, (long long)(size - keep), qpath);
    colloq_free(qpath);
done:
    close(fd);
    return rc;
}

/* Delete audit files (and quarantined partial lines) not written for retention_days. */
static void apply_retention(colloq_audit *a) {
    if (a->p.retention_days <= 0) return;
    DIR *d = opendir(a->dir);
    if (!d) return;
    time_t limit = time(NULL) - (time_t)a->p.retention_days * 86400;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        bool ours = !strncmp(e->d_name, "audit-", 6) &&
                    ((nl > 6 && !strcmp(e->d_name + nl - 6, ".jsonl")) ||
                     (nl > 14 && !strcmp(e->d_name + nl - 14, ".jsonl.partial")));
        if (!ours) continue;
        char *p = path_join(a->dir, e->d_name);
        struct stat st;
        if (p && (!a->path || strcmp(p, a->path)) && !stat(p, &st) && st.st_mtime < limit) {
            if (unlink(p) == 0) colloq_log(1, "audit: retention: deleted %s", p);
        }
        colloq_free(p);
    }
    closedir(d);
}

/* Start a new file named after now, sorting after every existing one. */
static int new_file(colloq_audit *a, colloq_err *err) {
    double now = wall_now();
    time_t sec = (time_t)now;
    struct tm tm;
    gmtime_r(&sec, &tm);
    file_key k;
    strftime(k.stamp, sizeof k.stamp, "%Y%m%d-%H%M%S", &tm);
    k.seq = 0;
    if (a->path && key_cmp(&k, &a->key) <= 0) { k = a->key; k.seq++; }
    for (int tries = 0; tries < 1000; tries++, k.seq++) {
        char name[64];
        if (k.seq) snprintf(name, sizeof name, "audit-%s-%ld.jsonl", k.stamp, k.seq);
        else snprintf(name, sizeof name, "audit-%s.jsonl", k.stamp);
        char *path = path_join(a->dir, name);
        if (!path) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory");
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST) { colloq_free(path); continue; }
        if (fd < 0) {
            int rc = colloq_seterr(err, COLLOQ_ERR_IO, "%s: %s", path, strerror(errno));
            colloq_free(path);
            return rc;
        }
        if (a->p.fsync_mode != COLLOQ_AUDIT_FSYNC_NEVER) fsync(a->dir_fd);   /* the name itself */
        if (a->fd >= 0) {
            if (a->p.fsync_mode != COLLOQ_AUDIT_FSYNC_NEVER) fdatasync(a->fd);
            close(a->fd);
        }
        colloq_free(a->path);
        a->fd = fd;
        a->path = path;
        a->key = k;
        a->size = 0;
        a->created = now;
        a->dirty = false;
        return 0;
    }
    return colloq_seterr(err, COLLOQ_ERR_IO, "%s: cannot find a free audit file name", a->dir);
}

static void *batch_main(void *p) {
    colloq_audit *a = p;
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long ns = ts.tv_nsec + (long)(a->p.batch_ms % 1000) * 1000000L;
        ts.tv_sec += a->p.batch_ms / 1000 + ns / 1000000000L;
        ts.tv_nsec = ns % 1000000000L;
        pthread_cond_timedwait(&a->cv, &a->mu, &ts);
        if (a->dirty && a->fd >= 0) {
            if (fdatasync(a->fd)) colloq_log(0, "audit: %s: fdatasync: %s", a->path, strerror(errno));
            a->dirty = false;
        }
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

void colloq_audit_close(colloq_audit *a) {
    if (!a) return;
    if (a->thread_on) {
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    if (a->fd >= 0) {
        if (a->p.fsync_mode != COLLOQ_AUDIT_FSYNC_NEVER) fdatasync(a->fd);
        close(a->fd);
    }
    if (a->dir_fd >= 0) close(a->dir_fd);
    if (a->lock_fd >= 0) close(a->lock_fd);   /* releases the flock */
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    colloq_free(a->path);
    colloq_free(a->dir);
    colloq_free(a);
}

static int open_dir(colloq_audit *a, const char *dir, colloq_err *err) {
    if (mkdir(dir, 0700) && errno != EEXIST)
        return colloq_seterr(err, COLLOQ_ERR_IO, "audit log %s: %s", dir, strerror(errno));
    if ((a->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return colloq_seterr(err, COLLOQ_ERR_IO, "audit log %s: %s", dir, strerror(errno));
    char *lp = path_join(dir, ".audit.lock");
    if (!lp) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory");
    a->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    colloq_free(lp);
    if (a->lock_fd < 0) return colloq_seterr(err, COLLOQ_ERR_IO, "audit log %s: %s", dir, strerror(errno));
    if (flock(a->lock_fd, LOCK_EX | LOCK_NB))
        return colloq_seterr(err, COLLOQ_ERR_IO, "audit log %s: %s", dir,
                             errno == EWOULDBLOCK ? "another process is writing to it" : strerror(errno));
    return 0;
}

/* Continue the newest file when it is young and small enough, else start a new one. */
static int open_current(colloq_audit *a, colloq_err *err) {
    listed *v;
    int n, rc = list_files(a->dir, &v, &n, err);
    if (rc) return rc;
    if (n > 0) {
        listed *last = &v[n - 1];
        rc = recover(last->path, err);
        struct tm tm = { 0 };
        const char *s = last->key.stamp;
        sscanf(s, "%4d%2d%2d-%2d%2d%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec);
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        double created = (double)timegm(&tm);
        struct stat st;
        if (!rc && !stat(last->path, &st) && (uint64_t)st.st_size < a->p.max_bytes &&
            wall_now() - created < (double)a->p.rotate_s) {
            int fd = open(last->path, O_WRONLY | O_APPEND | O_CLOEXEC);
            if (fd >= 0) {
                a->fd = fd;
                a->path = last->path;
                last->path = NULL;
                a->size = (uint64_t)st.st_size;
                a->created = created;
            }
        }
        if (a->fd < 0 && !rc) {                 /* new names must sort after the newest */
            a->key = last->key;
            a->path = last->path;
            last->path = NULL;
        }
    }
    for (int i = 0; i < n; i++) colloq_free(v[i].path);
    colloq_free(v);
    if (rc) return rc;
    if (a->fd < 0) return new_file(a, err);
    a->key = (file_key){ "", 0 };
    const char *base = strrchr(a->path, '/');
    parse_name(base ? base + 1 : a->path, &a->key);
    return 0;
}

int colloq_audit_open(const char *dir, const colloq_audit_params *p, colloq_audit **out, colloq_err *err) {
    *out = NULL;
    colloq_audit *a = colloq_calloc(1, sizeof *a);
    if (!a) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory");
    a->p = p ? *p : colloq_audit_default_params();
    a->fd = a->dir_fd = a->lock_fd = -1;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    int rc = 0;
    if (a->p.max_bytes == 0 || a->p.rotate_s <= 0 || a->p.batch_ms <= 0 || a->p.retention_days < 0 ||
        a->p.fsync_mode < COLLOQ_AUDIT_FSYNC_ALWAYS || a->p.fsync_mode > COLLOQ_AUDIT_FSYNC_NEVER)
        rc = colloq_seterr(err, COLLOQ_ERR_ARG, "audit log: bad parameters");
    if (!rc && !(a->dir = colloq_strdup(dir))) rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory");
    if (!rc) rc = open_dir(a, dir, err);
    if (!rc) rc = open_current(a, err);
    if (!rc) apply_retention(a);
    if (!rc && a->p.fsync_mode == COLLOQ_AUDIT_FSYNC_BATCH) {
        if (pthread_create(&a->thread, NULL, batch_main, a))
            rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "audit log: cannot start the fsync thread");
        else
            a->thread_on = true;
    }
    if (rc) { colloq_audit_close(a); return rc; }
    *out = a;
    return 0;
}

const char *colloq_audit_current_file(colloq_audit *a) { return a->path; }

/* Append line (ending in '\n') as one write; on failure cut the file back. Lock held. */
static int append_locked(colloq_audit *a, const char *line, size_t len, colloq_err *err) {
    double now = wall_now();
    if (a->size > 0 && (a->size + len > a->p.max_bytes || now - a->created >= (double)a->p.rotate_s)) {
        int rc = new_file(a, err);
        if (rc) return rc;
        apply_retention(a);
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(a->fd, line + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            if (ftruncate(a->fd, (off_t)a->size)) colloq_log(0, "audit: %s: cannot cut a failed write", a->path);
            return colloq_seterr(err, COLLOQ_ERR_IO, "audit log %s: %s", a->path, strerror(e));
        }
        done += (size_t)w;
    }
    a->size += len;
    if (a->p.fsync_mode == COLLOQ_AUDIT_FSYNC_ALWAYS && fdatasync(a->fd))
        return colloq_seterr(err, COLLOQ_ERR_IO, "audit log %s: fdatasync: %s", a->path, strerror(errno));
    if (a->p.fsync_mode == COLLOQ_AUDIT_FSYNC_BATCH) a->dirty = true;
    return 0;
}

int colloq_audit_write_json(colloq_audit *a, json_t *obj, colloq_err *err) {
    json_t *o = obj;
    if (!json_object_get(obj, "ts")) {
        char ts[32];
        colloq_audit_format_time(wall_now(), ts);
        o = json_object();
        if (!o || json_object_set_new(o, "ts", json_string(ts)) || json_object_update(o, obj)) {
            json_decref(o);
            return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory");
        }
    }
    char *text = json_dumps(o, JSON_COMPACT);   /* strings escape '\n': one line */
    if (o != obj) json_decref(o);
    if (!text) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "audit: cannot serialise the record");
    size_t len = strlen(text);
    char *line = colloq_malloc(len + 1);
    if (!line) { free(text); return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory"); }
    memcpy(line, text, len);
    line[len] = '\n';
    free(text);
    pthread_mutex_lock(&a->mu);
    int rc = append_locked(a, line, len + 1, err);
    pthread_mutex_unlock(&a->mu);
    colloq_free(line);
    return rc;
}

/* A JSON string of n bytes, invalid UTF-8 replaced by U+FFFD; NULL s gives null. */
static json_t *text_value(const char *s, size_t n) {
    if (!s) return json_null();
    size_t bad = 0;
    for (size_t i = 0; i < n;) {
        int l = colloq_utf8_seq_len((const unsigned char *)s + i, n - i);
        if (l == 0) { bad++; i++; } else i += (size_t)l;
    }
    if (!bad) return json_stringn(s, n);
    char *c = colloq_malloc(n + 2 * bad + 1);
    if (!c) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        int l = colloq_utf8_seq_len((const unsigned char *)s + i, n - i);
        if (l == 0) { memcpy(c + o, "\xEF\xBF\xBD", 3); o += 3; i++; }
        else { memcpy(c + o, s + i, (size_t)l); o += (size_t)l; i += (size_t)l; }
    }
    json_t *v = json_stringn(c, o);
    colloq_free(c);
    return v;
}

static json_t *str_value(const char *s) { return s ? text_value(s, strlen(s)) : json_null(); }

int colloq_audit_write(colloq_audit *a, const colloq_audit_record *r, colloq_err *err) {
    char ts[32];
    colloq_audit_format_time(wall_now(), ts);
    json_t *o = json_object();
    int bad = !o;
    bad |= json_object_set_new(o, "v", json_integer(1));
    bad |= json_object_set_new(o, "ts", json_string(ts));
    bad |= json_object_set_new(o, "request_id", str_value(r->request_id));
    bad |= json_object_set_new(o, "key_id", str_value(r->key_id));
    bad |= json_object_set_new(o, "client", str_value(r->client));
    bad |= json_object_set_new(o, "model", str_value(r->model));
    if (r->endpoint) bad |= json_object_set_new(o, "endpoint", str_value(r->endpoint));
    bad |= json_object_set(o, "messages", r->messages ? r->messages : json_null());
    bad |= json_object_set_new(o, "answer", text_value(r->answer, r->answer ? r->answer_len : 0));
    if (r->tool_calls) bad |= json_object_set(o, "tool_calls", r->tool_calls);
    bad |= json_object_set_new(o, "filter", r->filter ? json_incref(r->filter) : json_array());
    bad |= json_object_set_new(o, "usage", json_pack("{s:i, s:i}", "prompt_tokens", r->prompt_tokens,
                                                      "completion_tokens", r->completion_tokens));
    bad |= json_object_set_new(o, "latency_ms", json_integer((json_int_t)(r->latency_s * 1000.0 + 0.5)));
    bad |= json_object_set_new(o, "status", json_integer(r->status));
    if (r->finish_reason) bad |= json_object_set_new(o, "finish_reason", str_value(r->finish_reason));
    if (r->error) bad |= json_object_set_new(o, "error", str_value(r->error));
    if (r->extra) bad |= json_object_update(o, r->extra);
    int rc = bad ? colloq_seterr(err, COLLOQ_ERR_NOMEM, "audit: cannot build the record")
                 : colloq_audit_write_json(a, o, err);
    json_decref(o);
    return rc;
}
