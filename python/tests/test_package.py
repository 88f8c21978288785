# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""The installed package ships its type information and releases the GIL during compute."""

import pathlib
import threading

import numpy as np

import kvsieve
from conftest import qkv


def test_stub_and_py_typed_are_installed():
    root = pathlib.Path(kvsieve.__file__).parent
    assert (root / "py.typed").is_file()
    stub = (root / "_core.pyi").read_text()
    assert "class Cache:" in stub and "def prefill_into(" in stub
    assert "class InvalidArgumentError(Error, ValueError):" in stub
    assert "def cuda_available() -> bool:" in stub and "def synchronize(self) -> None:" in stub


def test_caches_in_threads_give_the_same_results(rng):
    q, k, v = qkv(rng, 200, 8, 2, 32)
    results = {}

    def work(i):
        cache = kvsieve.Cache(4, 2, 32, n_head_q=8, policy="fastgen")
        results[i] = [cache.prefill(layer, q, k, v) for layer in range(4)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in (1, 2):
        for a, b in zip(results[0], results[i]):
            np.testing.assert_array_equal(a, b)
