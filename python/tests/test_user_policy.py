# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""A policy module of the user's own (examples/python_policy), built against the installed
package with kvsieve_add_python_policies, used by name through kvsieve.Cache."""

import ctypes
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import kvsieve
from conftest import attention, qkv

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "python_policy"


@pytest.fixture(scope="module")
def my_policies(tmp_path_factory):
    if shutil.which("cmake") is None:
        pytest.skip("cmake not found")
    build = tmp_path_factory.mktemp("my_policies")
    cmake_dir = subprocess.run([sys.executable, "-m", "kvsieve", "--cmake-dir"], check=True,
                               capture_output=True, text=True).stdout.strip()
    subprocess.run(["cmake", "-S", str(EXAMPLE), "-B", str(build), f"-Dkvsieve_DIR={cmake_dir}",
                    f"-DPython_EXECUTABLE={sys.executable}", "-DCMAKE_BUILD_TYPE=Release",
                    "-DCMAKE_CXX_FLAGS=-Wall -Wextra -Werror"],
                   check=True, capture_output=True)
    run = subprocess.run(["cmake", "--build", str(build), "-j", str(os.cpu_count() or 1)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    sys.path.insert(0, str(build))
    try:
        import my_policies
    finally:
        sys.path.remove(str(build))
    return my_policies


def test_names_are_registered(my_policies):
    assert my_policies.policy_names == ("every_8th", "recent_top")
    assert kvsieve.policy_names[-2:] == ("every_8th", "recent_top")
    assert kvsieve.policy_names[:-2] == kvsieve.builtin_policy_names
    described = dict(kvsieve.registered_policies())
    assert described["recent_top"].startswith("4 sinks")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_every_8th_keeps_what_it_says(my_policies, rng, dtype):
    n, hq, hkv, d = 45, 4, 2, 16
    q, k, v = qkv(rng, n + 1, hq, hkv, d)
    # T so low that the first rung, every_8th alone, recovers it on every head.
    cache = kvsieve.Cache(1, hkv, d, n_head_q=hq, policy="every_8th", threshold=1e-3, dtype=dtype)
    assert cache.ladder == ["every_8th", "every_8th+local", "full"]
    cache.prefill(0, q[:n], k[:n], v[:n])
    assert [h.policy for h in cache.report().heads] == ["every_8th"] * hkv
    out = cache.decode(0, q[n], k[n], v[n])
    keep = np.zeros((hkv, n + 1), bool)
    keep[:, ::8] = True
    keep[:, n] = True  # the new token is attended before its head evicts
    tol = 1e-5 if dtype == "float32" else 2e-2
    np.testing.assert_allclose(out, attention(q[n], k[: n + 1], v[: n + 1], keep), atol=tol,
                               rtol=tol)
    assert [h.kept for h in cache.report().heads] == [len(range(0, n + 1, 8))] * hkv
    full = kvsieve.Cache(1, hkv, d, n_head_q=hq, policy="every_8th", threshold=1.0)
    full.prefill(0, q[:n], k[:n], v[:n])
    assert [h.policy for h in full.report().heads] == ["full"] * hkv


def test_recent_top_budget_and_errors(my_policies, rng):
    n, hkv, d = 64, 2, 8
    q, k, v = qkv(rng, n + 8, hkv, hkv, d)
    cache = kvsieve.Cache(1, hkv, d, policy="recent_top", budget=10)
    cache.prefill(0, q[:n], k[:n], v[:n])
    for t in range(n, n + 8):
        cache.decode(0, q[t], k[t], v[t])
    assert all(h.kept <= 4 + 10 + 1 for h in cache.report().heads)
    assert all(h.length == n + 8 for h in cache.report().heads)
    # The factory's own check, raised in the module, arrives as kvsieve's exception.
    with pytest.raises(kvsieve.InvalidArgumentError, match="recent_top: budget must be >= 1"):
        kvsieve.Cache(1, hkv, d, policy="recent_top", budget=0)
    # An error from inside the module's cache code crosses as well.
    fresh = kvsieve.Cache(1, hkv, d, policy="recent_top", budget=10)
    with pytest.raises(kvsieve.StateError):
        fresh.decode(0, q[0], k[0], v[0])
    with pytest.raises(kvsieve.InvalidArgumentError, match="replays FastGen's ladder"):
        kvsieve.Cache(1, hkv, d, policy="recent_top", profile=kvsieve.HeadProfile())
    with pytest.raises(kvsieve.InvalidArgumentError, match="every_8th, recent_top"):
        kvsieve.Cache(1, hkv, d, policy="no_such_policy")


class _Entry(ctypes.Structure):
    _fields_ = [("abi", ctypes.c_char_p), ("sizes", ctypes.c_size_t * 5),
                ("make", ctypes.c_void_p)]


def _capsule(entry):
    new = ctypes.pythonapi.PyCapsule_New
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    return new(ctypes.addressof(entry), b"kvsieve.python.policy_entry", None)


def test_registration_refuses_mismatches(my_policies):
    register = kvsieve._core._register_policy
    with pytest.raises(TypeError, match="expected a capsule"):
        register("x", "", object())
    entry = _Entry(b"kvsieve-python-abi 1; kvsieve 0.0.1; libc++", (ctypes.c_size_t * 5)(), 1)
    with pytest.raises(ImportError, match="was built for 'kvsieve-python-abi 1; kvsieve 0.0.1"):
        register("x", "", _capsule(entry))
    assert "x" not in kvsieve.policy_names
    # Names: a built-in one, or one another module has, is refused (by a valid entry).
    valid = kvsieve._core._registered_entry("every_8th")
    with pytest.raises(kvsieve.InvalidArgumentError, match="'h2o' is built in"):
        register("h2o", "", valid)
    with pytest.raises(kvsieve.InvalidArgumentError, match="already registered"):
        register("every_8th", "", valid)
    with pytest.raises(kvsieve.InvalidArgumentError, match="without spaces"):
        register("my policy", "", valid)
