/*
 * cli.h - subcommands of the `colloq` program.  Each cmd_<name> lives in
 * cli/cmd_<name>.c, parses its own arguments, prints errors to stderr and
 * returns the process exit status (0 ok, 1 runtime error, 2 usage error).
 */
#ifndef COLLOQ_CLI_H
#define COLLOQ_CLI_H

int cmd_run(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_audit(int argc, char **argv);

/* Shared helpers (cli_util.c). */
/* Parse an integer / float option value; on failure print "colloq NAME: bad value for OPT" and return false. */
#include <stdbool.h>
bool cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
bool cli_parse_float(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);


/* Generation options shared by `run` and `chat`: sampling, threads, context, batch and KV
 * cache type, parsed in one place (cli_util.c). */
#include "colloq.h"
/* "f16" | "f32" | "q8_0" -> *out; false after printing "colloq CMD: bad value ..." */
bool cli_parse_cache_type(const char *cmd, const char *s, colloq_cache_type *out);
const char *cli_cache_type_name(colloq_cache_type ct);

typedef struct {
    colloq_sampler_params sp;
    bool  seed_set;
    long  threads, n_ctx, batch;      /* 0 = default (physical cores, the model's context) */
    colloq_cache_type cache_type;
} cli_gen_opts;
void cli_gen_defaults(cli_gen_opts *g, long batch);
/* If option a is one of the shared ones, parse it with value v (NULL when none follows; *used
 * tells whether v was consumed) and return 1; return 0 when a is not one of them; -1 on a
 * missing or bad value (message printed). */
int  cli_gen_opt(const char *cmd, const char *a, const char *v, cli_gen_opts *g, bool *used);
/* After parsing: seed from the clock when --seed was not given. */
void cli_gen_finish(cli_gen_opts *g);

#endif
