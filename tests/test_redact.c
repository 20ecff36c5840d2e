/*
 * test_redact.c - safety filters: every built-in detector (matches, near misses,
 * checksums), config parsing, block rules, custom patterns, and streams: for random
 * texts with personal data, chunked at every byte and at random, the streamed output
 * equals the one-shot output, never contains the raw data, and holds back no more than
 * the bound.  Also allocation failures and many threads sharing one rule set.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redact.h"
#include "redact_internal.h"
#include "util.h"

static int n_fail, n_check;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        n_check++;                                                         \
        if (!(cond)) {                                                     \
            n_fail++;                                                      \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
        }                                                                  \
    } while (0)

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static colloq_redact *builtin(void) {
    colloq_redact *r;
    colloq_err err;
    if (colloq_redact_builtin(&r, &err)) { fprintf(stderr, "builtin: %s\n", err.msg); exit(1); }
    return r;
}

static colloq_redact *parse(const char *cfg) {
    colloq_redact *r;
    colloq_err err;
    if (colloq_redact_parse(cfg, strlen(cfg), "test config", &r, &err)) {
        fprintf(stderr, "parse: %s\n", err.msg);
        exit(1);
    }
    return r;
}

/* One-shot output of text as a malloc'd string ("<BLOCKED>" when blocked). */
static char *oneshot(const colloq_redact *r, int dir, const char *text, colloq_redact_record *rec) {
    char *out;
    colloq_err err;
    int rc = colloq_redact_text(r, dir, text, strlen(text), &out, NULL, rec, &err);
    if (rc == COLLOQ_REDACT_BLOCKED) return colloq_strdup("<BLOCKED>");
    if (rc) { fprintf(stderr, "redact_text: %s\n", err.msg); exit(1); }
    return out;
}

static void expect(const colloq_redact *r, const char *in, const char *want) {
    char *got = oneshot(r, COLLOQ_REDACT_OUTPUT, in, NULL);
    CHECK(!strcmp(got, want), "in  \"%s\"\n  got  \"%s\"\n  want \"%s\"", in, got, want);
    colloq_free(got);
}

/* ------------------------------------------------------------------ detectors */

static void test_checksums(void) {
    CHECK(rd_luhn_ok("4111111111111111", 16), "luhn");
    CHECK(!rd_luhn_ok("4111111111111112", 16), "luhn");
    CHECK(rd_luhn_ok("6222021234567890128", 19), "luhn 19");
    CHECK(rd_luhn_ok("378282246310005", 15), "luhn amex");
    CHECK(!rd_luhn_ok("1234567890123456", 16), "luhn");
    CHECK(rd_cn_id_ok("11010519491231002X"), "id X");
    CHECK(rd_cn_id_ok("11010519491231002x"), "id x");
    CHECK(rd_cn_id_ok("440306199001011236"), "id");
    CHECK(rd_cn_id_ok("510107200002290010"), "id leap day 2000");
    CHECK(!rd_cn_id_ok("110105194912310021"), "id bad checksum");
    CHECK(!rd_cn_id_ok("000306199001011236"), "id bad region");
    char bad_date[] = "44030619900230123X";   /* 30 Feb; fix the checksum so only the date is wrong */
    static const int w[17] = { 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2 };
    int sum = 0;
    for (int k = 0; k < 17; k++) sum += (bad_date[k] - '0') * w[k];
    bad_date[17] = "10X98765432"[sum % 11];
    CHECK(!rd_cn_id_ok(bad_date), "id 30 Feb");
    char ok_date[] = "44030619900228123X";
    sum = 0;
    for (int k = 0; k < 17; k++) sum += (ok_date[k] - '0') * w[k];
    ok_date[17] = "10X98765432"[sum % 11];
    CHECK(rd_cn_id_ok(ok_date), "id 28 Feb");
}

static void test_detectors(void) {
    colloq_redact *r = builtin();
    /* mainland-China mobile */
    expect(r, "call 13812345678 now", "call [REDACTED:phone_cn] now");
    expect(r, "call +86 138 1234 5678.", "call [REDACTED:phone_cn].");
    expect(r, "+86-138-1234-5678", "[REDACTED:phone_cn]");
    expect(r, "8613812345678", "[REDACTED:phone_cn]");
    expect(r, "0086 13912345678", "[REDACTED:phone_cn]");
    expect(r, "电话：13812345678。谢谢", "电话：[REDACTED:phone_cn]。谢谢");
    expect(r, "手机19912345678和15000001111", "手机[REDACTED:phone_cn]和[REDACTED:phone_cn]");
    expect(r, "13812345678 13987654321", "[REDACTED:phone_cn] [REDACTED:phone_cn]");
    expect(r, "12812345678", "12812345678");            /* no 12x mobile prefix */
    expect(r, "138123456789", "138123456789");          /* 12 digits */
    expect(r, "1381234567", "1381234567");              /* 10 digits */
    expect(r, "138 12 345 678", "138 12 345 678");      /* not 3-4-4 */
    /* international */
    expect(r, "ring +1 415 555 2671 today", "ring [REDACTED:phone_intl] today");
    expect(r, "+44 (0)20 7946 0958", "[REDACTED:phone_intl]");
    expect(r, "+49-30-1234567,", "[REDACTED:phone_intl],");
    expect(r, "+33.1.23.45.67.89", "[REDACTED:phone_intl]");
    expect(r, "+1 (415) 555-2671", "[REDACTED:phone_intl]");
    expect(r, "5+3=8 and +12 and + 1234567", "5+3=8 and +12 and + 1234567");
    expect(r, "+1 415 555 2671 1234 5678", "[REDACTED:phone_intl] 5678");   /* at most 15 digits */
    /* bank cards */
    expect(r, "card 4111 1111 1111 1111 ok", "card [REDACTED:bank_card] ok");
    expect(r, "4111-1111-1111-1111", "[REDACTED:bank_card]");
    expect(r, "卡号4111111111111111。", "卡号[REDACTED:bank_card]。");
    expect(r, "6222 0212 3456 7890 128", "[REDACTED:bank_card]");
    expect(r, "amex 3782 822463 10005", "amex [REDACTED:bank_card]");
    expect(r, "4111111111111112", "4111111111111112");                 /* Luhn fails */
    expect(r, "1234 5678 9012 3456", "1234 5678 9012 3456");           /* Luhn fails */
    expect(r, "41111111111111110", "41111111111111110");               /* 17 digits, Luhn fails */
    expect(r, "4111 11 11 1111 1111", "4111 11 11 1111 1111");         /* 2-digit groups */
    expect(r, "12345678901234567890123", "12345678901234567890123");   /* too long */
    expect(r, "4111111111111111 5500000000000004", "[REDACTED:bank_card] [REDACTED:bank_card]");
    expect(r, "4111 1111 1111 1111 2024", "[REDACTED:bank_card] 2024");
    /* PRC resident ID */
    expect(r, "身份证号11010519491231002X。", "身份证号[REDACTED:cn_id]。");
    expect(r, "ID 440306199001011236 ok", "ID [REDACTED:cn_id] ok");
    expect(r, "440306 19900101 1236", "[REDACTED:cn_id]");
    expect(r, "ID 440306199001011238 ok", "ID 440306199001011238 ok"); /* checksum */
    expect(r, "4403061990010112361", "4403061990010112361");           /* 19 digits */
    expect(r, "ID 440306199013011236 ok", "ID 440306199013011236 ok"); /* month 13 */
    /* e-mail */
    expect(r, "mail john.doe@example.com now", "mail [REDACTED:email] now");
    expect(r, "<a+b_c@mail.example.co.uk>", "<[REDACTED:email]>");
    expect(r, "联系zhang.san@qq.com。", "联系[REDACTED:email]。");
    expect(r, "x@example.com.", "[REDACTED:email].");
    expect(r, "john@localhost and @example.com and a@b.c1", "john@localhost and @example.com and a@b.c1");
    /* IPv4 */
    expect(r, "host 192.168.1.1 up", "host [REDACTED:ipv4] up");
    expect(r, "dns 8.8.8.8.", "dns [REDACTED:ipv4].");
    expect(r, "10.0.0.255:8080", "[REDACTED:ipv4]:8080");
    expect(r, "256.1.1.1 1.2.3 1.2.3.4.5 v1.2.3.4.5", "256.1.1.1 1.2.3 1.2.3.4.5 v1.2.3.4.5");
    /* ordinary text and numbers */
    expect(r, "In 2024 there were 365 days; pi is 3.14159; 1234567890123456 is a number.",
           "In 2024 there were 365 days; pi is 3.14159; 1234567890123456 is a number.");
    expect(r, "", "");
    colloq_redact_free(r);
}

/* ------------------------------------------------------------------ config */

static void expect_bad(const char *cfg, const char *needle) {
    colloq_redact *r = NULL;
    colloq_err err = { "" };
    int rc = colloq_redact_parse(cfg, strlen(cfg), "cfg", &r, &err);
    CHECK(rc == COLLOQ_ERR_FORMAT && !r && strstr(err.msg, needle), "config %s: rc %d msg \"%s\"", cfg, rc, err.msg);
}

static void test_config(void) {
    expect_bad("", "cfg:");
    expect_bad("[]", "top level");
    expect_bad("{\"detectors\": []}", "1..64");
    expect_bad("{\"detectors\": [{\"type\": \"phone\"}]}", "unknown type");
    expect_bad("{\"detectors\": [{\"type\": \"email\", \"action\": \"drop\"}]}", "action");
    expect_bad("{\"detectors\": [{\"type\": \"email\"}, {\"type\": \"email\"}]}", "used twice");
    expect_bad("{\"detectors\": [{\"type\": \"regex\", \"name\": \"x\", \"pattern\": \"a(\"}]}", "bad pattern");
    expect_bad("{\"detectors\": [{\"type\": \"regex\", \"name\": \"x\"}]}", "no \"pattern\"");
    expect_bad("{\"detectors\": [{\"type\": \"regex\", \"pattern\": \"x\"}]}", "needs a \"name\"");
    expect_bad("{\"detectors\": [{\"type\": \"email\", \"colour\": \"red\"}]}", "unknown key");
    expect_bad("{\"detectors\": [{\"type\": \"email\", \"name\": \"a b\"}]}", "name");
    expect_bad("{\"detectors\": [{\"type\": \"email\", \"action\": \"block\", \"replacement\": \"x\"}]}",
               "no replacement");
    expect_bad("{\"detectors\": [{\"type\": \"regex\", \"name\": \"x\", \"pattern\": \"a\", \"max_len\": 0}]}",
               "max_len");
    expect_bad("{\"detectors\": [{\"type\": \"email\", \"apply\": \"sometimes\"}]}", "apply");
    expect_bad("{\"detectors\": [{\"type\": \"email\"}], \"extra\": 1}", "unknown key");

    colloq_err err;
    colloq_redact *r;
    CHECK(colloq_redact_load("/nonexistent/safety.json", &r, &err) == COLLOQ_ERR_IO && !r, "missing file");

    r = parse("{\"comment\": \"test\", \"detectors\": ["
              "{\"type\": \"phone_cn\", \"name\": \"phone\", \"replacement\": \"[PHONE]\"},"
              "{\"type\": \"bank_card\", \"action\": \"block\"},"
              "{\"type\": \"email\", \"apply\": \"input\"},"
              "{\"type\": \"regex\", \"name\": \"employee\", \"pattern\": \"EMP-\\\\d{6}\", \"max_len\": 16},"
              "{\"type\": \"regex\", \"name\": \"customer\", \"pattern\": \"客户编号\\\\d{4}\", \"apply\": \"output\"}]}");
    CHECK(colloq_redact_n_rules(r) == 5, "n rules");
    CHECK(!strcmp(colloq_redact_rule_name(r, 0), "phone"), "name");
    CHECK(colloq_redact_rule_action(r, 1) == COLLOQ_REDACT_ACT_BLOCK, "block");
    CHECK(colloq_redact_max_hold(r) >= 48, "max hold %zu", colloq_redact_max_hold(r));

    colloq_redact_record rec;
    char *o = oneshot(r, COLLOQ_REDACT_OUTPUT, "a 13812345678, EMP-123456 and 客户编号1234; x@y.com", &rec);
    CHECK(!strcmp(o, "a [PHONE], [REDACTED:employee] and [REDACTED:customer]; x@y.com"), "got %s", o);
    CHECK(rec.count[0] == 1 && rec.count[3] == 1 && rec.count[4] == 1 && rec.count[2] == 0 && rec.blocked_by == -1,
          "record");
    colloq_free(o);
    o = oneshot(r, COLLOQ_REDACT_INPUT, "a 13812345678, EMP-123456 and 客户编号1234; x@y.com", &rec);
    CHECK(!strcmp(o, "a [PHONE], [REDACTED:employee] and 客户编号1234; [REDACTED:email]"), "got %s", o);
    colloq_free(o);

    /* Block: the whole text is refused and the record says which rule. */
    char *out = (char *)"untouched";
    int rc = colloq_redact_text(r, COLLOQ_REDACT_INPUT, "pay 4111 1111 1111 1111", 23, &out, NULL, &rec, &err);
    CHECK(rc == COLLOQ_REDACT_BLOCKED && out == NULL && rec.blocked_by == 1 && rec.count[1] == 1, "block rc %d", rc);

    /* The audit record names detectors and counts, never the text. */
    o = oneshot(r, COLLOQ_REDACT_OUTPUT, "13812345678 13912345678 EMP-000001", &rec);
    json_t *arr = json_array();
    CHECK(colloq_redact_record_to_json(r, &rec, "output", arr) == 0 && json_array_size(arr) == 2, "json");
    char *js = json_dumps(arr, JSON_COMPACT);
    CHECK(!strcmp(js, "[{\"stage\":\"output\",\"detector\":\"phone\",\"action\":\"redact\",\"count\":2},"
                      "{\"stage\":\"output\",\"detector\":\"employee\",\"action\":\"redact\",\"count\":1}]"),
          "json %s", js);
    CHECK(!strstr(js, "1381234"), "raw digits in record");
    free(js);
    json_decref(arr);
    colloq_free(o);
    CHECK(colloq_redact_text(r, 7, "x", 1, &out, NULL, NULL, &err) == COLLOQ_ERR_ARG, "bad direction");
    colloq_redact_free(r);

    /* Same start, same length: the block rule wins over a redact rule. */
    r = parse("{\"detectors\": [{\"type\": \"regex\", \"name\": \"digits\", \"pattern\": \"\\\\d{16}\"},"
              "{\"type\": \"bank_card\", \"action\": \"block\"}]}");
    o = oneshot(r, COLLOQ_REDACT_OUTPUT, "x 4111111111111111 y", &rec);
    CHECK(!strcmp(o, "<BLOCKED>") && rec.blocked_by == 1, "tie %s", o);
    colloq_free(o);
    colloq_redact_free(r);
}

/* ------------------------------------------------------------------ streams */

typedef struct { const char *text, *repl; } piece;

static const piece pii[] = {
    { "13812345678", "[REDACTED:phone_cn]" },
    { "+86 139 1234 5678", "[REDACTED:phone_cn]" },
    { "158-0000-1111", "[REDACTED:phone_cn]" },
    { "+1 415 555 2671", "[REDACTED:phone_intl]" },
    { "+44 (0)20 7946 0958", "[REDACTED:phone_intl]" },
    { "4111 1111 1111 1111", "[REDACTED:bank_card]" },
    { "6222021234567890128", "[REDACTED:bank_card]" },
    { "3782-822463-10005", "[REDACTED:bank_card]" },
    { "11010519491231002X", "[REDACTED:cn_id]" },
    { "440306199001011236", "[REDACTED:cn_id]" },
    { "john.doe@example.com", "[REDACTED:email]" },
    { "客服kefu@shop.example.cn", "客服[REDACTED:email]" },
    { "192.168.100.200", "[REDACTED:ipv4]" },
    { "EMP-004217", "[REDACTED:employee]" },
    { "客户编号8765", "[REDACTED:customer]" },
};
static const char *const plain[] = {
    "Hello", "世界", "the year 2024", "3.14159", "1234567890123456", "12812345678", "v1.2.3",
    "version 1.2.3.4.5", "a@b", "5+3=8", "第12章", "😀 emoji", "№ 42", "price: 99.50", "EMP-12",
    "tel", "4111111111111112", "440306199001011238", "x", "",
};
static const char *const seps[] = { ", ", "，", "。", " and ", "\n", "：", "; ", " 的 " };

static const char *stream_cfg =
    "{\"detectors\": [{\"type\": \"phone_cn\"}, {\"type\": \"phone_intl\"}, {\"type\": \"bank_card\"},"
    "{\"type\": \"cn_id\"}, {\"type\": \"email\"}, {\"type\": \"ipv4\"},"
    "{\"type\": \"regex\", \"name\": \"employee\", \"pattern\": \"EMP-\\\\d{6}\", \"max_len\": 32},"
    "{\"type\": \"regex\", \"name\": \"customer\", \"pattern\": \"客户编号\\\\d{4}\", \"max_len\": 32}]}";

/* Feed text in the chunks given by cut points (sorted, inside 1..len-1); return the output. */
static char *streamed(const colloq_redact *r, const char *text, const size_t *cuts, int n_cuts, size_t *max_held,
                      int *rc_out) {
    colloq_redact_stream *s;
    colloq_err err;
    if (colloq_redact_stream_new(r, COLLOQ_REDACT_OUTPUT, &s, &err)) { fprintf(stderr, "%s\n", err.msg); exit(1); }
    size_t len = strlen(text), at = 0, total = 0;
    char *acc = colloq_malloc(4 * len + 4096);
    int rc = 0;
    for (int k = 0; k <= n_cuts && rc == 0; k++) {
        size_t to = k < n_cuts ? cuts[k] : len;
        const char *o;
        size_t ol;
        rc = colloq_redact_stream_feed(s, text + at, to - at, &o, &ol, &err);
        if (rc < 0) { fprintf(stderr, "feed: %s\n", err.msg); exit(1); }
        memcpy(acc + total, o, ol);
        total += ol;
        at = to;
        if (max_held && colloq_redact_stream_held(s) > *max_held) *max_held = colloq_redact_stream_held(s);
    }
    if (rc == 0) {
        const char *o;
        size_t ol;
        rc = colloq_redact_stream_finish(s, &o, &ol, &err);
        if (rc < 0) { fprintf(stderr, "finish: %s\n", err.msg); exit(1); }
        memcpy(acc + total, o, ol);
        total += ol;
        CHECK(colloq_redact_stream_held(s) == 0, "held after finish");
    }
    acc[total] = 0;
    if (rc_out) *rc_out = rc;
    colloq_redact_stream_free(s);
    return acc;
}

/* The digits of s, to find raw data however it is spaced or split. */
static void skeleton(const char *s, char *out) {
    for (; *s; s++)
        if (*s >= '0' && *s <= '9') *out++ = *s;
    *out = 0;
}

static void test_stream_random(void) {
    colloq_redact *r = parse(stream_cfg);
    int n_texts = 60;
    size_t hold_bound = colloq_redact_max_hold(r) + 3;
    for (int t = 0; t < n_texts; t++) {
        char text[2048] = "", want[4096] = "";
        const char *used[8];
        int n_used = 0, n = 2 + (int)rnd(5);
        for (int k = 0; k < n; k++) {
            if (k) { const char *sp = seps[rnd(8)]; strcat(text, sp); strcat(want, sp); }
            if (rnd(2)) {
                const piece *p = &pii[rnd(sizeof pii / sizeof pii[0])];
                strcat(text, p->text);
                strcat(want, p->repl);
                used[n_used++] = p->text;
            } else {
                const char *p = plain[rnd(sizeof plain / sizeof plain[0])];
                strcat(text, p);
                strcat(want, p);
            }
        }
        char *one = oneshot(r, COLLOQ_REDACT_OUTPUT, text, NULL);
        CHECK(!strcmp(one, want), "one-shot\n  text \"%s\"\n  got  \"%s\"\n  want \"%s\"", text, one, want);
        size_t len = strlen(text);
        /* Two chunks, cut at every byte. */
        for (size_t cut = 1; cut < len; cut++) {
            char *got = streamed(r, text, &cut, 1, NULL, NULL);
            CHECK(!strcmp(got, one), "cut at %zu of \"%s\": \"%s\"", cut, text, got);
            colloq_free(got);
        }
        /* One byte at a time: every position is a cut at once. */
        size_t cuts[2048], held = 0;
        for (size_t k = 1; k < len; k++) cuts[k - 1] = k;
        char *got = streamed(r, text, cuts, (int)len - 1, &held, NULL);
        CHECK(!strcmp(got, one), "bytewise \"%s\": \"%s\"", text, got);
        CHECK(held <= hold_bound, "held %zu > %zu", held, hold_bound);
        char sk_out[4096], sk_in[256];
        skeleton(got, sk_out);
        for (int k = 0; k < n_used; k++) {
            skeleton(used[k], sk_in);
            CHECK(strlen(sk_in) >= 4 ? !strstr(sk_out, sk_in) : !strstr(got, used[k]), "raw \"%s\" reached the output \"%s\"", used[k], got);
        }
        colloq_free(got);
        /* Random chunkings. */
        for (int rep = 0; rep < 20; rep++) {
            int nc = 0;
            for (size_t k = 1; k < len; k++)
                if (rnd(4) == 0) cuts[nc++] = k;
            got = streamed(r, text, cuts, nc, NULL, NULL);
            CHECK(!strcmp(got, one), "random chunks \"%s\": \"%s\"", text, got);
            colloq_free(got);
        }
        colloq_free(one);
    }
    colloq_redact_free(r);
}

/* Fuzz: random strings over the characters the detectors care about, adjacent in any
 * order.  Whatever the one-shot answer is, every chunking must reproduce it. */
static void test_stream_fuzz(void) {
    colloq_redact *r = parse(stream_cfg);
    static const char *const alpha[] = { "0", "1", "3", "4", "6", "8", "9", "1", "5", " ", "-", "+", ".", "@", "a",
                                         "X", "(", ")", "c", "o", "m", "E", "M", "P", "数", "客户编号", "\n",
                                         "13812345678", "4111111111111111", "86", "192.168.", "@x.cn", "EMP-" };
    int n_alpha = (int)(sizeof alpha / sizeof alpha[0]), n_changed = 0;
    for (int t = 0; t < 400; t++) {
        char text[512] = "";
        int n = (int)rnd(30);
        for (int k = 0; k < n; k++) strcat(text, alpha[rnd((uint32_t)n_alpha)]);
        size_t len = strlen(text), cuts[512];
        char *one = oneshot(r, COLLOQ_REDACT_OUTPUT, text, NULL);
        n_changed += strcmp(one, text) != 0;
        for (size_t k = 1; k < len; k++) cuts[k - 1] = k;
        char *got = streamed(r, text, cuts, len ? (int)len - 1 : 0, NULL, NULL);
        CHECK(!strcmp(got, one), "fuzz bytewise \"%s\": \"%s\" vs \"%s\"", text, got, one);
        colloq_free(got);
        for (size_t cut = 1; cut < len; cut++) {
            got = streamed(r, text, &cut, 1, NULL, NULL);
            CHECK(!strcmp(got, one), "fuzz cut %zu \"%s\": \"%s\" vs \"%s\"", cut, text, got, one);
            colloq_free(got);
        }
        colloq_free(one);
    }
    CHECK(n_changed > 100, "fuzz texts with a match: %d of 400", n_changed);
    colloq_redact_free(r);
}

/* Patterns that look behind or anchor at the start behave the same in streams, after
 * the stream has dropped decided text. */
static void test_stream_regex_context(void) {
    colloq_redact *r = parse("{\"detectors\": ["
                             "{\"type\": \"regex\", \"name\": \"after\", \"pattern\": \"(?<=工号：)\\\\d{6}\"},"
                             "{\"type\": \"regex\", \"name\": \"start\", \"pattern\": \"^SECRET\"},"
                             "{\"type\": \"regex\", \"name\": \"word\", \"pattern\": \"\\\\bkey\\\\w*\", \"max_len\": 20}]}");
    const char *texts[] = {
        "SECRET plans, 工号：123456 and 工号 654321; keys keyboard monkey",
        "x SECRET 工号：1234567 工号：12345 key",
        "0123456789012345678901234567890123456789012345678901234567890123456789 SECRET 工号：000001 key",
    };
    const char *want[] = {
        "[REDACTED:start] plans, 工号：[REDACTED:after] and 工号 654321; [REDACTED:word] [REDACTED:word] monkey",
        "x SECRET 工号：[REDACTED:after]7 工号：12345 [REDACTED:word]",
        "0123456789012345678901234567890123456789012345678901234567890123456789 SECRET 工号：[REDACTED:after] "
        "[REDACTED:word]",
    };
    for (int t = 0; t < 3; t++) {
        char *one = oneshot(r, COLLOQ_REDACT_OUTPUT, texts[t], NULL);
        CHECK(!strcmp(one, want[t]), "regex one-shot \"%s\"", one);
        size_t len = strlen(texts[t]), cuts[512];
        for (size_t k = 1; k < len; k++) cuts[k - 1] = k;
        char *got = streamed(r, texts[t], cuts, (int)len - 1, NULL, NULL);
        CHECK(!strcmp(got, one), "regex bytewise \"%s\"", got);
        colloq_free(got);
        for (size_t cut = 1; cut < len; cut++) {
            got = streamed(r, texts[t], &cut, 1, NULL, NULL);
            CHECK(!strcmp(got, one), "regex cut %zu \"%s\"", cut, got);
            colloq_free(got);
        }
        colloq_free(one);
    }
    colloq_redact_free(r);
}

/* Feed and return what came out of this one call. */
static void feed(colloq_redact_stream *s, const char *text, char *out) {
    const char *o;
    size_t ol;
    colloq_err err;
    int rc = colloq_redact_stream_feed(s, text, strlen(text), &o, &ol, &err);
    CHECK(rc == 0, "feed rc %d", rc);
    memcpy(out, o, ol);
    out[ol] = 0;
}

static void test_stream_latency(void) {
    colloq_redact *r = parse(stream_cfg);
    colloq_redact_stream *s;
    colloq_err err;
    char out[1024];
    CHECK(colloq_redact_stream_new(r, COLLOQ_REDACT_OUTPUT, &s, &err) == 0, "new");
    feed(s, "Hello world. ", out);
    CHECK(!strcmp(out, "Hello world. ") && colloq_redact_stream_held(s) == 0, "plain text held: \"%s\"", out);
    feed(s, "你好，世界", out);
    CHECK(!strcmp(out, "你好，世界") && colloq_redact_stream_held(s) == 0, "CJK held: \"%s\"", out);
    feed(s, "The answer is 42", out);
    CHECK(!strcmp(out, "The answer is ") && colloq_redact_stream_held(s) == 2, "number tail: \"%s\"", out);
    feed(s, "。Call +86 138", out);
    CHECK(!strcmp(out, "42。Call ") && colloq_redact_stream_held(s) == 7, "phone tail: \"%s\"", out);
    feed(s, " 1234 5678", out);
    CHECK(!strcmp(out, "") && colloq_redact_stream_held(s) == 17, "phone complete, look-ahead: \"%s\"", out);
    feed(s, " please", out);
    CHECK(!strcmp(out, "[REDACTED:phone_cn] ") && colloq_redact_stream_held(s) == 6, "after phone: \"%s\"", out);
    feed(s, "\xe4\xbd", out);            /* first two bytes of 你: never emit half a character */
    CHECK(!strcmp(out, "please") && colloq_redact_stream_held(s) == 2, "split UTF-8: \"%s\"", out);
    feed(s, "\xa0!", out);
    CHECK(!strcmp(out, "你!"), "joined UTF-8: \"%s\"", out);
    colloq_redact_stream_free(s);

    /* Long ordinary text fed in small chunks: never more than the bound held. */
    CHECK(colloq_redact_stream_new(r, COLLOQ_REDACT_OUTPUT, &s, &err) == 0, "new");
    size_t bound = colloq_redact_max_hold(r) + 3, max_held = 0, in_total = 0, out_total = 0;
    const char *words[] = { "alpha ", "beta", ", ", "2024 ", "数据", "x.y.z ", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
    for (int k = 0; k < 3000; k++) {
        const char *w = words[rnd(7)];
        feed(s, w, out);
        in_total += strlen(w);
        out_total += strlen(out);
        if (colloq_redact_stream_held(s) > max_held) max_held = colloq_redact_stream_held(s);
    }
    CHECK(max_held <= bound && in_total - out_total == colloq_redact_stream_held(s), "held %zu bound %zu",
          max_held, bound);
    colloq_redact_stream_free(s);
    colloq_redact_free(r);
}

static void test_stream_block(void) {
    colloq_redact *r = parse("{\"detectors\": [{\"type\": \"phone_cn\"}, {\"type\": \"bank_card\", \"action\": \"block\"}]}");
    const char *text = "call 13812345678 or pay with 4111 1111 1111 1111 now, bye";
    size_t len = strlen(text);
    size_t cuts[256];
    for (size_t k = 1; k < len; k++) cuts[k - 1] = k;
    int rc;
    char *got = streamed(r, text, cuts, (int)len - 1, NULL, &rc);
    CHECK(rc == COLLOQ_REDACT_BLOCKED, "block rc %d", rc);
    CHECK(!strcmp(got, "call [REDACTED:phone_cn] or pay with "), "before block: \"%s\"", got);
    colloq_free(got);
    for (size_t cut = 1; cut < len; cut++) {
        got = streamed(r, text, &cut, 1, NULL, &rc);
        CHECK(rc == COLLOQ_REDACT_BLOCKED && !strcmp(got, "call [REDACTED:phone_cn] or pay with "), "cut %zu: \"%s\"",
              cut, got);
        colloq_free(got);
    }
    colloq_redact_stream *s;
    colloq_err err;
    const char *o;
    size_t ol;
    colloq_redact_stream_new(r, COLLOQ_REDACT_OUTPUT, &s, &err);
    CHECK(colloq_redact_stream_feed(s, text, len, &o, &ol, &err) == COLLOQ_REDACT_BLOCKED, "blocked");
    const colloq_redact_record *rec = colloq_redact_stream_record(s);
    CHECK(rec->blocked_by == 1 && rec->count[0] == 1 && rec->count[1] == 1, "stream record");
    CHECK(colloq_redact_stream_feed(s, "more", 4, &o, &ol, &err) == COLLOQ_REDACT_BLOCKED && ol == 0, "after block");
    CHECK(colloq_redact_stream_finish(s, &o, &ol, &err) == COLLOQ_REDACT_BLOCKED && ol == 0, "finish after block");
    colloq_redact_stream_free(s);
    colloq_redact_free(r);
}

/* ------------------------------------------------------------------ robustness */

/* A large text with many matches: the one-shot filter stays linear. */
static void test_large(void) {
    colloq_redact *r = parse(stream_cfg);
    const char *unit = "用户 a.b@example.com 电话 13812345678，卡 4111 1111 1111 1111，普通数字 2024 和 3.14。 ";
    size_t ul = strlen(unit), reps = 8000;
    char *text = colloq_malloc(ul * reps + 1);
    for (size_t k = 0; k < reps; k++) memcpy(text + k * ul, unit, ul);
    text[ul * reps] = 0;
    double t0 = colloq_now();
    colloq_redact_record rec;
    char *out = oneshot(r, COLLOQ_REDACT_INPUT, text, &rec);
    double dt = colloq_now() - t0;
    CHECK(rec.count[0] == (int)reps && rec.count[2] == (int)reps && rec.count[4] == (int)reps, "large counts %d %d %d",
          rec.count[0], rec.count[2], rec.count[4]);
    CHECK(!strstr(out, "13812345678") && !strstr(out, "@example.com"), "large: raw data left");
    CHECK(dt < 10.0, "one-shot of %zu bytes took %.2f s", ul * reps, dt);
    printf("one-shot: %zu bytes, %zu matches in %.3f s\n", ul * reps, 3 * reps, dt);
    colloq_free(out);
    colloq_free(text);
    colloq_redact_free(r);
}

static void test_alloc_failures(void) {
    colloq_redact *r = parse(stream_cfg);
    const char *text = "call 13812345678, mail a@b.com, 客户编号1234 and much more text to grow buffers";
    int ok = 0;
    for (long n = 0; n < 40; n++) {
        colloq_err err;
        char *o = NULL;
        colloq_test_fail_alloc_after(n);
        int rc = colloq_redact_text(r, COLLOQ_REDACT_OUTPUT, text, strlen(text), &o, NULL, NULL, &err);
        colloq_redact_stream *s = NULL;
        int rc2 = colloq_redact_stream_new(r, COLLOQ_REDACT_OUTPUT, &s, &err);
        size_t len = strlen(text);
        for (size_t k = 0; rc2 == 0 && k < len; k += 3) {
            const char *so;
            size_t sl;
            rc2 = colloq_redact_stream_feed(s, text + k, len - k < 3 ? len - k : 3, &so, &sl, &err);
        }
        colloq_test_fail_alloc_after(-1);
        CHECK(rc == 0 || rc == COLLOQ_ERR_NOMEM, "alloc fail %ld: rc %d", n, rc);
        CHECK(rc2 == 0 || rc2 == COLLOQ_ERR_NOMEM, "alloc fail %ld: stream rc %d", n, rc2);
        if (rc == 0 && rc2 == 0) ok++;
        colloq_free(o);
        colloq_redact_stream_free(s);
    }
    CHECK(ok > 0, "never succeeded");
    for (long n = 0; n < 30; n++) {
        colloq_redact *r2 = NULL;
        colloq_err err;
        colloq_test_fail_alloc_after(n);
        int rc = colloq_redact_parse(stream_cfg, strlen(stream_cfg), "cfg", &r2, &err);
        colloq_test_fail_alloc_after(-1);
        CHECK((rc == 0 && r2) || (rc == COLLOQ_ERR_NOMEM && !r2), "parse alloc fail %ld: rc %d", n, rc);
        colloq_redact_free(r2);
    }
    colloq_redact_free(r);
}

typedef struct { const colloq_redact *r; int bad; } thread_arg;

static void *thread_main(void *p) {
    thread_arg *a = p;
    const char *text = "客户 13812345678 的卡 4111 1111 1111 1111，邮箱 a.b@example.org，工号 EMP-000042。";
    char *one;
    colloq_err err;
    if (colloq_redact_text(a->r, COLLOQ_REDACT_OUTPUT, text, strlen(text), &one, NULL, NULL, &err)) { a->bad++; return NULL; }
    for (int it = 0; it < 200; it++) {
        colloq_redact_stream *s;
        colloq_redact_stream_new(a->r, COLLOQ_REDACT_OUTPUT, &s, &err);
        char acc[512];
        size_t total = 0;
        for (size_t k = 0; text[k]; k++) {
            const char *o;
            size_t ol;
            colloq_redact_stream_feed(s, text + k, 1, &o, &ol, &err);
            memcpy(acc + total, o, ol);
            total += ol;
        }
        const char *o;
        size_t ol;
        colloq_redact_stream_finish(s, &o, &ol, &err);
        memcpy(acc + total, o, ol);
        acc[total + ol] = 0;
        if (strcmp(acc, one)) a->bad++;
        colloq_redact_stream_free(s);
    }
    colloq_free(one);
    return NULL;
}

static void test_threads(void) {
    colloq_redact *r = parse(stream_cfg);
    pthread_t th[4];
    thread_arg a[4];
    for (int k = 0; k < 4; k++) {
        a[k] = (thread_arg){ r, 0 };
        pthread_create(&th[k], NULL, thread_main, &a[k]);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(th[k], NULL);
        CHECK(a[k].bad == 0, "thread %d: %d mismatches", k, a[k].bad);
    }
    colloq_redact_free(r);
}

/* `test_redact filter CONFIG [input|output]`: the one-shot filter of stdin, for the server
 * tests to compare the server's answers with. */
static int filter_main(const char *cfg, const char *dir) {
    colloq_redact *r;
    colloq_err err;
    if (colloq_redact_load(cfg, &r, &err)) { fprintf(stderr, "%s\n", err.msg); return 2; }
    size_t cap = 1 << 16, len = 0, got;
    char *in = colloq_malloc(cap);
    while (in && (got = fread(in + len, 1, cap - len, stdin)) > 0) {
        len += got;
        if (len == cap) in = colloq_realloc(in, cap *= 2);
    }
    if (!in) return 2;
    char *out;
    size_t out_len;
    int rc = colloq_redact_text(r, dir && !strcmp(dir, "input") ? COLLOQ_REDACT_INPUT : COLLOQ_REDACT_OUTPUT, in, len,
                                &out, &out_len, NULL, &err);
    if (rc == COLLOQ_REDACT_BLOCKED) fputs("<BLOCKED>", stdout);
    else if (rc == 0) fwrite(out, 1, out_len, stdout);
    else fprintf(stderr, "%s\n", err.msg);
    colloq_free(out);
    colloq_free(in);
    colloq_redact_free(r);
    return rc < 0 ? 2 : 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "filter")) return filter_main(argv[2], argc > 3 ? argv[3] : NULL);
    test_checksums();
    test_detectors();
    test_config();
    test_stream_latency();
    test_stream_block();
    test_stream_random();
    test_stream_fuzz();
    test_stream_regex_context();
    test_large();
    test_alloc_failures();
    test_threads();
    printf("test_redact: %d checks, %d failed\n", n_check, n_fail);
    return n_fail ? 1 : 0;
}
