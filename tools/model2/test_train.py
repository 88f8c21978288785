"""Checks train.py's fused head + cross-entropy (ChunkedHeadLoss) against transformers' own
logits and torch's cross_entropy: the same loss and the same gradients for every parameter.

Interpreter: the Python of train.py (torch, transformers, sentencepiece, numpy).
Run: python -m pytest tools/model2
"""

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train  # noqa: E402


def small_model():
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = dict(train.MODEL_CFG, vocab_size=300, hidden_size=64, intermediate_size=96,
               num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16)
    torch.manual_seed(1)
    return LlamaForCausalLM(LlamaConfig(**cfg))


def reference(model, x, y, amp):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        logits = model(input_ids=x).logits
    return torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                             y.reshape(-1))


@pytest.mark.parametrize("amp,tol", [(False, 1e-5), (True, 2e-2)])
@pytest.mark.parametrize("chunk", [7, 64, 1000])  # uneven chunks, whole rows, one chunk
def test_fused_loss_matches_plain_cross_entropy(amp, tol, chunk):
    model = small_model()
    g = torch.Generator().manual_seed(chunk)
    tokens = torch.randint(0, 300, (3, 33), generator=g)
    x, y = tokens[:, :-1], tokens[:, 1:]
    want = reference(model, x, y, amp)
    want.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    got = train.train_loss(model, x, y, amp, chunk=chunk)
    got.backward()
    assert got.item() == pytest.approx(want.item(), rel=1e-6 if not amp else 1e-3)
    for n, p in model.named_parameters():
        scale = grads[n].abs().max().item()
        assert scale > 0, n
        assert (p.grad - grads[n]).abs().max().item() <= tol * scale, n
