/*
 * audit.h - the crash-safe audit log (`--audit-log DIR`): one JSON line per request in
 * audit-YYYYMMDD-HHMMSS.jsonl files, written with a single O_APPEND write and made durable
 * by the fsync policy before the caller answers the client; rotation, retention, and
 * recovery of a partial last line after a crash.  Thread-safe.  Knows no HTTP: the
 * caller fills the record.  Must never store an API key (only colloq_audit_key_id).
 */
#ifndef COLLOQ_AUDIT_H
#define COLLOQ_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "colloq.h"

typedef struct colloq_audit colloq_audit;

/*
 * Durability (what survives what):
 *  ALWAYS (default): write() then fdatasync() before colloq_audit_write returns, so a
 *          record is on disk before the response completes; survives process kill,
 *          OS crash and power loss.
 *  BATCH:  write() at once, fdatasync() by a background thread at most batch_ms later;
 *          survives a process kill (the page cache holds it), may lose the last batch_ms
 *          of records on power loss.
 *  NEVER:  write() only; survives a process kill, the OS decides when it reaches disk.
 */
typedef enum {
    COLLOQ_AUDIT_FSYNC_ALWAYS = 0,
    COLLOQ_AUDIT_FSYNC_BATCH  = 1,
    COLLOQ_AUDIT_FSYNC_NEVER  = 2,
} colloq_audit_fsync;

typedef struct {
    colloq_audit_fsync fsync_mode;
    uint64_t max_bytes;        /* start a new file before one would exceed this (64 MiB) */
    int64_t  rotate_s;         /* start a new file when the current one is this old (86400) */
    int      retention_days;   /* delete files last written longer ago (180); 0 = keep all */
    int      batch_ms;         /* BATCH: longest wait for fdatasync (1000) */
} colloq_audit_params;

colloq_audit_params colloq_audit_default_params(void);
/* "always" | "batch" | "never" -> mode; returns false for anything else. */
bool colloq_audit_parse_fsync(const char *s, colloq_audit_fsync *out);

/*
 * Open (creating DIR if needed) for appending.  Takes an exclusive lock on DIR/.audit.lock
 * (one writer process per directory).  Recovers the newest file: a last line without its
 * newline (a write cut short by a crash) is moved to "<file>.partial" and cut off, so every
 * line left is a whole record.  Applies retention.  p may be NULL (defaults).
 */
int  colloq_audit_open(const char *dir, const colloq_audit_params *p, colloq_audit **out, colloq_err *err);
/* Flushes (fdatasync) and closes; NULL is fine. */
void colloq_audit_close(colloq_audit *a);

typedef struct {
    const char *request_id;
    const char *key_id;        /* colloq_audit_key_id of the API key, NULL when none */
    const char *client;        /* client address */
    const char *model;
    const char *endpoint;      /* e.g. "/v1/chat/completions"; NULL: omitted */
    json_t     *messages;      /* borrowed: messages after input filtering; NULL: null */
    const char *answer;        /* final answer as delivered (after output filtering) */
    size_t      answer_len;    /* bytes of answer (invalid UTF-8 is stored as U+FFFD) */
    json_t     *tool_calls;    /* borrowed, NULL: omitted */
    json_t     *filter;        /* borrowed array of filter actions (colloq_redact_record_to_json) */
    int         prompt_tokens, completion_tokens;
    double      latency_s;     /* stored as whole milliseconds */
    int         status;        /* HTTP status sent */
    const char *finish_reason; /* NULL: omitted */
    const char *error;         /* NULL: omitted */
    json_t     *extra;         /* borrowed object whose members are appended (e.g. "choices"); NULL */
} colloq_audit_record;

/*
 * Append one record as one line: {"v":1,"ts":"2024-05-01T12:00:00.123Z","request_id":...,
 * "key_id","client","model","endpoint","messages","answer","tool_calls","filter",
 * "usage":{"prompt_tokens","completion_tokens"},"latency_ms","status","finish_reason","error"}.
 * Returns once durable per the fsync policy; on failure nothing of the record stays in
 * the file.  Thread-safe.
 */
int  colloq_audit_write(colloq_audit *a, const colloq_audit_record *rec, colloq_err *err);
/* Same for a ready object (a "ts" member is added first when missing); obj is borrowed. */
int  colloq_audit_write_json(colloq_audit *a, json_t *obj, colloq_err *err);

/* Path of the file being written now (for tests and logs); valid until the next write. */
const char *colloq_audit_current_file(colloq_audit *a);

#define COLLOQ_AUDIT_KEY_ID_LEN 20   /* "k_" + 16 hex + NUL, rounded */
/* Stable identifier for an API key: "k_" + 16 hex digits of SHA-256("colloq-audit-key:" key). */
void colloq_audit_key_id(const char *key, char out[COLLOQ_AUDIT_KEY_ID_LEN]);

/* Audit files in dir (names audit-YYYYMMDD-HHMMSS[-N].jsonl), oldest first, as full paths.
 * Free with colloq_audit_free_list.  A missing directory is an error. */
int  colloq_audit_list(const char *dir, char ***paths, int *n, colloq_err *err);
void colloq_audit_free_list(char **paths, int n);

/* UTC time as "YYYY-MM-DDTHH:MM:SS.mmmZ" (the records' ts format); out has >= 32 bytes. */
void colloq_audit_format_time(double unix_s, char *out);

#endif
