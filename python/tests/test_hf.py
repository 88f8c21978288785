# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""kvsieve.hf: transformers models generating through kvsieve's cache."""

import inspect
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
# transformers 5.24 renamed past_key_values= to cache= (the old name warns); older 5.x: the old.
CACHE = "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters \
    else "past_key_values"


def random_gqa_model():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                      num_attention_heads=8, num_key_value_heads=2, head_dim=16,
                      max_position_embeddings=256)
    return LlamaForCausalLM(cfg).eval()


def logits_per_step(model, ids, steps, cache):
    """Prompt logits, then `steps` greedy decode passes of one token each."""
    out = [model(ids, **{CACHE: cache}, use_cache=True).logits[0]]
    for _ in range(steps):
        nxt = out[-1][-1].argmax().view(1, 1)
        out.append(model(nxt, **{CACHE: cache}, use_cache=True).logits[0])
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
def test_fastgen_generate_frees_memory():
    model = LlamaForCausalLM.from_pretrained(TINY).eval()
    prompt = torch.tensor([[256, *(TINY / "README.md").read_bytes()[:300]]])
    cache = kvsieve.hf.Cache(model, policy="fastgen", threshold=0.9, punctuation_ids=PUNCTUATION)
    with pytest.raises(RuntimeError, match="nothing has run"):
        cache.report()
    out = model.generate(prompt, **{CACHE: cache}, max_new_tokens=16, do_sample=False)
    assert out.shape[1] > prompt.shape[1]
    r = cache.report()
    assert r.bytes_resident < r.bytes_full
    assert sum(r.policy_counts.values()) == 12
    with torch.enable_grad():  # a forward outside no_grad still runs (inference only)
        ids = torch.tensor([[256, 105, 109]])
        logits = model(ids, **{CACHE: kvsieve.hf.Cache(model, policy="full")}, use_cache=True)
        assert logits.logits.shape == (1, 3, 259)


def left_padded(prompts, pad):
    """input_ids and attention_mask for `prompts` (lists of ids) padded on the left."""
    n = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (n - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (n - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask


@torch.no_grad()
def test_batch_full_policy_logits_equal_each_row_alone():
    model = random_gqa_model()
    g = torch.Generator().manual_seed(2)
    prompts = [torch.randint(0, 96, (n,), generator=g).tolist() for n in (23, 9, 16)]
    ids, mask = left_padded(prompts, pad=96)
    cache = kvsieve.hf.Cache(model, policy="full")
    first = model(ids, attention_mask=mask, **{CACHE: cache}, use_cache=True).logits
    nxt = first[:, -1].argmax(-1, keepdim=True)
    mask = torch.cat([mask, torch.ones_like(nxt)], 1)
    second = model(nxt, attention_mask=mask, **{CACHE: cache}, use_cache=True).logits
    for row, p in enumerate(prompts):
        alone = torch.tensor([p + [int(nxt[row])]])
        want = model(alone, **{CACHE: DynamicCache(config=model.config)}).logits[0]
        torch.testing.assert_close(first[row, -len(p):], want[:-1], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(second[row, -1], want[-1], atol=1e-4, rtol=1e-4)
    r = cache.report()
    assert sorted({h.seq for h in r.heads}) == [0, 1, 2]
    for h in r.heads:  # padding never entered the cache
        assert h.kept == h.length == len(prompts[h.seq]) + 1


@torch.no_grad()
def test_batch_fastgen_generate_equals_each_row_alone():
    model = LlamaForCausalLM.from_pretrained(TINY).eval()
    texts = [b"import os\n\ndef main(argv):\n    ", b"class Stack:\n    def push(self, x):\n",
             b"# Copyright (c) 2026 kvsieve contributors\nfrom typing import Any\n\n\ndef f("]
    prompts = [[256, *t] for t in texts]
    options = dict(policy="fastgen", threshold=0.9, punctuation_ids=PUNCTUATION)
    ids, mask = left_padded(prompts, pad=258)
    cache = kvsieve.hf.Cache(model, **options)
    out = model.generate(ids, attention_mask=mask, **{CACHE: cache}, max_new_tokens=12,
                         do_sample=False, pad_token_id=258)
    batch_report = cache.report()
    for row, p in enumerate(prompts):
        alone = kvsieve.hf.Cache(model, **options)
        want = model.generate(torch.tensor([p]), **{CACHE: alone}, max_new_tokens=12,
                              do_sample=False, pad_token_id=258)
        assert out[row, ids.shape[1]:].tolist() == want[0, len(p):].tolist()
        got = [(h.layer, h.kv_head, h.policy, h.kept, h.length) for h in batch_report.heads
               if h.seq == row]
        assert got == [(h.layer, h.kv_head, h.policy, h.kept, h.length)
                       for h in alone.report().heads]


@torch.no_grad()
def test_batch_errors():
    model = random_gqa_model()
    cache = kvsieve.hf.Cache(model, policy="full")
    ids, mask = left_padded([[1, 2, 3], [4, 5]], pad=96)
    model(ids, attention_mask=mask, **{CACHE: cache}, use_cache=True)
    with pytest.raises(ValueError, match="holds 2 sequences, the pass has 1"):
        model(torch.tensor([[7]]), **{CACHE: cache}, use_cache=True)
    cache = kvsieve.hf.Cache(model, policy="full")
    model(ids, attention_mask=mask, **{CACHE: cache}, use_cache=True)
    with pytest.raises(ValueError, match="row 1 is masked out"):
        model(torch.tensor([[7], [8]]), attention_mask=torch.tensor([[1, 1, 1, 1], [0, 1, 1, 0]]),
              **{CACHE: cache}, use_cache=True)
    with pytest.raises(ValueError, match="row 0 is all padding"):
        model(ids, attention_mask=torch.tensor([[0, 0, 0], [1, 1, 1]]),
              **{CACHE: kvsieve.hf.Cache(model, policy="full")}, use_cache=True)
    with pytest.raises(NotImplementedError, match="2-token pass after the prompt"):
        model(torch.tensor([[7, 8], [9, 10]]), **{CACHE: cache}, use_cache=True)
    with pytest.raises(TypeError, match="not n_seq"):
        kvsieve.hf.Cache(model, n_seq=2)
    with pytest.raises(kvsieve.InvalidArgumentError):
        kvsieve.hf.Cache(model, policy="no-such-policy")
    cache.reset()  # starts over, with any batch size
    model(torch.tensor([[1, 2, 3]]), **{CACHE: cache}, use_cache=True)
    assert cache.get_seq_length() == 3 and cache.kv.n_seq == 1


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
    out = model.generate(ids, **{CACHE: cache}, max_new_tokens=n, do_sample=False)
    text = bytes(t for t in out[0, ids.shape[1]:].tolist() if t < 256).decode(errors="replace")
    assert text == want["generated_text"]
    got_map = [[h.policy for h in cache.report().heads if h.layer == l] for l in range(6)]
    assert got_map == want["policy_map"]
