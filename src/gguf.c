/*
 * gguf.c - GGUF v2/v3 reader: maps a file read-only (or takes a caller buffer),
 * validates every count, length, type, dimension and offset before anything is
 * used, and indexes keys, tensor names and string arrays for O(1) lookup.
 * Knows the file format only: never interprets keys or tensors for a model and
 * never reads tensor data while opening.  Arrays of arrays are rejected.
 */
#include "gguf.h"
#include "quant.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A key/value as handed out, plus the string-array index gguf_arr_str uses. */
typedef struct {
    gguf_kv   kv;          /* must stay first: gguf_arr_str casts a gguf_kv * back */
    gguf_str *strs;        /* string arrays: one entry per element, else NULL */
} kv_entry;

struct gguf_file {
    char          *name;
    const uint8_t *base;
    size_t         size;
    void          *map;            /* mmap'd region (NULL for buffers and empty files) */
    uint32_t       version;
    uint64_t       alignment;
    uint64_t       data_offset;    /* start of the data section, from base */
    uint64_t       n_kv;
    kv_entry      *kvs;
    uint64_t       n_tensors;
    gguf_tensor   *tensors;
    size_t        *kv_slots;       /* open-addressing tables: index + 1, 0 = empty */
    size_t         kv_mask;
    size_t        *t_slots;
    size_t         t_mask;
};

/* ------------------------------------------------------------------ helpers */

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (unsigned)p[1] << 8); }
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

static uint64_t hash_bytes(const void *s, size_t n) {   /* FNV-1a */
    const uint8_t *p = s;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ull; }
    return h;
}

/* Size in bytes of one scalar of type t; 0 for string, array and unknown types. */
static size_t vtype_size(uint32_t t) {
    switch (t) {
    case GGUF_T_UINT8: case GGUF_T_INT8: case GGUF_T_BOOL: return 1;
    case GGUF_T_UINT16: case GGUF_T_INT16: return 2;
    case GGUF_T_UINT32: case GGUF_T_INT32: case GGUF_T_FLOAT32: return 4;
    case GGUF_T_UINT64: case GGUF_T_INT64: case GGUF_T_FLOAT64: return 8;
    default: return 0;
    }
}

/* Printable rendering of file bytes for messages and describe (truncated to cap):
 * valid UTF-8 passes through; control bytes, invalid UTF-8, quotes and backslashes
 * become \xNN. */
static const char *show(char *buf, size_t cap, const char *s, uint64_t len) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    uint64_t i = 0;
    while (i < len && o + 8 < cap) {
        unsigned char c = u[i];
        int n = c >= 0x80 ? colloq_utf8_seq_len(u + i, (size_t)(len - i < 4 ? len - i : 4)) : 0;
        if (n > 1) {
            memcpy(buf + o, u + i, (size_t)n);
            o += (size_t)n;
            i += (uint64_t)n;
        } else if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'' && c != '"') {
            buf[o++] = (char)c;
            i++;
        } else {
            buf[o++] = '\\'; buf[o++] = 'x'; buf[o++] = hex[c >> 4]; buf[o++] = hex[c & 15];
            i++;
        }
    }
    if (i < len) { buf[o++] = '.'; buf[o++] = '.'; buf[o++] = '.'; }
    buf[o] = 0;
    return buf;
}

/* ------------------------------------------------------------------ parser */

typedef struct {
    const uint8_t *b;
    size_t         size, pos;
    const char    *fname;
    colloq_err    *err;
    int            status;     /* first error wins */
    /* where we are, for messages (formatted only on error) */
    const char    *sect;       /* "header", "key", "tensor" */
    uint64_t       idx;
    gguf_str       nm;         /* key / tensor name, once read (has_nm) */
    bool           has_nm;
    const char    *field;
    bool           has_elem;
    uint64_t       elem;
} prs;

static void where(const prs *p, bool with_field, char *out, size_t cap) {
    char nb[160];
    int n;
    if (!strcmp(p->sect, "header"))
        n = snprintf(out, cap, "header");
    else if (p->has_nm)
        n = snprintf(out, cap, "%s %" PRIu64 " '%s'", p->sect, p->idx,
                     show(nb, sizeof nb, p->nm.s, p->nm.len));
    else
        n = snprintf(out, cap, "%s %" PRIu64, p->sect, p->idx);
    if (n < 0 || (size_t)n >= cap) return;
    if (p->has_elem) {
        int m = snprintf(out + n, cap - (size_t)n, " element %" PRIu64, p->elem);
        if (m < 0 || (size_t)(n + m) >= cap) return;
        n += m;
    }
    if (with_field && p->field) snprintf(out + n, cap - (size_t)n, " %s", p->field);
}

/* Error at the current location: "<file>: <location>: <message>". */
__attribute__((format(printf, 3, 4)))
static bool fail(prs *p, int status, const char *fmt, ...) {
    if (p->status) return false;
    p->status = status;
    if (p->err) {
        char loc[256], msg[320];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        where(p, false, loc, sizeof loc);
        colloq_seterr(p->err, status, "%s: %s: %s", p->fname, loc, msg);
    }
    return false;
}

static bool oom(prs *p, const char *what) {
    if (p->status) return false;
    p->status = COLLOQ_ERR_NOMEM;
    colloq_seterr(p->err, COLLOQ_ERR_NOMEM, "%s: out of memory allocating %s", p->fname, what);
    return false;
}

static bool truncated(prs *p, uint64_t need) {
    if (p->status) return false;
    p->status = COLLOQ_ERR_FORMAT;
    if (p->err) {
        char loc[256];
        where(p, true, loc, sizeof loc);
        colloq_seterr(p->err, COLLOQ_ERR_FORMAT,
                      "%s: truncated at byte %zu while reading %s (needs %" PRIu64 " bytes, %zu left)",
                      p->fname, p->pos, loc, need, p->size - p->pos);
    }
    return false;
}

static size_t left(const prs *p) { return p->size - p->pos; }

static bool rd_bytes(prs *p, size_t n, const uint8_t **out) {
    if (n > left(p)) return truncated(p, n);
    *out = p->b + p->pos;
    p->pos += n;
    return true;
}
static bool rd_u32(prs *p, const char *field, uint32_t *v) {
    const uint8_t *q;
    p->field = field;
    if (!rd_bytes(p, 4, &q)) return false;
    *v = le32(q);
    return true;
}
static bool rd_u64(prs *p, const char *field, uint64_t *v) {
    const uint8_t *q;
    p->field = field;
    if (!rd_bytes(p, 8, &q)) return false;
    *v = le64(q);
    return true;
}
/* A GGUF string: uint64 length + bytes.  field names what the string is. */
static bool rd_str(prs *p, const char *field, gguf_str *s) {
    uint64_t len;
    if (!rd_u64(p, field, &len)) return false;
    if (len > left(p)) {
        if (p->status) return false;
        p->status = COLLOQ_ERR_FORMAT;
        if (p->err) {
            char loc[256];
            where(p, true, loc, sizeof loc);
            colloq_seterr(p->err, COLLOQ_ERR_FORMAT,
                          "%s: truncated at byte %zu while reading %s: string length %" PRIu64
                          " exceeds the %zu bytes left", p->fname, p->pos, loc, len, left(p));
        }
        return false;
    }
    s->len = len;
    s->s = (const char *)p->b + p->pos;
    p->pos += (size_t)len;
    return true;
}

/* Scalar value of type t at the cursor into kv->v. */
static bool rd_scalar(prs *p, uint32_t t, gguf_kv *kv) {
    const uint8_t *q;
    p->field = "value";
    if (!rd_bytes(p, vtype_size(t), &q)) return false;
    switch (t) {
    case GGUF_T_UINT8:  kv->v.u64 = q[0]; break;
    case GGUF_T_INT8:   kv->v.i64 = (int8_t)q[0]; break;
    case GGUF_T_UINT16: kv->v.u64 = le16(q); break;
    case GGUF_T_INT16:  kv->v.i64 = (int16_t)le16(q); break;
    case GGUF_T_UINT32: kv->v.u64 = le32(q); break;
    case GGUF_T_INT32:  kv->v.i64 = (int32_t)le32(q); break;
    case GGUF_T_UINT64: kv->v.u64 = le64(q); break;
    case GGUF_T_INT64:  kv->v.i64 = (int64_t)le64(q); break;
    case GGUF_T_FLOAT32: {
        union { uint32_t u; float f; } c = { .u = le32(q) };
        kv->v.f64 = c.f;
        break;
    }
    case GGUF_T_FLOAT64: {
        union { uint64_t u; double d; } c = { .u = le64(q) };
        kv->v.f64 = c.d;
        break;
    }
    case GGUF_T_BOOL:
        if (q[0] > 1) return fail(p, COLLOQ_ERR_FORMAT, "bool value %u is neither 0 nor 1", q[0]);
        kv->v.b = q[0] != 0;
        break;
    default:
        return fail(p, COLLOQ_ERR_FORMAT, "internal: bad scalar type %u", t);
    }
    return true;
}

static bool rd_array(prs *p, kv_entry *e) {
    uint32_t et;
    uint64_t n;
    if (!rd_u32(p, "array element type", &et)) return false;
    if (et == GGUF_T_ARRAY)
        return fail(p, COLLOQ_ERR_FORMAT, "arrays of arrays (nested arrays) are not supported");
    if (et >= GGUF_T_COUNT)
        return fail(p, COLLOQ_ERR_FORMAT, "unknown array element type %" PRIu32 " (valid: 0..%d)", et, GGUF_T_COUNT - 1);
    if (!rd_u64(p, "array count", &n)) return false;
    e->kv.v.arr.type = (enum gguf_vtype)et;
    e->kv.v.arr.n = n;
    e->kv.v.arr.data = p->b + p->pos;
    if (et == GGUF_T_STRING) {
        if (n > left(p) / 8)
            return fail(p, COLLOQ_ERR_FORMAT, "%" PRIu64 " strings cannot fit in the %zu bytes left", n, left(p));
        e->strs = colloq_malloc((size_t)n * sizeof *e->strs);
        if (!e->strs) return oom(p, "a string array index");
        p->has_elem = true;
        for (uint64_t i = 0; i < n; i++) {
            p->elem = i;
            if (!rd_str(p, NULL, &e->strs[i])) return false;
        }
        p->has_elem = false;
        return true;
    }
    size_t es = vtype_size(et);
    uint64_t nb;
    if (!colloq_mul_u64(n, es, &nb) || nb > left(p))
        return fail(p, COLLOQ_ERR_FORMAT, "array of %" PRIu64 " %s elements extends past the end of the file (%zu bytes left)",
                    n, gguf_vtype_name((enum gguf_vtype)et), left(p));
    if (et == GGUF_T_BOOL) {
        const uint8_t *q = p->b + p->pos;
        for (uint64_t i = 0; i < n; i++)
            if (q[i] > 1) {
                p->has_elem = true; p->elem = i;
                return fail(p, COLLOQ_ERR_FORMAT, "bool value %u is neither 0 nor 1", q[i]);
            }
    }
    p->pos += (size_t)nb;
    return true;
}

static bool rd_kv(prs *p, kv_entry *e) {
    uint32_t t;
    if (!rd_str(p, "name", &e->kv.key)) return false;
    p->nm = e->kv.key;
    p->has_nm = true;
    if (memchr(e->kv.key.s, 0, (size_t)e->kv.key.len))
        return fail(p, COLLOQ_ERR_FORMAT, "key name contains a NUL byte");
    if (!rd_u32(p, "value type", &t)) return false;
    if (t >= GGUF_T_COUNT)
        return fail(p, COLLOQ_ERR_FORMAT, "unknown value type %" PRIu32 " (valid: 0..%d)", t, GGUF_T_COUNT - 1);
    e->kv.type = (enum gguf_vtype)t;
    if (t == GGUF_T_STRING) return rd_str(p, "value", &e->kv.v.str);
    if (t == GGUF_T_ARRAY) return rd_array(p, e);
    return rd_scalar(p, t, &e->kv);
}

static bool rd_tensor(prs *p, gguf_tensor *t) {
    uint32_t nd;
    uint64_t v;
    if (!rd_str(p, "name", &t->name)) return false;
    p->nm = t->name;
    p->has_nm = true;
    if (memchr(t->name.s, 0, (size_t)t->name.len))
        return fail(p, COLLOQ_ERR_FORMAT, "tensor name contains a NUL byte");
    if (!rd_u32(p, "n_dims", &nd)) return false;
    if (nd == 0 || nd > GGUF_MAX_DIMS)
        return fail(p, COLLOQ_ERR_FORMAT, "n_dims %" PRIu32 " %s", nd, nd ? "exceeds 4" : "must be 1..4");
    t->n_dims = nd;
    uint64_t count = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        static const char *names[GGUF_MAX_DIMS] = { "ne[0]", "ne[1]", "ne[2]", "ne[3]" };
        if (!rd_u64(p, names[d], &v)) return false;
        if (v == 0 || v > (uint64_t)INT64_MAX)
            return fail(p, COLLOQ_ERR_FORMAT, "ne[%" PRIu32 "] %" PRId64 " must be positive", d, (int64_t)v);
        t->ne[d] = (int64_t)v;
        if (!colloq_mul_u64(count, v, &count) || count > (uint64_t)INT64_MAX)
            return fail(p, COLLOQ_ERR_FORMAT, "element count overflows (ne[0..%" PRIu32 "] product exceeds 2^63-1)", d);
    }
    if (!rd_u32(p, "type", &t->type)) return false;
    const colloq_type_traits *tr = colloq_type_get(t->type);
    if (!tr)
        return fail(p, COLLOQ_ERR_UNSUPPORTED, "unknown or unsupported tensor type %" PRIu32, t->type);
    if (t->ne[0] % tr->blck != 0)
        return fail(p, COLLOQ_ERR_FORMAT, "ne[0] %" PRId64 " is not a multiple of the %s block size %d",
                    t->ne[0], tr->name, tr->blck);
    uint64_t row;
    if (!colloq_type_row_size(t->type, t->ne[0], &row) ||
        !colloq_mul_u64(row, count / (uint64_t)t->ne[0], &t->nbytes))
        return fail(p, COLLOQ_ERR_FORMAT, "byte size of %" PRIu64 " %s elements overflows", count, tr->name);
    if (!rd_u64(p, "offset", &t->offset)) return false;
    p->field = "offset";
    return true;
}

/* ------------------------------------------------------------------ index */

static size_t table_size(uint64_t n) {
    size_t cap = 8;
    while (cap < n * 2) cap *= 2;
    return cap;
}

/* Insert item i (name s) into the table; returns the index of an earlier item
 * with the same name, or -1. */
static int64_t table_put(size_t *slots, size_t mask, gguf_str s, size_t i,
                         gguf_str (*name_of)(const gguf_file *, size_t), const gguf_file *f) {
    size_t h = (size_t)hash_bytes(s.s, (size_t)s.len) & mask;
    while (slots[h]) {
        gguf_str o = name_of(f, slots[h] - 1);
        if (o.len == s.len && !memcmp(o.s, s.s, (size_t)s.len)) return (int64_t)(slots[h] - 1);
        h = (h + 1) & mask;
    }
    slots[h] = i + 1;
    return -1;
}

static gguf_str kv_name(const gguf_file *f, size_t i) { return f->kvs[i].kv.key; }
static gguf_str t_name(const gguf_file *f, size_t i) { return f->tensors[i].name; }

static const void *table_get(const size_t *slots, size_t mask, const char *name,
                             gguf_str (*name_of)(const gguf_file *, size_t), const gguf_file *f,
                             size_t *idx) {
    if (!slots || !name) return NULL;
    size_t n = strlen(name);
    size_t h = (size_t)hash_bytes(name, n) & mask;
    while (slots[h]) {
        gguf_str o = name_of(f, slots[h] - 1);
        if (o.len == n && !memcmp(o.s, name, n)) { *idx = slots[h] - 1; return f; }
        h = (h + 1) & mask;
    }
    return NULL;
}

/* ------------------------------------------------------------------ open */

static bool parse_header(prs *p, gguf_file *f) {
    const uint8_t *q;
    p->sect = "header";
    p->field = "magic";
    if (!rd_bytes(p, 4, &q)) return false;
    if (memcmp(q, "GGUF", 4) != 0) {
        char sb[40];
        return fail(p, COLLOQ_ERR_FORMAT, "bad magic '%s' (expected 'GGUF'): not a GGUF file",
                    show(sb, sizeof sb, (const char *)q, 4));
    }
    if (!rd_u32(p, "version", &f->version)) return false;
    uint32_t v = f->version;
    if (v == 1)
        return fail(p, COLLOQ_ERR_UNSUPPORTED, "version 1 (32-bit counts) is not supported; re-convert the file to version 3");
    if (v != 2 && v != 3) {
        uint32_t sw = __builtin_bswap32(v);
        if (sw == 2 || sw == 3)
            return fail(p, COLLOQ_ERR_UNSUPPORTED, "version %" PRIu32 " reads as a big-endian GGUF file, which is not supported", sw);
        return fail(p, COLLOQ_ERR_UNSUPPORTED, "unsupported version %" PRIu32 " (supported: 2, 3)", v);
    }
    if (!rd_u64(p, "n_tensors", &f->n_tensors)) return false;
    if (!rd_u64(p, "n_kv", &f->n_kv)) return false;
    /* Smallest possible entries: key = 8 (length) + 4 (type) + 1 (value);
     * tensor info = 8 (name length) + 4 (n_dims) + 8 (ne[0]) + 4 (type) + 8 (offset). */
    if (f->n_kv > left(p) / 13) {
        p->field = "n_kv";
        return fail(p, COLLOQ_ERR_FORMAT, "n_kv %" PRIu64 ": that many key/values cannot fit in the %zu bytes left", f->n_kv, left(p));
    }
    if (f->n_tensors > left(p) / 32 || f->n_tensors * 32 + f->n_kv * 13 > left(p)) {
        p->field = "n_tensors";
        return fail(p, COLLOQ_ERR_FORMAT, "n_tensors %" PRIu64 ": that many tensor infos (with %" PRIu64 " key/values) cannot fit in the %zu bytes left",
                    f->n_tensors, f->n_kv, left(p));
    }
    return true;
}

static bool parse_kvs(prs *p, gguf_file *f) {
    f->kvs = colloq_calloc((size_t)f->n_kv, sizeof *f->kvs);
    if (!f->kvs) return oom(p, "the key/value table");
    f->kv_mask = table_size(f->n_kv) - 1;
    f->kv_slots = colloq_calloc(f->kv_mask + 1, sizeof *f->kv_slots);
    if (!f->kv_slots) return oom(p, "the key index");
    p->sect = "key";
    for (uint64_t i = 0; i < f->n_kv; i++) {
        p->idx = i;
        p->has_nm = false;
        if (!rd_kv(p, &f->kvs[i])) return false;
        int64_t dup = table_put(f->kv_slots, f->kv_mask, f->kvs[i].kv.key, (size_t)i, kv_name, f);
        if (dup >= 0) {
            p->field = NULL;
            return fail(p, COLLOQ_ERR_FORMAT, "duplicate key (first defined as key %" PRId64 ")", dup);
        }
    }
    /* general.alignment */
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *a = gguf_find_kv(f, "general.alignment");
    if (a) {
        p->idx = (uint64_t)((const kv_entry *)(const void *)a - f->kvs);
        p->nm = a->key;
        p->has_nm = true;
        p->field = NULL;
        if (a->type != GGUF_T_UINT32)
            return fail(p, COLLOQ_ERR_FORMAT, "general.alignment has type %s, expected uint32", gguf_vtype_name(a->type));
        uint64_t al = a->v.u64;
        if (al == 0 || (al & (al - 1)) != 0)
            return fail(p, COLLOQ_ERR_FORMAT, "general.alignment %" PRIu64 " is not a non-zero power of two", al);
        f->alignment = al;
    }
    return true;
}

typedef struct { uint64_t offset; size_t idx; } span;

static int cmp_span(const void *a, const void *b) {
    uint64_t x = ((const span *)a)->offset, y = ((const span *)b)->offset;
    return x < y ? -1 : x > y;
}

static bool parse_tensors(prs *p, gguf_file *f) {
    f->tensors = colloq_calloc((size_t)f->n_tensors, sizeof *f->tensors);
    if (!f->tensors) return oom(p, "the tensor table");
    f->t_mask = table_size(f->n_tensors) - 1;
    f->t_slots = colloq_calloc(f->t_mask + 1, sizeof *f->t_slots);
    if (!f->t_slots) return oom(p, "the tensor index");
    p->sect = "tensor";
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        p->idx = i;
        p->has_nm = false;
        if (!rd_tensor(p, &f->tensors[i])) return false;
        int64_t dup = table_put(f->t_slots, f->t_mask, f->tensors[i].name, (size_t)i, t_name, f);
        if (dup >= 0) {
            p->field = NULL;
            return fail(p, COLLOQ_ERR_FORMAT, "duplicate tensor name (first used by tensor %" PRId64 ")", dup);
        }
        if (f->tensors[i].offset % f->alignment != 0)
            return fail(p, COLLOQ_ERR_FORMAT, "offset %" PRIu64 " is misaligned: not a multiple of the alignment %" PRIu64,
                        f->tensors[i].offset, f->alignment);
    }
    /* data section: after the tensor infos, padded to the alignment */
    uint64_t pad = (f->alignment - p->pos % f->alignment) % f->alignment;
    f->data_offset = p->pos + pad;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        uint64_t start, end;
        p->idx = i;
        p->nm = t->name;
        p->has_nm = true;
        p->field = NULL;
        if (!colloq_add_u64(f->data_offset, t->offset, &start) || !colloq_add_u64(start, t->nbytes, &end))
            return fail(p, COLLOQ_ERR_FORMAT, "offset %" PRIu64 " + %" PRIu64 " bytes overflows", t->offset, t->nbytes);
        if (end > f->size)
            return fail(p, COLLOQ_ERR_FORMAT, "data at bytes [%" PRIu64 ", %" PRIu64 ") lies outside the file (%zu bytes)",
                        start, end, f->size);
        t->data = f->base + start;
    }
    /* overlaps: sort by offset, neighbours must not intersect */
    if (f->n_tensors > 1) {
        size_t n = (size_t)f->n_tensors;
        span *ord = colloq_malloc(n * sizeof *ord);
        if (!ord) return oom(p, "the tensor order");
        for (size_t i = 0; i < n; i++) ord[i] = (span){ f->tensors[i].offset, i };
        qsort(ord, n, sizeof *ord, cmp_span);
        for (size_t k = 1; k < n; k++) {
            const gguf_tensor *a = &f->tensors[ord[k - 1].idx], *b = &f->tensors[ord[k].idx];
            if (a->offset + a->nbytes > b->offset) {
                char nb[160];
                p->idx = ord[k].idx;
                p->nm = b->name;
                p->field = NULL;
                fail(p, COLLOQ_ERR_FORMAT, "data at offset %" PRIu64 " overlaps tensor %zu '%s' (offset %" PRIu64 ", %" PRIu64 " bytes)",
                     b->offset, ord[k - 1].idx, show(nb, sizeof nb, a->name.s, a->name.len), a->offset, a->nbytes);
                colloq_free(ord);
                return false;
            }
        }
        colloq_free(ord);
    }
    return true;
}

static int open_impl(const uint8_t *buf, size_t len, const char *name, gguf_file **out, colloq_err *err) {
    *out = NULL;
    if (!name) name = "<buffer>";
    gguf_file *f = colloq_calloc(1, sizeof *f);
    if (!f) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory", name);
    f->base = buf;
    f->size = len;
    f->name = colloq_strdup(name);
    if (!f->name) {
        colloq_free(f);
        return colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory", name);
    }
    prs p = { .b = buf, .size = len, .fname = f->name, .err = err, .sect = "header" };
    if (parse_header(&p, f) && parse_kvs(&p, f) && parse_tensors(&p, f)) {
        *out = f;
        return COLLOQ_OK;
    }
    gguf_close(f);
    return p.status ? p.status : COLLOQ_ERR_FORMAT;
}

int gguf_open_buffer(const void *buf, size_t len, const char *name, gguf_file **out, colloq_err *err) {
    if (!out) return colloq_seterr(err, COLLOQ_ERR_ARG, "gguf_open_buffer: out is NULL");
    *out = NULL;
    if (!buf && len) return colloq_seterr(err, COLLOQ_ERR_ARG, "gguf_open_buffer: buffer is NULL");
    return open_impl(buf, len, name, out, err);
}

int gguf_open(const char *path, gguf_file **out, colloq_err *err) {
    if (!out || !path) return colloq_seterr(err, COLLOQ_ERR_ARG, "gguf_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return colloq_seterr(err, COLLOQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return colloq_seterr(err, COLLOQ_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return colloq_seterr(err, COLLOQ_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return colloq_seterr(err, COLLOQ_ERR_IO, "%s: file too large to map", path);
    }
    size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return colloq_seterr(err, COLLOQ_ERR_IO, "%s: cannot map %zu bytes: %s", path, size, strerror(e));
        }
    }
    close(fd);
    int rc = open_impl(map, size, path, out, err);
    if (rc != COLLOQ_OK) {
        if (map) munmap(map, size);
        return rc;
    }
    (*out)->map = map;
    return COLLOQ_OK;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->kvs)
        for (uint64_t i = 0; i < f->n_kv; i++) colloq_free(f->kvs[i].strs);
    colloq_free(f->kvs);
    colloq_free(f->tensors);
    colloq_free(f->kv_slots);
    colloq_free(f->t_slots);
    if (f->map) munmap(f->map, f->size);
    colloq_free(f->name);
    colloq_free(f);
}

/* ------------------------------------------------------------------ accessors */

const char *gguf_path(const gguf_file *f) { return f->name; }
uint32_t gguf_version(const gguf_file *f) { return f->version; }
uint64_t gguf_alignment(const gguf_file *f) { return f->alignment; }
size_t gguf_file_size(const gguf_file *f) { return f->size; }
uint64_t gguf_data_offset(const gguf_file *f) { return f->data_offset; }

uint64_t gguf_n_kv(const gguf_file *f) { return f->n_kv; }
const gguf_kv *gguf_kv_at(const gguf_file *f, uint64_t i) { return i < f->n_kv ? &f->kvs[i].kv : NULL; }
const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key) {
    size_t i;
    if (!f || !table_get(f->kv_slots, f->kv_mask, key, kv_name, f, &i)) return NULL;
    return &f->kvs[i].kv;
}

uint64_t gguf_n_tensors(const gguf_file *f) { return f->n_tensors; }
const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i) { return i < f->n_tensors ? &f->tensors[i] : NULL; }
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    size_t i;
    if (!f || !table_get(f->t_slots, f->t_mask, name, t_name, f, &i)) return NULL;
    return &f->tensors[i];
}

static bool is_uint(enum gguf_vtype t) {
    return t == GGUF_T_UINT8 || t == GGUF_T_UINT16 || t == GGUF_T_UINT32 || t == GGUF_T_UINT64;
}
static bool is_int(enum gguf_vtype t) {
    return t == GGUF_T_INT8 || t == GGUF_T_INT16 || t == GGUF_T_INT32 || t == GGUF_T_INT64;
}

static int wrong_type(const gguf_file *f, const gguf_kv *kv, const char *key, const char *want, colloq_err *err) {
    return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: key '%s' has type %s, expected %s",
                         f->name, key, gguf_vtype_name(kv->type), want);
}

int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, colloq_err *err) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return 1;
    if (is_uint(kv->type)) {
        if (kv->v.u64 > UINT32_MAX)
            return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: key '%s' value %" PRIu64 " does not fit in uint32",
                                 f->name, key, kv->v.u64);
        *out = (uint32_t)kv->v.u64;
        return 0;
    }
    if (is_int(kv->type)) {
        if (kv->v.i64 < 0 || kv->v.i64 > (int64_t)UINT32_MAX)
            return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: key '%s' value %" PRId64 " does not fit in uint32",
                                 f->name, key, kv->v.i64);
        *out = (uint32_t)kv->v.i64;
        return 0;
    }
    return wrong_type(f, kv, key, "an unsigned integer", err);
}

int gguf_get_f32(const gguf_file *f, const char *key, float *out, colloq_err *err) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return 1;
    if (kv->type == GGUF_T_FLOAT32 || kv->type == GGUF_T_FLOAT64) *out = (float)kv->v.f64;
    else if (is_uint(kv->type)) *out = (float)kv->v.u64;
    else if (is_int(kv->type)) *out = (float)kv->v.i64;
    else return wrong_type(f, kv, key, "a number", err);
    return 0;
}

int gguf_get_bool(const gguf_file *f, const char *key, bool *out, colloq_err *err) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return 1;
    if (kv->type != GGUF_T_BOOL) return wrong_type(f, kv, key, "bool", err);
    *out = kv->v.b;
    return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, colloq_err *err) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return 1;
    if (kv->type != GGUF_T_STRING) return wrong_type(f, kv, key, "string", err);
    *out = kv->v.str;
    return 0;
}

gguf_str gguf_arr_str(const gguf_kv *kv, uint64_t i) {
    gguf_str none = { 0, "" };
    if (!kv || kv->type != GGUF_T_ARRAY || kv->v.arr.type != GGUF_T_STRING || i >= kv->v.arr.n) return none;
    const kv_entry *e = (const kv_entry *)(const void *)kv;
    return e->strs ? e->strs[i] : none;
}

double gguf_arr_num(const gguf_kv *kv, uint64_t i) {
    if (!kv || kv->type != GGUF_T_ARRAY || i >= kv->v.arr.n) return 0.0;
    size_t es = vtype_size(kv->v.arr.type);
    if (!es) return 0.0;
    const uint8_t *q = (const uint8_t *)kv->v.arr.data + i * es;
    switch (kv->v.arr.type) {
    case GGUF_T_UINT8:  case GGUF_T_BOOL: return q[0];
    case GGUF_T_INT8:   return (int8_t)q[0];
    case GGUF_T_UINT16: return le16(q);
    case GGUF_T_INT16:  return (int16_t)le16(q);
    case GGUF_T_UINT32: return le32(q);
    case GGUF_T_INT32:  return (int32_t)le32(q);
    case GGUF_T_UINT64: return (double)le64(q);
    case GGUF_T_INT64:  return (double)(int64_t)le64(q);
    case GGUF_T_FLOAT32: { union { uint32_t u; float f; } c = { .u = le32(q) }; return c.f; }
    case GGUF_T_FLOAT64: { union { uint64_t u; double d; } c = { .u = le64(q) }; return c.d; }
    default: return 0.0;
    }
}

const char *gguf_vtype_name(enum gguf_vtype t) {
    static const char *names[GGUF_T_COUNT] = {
        "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool",
        "string", "array", "uint64", "int64", "float64",
    };
    return (unsigned)t < GGUF_T_COUNT ? names[t] : "unknown";
}

bool gguf_str_eq(gguf_str a, const char *b) {
    if (!b) return false;
    size_t n = strlen(b);
    return a.len == n && (n == 0 || !memcmp(a.s, b, n));
}

/* ------------------------------------------------------------------ describe */

static void put_str(FILE *out, gguf_str s, size_t max) {
    char buf[400];
    fputc('"', out);
    fputs(show(buf, max + 9 < sizeof buf ? max + 9 : sizeof buf, s.s, s.len), out);
    fputc('"', out);
}

static void put_scalar(FILE *out, const gguf_kv *kv) {
    switch (kv->type) {
    case GGUF_T_UINT8: case GGUF_T_UINT16: case GGUF_T_UINT32: case GGUF_T_UINT64:
        fprintf(out, "%" PRIu64, kv->v.u64); break;
    case GGUF_T_INT8: case GGUF_T_INT16: case GGUF_T_INT32: case GGUF_T_INT64:
        fprintf(out, "%" PRId64, kv->v.i64); break;
    case GGUF_T_FLOAT32: case GGUF_T_FLOAT64: fprintf(out, "%g", kv->v.f64); break;
    case GGUF_T_BOOL: fputs(kv->v.b ? "true" : "false", out); break;
    case GGUF_T_STRING: put_str(out, kv->v.str, 200); break;
    default: break;
    }
}

void gguf_describe(const gguf_file *f, FILE *out) {
    enum { SHOW = 5 };
    fprintf(out, "%s: GGUF version %" PRIu32 ", alignment %" PRIu64 ", %" PRIu64 " keys, %" PRIu64
            " tensors, %zu bytes", f->name, f->version, f->alignment, f->n_kv, f->n_tensors, f->size);
    if (f->n_tensors) fprintf(out, " (data section at byte %" PRIu64 ")", f->data_offset);
    fputc('\n', out);
    fprintf(out, "metadata:\n");
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kvs[i].kv;
        char kb[160];
        fprintf(out, "  %-40s ", show(kb, sizeof kb, kv->key.s, kv->key.len));
        if (kv->type != GGUF_T_ARRAY) {
            fprintf(out, "%-8s ", gguf_vtype_name(kv->type));
            put_scalar(out, kv);
        } else {
            fprintf(out, "array[%s x %" PRIu64 "] ", gguf_vtype_name(kv->v.arr.type), kv->v.arr.n);
            fputc('[', out);
            for (uint64_t j = 0; j < kv->v.arr.n && j < SHOW; j++) {
                if (j) fputs(", ", out);
                if (kv->v.arr.type == GGUF_T_STRING) put_str(out, gguf_arr_str(kv, j), 40);
                else fprintf(out, "%.10g", gguf_arr_num(kv, j));
            }
            fputs(kv->v.arr.n > SHOW ? ", ...]" : "]", out);
        }
        fputc('\n', out);
    }
    fprintf(out, f->n_tensors ? "tensors:\n" : "tensors: none\n");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        const colloq_type_traits *tr = colloq_type_get(t->type);
        char nb[160], dims[128];
        int n = snprintf(dims, sizeof dims, "[");
        for (uint32_t d = 0; d < t->n_dims; d++)
            n += snprintf(dims + n, sizeof dims - (size_t)n, "%s%" PRId64, d ? ", " : "", t->ne[d]);
        snprintf(dims + n, sizeof dims - (size_t)n, "]");
        fprintf(out, "  %-40s %-6s %-28s %" PRIu64 " bytes\n", show(nb, sizeof nb, t->name.s, t->name.len),
                tr ? tr->name : "?", dims, t->nbytes);
    }
}
