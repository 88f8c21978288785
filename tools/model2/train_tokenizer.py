#!/usr/bin/env python3
"""Train the SentencePiece tokenizer of kvsieve's second bundled model (issue 13).

Interpreter: a Python 3 with `sentencepiece` (pip install sentencepiece; 0.2.x used here), e.g.
the pyenv `python3` first on PATH.

LLaMA-style BPE: <unk> = 0, <s> = 1 (BOS), </s> = 2 (EOS), byte fallback (every byte is a piece,
so nothing is ever <unk>), digits split, identity normalisation and no whitespace folding (code's
indentation survives), whitespace-only pieces allowed (indentation becomes a few pieces).
Newlines are not in the training sentences (SentencePiece trains on lines) and are encoded by
byte fallback as <0x0A>, as LLaMA's tokenizer does. Punctuation runs stay their own pieces
(split_by_punctuation is SentencePiece's default), so kvsieve's punctuation class sees them.

Input: the train split of tools/model2/build_corpus.py (train.jsonl); the held-out split is never
read. A fixed --sample of lines (--seed) is drawn from the documents in file order.

Usage:
    python3 tools/model2/train_tokenizer.py --corpus /work/data/model2 --out /tmp/spm \\
        --vocab-size 8000
    # writes /tmp/spm/tokenizer.model and tokenizer.vocab, and prints the held-out compression
"""

import argparse
import json
import os
import random
import sys

import sentencepiece as spm


def lines_of(path):
    with open(path, encoding="utf-8") as f:
        for row in f:
            doc = json.loads(row)
            for line in doc["text"].split("\n"):
                if line.strip():
                    yield line


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, help="folder with train.jsonl and heldout.jsonl")
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--sample", type=int, default=3_000_000, help="training lines (reservoir)")
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if not 4000 <= a.vocab_size <= 32000:
        sys.exit("--vocab-size: 4000..32000 expected")
    os.makedirs(a.out, exist_ok=True)

    rng = random.Random(a.seed)
    sample = []
    for i, line in enumerate(lines_of(os.path.join(a.corpus, "train.jsonl"))):
        if len(sample) < a.sample:
            sample.append(line)
        else:
            j = rng.randrange(i + 1)
            if j < a.sample:
                sample[j] = line
    text = os.path.join(a.out, "train_lines.txt")
    with open(text, "w", encoding="utf-8") as f:
        f.write("\n".join(sample) + "\n")

    prefix = os.path.join(a.out, "tokenizer")
    spm.SentencePieceTrainer.train(
        input=text, model_prefix=prefix, model_type="bpe", vocab_size=a.vocab_size,
        character_coverage=0.9995, byte_fallback=True, split_digits=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, allow_whitespace_only_pieces=True, split_by_whitespace=True,
        max_sentence_length=16384, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        num_threads=a.threads, input_sentence_size=0, shuffle_input_sentence=False,
        minloglevel=1)
    os.remove(text)

    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    by_source = {}
    mismatched = 0
    with open(os.path.join(a.corpus, "heldout.jsonl"), encoding="utf-8") as f:
        for row in f:
            doc = json.loads(row)
            ids = sp.encode(doc["text"])
            b, t = by_source.get(doc["source"], (0, 0))
            by_source[doc["source"]] = (b + len(doc["text"].encode()), t + len(ids))
            mismatched += sp.decode(ids) != doc["text"]
    for src, (b, t) in sorted(by_source.items()):
        print(f"held-out {src:11s} {b / 1e6:6.2f} MB  {t:9d} tokens  {b / t:.2f} bytes/token")
    print(f"decode(encode(text)) != text for {mismatched} held-out documents")
    print(f"wrote {prefix}.model ({sp.get_piece_size()} pieces)")


if __name__ == "__main__":
    main()
