"""sp_crosscheck.py - colloq's SentencePiece tokenizer against the sentencepiece library.

    sp_crosscheck.py SHARED_DIR TOK_BATCH COLLOQ [--n N] [--seed S]

1. The Llama 2 tokenizer.model and the llama-spm vocabulary GGUF must hold the same
   pieces, scores and types, and the model's normalizer must be the identity with a
   dummy prefix, no whitespace squeezing and byte fallback (so sentencepiece's ids are
   what colloq must produce, with nothing to undo first).
2. N seeded random strings, and 20 long ones (mixed scripts, digits, punctuation, whitespace runs, emoji
   with ZWJ sequences, literal special-token texts, random bytes made valid UTF-8 with
   U+FFFD) go through TOK_BATCH (one process, no BOS, no special parsing); the ids must
   equal sentencepiece's encode, the detokenized text must equal the input (round trip;
   a U+2581 in the input reads back as a space, as in sentencepiece, since that is how
   spaces are stored) and sentencepiece's decode of the same ids.
3. A few strings go through `COLLOQ tokenize` (BOS added, --special, --no-bos, -f, stdin).

Exits 0 when everything agrees, 1 on any difference, 77 when the shared data or the
sentencepiece module is missing.
"""

import os
import random
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_reader  # noqa: E402

SKIP = 77


def varint(buf, pos):
    v = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, pos


def proto_fields(buf):
    """Top-level fields of a protobuf message: {number: [value, ...]}."""
    out, pos = {}, 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, pos = varint(buf, pos)
        elif wt == 1:
            val, pos = buf[pos:pos + 8], pos + 8
        elif wt == 2:
            n, pos = varint(buf, pos)
            val, pos = buf[pos:pos + n], pos + n
        elif wt == 5:
            val, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError("unsupported protobuf wire type %d" % wt)
        out.setdefault(num, []).append(val)
    return out


def check_model_spec(path):
    """The normalizer and trainer settings that decide how sentencepiece encodes."""
    with open(path, "rb") as fp:
        model = proto_fields(fp.read())
    norm = proto_fields(model[3][0])
    trainer = proto_fields(model[2][0])
    spec = {
        "normalizer": norm.get(1, [b""])[0].decode(),
        "precompiled_charsmap_bytes": len(norm.get(2, [b""])[0]),
        "add_dummy_prefix": bool(norm.get(3, [1])[0]),
        "remove_extra_whitespaces": bool(norm.get(4, [1])[0]),
        "escape_whitespaces": bool(norm.get(5, [1])[0]),
        "model_type": {1: "unigram", 2: "bpe", 3: "word", 4: "char"}.get(trainer.get(3, [1])[0]),
        "byte_fallback": bool(trainer.get(35, [0])[0]),
    }
    want = {"normalizer": "identity", "precompiled_charsmap_bytes": 0, "add_dummy_prefix": True,
            "remove_extra_whitespaces": False, "escape_whitespaces": True, "model_type": "bpe",
            "byte_fallback": True}
    print("sentencepiece model spec:", spec)
    bad = {k: (spec[k], want[k]) for k in want if spec[k] != want[k]}
    if bad:
        print("FAIL: model spec differs from what colloq implements:", bad)
        return False
    return True


def check_vocab_agrees(sp, vocab):
    toks = vocab.get("tokenizer.ggml.tokens")
    scores = vocab.get("tokenizer.ggml.scores")
    types = vocab.get("tokenizer.ggml.token_type")
    if len(toks) != sp.vocab_size():
        print("FAIL: %d pieces in the model, %d tokens in the GGUF" % (sp.vocab_size(), len(toks)))
        return False
    bad = 0
    for i in range(sp.vocab_size()):
        t = 1
        if sp.is_unknown(i):
            t = 2
        elif sp.is_control(i):
            t = 3
        elif sp.is_unused(i):
            t = 5
        elif sp.is_byte(i):
            t = 6
        if sp.id_to_piece(i) != toks[i] or sp.get_score(i) != scores[i] or t != types[i]:
            bad += 1
            if bad <= 5:
                print("FAIL: token %d: model %r %g type %d, GGUF %r %g type %d"
                      % (i, sp.id_to_piece(i), sp.get_score(i), t, toks[i], scores[i], types[i]))
    if bad:
        print("FAIL: %d tokens differ" % bad)
        return False
    print("vocabularies agree: %d pieces, scores and types" % len(toks))
    return True


# ---- random strings ----

SCRIPTS = {
    "latin": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéèêëàâäôöûüçñßøåæœÉÀÇÑ",
    "cyrillic": "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ",
    "cjk": "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单手ひらがなカタカナ한국어",
    "arabic": "ابتثجحخدذرزسشصضطظعغفقكلمنهويءآأؤإئةى٠١٢٣٤٥٦٧٨٩،؛؟",
    "devanagari": "अआइईउऊऋएऐओऔकखगघङचछजझञटठडढणतथदधनपफबभमयरलवशषसहािीुूृेैोौंःँ़्०१२३४५६७८९।",
    "greek_thai_khmer": "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΩกขคงจฉชซญดตถทนบปผพฟภมยรลวศษสหอฮะาิีึืุูเแโใไ่้๊๋កខគឃងចឆជឈញដឋឌឍណតថទធនបផពភមយរលវសហឡអាិីឹឺុូួើឿៀេែៃោៅំះ់៌៍៎៏័្",
    "digits": "0123456789",
    "punct": "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»—–…‘’“”•·§¶©®™°±×÷€£¥¢",
}
WHITESPACE = [" ", "  ", "   ", "    ", "\t", "\n", "\n\n", "\r\n", " \t ", "\t\t", "        ", "\u3000", "\u00a0"]
EMOJI = [
    "🦙", "🚀", "😁", "👍", "👍🏽", "❤️", "✅", "🇫🇷", "🇯🇵", "😶‍🌫️", "👨‍👩‍👧‍👦", "🏳️‍🌈", "👩🏻‍💻", "🧑‍🚀",
    "☕", "⭐", "🎉", "🤖", "\u200d", "\ufe0f",
]
LITERALS = ["<s>", "</s>", "<unk>", "<0x0A>", "<0x41>", "<|im_end|>", "[INST]", "<<SYS>>", "\u2581", "\u2581\u2581"]
WORDS = ["the", "Hello", "world", "tokenizer", "llama", "ing", "tion", "Bulgarian", "нещо", "България",
         "中文", "日本語", "العربية", "हिन्दी", "12345", "3.14159", "http://example.com/a?b=c", "e-mail",
         "don't", "C'est", "naïve", "Straße", "ﬁ", "Ⅻ", "①", "x²", "ｆｕｌｌｗｉｄｔｈ"]


def random_codepoint(rng):
    while True:
        cp = rng.choice([rng.randrange(0x20, 0x800), rng.randrange(0x800, 0x10000), rng.randrange(0x10000, 0x110000)])
        if not 0xD800 <= cp <= 0xDFFF:
            return chr(cp)


def random_piece(rng):
    r = rng.random()
    if r < 0.40:
        script = rng.choice(list(SCRIPTS))
        return "".join(rng.choice(SCRIPTS[script]) for _ in range(rng.randint(1, 8)))
    if r < 0.55:
        return rng.choice(WHITESPACE)
    if r < 0.65:
        return rng.choice(WORDS)
    if r < 0.73:
        return "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 3)))
    if r < 0.78:
        return rng.choice(LITERALS)
    if r < 0.84:
        return random_codepoint(rng)
    if r < 0.90:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 6))).decode("utf-8", errors="replace")
    if r < 0.94:
        return chr(rng.randrange(0, 0x20))
    return rng.choice(SCRIPTS["digits"]) * rng.randint(1, 12)


def random_string(rng):
    k = rng.choice([0, 1, 1, 2, 3, 5, 8, 13, 21, 40])
    parts = []
    for _ in range(k):
        parts.append(random_piece(rng))
        if rng.random() < 0.5:
            parts.append(" ")
    return "".join(parts)


def long_string(rng):
    return "".join(random_piece(rng) + rng.choice(["", " "]) for _ in range(rng.randint(200, 600)))


def fixed_strings():
    return ["", " ", "  ", "\t", "\n", "Hello world", " Hello world", "Hello  world ", "   leading",
            "trailing   ", "<s>", "</s>hi<s>", "\u2581", "a\u2581b", "\x00", "a\x00b", "\ufffd", "\U0010ffff",
            "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～", "3333333333", "!!!!!!",
            "😶‍🌫️ 👨‍👩‍👧‍👦", "\r\n\r\n", "ied 4 ½ months", "Führer"]


# ---- runs ----

def run_batch(tok_batch, vocab_path, texts):
    with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as fp:
        for t in texts:
            b = t.encode("utf-8")
            fp.write(struct.pack("<I", len(b)))
            fp.write(b)
        name = fp.name
    try:
        res = subprocess.run([tok_batch, vocab_path, name], capture_output=True, timeout=600)
    finally:
        os.unlink(name)
    if res.returncode != 0:
        print("FAIL: tok_batch exited %d: %s" % (res.returncode, res.stderr.decode(errors="replace")))
        return None
    lines = res.stdout.decode().split("\n")[:-1]
    if len(lines) != len(texts):
        print("FAIL: tok_batch gave %d lines for %d texts" % (len(lines), len(texts)))
        return None
    out = []
    for line in lines:
        ids, hx = line.split("\t")
        out.append(([int(x) for x in ids.split()], bytes.fromhex(hx)))
    return out


def run_cli(colloq, vocab_path, args, stdin=None):
    res = subprocess.run([colloq, "tokenize", "-m", vocab_path] + args, input=stdin, capture_output=True, timeout=120)
    if res.returncode != 0:
        return None, res.stderr.decode(errors="replace")
    return res.stdout.decode(), None


def check_cli(colloq, vocab_path, sp):
    fails = 0

    def expect(args, want, stdin=None):
        nonlocal fails
        got, err = run_cli(colloq, vocab_path, args, stdin)
        want_s = "[" + ", ".join(str(i) for i in want) + "]\n"
        if got != want_s:
            fails += 1
            print("FAIL: colloq tokenize %s: got %r (%s), want %r" % (args, got, err, want_s))

    for text in ["Hello world", " this is 🦙.cpp", "нещо на Български", "a\tb\nc"]:
        expect(["-p", text], [1] + sp.encode(text))
        expect(["-p", text, "--no-bos"], sp.encode(text))
        expect([], [1] + sp.encode(text), stdin=text.encode())
    with tempfile.NamedTemporaryFile(suffix=".txt", delete=False) as fp:
        fp.write("file\x00with NUL\n".encode())
        name = fp.name
    try:
        expect(["-f", name], [1] + sp.encode("file\x00with NUL\n"))
    finally:
        os.unlink(name)
    # --special: control texts become their ids; a space prefix starts each text segment
    expect(["-p", "<s>hi</s>", "--special"], [1, 1] + sp.encode("hi") + [2])
    expect(["-p", "<s>hi</s>"], [1] + sp.encode("<s>hi</s>"))
    # errors: usage -> 2, missing file -> 1
    for args, code in ((["-p"], 2), (["--bogus"], 2)):
        res = subprocess.run([colloq, "tokenize", "-m", vocab_path] + args, capture_output=True, timeout=60)
        if res.returncode != code or not res.stderr:
            fails += 1
            print("FAIL: colloq tokenize %s exited %d, want %d with a message" % (args, res.returncode, code))
    res = subprocess.run([colloq, "tokenize", "-m", vocab_path + ".missing", "-p", "x"], capture_output=True, timeout=60)
    if res.returncode != 1 or b"missing" not in res.stderr:
        fails += 1
        print("FAIL: colloq tokenize on a missing file exited %d: %r" % (res.returncode, res.stderr))
    print("colloq tokenize: %s" % ("ok" if not fails else "%d failures" % fails))
    return fails == 0


def main():
    args = sys.argv[1:]
    n, seed = 3000, 1234
    if "--n" in args:
        i = args.index("--n")
        n = int(args[i + 1])
        del args[i:i + 2]
    if "--seed" in args:
        i = args.index("--seed")
        seed = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 3:
        print(__doc__)
        return 2
    shared, tok_batch, colloq = args
    model_path = os.path.join(shared, "testdata", "tokenizer", "llama2-tokenizer.model")
    vocab_path = os.path.join(shared, "testdata", "vocab", "ggml-vocab-llama-spm.gguf")
    for p in (model_path, vocab_path):
        if not os.path.exists(p):
            print("sp_crosscheck: %s absent - skipped" % p)
            return SKIP
    try:
        import sentencepiece
    except ImportError:
        print("sp_crosscheck: python sentencepiece module absent - skipped")
        return SKIP

    sp = sentencepiece.SentencePieceProcessor(model_file=model_path)
    ok = check_model_spec(model_path)
    ok = check_vocab_agrees(sp, gguf_reader.open_gguf(vocab_path)) and ok

    rng = random.Random(seed)
    texts = fixed_strings() + [random_string(rng) for _ in range(n)] + [long_string(rng) for _ in range(20)]
    got = run_batch(tok_batch, vocab_path, texts)
    if got is None:
        return 1
    id_fail = rt_fail = dec_fail = 0
    for text, (ids, detok) in zip(texts, got):
        want = sp.encode(text)
        if ids != want:
            id_fail += 1
            if id_fail <= 10:
                print("FAIL ids for %r:\n  colloq        %s\n  sentencepiece %s" % (text, ids, want))
        # U+2581 is how spaces are stored, so one in the text reads back as " "
        if detok != text.replace("\u2581", " ").encode("utf-8"):
            rt_fail += 1
            if rt_fail <= 10:
                print("FAIL round trip for %r: got %r" % (text, detok.decode("utf-8", errors="replace")))
        if detok.decode("utf-8", errors="replace") != sp.decode(ids):
            dec_fail += 1
            if dec_fail <= 10:
                print("FAIL decode of %s: colloq %r, sentencepiece %r" % (ids, detok, sp.decode(ids)))
    total = len(texts)
    print("ids equal to sentencepiece: %d/%d" % (total - id_fail, total))
    print("round trip detokenize(tokenize(s)) == s: %d/%d (U+2581 in s read as a space)"
          % (total - rt_fail, total))
    print("detokenize equal to sentencepiece decode: %d/%d" % (total - dec_fail, total))
    ok = ok and not id_fail and not rt_fail and not dec_fail
    ok = check_cli(colloq, vocab_path, sp) and ok
    print("sp_crosscheck: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
