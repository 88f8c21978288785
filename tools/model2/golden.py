#!/usr/bin/env python3
"""Golden logits of the second bundled model (models/docs-llama) for the decoder's test
(tests/llama/model_test.cpp, "the docs-llama model ... matches transformers").

Interpreter: /work/venv/bin/python (torch >= 2.1, transformers >= 5, sentencepiece); see
tools/README.md. Run it again whenever the model's weights change (tools/model2/train.py
--export): the file records the weights' sha256, and a stale file fails the test.

The prompt is prose and Python, tokenised by the Python sentencepiece binding with BOS first, so
the test also checks that kvsieve's SentencePiece path gives the same ids. The vocabulary has 8000
pieces, so the file keeps, for every prompt position, the logits of every 32nd id (250 ids: a
wrong computation moves every logit, so a slice is as strong a check as the whole row) plus the
position's argmax over the whole row; and the 32-token greedy continuation (fp32, full cache).

Usage:
    OMP_NUM_THREADS=1 /work/venv/bin/python tools/model2/golden.py [--model models/docs-llama]
writes tests/llama/data/golden/docs-llama.json.
"""

import argparse
import hashlib
import json
import os

import sentencepiece as spm
import torch
from transformers import LlamaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GREEDY_TOKENS = 32
STRIDE = 32
PROMPT = (
    "The page allocator returns physically contiguous memory; kmalloc() is built on top of it.\n"
    "\n"
    "def read_config(path):\n"
    '    """Return the settings stored in the JSON file at `path`."""\n'
    "    with open(path) as f:\n"
    "        return json.load(f)\n"
)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "docs-llama"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "llama", "data", "golden",
                                                  "docs-llama.json"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(a.model, "tokenizer.model"))
    model = LlamaForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    bos = model.config.bos_token_id
    prompt_ids = [bos] + sp.encode(PROMPT)
    ids = torch.tensor([prompt_ids])
    with torch.no_grad():
        logits = model(ids).logits[0]
        out = model.generate(ids, max_new_tokens=GREEDY_TOKENS, do_sample=False,
                             eos_token_id=None, pad_token_id=0)
    with open(os.path.join(a.model, "model.safetensors"), "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    record = {
        "model": os.path.relpath(a.model, ROOT),
        "weights_sha256": sha,
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
        "prompt": PROMPT,
        "prompt_ids": prompt_ids,
        "vocab_size": logits.shape[1],
        "logit_stride": STRIDE,
        "logits": [[float(f"{x:.7g}") for x in row[::STRIDE].tolist()] for row in logits],
        "argmax": logits.argmax(dim=1).tolist(),
        "greedy": out[0, len(prompt_ids):].tolist(),
    }
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(record, f)
    print(f"{a.out}: {len(prompt_ids)} prompt tokens, greedy {record['greedy'][:8]}...")


if __name__ == "__main__":
    main()
