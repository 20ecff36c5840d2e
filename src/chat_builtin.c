/*
 * chat_builtin.c - the built-in named chat formats (for model files that carry no
 * template, or the wrong one) as Jinja sources, each reproducing its model family's
 * documented prompt layout, and the identity rules that pick one for a file without a
 * template (by name, special tokens, architecture).  Renders nothing itself (chat.c
 * does) and never picks a format when no rule fits.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "chat_internal.h"

/* Every source is one line of Jinja (no raw newlines between tags, so trim_blocks and
 * lstrip_blocks change nothing); newlines appear only inside string literals. */
#define ROLE_ERROR(fmt) "{{ raise_exception(\"" fmt ": unsupported role '\" ~ m.role ~ \"'\") }}"
#define ALTERNATE(fmt)                                                                              \
    "{% if (m.role == 'user') != (loop.index0 % 2 == 0) %}"                                         \
    "{{ raise_exception('" fmt ": after an optional system message, roles must alternate "          \
    "user/assistant/user/...') }}{% endif %}"

/* OpenChat 3.5: "GPT4 Correct User: ...<|end_of_turn|>GPT4 Correct Assistant:" */
static const char src_openchat[] =
    "{{ bos_token }}"
    "{% for m in messages %}"
    "{% if m.role == 'user' %}{% set label = 'User' %}"
    "{% elif m.role == 'assistant' %}{% set label = 'Assistant' %}"
    "{% elif m.role == 'system' %}{% set label = 'System' %}"
    "{% else %}" ROLE_ERROR("openchat") "{% endif %}"
    "{{ 'GPT4 Correct ' ~ label ~ ': ' ~ m.content ~ '<|end_of_turn|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'GPT4 Correct Assistant:' }}{% endif %}";

/* Intel neural-chat: "### System:\n...\n### User:\n...\n### Assistant:\n" */
static const char src_neural_chat[] =
    "{% for m in messages %}"
    "{% if m.role == 'system' %}{{ '### System:\n' ~ m.content ~ '\n' }}"
    "{% elif m.role == 'user' %}{{ '### User:\n' ~ m.content ~ '\n' }}"
    "{% elif m.role == 'assistant' %}{{ '### Assistant:\n' ~ m.content ~ eos_token ~ '\n' }}"
    "{% else %}" ROLE_ERROR("neural-chat") "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '### Assistant:\n' }}{% endif %}";

/* Llama 2 chat: "<s>[INST] <<SYS>>\n...\n<</SYS>>\n\nuser [/INST] answer </s><s>[INST] ..." */
static const char src_llama2[] =
    "{% if messages and messages[0].role == 'system' %}"
    "{% set sys = messages[0].content %}{% set has_sys = true %}{% set turns = messages[1:] %}"
    "{% else %}{% set has_sys = false %}{% set turns = messages %}{% endif %}"
    "{% for m in turns %}"
    ALTERNATE("llama2")
    "{% if m.role == 'user' %}"
    "{% if loop.first and has_sys %}{% set text = '<<SYS>>\n' ~ sys ~ '\n<</SYS>>\n\n' ~ m.content %}"
    "{% else %}{% set text = m.content %}{% endif %}"
    "{{ bos_token ~ '[INST] ' ~ text | trim ~ ' [/INST]' }}"
    "{% elif m.role == 'assistant' %}{{ ' ' ~ m.content | trim ~ ' ' ~ eos_token }}"
    "{% else %}" ROLE_ERROR("llama2") "{% endif %}"
    "{% endfor %}";

/* Mistral Instruct: "<s>[INST] user [/INST]answer</s> [INST] ..."; a system message is
 * put in front of the first user message (the format has no system turn). */
static const char src_mistral[] =
    "{{ bos_token }}"
    "{% if messages and messages[0].role == 'system' %}"
    "{% set sys = messages[0].content %}{% set turns = messages[1:] %}"
    "{% else %}{% set sys = none %}{% set turns = messages %}{% endif %}"
    "{% if not turns and sys is not none %}{{ '[INST] ' ~ sys ~ ' [/INST]' }}{% endif %}"
    "{% for m in turns %}"
    ALTERNATE("mistral")
    "{% if m.role == 'user' %}"
    "{% if loop.first and sys is not none %}{{ '[INST] ' ~ sys ~ '\n\n' ~ m.content ~ ' [/INST]' }}"
    "{% else %}{{ '[INST] ' ~ m.content ~ ' [/INST]' }}{% endif %}"
    "{% elif m.role == 'assistant' %}{{ m.content ~ eos_token ~ ' ' }}"
    "{% else %}" ROLE_ERROR("mistral") "{% endif %}"
    "{% endfor %}";

/* ChatML: "<|im_start|>role\ncontent<|im_end|>\n" ... "<|im_start|>assistant\n" */
static const char src_chatml[] =
    "{% for m in messages %}"
    "{{ '<|im_start|>' ~ m.role ~ '\n' ~ m.content ~ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/* Zephyr: "<|system|>\n...</s>\n<|user|>\n...</s>\n<|assistant|>\n" */
static const char src_zephyr[] =
    "{% for m in messages %}"
    "{% if m.role == 'system' or m.role == 'user' or m.role == 'assistant' %}"
    "{{ '<|' ~ m.role ~ '|>\n' ~ m.content ~ eos_token ~ '\n' }}"
    "{% else %}" ROLE_ERROR("zephyr") "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}";

/* ChatGLM3: "[gMASK]sop<|system|>\n ...<|user|>\n ...<|assistant|>" (the space is the one
 * its tokenizer puts in front of each message). */
static const char src_chatglm3[] =
    "{{ '[gMASK]sop' }}"
    "{% for m in messages %}"
    "{% if m.role == 'system' or m.role == 'user' or m.role == 'assistant' or m.role == 'observation' %}"
    "{{ '<|' ~ m.role ~ '|>\n ' ~ m.content }}"
    "{% else %}" ROLE_ERROR("chatglm3") "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";

/* Baichuan 2 chat: system text as is, then "<reserved_106>user<reserved_107>answer". */
static const char src_baichuan2[] =
    "{% for m in messages %}"
    "{% if m.role == 'system' %}{{ m.content }}"
    "{% elif m.role == 'user' %}{{ '<reserved_106>' ~ m.content }}"
    "{% elif m.role == 'assistant' %}{{ '<reserved_107>' ~ m.content }}"
    "{% else %}" ROLE_ERROR("baichuan2") "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<reserved_107>' }}{% endif %}";

/* Falcon chat: "System: ...\nUser: ...\nFalcon: ...\n" ... "Falcon:" */
static const char src_falcon[] =
    "{% for m in messages %}"
    "{% if m.role == 'system' %}{{ 'System: ' ~ m.content ~ '\n' }}"
    "{% elif m.role == 'user' %}{{ 'User: ' ~ m.content ~ '\n' }}"
    "{% elif m.role == 'assistant' %}{{ 'Falcon: ' ~ m.content ~ '\n' }}"
    "{% else %}" ROLE_ERROR("falcon") "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Falcon:' }}{% endif %}";

/* Phi-3 / Phi-3.5: "<|system|>\n...<|end|>\n<|user|>\n...<|end|>\n<|assistant|>\n"; an
 * empty system message is left out; without a generation prompt the text ends with EOS. */
static const char src_phi3[] =
    "{% for m in messages %}"
    "{% if m.role == 'system' %}{% if m.content %}{{ '<|system|>\n' ~ m.content ~ '<|end|>\n' }}{% endif %}"
    "{% elif m.role == 'user' or m.role == 'assistant' %}{{ '<|' ~ m.role ~ '|>\n' ~ m.content ~ '<|end|>\n' }}"
    "{% else %}" ROLE_ERROR("phi3") "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}";

/* Llama 3 Instruct: "<|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>" */
static const char src_llama3[] =
    "{{ bos_token }}"
    "{% for m in messages %}"
    "{{ '<|start_header_id|>' ~ m.role ~ '<|end_header_id|>\n\n' ~ m.content | trim ~ '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

/* Gemma: "<bos><start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n"; the format has
 * no system turn, so a system message goes in front of the first user message. */
static const char src_gemma[] =
    "{{ bos_token }}"
    "{% if messages and messages[0].role == 'system' %}"
    "{% set sys = messages[0].content | trim %}{% set turns = messages[1:] %}"
    "{% else %}{% set sys = none %}{% set turns = messages %}{% endif %}"
    "{% if not turns and sys is not none %}{{ '<start_of_turn>user\n' ~ sys ~ '<end_of_turn>\n' }}{% endif %}"
    "{% for m in turns %}"
    ALTERNATE("gemma")
    "{% if m.role == 'assistant' %}{% set role = 'model' %}"
    "{% elif m.role == 'user' %}{% set role = 'user' %}"
    "{% else %}" ROLE_ERROR("gemma") "{% endif %}"
    "{% set text = m.content | trim %}"
    "{% if loop.first and sys is not none %}{% set text = sys ~ '\n\n' ~ text %}{% endif %}"
    "{{ '<start_of_turn>' ~ role ~ '\n' ~ text ~ '<end_of_turn>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}";

static const char *const stops_openchat[] = { "<|end_of_turn|>", "GPT4 Correct User:", NULL };
static const char *const stops_neural[] = { "</s>", "\n### User:", "### User:", NULL };
static const char *const stops_inst[] = { "</s>", "[INST]", NULL };
static const char *const stops_chatml[] = { "<|im_end|>", "<|im_start|>", NULL };
static const char *const stops_zephyr[] = { "</s>", "<|user|>", "<|system|>", NULL };
static const char *const stops_chatglm3[] = { "<|user|>", "<|observation|>", NULL };
static const char *const stops_baichuan2[] = { "<reserved_106>", NULL };
static const char *const stops_falcon[] = { "\nUser:", NULL };
static const char *const stops_phi3[] = { "<|end|>", "<|user|>", "<|endoftext|>", NULL };
static const char *const stops_llama3[] = { "<|eot_id|>", "<|eom_id|>", "<|start_header_id|>", NULL };
static const char *const stops_gemma[] = { "<end_of_turn>", "<start_of_turn>", NULL };

static const chat_builtin builtins[] = {
    { "openchat",    "OpenChat 3.5",                  src_openchat,    stops_openchat,  "<s>", "</s>" },
    { "neural-chat", "Intel neural-chat",             src_neural_chat, stops_neural,    "<s>", "</s>" },
    { "llama2",      "Llama 2 chat",                  src_llama2,      stops_inst,      "<s>", "</s>" },
    { "mistral",     "Mistral / Mixtral Instruct",    src_mistral,     stops_inst,      "<s>", "</s>" },
    { "chatml",      "ChatML models (Qwen, Hermes, ...)", src_chatml,  stops_chatml,    "",    "<|im_end|>" },
    { "zephyr",      "Zephyr",                        src_zephyr,      stops_zephyr,    "<s>", "</s>" },
    { "chatglm3",    "ChatGLM3",                      src_chatglm3,    stops_chatglm3,  "",    "</s>" },
    { "baichuan2",   "Baichuan 2 chat",               src_baichuan2,   stops_baichuan2, "<s>", "</s>" },
    { "falcon",      "Falcon chat / instruct",        src_falcon,      stops_falcon,    "",    "<|endoftext|>" },
    { "phi3",        "Phi-3 / Phi-3.5 instruct",      src_phi3,        stops_phi3,      "<s>", "<|endoftext|>" },
    { "llama3",      "Llama 3 / 3.x Instruct",        src_llama3,      stops_llama3,    "<|begin_of_text|>", "<|eot_id|>" },
    { "gemma",       "Gemma / Gemma 2 instruct",      src_gemma,       stops_gemma,     "<bos>", "<eos>" },
};
enum { N_BUILTINS = (int)(sizeof builtins / sizeof builtins[0]) };

int chat_builtin_count(void) { return N_BUILTINS; }

const chat_builtin *chat_builtin_at(int i) { return i >= 0 && i < N_BUILTINS ? &builtins[i] : NULL; }

const chat_builtin *chat_builtin_find(const char *name) {
    for (int i = 0; name && i < N_BUILTINS; i++)
        if (!strcmp(builtins[i].name, name)) return &builtins[i];
    return NULL;
}

const char *chat_builtin_names(void) {
    static const char names[] =
        "openchat, neural-chat, llama2, mistral, chatml, zephyr, chatglm3, baichuan2, falcon, phi3, llama3, gemma";
    return names;
}

/* ------------------------------------------------------------------ identity rules */

/* Lower-case s into buf with '_' and ' ' read as '-'. */
static void normalise(const char *s, char *buf, size_t cap) {
    size_t n = 0;
    for (; s && *s && n + 1 < cap; s++) {
        char c = (char)tolower((unsigned char)*s);
        buf[n++] = c == '_' || c == ' ' ? '-' : c;
    }
    buf[n] = 0;
}

/* A name rule: the normalised name contains `word` and (when set) one of `also`. */
typedef struct {
    const char *word;
    const char *also[3];
    const char *format;
} name_rule;

/* Fine-tunes before the families they are built on (neural-chat and openchat are Mistral
 * models; a plain "mistral" without "instruct" is a base model with no chat format). */
static const name_rule name_rules[] = {
    { "openchat",    { NULL },                          "openchat" },
    { "neural-chat", { NULL },                          "neural-chat" },
    { "neuralchat",  { NULL },                          "neural-chat" },
    { "zephyr",      { NULL },                          "zephyr" },
    { "chatglm3",    { NULL },                          "chatglm3" },
    { "baichuan2",   { NULL },                          "baichuan2" },
    { "baichuan-2",  { NULL },                          "baichuan2" },
    { "phi-3",       { NULL },                          "phi3" },
    { "phi3",        { NULL },                          "phi3" },
    { "gemma",       { NULL },                          "gemma" },
    { "qwen",        { NULL },                          "chatml" },
    { "llama-3",     { "instruct", "chat" },            "llama3" },
    { "llama3",      { "instruct", "chat" },            "llama3" },
    { "llama-2",     { "chat" },                        "llama2" },
    { "llama2",      { "chat" },                        "llama2" },
    { "mistral",     { "instruct" },                    "mistral" },
    { "mixtral",     { "instruct" },                    "mistral" },
    { "falcon",      { "chat", "instruct" },            "falcon" },
};

/* A token rule: the vocabulary has every listed token text. */
typedef struct {
    const char *tokens[3];
    const char *format;
} token_rule;

static const token_rule token_rules[] = {
    { { "<|end_of_turn|>" },                                  "openchat" },
    { { "<|im_start|>", "<|im_end|>" },                       "chatml" },
    { { "<|start_header_id|>", "<|eot_id|>" },                "llama3" },
    { { "<start_of_turn>", "<end_of_turn>" },                 "gemma" },
    { { "<|user|>", "<|assistant|>", "<|end|>" },             "phi3" },
    { { "<|user|>", "<|observation|>" },                      "chatglm3" },
    { { "<reserved_106>", "<reserved_107>" },                 "baichuan2" },
    { { "[INST]", "[/INST]" },                                "mistral" },
};

typedef struct { const char *arch, *format; } arch_rule;

static const arch_rule arch_rules[] = {
    { "phi3", "phi3" }, { "gemma", "gemma" }, { "gemma2", "gemma" }, { "chatglm", "chatglm3" },
    { "baichuan", "baichuan2" }, { "falcon", "falcon" },
};

static const chat_builtin *by_name(const char *name, const char *key, char *why, size_t cap) {
    char norm[256];
    normalise(name, norm, sizeof norm);
    if (!norm[0]) return NULL;
    for (size_t i = 0; i < sizeof name_rules / sizeof name_rules[0]; i++) {
        const name_rule *r = &name_rules[i];
        if (!strstr(norm, r->word)) continue;
        bool ok = !r->also[0];
        for (int j = 0; j < 3 && r->also[j] && !ok; j++) ok = strstr(norm, r->also[j]) != NULL;
        if (!ok) continue;
        snprintf(why, cap, "chosen by %s '%s'", key, name);
        return chat_builtin_find(r->format);
    }
    return NULL;
}

const chat_builtin *chat_builtin_choose(const chat_identity *id, char *why, size_t cap) {
    if (!id) return NULL;
    const chat_builtin *b = NULL;
    if ((b = by_name(id->name, "general.name", why, cap))) return b;
    if ((b = by_name(id->basename, "general.basename", why, cap))) return b;
    if (id->vocab) {
        for (size_t i = 0; i < sizeof token_rules / sizeof token_rules[0]; i++) {
            const token_rule *r = &token_rules[i];
            bool all = true;
            for (int j = 0; j < 3 && r->tokens[j] && all; j++) all = colloq_vocab_find(id->vocab, r->tokens[j]) >= 0;
            if (!all) continue;
            snprintf(why, cap, "chosen by its special token%s %s%s%s%s%s", r->tokens[1] ? "s" : "", r->tokens[0],
                     r->tokens[1] ? ", " : "", r->tokens[1] ? r->tokens[1] : "", r->tokens[2] ? ", " : "",
                     r->tokens[2] ? r->tokens[2] : "");
            return chat_builtin_find(r->format);
        }
    }
    for (size_t i = 0; id->arch && i < sizeof arch_rules / sizeof arch_rules[0]; i++) {
        if (strcmp(id->arch, arch_rules[i].arch)) continue;
        snprintf(why, cap, "chosen by its architecture '%s'", id->arch);
        return chat_builtin_find(arch_rules[i].format);
    }
    return NULL;
}
