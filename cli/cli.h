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

#endif
