/*
 * jinja.h - a Jinja2 template engine for chat templates (tokenizer.chat_template).
 * Renders the way Hugging Face transformers does: Jinja2's sandbox with
 * trim_blocks and lstrip_blocks, loop controls, {% generation %}, and the globals
 * raise_exception() and strftime_now().  Knows nothing of models or tokenizers.
 *
 * Not supported (a clean error): template inheritance and inclusion (block, extends,
 * include, import), the filters filesizeformat groupby pprint random striptags
 * urlencode urlize wordwrap xmlattr, the cycler and lipsum globals, integers beyond
 * 64 bits, complex numbers, list.pop/clear.
 *
 * A parsed template is immutable and may be rendered by several threads at once.
 * A jinja_value is reference counted without atomics: one thread at a time.
 * Parsing and rendering use at most about 512 KiB of stack (render: max_stack) and
 * fail cleanly past it: call them on a thread with at least 1 MiB of stack.
 */
#ifndef COLLOQ_JINJA_H
#define COLLOQ_JINJA_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "colloq.h"

typedef struct jinja_template jinja_template;
typedef struct jinja_value    jinja_value;

/* Parse a template (len bytes of UTF-8, need not be NUL-terminated).  Syntax errors
 * return NULL with "line N: message" in err. */
jinja_template *jinja_parse(const char *src, size_t len, colloq_err *err);
void            jinja_template_free(jinja_template *t);

typedef struct {
    int64_t now;           /* seconds since the epoch for strftime_now() */
    bool    now_set;       /* false: the current time */
    bool    utc;           /* strftime_now() in UTC rather than local time */
    size_t  max_output;    /* bytes; 0 = 16 MiB.  Also bounds every string built. */
    uint64_t max_steps;    /* work budget: loop iterations, calls, filters, elements built
                              or compared, string bytes / 16; 0 = 10 million */
    size_t  max_stack;     /* bytes of stack rendering may use; 0 = 512 KiB */
} jinja_render_opts;

/* Render with ctx (a dict value; NULL = empty).  On success *out is a NUL-terminated
 * string of *out_len bytes that the caller frees with colloq_free.
 * Errors: COLLOQ_ERR_ARG when the template called raise_exception(msg) (err holds msg
 * exactly, up to 511 bytes: the conversation was rejected by the template);
 * COLLOQ_ERR_FORMAT for any other template error ("line N: message"), exceeded limits
 * included; COLLOQ_ERR_NOMEM when memory ran out. */
int jinja_render(const jinja_template *t, const jinja_value *ctx, char **out,
                 size_t *out_len, colloq_err *err);
int jinja_render_ex(const jinja_template *t, const jinja_value *ctx,
                    const jinja_render_opts *opts, char **out, size_t *out_len,
                    colloq_err *err);

/* ---- values for the render context ----
 * Constructors return NULL when out of memory.  Functions that take a value
 * argument named "take" consume the caller's reference, also on failure. */
struct json_t;
jinja_value *jinja_value_from_json(const struct json_t *j, colloq_err *err);   /* jansson */
jinja_value *jinja_value_from_json_text(const char *text, size_t len, colloq_err *err);
jinja_value *jinja_value_dict(void);
jinja_value *jinja_value_list(void);
jinja_value *jinja_value_string(const char *s, size_t len);   /* NULL unless valid UTF-8 */
jinja_value *jinja_value_int(int64_t v);
jinja_value *jinja_value_bool(bool v);
jinja_value *jinja_value_none(void);
/* d[key] = take (replacing).  Returns 0 or COLLOQ_ERR_ARG / COLLOQ_ERR_NOMEM. */
int  jinja_dict_set(jinja_value *d, const char *key, jinja_value *take);
int  jinja_list_append(jinja_value *l, jinja_value *take);
void jinja_value_free(jinja_value *v);

#endif
