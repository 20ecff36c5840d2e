/*
 * cmd_serve.c - `colloq serve`: parses the options of the OpenAI-compatible server and
 * runs it (src/server.c).  Reads API keys from the command line or a file; never prints
 * them.  Argument handling only: serving, batching and the API live in the library.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "cli.h"
#include "colloq.h"
#include "server.h"
#include "util.h"

#define MAX_KEYS 64

static void usage(FILE *out) {
    fprintf(out,
        "usage: colloq serve -m MODEL.gguf [options]\n"
        "\n"
        "OpenAI-compatible HTTP server: POST /v1/chat/completions, /v1/completions, /tokenize,\n"
        "/detokenize; GET /v1/models, /health, /metrics.  Requests share the model through\n"
        "continuous batching over --parallel slots.\n"
        "\n"
        "  --host ADDR              address to listen on (default 127.0.0.1)\n"
        "  --port N                 port (default 8080; 0 = any free port, printed on stdout)\n"
        "  --parallel N             sequences generated together (default 4)\n"
        "  -c, --ctx N              context size of each slot (default: the model's, at most 4096)\n"
        "  -t, --threads N          threads (default: physical cores)\n"
        "  --cache-type f16|f32|q8_0  KV cache element type of each slot (default f16)\n"
        "  --prompt-chunk N         prompt tokens fed per step while other requests decode\n"
        "                           (default 64: smaller keeps their tokens flowing, larger\n"
        "                           gives a long prompt its first token sooner)\n"
        "  --api-key KEY            require 'Authorization: Bearer KEY' (may be repeated)\n"
        "  --api-key-file F         read keys from F, one per line\n"
        "  --chat-template NAME|F   built-in chat format name or Jinja template file\n"
        "  --model-name NAME        model id reported by the API (default: the file name)\n"
        "  --queue N                requests waiting for a slot before answering 429 (default 64)\n"
        "  --max-body BYTES         largest request body (default 8388608)\n"
        "  --max-connections N      simultaneous connections (default 64)\n"
        "  --timeout S              close idle or stalled connections after S seconds (default 60)\n"
        "  --shutdown-timeout S     on SIGTERM, let in-flight requests finish for S seconds (default 10)\n"
        "  --load-delay-ms N        wait N ms before loading the model (for testing /health)\n"
        "  --safety-config F        redaction / block rules for messages and answers (JSON; docs/safety.md)\n"
        "  --audit-log DIR          one JSON line per completion request in DIR/audit-*.jsonl\n"
        "  --audit-fsync MODE       always (default: on disk before the response completes), batch, never\n"
        "  --audit-max-bytes N      start a new audit file before one exceeds N bytes (default 64 MiB)\n"
        "  --audit-retention-days N delete audit files older than N days (default 180; 0 = keep)\n"
        "  -v, --verbose            log every request and model load details\n");
}

static int read_keys(const char *path, char **keys, int *n, char **file_text) {
    colloq_err err = { { 0 } };
    size_t len;
    if (colloq_read_file(path, file_text, &len, &err) != COLLOQ_OK) {
        fprintf(stderr, "colloq serve: %s\n", err.msg);
        return 1;
    }
    for (char *line = strtok(*file_text, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        while (*line == ' ' || *line == '\t') line++;
        size_t l = strlen(line);
        while (l > 0 && (line[l - 1] == ' ' || line[l - 1] == '\t')) line[--l] = 0;
        if (!*line || *line == '#') continue;
        if (*n >= MAX_KEYS) { fprintf(stderr, "colloq serve: more than %d API keys\n", MAX_KEYS); return 1; }
        keys[(*n)++] = line;
    }
    if (*n == 0) { fprintf(stderr, "colloq serve: %s holds no API key\n", path); return 1; }
    return 0;
}

int cmd_serve(int argc, char **argv) {
    colloq_server_config c;
    colloq_server_default_config(&c);
    char *keys[MAX_KEYS];
    int n_keys = 0;
    const char *key_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long l;
        double d;
        bool ok = true;
#define VALUE() do { if (!v) { fprintf(stderr, "colloq serve: %s needs a value\n", a); return 2; } i++; } while (0)
#define IS(x) (!strcmp(a, x))
        if (IS("-h") || IS("--help")) { usage(stdout); return 0; }
        else if (IS("-m") || IS("--model")) { VALUE(); c.model_path = v; }
        else if (IS("--host")) { VALUE(); c.host = v; }
        else if (IS("--port")) { VALUE(); ok = cli_parse_int("serve", a, v, 0, 65535, &l); c.port = (int)l; }
        else if (IS("--parallel") || IS("-np")) { VALUE(); ok = cli_parse_int("serve", a, v, 1, 64, &l); c.n_parallel = (int)l; }
        else if (IS("-c") || IS("--ctx")) { VALUE(); ok = cli_parse_int("serve", a, v, 16, 1 << 20, &l); c.n_ctx = (int)l; }
        else if (IS("--prompt-chunk")) { VALUE(); ok = cli_parse_int("serve", a, v, 1, 4096, &l); c.prompt_chunk = (int)l; }
        else if (IS("--cache-type")) {
            VALUE();
            if (!cli_parse_cache_type("serve", v, &c.cache_type)) return 2;
        }
        else if (IS("-t") || IS("--threads")) { VALUE(); ok = cli_parse_int("serve", a, v, 1, 1024, &l); c.n_threads = (int)l; }
        else if (IS("--api-key")) {
            VALUE();
            if (!*v) { fprintf(stderr, "colloq serve: --api-key must not be empty\n"); return 2; }
            if (n_keys >= MAX_KEYS) { fprintf(stderr, "colloq serve: too many API keys\n"); return 2; }
            keys[n_keys++] = (char *)v;
        }
        else if (IS("--api-key-file")) { VALUE(); key_file = v; }
        else if (IS("--chat-template")) { VALUE(); c.chat_template = v; }
        else if (IS("--model-name")) { VALUE(); c.model_name = v; }
        else if (IS("--queue")) { VALUE(); ok = cli_parse_int("serve", a, v, 0, 1 << 20, &l); c.queue_max = (int)l; }
        else if (IS("--max-body")) { VALUE(); ok = cli_parse_int("serve", a, v, 1024, 1L << 30, &l); c.max_body = (size_t)l; }
        else if (IS("--max-connections")) { VALUE(); ok = cli_parse_int("serve", a, v, 1, 100000, &l); c.max_connections = (int)l; }
        else if (IS("--timeout")) { VALUE(); ok = cli_parse_int("serve", a, v, 1, 86400, &l); c.idle_timeout_s = (int)l; }
        else if (IS("--shutdown-timeout")) { VALUE(); ok = cli_parse_float("serve", a, v, 0, 3600, &d); c.shutdown_timeout_s = d; }
        else if (IS("--load-delay-ms")) { VALUE(); ok = cli_parse_int("serve", a, v, 0, 600000, &l); c.load_delay_ms = (int)l; }
        else if (IS("--safety-config")) { VALUE(); c.safety_config = v; }
        else if (IS("--audit-log")) { VALUE(); c.audit_dir = v; }
        else if (IS("--audit-fsync")) {
            VALUE();
            colloq_audit_fsync m;
            if (!colloq_audit_parse_fsync(v, &m)) {
                fprintf(stderr, "colloq serve: --audit-fsync must be always, batch or never\n");
                return 2;
            }
            c.audit_fsync = (int)m;
        }
        else if (IS("--audit-max-bytes")) { VALUE(); ok = cli_parse_int("serve", a, v, 4096, 1L << 40, &l); c.audit_max_bytes = (unsigned long long)l; }
        else if (IS("--audit-retention-days")) { VALUE(); ok = cli_parse_int("serve", a, v, 0, 100000, &l); c.audit_retention_days = (int)l; }
        else if (IS("-v") || IS("--verbose")) c.verbose = true;
        else { fprintf(stderr, "colloq serve: unknown option '%s'\n", a); usage(stderr); return 2; }
        if (!ok) return 2;
#undef VALUE
#undef IS
    }
    if (!c.model_path) { fprintf(stderr, "colloq serve: -m MODEL.gguf is required\n"); usage(stderr); return 2; }
    char *file_text = NULL;
    if (key_file && read_keys(key_file, keys, &n_keys, &file_text)) { colloq_free(file_text); return 2; }
    c.api_keys = (const char *const *)keys;
    c.n_api_keys = n_keys;
    if (c.verbose && colloq_log_level < 1) colloq_log_level = 1;
    int rc = colloq_server_main(&c);
    if (file_text) memset(file_text, 0, strlen(file_text));
    colloq_free(file_text);
    return rc;
}
