# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""Bad input raises a Python exception carrying kvsieve's message, never a crash."""

import numpy as np
import pytest

import kvsieve
from conftest import qkv

HQ, HKV, D = 4, 2, 8


@pytest.fixture
def cache():
    return kvsieve.Cache(2, HKV, D, n_head_q=HQ, policy="full")


@pytest.fixture
def arrays(rng):
    return qkv(rng, 6, HQ, HKV, D)


def test_exception_hierarchy():
    assert issubclass(kvsieve.InvalidArgumentError, kvsieve.Error)
    assert issubclass(kvsieve.InvalidArgumentError, ValueError)
    assert issubclass(kvsieve.ShapeError, ValueError)
    assert issubclass(kvsieve.OutOfRangeError, IndexError)
    assert issubclass(kvsieve.StateError, RuntimeError)
    assert issubclass(kvsieve.OutOfMemoryError, MemoryError)
    assert issubclass(kvsieve.FileError, OSError)
    assert kvsieve.InvalidArgumentError.__module__ == "kvsieve"


@pytest.mark.parametrize("t", [0.0, -0.1, 1.5, float("nan")])
def test_threshold_outside_unit_interval(t):
    with pytest.raises(kvsieve.InvalidArgumentError, match=r"recovery threshold T must be in \(0, 1\]"):
        kvsieve.Cache(1, HKV, D, policy="fastgen", threshold=t)


def test_bad_construction_arguments():
    with pytest.raises(ValueError, match="unknown policy 'h3o' \\(one of: fastgen, full"):
        kvsieve.Cache(1, HKV, D, policy="h3o")
    with pytest.raises(ValueError, match="local ratio r_l"):
        kvsieve.Cache(1, HKV, D, policy="local", local_ratio=1.5)
    with pytest.raises(ValueError, match="n_head_q \\(3\\) must be a positive multiple of n_head_kv"):
        kvsieve.Cache(1, HKV, D, n_head_q=3)
    with pytest.raises(ValueError, match="dtype 'float16' is not a storage element"):
        kvsieve.Cache(1, HKV, D, dtype="float16")
    with pytest.raises(ValueError, match="budget must be >= 0"):
        kvsieve.Cache(1, HKV, D, policy="adakv", budget=-1)


def test_layer_and_sequence_out_of_range(cache, arrays):
    q, k, v = arrays
    with pytest.raises(IndexError, match=r"kvsieve: out of range: layer index 2 outside \[0, 2\)"):
        cache.prefill(2, q, k, v)
    with pytest.raises(kvsieve.OutOfRangeError, match="sequence index 1 outside"):
        cache.prefill(0, q, k, v, seq=1)


def test_wrong_dtype_is_a_type_error(cache, arrays):
    q, k, v = arrays
    with pytest.raises(TypeError, match="q has dtype code 2 with 64 bits; expected float32 or bfloat16"):
        cache.prefill(0, q.astype(np.float64), k, v)
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="must share one dtype"):
        cache.prefill(0, torch.from_numpy(q), torch.from_numpy(k).bfloat16(), torch.from_numpy(v))
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        cache.prefill(0, q.tolist(), k, v)


def test_wrong_shape_carries_kvsieve_message(cache, arrays):
    q, k, v = arrays
    with pytest.raises(kvsieve.ShapeError, match=r"prefill k has shape \[6, 1, 8\], expected \[6, 2, 8\]"):
        cache.prefill(0, q, k[:, :1].copy(), v)
    with pytest.raises(ValueError, match="prefill q has 5 rows, prefill out has 5 rows, but k, v, classes have 6"):
        cache.prefill(0, q[:5], k, v)
    with pytest.raises(ValueError, match="k has 2 dimensions, expected 3"):
        cache.prefill(0, q, k[0], v)


def test_non_contiguous_arrays_are_rejected(cache, arrays):
    q, k, v = arrays
    strided = np.asfortranarray(k)
    with pytest.raises(ValueError, match="k is not C-contiguous"):
        cache.prefill(0, q, strided, v)
    with pytest.raises(ValueError, match="out is not C-contiguous"):
        cache.prefill(0, q, k, v, out=np.empty((HQ, D, 6), np.float32).transpose(2, 0, 1))


def test_read_only_output_is_rejected(cache, arrays):
    q, k, v = arrays
    out = np.empty_like(q)
    out.setflags(write=False)
    with pytest.raises(TypeError):
        cache.prefill(0, q, k, v, out=out)


def test_read_only_inputs_are_accepted(cache, arrays):
    q, k, v = arrays
    for a in (q, k, v):
        a.setflags(write=False)
    assert cache.prefill(0, q, k, v).shape == q.shape


def test_order_errors(cache, arrays):
    q, k, v = arrays
    with pytest.raises(kvsieve.StateError, match="decode before prefill for sequence 0 layer 0"):
        cache.decode(0, q[0], k[0], v[0])
    cache.prefill(0, q, k, v)
    with pytest.raises(RuntimeError, match="already prefilled; release\\(0\\) first"):
        cache.prefill(0, q, k, v)
    cache.release(0)
    cache.prefill(0, q, k, v)


def test_bad_token_classes(cache, arrays):
    q, k, v = arrays
    with pytest.raises(ValueError, match="TokenClass"):
        cache.prefill(0, q, k, v, [0, 1, 2, 9, 0, 0])
    with pytest.raises(ValueError, match="classes has 2 rows"):
        cache.prefill(0, q, k, v, [0, 1])
    cache.prefill(0, q, k, v)
    with pytest.raises(ValueError, match="token class 8"):
        cache.decode(0, q[0], k[0], v[0], 8)


def test_exhausted_page_pool(arrays):
    q, k, v = arrays
    small = kvsieve.Cache(1, HKV, D, n_head_q=HQ, policy="full", page_size=2, max_pages=6)
    small.prefill(0, q, k, v)  # 2 heads x 3 pages
    with pytest.raises(kvsieve.OutOfMemoryError, match="page pool cannot hold one more token"):
        small.decode(0, q[0], k[0], v[0])
    assert small.length(0, 0) == 6  # unchanged
