# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""Shared references: attention written directly in numpy, independent of kvsieve."""

import numpy as np
import pytest


def attention(q, k, v, keep):
    """Softmax attention of one query row per head over the tokens `keep` selects.

    q: [Hq, d]; k, v: [T, Hkv, d]; keep: [Hkv, T] booleans. Query head h reads KV head
    h // (Hq // Hkv) (GQA). float64 throughout."""
    hq, d = q.shape
    hkv = k.shape[1]
    group = hq // hkv
    out = np.zeros((hq, d))
    for h in range(hq):
        kh = h // group
        idx = np.nonzero(keep[kh])[0]
        logits = (k[idx, kh].astype(np.float64) @ q[h].astype(np.float64)) / np.sqrt(d)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        out[h] = p @ v[idx, kh].astype(np.float64)
    return out


def causal_attention(q, k, v):
    """Prefill reference: row i attends to tokens 0..i. q: [L, Hq, d]; k, v: [L, Hkv, d]."""
    n, _, _ = q.shape
    hkv = k.shape[1]
    return np.stack(
        [attention(q[i], k[: i + 1], v[: i + 1], np.ones((hkv, i + 1), bool)) for i in range(n)]
    )


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def qkv(rng, n, hq, hkv, d):
    return (
        rng.standard_normal((n, hq, d)).astype(np.float32),
        rng.standard_normal((n, hkv, d)).astype(np.float32),
        rng.standard_normal((n, hkv, d)).astype(np.float32),
    )
