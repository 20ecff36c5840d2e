/*
 * api.c - the tokenizer part of the public API: thin wrappers that forward
 * colloq_token_* / colloq_tokenize to the model's vocabulary (tokenizer.h).
 * No logic of its own beyond argument checks.
 */
#include "model.h"
#include "util.h"

colloq_token colloq_token_bos(const colloq_model *m) { return m ? colloq_vocab_bos(m->vocab) : -1; }
colloq_token colloq_token_eos(const colloq_model *m) { return m ? colloq_vocab_eos(m->vocab) : -1; }
bool colloq_token_is_eog(const colloq_model *m, colloq_token t) { return m && colloq_vocab_is_eog(m->vocab, t); }
bool colloq_model_add_bos(const colloq_model *m) { return m && colloq_vocab_add_bos(m->vocab); }

int colloq_tokenize(const colloq_model *m, const char *text, size_t len, bool add_bos,
                    bool parse_special, colloq_token *out, int cap, colloq_err *err) {
    if (!m || (!text && len) || cap < 0 || (!out && cap > 0))
        return colloq_seterr(err, COLLOQ_ERR_ARG, "colloq_tokenize: bad arguments");
    return colloq_vocab_tokenize(m->vocab, text ? text : "", len, add_bos, parse_special, out, cap, err);
}

int colloq_token_to_piece(const colloq_model *m, colloq_token t, bool render_special, char *buf, int cap) {
    if (!m || cap < 0 || (!buf && cap > 0)) return COLLOQ_ERR_ARG;
    return colloq_vocab_piece(m->vocab, t, render_special, buf, cap);
}
