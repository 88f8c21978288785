#!/usr/bin/env python3
"""Writes the transformers-5 test checkpoint of tests/llama/model_test.cpp.

Interpreter: /work/venv/bin/python, or any Python with torch >= 2 and transformers >= 5 (checked
with transformers 5.24.0, torch 2.15.0, safetensors 0.7):
    OMP_NUM_THREADS=1 /work/venv/bin/python tools/transformers5_fixture.py

transformers 5 writes RoPE as `"rope_parameters": {"rope_theta": ..., "rope_type": "default"}`
instead of a top-level `rope_theta`; this script saves a tiny random LlamaForCausalLM with
rope_theta 5e5 exactly as `save_pretrained` writes it, so the C++ loader is tested against the
real file layout rather than a hand-made one:
  tests/llama/data/rope-parameters/   config.json (rope_parameters, no rope_theta), two F32
                                      shards and model.safetensors.index.json (max_shard_size
                                      makes save_pretrained shard even this small model)
  tests/llama/data/golden/rope-parameters.json
                                      prompt ids, fp32 logits of every prompt position and the
                                      greedy continuation from transformers
GQA (4 query heads, 2 KV heads), head_dim 8, untied, F32, about 90 KB in all. Weights are drawn
with initializer_range 0.25 so attention is sharp: the logits then depend on theta by far more
than the test's tolerance (theta 1e4 instead of 5e5 changes them by ~1).
"""
import json
import os
import shutil

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "llama", "data")
MODEL = os.path.join(DATA, "rope-parameters")
GOLDEN = os.path.join(DATA, "golden", "rope-parameters.json")
GREEDY_TOKENS = 16


def make_model():
    torch.manual_seed(2026)
    cfg = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        initializer_range=0.25,
    )
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    if os.path.exists(MODEL):
        shutil.rmtree(MODEL)
    model.save_pretrained(MODEL, max_shard_size="60KB")
    with open(os.path.join(MODEL, "config.json")) as f:
        written = json.load(f)
    # The point of the fixture: the transformers-5 spelling only.
    assert "rope_theta" not in written and "rope_scaling" not in written, written
    assert written["rope_parameters"] == {"rope_theta": 500000.0, "rope_type": "default"}, written
    assert os.path.exists(os.path.join(MODEL, "model.safetensors.index.json"))


def golden():
    model = LlamaForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(11)
    prompt_ids = [1] + torch.randint(3, 64, (23,), generator=g).tolist()
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
        "model": os.path.relpath(MODEL, ROOT),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "prompt_ids": prompt_ids,
        "vocab_size": logits.shape[1],
        "logits": [[float(f"{x:.7g}") for x in row] for row in logits.tolist()],
        "greedy": greedy,
    }
    with open(GOLDEN, "w") as f:
        json.dump(record, f)
    print(f"rope-parameters: {len(prompt_ids)} prompt tokens, greedy {greedy[:8]}...")


def main():
    torch.set_num_threads(1)
    make_model()
    golden()


if __name__ == "__main__":
    main()
