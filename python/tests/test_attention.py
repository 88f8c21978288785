# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""Outputs of prefill and decode against brute-force attention written in numpy (conftest)."""

import math

import numpy as np
import pytest

import kvsieve
from conftest import attention, causal_attention, qkv

try:
    import torch
except ImportError:  # the numpy tests still run
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="needs torch")

HQ, HKV, D, LAYERS = 8, 2, 16, 2


def test_full_policy_prefill_and_decode_equal_brute_force_attention_with_gqa(rng):
    cache = kvsieve.Cache(LAYERS, HKV, D, n_head_q=HQ, policy="full")
    n, steps = 23, 6
    q, k, v = qkv(rng, n + steps, HQ, HKV, D)
    for layer in range(LAYERS):
        out = cache.prefill(layer, q[:n], k[:n], v[:n])
        assert isinstance(out, np.ndarray) and out.dtype == np.float32
        np.testing.assert_allclose(out, causal_attention(q[:n], k[:n], v[:n]), atol=1e-5)
    for t in range(n, n + steps):
        for layer in range(LAYERS):
            out = cache.decode(layer, q[t], k[t], v[t])
            want = attention(q[t], k[: t + 1], v[: t + 1], np.ones((HKV, t + 1), bool))
            np.testing.assert_allclose(out, want, atol=1e-5)
    assert cache.length(0, 1) == n + steps
    r = cache.report()
    assert [h.kept for h in r.heads] == [n + steps] * (LAYERS * HKV)
    assert r.saved_fraction == 0.0 and r.bytes_resident == r.bytes_full


def test_local_policy_decode_attends_over_the_window_only(rng):
    ratio = 0.25
    cache = kvsieve.Cache(1, HKV, D, n_head_q=HQ, policy="local", local_ratio=ratio)
    n, steps = 20, 12
    q, k, v = qkv(rng, n + steps, HQ, HKV, D)
    np.testing.assert_allclose(
        cache.prefill(0, q[:n], k[:n], v[:n]), causal_attention(q[:n], k[:n], v[:n]), atol=1e-5
    )
    begin = n - math.ceil(ratio * n)  # the window after prefill: the last ceil(r_l * L) tokens
    for t in range(n + 1, n + steps + 1):  # t: the length with the new token
        keep = np.zeros((HKV, t), bool)
        keep[:, begin:] = True  # the window so far, and the new token at position t - 1
        out = cache.decode(0, q[t - 1], k[t - 1], v[t - 1])
        np.testing.assert_allclose(out, attention(q[t - 1], k[:t], v[:t], keep), atol=1e-5)
        begin = max(begin, t - math.ceil(ratio * t))  # fastgen-spec §2: t - 1 - pos >= w_t leaves
        assert all(h.kept == t - begin for h in cache.report().heads)


@needs_torch
def test_torch_tensors_in_torch_tensors_out_and_out_is_written_in_place(rng):
    cache = kvsieve.Cache(1, HKV, D, n_head_q=HQ, policy="full")
    q, k, v = (torch.from_numpy(a) for a in qkv(rng, 9, HQ, HKV, D))
    out = torch.full((8, HQ, D), float("nan"))
    got = cache.prefill(0, q[:8], k[:8], v[:8], out=out)
    assert got is out  # no copy: the C++ cache wrote into the caller's buffer
    want = causal_attention(q[:8].numpy(), k[:8].numpy(), v[:8].numpy())
    np.testing.assert_allclose(out.numpy(), want, atol=1e-5)
    out1 = np.empty((HQ, D), np.float32)
    address = out1.ctypes.data
    assert cache.decode(0, q[8], k[8], v[8], out=out1) is out1
    assert out1.ctypes.data == address


@needs_torch
def test_bfloat16_inputs_and_pages_agree_with_float32_within_bfloat16_tolerance(rng):
    n, steps = 30, 5
    q, k, v = qkv(rng, n + steps, HQ, HKV, D)
    ref = kvsieve.Cache(1, HKV, D, n_head_q=HQ, policy="full")
    bf = kvsieve.Cache(1, HKV, D, n_head_q=HQ, policy="full", dtype=torch.bfloat16)
    assert bf.dtype == "bfloat16" and ref.dtype == "float32"
    tb = [torch.from_numpy(a).to(torch.bfloat16) for a in (q, k, v)]
    out = bf.prefill(0, tb[0][:n], tb[1][:n], tb[2][:n])
    assert out.dtype == torch.bfloat16
    np.testing.assert_allclose(
        out.float().numpy(), ref.prefill(0, q[:n], k[:n], v[:n]), atol=3e-2, rtol=3e-2
    )
    for t in range(n, n + steps):
        got = bf.decode(0, tb[0][t], tb[1][t], tb[2][t]).float().numpy()
        np.testing.assert_allclose(got, ref.decode(0, q[t], k[t], v[t]), atol=3e-2, rtol=3e-2)
    # bfloat16 pages hold half the K/V bytes of float32 ones.
    assert bf.report().kv_bytes_full * 2 == ref.report().kv_bytes_full


def test_float32_inputs_into_bfloat16_pages(rng):
    q, k, v = qkv(rng, 12, HQ, HKV, D)
    cache = kvsieve.Cache(1, HKV, D, n_head_q=HQ, policy="full", dtype="bfloat16")
    out = cache.prefill(0, q, k, v)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, causal_attention(q, k, v), atol=1e-5)  # prefill: exact K/V
