# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""kvsieve: adaptive KV-cache compression (FastGen, Ge et al., ICLR 2024) and the field's
policies (StreamingLLM, H2O, TOVA, SnapKV, PyramidKV, Ada-KV) on kvsieve's C++ cache.

    cache = kvsieve.Cache(n_layer=2, n_head_kv=2, head_dim=64, n_head_q=8,
                          policy="fastgen", threshold=0.95)
    out = cache.prefill(layer, q, k, v, classes)   # q: [L, n_head_q, d], k, v: [L, n_head_kv, d]
    out = cache.decode(layer, q, k, v)             # q: [n_head_q, d], k, v: [n_head_kv, d]
    print(cache.report().saved_fraction)

Arrays are numpy arrays or torch CPU tensors, float32 (not copied) or bfloat16. Where the
package was built with CUDA (kvsieve.cuda_built()), `kvsieve.Cache(..., device="cuda",
max_pages=N)` is the device cache, taking torch CUDA tensors on torch's current stream.
`kvsieve.policy_names` lists the policies by name: the built-in ones and those of every imported
policy module (your own C++ ladders; docs/python.md, "Your own policy").
"""

from kvsieve._cache import Cache, TokenClass
from kvsieve._core import (
    DeviceError,
    Error,
    FileError,
    HeadProfile,
    HeadReport,
    InvalidArgumentError,
    OutOfMemoryError,
    OutOfRangeError,
    ProfiledHead,
    Report,
    ShapeError,
    StateError,
    builtin_policy_names,
    cuda_available,
    cuda_built,
    cuda_policy_names,
    registered_policies,
)

__version__ = "0.1.0"

# Tracebacks and reprs say kvsieve.InvalidArgumentError, where the classes are meant to be used.
for _error in (Error, InvalidArgumentError, ShapeError, OutOfRangeError, StateError,
               OutOfMemoryError, FileError, DeviceError):
    _error.__module__ = "kvsieve"
del _error


def __getattr__(name: str):
    # policy_names grows when a policy module (kvsieve/python/extension.hpp) is imported.
    if name == "policy_names":
        return builtin_policy_names + tuple(n for n, _ in registered_policies())
    raise AttributeError(f"module 'kvsieve' has no attribute '{name}'")

__all__ = [
    "Cache",
    "DeviceError",
    "Error",
    "FileError",
    "HeadProfile",
    "HeadReport",
    "InvalidArgumentError",
    "OutOfMemoryError",
    "OutOfRangeError",
    "ProfiledHead",
    "Report",
    "ShapeError",
    "StateError",
    "TokenClass",
    "builtin_policy_names",
    "cuda_available",
    "cuda_built",
    "cuda_policy_names",
    "policy_names",
    "registered_policies",
]
