/*
 * sampler.c - chooses the next token from logits: penalties over recent tokens,
 * then greedy, or top-k -> top-p -> min-p -> temperature and a seeded draw (with no
 * filter set, straight over the vocabulary in id order: nothing needs sorting).
 * Owns its RNG (xoshiro256** seeded by splitmix64) and every buffer, allocated
 * at init: sampling never allocates.  Must not know the model or the tokenizer.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "colloq.h"
#include "util.h"

typedef struct { float logit; colloq_token id; } cand;

struct colloq_sampler {
    colloq_sampler_params p;
    int      n_vocab;
    uint64_t rng[4];
    cand    *heap;        /* n_vocab: max-heap of candidates still unsorted */
    cand    *sorted;      /* n_vocab: candidates popped from the heap, best first */
    double  *w;           /* n_vocab: the draw's weights, computed once per sample */
    colloq_token *recent; /* ring of the last repeat_last_n accepted tokens */
    int      n_recent, recent_pos;
    int32_t *count;       /* n_vocab, all zero between calls */
};

colloq_sampler_params colloq_sampler_default_params(void) {
    colloq_sampler_params p = {
        .temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
        .repeat_penalty = 1.0f, .repeat_last_n = 64, .presence_penalty = 0.0f,
        .frequency_penalty = 0.0f, .seed = 0x5eed,
    };
    return p;
}

/* ---- RNG ---- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform double in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4]) { return (double)(xoshiro_next(s) >> 11) * 0x1.0p-53; }

/* ---- lifetime ---- */

int colloq_sampler_init(const colloq_sampler_params *p, int n_vocab, colloq_sampler **out, colloq_err *err) {
    *out = NULL;
    if (!p || n_vocab <= 0)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "sampler: n_vocab must be positive (got %d)", n_vocab);
    if (!(p->temperature >= 0) || !(p->top_p >= 0 && p->top_p <= 1) || !(p->min_p >= 0 && p->min_p <= 1) ||
        !(p->repeat_penalty > 0) || p->top_k < 0 || !isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty) ||
        !isfinite(p->temperature) || !isfinite(p->repeat_penalty))
        return colloq_seterr(err, COLLOQ_ERR_ARG,
                             "sampler: bad parameters (temperature %g, top_k %d, top_p %g, min_p %g, repeat_penalty %g)",
                             (double)p->temperature, p->top_k, (double)p->top_p, (double)p->min_p,
                             (double)p->repeat_penalty);
    colloq_sampler *s = colloq_calloc(1, sizeof *s);
    if (!s) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "sampler: out of memory");
    s->p = *p;
    if (s->p.repeat_last_n < 0) s->p.repeat_last_n = 0;
    s->n_vocab = n_vocab;
    s->heap = colloq_malloc((size_t)n_vocab * sizeof *s->heap);
    s->sorted = colloq_malloc((size_t)n_vocab * sizeof *s->sorted);
    s->w = colloq_malloc((size_t)n_vocab * sizeof *s->w);
    s->count = colloq_calloc((size_t)n_vocab, sizeof *s->count);
    s->recent = colloq_malloc((size_t)(s->p.repeat_last_n ? s->p.repeat_last_n : 1) * sizeof *s->recent);
    if (!s->heap || !s->sorted || !s->w || !s->count || !s->recent) {
        colloq_sampler_free(s);
        return colloq_seterr(err, COLLOQ_ERR_NOMEM, "sampler: out of memory for %d tokens", n_vocab);
    }
    uint64_t seed = p->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&seed);
    *out = s;
    return COLLOQ_OK;
}

void colloq_sampler_free(colloq_sampler *s) {
    if (!s) return;
    colloq_free(s->heap);
    colloq_free(s->sorted);
    colloq_free(s->w);
    colloq_free(s->count);
    colloq_free(s->recent);
    colloq_free(s);
}

void colloq_sampler_accept(colloq_sampler *s, colloq_token t) {
    if (!s || s->p.repeat_last_n == 0 || t < 0 || t >= s->n_vocab) return;
    s->recent[s->recent_pos] = t;
    s->recent_pos = (s->recent_pos + 1) % s->p.repeat_last_n;
    if (s->n_recent < s->p.repeat_last_n) s->n_recent++;
}

/* ---- penalties ---- */

static void apply_penalties(colloq_sampler *s, float *logits) {
    const colloq_sampler_params *p = &s->p;
    if (s->n_recent == 0 ||
        (p->repeat_penalty == 1.0f && p->presence_penalty == 0.0f && p->frequency_penalty == 0.0f))
        return;
    for (int i = 0; i < s->n_recent; i++) s->count[s->recent[i]]++;
    for (int i = 0; i < s->n_recent; i++) {
        colloq_token t = s->recent[i];
        int c = s->count[t];
        if (c == 0) continue;            /* already penalised (duplicate in the window) */
        float l = logits[t];
        if (p->repeat_penalty != 1.0f) l = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
        l -= (float)c * p->frequency_penalty + p->presence_penalty;
        logits[t] = l;
        s->count[t] = 0;                 /* leaves count all zero again */
    }
}

/* ---- candidate ordering: a max-heap popped lazily, so only what the filters
 * look at is sorted (top-k = 40 of 32000 costs 40 pops). ---- */

static inline bool better(cand a, cand b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); }

static void sift_down(cand *h, int n, int i) {
    cand x = h[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && better(h[c + 1], h[c])) c++;
        if (!better(h[c], x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

typedef struct { cand *heap; int n_heap; cand *sorted; int n_sorted; } order;

/* Make sure the best `want` candidates are in sorted[]; returns how many are. */
static int order_ensure(order *o, int want) {
    while (o->n_sorted < want && o->n_heap > 0) {
        o->sorted[o->n_sorted++] = o->heap[0];
        o->heap[0] = o->heap[--o->n_heap];
        if (o->n_heap) sift_down(o->heap, o->n_heap, 0);
    }
    return o->n_sorted;
}

static colloq_token argmax(const float *logits, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

/* No filter set: draw from softmax(logit / T) over the whole vocabulary in id order,
 * without ordering candidates (one pass for the maximum, one computing each weight
 * once, a scan for the draw). */
static colloq_token draw_all(colloq_sampler *s, const float *logits) {
    int n = s->n_vocab, i = 0;
    float mx[8] = { -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY };
    for (; i + 8 <= n; i += 8)            /* independent lanes: no compare-to-compare chain */
        for (int l = 0; l < 8; l++) mx[l] = logits[i + l] > mx[l] ? logits[i + l] : mx[l];
    float max = -INFINITY;
    for (; i < n; i++)
        if (logits[i] > max) max = logits[i];
    for (int l = 0; l < 8; l++)
        if (mx[l] > max) max = mx[l];
    if (!(max > -INFINITY)) return argmax(logits, n);
    double inv_t = 1.0 / (double)s->p.temperature, sum = 0;
    for (i = 0; i < n; i++) {
        double w = logits[i] > -INFINITY ? exp(((double)logits[i] - max) * inv_t) : 0.0;
        s->w[i] = w;
        sum += w;
    }
    double u = rng_uniform(s->rng) * sum, acc = 0;
    colloq_token last = 0;
    for (i = 0; i < n; i++) {
        if (s->w[i] == 0.0) continue;
        acc += s->w[i];
        last = i;
        if (u < acc) return last;
    }
    return last;
}

colloq_token colloq_sampler_sample(colloq_sampler *s, float *logits) {
    const colloq_sampler_params *p = &s->p;
    int n = s->n_vocab;
    for (int i = 0; i < n; i++) {          /* NaN and +inf would poison the arithmetic */
        if (isnan(logits[i])) logits[i] = -INFINITY;
        else if (logits[i] == INFINITY) logits[i] = FLT_MAX;
    }
    apply_penalties(s, logits);
    if (p->temperature <= 0.0f) return argmax(logits, n);
    if ((p->top_k <= 0 || p->top_k >= n) && p->top_p >= 1.0f && p->min_p <= 0.0f)
        return draw_all(s, logits);

    order o = { s->heap, 0, s->sorted, 0 };
    for (int i = 0; i < n; i++)
        if (logits[i] > -INFINITY) o.heap[o.n_heap++] = (cand){ logits[i], i };
    if (o.n_heap == 0) return argmax(logits, n);
    for (int i = o.n_heap / 2 - 1; i >= 0; i--) sift_down(o.heap, o.n_heap, i);

    int total = o.n_heap;
    int k = p->top_k > 0 && p->top_k < total ? p->top_k : total;
    float max = o.heap[0].logit;

    /* Softmax normaliser (temperature 1) over the top-k set: only top-p needs it. */
    double z = 0;
    if (p->top_p < 1.0f) {
        if (k < total) {
            order_ensure(&o, k);
            for (int i = 0; i < k; i++) z += exp((double)o.sorted[i].logit - max);
        } else {
            for (int i = 0; i < o.n_heap; i++) z += exp((double)o.heap[i].logit - max);
        }
    }

    /* top-p: the smallest prefix whose probability reaches top_p (at least one). */
    int keep = k;
    if (p->top_p < 1.0f) {
        double cum = 0, target = (double)p->top_p * z;
        int m = 0;
        while (m < k) {
            if (order_ensure(&o, m + 1) < m + 1) break;
            cum += exp((double)o.sorted[m].logit - max);
            m++;
            if (cum >= target) break;
        }
        keep = m > 0 ? m : 1;
    }
    /* min-p: keep tokens whose probability is at least min_p times the best one's. */
    if (p->min_p > 0.0f) {
        double cut = max + log((double)p->min_p);
        int m = 1;
        while (m < keep) {
            if (order_ensure(&o, m + 1) < m + 1 || (double)o.sorted[m].logit < cut) break;
            m++;
        }
        keep = m;
    }
    /* Draw from softmax(logit / T) over the kept candidates: the sorted prefix, or
     * when nothing was cut, everything (sorted part + heap, order irrelevant). */
    const cand *parts[2] = { o.sorted, o.heap };
    int lens[2] = { keep, 0 };
    if (keep >= total) { lens[0] = o.n_sorted; lens[1] = o.n_heap; }
    else order_ensure(&o, keep);
    double inv_t = 1.0 / (double)p->temperature, sum = 0;
    int nw = 0;
    for (int j = 0; j < 2; j++)           /* each weight once, kept for the scan below */
        for (int i = 0; i < lens[j]; i++) {
            double w = exp(((double)parts[j][i].logit - max) * inv_t);
            s->w[nw++] = w;
            sum += w;
        }
    double u = rng_uniform(s->rng) * sum, acc = 0;
    colloq_token last = 0;
    nw = 0;
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < lens[j]; i++) {
            acc += s->w[nw++];
            last = parts[j][i].id;
            if (u < acc) return last;
        }
    return last;
}
