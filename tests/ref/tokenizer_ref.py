#!/usr/bin/env python3
"""Checks `sol tokenize` against HF tokenizers (the Rust library behind
transformers' fast tokenizers) on a byte-level BPE GGUF.

The reference is built from the GGUF's own vocabulary and merges, configured
as SmolLM2's tokenizer.json configures it: a BPE model, the pre-tokenizer
Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False,
use_regex=True)], the ByteLevel decoder, and the control tokens (token_type
3) as special added tokens. The same vocabulary is then written into
tokenizer-only GGUFs with tokenizer.ggml.pre = gpt2, llama-bpe and qwen2 and
checked against HF configured as GPT-2's, Llama-3's (Split on its regex,
ByteLevel without regex, BPE ignore_merges) and Qwen2's tokenizer.json.
Nothing is shared with sol's C code.

    python3 -m venv build/venv && build/venv/bin/pip install -q numpy gguf tokenizers
    build/venv/bin/python tests/ref/tokenizer_ref.py build/sol MODEL.gguf [--write-fixture PATH]

For every test string it compares `sol tokenize --format json --no-bos`'s ids
with the reference's (printing a diff on mismatch), and `sol tokenize
--decode` of them with the reference's decoder. Byte strings that are not
valid UTF-8 (the reference takes only Python str) are checked by round trip:
`sol tokenize --decode` of sol's ids must give the bytes back. Exits 1 when
anything disagrees. --write-fixture stores, for the C unit test
(tests/fixtures/tokenizer/smollm2.json), each text with the reference's ids
and its pre-token byte lengths under each of the four pre-tokenizers.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import gguf
import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

# Texts covering what the pre-tokenizer and merges must get right.
CASES = [
    "",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    " leading space",
    "trailing space ",
    "  two leading spaces and two trailing  ",
    "many     spaces   between",
    "tabs\tand\ttabs\t\t\tend",
    "new\nlines\n\n\nand\r\nCRLF\r\n",
    "\n\n\n",
    "   ",
    "I'm sure you're right, they've said we'll go, he'd do it, it's 'quoted'",
    "DON'T SHOUT, I'M HERE, WE'LL SEE",
    "12345",
    "3.14159 and 1,000,000 and -42 and 2024-06-01",
    "v1.2.3 x86_64 0xDEADBEEF 1e-9",
    "Ünïcödé àccents: café, naïve, Zürich, Ångström",
    "e\u0301 combining: a\u0300 o\u0308 n\u0303 (decomposed)",
    "中文分词测试：你好，世界！",
    "日本語のテキストとカタカナ、ひらがな",
    "한국어 텍스트",
    "Русский текст и ёлка",
    "Ελληνικά γράμματα αβγ",
    "العربية مرحبا",
    "emoji 😀🎉👍🏽 family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵",
    "math ∑∫√∞ ≤ ≥ ≠ ± × ÷ and symbols © ® ™ § ¶ †",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "int main(void) {\n\tprintf(\"%d\\n\", x->y[0] >> 2);\n\treturn 0;\n}",
    "<html><body class=\"a\">&amp; &lt;tag&gt;</body></html>",
    "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct?x=1&y=2#frag",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "text<|im_end|>more<|endoftext|><|im_start|>",
    "<|im_start|><|im_start|>  <|im_end|>",
    "not special: <|im_star|> <im_start> <|IM_START|>",
    "Ｆｕｌｌｗｉｄｔｈ　ｓｐａｃｅ and\u00a0nbsp and\u2003em\u2009thin",
    "Arabic-Indic ٠١٢٣ and Devanagari २०२४ and Roman Ⅻ and ½ ¾ ²",
    "ſ long s and ǅ titlecase and ß and ﬁ ligature",
    "zero\u200bwidth\u200djoiner\ufeffbom",
    "bytes without a token: \x04 \x13\x14 a\x06b and plane-4 \U00040000!\U000A0000 (dropped)",
    "!!!???...,,,;;;:::---___***",
    "end.\n\n  next: x \n y\t\n\tz  \r\n\r\n  w",
    "She'S WE'RE they'Ve I'D it'LL 'tis o'clock rock'n'roll",
    "punct!\n\n(paren)\r\n...\n  ->  =>",
    "a" * 300,
    " ".join(["word"] * 200),
    "x = [1, 2, 3]; y = {'a': 1}  # comment\n" * 5,
]

# Bytes that are not valid UTF-8: round trip only. Bytes the vocabulary has
# no token for (SmolLM2: 0xC0, 0xC1, 0xF1, 0xF2, 0xF5-0xFF and six controls)
# are dropped, so they are left out here.
BYTE_CASES = [
    b"\xe4\xe4 repeated lead bytes \xe4",
    b"cut \xe4\xb8 sequence",
    b"\xe0\x80\xaf overlong \xed\xa0\x80 surrogate \xf4\x90\x80\x80 too big",
    b"lone continuation \x80\x81\x82 end",
    b"\x01\x02\x03 controls \x7f \x1b[31mred\x1b[0m",
    b"mix \xe4\xb8\xad\x80\xe6\x96\x87 \xf0\x9f\x98",
]


LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = LLAMA3_REGEX.replace(r"\p{N}{1,3}", r"\p{N}")


def pre_tokenizer(pre):
    """The HF pre-tokenizer (and BPE ignore_merges) each tokenizer.ggml.pre
    stands for, as the models' tokenizer.json files configure them."""
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    if pre == "smollm":
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]), False
    if pre == "gpt2":
        return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), False
    regex = {"llama-bpe": LLAMA3_REGEX, "qwen2": QWEN2_REGEX}[pre]
    split = pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False)
    return pre_tokenizers.Sequence([split, byte_level]), pre == "llama-bpe"


class Vocab:
    def __init__(self, path):
        r = gguf.GGUFReader(path)

        def field(key):
            return r.fields[key]

        model = bytes(field("tokenizer.ggml.model").parts[-1]).decode()
        if model != "gpt2":
            sys.exit("%s: tokenizer.ggml.model is %r; this reference handles byte-level BPE (gpt2)" % (path, model))
        self.pre = bytes(field("tokenizer.ggml.pre").parts[-1]).decode()
        self.tokens = [bytes(field("tokenizer.ggml.tokens").parts[i]).decode() for i in
                       field("tokenizer.ggml.tokens").data]
        self.types = [int(field("tokenizer.ggml.token_type").parts[i][0]) for i in
                      field("tokenizer.ggml.token_type").data]
        self.merges = [bytes(field("tokenizer.ggml.merges").parts[i]).decode() for i in
                       field("tokenizer.ggml.merges").data]

    def hf(self, pre):
        vocab = {t: i for i, t in enumerate(self.tokens)}
        pre_tok, ignore_merges = pre_tokenizer(pre)
        tok = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in self.merges],
                                   ignore_merges=ignore_merges))
        tok.pre_tokenizer = pre_tok
        tok.decoder = decoders.ByteLevel()
        tok.add_special_tokens([AddedToken(self.tokens[i], special=True, normalized=False)
                                for i, t in enumerate(self.types) if t == 3])
        return tok

    def write(self, path, pre):
        """A tokenizer-only GGUF with this vocabulary and another pre."""
        w = gguf.GGUFWriter(path, "llama")
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre(pre)
        w.add_token_list(self.tokens)
        w.add_token_types(self.types)
        w.add_token_merges(self.merges)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()


def sol_ids(sol, model, text):
    arg = text if isinstance(text, bytes) else text.encode("utf-8")
    out = subprocess.run([sol, "tokenize", model, "--format", "json", "--no-bos", "--", arg],
                         capture_output=True)
    if out.returncode != 0:
        raise RuntimeError("sol tokenize failed (%d): %s" % (out.returncode, out.stderr.decode(errors="replace")))
    return json.loads(out.stdout)["ids"]


def sol_decode(sol, model, ids):
    out = subprocess.run([sol, "tokenize", model, "--decode", ",".join(map(str, ids))], capture_output=True)
    if out.returncode != 0:
        raise RuntimeError("sol tokenize --decode failed: %s" % out.stderr.decode(errors="replace"))
    assert out.stdout.endswith(b"\n")
    return out.stdout[:-1]


def show_diff(tok, text, got, want):
    print("MISMATCH %r" % (text if len(text) < 120 else text[:117] + "..."))
    i = 0
    while i < min(len(got), len(want)) and got[i] == want[i]:
        i += 1
    print("  first difference at position %d (sol %d ids, reference %d)" % (i, len(got), len(want)))
    lo = max(0, i - 3)
    print("  sol:       %s" % [(t, tok.id_to_token(t)) for t in got[lo:i + 6]])
    print("  reference: %s" % [(t, tok.id_to_token(t)) for t in want[lo:i + 6]])


def byte_level_chars():
    """The chars GPT-2's bytes_to_unicode maps the 256 bytes to."""
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    extra = [b for b in range(256) if b not in bs]
    return {chr(b) for b in bs} | {chr(256 + n) for n in range(len(extra))}


BYTE_CHARS = byte_level_chars()


def split_lengths(pre, text):
    """Byte lengths of the pre-tokens HF's pre-tokenizer cuts text into (the
    C unit test checks sol's split against them)."""
    pieces = pre_tokenizer(pre)[0].pre_tokenize_str(text)
    lengths = [len(piece) for piece, _ in pieces]  # one byte-level char per byte
    assert all(ch in BYTE_CHARS for piece, _ in pieces for ch in piece)
    assert sum(lengths) == len(text.encode("utf-8"))
    return lengths


def check(sol, model, tok, pre):
    """Compares every case; returns (failures, {text: ids})."""
    failed = 0
    ids = {}
    for text in CASES:
        want = tok.encode(text, add_special_tokens=False).ids
        got = sol_ids(sol, model, text)
        ids[text] = want
        if got != want:
            print("[%s] " % pre, end="")
            show_diff(tok, text, got, want)
            failed += 1
            continue
        # decoding agrees with the reference's ByteLevel decoder (which gives
        # the text back, but for bytes the vocabulary drops; it shows invalid
        # UTF-8 as U+FFFD where sol gives the bytes)
        ref_text = tok.decode(want, skip_special_tokens=False)
        back = sol_decode(sol, model, got)
        if back.decode("utf-8", errors="replace") != ref_text:
            print("[%s] DECODE MISMATCH %r: sol %r, reference %r" % (pre, text, back, ref_text))
            failed += 1
    return failed, ids


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sol")
    ap.add_argument("model")
    ap.add_argument("--write-fixture", metavar="PATH")
    a = ap.parse_args()

    vocab = Vocab(a.model)
    total_failed = 0
    fixture = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pre in [vocab.pre] + [p for p in ("gpt2", "llama-bpe", "qwen2") if p != vocab.pre]:
            model = a.model
            if pre != vocab.pre:
                model = os.path.join(tmp, pre + ".gguf")
                vocab.write(model, pre)
            failed, ids = check(a.sol, model, vocab.hf(pre), pre)
            fixture[pre] = ids
            print("pre %-10s %d/%d texts give the reference's ids and text" % (pre, len(CASES) - failed, len(CASES)))
            total_failed += failed
    failed = 0
    for raw in BYTE_CASES:
        got = sol_ids(a.sol, a.model, raw)
        back = sol_decode(a.sol, a.model, got)
        if back != raw:
            print("ROUND TRIP FAILED %r -> %s -> %r" % (raw, got, back))
            failed += 1
    print("invalid UTF-8: %d/%d round trips" % (len(BYTE_CASES) - failed, len(BYTE_CASES)))
    total_failed += failed
    if a.write_fixture:
        cases = [{"text": text, "ids": {pre: fixture[pre][text] for pre in fixture},
                  "split": {pre: split_lengths(pre, text) for pre in fixture}} for text in CASES]
        with open(a.write_fixture, "w", encoding="utf-8") as f:
            json.dump({"model": "SmolLM2-135M-Instruct's vocabulary and merges (its tokenizer.ggml.pre is %s; "
                                "the other pre values are the same vocabulary with that split)" % vocab.pre,
                       "reference": "HF tokenizers %s; ids without BOS, control tokens parsed" % tokenizers.__version__,
                       "cases": cases}, f, ensure_ascii=True, separators=(",", ":"))
            f.write("\n")
    print("FAILED" if total_failed else "all agree")
    return 1 if total_failed else 0


if __name__ == "__main__":
    sys.exit(main())
