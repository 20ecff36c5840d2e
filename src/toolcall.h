/*
 * toolcall.h - OpenAI tool calling and response_format on top of the grammar: reading
 * `tools` / `tool_choice` / `parallel_tool_calls` / `response_format` from a request,
 * the prompt (the template's own tool support, or a documented system-prompt text),
 * the generation-time constraint, and parsing the output into `tool_calls` (whole or
 * as streamed deltas).  Knows the OpenAI JSON shapes, not HTTP or the engine.
 * The output format and the prompt text are documented in docs/CONSTRAINED_OUTPUT.md.
 */
#ifndef COLLOQ_TOOLCALL_H
#define COLLOQ_TOOLCALL_H

#include <stdbool.h>
#include <stddef.h>
#include "chat.h"
#include "colloq.h"
#include "grammar.h"

struct json_t;

/* Every call the model makes is written  <tool_call>{"name": …, "arguments": {…}}</tool_call>
 * (whitespace allowed inside the tags); text outside the blocks is the message content. */
#define COLLOQ_TOOLCALL_OPEN  "<tool_call>"
#define COLLOQ_TOOLCALL_CLOSE "</tool_call>"

typedef enum {
    COLLOQ_TOOLS_NONE = 0,      /* no tools, or tool_choice "none": no constraint */
    COLLOQ_TOOLS_AUTO,          /* text or calls; a call is constrained once its open tag appears */
    COLLOQ_TOOLS_REQUIRED,      /* "required" or a named function: only calls, from the first token */
} colloq_tools_mode;

typedef struct colloq_toolspec colloq_toolspec;   /* parsed and compiled; read-only */

/* Read tools, tool_choice and parallel_tool_calls from an OpenAI chat request.  *out is
 * NULL when the request has no tools.  Errors (COLLOQ_ERR_ARG, for an HTTP 400): a
 * malformed tool, a duplicate or invalid name, tool_choice naming an unknown function or
 * given without tools, a parameters schema outside the supported subset (the message
 * names the tool).  o: grammar limits (NULL = defaults). */
int  colloq_toolspec_parse(const struct json_t *request, const colloq_grammar_opts *o,
                           colloq_toolspec **out, colloq_err *err);
void colloq_toolspec_free(colloq_toolspec *ts);
colloq_tools_mode colloq_toolspec_mode(const colloq_toolspec *ts);    /* NONE for NULL */
int  colloq_toolspec_n_tools(const colloq_toolspec *ts);
/* The grammar of one call object (what follows the open tag). */
const colloq_grammar *colloq_toolspec_grammar(const colloq_toolspec *ts);
bool colloq_toolspec_parallel(const colloq_toolspec *ts);
/* The request's tools array (borrowed), and the function tool_choice names (or NULL). */
const struct json_t *colloq_toolspec_tools_json(const colloq_toolspec *ts);
const char *colloq_toolspec_forced(const colloq_toolspec *ts);

/* The grammar for a request's response_format: *out = NULL for none / {"type":"text"};
 * json_object: any JSON object; json_schema: its "schema".  COLLOQ_ERR_ARG with a
 * message starting "response_format" for anything else or a schema outside the subset. */
int  colloq_toolcall_response_format(const struct json_t *request, const colloq_grammar_opts *o,
                                     colloq_grammar **out, colloq_err *err);

/* ---- prompt ---- */

/* Render the conversation for generation.  With tools (mode AUTO or REQUIRED) the
 * template's own tool support is used when its prompt teaches the <tool_call> format;
 * otherwise the tools are described in the system prompt (colloq_toolcall_system_text)
 * and earlier calls / tool results are rewritten as text.  ts may be NULL.  Same
 * contract as colloq_chat_render. */
int  colloq_toolcall_render(const colloq_chat_fmt *f, const struct json_t *messages,
                            const colloq_toolspec *ts, bool add_generation_prompt,
                            char **out, size_t *out_len, colloq_err *err);
/* The system-prompt text that describes the tools (NUL-terminated, colloq_free). */
char *colloq_toolcall_system_text(const colloq_toolspec *ts);

/* ---- constraint while generating ---- */

typedef struct colloq_toolcall colloq_toolcall;   /* per request */

/* ts and v are borrowed and must outlive the state. */
int  colloq_toolcall_new(const colloq_toolspec *ts, const colloq_grammar_vocab *v,
                         colloq_toolcall **out, colloq_err *err);
void colloq_toolcall_free(colloq_toolcall *tc);
/* Disallowed tokens get -INFINITY.  tokens_left: as in colloq_grammar_state_mask (-1 =
 * no budget).  Returns the number of allowed tokens (n_logits when unconstrained). */
int  colloq_toolcall_mask_logits(colloq_toolcall *tc, int tokens_left, float *logits, int n_logits);
/* After sampling token t; text is what the caller shows for t (used to spot the open
 * tag in free text; constrained phases use the vocabulary's piece).  COLLOQ_ERR_ARG when
 * t breaks the constraint (the caller did not apply the mask). */
int  colloq_toolcall_accept(colloq_toolcall *tc, colloq_token t, const char *text, size_t len,
                            colloq_err *err);
/* Only an end-of-generation token may follow (REQUIRED mode, calls complete). */
bool colloq_toolcall_done(const colloq_toolcall *tc);

/* ---- parsing the output ---- */

/* Receives a stream's pieces: content text (never part of a call block; a possible
 * start of a tag is held back until it is decided), a call's start (index from 0,
 * id "call_…", function name) and fragments of its arguments (JSON text whose
 * concatenation is the call's "arguments" string).  Any may be NULL. */
typedef struct {
    void (*content)(void *ud, const char *s, size_t n);
    void (*call_begin)(void *ud, int index, const char *id, const char *name);
    void (*call_args)(void *ud, int index, const char *s, size_t n);
} colloq_toolcall_sink;

typedef struct colloq_toolcall_parser colloq_toolcall_parser;

int  colloq_toolcall_parser_new(colloq_toolcall_parser **out, colloq_err *err);
void colloq_toolcall_parser_free(colloq_toolcall_parser *p);
/* Feed generated text (any split); events go to sink (may be NULL). */
int  colloq_toolcall_parser_feed(colloq_toolcall_parser *p, const char *s, size_t n,
                                 const colloq_toolcall_sink *sink, void *ud);
/* End of the text: held-back text is released as content; an unfinished call block
 * whose start was not reported yet becomes content. */
int  colloq_toolcall_parser_finish(colloq_toolcall_parser *p, const colloq_toolcall_sink *sink, void *ud);
int  colloq_toolcall_parser_n_calls(const colloq_toolcall_parser *p);   /* complete calls */
/* The complete calls as an OpenAI "tool_calls" array (new reference; NULL when none or
 * out of memory). */
struct json_t *colloq_toolcall_parser_calls(const colloq_toolcall_parser *p);
/* All content text so far (NUL-terminated; valid until the next feed/finish/free). */
const char *colloq_toolcall_parser_content(const colloq_toolcall_parser *p, size_t *len);

/* OpenAI streaming deltas: {"tool_calls":[{"index":i,"id":…,"type":"function",
 * "function":{"name":…,"arguments":""}}]} and {"tool_calls":[{"index":i,"function":
 * {"arguments":…}}]} (new references). */
struct json_t *colloq_toolcall_delta_begin(int index, const char *id, const char *name);
struct json_t *colloq_toolcall_delta_args(int index, const char *s, size_t n);

#endif
