# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""kvsieve.hf: transformers models generating through kvsieve's cache."""

import json
import os
import pathlib
import shutil
import string
import subprocess

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM  # noqa: E402

import kvsieve  # noqa: E402
import kvsieve.hf  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = ROOT / "models" / "tiny-llama"
PUNCTUATION = [ord(c) for c in string.punctuation]  # the byte vocabulary's punctuation ids


def random_gqa_model():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                      num_attention_heads=8, num_key_value_heads=2, head_dim=16,
                      max_position_embeddings=256)
    return LlamaForCausalLM(cfg).eval()


def logits_per_step(model, ids, steps, cache):
    """Prompt logits, then `steps` greedy decode passes of one token each."""
    out = [model(ids, past_key_values=cache, use_cache=True).logits[0]]
    for _ in range(steps):
        nxt = out[-1][-1].argmax().view(1, 1)
        out.append(model(nxt, past_key_values=cache, use_cache=True).logits[0])
    return out


@pytest.mark.parametrize("which", ["random-gqa", "tiny-llama"])
@torch.no_grad()
def test_full_policy_logits_equal_dynamic_cache(which):
    if which == "random-gqa":
        model = random_gqa_model()
        ids = torch.randint(0, 97, (1, 37), generator=torch.Generator().manual_seed(1))
    else:
        model = LlamaForCausalLM.from_pretrained(TINY).eval()
        ids = torch.tensor([[256, *b"import os\n\ndef main(argv):\n    "]])
    cache = kvsieve.hf.Cache(model, policy="full")
    got = logits_per_step(model, ids, 6, cache)
    want = logits_per_step(model, ids, 6, DynamicCache(config=model.config))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4)
    assert cache.get_seq_length() == ids.shape[1] + 6
    r = cache.report()
    assert len(r.heads) == model.config.num_hidden_layers * model.config.num_key_value_heads
    assert all(h.kept == ids.shape[1] + 6 for h in r.heads)


@torch.no_grad()
def test_fastgen_generate_frees_memory_and_batches_are_refused():
    model = LlamaForCausalLM.from_pretrained(TINY).eval()
    prompt = torch.tensor([[256, *(TINY / "README.md").read_bytes()[:300]]])
    cache = kvsieve.hf.Cache(model, policy="fastgen", threshold=0.9, punctuation_ids=PUNCTUATION)
    out = model.generate(prompt, past_key_values=cache, max_new_tokens=16, do_sample=False)
    assert out.shape[1] > prompt.shape[1]
    r = cache.report()
    assert r.bytes_resident < r.bytes_full
    assert sum(r.policy_counts.values()) == 12
    with torch.enable_grad():  # a forward outside no_grad still runs (inference only)
        ids = torch.tensor([[256, 105, 109]])
        logits = model(ids, past_key_values=kvsieve.hf.Cache(model, policy="full"), use_cache=True)
        assert logits.logits.shape == (1, 3, 259)
    batch = torch.tensor([[256, 105, 109], [256, 105, 110]])
    with pytest.raises(NotImplementedError, match="one sequence at a time"):
        model(batch, past_key_values=kvsieve.hf.Cache(model, policy="full"), use_cache=True)


def generate_binary():
    path = os.environ.get("KVSIEVE_GENERATE") or ROOT / "build/default/examples/llama/kvsieve-generate"
    return pathlib.Path(path) if pathlib.Path(path).is_file() else None


@pytest.mark.skipif(generate_binary() is None,
                    reason="kvsieve-generate not built (cmake --build --preset default "
                           "--target kvsieve-generate, or set KVSIEVE_GENERATE)")
@torch.no_grad()
def test_fastgen_greedy_tokens_equal_kvsieve_generate():
    prompt = "import json\nimport os\n\n\nclass Inventory:\n    def __init__(self, path):\n"
    n = 60
    run = subprocess.run(
        [str(generate_binary()), "--model", str(TINY), "--prompt", prompt, "--policy", "fastgen",
         "--threshold", "0.95", "--temperature", "0", "--max-new-tokens", str(n), "--json"],
        check=True, capture_output=True, text=True)
    want = json.loads(run.stdout)
    model = LlamaForCausalLM.from_pretrained(TINY).eval()
    ids = torch.tensor([[256, *prompt.encode()]])
    cache = kvsieve.hf.Cache(model, policy="fastgen", threshold=0.95, punctuation_ids=PUNCTUATION)
    out = model.generate(ids, past_key_values=cache, max_new_tokens=n, do_sample=False)
    text = bytes(t for t in out[0, ids.shape[1]:].tolist() if t < 256).decode(errors="replace")
    assert text == want["generated_text"]
    got_map = [[h.policy for h in cache.report().heads if h.layer == l] for l in range(6)]
    assert got_map == want["policy_map"]
