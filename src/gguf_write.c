/*
 * gguf_write.c - GGUF version 3 writer.  Keys are serialized when set (a key set
 * twice is replaced in place); tensors are recorded by reference or by fill
 * callback and their bytes are streamed to disk one tensor at a time by
 * gguf_writer_write.  Errors in the setters are sticky and reported at write time.
 * Knows the file format only: never decides which keys or tensors a model needs.
 */
#include "gguf.h"
#include "quant.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char    *key;
    uint8_t *val;          /* uint32 value type + serialized value, little-endian */
    size_t   val_len;
} wkv;

typedef struct {
    char        *name;
    uint32_t     type, n_dims;
    int64_t      ne[GGUF_MAX_DIMS];
    uint64_t     nbytes;
    uint64_t     offset;   /* assigned at write time */
    const void  *data;     /* or NULL with fill set */
    gguf_fill_fn fill;
    void        *ctx;
} wtensor;

struct gguf_writer {
    wkv     *kvs;
    size_t   n_kv, cap_kv;
    wtensor *ts;
    size_t   n_t, cap_t;
    int      status;       /* sticky first error */
    char     msg[448];
};

__attribute__((format(printf, 3, 4)))
static void wfail(gguf_writer *w, int status, const char *fmt, ...) {
    if (w->status) return;
    w->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->msg, sizeof w->msg, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ byte buffer */

typedef struct { uint8_t *p; size_t n, cap; bool oom; } bbuf;

static bool bb_reserve(bbuf *b, size_t extra) {
    if (b->oom) return false;
    if (extra <= b->cap - b->n) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->n < extra) {
        if (cap > SIZE_MAX / 2) { b->oom = true; return false; }
        cap *= 2;
    }
    uint8_t *np = colloq_realloc(b->p, cap);
    if (!np) { b->oom = true; return false; }
    b->p = np;
    b->cap = cap;
    return true;
}
static void bb_put(bbuf *b, const void *src, size_t n) {
    if (n && bb_reserve(b, n)) { memcpy(b->p + b->n, src, n); b->n += n; }
}
static void bb_le(bbuf *b, uint64_t v, int size) {
    uint8_t q[8];
    for (int i = 0; i < size; i++) q[i] = (uint8_t)(v >> (8 * i));
    bb_put(b, q, (size_t)size);
}
static void bb_u32(bbuf *b, uint32_t v) { bb_le(b, v, 4); }
static void bb_u64(bbuf *b, uint64_t v) { bb_le(b, v, 8); }
static void bb_str(bbuf *b, const char *s, uint64_t len) { bb_u64(b, len); bb_put(b, s, (size_t)len); }

static size_t vsize(enum gguf_vtype t) {
    switch (t) {
    case GGUF_T_UINT8: case GGUF_T_INT8: case GGUF_T_BOOL: return 1;
    case GGUF_T_UINT16: case GGUF_T_INT16: return 2;
    case GGUF_T_UINT32: case GGUF_T_INT32: case GGUF_T_FLOAT32: return 4;
    case GGUF_T_UINT64: case GGUF_T_INT64: case GGUF_T_FLOAT64: return 8;
    default: return 0;
    }
}

/* Host-order elements -> little-endian bytes. */
static void bb_elems(bbuf *b, const void *data, size_t es, uint64_t n) {
    const uint8_t *src = data;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    bb_put(b, src, (size_t)(n * es));
#else
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = 0;
        switch (es) {
        case 1: v = src[i]; break;
        case 2: { uint16_t x; memcpy(&x, src + i * 2, 2); v = x; break; }
        case 4: { uint32_t x; memcpy(&x, src + i * 4, 4); v = x; break; }
        default: memcpy(&v, src + i * 8, 8); break;
        }
        bb_le(b, v, (int)es);
    }
#endif
}

/* ------------------------------------------------------------------ keys */

gguf_writer *gguf_writer_new(void) { return colloq_calloc(1, sizeof(gguf_writer)); }

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) { colloq_free(w->kvs[i].key); colloq_free(w->kvs[i].val); }
    for (size_t i = 0; i < w->n_t; i++) colloq_free(w->ts[i].name);
    colloq_free(w->kvs);
    colloq_free(w->ts);
    colloq_free(w);
}

/* Store key = serialized value (takes b's buffer); replaces an existing key. */
static void put_kv(gguf_writer *w, const char *key, size_t key_len, bbuf *b) {
    if (b->oom) {
        colloq_free(b->p);
        char k[80];
        snprintf(k, sizeof k, "%.*s", (int)(key_len < 64 ? key_len : 64), key);
        wfail(w, COLLOQ_ERR_NOMEM, "out of memory setting key '%s'", k);
        return;
    }
    for (size_t i = 0; i < w->n_kv; i++)
        if (strlen(w->kvs[i].key) == key_len && !memcmp(w->kvs[i].key, key, key_len)) {
            colloq_free(w->kvs[i].val);
            w->kvs[i].val = b->p;
            w->kvs[i].val_len = b->n;
            return;
        }
    char *k = colloq_malloc(key_len + 1);
    if (k && w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
        wkv *nk = colloq_realloc(w->kvs, cap * sizeof *nk);
        if (nk) { w->kvs = nk; w->cap_kv = cap; }
    }
    if (!k || w->n_kv == w->cap_kv) {
        colloq_free(k);
        colloq_free(b->p);
        wfail(w, COLLOQ_ERR_NOMEM, "out of memory adding key '%.*s'", (int)(key_len < 64 ? key_len : 64), key);
        return;
    }
    memcpy(k, key, key_len);
    k[key_len] = 0;
    w->kvs[w->n_kv++] = (wkv){ k, b->p, b->n };
}

static bool key_ok(gguf_writer *w, const char *key) {
    if (!w) return false;
    if (!key) { wfail(w, COLLOQ_ERR_ARG, "key is NULL"); return false; }
    return true;
}

static void set_scalar(gguf_writer *w, const char *key, enum gguf_vtype t, uint64_t bits) {
    if (!key_ok(w, key)) return;
    bbuf b = { 0 };
    bb_u32(&b, t);
    bb_le(&b, bits, (int)vsize(t));
    put_kv(w, key, strlen(key), &b);
}

void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) { set_scalar(w, key, GGUF_T_UINT32, v); }
void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) { set_scalar(w, key, GGUF_T_INT32, (uint32_t)v); }
void gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) { set_scalar(w, key, GGUF_T_BOOL, v ? 1 : 0); }
void gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    union { float f; uint32_t u; } c = { .f = v };
    set_scalar(w, key, GGUF_T_FLOAT32, c.u);
}

void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    if (!key_ok(w, key)) return;
    if (!v) { wfail(w, COLLOQ_ERR_ARG, "key '%.64s': string value is NULL", key); return; }
    bbuf b = { 0 };
    bb_u32(&b, GGUF_T_STRING);
    bb_str(&b, v, strlen(v));
    put_kv(w, key, strlen(key), &b);
}

void gguf_writer_set_arr_num(gguf_writer *w, const char *key, enum gguf_vtype t, const void *data, uint64_t n) {
    if (!key_ok(w, key)) return;
    size_t es = vsize(t);
    uint64_t nb;
    if (!es) {
        wfail(w, COLLOQ_ERR_ARG, "key '%.64s': array element type %s is not numeric", key, gguf_vtype_name(t));
        return;
    }
    if (!colloq_mul_u64(n, es, &nb) || nb > SIZE_MAX / 2 || (n && !data)) {
        wfail(w, COLLOQ_ERR_ARG, "key '%.64s': bad array (%" PRIu64 " elements, data %s)", key, n, data ? "set" : "NULL");
        return;
    }
    if (t == GGUF_T_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (((const uint8_t *)data)[i] > 1) {
                wfail(w, COLLOQ_ERR_ARG, "key '%.64s': bool element %" PRIu64 " is neither 0 nor 1", key, i);
                return;
            }
    bbuf b = { 0 };
    bb_u32(&b, GGUF_T_ARRAY);
    bb_u32(&b, t);
    bb_u64(&b, n);
    bb_elems(&b, data, es, n);
    put_kv(w, key, strlen(key), &b);
}

void gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs, uint64_t n) {
    if (!key_ok(w, key)) return;
    if (n && !strs) { wfail(w, COLLOQ_ERR_ARG, "key '%.64s': string array is NULL", key); return; }
    uint64_t total = 16;
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i]) {
            wfail(w, COLLOQ_ERR_ARG, "key '%.64s': string %" PRIu64 " is NULL", key, i);
            return;
        }
        total += 8 + strlen(strs[i]);
    }
    bbuf b = { 0 };
    if (total < SIZE_MAX / 2) bb_reserve(&b, (size_t)total + 4);
    bb_u32(&b, GGUF_T_ARRAY);
    bb_u32(&b, GGUF_T_STRING);
    bb_u64(&b, n);
    for (uint64_t i = 0; i < n; i++) bb_str(&b, strs[i], strlen(strs[i]));
    put_kv(w, key, strlen(key), &b);
}

void gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv) {
    if (!w) return;
    if (!kv) { wfail(w, COLLOQ_ERR_ARG, "copy_kv: kv is NULL"); return; }
    bbuf b = { 0 };
    bb_u32(&b, kv->type);
    switch (kv->type) {
    case GGUF_T_UINT8: case GGUF_T_UINT16: case GGUF_T_UINT32: case GGUF_T_UINT64:
        bb_le(&b, kv->v.u64, (int)vsize(kv->type)); break;
    case GGUF_T_INT8: case GGUF_T_INT16: case GGUF_T_INT32: case GGUF_T_INT64:
        bb_le(&b, (uint64_t)kv->v.i64, (int)vsize(kv->type)); break;
    case GGUF_T_FLOAT32: {
        union { float f; uint32_t u; } c = { .f = (float)kv->v.f64 };
        bb_u32(&b, c.u);
        break;
    }
    case GGUF_T_FLOAT64: {
        union { double d; uint64_t u; } c = { .d = kv->v.f64 };
        bb_u64(&b, c.u);
        break;
    }
    case GGUF_T_BOOL: bb_le(&b, kv->v.b ? 1 : 0, 1); break;
    case GGUF_T_STRING: bb_str(&b, kv->v.str.s, kv->v.str.len); break;
    case GGUF_T_ARRAY: {
        enum gguf_vtype et = kv->v.arr.type;
        uint64_t n = kv->v.arr.n;
        bb_u32(&b, et);
        bb_u64(&b, n);
        if (et == GGUF_T_STRING) {
            uint64_t total = 0;
            for (uint64_t i = 0; i < n; i++) total += 8 + gguf_arr_str(kv, i).len;
            if (total < SIZE_MAX / 2) bb_reserve(&b, (size_t)total);
            for (uint64_t i = 0; i < n; i++) {
                gguf_str s = gguf_arr_str(kv, i);
                bb_str(&b, s.s, s.len);
            }
        } else if (vsize(et)) {
            bb_put(&b, kv->v.arr.data, (size_t)(n * vsize(et)));   /* already little-endian */
        } else {
            colloq_free(b.p);
            wfail(w, COLLOQ_ERR_ARG, "copy_kv '%.*s': unsupported array element type %d",
                  (int)(kv->key.len < 64 ? kv->key.len : 64), kv->key.s, (int)et);
            return;
        }
        break;
    }
    default:
        colloq_free(b.p);
        wfail(w, COLLOQ_ERR_ARG, "copy_kv '%.*s': unknown value type %d",
              (int)(kv->key.len < 64 ? kv->key.len : 64), kv->key.s, (int)kv->type);
        return;
    }
    if (memchr(kv->key.s, 0, (size_t)kv->key.len)) {
        colloq_free(b.p);
        wfail(w, COLLOQ_ERR_ARG, "copy_kv: key contains a NUL byte");
        return;
    }
    put_kv(w, kv->key.s, (size_t)kv->key.len, &b);
}

/* ------------------------------------------------------------------ tensors */

static void add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne,
                       const void *data, uint64_t nbytes, gguf_fill_fn fill, void *ctx) {
    if (!w) return;
    if (!name) { wfail(w, COLLOQ_ERR_ARG, "tensor name is NULL"); return; }
    const colloq_type_traits *tr = colloq_type_get(type);
    if (!tr) { wfail(w, COLLOQ_ERR_ARG, "tensor '%.64s': unknown type %" PRIu32, name, type); return; }
    if (n_dims == 0 || n_dims > GGUF_MAX_DIMS || !ne) {
        wfail(w, COLLOQ_ERR_ARG, "tensor '%.64s': n_dims %" PRIu32 " must be 1..4", name, n_dims);
        return;
    }
    uint64_t count = 1, row, want;
    for (uint32_t d = 0; d < n_dims; d++)
        if (ne[d] <= 0 || !colloq_mul_u64(count, (uint64_t)ne[d], &count) || count > (uint64_t)INT64_MAX) {
            wfail(w, COLLOQ_ERR_ARG, "tensor '%.64s': ne[%" PRIu32 "] %" PRId64 " is not positive or the element count overflows",
                  name, d, ne[d]);
            return;
        }
    if (ne[0] % tr->blck != 0 || !colloq_type_row_size(type, ne[0], &row) ||
        !colloq_mul_u64(row, count / (uint64_t)ne[0], &want)) {
        wfail(w, COLLOQ_ERR_ARG, "tensor '%.64s': ne[0] %" PRId64 " is not a multiple of the %s block size %d",
              name, ne[0], tr->name, tr->blck);
        return;
    }
    if (nbytes != want) {
        wfail(w, COLLOQ_ERR_ARG, "tensor '%.64s': nbytes %" PRIu64 " does not match the %" PRIu64 " bytes of its %s shape",
              name, nbytes, want, tr->name);
        return;
    }
    if (!data && !fill) { wfail(w, COLLOQ_ERR_ARG, "tensor '%.64s': no data", name); return; }
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 32;
        wtensor *nt = colloq_realloc(w->ts, cap * sizeof *nt);
        if (!nt) { wfail(w, COLLOQ_ERR_NOMEM, "out of memory adding tensor '%.64s'", name); return; }
        w->ts = nt;
        w->cap_t = cap;
    }
    char *nm = colloq_strdup(name);
    if (!nm) { wfail(w, COLLOQ_ERR_NOMEM, "out of memory adding tensor '%.64s'", name); return; }
    wtensor *t = &w->ts[w->n_t++];
    *t = (wtensor){ .name = nm, .type = type, .n_dims = n_dims, .nbytes = nbytes,
                    .data = data, .fill = fill, .ctx = ctx };
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
}

void gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                            const int64_t *ne, const void *data, uint64_t nbytes) {
    if (w && !data && nbytes) { wfail(w, COLLOQ_ERR_ARG, "tensor '%.64s': data is NULL", name ? name : "?"); return; }
    add_tensor(w, name, type, n_dims, ne, data, nbytes, NULL, NULL);
}

void gguf_writer_add_tensor_cb(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                               const int64_t *ne, uint64_t nbytes, gguf_fill_fn fill, void *ctx) {
    if (w && !fill) { wfail(w, COLLOQ_ERR_ARG, "tensor '%.64s': fill callback is NULL", name ? name : "?"); return; }
    add_tensor(w, name, type, n_dims, ne, NULL, nbytes, fill, ctx);
}

/* ------------------------------------------------------------------ write */

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const wtensor *const *)a)->name, (*(const wtensor *const *)b)->name);
}

typedef struct { FILE *fp; const char *path; colloq_err *err; int status; } out_t;

static bool out_put(out_t *o, const void *p, size_t n) {
    if (o->status) return false;
    if (n && fwrite(p, 1, n, o->fp) != n) {
        o->status = colloq_seterr(o->err, COLLOQ_ERR_IO, "%s: write failed: %s", o->path, strerror(errno));
        return false;
    }
    return true;
}
static bool out_zeros(out_t *o, uint64_t n) {
    static const uint8_t z[256];
    while (n) {
        size_t k = n < sizeof z ? (size_t)n : sizeof z;
        if (!out_put(o, z, k)) return false;
        n -= k;
    }
    return true;
}

/* Header, key/values and tensor infos, already serialized into b. */
static void build_header(const gguf_writer *w, uint32_t alignment, bbuf *b) {
    bool have_align = false;
    for (size_t i = 0; i < w->n_kv; i++) have_align |= !strcmp(w->kvs[i].key, "general.alignment");
    bool add_align = !have_align && alignment != GGUF_DEFAULT_ALIGNMENT;
    bb_put(b, "GGUF", 4);
    bb_u32(b, 3);
    bb_u64(b, w->n_t);
    bb_u64(b, w->n_kv + (add_align ? 1 : 0));
    for (size_t i = 0; i < w->n_kv; i++) {
        bb_str(b, w->kvs[i].key, strlen(w->kvs[i].key));
        if (!strcmp(w->kvs[i].key, "general.alignment")) {
            bb_u32(b, GGUF_T_UINT32);
            bb_u32(b, alignment);
        } else {
            bb_put(b, w->kvs[i].val, w->kvs[i].val_len);
        }
    }
    if (add_align) {
        bb_str(b, "general.alignment", strlen("general.alignment"));
        bb_u32(b, GGUF_T_UINT32);
        bb_u32(b, alignment);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->ts[i];
        bb_str(b, t->name, strlen(t->name));
        bb_u32(b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) bb_u64(b, (uint64_t)t->ne[d]);
        bb_u32(b, t->type);
        bb_u64(b, t->offset);
    }
}

static int write_all(gguf_writer *w, out_t *o, uint32_t alignment) {
    uint64_t off = 0, max_cb = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        wtensor *t = &w->ts[i];
        uint64_t end;
        t->offset = off;
        if (!colloq_add_u64(off, t->nbytes, &end) || !colloq_add_u64(end, alignment - 1, &off))
            return colloq_seterr(o->err, COLLOQ_ERR_ARG, "%s: tensor data too large", o->path);
        off &= ~(uint64_t)(alignment - 1);
        if (t->fill && t->nbytes > max_cb) max_cb = t->nbytes;
    }
    if (max_cb > SIZE_MAX) return colloq_seterr(o->err, COLLOQ_ERR_NOMEM, "%s: tensor too large for memory", o->path);
    bbuf b = { 0 };
    build_header(w, alignment, &b);
    if (b.oom) {
        colloq_free(b.p);
        return colloq_seterr(o->err, COLLOQ_ERR_NOMEM, "%s: out of memory building the header", o->path);
    }
    out_put(o, b.p, b.n);
    out_zeros(o, (alignment - b.n % alignment) % alignment);
    colloq_free(b.p);
    void *buf = NULL;
    if (max_cb && !o->status) {
        buf = colloq_malloc((size_t)max_cb);
        if (!buf) return colloq_seterr(o->err, COLLOQ_ERR_NOMEM, "%s: out of memory for a %" PRIu64 "-byte tensor buffer",
                                       o->path, max_cb);
    }
    for (size_t i = 0; i < w->n_t && !o->status; i++) {
        const wtensor *t = &w->ts[i];
        const void *src = t->data;
        if (t->fill) {
            int rc = t->fill(t->ctx, buf, t->nbytes);
            if (rc != 0) {
                o->status = colloq_seterr(o->err, COLLOQ_ERR_IO, "%s: tensor '%.64s': fill callback failed (%d)",
                                          o->path, t->name, rc);
                break;
            }
            src = buf;
        }
        out_put(o, src, (size_t)t->nbytes);
        out_zeros(o, (alignment - t->nbytes % alignment) % alignment);
    }
    colloq_free(buf);
    return o->status;
}

int gguf_writer_write(gguf_writer *w, const char *path, uint32_t alignment, colloq_err *err) {
    if (!path) return colloq_seterr(err, COLLOQ_ERR_ARG, "gguf_writer_write: path is NULL");
    if (!w) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory creating the GGUF writer", path);
    if (w->status) return colloq_seterr(err, w->status, "%s: %s", path, w->msg);
    if (alignment == 0) alignment = GGUF_DEFAULT_ALIGNMENT;
    if (alignment & (alignment - 1))
        return colloq_seterr(err, COLLOQ_ERR_ARG, "%s: alignment %" PRIu32 " is not a power of two", path, alignment);
    if (w->n_t > 1) {   /* tensor names must be unique */
        const wtensor **ord = colloq_malloc(w->n_t * sizeof *ord);
        if (!ord) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory", path);
        for (size_t i = 0; i < w->n_t; i++) ord[i] = &w->ts[i];
        qsort(ord, w->n_t, sizeof *ord, cmp_name);
        for (size_t i = 1; i < w->n_t; i++)
            if (!strcmp(ord[i - 1]->name, ord[i]->name)) {
                int rc = colloq_seterr(err, COLLOQ_ERR_ARG, "%s: duplicate tensor name '%.64s'", path, ord[i]->name);
                colloq_free(ord);
                return rc;
            }
        colloq_free(ord);
    }

    /* Regular files go through PATH.partial + rename so a failed write leaves no
     * truncated file (and never clobbers a file that is being read). */
    struct stat st;
    bool in_place = stat(path, &st) == 0 && !S_ISREG(st.st_mode);
    size_t pl = strlen(path);
    char *tmp = colloq_malloc(pl + sizeof ".partial");
    if (!tmp) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".partial", sizeof ".partial");
    const char *target = in_place ? path : tmp;
    int fd = in_place ? open(target, O_WRONLY | O_CLOEXEC)
                      : open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    FILE *fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!fp) {
        int e = errno;
        if (fd >= 0) close(fd);
        if (fd >= 0 && !in_place) unlink(tmp);
        colloq_free(tmp);
        return colloq_seterr(err, COLLOQ_ERR_IO, "%s: cannot create: %s", path, strerror(e));
    }
    out_t o = { fp, path, err, 0 };
    int rc = write_all(w, &o, alignment);
    if (fflush(fp) != 0 && !rc) rc = colloq_seterr(err, COLLOQ_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (fclose(fp) != 0 && !rc) rc = colloq_seterr(err, COLLOQ_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (!in_place) {
        if (!rc && rename(tmp, path) != 0)
            rc = colloq_seterr(err, COLLOQ_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        if (rc) unlink(tmp);
    }
    colloq_free(tmp);
    return rc;
}
