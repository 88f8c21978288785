# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""kvsieve.Cache: the C++ cache with outputs allocated in the caller's array library."""

from __future__ import annotations

import enum
import sys
from typing import Any, Optional, Sequence, Union

import numpy as np

from kvsieve import _core


class TokenClass(enum.IntFlag):
    """A token's class bits, as FastGen's special and punctuation policies read them."""

    NONE = 0
    SPECIAL = 1
    PUNCTUATION = 2


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".", 1)[0] == "torch"


def _dtype_name(dtype: Any) -> str:
    """'float32' or 'bfloat16' from a string, a numpy dtype or a torch dtype."""
    if isinstance(dtype, str):
        return dtype
    text = str(dtype)  # torch.bfloat16 -> 'torch.bfloat16', np.float32 -> "<class ...float32'>"
    for name in ("bfloat16", "float32"):
        if name in text:
            return name
    return text


def _empty_like(x: Any, shape: tuple[int, ...]) -> Any:
    if _is_torch(x):
        import torch

        return torch.empty(shape, dtype=x.dtype, device=x.device)
    return np.empty(shape, dtype=np.float32)


def _device_index(device: Any) -> int:
    """-1 for the CPU, else the CUDA device ordinal, from 'cpu', 'cuda', 'cuda:N' or a
    torch.device; 'cuda' is torch's current device, as torch.empty(..., device='cuda') reads it."""
    text = str(device)
    if text == "cpu":
        return -1
    if text == "cuda":
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            return int(torch.cuda.current_device())
        return 0
    if text.startswith("cuda:") and text[5:].isdigit():
        return int(text[5:])
    raise _core.InvalidArgumentError(
        f"kvsieve: invalid argument: device '{text}' is not 'cpu', 'cuda' or 'cuda:N'"
    )


def _current_stream(device: int) -> int:
    """torch's current CUDA stream on `device` (a cudaStream_t as an integer), or 0 (the legacy
    default stream) without torch."""
    torch = sys.modules.get("torch")
    if device < 0 or torch is None or not torch.cuda.is_available():
        return 0
    return int(torch.cuda.current_stream(device).cuda_stream)


class Cache(_core.Cache):
    """kvsieve's adaptive KV cache for a whole model (every layer, `n_seq` sequences), on the
    host (`device="cpu"`, the default) or on a CUDA device (`device="cuda"` or "cuda:N").

    Geometry: `n_layer` layers of `n_head_kv` KV heads of `head_dim` dimensions, shared by
    `n_head_q` query heads (0: as many as KV heads; a multiple of `n_head_kv`: GQA/MQA). Pages
    hold `page_size` tokens of one KV head; `max_pages` bounds the pool (0: unbounded).

    Policy by name (`kvsieve.policy_names`) with its parameters:
      fastgen          FastGen's ladder profiled per KV head with threshold T in (0, 1] and the
                       ratios r_l (`local_ratio`), r_f (`frequent_ratio`); with `profile=` a
                       HeadProfile's choices are replayed instead of profiling
      full, local, frequent, local+frequent       one fixed policy on every head
      streaming        4 sinks + a `window` of recent tokens
      h2o, tova, snapkv                           `budget` tokens per KV head
      pyramidkv, adakv SnapKV with per-head budgets whose mean per layer is `budget`

    `dtype` is the pages' storage element, 'float32' or 'bfloat16'; attention is computed in
    float32 either way. `scale` is the logit scale (0: 1/sqrt(head_dim)); `n_sinks` tokens at
    the start are kept by every candidate; `group` reduces a GQA group's attention for profiling
    ('mean' or 'worst'); `threads` run the attention of one call.

    Errors are kvsieve.Error subclasses carrying kvsieve's message (ValueError for bad values
    and shapes, IndexError for indices, RuntimeError for the wrong order, OSError for files);
    arrays of the wrong dtype or device raise TypeError, strided arrays ValueError.
    The compute runs without the GIL; calls on one cache from several threads take turns.

    CUDA (`device="cuda"`; kvsieve.cuda_available() says whether it can work): the page pool
    lives on that device and is allocated here, so `max_pages` (> 0) is required and
    `max_context` (tokens per sequence and layer, 0: the pool) bounds the decode workspace.
    q, k, v and out are CUDA tensors on that device (DLPack; float32 read in place, bfloat16
    widened on the device); each call runs on torch's current stream (or `stream=`, a
    cudaStream_t as an integer). decode does not wait for the device: a pool exhausted during
    decode raises at the next call that synchronises (synchronize(), report(), prefill(),
    release()) until clear_error(). Policies on CUDA: kvsieve.cuda_policy_names.
    """

    def __init__(
        self,
        n_layer: int,
        n_head_kv: int,
        head_dim: int,
        *,
        n_head_q: int = 0,
        n_seq: int = 1,
        page_size: int = 16,
        max_pages: int = 0,
        policy: str = "fastgen",
        threshold: float = 0.95,
        local_ratio: float = 0.3,
        frequent_ratio: float = 0.3,
        window: int = 256,
        budget: int = 256,
        n_sinks: int = 0,
        scale: float = 0.0,
        group: str = "mean",
        dtype: Any = "float32",
        threads: int = 1,
        profile: Optional[_core.HeadProfile] = None,
        max_context: int = 0,
        device: Any = "cpu",
    ) -> None:
        index = _device_index(device)
        super().__init__(
            n_layer,
            n_head_kv,
            head_dim,
            n_head_q=n_head_q,
            n_seq=n_seq,
            page_size=page_size,
            max_pages=max_pages,
            policy=policy,
            threshold=threshold,
            local_ratio=local_ratio,
            frequent_ratio=frequent_ratio,
            window=window,
            budget=budget,
            n_sinks=n_sinks,
            scale=scale,
            group=group,
            dtype=_dtype_name(dtype),
            threads=threads,
            profile=profile,
            max_context=max_context,
            device=index,
            stream=_current_stream(index),
        )
        self._device_index = index

    def prefill(
        self,
        layer: int,
        q: Any,
        k: Any,
        v: Any,
        classes: Union[None, Sequence[int], Any] = None,
        *,
        seq: int = 0,
        out: Any = None,
        stream: Optional[int] = None,
    ) -> Any:
        """Causal attention over a prompt of L tokens for one layer, then profiling and
        compression: each KV head keeps only what its chosen policy keeps.

        q: [L, n_head_q, head_dim]; k, v: [L, n_head_kv, head_dim], keys after RoPE; classes:
        [L] TokenClass values (None: no special or punctuation tokens). Returns the attention
        output [L, n_head_q, head_dim] of q's type and dtype, written into `out` when given
        (no copy for float32). On CUDA, `stream` (default: torch's current stream) orders the
        call; prefill waits for the device before it returns."""
        if classes is None:
            # Sized by k: a q of the wrong length is then the one the shape error blames.
            n = int(k.shape[0]) if hasattr(k, "shape") and len(k.shape) > 0 else 0
            cls = np.zeros(n, dtype=np.uint8)
        else:
            cls = _classes_array(classes)
        if out is None:
            out = _empty_like(q, _out_shape(q, 3))
        if stream is None:
            stream = _current_stream(self._device_index)
        self.prefill_into(layer, q, k, v, cls, out, seq, stream)
        return out

    def decode(
        self,
        layer: int,
        q: Any,
        k: Any,
        v: Any,
        token_class: int = TokenClass.NONE,
        *,
        seq: int = 0,
        out: Any = None,
        stream: Optional[int] = None,
    ) -> Any:
        """One generation step for one layer: the new token's k, v ([n_head_kv, head_dim],
        after RoPE) are appended, q ([n_head_q, head_dim]) attends over each head's resident
        tokens, and each head's policy evicts what it no longer keeps. Returns the output
        [n_head_q, head_dim], written into `out` when given. On CUDA it is enqueued on `stream`
        (default: torch's current stream) and returns without waiting for the device."""
        if out is None:
            out = _empty_like(q, _out_shape(q, 2))
        if stream is None:
            stream = _current_stream(self._device_index)
        self.decode_into(layer, q, k, v, int(token_class), out, seq, stream)
        return out


def _out_shape(q: Any, rank: int) -> tuple[int, ...]:
    shape = getattr(q, "shape", None)
    if shape is None:
        raise TypeError(f"q must be a numpy array or a torch tensor, not {type(q).__name__}")
    if len(shape) != rank:
        raise ValueError(f"q has {len(shape)} dimensions, expected {rank}")
    return tuple(int(s) for s in shape)


def _classes_array(classes: Any) -> np.ndarray:
    if _is_torch(classes):
        classes = classes.detach().cpu().numpy()
    arr = np.asarray(classes)
    if arr.ndim != 1:
        raise ValueError(f"classes has {arr.ndim} dimensions, expected 1")
    if arr.size and (arr.min() < 0 or arr.max() > 3):
        raise _core.InvalidArgumentError(
            "kvsieve: invalid argument: "
            f"classes holds {int(arr.min())}..{int(arr.max())}; a TokenClass is 0 to 3"
        )
    return np.ascontiguousarray(arr, dtype=np.uint8)
