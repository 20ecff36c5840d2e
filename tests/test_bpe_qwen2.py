#!/usr/bin/env python3
"""Checks the qwen2 pre-tokenizer (src/tok_bpe_pre.c) without a qwen2 vocabulary.

  test_bpe_qwen2.py regex  TEST_BPE_PRE             differential test on random text
  test_bpe_qwen2.py golden TEST_BPE_PRE VOCAB_DIR   the same on the golden inputs, plus
                                                    consistency of ggml-vocab-qwen2.gguf.out

regex: the published qwen2 pattern is re-implemented with Python's `re` (a
different regex engine), with \\p{L} / \\p{N} expanded into character classes from
Python's own unicodedata tables and \\s from str.isspace() (minus U+001C..U+001F,
which Unicode White_Space excludes).  Thousands of random strings mixing the
characters that matter (contractions, digits of several scripts, letters,
combining marks, emoji, ASCII and Unicode whitespace, CR/LF, controls) must be cut
into exactly the same chunks by the C code (PCRE2) and by this implementation.

golden: the 46 inputs of ggml-vocab-qwen2.gguf.inp are cut by the C code (and must
agree with the Python cut), then the expected ids are checked against the chunks:
  - every chunk yields at least one id and at most one id per byte, so a split
    that is finer than the reference tokenizer's (a chunk boundary inside one of
    its tokens) makes some input impossible to segment;
  - a chunk of one byte is exactly that byte's token, whose id in a GPT-2-style
    byte-level vocabulary is the byte's position in the bytes_to_unicode order
    (this pins e.g. every digit, since qwen2 splits digits one by one);
  - identical chunks map to identical id runs across all inputs, and an id that
    stands alone for a chunk always stands for the same text.
A segmentation satisfying all of this must exist.  What it cannot prove: that a
chunk is not coarser than the reference (two reference chunks joined); the
regex comparison above covers that.
"""
import random
import subprocess
import sys
import unicodedata

SKIP = 77


def class_body(pred_sets):
    """Character-class bodies (ranges with \\U escapes) for each category predicate."""
    starts = {k: None for k in pred_sets}
    ranges = {k: [] for k in pred_sets}
    for c in range(0x110001):
        ch = chr(c) if c <= 0x10FFFF else None
        for k, pred in pred_sets.items():
            inside = ch is not None and pred(ch)
            if inside and starts[k] is None:
                starts[k] = c
            elif not inside and starts[k] is not None:
                ranges[k].append((starts[k], c - 1))
                starts[k] = None
    out = {}
    for k, rs in ranges.items():
        parts = []
        for a, b in rs:
            parts.append("\\U%08x" % a if a == b else "\\U%08x-\\U%08x" % (a, b))
        out[k] = "".join(parts)
    return out


def build_qwen2_regex():
    import re
    bodies = class_body({
        "L": lambda ch: unicodedata.category(ch) in ("Lu", "Ll", "Lt", "Lm", "Lo"),
        "N": lambda ch: unicodedata.category(ch) in ("Nd", "Nl", "No"),
        "WS": lambda ch: ch.isspace() and not ("\x1c" <= ch <= "\x1f"),
    })
    L, N, WS = bodies["L"], bodies["N"], bodies["WS"]
    pattern = (
        r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
        "|[^\\r\\n" + L + N + "]?[" + L + "]+"
        "|[" + N + "]"
        "| ?[^" + WS + L + N + "]+[\\r\\n]*"
        "|[" + WS + "]*[\\r\\n]+"
        "|[" + WS + "]+(?![^" + WS + "])"
        "|[" + WS + "]+"
    )
    return re.compile(pattern)


def py_split(rx, s):
    out, last = [], 0
    for m in rx.finditer(s):
        if m.start() == m.end():
            continue
        if m.start() > last:
            out.append(s[last:m.start()])
        out.append(m.group())
        last = m.end()
    if last < len(s):
        out.append(s[last:])
    return out


def c_split(exe, texts):
    """Chunks (as bytes) of each text according to `test_bpe_pre split qwen2`."""
    data = bytearray()
    blobs = [t.encode("utf-8", "surrogatepass") for t in texts]
    for b in blobs:
        data += b"%d\n" % len(b) + b
    res = subprocess.run([exe, "split", "qwen2"], input=bytes(data), stdout=subprocess.PIPE,
                         check=True)
    lines = res.stdout.decode().split("\n")
    out = []
    for b, line in zip(blobs, lines):
        lens = [int(x) for x in line.split()]
        chunks, at = [], 0
        for n in lens:
            chunks.append(b[at:at + n])
            at += n
        if at != len(b):
            raise SystemExit("C chunks do not cover the input")
        out.append(chunks)
    if len(out) != len(texts):
        raise SystemExit("C splitter returned %d records for %d" % (len(out), len(texts)))
    return out


ATOMS = (
    list("abcxyzABCXYZ") + ["'s", "'S", "'t", "'re", "'RE", "'ve", "'Ve", "'m", "'ll", "'lL", "'d",
                           "'D", "'", "''", "'x"]
    + list("0123456789") + ["123", "4567"]
    + [" ", "  ", "   ", "\t", "\n", "\r", "\r\n", "\n\n", "\x0b", "\x0c"]
    + list("!?.,;:-_()[]{}<>/\\\"#$%&*+=@^`|~")
    + ["é", "ü", "ß", "Ω", "ж", "Щ", "ǅ", "ʰ", "ﬁ", "ı", "İ", "ſ"]       # letters, titlecase, modifier
    + ["ء", "ש", "क", "ि", "्", "ក", "ា", "ំ", "世", "界", "한", "グ", "ー"]  # scripts, marks
    + ["🦙", "😶", "\u200d", "🌫", "\ufe0f", "✅", "😁", "～", "…", "«", "»", "¿"]
    + ["٣", "३", "３", "²", "½", "Ⅻ", "𝟙", "〇", "৪"]                     # N of all kinds
    + ["\u00a0", "\u3000", "\u2028", "\u2029", "\u0085", "\u1680", "\u2003", "\u202f",
       "\u205f", "\u200b", "\ufeff", "\u00ad", "\x00", "\x1c", "\x1f", "\x7f"]
)


def random_char(rng):
    while True:
        c = rng.randrange(0x20, 0x30000)
        if 0xD800 <= c <= 0xDFFF:
            continue
        if unicodedata.category(chr(c)) == "Cn":       # unassigned: Unicode versions may differ
            continue
        return chr(c)


def random_texts(rng, count):
    texts = []
    for _ in range(count):
        n = rng.randrange(0, 40)
        parts = []
        for _ in range(n):
            parts.append(random_char(rng) if rng.random() < 0.1 else rng.choice(ATOMS))
        texts.append("".join(parts))
    return texts


def compare(rx, exe, texts):
    got = c_split(exe, texts)
    bad = 0
    for t, cs in zip(texts, got):
        want = [c.encode("utf-8") for c in py_split(rx, t)]
        if cs != want:
            bad += 1
            if bad <= 5:
                print("MISMATCH on %r\n  C:      %r\n  Python: %r" % (t, cs, want))
    return got, bad


def gpt2_byte_ranks():
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    order = printable + [b for b in range(256) if b not in printable]
    return {b: i for i, b in enumerate(order)}


def segment(cases, ranks):
    """Find a consistent assignment chunk -> id run over all cases; None if impossible."""
    sys.setrecursionlimit(100000)
    chunk_ids = {}
    id_text = {rank: bytes([b]) for b, rank in ranks.items()}
    for ci, (chunks, ids) in enumerate(cases):
        if len(chunks) > len(ids) or len(ids) > sum(len(c) for c in chunks):
            return None, "input %d: %d chunks, %d bytes, %d ids" % (
                ci, len(chunks), sum(len(c) for c in chunks), len(ids))
    stats = {"pinned": 0}

    def run(ci, k, pos):
        if ci == len(cases):
            return True
        chunks, ids = cases[ci]
        if k == len(chunks):
            return pos == len(ids) and run(ci + 1, 0, 0)
        c = chunks[k]
        rest = chunks[k + 1:]
        if c in chunk_ids:
            g = chunk_ids[c]
            return tuple(ids[pos:pos + len(g)]) == g and run(ci, k + 1, pos + len(g))
        if len(c) == 1:
            g = (ranks[c[0]],)
            if tuple(ids[pos:pos + 1]) != g:
                return False
            chunk_ids[c] = g
            stats["pinned"] += 1
            if run(ci, k + 1, pos + 1):
                return True
            del chunk_ids[c]
            stats["pinned"] -= 1
            return False
        left = len(ids) - pos
        for n in range(1, min(len(c), left - len(rest)) + 1):
            if left - n > sum(len(r) for r in rest):
                continue
            g = tuple(ids[pos:pos + n])
            added = None
            if n == 1:
                if id_text.get(g[0], c) != c:
                    continue
                if g[0] not in id_text:
                    id_text[g[0]] = c
                    added = g[0]
            chunk_ids[c] = g
            if run(ci, k + 1, pos + n):
                return True
            del chunk_ids[c]
            if added is not None:
                del id_text[added]
        return False

    ok = run(0, 0, 0)
    return (chunk_ids if ok else None), ("%d distinct chunks, %d single-byte" % (
        len(chunk_ids), sum(1 for c in chunk_ids if len(c) == 1)) if ok else "no consistent segmentation")


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("regex", "golden"):
        print(__doc__)
        return 2
    exe = sys.argv[2]
    rx = build_qwen2_regex()
    if sys.argv[1] == "regex":
        rng = random.Random(20240601)
        texts = random_texts(rng, 4000)
        _, bad = compare(rx, exe, texts)
        print("qwen2 regex: %d random strings, %d mismatches" % (len(texts), bad))
        return 1 if bad else 0

    vdir = sys.argv[3] if len(sys.argv) > 3 else ""
    try:
        with open(vdir + "/ggml-vocab-qwen2.gguf.inp", encoding="utf-8", newline="") as f:
            inp = f.read()
        with open(vdir + "/ggml-vocab-qwen2.gguf.out", encoding="utf-8") as f:
            out = f.read()
    except OSError as e:
        print("skipping: %s" % e)
        return SKIP
    texts = inp.split("\n__ggml_vocab_test__\n")
    if texts and texts[-1] == "":
        texts.pop()
    ids = [[int(x) for x in line.split()] for line in out.split("\n")[:len(texts)]]
    if len(ids) != len(texts) or len(texts) < 40:
        print("golden files do not pair up: %d inputs, %d outputs" % (len(texts), len(ids)))
        return 1
    chunks, bad = compare(rx, exe, texts)
    if bad:
        print("qwen2 golden inputs: %d split mismatches with the Python regex" % bad)
        return 1
    mapping, why = segment(list(zip(chunks, ids)), gpt2_byte_ranks())
    print("qwen2 golden: %d inputs, %s" % (len(texts), why))
    if mapping is None:
        return 1
    # The digit inputs pin single-digit chunks exactly: "333" must be 3 x id("3").
    three = gpt2_byte_ranks()[ord("3")]
    for t, i in zip(texts, ids):
        if t and set(t) == {"3"} and i != [three] * len(t):
            print("digits: %r -> %r" % (t, i))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
