/*
 * grammar_testutil.h - test helpers for the grammar tests: a JSON Schema validator for
 * the supported subset written independently of the compiler (jansson values), a
 * seeded RNG, and loading a vocabulary file as a grammar vocabulary.  Test code only.
 */
#ifndef COLLOQ_GRAMMAR_TESTUTIL_H
#define COLLOQ_GRAMMAR_TESTUTIL_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar.h"
#include "gguf.h"
#include "tokenizer.h"

static uint64_t tu_rng_state = 1;
static inline void tu_seed(uint64_t s) { tu_rng_state = s * 0x9e3779b97f4a7c15ull + 1; }
static inline uint64_t tu_next(void) {
    uint64_t z = (tu_rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static inline uint32_t tu_below(uint32_t n) { return n ? (uint32_t)(tu_next() % n) : 0; }
static inline float tu_uniform(void) { return (float)(tu_next() >> 40) / (float)(1 << 24); }

/* ---- validator ---- */

static size_t tu_utf8_chars(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xc0) != 0x80;
    return k;
}

static const json_t *tu_ref(const json_t *root, const char *ref) {
    if (strcmp(ref, "#") == 0) return root;
    if (strncmp(ref, "#/", 2) != 0) return NULL;
    const json_t *cur = root;
    char seg[256];
    const char *p = ref + 1;
    while (*p == '/' && cur) {
        p++;
        size_t k = 0;
        while (*p && *p != '/' && k + 1 < sizeof seg) seg[k++] = *p++;
        seg[k] = 0;
        cur = json_object_get(cur, seg);
    }
    return cur;
}

static bool tu_type_ok(const char *t, const json_t *x) {
    if (!strcmp(t, "object")) return json_is_object(x);
    if (!strcmp(t, "array")) return json_is_array(x);
    if (!strcmp(t, "string")) return json_is_string(x);
    if (!strcmp(t, "integer")) return json_is_integer(x) || (json_is_real(x) && json_real_value(x) == (double)(long long)json_real_value(x));
    if (!strcmp(t, "number")) return json_is_number(x);
    if (!strcmp(t, "boolean")) return json_is_boolean(x);
    if (!strcmp(t, "null")) return json_is_null(x);
    return false;
}

/* strict: an object schema with properties and no additionalProperties admits no others
 * (the generation default).  why receives the first failure. */
static bool tu_validate(const json_t *root, const json_t *s, const json_t *x, bool strict, char *why, size_t wn) {
#define TU_FAIL(...) do { snprintf(why, wn, __VA_ARGS__); return false; } while (0)
    if (json_is_true(s)) return true;
    if (json_is_false(s)) TU_FAIL("false schema");
    const json_t *v;
    if ((v = json_object_get(s, "$ref"))) {
        const json_t *t = tu_ref(root, json_string_value(v));
        if (!t) TU_FAIL("bad ref");
        if (!tu_validate(root, t, x, strict, why, wn)) return false;
    }
    if ((v = json_object_get(s, "allOf"))) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!tu_validate(root, json_array_get(v, i), x, strict, why, wn)) return false;
    }
    if ((v = json_object_get(s, "anyOf"))) {
        bool ok = false;
        for (size_t i = 0; i < json_array_size(v) && !ok; i++)
            ok = tu_validate(root, json_array_get(v, i), x, strict, why, wn);
        if (!ok) TU_FAIL("no anyOf alternative matches");
    }
    if ((v = json_object_get(s, "oneOf"))) {
        int k = 0;
        for (size_t i = 0; i < json_array_size(v); i++)
            k += tu_validate(root, json_array_get(v, i), x, strict, why, wn);
        if (k != 1) TU_FAIL("%d oneOf alternatives match", k);
    }
    if ((v = json_object_get(s, "const")) && !json_equal((json_t *)v, (json_t *)x)) TU_FAIL("not the const");
    if ((v = json_object_get(s, "enum"))) {
        bool ok = false;
        for (size_t i = 0; i < json_array_size(v) && !ok; i++) ok = json_equal(json_array_get(v, i), (json_t *)x);
        if (!ok) TU_FAIL("not in enum");
    }
    if ((v = json_object_get(s, "type"))) {
        bool ok = false;
        if (json_is_string(v)) ok = tu_type_ok(json_string_value(v), x);
        for (size_t i = 0; json_is_array(v) && i < json_array_size(v) && !ok; i++)
            ok = tu_type_ok(json_string_value(json_array_get(v, i)), x);
        if (!ok) TU_FAIL("wrong type");
    }
    if (json_is_string(x)) {
        size_t n = tu_utf8_chars(json_string_value(x), json_string_length(x));
        if ((v = json_object_get(s, "minLength")) && n < (size_t)json_integer_value(v)) TU_FAIL("too short");
        if ((v = json_object_get(s, "maxLength")) && n > (size_t)json_integer_value(v)) TU_FAIL("too long");
    }
    if (json_is_array(x)) {
        size_t n = json_array_size(x);
        if ((v = json_object_get(s, "minItems")) && n < (size_t)json_integer_value(v)) TU_FAIL("too few items");
        if ((v = json_object_get(s, "maxItems")) && n > (size_t)json_integer_value(v)) TU_FAIL("too many items");
        if ((v = json_object_get(s, "items")))
            for (size_t i = 0; i < n; i++)
                if (!tu_validate(root, v, json_array_get(x, i), strict, why, wn)) return false;
    }
    if (json_is_object(x)) {
        const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
        const json_t *addl = json_object_get(s, "additionalProperties");
        for (size_t i = 0; i < json_array_size(req); i++)
            if (!json_object_get(x, json_string_value(json_array_get(req, i))))
                TU_FAIL("missing required '%s'", json_string_value(json_array_get(req, i)));
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)x, k, m) {
            const json_t *ps = json_object_get(props, k);
            if (ps) {
                if (!tu_validate(root, ps, m, strict, why, wn)) return false;
                continue;
            }
            bool in_req = false;
            for (size_t i = 0; i < json_array_size(req); i++) in_req |= !strcmp(json_string_value(json_array_get(req, i)), k);
            if (json_is_false(addl) || (strict && props && !addl && !in_req)) TU_FAIL("unexpected member '%s'", k);
            if (json_is_object(addl) && !tu_validate(root, addl, m, strict, why, wn)) return false;
        }
    }
    return true;
#undef TU_FAIL
}

/* ---- a vocabulary file as a grammar vocabulary ---- */

static int tu_piece(void *ud, colloq_token t, char *buf, int cap) {
    return colloq_vocab_piece(ud, t, false, buf, cap);
}
static bool tu_eog(void *ud, colloq_token t) { return colloq_vocab_is_eog(ud, t); }

/* 0 ok, 77 when the file is absent, 1 on error. */
static int tu_load_vocab(const char *path, gguf_file **f, colloq_vocab **v, colloq_grammar_vocab **gv) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return 77;
    fclose(fp);
    colloq_err err = {{0}};
    if (gguf_open(path, f, &err) || colloq_vocab_load(*f, v, &err) ||
        colloq_grammar_vocab_new(colloq_vocab_n(*v), tu_piece, tu_eog, *v, gv, &err)) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return 1;
    }
    return 0;
}

#endif
