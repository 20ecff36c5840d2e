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

/* ---- SHA-256 (FIPS 180-4) ---- */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha_block(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

void srv_sha256(const void *data, size_t n, uint8_t out[32]) {
    uint32_t h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    const uint8_t *p = data;
    size_t left = n;
    while (left >= 64) { sha_block(h, p); p += 64; left -= 64; }
    uint8_t tail[128] = { 0 };
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tn = left + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++) tail[tn - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha_block(h, tail);
    if (tn == 128) sha_block(h, tail + 64);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24); out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8); out[4 * i + 3] = (uint8_t)h[i];
    }
}

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
        for (int i = 0; i < n; i++) srv_sha256(keys[i], strlen(keys[i]), a->digest[i]);
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
    srv_sha256(key, len, d);
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
