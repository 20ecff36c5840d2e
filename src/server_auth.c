/*
 * server_auth.c - API keys for `colloq serve`: "Authorization: Bearer KEY" checked
 * against every configured key in constant time (SHA-256 digests compared with no
 * early exit), and a key id (a short hash) for logs.  Keys are held only as digests
 * and are never logged or returned.  Knows nothing of HTTP or requests.
 */
#include <string.h>
#include <strings.h>

#include "server.h"
#include "util.h"
#include "sha256.h"

/* ---- keys ---- */

struct srv_auth {
    int n;
    uint8_t (*digest)[32];
};

srv_auth *srv_auth_new(const char *const *keys, int n) {
    srv_auth *a = colloq_calloc(1, sizeof *a);
    if (!a) return NULL;
    if (n > 0) {
        a->digest = colloq_malloc((size_t)n * sizeof *a->digest);
        if (!a->digest) { colloq_free(a); return NULL; }
        for (int i = 0; i < n; i++) colloq_sha256(keys[i], strlen(keys[i]), a->digest[i]);
        a->n = n;
    }
    return a;
}

void srv_auth_free(srv_auth *a) {
    if (!a) return;
    if (a->digest) memset(a->digest, 0, (size_t)a->n * sizeof *a->digest);
    colloq_free(a->digest);
    colloq_free(a);
}

bool srv_auth_enabled(const srv_auth *a) { return a && a->n > 0; }

bool srv_auth_check(const srv_auth *a, const char *header, char *key_id, size_t key_id_cap) {
    if (key_id && key_id_cap) key_id[0] = 0;
    if (!srv_auth_enabled(a)) return true;
    if (!header || strncasecmp(header, "Bearer ", 7) != 0) return false;
    const char *key = header + 7;
    while (*key == ' ') key++;
    size_t len = strlen(key);
    while (len > 0 && (key[len - 1] == ' ' || key[len - 1] == '\t')) len--;
    uint8_t d[32];
    colloq_sha256(key, len, d);
    if (key_id && key_id_cap >= 13) {
        static const char hex[] = "0123456789abcdef";
        for (int i = 0; i < 6; i++) { key_id[2 * i] = hex[d[i] >> 4]; key_id[2 * i + 1] = hex[d[i] & 15]; }
        key_id[12] = 0;
    }
    volatile unsigned ok = 0;
    for (int k = 0; k < a->n; k++) {
        unsigned diff = 0;
        for (int i = 0; i < 32; i++) diff |= (unsigned)(d[i] ^ a->digest[k][i]);
        ok |= (unsigned)(diff == 0);
    }
    return len > 0 && ok != 0;
}
