#!/usr/bin/env python3
"""Writes the SentencePiece fixtures of tests/llama/tokenizer_test.cpp (tests/llama/data/spm/).

Interpreter: Debian's /usr/bin/python3 (3.11) with the sentencepiece binding, installed with
    /usr/bin/python3 -m pip install --break-system-packages sentencepiece==0.1.99
(from 0.1.97, Debian's libsentencepiece that the C++ side links, to 0.1.99 only the trainers
changed: the encoder and decoder sources are identical). The pyenv python3 works as well once
`python3 -m pip install sentencepiece==0.1.99` is run for it. Standard library otherwise.

Run from the repository root:
    python3 tools/spm_fixture.py           # expected.json from the committed tiny.model
    python3 tools/spm_fixture.py --train   # first retrain tiny.model with spm_train, then the same

tiny.model is a 1024-piece BPE model with byte fallback, trained the way LLaMA's tokenizer was
(identity normalisation, whitespace kept, digits split, a dummy prefix) plus one user-defined
symbol "<sep>", so that every piece type the tokenizer handles occurs. It was trained on
Debian 12 (base-files 12.4+deb12u11, python3.11 3.11.2-6+deb12u6) by Debian's spm_train 0.1.97
(package `sentencepiece`), from the repository root, with exactly:

    spm_train \
      --input=/usr/share/common-licenses/Apache-2.0,/usr/share/common-licenses/GPL-3,\
/usr/share/common-licenses/MPL-2.0,/usr/share/common-licenses/BSD,\
/usr/lib/python3.11/textwrap.py,/usr/lib/python3.11/shlex.py,\
/usr/lib/python3.11/statistics.py,/usr/lib/python3.11/functools.py \
      --model_prefix=tests/llama/data/spm/tiny --model_type=bpe --vocab_size=1024 \
      --character_coverage=1.0 --byte_fallback=true --split_digits=true \
      --allow_whitespace_only_pieces=true --normalization_rule_name=identity \
      --remove_extra_whitespaces=false --add_dummy_prefix=true --user_defined_symbols='<sep>' \
      --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 --num_threads=1 \
      --shuffle_input_sentence=false --max_sentence_length=4192

(then tiny.vocab was deleted). The model stores its input paths and --model_prefix, so only
this exact command line gives the same bytes; one thread and no shuffling make it deterministic:
sha256 6a001bedce7d43d9f7447ea62c1245c422350488d13eedd1790dd775101bb9b9, 14840 bytes. Other
versions of the input files give another model; expected.json must then be rewritten.

expected.json holds, for each test string, the ids of `encode(text)` and the text of
`decode(ids)`; `decode_cases` are id lists that encode() never produces (BOS/EOS, <unk>,
truncated byte-fallback sequences, a lone "▁") with the text decode() gives them; and the
vocabulary facts: piece count, BOS/EOS/UNK ids and the ids per piece type. The user-defined ids
are read from the model's protobuf here (the binding has no is_user_defined), independently of
the C++ reader, so the test cross-checks it.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

import sentencepiece as spm

DATA = os.path.join("tests", "llama", "data", "spm")
MODEL = os.path.join(DATA, "tiny.model")
EXPECTED = os.path.join(DATA, "expected.json")

TRAIN_INPUTS = [
    "/usr/share/common-licenses/Apache-2.0",
    "/usr/share/common-licenses/GPL-3",
    "/usr/share/common-licenses/MPL-2.0",
    "/usr/share/common-licenses/BSD",
    "/usr/lib/python3.11/textwrap.py",
    "/usr/lib/python3.11/shlex.py",
    "/usr/lib/python3.11/statistics.py",
    "/usr/lib/python3.11/functools.py",
]
TRAIN_FLAGS = [
    "--model_type=bpe", "--vocab_size=1024", "--character_coverage=1.0", "--byte_fallback=true",
    "--split_digits=true", "--allow_whitespace_only_pieces=true",
    "--normalization_rule_name=identity", "--remove_extra_whitespaces=false",
    "--add_dummy_prefix=true", "--user_defined_symbols=<sep>", "--unk_id=0", "--bos_id=1",
    "--eos_id=2", "--pad_id=-1", "--num_threads=1", "--shuffle_input_sentence=false",
    "--max_sentence_length=4192",
]
MODEL_SHA256 = "6a001bedce7d43d9f7447ea62c1245c422350488d13eedd1790dd775101bb9b9"

# ASCII, code, accents (pieces of their own: the training text has Latin-1), Greek, CJK and
# emoji (byte fallback), leading / trailing / repeated spaces, newlines, tabs, CR, the
# user-defined symbol, digits (split), Unicode punctuation, a LLaMA-2 chat prompt, empty text.
STRINGS = [
    "",
    "Hello world",
    "Hello, world. This is a test.",
    "def f(x):\n    return x * 2  # double\n",
    "café naïve résumé Ångström",
    "Ελληνικά καὶ Ünïcödé",
    "日本語のテキスト、中文。",
    "I ❤️ 🦙 llamas 🎉!",
    "   leading spaces",
    "trailing spaces   ",
    "multiple    spaces  between   words",
    "line one\nline two\n\nline four\n",
    "\tTabbed\tvalues\r\n",
    "first<sep>second <sep> third",
    "3.14159 and 2024-01-01",
    " ",
    "\n",
    "Wait... what?! (yes) \u2014 \u201cquoted\u201d \u00abtext\u00bb",
    "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi! [/INST]",
]


def piece_types(serialized: bytes) -> list[int]:
    """The `type` of every ModelProto.pieces entry (NORMAL=1 when absent), protobuf wire format."""

    def varint(buf, i):
        shift = value = 0
        while True:
            b = buf[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value, i

    def fields(buf):
        i = 0
        while i < len(buf):
            tag, i = varint(buf, i)
            wire = tag & 7
            if wire == 0:
                value, i = varint(buf, i)
            elif wire == 1:
                value, i = buf[i:i + 8], i + 8
            elif wire == 2:
                n, i = varint(buf, i)
                value, i = buf[i:i + n], i + n
            elif wire == 5:
                value, i = buf[i:i + 4], i + 4
            else:
                raise ValueError(f"unsupported wire type {wire}")
            yield tag >> 3, wire, value

    types = []
    for field, wire, value in fields(serialized):
        if field == 1 and wire == 2:
            t = 1
            for f, w, v in fields(value):
                if f == 3 and w == 0:
                    t = v
            types.append(t)
    return types


def train() -> None:
    prefix = os.path.join(DATA, "tiny")
    cmd = ["spm_train", "--input=" + ",".join(TRAIN_INPUTS), "--model_prefix=" + prefix]
    subprocess.run(cmd + TRAIN_FLAGS, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    os.remove(prefix + ".vocab")
    with open(MODEL, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != MODEL_SHA256:
        print(f"note: {MODEL} differs from the committed one (sha256 {digest}); "
              "expected.json is rewritten for the new model", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", action="store_true", help="retrain tiny.model with spm_train")
    args = parser.parse_args()
    if args.train:
        train()

    sp = spm.SentencePieceProcessor(model_file=MODEL)
    n = sp.get_piece_size()
    types = piece_types(sp.serialized_model_proto())
    assert len(types) == n, (len(types), n)

    def byte_id(b: int) -> int:
        return sp.piece_to_id(f"<0x{b:02X}>")

    hello = sp.encode("Hello")
    decode_ids = [
        [sp.bos_id()] + hello + [sp.eos_id()],       # controls are invisible
        [sp.bos_id(), sp.bos_id()] + hello,          # the leading "▁" still goes
        [sp.unk_id()],                               # <unk> reads " ⁇ "
        hello + [sp.unk_id()] + hello,
        [sp.piece_to_id("\u2581")] + hello,          # a lone "▁" is the stripped space
        [byte_id(0xE2), byte_id(0x82)] + hello,      # a cut "€": two U+FFFD
        hello + [byte_id(0xE2), byte_id(0x82), byte_id(0xAC)],  # "€" complete
        [byte_id(0xFF), byte_id(0x41), byte_id(0xC3)],          # invalid, "A", cut
        [byte_id(0xF0), byte_id(0x9F)] + [sp.bos_id()] + [byte_id(0xA6), byte_id(0x99)],
        hello + hello + [sp.piece_to_id("<sep>")] + hello,
        [],
    ]
    doc = {
        "model": "tiny.model",
        "sentencepiece_version": spm.__version__,
        "piece_size": n,
        "bos_id": sp.bos_id(),
        "eos_id": sp.eos_id(),
        "unk_id": sp.unk_id(),
        "control_ids": [i for i in range(n) if sp.is_control(i)],
        "unknown_ids": [i for i in range(n) if sp.is_unknown(i)],
        "user_defined_ids": [i for i in range(n) if types[i] == 4],
        "byte_ids": [i for i in range(n) if sp.is_byte(i)],
        "cases": [{"text": s, "ids": sp.encode(s), "decoded": sp.decode(sp.encode(s)),
                   "pieces": sp.encode(s, out_type=str)} for s in STRINGS],
        "decode_cases": [{"ids": ids, "decoded": sp.decode(ids)} for ids in decode_ids],
    }
    # One line per scalar, id list and case: diffs of a retrained model stay readable.
    def one_line(value) -> str:
        return json.dumps(value, ensure_ascii=False)

    lines = []
    for key, value in doc.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            rows = ",\n".join("  " + one_line(v) for v in value)
            lines.append(f" {one_line(key)}: [\n{rows}\n ]")
        else:
            lines.append(f" {one_line(key)}: {one_line(value)}")
    with open(EXPECTED, "w", encoding="utf-8") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"wrote {EXPECTED}: {len(STRINGS)} strings, {len(decode_ids)} decode cases")


if __name__ == "__main__":
    main()
