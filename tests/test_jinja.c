/*
 * test_jinja - unit and robustness tests of the chat-template engine.
 *
 *   test_jinja unit            table-driven semantics, error messages with line numbers,
 *                              limits, the value API, allocation failures
 *   test_jinja fuzz DIR [N]    random mutations of the templates in DIR must parse or fail
 *                              cleanly and render or fail cleanly (run it under ASan);
 *                              exits 77 when DIR is absent
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"
#include "util.h"

static int failures = 0;

#define CHECK(cond, ...) do { \
    if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
                   fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* Render src with a JSON context; returns the status, output in *out (caller frees). */
static int render(const char *src, const char *ctx_json, const jinja_render_opts *o, char **out,
                  colloq_err *err) {
    *out = NULL;
    jinja_template *t = jinja_parse(src, strlen(src), err);
    if (!t) return -100;
    jinja_value *ctx = jinja_value_from_json_text(ctx_json ? ctx_json : "{}", strlen(ctx_json ? ctx_json : "{}"), err);
    if (!ctx) { jinja_template_free(t); return -200; }
    size_t n = 0;
    int rc = jinja_render_ex(t, ctx, o, out, &n, err);
    if (rc == 0 && strlen(*out) != n) rc = -300;
    jinja_value_free(ctx);
    jinja_template_free(t);
    return rc;
}

typedef struct { const char *src, *ctx, *want; } ok_case;

/* Expected outputs were produced by Python's jinja2 configured as transformers does. */
static const ok_case ok_cases[] = {
    /* whitespace control, trim_blocks and lstrip_blocks */
    { "  {% if true %}\n  x\n  {% endif %}\nend", NULL, "  x\nend" },
    { "a  {%- if true -%}  b  {%- endif -%}  c", NULL, "abc" },
    { "x {%+ if true %}y{% endif %}", NULL, "x y" },
    { "  {%+ if true %}y{% endif %}", NULL, "  y" },
    { "{% if true +%}\nx{% endif %}", NULL, "\nx" },
    { "a\n  {# c #}\nb", NULL, "a\nb" },
    { "a {#- c -#} b", NULL, "ab" },
    { "  {{ 'x' }}\n  {{- 'y' }}", NULL, "  xy" },
    { "abc\n\n", NULL, "abc\n" },
    { "line\r\n{% if true %}\r\nx\r\n{% endif %}\r\n", NULL, "line\nx\n" },
    { "{% for i in [1,2] %}\n    {{ i }}\n{% endfor %}", NULL, "    1\n    2\n" },
    { "{% raw %}{{ x }}{% if %}{% endraw %}", NULL, "{{ x }}{% if %}" },
    /* literals and printing like Python */
    { "{{ 1.0 }} {{ [1,'a'] }} {{ {'a':1} }} {{ True }} {{ none }} {{ (1,) }}", NULL,
      "1.0 [1, 'a'] {'a': 1} True None (1,)" },
    { "{{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 0.1+0.2 }} {{ -0.0 }} {{ 1e300*1e300 }}", NULL,
      "1e+16 1000000000000000.0 0.0001 1e-05 0.30000000000000004 -0.0 inf" },
    { "{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 10 / 4 }} {{ 2 ** 3 ** 2 }} {{ 'ab' * 2 }} {{ 1_000 }} {{ 0x1f }}",
      NULL, "3 -4 2 2.5 64 abab 1000 31" },
    { "{{ \"it's\" }} {{ ['it\\'s', 'a\"b', '\\n\\x00\\u200b\\xa0é😀'] }}", NULL,
      "it's [\"it's\", 'a\"b', '\\n\\x00\\u200b\\xa0é😀']" },
    { "{{ 'a' 'b' }}|{{ 'tab\\tq\\u00e9\\101' }}|{{ 'a\\qb' }}", NULL, "ab|tab\tqéA|a\\qb" },
    /* access, slices, negative indices */
    { "{{ m.role }}{{ m['content'] }}{{ xs[1:] }}{{ xs[::-1] }}{{ xs[-1] }}{{ 'héllo'[1] }}{{ 'héllo'[::-2] }}",
      "{\"m\":{\"role\":\"r\",\"content\":\"c\"},\"xs\":[1,2,3]}", "rc[2, 3][3, 2, 1]3éolh" },
    { "{{ d.items is defined }} {{ d['keys'] is defined }} {{ none.x is defined }} {{ [1][5] is defined }}",
      "{\"d\":{}}", "True True False False" },
    /* undefined values behave like jinja2's default Undefined */
    { "[{{ x }}|{{ x|length }}|{{ x|list }}|{{ x ~ 'a' }}|{{ x is defined }}|{{ x|default('d') }}|{{ [x] }}]",
      NULL, "[|0|[]|a|False|d|[Undefined]]" },
    { "{% for i in x %}a{% else %}empty{% endfor %}{% if x %}t{% else %}f{% endif %}", NULL, "emptyf" },
    /* loops */
    { "{% for x in [1,2,3,4] if x is odd %}{{ loop.index }}/{{ loop.length }}{{ loop.first }}{{ loop.last }}"
      "{{ loop.revindex }}{{ loop.previtem }}{{ loop.nextitem }};{% endfor %}", NULL,
      "1/2TrueFalse23;2/2FalseTrue11;" },
    { "{% for x in [1,1,2] %}{{ loop.changed(x) }}{{ loop.cycle('a','b') }}{% endfor %}", NULL,
      "TrueaFalsebTruea" },
    { "{% for k, v in {'b': 2, 'a': 1}.items() %}{{ k }}={{ v }};{% endfor %}", NULL, "b=2;a=1;" },
    /* the loop filter is evaluated lazily, between iterations (and for length on demand) */
    { "{% set ns = namespace(stop=false) %}{% for x in [1,2,3] if not ns.stop %}{{ x }}{% set ns.stop = true %}{% endfor %}",
      NULL, "1" },
    { "{% set ns = namespace(stop=false) %}{% for x in [1,2,3] if not ns.stop %}{{ loop.length }}{% set ns.stop = true %}{% endfor %}",
      NULL, "333" },
    /* for-else also runs when no iteration reached the end of the body */
    { "{% for x in [1,2] %}{% continue %}{% else %}else{% endfor %}|{% for x in [1] %}{% break %}{% else %}e2{% endfor %}",
      NULL, "else|e2" },
    /* a name assigned later in a frame hides the context value until the assignment */
    { "{% macro m() %}[{{ a }}]{% endmacro %}{{ m() }}{% set a = 5 %}{{ m() }}", "{\"a\":\"A\"}", "[][5]" },
    { "{% macro m() %}[{{ a }}]{% endmacro %}{% if false %}{% set a = 1 %}{% endif %}{{ m() }}", "{\"a\":\"A\"}", "[A]" },
    /* literal-only expressions are folded like jinja2's optimizer does */
    { "{{ (false)[1:] }}|{{ none[1:] ~ 'x' }}", NULL, "|x" },
    { "{% for x in [{'c':[{'c':[]}]}] recursive %}[{{ loop.depth }}{{ loop(x.c) }}]{% endfor %}", NULL,
      "[1[2]]" },
    { "{% for i in range(5) %}{% if i == 3 %}{% break %}{% endif %}{% if i == 1 %}{% continue %}{% endif %}{{ i }}{% endfor %}",
      NULL, "02" },
    /* scoping: a loop iteration is a scope, if is not */
    { "{% set x = 1 %}{% for i in [1,2] %}{{ x }}{% set x = 5 %}{{ x }};{% endfor %}{{ x }}", NULL, "15;15;1" },
    { "{% if true %}{% set q = 3 %}{% endif %}{{ q }}", NULL, "3" },
    { "{% macro m() %}{{ z }}{% endmacro %}{{ m() }}{% set z = 5 %}{{ m() }}", NULL, "5" },
    /* namespace */
    { "{% set ns = namespace(a=1) %}{% for i in [1,2] %}{% set ns.a = ns.a + i %}{% endfor %}{{ ns.a }} {{ ns }}",
      NULL, "4 <Namespace {'a': 4}>" },
    /* macros: defaults, keywords, varargs, caller */
    { "{% macro m(a, b=a+1) %}{{ a }},{{ b }}{% endmacro %}{{ m(1) }} {{ m(1, 5) }} {{ m(b=2, a=3) }}", NULL,
      "1,2 1,5 3,2" },
    { "{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, k=3) }}", NULL, "1(2,){'k': 3}" },
    { "{% macro m(x) %}[{{ caller(x, 2) }}]{% endmacro %}{% call(a, b) m(1) %}{{ a + b }}{% endcall %}", NULL, "[3]" },
    { "{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}", NULL, "321" },
    /* set blocks, filter blocks, with, generation */
    { "{% set s | trim %}  a {{ 1 }}  {% endset %}[{{ s }}]{% filter upper %}b{% endfilter %}", NULL, "[a 1]B" },
    { "{% with a = 2 %}{{ a }}{% endwith %}{{ a }}|{% generation %}g{% endgeneration %}", NULL, "2|g" },
    /* filters */
    { "{{ '  x  '|trim }}|{{ 'hello world-x'|title }}|{{ 'hELLO'|capitalize }}|{{ 'ab'|upper }}|{{ [3,1,2]|sort }}"
      "|{{ ['b','A','a']|sort }}|{{ [1,2,1]|unique|list }}|{{ [1,2,3]|sum }}|{{ [1,2]|join(', ') }}", NULL,
      "x|Hello World-X|Hello|AB|[1, 2, 3]|['A', 'a', 'b']|[1, 2]|6|1, 2" },
    { "{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }}"
      "{{ msgs|rejectattr('role', 'eq', 'user')|list|length }}{{ (msgs|first).role }}{{ (msgs|last).role }}",
      "{\"msgs\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"bot\",\"content\":\"b\"}]}", "['a']1userbot" },
    { "{{ 'a\\nb'|indent(2, true) }}|{{ 3.7|int }}|{{ '4.5'|int }}|{{ 'x'|int }}|{{ 2|float }}|{{ 2.5|round }}"
      "|{{ -3|abs }}|{{ 'a b  c'|wordcount }}|{{ [1,2,3]|batch(2)|list }}|{{ {'b':1,'a':2}|dictsort }}", NULL,
      "  a\n  b|3|4|0|2.0|2.0|3|3|[[1, 2], [3]]|[('a', 2), ('b', 1)]" },
    { "{{ d|tojson }}|{{ d|tojson(indent=2) }}|{{ 'é'|tojson(ensure_ascii=true) }}",
      "{\"d\":{\"a\":[1,2.5,\"é\\u2028\\n\"],\"b\":null}}",
      "{\"a\": [1, 2.5, \"é\u2028\\n\"], \"b\": null}|{\n  \"a\": [\n    1,\n    2.5,\n    \"é\u2028\\n\"\n  ],\n"
      "  \"b\": null\n}|\"\\u00e9\"" },
    { "{{ \"Use '\"|safe + name + \"'x\" }}|{{ '<'|e }}", "{\"name\":\"<a&b>\"}", "Use '&lt;a&amp;b&gt;&#39;x|&lt;" },
    /* tests */
    { "{{ 1 is odd }}{{ 6 is divisibleby 3 }}{{ 'a' is string }}{{ 1 is number }}{{ {} is mapping }}"
      "{{ [] is iterable }}{{ none is none }}{{ 1 is eq 1 }}{{ 2 is in [2] }}{{ true is boolean }}", NULL,
      "TrueTrueTrueTrueTrueTrueTrueTrueTrueTrue" },
    /* string methods */
    { "{{ ' a b '.strip() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a b c'.split(' ', 1) }}|{{ 'abc'.startswith('a') }}"
      "|{{ 'abcb'.find('b') }}|{{ '-'.join(['a','b']) }}|{{ '{} {name}'.format(1, name='n') }}|{{ '%s-%d' % ('a', 3) }}",
      NULL, "a b|['a', 'b', '', 'c']|['a', 'b c']|True|1|a-b|1 n|a-3" },
    { "{{ d.get('a') }}{{ d.get('z', 2) }}{{ d.keys()|list }}{{ d.values()|list }}{{ d.items() }}", "{\"d\":{\"a\":1}}",
      "12['a'][1]dict_items([('a', 1)])" },
    /* globals */
    { "{{ range(3)|list }}{{ range(3) }}{{ dict(a=1) }}{% set j = joiner('|') %}{% for i in [1,2] %}{{ j() }}{{ i }}{% endfor %}",
      NULL, "[0, 1, 2]range(0, 3){'a': 1}1|2" },
    { "{{ strftime_now('%Y-%m-%d %b') }}", NULL, "2024-07-26 Jul" },
};

typedef struct { const char *src, *ctx; int status; const char *msg; } err_case;

static const err_case err_cases[] = {
    /* syntax errors name their line */
    { "line1\n{% if true %}\nx", NULL, -100, "line 3: Unexpected end of template" },
    { "a\n\n{{ 1 + }}", NULL, -100, "line 3: unexpected 'end of print statement'" },
    { "{% for x in y %}\n{% endif %}", NULL, -100, "line 2: Encountered unknown tag 'endif'" },
    { "\n{{ x|nosuchfilter }}", NULL, -100, "line 2: No filter named 'nosuchfilter'." },
    { "{% break %}", NULL, -100, "line 1: 'break' outside loop" },
    { "{% macro m(a=1, b) %}{% endmacro %}", NULL, -100, "non-default argument follows default argument" },
    { "{{ 'abc }}", NULL, -100, "line 1: unexpected char" },
    { "{# never closed", NULL, -100, "Missing end of comment tag" },
    { "{{ (1 }}", NULL, -100, "unexpected '}'" },
    { "{% include 'x' %}", NULL, -100, "not supported" },
    /* render errors */
    { "\n\n{{ x.y }}", NULL, COLLOQ_ERR_FORMAT, "line 3: 'x' is undefined" },
    { "{{ 'x' + 1 }}", NULL, COLLOQ_ERR_FORMAT, "can only concatenate str (not \"int\") to str" },
    { "{{ 1 / 0 }}", NULL, COLLOQ_ERR_FORMAT, "division by zero" },
    { "{% set d = {} %}{% set d.a = 1 %}", NULL, COLLOQ_ERR_FORMAT, "cannot assign attribute on non-namespace object" },
    { "{% set xs = [] %}{% set _ = xs.append(1) %}", NULL, COLLOQ_ERR_FORMAT, "access to attribute 'append' of 'list' object is unsafe." },
    { "{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", NULL, COLLOQ_ERR_FORMAT, "macro 'm' takes not more than 1 argument(s)" },
    { "{% for a, b in [[1,2,3]] %}{% endfor %}", NULL, COLLOQ_ERR_FORMAT, "too many values to unpack (expected 2)" },
    { "{{ none|tojson }}{{ x|tojson }}", NULL, COLLOQ_ERR_FORMAT, "Object of type Undefined is not JSON serializable" },
    { "{{ range(100001)|length }}", NULL, COLLOQ_ERR_FORMAT, "Range too big" },
    /* raise_exception: the exact message and COLLOQ_ERR_ARG */
    { "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}",
      "{\"messages\":[{\"role\":\"system\"}]}", COLLOQ_ERR_ARG, "System role not supported" },
    /* limits: recursion, work, output size */
    { "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", NULL, COLLOQ_ERR_FORMAT, "maximum recursion depth exceeded" },
    { "{% for i in range(100000) %}{% set l = range(100000)|list %}{% endfor %}", NULL, COLLOQ_ERR_FORMAT,
      "work budget" },
    { "{{ 'x' * 100000000 }}", NULL, COLLOQ_ERR_FORMAT, "size limit exceeded" },
    { "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
      NULL, COLLOQ_ERR_FORMAT, "size limit exceeded" },
    { "{% set ns = namespace() %}{% set ns.self = ns %}{{ ns }}", NULL, COLLOQ_ERR_FORMAT, "nested too deeply" },
};

static void test_tables(void) {
    jinja_render_opts o = { 0 };
    o.now = 1721999220; o.now_set = true; o.utc = true;   /* 2024-07-26 13:07 UTC */
    o.max_steps = 2000000;
    for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
        const ok_case *c = &ok_cases[i];
        colloq_err err = { { 0 } };
        char *out = NULL;
        int rc = render(c->src, c->ctx, &o, &out, &err);
        CHECK(rc == 0, "case %zu: %s\n  error: %s", i, c->src, err.msg);
        if (rc == 0) CHECK(!strcmp(out, c->want), "case %zu: %s\n  want [%s]\n  got  [%s]", i, c->src, c->want, out);
        colloq_free(out);
    }
    for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; i++) {
        const err_case *c = &err_cases[i];
        colloq_err err = { { 0 } };
        char *out = NULL;
        jinja_render_opts eo = o;
        eo.max_steps = 0;       /* the default budget */
        int rc = render(c->src, c->ctx, &eo, &out, &err);
        int want = c->status == -100 ? -100 : c->status;
        CHECK(rc == want, "error case %zu: %s\n  want status %d, got %d (%s)", i, c->src, want, rc, err.msg);
        CHECK(strstr(err.msg, c->msg) != NULL, "error case %zu: %s\n  want message containing [%s]\n  got [%s]",
              i, c->src, c->msg, err.msg);
        if (c->status == COLLOQ_ERR_ARG) CHECK(!strcmp(err.msg, c->msg), "raise_exception message must be exact: [%s]", err.msg);
        CHECK(out == NULL, "error case %zu produced output", i);
        colloq_free(out);
    }
}

/* A context built through the value API renders like the JSON one. */
static void test_value_api(void) {
    colloq_err err = { { 0 } };
    const char *src = "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
                      "{% if add_generation_prompt %}<assistant>{% endif %}|{{ n }}|{{ none_v }}";
    jinja_template *t = jinja_parse(src, strlen(src), &err);
    CHECK(t != NULL, "parse: %s", err.msg);
    jinja_value *ctx = jinja_value_dict(), *msgs = jinja_value_list();
    for (int i = 0; i < 2; i++) {
        jinja_value *m = jinja_value_dict();
        CHECK(jinja_dict_set(m, "role", jinja_value_string(i ? "assistant" : "user", i ? 9 : 4)) == 0, "set role");
        CHECK(jinja_dict_set(m, "content", jinja_value_string("hé", 3)) == 0, "set content");
        CHECK(jinja_list_append(msgs, m) == 0, "append");
    }
    CHECK(jinja_dict_set(ctx, "messages", msgs) == 0, "set messages");
    CHECK(jinja_dict_set(ctx, "bos_token", jinja_value_string("<s>", 3)) == 0, "set bos");
    CHECK(jinja_dict_set(ctx, "add_generation_prompt", jinja_value_bool(true)) == 0, "set agp");
    CHECK(jinja_dict_set(ctx, "n", jinja_value_int(-42)) == 0, "set n");
    CHECK(jinja_dict_set(ctx, "none_v", jinja_value_none()) == 0, "set none");
    CHECK(jinja_value_string("\xff", 1) == NULL, "invalid UTF-8 must be refused");
    CHECK(jinja_dict_set(ctx, "x", NULL) == COLLOQ_ERR_ARG, "NULL value refused");
    char *out = NULL;
    size_t n = 0;
    /* the same template renders twice from the same context */
    for (int k = 0; k < 2 && t; k++) {
        int rc = jinja_render(t, ctx, &out, &n, &err);
        CHECK(rc == 0, "render: %s", err.msg);
        if (rc == 0) CHECK(!strcmp(out, "<s><user>hé<assistant>hé<assistant>|-42|None"), "got [%s]", out);
        colloq_free(out);
    }
    jinja_value *list = jinja_value_list();
    CHECK(jinja_render(t, list, &out, &n, &err) == COLLOQ_ERR_ARG, "a non-dict context is refused");
    jinja_value_free(list);
    CHECK(jinja_render(t, NULL, &out, &n, &err) != COLLOQ_ERR_NOMEM, "NULL context renders as empty");
    colloq_free(out);
    jinja_value_free(ctx);
    jinja_template_free(t);
}

/* Output size and step limits from the options. */
static void test_limits(void) {
    colloq_err err = { { 0 } };
    jinja_render_opts o = { 0 };
    o.max_output = 100;
    char *out = NULL;
    int rc = render("{% for i in range(50) %}abc{% endfor %}", NULL, &o, &out, &err);
    CHECK(rc == COLLOQ_ERR_FORMAT && strstr(err.msg, "size limit"), "output limit: %d %s", rc, err.msg);
    colloq_free(out);
    o.max_output = 0;
    o.max_steps = 50;
    rc = render("{% for i in range(100) %}{% endfor %}", NULL, &o, &out, &err);
    CHECK(rc == COLLOQ_ERR_FORMAT && strstr(err.msg, "work budget"), "step limit: %d %s", rc, err.msg);
    colloq_free(out);
    /* deeply nested expressions and blocks are refused at parse time, not by the stack */
    char *deep = malloc(200000);
    size_t k = 0;
    k += (size_t)sprintf(deep + k, "{{ ");
    for (int i = 0; i < 20000; i++) deep[k++] = '(';
    deep[k++] = '1';
    for (int i = 0; i < 20000; i++) deep[k++] = ')';
    k += (size_t)sprintf(deep + k, " }}");
    deep[k] = 0;
    rc = render(deep, NULL, NULL, &out, &err);
    CHECK(rc == -100, "deep parentheses must fail to parse: %d %s", rc, err.msg);
    k = 0;
    for (int i = 0; i < 5000; i++) k += (size_t)sprintf(deep + k, "{%% if true %%}");
    deep[k] = 0;
    rc = render(deep, NULL, NULL, &out, &err);
    CHECK(rc == -100 && strstr(err.msg, "nested too deeply"), "deep blocks: %d %s", rc, err.msg);
    k = 0;
    k += (size_t)sprintf(deep + k, "{{ 1");
    for (int i = 0; i < 10000; i++) k += (size_t)sprintf(deep + k, " + 1");
    k += (size_t)sprintf(deep + k, " }}");
    deep[k] = 0;
    rc = render(deep, NULL, NULL, &out, &err);
    CHECK(rc == -100 && strstr(err.msg, "too deeply nested"), "long operator chains: %d %s", rc, err.msg);
    free(deep);
    CHECK(jinja_parse("\xc3(", 2, &err) == NULL && strstr(err.msg, "UTF-8"), "invalid UTF-8 template: %s", err.msg);
    /* values nested 100000 deep are built, compared, printed and freed without recursion trouble */
    rc = render("{% set ns = namespace(t=1, l=[]) %}{% for i in range(100000) %}{% set ns.t = (ns.t,) %}"
                "{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l == ns.l }}{{ ns.l|length }}{{ ns.t|tojson }}",
                NULL, NULL, &out, &err);
    CHECK(rc == COLLOQ_ERR_FORMAT && strstr(err.msg, "Circular reference"), "deep values: %d %s", rc, err.msg);
    colloq_free(out);
    /* a macro recursing on a small stack budget stops cleanly */
    o.max_steps = 0;
    o.max_stack = 64 << 10;
    rc = render("{% macro f(n) %}{% for i in [1] %}{{ f(n + 1) }}{% endfor %}{% endmacro %}{{ f(0) }}", NULL, &o, &out, &err);
    CHECK(rc == COLLOQ_ERR_FORMAT && strstr(err.msg, "recursion"), "stack budget: %d %s", rc, err.msg);
    colloq_free(out);
}

/* Every allocation may fail: the engine must report it and leak nothing (ASan checks). */
static void test_alloc_failures(void) {
    const char *src =
        "{%- set ns = namespace(n=0) -%}{%- macro m(x, y=2) -%}[{{ x ~ y }}]{%- endmacro -%}"
        "{%- for msg in messages if msg.role != 'x' -%}{%- set ns.n = ns.n + 1 -%}"
        "{{ m(msg.role) }}{{ msg.content|trim|tojson(indent=1) }}{{ loop.index }}"
        "{%- endfor -%}{{ ns.n }}{{ messages|map(attribute='role')|join(',') }}{{ '%s' % 1 }}";
    const char *ctx = "{\"messages\":[{\"role\":\"user\",\"content\":\" hi \"},{\"role\":\"bot\",\"content\":[1,{\"a\":2}]}]}";
    int ok = 0, failed = 0;
    for (long n = 0; n < 400; n++) {
        colloq_err err = { { 0 } };
        colloq_test_fail_alloc_after(n);
        char *out = NULL;
        int rc = render(src, ctx, NULL, &out, &err);
        colloq_test_fail_alloc_after(-1);
        if (rc == 0) ok++;
        else failed++;
        CHECK(rc == 0 || rc == COLLOQ_ERR_NOMEM || rc == -100 || rc == -200,
              "allocation failure %ld gave status %d (%s)", n, rc, err.msg);
        colloq_free(out);
    }
    CHECK(ok > 0 && failed > 0, "allocation failure sweep did not cover both outcomes (%d ok, %d failed)", ok, failed);
}

/* One parsed template rendered by several threads at once, each with its own context. */
typedef struct { const jinja_template *t; int id; int bad; } thread_arg;

static void *render_thread(void *p) {
    thread_arg *a = p;
    char ctx[200], want[200];
    snprintf(ctx, sizeof ctx, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi %d\"}]}", a->id);
    snprintf(want, sizeof want, "<user>hi %d</user>|HI %d|3", a->id, a->id);
    for (int k = 0; k < 200; k++) {
        colloq_err err;
        jinja_value *v = jinja_value_from_json_text(ctx, strlen(ctx), &err);
        char *out = NULL;
        size_t n = 0;
        if (!v || jinja_render(a->t, v, &out, &n, &err) != 0 || strcmp(out, want)) a->bad++;
        colloq_free(out);
        jinja_value_free(v);
    }
    return NULL;
}

static void test_threads(void) {
    const char *src = "{% set ns = namespace(n=0) %}{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>"
                      "{% set ns.n = ns.n + 1 %}{% endfor %}|{{ messages[0].content|upper }}|{{ 'abc'|length }}";
    colloq_err err;
    jinja_template *t = jinja_parse(src, strlen(src), &err);
    CHECK(t != NULL, "parse: %s", err.msg);
    if (!t) return;
    pthread_t th[4];
    thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){ t, i, 0 };
        CHECK(pthread_create(&th[i], NULL, render_thread, &args[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(args[i].bad == 0, "thread %d: %d bad renders", i, args[i].bad);
    }
    jinja_template_free(t);
}

/* ---- fuzz ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return rng_state;
}

static const char *const snippets[] = {
    "{{", "}}", "{%", "%}", "{#", "#}", "{%-", "-%}", "{{-", "-}}", "(", ")", "[", "]", "{", "}", "'", "\"",
    "|", ".", ",", ":", "=", "~", "+", "-", "*", "**", "/", "//", "%", " if ", " else ", " for ", " in ",
    " not ", " and ", " or ", " is ", "loop", "loop.index", "messages", "messages[0]", "[1:]", "[::-1]",
    "|tojson", "|trim", "|length", "|map(attribute='role')", "|selectattr('x')", "|list", "|join(',')",
    "|indent(4)", "|default('x')", "{% endif %}", "{% endfor %}", "{% else %}", "{% if x %}",
    "{% for m in messages %}", "{% set x = 1 %}", "{% macro q(a) %}{{ q(a) }}{% endmacro %}{{ q(1) }}",
    "{{ raise_exception('boom') }}", "{% break %}", "{% raw %}", "{% endraw %}", "namespace(", "range(",
    "\\", "\n", "\xc3\xa9", "\xf0\x9f\x98\x80", "1e308", "9223372036854775807", "-1", "none", "caller()",
    "{% call q() %}x{% endcall %}", "{% filter upper %}", "{% endfilter %}", "{% generation %}",
};

static const char *const whole[] = {
    "{{ messages|length }}", "{{ messages[-1].content|trim }}", "{{ (messages|first).role|upper }}",
    "{% for m in messages %}{{ loop.index }}{{ m.role }}{% endfor %}", "{{ tools|tojson(indent=2) }}",
    "{% if messages[0]['role'] == 'system' %}S{% endif %}", "{{ raise_exception('stop') }}",
    "{% set ns = namespace(a=[]) %}{% set ns.a = ns.a + [1] %}{{ ns.a }}", "{{ range(3)|list }}",
    "{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", "{{ 'x' * 1000000 }}",
    "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", "{{ x.y.z }}",
    "{{ messages|map(attribute='content')|join('\\n') }}", "{{ {'a': [1, 2.5, none]}|tojson }}",
    "{{ messages|selectattr('role', 'equalto', 'user')|list|last }}", "{{ '%s %d' % ('a', 1) }}",
    "{{ '{} {}'.format(1, 2) }}", "{% set x %}{{ bos_token }}{% endset %}{{ x|indent(2, true) }}",
};

static char *mutate(const char *src, size_t n, const char *other, size_t on, size_t *out_n) {
    size_t cap = n + 4096;
    char *b = malloc(cap + 1);
    memcpy(b, src, n);
    size_t len = n;
    int edits = 1 + (int)(rnd() % 2);
    for (int e = 0; e < edits; e++) {
        size_t pos = len ? (size_t)(rnd() % (len + 1)) : 0;
        switch (rnd() % 8) {
        case 0:   /* flip a byte */
            if (len) b[pos % len] = (char)(rnd() & 0xff);
            break;
        case 1: { /* delete a range */
            size_t k = (size_t)(rnd() % 40);
            if (pos + k > len) k = len - pos;
            memmove(b + pos, b + pos + k, len - pos - k);
            len -= k;
            break;
        }
        case 6: case 7: { /* insert a whole expression or statement */
            const char *s = whole[rnd() % (sizeof whole / sizeof whole[0])];
            size_t k = strlen(s);
            /* after the next tag end, so the insertion is mostly well-formed */
            while (pos + 1 < len && !((b[pos] == '%' || b[pos] == '}') && b[pos + 1] == '}')) pos++;
            pos = pos + 2 <= len ? pos + 2 : len;
            if (len + k > cap) break;
            memmove(b + pos + k, b + pos, len - pos);
            memcpy(b + pos, s, k);
            len += k;
            break;
        }
        case 2: case 3: { /* insert a snippet */
            const char *s = snippets[rnd() % (sizeof snippets / sizeof snippets[0])];
            size_t k = strlen(s);
            if (len + k > cap) break;
            memmove(b + pos + k, b + pos, len - pos);
            memcpy(b + pos, s, k);
            len += k;
            break;
        }
        case 4: { /* duplicate a range */
            size_t k = (size_t)(rnd() % 200), from = len ? (size_t)(rnd() % len) : 0;
            if (from + k > len) k = len - from;
            if (len + k > cap) break;
            char *tmp = malloc(k + 1);
            memcpy(tmp, b + from, k);
            memmove(b + pos + k, b + pos, len - pos);
            memcpy(b + pos, tmp, k);
            free(tmp);
            len += k;
            break;
        }
        default: { /* splice from another template */
            if (!on) break;
            size_t k = (size_t)(rnd() % 300), from = (size_t)(rnd() % on);
            if (from + k > on) k = on - from;
            if (len + k > cap) break;
            memmove(b + pos + k, b + pos, len - pos);
            memcpy(b + pos, other + from, k);
            len += k;
            break;
        }
        }
    }
    b[len] = 0;
    *out_n = len;
    return b;
}

static const char *const fuzz_ctx[] = {
    "{\"messages\":[{\"role\":\"user\",\"content\":\"hi {{ x }}\"}],\"add_generation_prompt\":true,"
    "\"bos_token\":\"<s>\",\"eos_token\":\"</s>\"}",
    "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"你好\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"abcdefghi\",\"type\":\"function\","
    "\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1}}}]},{\"role\":\"tool\",\"content\":\"r\","
    "\"tool_call_id\":\"abcdefghi\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
    "\"description\":\"d\",\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\","
    "\"description\":\"x\"}},\"required\":[\"a\"]}}}],\"bos_token\":\"<s>\",\"eos_token\":\"</s>\"}",
    "{\"messages\":[]}",
};

static int fuzz(const char *dir, long iters) {
    DIR *d = opendir(dir);
    if (!d) { printf("template directory %s absent: skipping\n", dir); return 77; }
    char *srcs[64];
    size_t lens[64];
    int nsrc = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nsrc < 64) {
        size_t l = strlen(e->d_name);
        if (l < 7 || strcmp(e->d_name + l - 6, ".jinja")) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        colloq_err err;
        if (colloq_read_file(path, &srcs[nsrc], &lens[nsrc], &err) == 0) nsrc++;
    }
    closedir(d);
    if (!nsrc) { printf("no templates in %s: skipping\n", dir); return 77; }
    jinja_value *ctxs[3];
    for (int i = 0; i < 3; i++) {
        colloq_err err;
        ctxs[i] = jinja_value_from_json_text(fuzz_ctx[i], strlen(fuzz_ctx[i]), &err);
        CHECK(ctxs[i] != NULL, "fuzz context %d: %s", i, err.msg);
    }
    jinja_render_opts o = { 0 };
    o.max_steps = 20000;
    o.max_output = 1 << 20;
    o.now_set = true;
    long parsed = 0, rendered = 0;
    for (long it = 0; it < iters; it++) {
        int k = (int)(rnd() % (uint64_t)nsrc), k2 = (int)(rnd() % (uint64_t)nsrc);
        size_t n;
        char *m = mutate(srcs[k], lens[k], srcs[k2], lens[k2], &n);
        colloq_err err = { { 0 } };
        jinja_template *t = jinja_parse(m, n, &err);
        if (t) {
            parsed++;
            for (int c = 0; c < 3; c++) {
                if (!ctxs[c]) continue;
                char *out = NULL;
                size_t on = 0;
                int rc = jinja_render_ex(t, ctxs[c], &o, &out, &on, &err);
                CHECK(rc == 0 || rc == COLLOQ_ERR_FORMAT || rc == COLLOQ_ERR_ARG,
                      "fuzz render status %d (%s)", rc, err.msg);
                if (rc == 0) { rendered++; CHECK(out && strlen(out) <= on, "output length"); }
                else CHECK(out == NULL && err.msg[0], "an error needs a message");
                colloq_free(out);
            }
            jinja_template_free(t);
        } else {
            CHECK(err.msg[0] != 0, "parse failure without a message");
        }
        free(m);
    }
    printf("fuzz: %ld mutations, %ld parsed, %ld renders succeeded\n", iters, parsed, rendered);
    CHECK(parsed > 0 && rendered > 0, "fuzzing never reached the renderer");
    for (int i = 0; i < 3; i++) jinja_value_free(ctxs[i]);
    for (int i = 0; i < nsrc; i++) colloq_free(srcs[i]);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "unit")) {
        test_tables();
        test_value_api();
        test_limits();
        test_alloc_failures();
        test_threads();
    } else if (argc >= 3 && !strcmp(argv[1], "fuzz")) {
        int rc = fuzz(argv[2], argc >= 4 ? atol(argv[3]) : 6000);
        if (rc == 77) return 77;
    } else {
        fprintf(stderr, "usage: %s unit | fuzz DIR [ITERATIONS]\n", argv[0]);
        return 2;
    }
    if (failures) { fprintf(stderr, "%d failure(s)\n", failures); return 1; }
    printf("all jinja tests passed\n");
    return 0;
}
