/*
 * jinja_internal.h - what the jinja_*.c files share: the value representation
 * (reference-counted, Python semantics), tokens, the syntax tree and the render
 * state.  Included only by src/jinja_*.c; the rest of colloq uses jinja.h.
 * Must not grow knowledge of models, tokenizers or any I/O.
 */
#ifndef COLLOQ_JINJA_INTERNAL_H
#define COLLOQ_JINJA_INTERNAL_H

#include <stdarg.h>
#include <stdint.h>
#include "jinja.h"
#include "util.h"

/* ---- limits (untrusted templates) ---- */
#define JINJA_MAX_NEST        512      /* nesting of values in repr/json/compare */
#define JINJA_MAX_EXPR_HEIGHT 400      /* height of one expression tree */
#define JINJA_MAX_PARSE_DEPTH 200      /* parser recursion (nested blocks/brackets) */
#define JINJA_MAX_EVAL_DEPTH  3000     /* evaluator recursion */
#define JINJA_MAX_MACRO_DEPTH 200      /* nested macro calls */
#define JINJA_MAX_ITEMS       (1u << 20) /* elements of one list or dict */
#define JINJA_MAX_RANGE       100000   /* as Jinja's sandbox */
#define JINJA_STACK_BUDGET    (512u << 10) /* default bytes of stack the parser/renderer may use */

/* Bytes of stack used since base (stacks grow down on the targets colloq supports). */
static inline size_t jinja_stack_used(uintptr_t base) {
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    return base > here ? base - here : here - base;
}

/* ---- values ---- */
typedef enum {
    JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR,
    JV_LIST, JV_DICT, JV_NS, JV_FUNC, JV_LOOP
} jv_type;

#define JVF_MARKUP  1u   /* JV_STR: a markupsafe.Markup (result of |safe) */
#define JVF_MISSING 2u   /* JV_UNDEF: an argument that was not passed */

typedef struct jobj jobj;
typedef struct jstr jstr;
typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jfunc jfunc;
typedef struct jloop jloop;

typedef struct jv {
    uint8_t type;
    uint8_t flags;
    union {
        bool b; int64_t i; double f;
        jobj *o;
        jstr *s;      /* JV_STR; JV_UNDEF: message or NULL */
        jlist *l;
        jdict *d;     /* JV_DICT and JV_NS */
        jfunc *fn;
        jloop *lp;
    } u;
} jv;

/* Header of every heap value.  rc < 0: immortal (template constants). */
struct jobj { int32_t rc; uint8_t type; jobj *next; };

struct jstr { jobj h; int32_t ascii; /* -1 unknown */ size_t len; char s[]; };

enum { JL_LIST, JL_TUPLE, JL_GEN, JL_ITEMS, JL_KEYS, JL_VALUES, JL_RANGE, JL_REVITER };
struct jlist {
    jobj h;
    uint8_t kind;
    size_t n, cap;
    size_t pos;                          /* JL_GEN / JL_REVITER: items consumed */
    jv *v;
    int64_t rstart, rstop, rstep;        /* JL_RANGE, for printing */
    jv lazy;                             /* JL_GEN: an error raised when it is consumed */
};

struct jdict {
    jobj h;
    size_t n, cap;
    jv *k, *v;
    uint32_t *idx;                       /* open addressing, slot = index + 1 */
    size_t icap;
};

enum { JF_GLOBAL, JF_METHOD, JF_MACRO, JF_CALLER, JF_JOINER, JF_LOOPCALL };
struct jscope;
struct jnode;
struct jfunc {
    jobj h;
    uint8_t kind;
    int id;                              /* JF_GLOBAL, JF_METHOD */
    jv self;                             /* JF_METHOD receiver, JF_JOINER separator */
    bool used;                           /* JF_JOINER */
    const struct jnode *node;            /* JF_MACRO, JF_CALLER */
    struct jscope *scope;                /* defining scope (kept alive by the renderer) */
};

struct jloop {
    jobj h;
    jv src;                              /* the iterated values */
    size_t src_pos;                      /* next of src to test against the loop filter */
    bool all;                            /* every value of src tested */
    jv items;                            /* the values that passed, so far */
    size_t i;                            /* index0 */
    int depth0;
    jv last; bool have_last;             /* loop.changed() */
    const struct jnode *node;            /* the for statement (recursive loops) */
    struct jscope *scope;                /* scope the for statement runs in */
};

/* Sticky per-thread failure state: allocation failures and size limits set a flag
 * and return harmless placeholders; the renderer checks the flags. */
typedef struct {
    bool oom; bool limit; size_t max_str;
    uint64_t work;              /* elements built, compared or sorted (render budget) */
    uint64_t bytes;             /* string bytes built or scanned (a unit of work per 16) */
} jv_tls_t;
extern _Thread_local jv_tls_t jv_tls;

void *jmalloc(size_t n);
void *jrealloc(void *p, size_t n);

static inline bool jv_isheap(jv v) {
    return v.type >= JV_STR || (v.type == JV_UNDEF && v.u.s != NULL);
}
jv   jv_ref(jv v);
void jv_unref(jv v);

static inline jv jv_none(void) { jv v = { .type = JV_NONE }; return v; }
static inline jv jv_bool(bool b) { jv v = { .type = JV_BOOL }; v.u.b = b; return v; }
static inline jv jv_int(int64_t i) { jv v = { .type = JV_INT }; v.u.i = i; return v; }
static inline jv jv_float(double f) { jv v = { .type = JV_FLOAT }; v.u.f = f; return v; }
static inline jv jv_undef(void) { jv v = { .type = JV_UNDEF }; return v; }
static inline jv jv_missing(void) { jv v = { .type = JV_UNDEF, .flags = JVF_MISSING }; return v; }
static inline bool jv_is_missing(jv v) { return v.type == JV_UNDEF && (v.flags & JVF_MISSING); }
static inline bool jv_is_str(jv v) { return v.type == JV_STR; }
static inline bool jv_is_num(jv v) { return v.type == JV_INT || v.type == JV_FLOAT || v.type == JV_BOOL; }
static inline bool jv_is_intlike(jv v) { return v.type == JV_INT || v.type == JV_BOOL; }
static inline int64_t jv_as_int(jv v) { return v.type == JV_BOOL ? (int64_t)v.u.b : v.u.i; }
static inline double jv_as_float(jv v) {
    return v.type == JV_FLOAT ? v.u.f : (double)jv_as_int(v);
}
jv   jv_undef_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* strings: valid UTF-8 always */
jstr *jstr_alloc(size_t len);            /* data uninitialised (NUL added); NULL on failure */
jv    jv_str(const char *p, size_t n);   /* copy; on failure "" (and the sticky flag) */
jv    jv_cstr(const char *s);
jv    jv_str_take(jstr *s);              /* NULL -> "" */
jv    jv_empty_str(void);
static inline const char *jv_sp(jv v) { return v.u.s->s; }
static inline size_t jv_sn(jv v) { return v.u.s->len; }
size_t jv_str_ncp(jv v);                 /* length in code points */
bool   jv_str_ascii(jv v);
bool   jv_str_eq(jv v, const char *s);

/* lists (a list being built is owned by one holder and may be appended to) */
jv   jv_list(uint8_t kind, size_t cap);
bool jl_push(jv list, jv take);
static inline size_t jl_len(jv v) { return v.u.l->n; }
static inline jv jl_at(jv v, size_t i) { return v.u.l->v[i]; }

/* dicts: ordered, any hashable key */
jv   jv_dict(void);
bool jd_set(jdict *d, jv key, jv take);  /* key is borrowed (referenced) */
jv  *jd_get(const jdict *d, jv key);     /* borrowed or NULL */
jv  *jd_get_str(const jdict *d, const char *k, size_t n);
bool jv_hashable(jv v);

bool jv_truthy(jv v);
const char *jv_typename(jv v);           /* Python's type name: 'str', 'dict', ... */
/* Python ==; depth-limited (false beyond the limit). */
bool jv_eq(jv a, jv b);
/* Python ordering for operator op ("<", ">", ...): *out = -1, 0, 1, or 2 when
 * unordered (NaN).  Returns -1 with msg filled when the types do not compare. */
int  jv_order(jv a, jv b, const char *op, int *out, char *msg, size_t msgcap);
const char *jv_object_type_repr(jv v, char *buf, size_t cap);   /* "dict object" */
uint64_t jv_hash(jv v);

/* Stable merge sort of an index array; cmp sets *out (<0, 0, >0) or returns -1. */
int  jv_sort_idx(size_t *idx, size_t n, int (*cmp)(void *ctx, size_t a, size_t b, int *out),
                 void *ctx);
jv   jinja_value_jv(const jinja_value *v);

/* growable byte buffer; failures set the sticky flags */
typedef struct { char *p; size_t n, cap; } jbuf;
bool jb_put(jbuf *b, const char *s, size_t n);
bool jb_puts(jbuf *b, const char *s);
bool jb_putc(jbuf *b, char c);
bool jb_printf(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
jv   jb_take_str(jbuf *b);                /* buffer becomes empty */
void jb_free(jbuf *b);

/* Python str() and repr(); -1 when nested too deep. */
int  jv_tostr(jbuf *b, jv v);
int  jv_repr(jbuf *b, jv v, int depth);
jv   jv_to_strv(jv v);                    /* str(v) as a value (new reference) */

typedef struct {
    bool ensure_ascii, sort_keys;
    const char *indent; size_t indent_n;  /* NULL: no indentation */
    const char *item_sep, *key_sep;
    size_t item_sep_n, key_sep_n;
} jjson_opts;
/* json.dumps; -1 with msg when a value cannot be serialised. */
int  jv_tojson(jbuf *b, jv v, const jjson_opts *o, int depth, char *msg, size_t msgcap);

/* ---- unicode helpers (Python str semantics) ---- */
uint32_t ju_next(const char *s, size_t n, size_t *i);   /* decode at *i, advance */
size_t   ju_put(char *out, uint32_t cp);                 /* encode; 1..4 bytes */
bool     ju_isspace(uint32_t cp);
bool     ju_islinebreak(uint32_t cp);
bool     ju_isprintable(uint32_t cp);
bool     ju_isalpha(uint32_t cp);
bool     ju_isdigit(uint32_t cp);
bool     ju_isalnum(uint32_t cp);
bool     ju_iscased(uint32_t cp);
bool     ju_isupper(uint32_t cp);
bool     ju_islower(uint32_t cp);
enum { JU_UPPER, JU_LOWER, JU_TITLE, JU_CAPITALIZE, JU_SWAPCASE };
bool     ju_case(jbuf *b, const char *s, size_t n, int mode);
bool     ju_case1(jbuf *b, uint32_t cp, int mode);       /* one code point: upper/lower/title */
void     ju_float_repr(double x, char *buf, size_t cap); /* repr(float) */
size_t   ju_cp_offset(const char *s, size_t n, size_t cp); /* byte offset of code point cp */
size_t   ju_ncp(const char *s, size_t n);

/* ---- tokens ---- */
typedef enum {
    JT_EOF, JT_DATA, JT_VAR_BEGIN, JT_VAR_END, JT_BLOCK_BEGIN, JT_BLOCK_END,
    JT_NAME, JT_STRING, JT_INT, JT_FLOAT,
    JT_ADD, JT_SUB, JT_DIV, JT_FLOORDIV, JT_MUL, JT_MOD, JT_POW, JT_TILDE,
    JT_LBRACKET, JT_RBRACKET, JT_LPAREN, JT_RPAREN, JT_LBRACE, JT_RBRACE,
    JT_EQ, JT_NE, JT_GT, JT_GTEQ, JT_LT, JT_LTEQ, JT_ASSIGN, JT_DOT, JT_COLON,
    JT_PIPE, JT_COMMA, JT_SEMICOLON
} jt_type;

typedef struct {
    uint8_t type;
    int line;
    const char *s; size_t n;     /* NAME, STRING (decoded), DATA */
    int64_t i; double f;
} jtok;

typedef struct jchunk jchunk;
typedef struct { jchunk *head; size_t used, cap; } jarena;
void *ja_alloc(jarena *a, size_t n);      /* zeroed; NULL on failure */
void  ja_free(jarena *a);
jstr *ja_jstr(jarena *a, const char *s, size_t n);   /* immortal string */

/* Tokenise src; tokens live in the arena. */
int jlex(const char *src, size_t len, jarena *a, jtok **toks, size_t *ntoks, colloq_err *err);
const char *jt_describe(const jtok *t);

/* ---- syntax tree ---- */
typedef enum {
    JN_BODY, JN_TEXT, JN_OUTPUT, JN_IF, JN_FOR, JN_SET, JN_SETBLOCK, JN_MACRO,
    JN_CALLBLOCK, JN_FILTERBLOCK, JN_WITH, JN_SCOPE, JN_BREAK, JN_CONTINUE,
    JN_CONST, JN_NAME, JN_GETATTR, JN_GETITEM, JN_SLICE, JN_CALL, JN_FILTER, JN_TEST,
    JN_LIST, JN_TUPLE, JN_DICT, JN_BINOP, JN_NEG, JN_POS, JN_NOT, JN_AND, JN_OR,
    JN_COMPARE, JN_CONCAT, JN_CONDEXPR, JN_NSREF
} jn_kind;

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW };
enum { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE, CMP_IN, CMP_NOTIN };

#define JNF_RECURSIVE 1u   /* for ... recursive */
#define JNF_CALLER    2u   /* macro body uses caller */
#define JNF_VARARGS   4u
#define JNF_KWARGS    8u
#define JNF_CONST     16u  /* expression of literals only: jinja2 folds it at compile time */
#define JNF_MAYFOLD   32u  /* if-expression / and / or with a literal test: may fold */
#define JNF_CONTEXT   64u  /* filter that needs the render context: never folded */

typedef struct jnode jnode;
typedef struct {
    jnode **pos; size_t npos;
    jstr **kwn; jnode **kwv; size_t nkw;
    jnode *dyn, *dynkw;
} jargs;

struct jnode {
    uint8_t kind, op, flags;
    int line;
    int height;                 /* expressions */
    int fid;                    /* JN_FILTER / JN_TEST: builtin id or -1 */
    const char *name;           /* NAME, GETATTR, FILTER, TEST, MACRO, NSREF attribute */
    jv val;                     /* CONST, TEXT (immortal) */
    jnode *a, *b, *c, *d, *e;
    jnode **kids; size_t nkids;
    uint8_t *ops;               /* COMPARE */
    jargs *args;                /* CALL, FILTER, TEST, WITH (values) */
    const char **pnames; jnode **pdefs; size_t nparams;   /* MACRO, CALLBLOCK */
    const char **masked; size_t nmasked;  /* BODY of a frame: names that start missing */
};

struct jinja_template { jarena arena; jnode *root; };

/* Jinja2's frame analysis (jinja_symbols.c): fills jnode.masked; -1 when out of memory. */
int jinja_analyze_symbols(jinja_template *t);
void jinja_scan_names(const jnode *n, uint8_t *flags);        /* caller/varargs/kwargs use */
const jnode *jinja_check_names(const jnode *n, bool soft);    /* unknown filter or test */

/* ---- builtins (jinja_filters.c, jinja_methods.c) ---- */
int jf_filter_id(const char *name);
int jf_test_id(const char *name);

/* ---- renderer ---- */
typedef struct jscope {
    struct jscope *parent;
    const char **names; jv *vals; size_t n, cap;
    bool captured;
    struct jscope *next;         /* retained list */
} jscope;

typedef struct {
    jv *pos; size_t npos, pcap;
    jv *kwn; jv *kwv; size_t nkw, kcap;   /* names are string values */
} jcall;

typedef struct jr {
    const jinja_template *t;
    jv ctx;                     /* dict */
    jscope *root;
    jscope *retained;
    jv namespaces;              /* every namespace made (cycles are broken at the end) */
    int line;                   /* line being evaluated */
    bool failed, raised, oom;
    int err_line;
    jv loops;                   /* every loop object made (loop.changed state is cleared) */
    char msg[512];
    uint64_t steps, max_steps;
    int depth, macro_depth;
    uintptr_t stack_base; size_t max_stack;
    bool folding;               /* evaluating a literal-only expression as jinja2's optimizer */
    const struct jnode *output_expr;   /* the expression of the {{ }} being evaluated */
    int64_t now; bool utc;
} jr;

/* Record an error at r->line (first error wins); returns -1. */
int  jr_fail(jr *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int  jr_fail_undef(jr *r, jv undef);
bool jr_ok(jr *r);             /* false after an error or a sticky failure */
int  jr_step(jr *r);           /* count one unit of work; -1 past the budget */

/* statements return EX_OK, EX_BREAK, EX_CONTINUE or EX_ERR */
enum { EX_ERR = -1, EX_OK = 0, EX_BREAK = 1, EX_CONTINUE = 2 };
int  je_eval(jr *r, jscope *s, const jnode *n, jv *out);
int  je_exec(jr *r, jscope *s, const jnode *n, jbuf *out);
bool je_lookup(jr *r, jscope *s, const char *name, jv *out);   /* new reference */
int  je_call_macro(jr *r, jfunc *fn, jcall *c, jv *out);
int  je_loop_call(jr *r, jloop *lp, jcall *c, jv *out);
/* Test source values against the loop filter until `want` items passed (SIZE_MAX: all). */
int  je_loop_fill(jr *r, jloop *lp, size_t want);
int  je_write(jr *r, jbuf *out, jv v);                          /* str(v) to the output */
int  je_filter_chain(jr *r, jscope *s, const jnode *chain, jv in, jv *out);

/* evaluation services used by builtins */
int  je_getattr(jr *r, jv obj, const char *name, size_t n, jv *out);
int  je_getitem(jr *r, jv obj, jv key, jv *out);
int  je_call(jr *r, jv fn, jcall *c, jv *out);
int  je_binop(jr *r, int op, jv a, jv b, jv *out);
int  je_contains(jr *r, jv container, jv item, bool *out);
int  je_iter(jr *r, jv v, jv *out_list);      /* Python iter() materialised */
int  je_filter(jr *r, int id, const char *name, jv in, jcall *c, jv *out);
int  je_test(jr *r, int id, const char *name, jv in, jcall *c, bool *out);
void jcall_free(jcall *c);
int  je_eval_args(jr *r, jscope *s, const jargs *a, jcall *c);
int  jcall_push_kw(jr *r, jcall *c, jv name, jv take);
bool jcall_push_pos(jcall *c, jv take);
/* Bind call arguments to parameter names; out[i] borrowed or missing. */
int  jcall_bind(jr *r, const char *fname, const jcall *c, const char *const *names,
                size_t nnames, jv *out);

int  jm_lookup_attr(jr *r, jv obj, const char *name, size_t n, jv *out, bool *found);
int  jm_call(jr *r, jfunc *fn, jcall *c, jv *out);
int  jm_global(const char *name);        /* global function id or -1 */
int  jf_apply_filter(jr *r, int id, jv in, jcall *c, jv *out);
int  jf_apply_test(jr *r, int id, jv in, jcall *c, bool *out);
jv   jv_escape(jv s);                    /* markupsafe.escape */
jv   jv_new_func(uint8_t kind, int id, jv self_take);

#endif
