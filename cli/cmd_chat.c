/*
 * cmd_chat.c - `colloq chat`: an interactive conversation with a model (a REPL): the
 * answer streams as it is generated, Ctrl-C stops the answer (not the program),
 * /commands manage the conversation, and stdin may be a pipe for scripts.  Argument
 * parsing, line input and printing only: formats, the KV cache and the context policy
 * are the library's (chat.c, conversation.c).
 */
#define _GNU_SOURCE   /* getline */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "chat.h"
#include "cli.h"
#include "conversation.h"
#include "util.h"

#define MAX_STOPS 16
#define MAX_TURN_STATS 256

typedef struct {
    const char *model, *system, *tpl;
    long  n_predict;
    cli_gen_opts g;               /* sampling, threads, context, batch, cache type */
    colloq_overflow overflow;
    const char *stops[MAX_STOPS];
    int   n_stops;
    bool  verbose;
} chat_opts;

static void usage(FILE *out) {
    fprintf(out,
        "usage: colloq chat -m MODEL.gguf [options]\n"
        "\n"
        "An interactive conversation: type a message and press Enter (end a line with \\ to go on\n"
        "on the next one).  Ctrl-C stops the answer being written; /help lists the commands.\n"
        "Standard input may be a pipe: each line is a message or a command.\n"
        "\n"
        "  --system TEXT            system prompt\n"
        "  --chat-template NAME|FILE  the prompt format: a built-in (openchat, neural-chat, llama2, mistral,\n"
        "                           chatml, zephyr, chatglm3, baichuan2, falcon, phi3, llama3, gemma) or a\n"
        "                           Jinja file (default: the model file's template)\n"
        "  --context-overflow P     when the context is full: drop-oldest (default; the oldest turns leave\n"
        "                           the prompt, the system prompt stays), shift (drop turns until the prompt\n"
        "                           fills half the context) or error\n"
        "  -c, --ctx N              context size (default: the model's, at most 4096)\n"
        "  -n, --n-predict N        most tokens per answer (default -1: until the turn ends)\n"
        "  --stop TEXT              also end the answer at TEXT (repeatable)\n"
        "  --temp T                 temperature (default 0.8; 0 = greedy)\n"
        "  --seed S                 sampling seed (default: from the clock)\n"
        "  --top-k K, --top-p P, --min-p P, --repeat-penalty R, --repeat-last-n N,\n"
        "  --presence-penalty P, --frequency-penalty F   sampling as in `colloq run`\n"
        "  -t, --threads N          threads (default: physical cores)\n"
        "  -b, --batch N            prompt tokens evaluated per call (default 256)\n"
        "  --cache-type f16|f32|q8_0  KV cache element type (default f16)\n"
        "  --verbose                model load details on stderr\n");
}

static void help(void) {
    printf("commands:\n"
           "  /help            this list\n"
           "  /reset           forget the conversation (the system prompt stays)\n"
           "  /system TEXT     set the system prompt (/system alone shows it, /system --clear removes it)\n"
           "  /save FILE       write the conversation as a JSON array of messages\n"
           "  /load FILE       read a conversation written by /save (or any OpenAI-style messages array)\n"
           "  /stats           tokens evaluated and reused per turn, speeds, context use\n"
           "  /exit            leave (also /quit, or Ctrl-D)\n"
           "Ctrl-C stops the answer being written.\n");
}

static bool is_opt(const char *a, const char *name, const char *alias) {
    return !strcmp(a, name) || (alias && !strcmp(a, alias));
}

/* Returns 0 ok, 2 usage error (message printed), 1 for --help. */
static int parse_args(int argc, char **argv, chat_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_predict = -1;
    cli_gen_defaults(&o->g, 256);
    o->overflow = COLLOQ_OVERFLOW_DROP_OLDEST;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
#define VALUE() do { if (!v) { fprintf(stderr, "colloq chat: %s needs a value\n", a); return 2; } i++; } while (0)
#define IS(s1, s2) is_opt(a, s1, s2)
        bool used;
        int gen = cli_gen_opt("chat", a, v, &o->g, &used);
        if (gen < 0) return 2;
        if (gen > 0) { i += used; continue; }
        if (IS("-h", "--help")) { usage(stdout); return 1; }
        else if (IS("-m", "--model")) { VALUE(); o->model = v; }
        else if (IS("--system", NULL)) { VALUE(); o->system = v; }
        else if (IS("--chat-template", NULL)) { VALUE(); o->tpl = v; }
        else if (IS("--context-overflow", NULL)) {
            VALUE();
            if (colloq_overflow_from_name(v, &o->overflow)) {
                fprintf(stderr, "colloq chat: bad value for --context-overflow: '%s' (expected drop-oldest, shift or "
                        "error)\n", v);
                ok = false;
            }
        }
        else if (IS("-n", "--n-predict")) { VALUE(); ok = cli_parse_int("chat", a, v, -1, 1 << 24, &o->n_predict); }
        else if (IS("--stop", NULL)) {
            VALUE();
            if (!*v || o->n_stops == MAX_STOPS) {
                fprintf(stderr, "colloq chat: --stop needs a non-empty text (at most %d of them)\n", MAX_STOPS);
                ok = false;
            } else {
                o->stops[o->n_stops++] = v;
            }
        }
        else if (IS("--verbose", "-v")) o->verbose = true;
        else { fprintf(stderr, "colloq chat: unknown option '%s'\n", a); usage(stderr); return 2; }
        if (!ok) return 2;
#undef VALUE
#undef IS
    }
    if (!o->model) { fprintf(stderr, "colloq chat: -m MODEL.gguf is required\n"); usage(stderr); return 2; }
    cli_gen_finish(&o->g);
    return 0;
}

/* ------------------------------------------------------------------ Ctrl-C */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

static void install_sigint(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;            /* no SA_RESTART: a read at the prompt returns EINTR */
    sigaction(SIGINT, &sa, NULL);
}

/* ------------------------------------------------------------------ the session */

typedef struct {
    colloq_model *m;
    colloq_seq *seq;
    colloq_sampler *smp;
    colloq_chat_fmt *fmt;
    colloq_conv *conv;
    const chat_opts *o;
    bool tty, tty_out;          /* stdin / stdout is a terminal */
    colloq_conv_stats *turns;   /* every turn's statistics, for /stats */
    int n_turns;
    int turn_base;              /* turns before turns[0] (older ones are forgotten) */
    size_t out_bytes;           /* bytes of the current answer written */
} session;

/* Answer text to stdout.  On a terminal, control characters other than newline and tab
 * are shown as ^X so that generated text cannot drive the terminal. */
static int emit_stdout(void *ud, const char *text, size_t len) {
    session *s = ud;
    if (!s->tty_out) {
        fwrite(text, 1, len, stdout);
    } else {
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)text[i];
            if ((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f) {
                putchar('^');
                putchar(ch == 0x7f ? '?' : ch + 0x40);
            } else {
                putchar(ch);
            }
        }
    }
    fflush(stdout);
    s->out_bytes += len;
    return 0;
}

static double per_s(int n, double ms) { return ms > 0 ? (double)n * 1000.0 / ms : 0.0; }

static void print_turn(int i, const colloq_conv_stats *t) {
    printf("turn %d: prompt %d tokens (reused %d, evaluated %d) in %.1f ms (%.1f tok/s); answer %d tokens in "
           "%.1f ms (%.1f tok/s), stop: %s; cache %d", i + 1, t->n_prompt, t->n_reused, t->n_evaluated, t->prompt_ms,
           per_s(t->n_evaluated, t->prompt_ms), t->n_generated, t->gen_ms, per_s(t->n_generated, t->gen_ms), t->stop,
           t->n_cache);
    if (t->n_dropped) printf("; %d messages taken out of the prompt", t->n_dropped);
    putchar('\n');
}

static void show_stats(const session *s) {
    const json_t *msgs = colloq_conv_messages(s->conv);
    printf("format: %s\n", colloq_chat_fmt_describe(s->fmt));
    printf("context: %d of %d tokens in the cache; %zu messages, %d out of the prompt; policy %s\n",
           colloq_conv_n_cache(s->conv), colloq_seq_n_ctx(s->seq), json_array_size(msgs),
           colloq_conv_n_hidden(s->conv), colloq_overflow_name(s->o->overflow));
    int first = s->n_turns > 20 ? s->n_turns - 20 : 0;
    if (first || s->turn_base) printf("(the last %d of %d turns)\n", s->n_turns - first, s->turn_base + s->n_turns);
    for (int i = first; i < s->n_turns; i++) print_turn(s->turn_base + i, &s->turns[i]);
    fflush(stdout);
}

static void do_turn(session *s, const char *text) {
    colloq_conv_stats st;
    colloq_err err = { "" };
    interrupted = 0;
    s->out_bytes = 0;
    int rc = colloq_conv_turn(s->conv, text, s->smp, emit_stdout, s, &interrupted, &st, &err);
    if (s->out_bytes || s->tty) fputc('\n', stdout);
    fflush(stdout);
    if (rc != COLLOQ_OK) {
        fprintf(stderr, "colloq chat: %s\n", err.msg);
        return;
    }
    if (st.notice[0]) fprintf(stderr, "colloq chat: %s\n", st.notice);
    if (!strcmp(st.stop, "cancelled") && !st.notice[0]) fprintf(stderr, "colloq chat: [answer interrupted]\n");
    if (s->n_turns < MAX_TURN_STATS) s->turns[s->n_turns++] = st;
    else {
        memmove(s->turns, s->turns + 1, (MAX_TURN_STATS - 1) * sizeof *s->turns);
        s->turns[MAX_TURN_STATS - 1] = st;
        s->turn_base++;
    }
    interrupted = 0;
}

static void do_save(session *s, const char *path) {
    if (!*path) { fprintf(stderr, "colloq chat: /save needs a file name\n"); return; }
    if (json_dump_file(colloq_conv_messages(s->conv), path, JSON_INDENT(2)) != 0) {
        fprintf(stderr, "colloq chat: cannot write %s: %s\n", path, strerror(errno));
        return;
    }
    printf("saved %zu messages to %s\n", json_array_size(colloq_conv_messages(s->conv)), path);
}

static void do_load(session *s, const char *path) {
    if (!*path) { fprintf(stderr, "colloq chat: /load needs a file name\n"); return; }
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) { fprintf(stderr, "colloq chat: cannot load %s: line %d: %s\n", path, je.line, je.text); return; }
    colloq_err err = { "" };
    if (colloq_conv_load(s->conv, j, &err) != COLLOQ_OK)
        fprintf(stderr, "colloq chat: cannot load %s: %s\n", path, err.msg);
    else
        printf("loaded %zu messages from %s\n", json_array_size(colloq_conv_messages(s->conv)), path);
    json_decref(j);
}

/* Returns false for /exit. */
static bool do_command(session *s, char *line) {
    char *arg = line + strcspn(line, " \t");
    if (*arg) *arg++ = 0;
    arg += strspn(arg, " \t");
    colloq_err err = { "" };
    if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) return false;
    else if (!strcmp(line, "/help")) help();
    else if (!strcmp(line, "/reset")) {
        colloq_conv_reset(s->conv);
        printf("the conversation is forgotten%s\n", colloq_conv_system(s->conv) ? " (the system prompt stays)" : "");
    } else if (!strcmp(line, "/system")) {
        if (!*arg) {
            const char *sys = colloq_conv_system(s->conv);
            printf("system prompt: %s\n", sys ? sys : "(none)");
        } else if (colloq_conv_set_system(s->conv, strcmp(arg, "--clear") ? arg : NULL, &err) != COLLOQ_OK) {
            fprintf(stderr, "colloq chat: %s\n", err.msg);
        } else {
            printf(strcmp(arg, "--clear") ? "system prompt set\n" : "system prompt removed\n");
        }
    } else if (!strcmp(line, "/save")) do_save(s, arg);
    else if (!strcmp(line, "/load")) do_load(s, arg);
    else if (!strcmp(line, "/stats")) show_stats(s);
    else fprintf(stderr, "colloq chat: unknown command '%s' (/help lists them)\n", line);
    fflush(stdout);
    return true;
}

/* Read one message (lines ending in a backslash continue).  Returns 1 with *line set,
 * 0 at the end of input, -1 when Ctrl-C interrupted the read. */
static int read_message(session *s, char **buf, size_t *cap, char **msg, size_t *msg_cap) {
    size_t n = 0;
    for (bool more = true; more;) {
        if (s->tty) { fputs(n ? "... " : "> ", stdout); fflush(stdout); }
        errno = 0;
        ssize_t k = getline(buf, cap, stdin);
        if (k < 0) {
            if (errno == EINTR || interrupted) { clearerr(stdin); interrupted = 0; return -1; }
            return n ? 1 : 0;
        }
        while (k > 0 && ((*buf)[k - 1] == '\n' || (*buf)[k - 1] == '\r')) k--;
        more = k > 0 && (*buf)[k - 1] == '\\';
        if (more) (*buf)[k - 1] = '\n';
        if (n + (size_t)k + 1 > *msg_cap) {
            size_t nc = (n + (size_t)k + 1) * 2;
            char *p = realloc(*msg, nc);
            if (!p) return 0;
            *msg = p;
            *msg_cap = nc;
        }
        memcpy(*msg + n, *buf, (size_t)k);
        n += (size_t)k;
        (*msg)[n] = 0;
    }
    return 1;
}

static void repl(session *s) {
    char *buf = NULL, *msg = NULL;
    size_t cap = 0, msg_cap = 0;
    for (;;) {
        int r = read_message(s, &buf, &cap, &msg, &msg_cap);
        if (r == 0) break;
        if (r < 0) {
            if (s->tty) { fputc('\n', stdout); fflush(stdout); }
            fprintf(stderr, "(Ctrl-C stops an answer; /exit or Ctrl-D leaves)\n");
            continue;
        }
        char *text = msg + strspn(msg, " \t\n");
        if (!*text) continue;
        if (text[0] == '/') {
            size_t k = strlen(text);
            while (k && (text[k - 1] == ' ' || text[k - 1] == '\t' || text[k - 1] == '\n')) text[--k] = 0;
            if (!do_command(s, text)) break;
            continue;
        }
        do_turn(s, msg);
    }
    if (s->tty) fputc('\n', stdout);
    free(buf);
    free(msg);
}

static void session_free(session *s) {
    colloq_conv_free(s->conv);
    colloq_chat_fmt_free(s->fmt);
    colloq_sampler_free(s->smp);
    colloq_seq_free(s->seq);
    colloq_model_free(s->m);
    free(s->turns);
}

int cmd_chat(int argc, char **argv) {
    chat_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc == 1 ? 0 : rc;
    if (o.verbose && colloq_log_level < 1) colloq_log_level = 1;

    session s;
    memset(&s, 0, sizeof s);
    s.o = &o;
    s.tty = isatty(STDIN_FILENO);
    s.tty_out = isatty(STDOUT_FILENO);
    s.turns = malloc(MAX_TURN_STATS * sizeof *s.turns);
    colloq_err err = { "" };
    colloq_model_params mp = colloq_model_default_params();
    mp.n_threads = (int)o.g.threads;
    mp.verbose = o.verbose;
    colloq_seq_params qp = colloq_seq_default_params();
    qp.n_ctx = (int)o.g.n_ctx;
    qp.cache_type = o.g.cache_type;
    colloq_conv_params cp = colloq_conv_default_params();
    cp.overflow = o.overflow;
    cp.n_predict = (int)o.n_predict;
    cp.batch = (int)o.g.batch;
    cp.stops = o.stops;
    cp.n_stops = o.n_stops;
    rc = 1;
    if (!s.turns) { fprintf(stderr, "colloq chat: out of memory\n"); goto done; }
    if (colloq_model_load(o.model, &mp, &s.m, &err) != COLLOQ_OK ||
        colloq_chat_fmt_init(s.m, o.tpl, &s.fmt, &err) != COLLOQ_OK ||
        colloq_seq_init(s.m, &qp, &s.seq, &err) != COLLOQ_OK ||
        colloq_sampler_init(&o.g.sp, colloq_model_n_vocab(s.m), &s.smp, &err) != COLLOQ_OK ||
        colloq_conv_new(s.m, s.seq, s.fmt, &cp, &s.conv, &err) != COLLOQ_OK ||
        colloq_conv_set_system(s.conv, o.system, &err) != COLLOQ_OK) {
        fprintf(stderr, "colloq chat: %s\n", err.msg);
        goto done;
    }
    fprintf(stderr, "colloq chat: %s: format: %s; context %d tokens, overflow policy %s.%s\n", o.model,
            colloq_chat_fmt_describe(s.fmt), colloq_seq_n_ctx(s.seq), colloq_overflow_name(o.overflow),
            s.tty ? " /help lists the commands." : "");
    install_sigint();
    repl(&s);
    rc = 0;
done:
    session_free(&s);
    return rc;
}
