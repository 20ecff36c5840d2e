/*
 * main.c - the `colloq` program: dispatches to one subcommand per file.
 */
#include <stdio.h>
#include <string.h>
#include "colloq.h"
#include "cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    { "run",      cmd_run,      "generate text from a prompt" },
    { "chat",     cmd_chat,     "talk with a chat model (interactive; stdin may be a pipe)" },
    { "template", cmd_template, "print the prompt a conversation renders to in a chat format" },
    { "tokenize", cmd_tokenize, "print the token ids of a text" },
    { "info",     cmd_info,     "describe a GGUF model file" },
    { "mkmodel",  cmd_mkmodel,  "write a random-weight model of a real architecture shape" },
    { "quantize", cmd_quantize, "convert a model file to another tensor type or K-quant mix" },
    { "bench",    cmd_bench,    "measure prefill and decode speed against the memory-bandwidth floor" },
    { "serve",    cmd_serve,    "OpenAI-compatible HTTP server with continuous batching" },
    { "audit",    cmd_audit,    "verify or search an audit log directory" },
};

static void usage(FILE *out) {
    fprintf(out, "colloq %s - run open chat models from GGUF files\n\nusage: colloq COMMAND [options]\n\ncommands:\n",
            COLLOQ_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\n'colloq COMMAND --help' shows a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "--version")) { printf("colloq %s\n", COLLOQ_VERSION); return 0; }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "colloq: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
