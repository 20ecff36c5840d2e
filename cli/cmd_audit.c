/*
 * cmd_audit.c - `colloq audit verify DIR` (every line of every audit file parses; partial
 * and corrupt lines reported as FILE:LINE) and `colloq audit search DIR [filters]`
 * (prints matching records).  Reads the log only: never writes, truncates or recovers
 * (that happens when the server next opens the log).
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "cli.h"
#include "util.h"

static void audit_usage(FILE *out) {
    fprintf(out,
            "usage: colloq audit verify DIR\n"
            "       colloq audit search DIR [--request-id ID] [--since T] [--until T] [--text S] [--status N]\n\n"
            "verify: checks that every line of every audit-*.jsonl file in DIR is a JSON record.  A\n"
            "  partial last line in the newest file (a write cut short by a crash) is reported but\n"
            "  allowed: the next `colloq serve --audit-log DIR` moves it to FILE.partial.  Exit status\n"
            "  0 when no line is corrupt, 1 otherwise.\n"
            "search: prints the records (one JSON line each, oldest first) that match every filter:\n"
            "  --request-id ID  that request\n"
            "  --since T        at or after T;  --until T  before T.  T is YYYY-MM-DD,\n"
            "                   YYYY-MM-DDTHH:MM[:SS[.mmm]][Z] (UTC) or seconds since 1970\n"
            "  --text S         S occurs in a message, the answer, a tool call or the error\n"
            "  --status N       HTTP status N\n");
}

/* One line at a time from an audit file; the last one may lack its newline. */
typedef struct {
    FILE  *f;
    char  *line;
    size_t cap;
    long   no;
} line_reader;

/* Returns the line length (without '\n'), -1 at the end; *partial when no newline ended it. */
static long next_line(line_reader *r, bool *partial) {
    ssize_t n = getline(&r->line, &r->cap, r->f);
    if (n < 0) return -1;
    r->no++;
    *partial = n == 0 || r->line[n - 1] != '\n';
    return *partial ? (long)n : (long)n - 1;
}

static json_t *parse_record(const char *s, size_t n, char *why, size_t why_n) {
    json_error_t je;
    json_t *o = json_loadb(s, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!o) { snprintf(why, why_n, "does not parse: %s (column %d)", je.text, je.column); return NULL; }
    if (!json_is_object(o) || !json_is_string(json_object_get(o, "ts"))) {
        snprintf(why, why_n, "not an audit record (an object with \"ts\")");
        json_decref(o);
        return NULL;
    }
    return o;
}

static int audit_verify(const char *dir) {
    char **paths;
    int n;
    colloq_err err;
    if (colloq_audit_list(dir, &paths, &n, &err)) {
        fprintf(stderr, "colloq audit: %s\n", err.msg);
        return 1;
    }
    long records = 0, corrupt = 0, partial = 0;
    for (int i = 0; i < n; i++) {
        line_reader r = { fopen(paths[i], "rb"), NULL, 0, 0 };
        if (!r.f) { printf("%s: cannot open\n", paths[i]); corrupt++; continue; }
        long len;
        bool part;
        while ((len = next_line(&r, &part)) >= 0) {
            char why[200];
            if (part) {
                if (i == n - 1) {
                    printf("%s:%ld: partial last line (%ld bytes): a write cut short by a crash; the next "
                           "open moves it to %s.partial\n", paths[i], r.no, len, paths[i]);
                    partial++;
                } else {
                    printf("%s:%ld: corrupt: partial line in a file that is not the newest\n", paths[i], r.no);
                    corrupt++;
                }
                break;
            }
            json_t *o = parse_record(r.line, (size_t)len, why, sizeof why);
            if (!o) { printf("%s:%ld: corrupt: %s\n", paths[i], r.no, why); corrupt++; continue; }
            json_decref(o);
            records++;
        }
        if (ferror(r.f)) { printf("%s: read error\n", paths[i]); corrupt++; }
        free(r.line);
        fclose(r.f);
    }
    printf("%d files, %ld records, %ld partial, %ld corrupt: %s\n", n, records, partial, corrupt,
           corrupt ? "FAILED" : "ok");
    colloq_audit_free_list(paths, n);
    return corrupt ? 1 : 0;
}

/* T -> the records' ts format, or false. */
static bool parse_time(const char *s, char out[32]) {
    struct tm tm = { 0 };
    int ms = 0, n = 0;
    size_t len = strlen(s);
    if (len > 0 && strspn(s, "0123456789") == len) {
        char *end;
        double v = strtod(s, &end);
        if (v > 1e11) return false;
        colloq_audit_format_time(v, out);
        return true;
    }
    if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10) return false;
    const char *p = s + 10;
    if (*p == 'T' || *p == ' ') {
        int m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &m) != 2 || m != 5) return false;
        p += 1 + m;
        if (*p == ':') {
            if (sscanf(p + 1, "%2d%n", &tm.tm_sec, &m) != 1 || m != 2) return false;
            p += 3;
            if (*p == '.') {
                if (sscanf(p + 1, "%3d%n", &ms, &m) != 1 || m != 3) return false;
                p += 4;
            }
        }
        if (*p == 'Z') p++;
    }
    if (*p) return false;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    colloq_audit_format_time((double)timegm(&tm) + ms / 1000.0 + 0.0001, out);
    return true;
}

static bool has_text(json_t *v, const char *needle) {
    if (json_is_string(v)) return memmem(json_string_value(v), json_string_length(v), needle, strlen(needle)) != NULL;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) if (has_text(e, needle)) return true;
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e) if (has_text(e, needle)) return true;
    }
    return false;
}

typedef struct {
    const char *request_id, *text;
    char since[32], until[32];
    long status;
    bool has_since, has_until, has_status;
} search_opts;

static bool matches(json_t *o, const search_opts *q) {
    const char *ts = json_string_value(json_object_get(o, "ts"));
    if (q->has_since && strcmp(ts, q->since) < 0) return false;
    if (q->has_until && strcmp(ts, q->until) >= 0) return false;
    if (q->request_id) {
        const char *rid = json_string_value(json_object_get(o, "request_id"));
        if (!rid || strcmp(rid, q->request_id)) return false;
    }
    if (q->has_status && json_integer_value(json_object_get(o, "status")) != q->status) return false;
    if (q->text) {
        static const char *const fields[] = { "messages", "answer", "tool_calls", "error" };
        bool hit = false;
        for (int k = 0; k < 4 && !hit; k++) hit = has_text(json_object_get(o, fields[k]), q->text);
        if (!hit) return false;
    }
    return true;
}

static int audit_search(const char *dir, const search_opts *q) {
    char **paths;
    int n;
    colloq_err err;
    if (colloq_audit_list(dir, &paths, &n, &err)) {
        fprintf(stderr, "colloq audit: %s\n", err.msg);
        return 1;
    }
    long found = 0;
    for (int i = 0; i < n; i++) {
        line_reader r = { fopen(paths[i], "rb"), NULL, 0, 0 };
        if (!r.f) { fprintf(stderr, "colloq audit: %s: cannot open\n", paths[i]); continue; }
        long len;
        bool part;
        while ((len = next_line(&r, &part)) >= 0) {
            char why[200];
            if (part) break;                              /* being written or cut short */
            json_t *o = parse_record(r.line, (size_t)len, why, sizeof why);
            if (!o) { fprintf(stderr, "colloq audit: %s:%ld: skipped: %s\n", paths[i], r.no, why); continue; }
            if (matches(o, q)) {
                fwrite(r.line, 1, (size_t)len, stdout);
                fputc('\n', stdout);
                found++;
            }
            json_decref(o);
        }
        free(r.line);
        fclose(r.f);
    }
    colloq_audit_free_list(paths, n);
    fprintf(stderr, "colloq audit: %ld matching records\n", found);
    return 0;
}

int cmd_audit(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) { audit_usage(stdout); return 0; }
    if (argc < 3 || (strcmp(argv[1], "verify") && strcmp(argv[1], "search"))) { audit_usage(stderr); return 2; }
    const char *dir = argv[2];
    if (!strcmp(argv[1], "verify")) {
        if (argc != 3) { audit_usage(stderr); return 2; }
        return audit_verify(dir);
    }
    search_opts q = { 0 };
    for (int i = 3; i < argc; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val) { fprintf(stderr, "colloq audit: %s needs a value\n", opt); return 2; }
        i++;
        if (!strcmp(opt, "--request-id")) q.request_id = val;
        else if (!strcmp(opt, "--text")) q.text = val;
        else if (!strcmp(opt, "--status")) {
            if (!cli_parse_int("audit", opt, val, 100, 599, &q.status)) return 2;
            q.has_status = true;
        } else if (!strcmp(opt, "--since") || !strcmp(opt, "--until")) {
            bool since = !strcmp(opt, "--since");
            if (!parse_time(val, since ? q.since : q.until)) {
                fprintf(stderr, "colloq audit: bad time for %s: '%s' (YYYY-MM-DD[THH:MM[:SS]][Z] or seconds)\n",
                        opt, val);
                return 2;
            }
            if (since) q.has_since = true;
            else q.has_until = true;
        } else {
            fprintf(stderr, "colloq audit: unknown option '%s'\n", opt);
            audit_usage(stderr);
            return 2;
        }
    }
    return audit_search(dir, &q);
}
