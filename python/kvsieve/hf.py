# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""Hugging Face transformers (5.x) through kvsieve: a `Cache` whose layers hand K/V to kvsieve
and an attention function ("kvsieve") that computes each layer's attention in kvsieve's cache.

    cache = kvsieve.hf.Cache(model, policy="fastgen", threshold=0.95)
    model.generate(input_ids, past_key_values=cache, max_new_tokens=64)
    print(cache.report().saved_fraction)

The prompt is prefilled (and profiled) in one forward pass, then one token per pass is decoded;
each KV head keeps only what its policy keeps, in kvsieve's pages (real bytes freed).
Supported: LLaMA-attention models (LlamaForCausalLM, Mistral, Qwen2: RoPE'd keys, GQA), batch 1,
CPU tensors in float32 or bfloat16. Not supported (NotImplementedError): batches of more than
one sequence (so no left padding), a second multi-token pass after the prompt (chunked prefill,
assisted decoding), beam search, cropping.
Token classes for FastGen's special and punctuation rungs come from the input ids: `special_ids`
(default: the config's bos, eos and pad ids) and `punctuation_ids` (default: none).
"""

from __future__ import annotations

import threading
from typing import Any, Iterable, Optional

import numpy as np
import torch
from transformers import AttentionInterface
from transformers.cache_utils import Cache as _HfCache
from transformers.cache_utils import CacheLayerMixin
from transformers.integrations.sdpa_attention import sdpa_attention_forward

import kvsieve

ATTENTION = "kvsieve"

# The layer whose update() ran last on this thread: LlamaAttention calls cache.update() and then
# the attention function with the tensors update() returned, one layer at a time.
_pending = threading.local()


def _kvsieve_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Optional[torch.Tensor],
    dropout: float = 0.0,
    scaling: Optional[float] = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    layer = getattr(_pending, "layer", None)
    _pending.layer = None
    if layer is None or layer.key is not key:  # not a kvsieve.hf.Cache pass: plain attention
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    return layer.attend(query, scaling), None


AttentionInterface.register(ATTENTION, _kvsieve_attention)


class _Layer(CacheLayerMixin):
    """One decoder layer's view of the kvsieve cache; its tokens live in kvsieve's pages."""

    is_compileable = False
    is_croppable = False
    supports_early_init = False
    is_sliding = False

    def __init__(self, owner: "Cache", index: int) -> None:
        super().__init__()
        self.owner = owner
        self.index = index
        self.key: Optional[torch.Tensor] = None
        self.value: Optional[torch.Tensor] = None

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        self.is_initialized = True
        self.key, self.value = key_states, value_states
        _pending.layer = self
        return key_states, value_states

    def attend(self, query: torch.Tensor, scaling: Optional[float]) -> torch.Tensor:
        """query: [1, n_head_q, T, d]; returns [1, T, n_head_q, d] as transformers expects."""
        key, value = self.key, self.value
        self.key = self.value = None
        b, _, t, d = query.shape
        if b != 1:
            raise NotImplementedError(
                f"kvsieve.hf.Cache runs one sequence at a time (batch {b}); batches, and so left "
                "padding, are not supported yet"
            )
        if query.device.type != "cpu":
            raise NotImplementedError("kvsieve.hf.Cache runs on the CPU (the host cache)")
        if scaling is not None and abs(scaling - d**-0.5) > 1e-6 * d**-0.5:
            raise NotImplementedError(f"attention scaling {scaling} is not 1/sqrt(head_dim)")
        cache = self.owner.kv
        # detach(): DLPack refuses tensors that require grad; kvsieve is inference only.
        q = query[0].detach().transpose(0, 1).contiguous()  # [T, Hq, d]
        k = key[0].detach().transpose(0, 1).contiguous()  # [T, Hkv, d]
        v = value[0].detach().transpose(0, 1).contiguous()
        if q.dtype not in (torch.float32, torch.bfloat16):
            q, k, v = q.float(), k.float(), v.float()
        if cache.length(0, self.index) == 0:
            out = cache.prefill(self.index, q, k, v, self.owner.classes(t))
        elif t == 1:
            out = cache.decode(self.index, q[0], k[0], v[0], int(self.owner.classes(1)[0]))
            out = out.unsqueeze(0)
        else:
            raise NotImplementedError(
                f"a {t}-token pass after the prompt (chunked prefill, assisted decoding): kvsieve "
                "decodes one token per pass"
            )
        return out.to(query.dtype).unsqueeze(0)

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.get_seq_length() + query_length, 0

    def get_seq_length(self) -> int:
        return self.owner.kv.length(0, self.index)

    def get_max_length(self) -> int:
        return -1

    def reset(self) -> None:
        self.owner.kv.release(0)

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        raise NotImplementedError("kvsieve.hf.Cache does not support beam search")


class Cache(_HfCache):
    """A transformers Cache that stores K/V in a kvsieve.Cache and attends through it.

    `model`: a LLaMA-attention causal LM on the CPU; constructing the cache switches its
    attention implementation to "kvsieve" (calls without a kvsieve.hf.Cache fall back to SDPA).
    Every other keyword is kvsieve.Cache's (policy, threshold, local_ratio, frequent_ratio,
    window, budget, n_sinks, page_size, dtype, threads, profile, ...)."""

    def __init__(self, model: Any, *, special_ids: Optional[Iterable[int]] = None,
                 punctuation_ids: Iterable[int] = (), **options: Any) -> None:
        cfg = model.config
        n_layer = cfg.num_hidden_layers
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        n_head_kv = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        self.kv = kvsieve.Cache(n_layer, n_head_kv, head_dim, n_head_q=cfg.num_attention_heads,
                                **options)
        super().__init__(layers=[_Layer(self, i) for i in range(n_layer)])
        if special_ids is None:
            special_ids = []
            for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
                ids = getattr(cfg, name, None)
                special_ids += ids if isinstance(ids, (list, tuple)) else [] if ids is None else [ids]
        size = max([cfg.vocab_size, *special_ids, *punctuation_ids]) + 1
        self._class_of = np.zeros(size, np.uint8)
        self._class_of[list(punctuation_ids)] |= np.uint8(kvsieve.TokenClass.PUNCTUATION)
        self._class_of[list(special_ids)] |= np.uint8(kvsieve.TokenClass.SPECIAL)
        self._ids: Optional[np.ndarray] = None
        # The attention sees no token ids: the embedding's input gives them.
        self._hook = model.get_input_embeddings().register_forward_pre_hook(self._record_ids)
        model.set_attn_implementation(ATTENTION)

    def _record_ids(self, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        if args and isinstance(args[0], torch.Tensor):
            self._ids = args[0].detach().cpu().numpy()

    def classes(self, t: int) -> np.ndarray:
        """The token classes of the current pass's last `t` ids (none without ids)."""
        if self._ids is None or self._ids.shape[-1] < t:
            return np.zeros(t, np.uint8)
        return self._class_of[self._ids.reshape(-1)[-t:]]

    def report(self) -> kvsieve.Report:
        return self.kv.report()

    def close(self) -> None:
        """Stops recording the model's input ids (the cache stays readable)."""
        self._hook.remove()

    @property
    def is_compileable(self) -> bool:
        return False
