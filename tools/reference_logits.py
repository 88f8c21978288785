#!/usr/bin/env python3
"""Golden logits from Hugging Face transformers for the decoder's tests (tests/llama/model_test.cpp).

Interpreter: Debian's /usr/bin/python3 (torch 1.13 from python3-torch) with transformers 4.40.2
and safetensors from PyPI, e.g.
    /usr/bin/python3 -m pip install --target /tmp/hfenv transformers==4.40.2 safetensors
    PYTHONPATH=/tmp/hfenv /usr/bin/python3 tools/reference_logits.py
(newer transformers releases need torch >= 2.)

Writes, for each model, tests/llama/data/golden/<name>.json with the prompt ids, the fp32 logits
of every prompt position and the greedy continuation, and creates the second model itself:
  tiny-llama  the bundled model (models/tiny-llama): GQA, head_dim 32, untied, theta 1e4, F32
  random-mha  a random model in tests/llama/data/random-mha: MHA, head_dim 16, tied embeddings,
              rope_theta 5e5, rms_norm_eps 1e-6, eos given as a list, weights stored as BF16
"""
import json
import os
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "llama", "data")
GREEDY_TOKENS = 32

PROMPT = (
    "def fibonacci(n):\n"
    '    """Return the n-th Fibonacci number."""\n'
    "    a, b = 0, 1\n"
    "    for _ in range(n):\n"
)


def make_random_mha(path):
    torch.manual_seed(1234)
    cfg = LlamaConfig(
        vocab_size=300,
        hidden_size=64,
        intermediate_size=112,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        rms_norm_eps=1e-6,
        rope_theta=500000.0,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=[2, 3],
        pad_token_id=0,
        initializer_range=0.25,  # sharp attention makes the comparison meaningful
    )
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # non-trivial norms, too
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    model.to(torch.bfloat16).save_pretrained(path, safe_serialization=True)


def golden(name, model_dir, prompt_ids):
    model = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    ids = torch.tensor([prompt_ids])
    with torch.no_grad():
        logits = model(ids).logits[0]
        out = model.generate(
            ids,
            max_new_tokens=GREEDY_TOKENS,
            do_sample=False,
            eos_token_id=None,  # a fixed length: compare every token
            pad_token_id=0,
        )
    greedy = out[0, len(prompt_ids):].tolist()
    record = {
        "model": os.path.relpath(model_dir, ROOT),
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
        "prompt_ids": prompt_ids,
        "vocab_size": logits.shape[1],
        "logits": [[float(f"{x:.7g}") for x in row] for row in logits.tolist()],
        "greedy": greedy,
    }
    os.makedirs(os.path.join(DATA, "golden"), exist_ok=True)
    with open(os.path.join(DATA, "golden", name + ".json"), "w") as f:
        json.dump(record, f)
    print(f"{name}: {len(prompt_ids)} prompt tokens, greedy {greedy[:8]}...")


def main():
    torch.set_num_threads(1)
    tiny = os.path.join(ROOT, "models", "tiny-llama")
    if os.path.exists(os.path.join(tiny, "model.safetensors")):
        golden("tiny-llama", tiny, [256] + list(PROMPT.encode("utf-8")))
    else:
        print("models/tiny-llama not found; skipping its golden file", file=sys.stderr)
    rnd = os.path.join(DATA, "random-mha")
    make_random_mha(rnd)
    g = torch.Generator().manual_seed(7)
    golden("random-mha", rnd, [1] + torch.randint(4, 300, (40,), generator=g).tolist())


if __name__ == "__main__":
    main()
