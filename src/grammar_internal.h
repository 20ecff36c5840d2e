/*
 * grammar_internal.h - what the grammar files share: the compiled node tables
 * (written by grammar_schema.c, read by grammar.c), the automaton frame and step
 * function (grammar.c), and the token tries (grammar_vocab.c).  Not for other modules.
 */
#ifndef COLLOQ_GRAMMAR_INTERNAL_H
#define COLLOQ_GRAMMAR_INTERNAL_H

#include "grammar.h"

#define GR_INF        0x3fffffffu     /* "no text": minlen / min_depth of an unsatisfiable node */
#define GR_ROOT_NODE  UINT32_MAX      /* node id of the root frame */
#define GR_MAX_PROPS  64              /* properties of one object (a bit each in a frame) */
#define GR_MAX_TOKEN  1024            /* longer token pieces are never allowed */
#define GR_MAX_LEVELS 256             /* pure-token length levels kept as bitmaps */

enum gr_kind {
    GR_ANY,       /* any JSON value: dispatched on the first byte to the built-in nodes */
    GR_OBJECT,    /* fixed property names (keys lits[lit0..+n), values idx[first..+n)) */
    GR_MAP,       /* any member names (key_node), values of one node (child), at most max */
    GR_ARRAY,     /* items of one node (child), min..max of them */
    GR_STRING,    /* min..max characters */
    GR_NUMBER,
    GR_INTEGER,
    GR_LITERALS,  /* one of lits[first..+n), sorted by bytes (enum, const, true/false/null) */
    GR_ANYOF,     /* alternatives idx[first..+n), told apart by their first byte */
    GR_UNION,     /* objects told apart by a leading discriminator member: key lits[lit0],
                   * tag values = LITERALS node child; for tag literal i (of child's n):
                   * idx[first+i] = the OBJECT, idx[first+n+i] = the discriminator's property
                   * index in it, idx[first+2n+i] = bytes of its shortest rest after the tag */
};

/* Built-in nodes every grammar starts with (what GR_ANY dispatches to). */
enum { GR_N_ANY = 0, GR_N_ANY_OBJ = 1, GR_N_ANY_ARR = 2, GR_N_ANY_STR = 3, GR_N_ANY_NUM = 4,
       GR_N_ANY_LIT = 5, GR_N_BUILTIN = 6 };

enum { GRF_ONEOF = 1,        /* ANYOF from oneOf: alternatives must not overlap at all */
       GRF_ALIAS = 2 };      /* ANYOF with one alternative standing for a $ref target */

typedef struct {
    uint8_t  kind;
    uint8_t  flags;         /* GRF_* */
    uint32_t first, n;      /* see enum gr_kind */
    uint32_t lit0;
    uint32_t child;
    uint32_t min, max;      /* ARRAY: items; STRING: characters; MAP: members (max only);
                             * UINT32_MAX = no limit */
    uint32_t minlen;        /* bytes of the shortest text, GR_INF when there is none */
    uint32_t min_depth;     /* least container nesting any text of the node needs */
    uint64_t required;      /* OBJECT: bit i = property i must appear */
    uint8_t  first_set[32]; /* bytes that can start a text of the node */
} gr_node;

typedef struct { uint32_t off, len; } gr_lit;   /* bytes[off..off+len) */

struct colloq_grammar {
    colloq_grammar_opts o;
    gr_node  *nodes;  uint32_t n_nodes, cap_nodes;
    uint32_t *idx;    uint32_t n_idx, cap_idx;
    gr_lit   *lits;   uint32_t n_lits, cap_lits;
    uint8_t  *bytes;  uint32_t n_bytes, cap_bytes;
    uint32_t root;
    uint32_t max_jump;      /* bound on how much one byte can lengthen the shortest completion */
};

static inline bool gr_bit(const uint8_t set[32], unsigned c) { return (set[c >> 3] >> (c & 7)) & 1; }
static inline void gr_setbit(uint8_t set[32], unsigned c) { set[c >> 3] |= (uint8_t)(1u << (c & 7)); }

/* ---- analysis (grammar_analyse.c) ---- */

/* Fill minlen, min_depth and first_set of every node (fixpoints). */
void gr_analyse(colloq_grammar *g);
/* Union tag i's shortest rest after the tag: the other required members, commas, '}'. */
uint32_t gr_union_tail(const colloq_grammar *g, const gr_node *u, uint32_t i);

/* ---- automaton (grammar.c) ---- */

/* One level of the automaton's stack.  Frames are immutable once another frame points
 * at them: a step copies the frames it changes (so mask walks share prefixes). */
typedef struct gr_frame {
    const struct gr_frame *up;
    uint64_t seen;          /* OBJECT: properties present */
    uint32_t node;          /* GR_ROOT_NODE for the root */
    uint32_t count;         /* STRING: characters; ARRAY/MAP: items; numbers: digits of this part */
    uint32_t lo, hi;        /* LITERALS / member-name match: candidate literals; STRING: UTF-8 byte range */
    uint16_t pos;           /* bytes of the candidates matched; STRING: pending bytes / hex digits */
    uint16_t aux;           /* OBJECT: chosen property; STRING: \u value so far */
    uint8_t  sub;           /* state within the node */
    uint8_t  ws;            /* whitespace bytes in the current gap */
    uint8_t  depth;         /* containers from the root down to here */
    uint8_t  flag;          /* STRING: a low surrogate is expected */
} gr_frame;

typedef struct {
    const colloq_grammar *g;
    gr_frame *arena;
    uint32_t  top, cap;
} gr_walk;

/* The stack after byte c, or NULL when c is not allowed (frames from w->arena). */
const gr_frame *gr_step(gr_walk *w, const gr_frame *f, unsigned c);
/* Whether the text may end here. */
bool gr_can_end(const colloq_grammar *g, const gr_frame *f);
/* Bytes of the shortest completion (saturating at GR_INF). */
uint32_t gr_dist(const colloq_grammar *g, const gr_frame *f);
/* Whether p[0..n) is a complete text of node x: 1 yes, 0 no, -1 out of memory (for the
 * compiler: the node tables' minlen, min_depth and first_set must be computed). */
int gr_accepts(const colloq_grammar *g, uint32_t x, const uint8_t *p, uint32_t n);

/* ---- token tries (grammar_vocab.c) ---- */

/* Trie over token pieces in preorder: node i's subtree is [i+1, skip); tokens whose
 * piece ends at node i are order[tok_lo..tok_hi). */
typedef struct {
    uint32_t skip;
    uint32_t tok_lo, tok_hi;
    uint16_t depth;
    uint8_t  byte;
} gr_tnode;

typedef struct {
    gr_tnode     *nodes;
    uint32_t      n_nodes;
    colloq_token *order;
} gr_trie;

struct colloq_grammar_vocab {
    int       n;              /* vocabulary size */
    int       words;          /* uint64_t words in a mask */
    uint32_t  max_len;        /* longest piece in the tries */
    uint32_t *off;            /* piece of token t: bytes[off[t]..off[t+1]) */
    uint8_t  *bytes;
    uint8_t  *is_eog;         /* per token */
    gr_trie   all;            /* every token with a non-empty piece that does not end generation */
    gr_trie   impure;         /* those that are not plain string content */
    /* Plain string content (no '"', '\\', control bytes; whole UTF-8 characters):
     * level[L] (L < n_levels) = bitmap of those with at most L characters. */
    uint64_t *levels;
    uint32_t  n_levels;
    colloq_token *eog;        /* end-of-generation tokens */
    int       n_eog;
};

#endif
