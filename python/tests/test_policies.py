# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""Policies by name: FastGen's choices and memory accounting, budgets, head-profile files."""

import math

import numpy as np
import pytest

import kvsieve
from conftest import qkv

HQ, HKV, D, LAYERS, PAGE = 4, 2, 8, 3, 4


def run(cache, rng, n=40, steps=10, classes=None):
    q, k, v = qkv(rng, n + steps, HQ, HKV, D)
    for layer in range(cache.n_layer):
        cache.prefill(layer, q[:n], k[:n], v[:n], classes)
    for t in range(n, n + steps):
        for layer in range(cache.n_layer):
            cache.decode(layer, q[t], k[t], v[t], kvsieve.TokenClass.NONE)
    return cache.report()


def prompt_classes(n):
    c = np.zeros(n, np.uint8)
    c[0] = kvsieve.TokenClass.SPECIAL
    c[5::7] = kvsieve.TokenClass.PUNCTUATION
    return c


def test_policy_names_are_the_cli_names():
    # policy_names adds the names of imported policy modules (test_user_policy.py) after these.
    assert kvsieve.policy_names[:11] == kvsieve.builtin_policy_names
    assert kvsieve.builtin_policy_names == (
        "fastgen", "full", "local", "frequent", "local+frequent", "streaming",
        "h2o", "tova", "snapkv", "pyramidkv", "adakv",
    )


def test_fastgen_report_is_consistent_with_its_bytes(rng):
    cache = kvsieve.Cache(LAYERS, HKV, D, n_head_q=HQ, page_size=PAGE, policy="fastgen",
                          threshold=0.9)
    assert cache.ladder == [
        "special", "special+punctuation", "special+punctuation+frequent",
        "special+punctuation+frequent+local", "full",
    ]
    r = run(cache, rng, classes=prompt_classes(40))
    assert len(r.heads) == LAYERS * HKV
    assert sum(r.policy_counts.values()) == LAYERS * HKV
    assert list(r.policy_counts) == cache.ladder
    per_token = 2 * D * 4  # K and V of one token of one KV head, float32
    assert r.kv_bytes_full == sum(h.length for h in r.heads) * per_token
    assert r.kv_bytes_kept == sum(h.kept for h in r.heads) * per_token
    pages_full = sum(math.ceil(h.length / PAGE) for h in r.heads)
    page_bytes = r.bytes_full // pages_full
    assert r.bytes_full == pages_full * page_bytes
    # A head holds at most one partial page: resident pages are exactly ceil(kept / page_size).
    assert r.bytes_resident == sum(math.ceil(h.kept / PAGE) for h in r.heads) * page_bytes
    assert r.saved_fraction == pytest.approx(1 - r.bytes_resident / r.bytes_full)
    for h in r.heads:
        assert h.policy == cache.ladder[h.choice]
        assert 0 < h.kept <= h.length == 50
        assert len(h.candidates) == 5
        assert h.recovered == pytest.approx(h.candidates[h.choice])
        # FastGen Eq. 1: the first candidate that recovers T (full always qualifies).
        first = next(i for i, c in enumerate(h.candidates) if c >= 0.9 - 1e-9)
        assert h.choice == min(first, 4)
    assert 0 < r.mean_kept_fraction <= 1


def test_threshold_one_keeps_everything(rng):
    r = run(kvsieve.Cache(1, HKV, D, n_head_q=HQ, policy="fastgen", threshold=1.0), rng)
    assert all(h.policy == "full" and h.kept == h.length for h in r.heads)


@pytest.mark.parametrize("policy", ["h2o", "tova"])
def test_budgeted_policies_hold_at_most_their_budget(rng, policy):
    cache = kvsieve.Cache(2, HKV, D, n_head_q=HQ, policy=policy, budget=12)
    r = run(cache, rng)
    assert all(h.kept <= 12 for h in r.heads)
    assert r.saved_fraction > 0


def test_snapkv_pyramidkv_adakv_and_streaming_run_and_evict(rng):
    for policy in ["snapkv", "pyramidkv", "adakv"]:
        r = run(kvsieve.Cache(2, HKV, D, n_head_q=HQ, policy=policy, budget=4), rng, n=80)
        assert all(h.kept < h.length for h in r.heads), policy
    r = run(kvsieve.Cache(2, HKV, D, n_head_q=HQ, policy="streaming", window=8), rng)
    assert all(h.kept == 4 + 8 for h in r.heads)  # 4 sinks + the window


def test_head_profile_save_load_and_replay(rng, tmp_path):
    cache = kvsieve.Cache(LAYERS, HKV, D, n_head_q=HQ, policy="fastgen", threshold=0.8)
    q, k, v = qkv(rng, 30, HQ, HKV, D)
    for layer in range(LAYERS):
        cache.prefill(layer, q, k, v, prompt_classes(30))
    profile = cache.profile()
    assert profile.threshold == 0.8 and profile.n_layer == LAYERS and profile.n_head_kv == HKV
    assert [e.policy for e in profile.heads] == [h.policy for h in cache.report().heads]
    path = tmp_path / "heads.json"
    profile.save(path)
    loaded = kvsieve.HeadProfile.load(str(path))
    assert loaded == profile
    assert kvsieve.HeadProfile.from_json(profile.to_json()) == profile
    # Replay: the recorded choices on another prompt, whatever its attention.
    replay = kvsieve.Cache(LAYERS, HKV, D, n_head_q=HQ, policy="fastgen", profile=loaded)
    q2, k2, v2 = qkv(rng, 25, HQ, HKV, D)
    for layer in range(LAYERS):
        replay.prefill(layer, q2 * 3, k2, v2)
    assert [h.choice for h in replay.report().heads] == [e.choice for e in profile.heads]
    with pytest.raises(kvsieve.InvalidArgumentError, match="the file is for 3 layers x 2 KV heads"):
        kvsieve.Cache(2, HKV, D, n_head_q=HQ, profile=loaded)
    with pytest.raises(ValueError, match="replays FastGen's ladder"):
        kvsieve.Cache(LAYERS, HKV, D, n_head_q=HQ, policy="full", profile=loaded)


def test_head_profile_parse_errors_are_os_errors(tmp_path):
    with pytest.raises(kvsieve.FileError, match="'format'") as e:
        kvsieve.HeadProfile.from_json('{"format": "other", "version": 1}')
    assert isinstance(e.value, OSError) and isinstance(e.value, kvsieve.Error)
    with pytest.raises(OSError, match="cannot open"):
        kvsieve.HeadProfile.load(tmp_path / "missing.json")
