# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""Hugging Face transformers (5.x) through kvsieve: a `Cache` whose layers hand K/V to kvsieve
and an attention function ("kvsieve") that computes each layer's attention in kvsieve's cache.

    cache = kvsieve.hf.Cache(model, policy="fastgen", threshold=0.95)
    model.generate(input_ids, attention_mask=mask, cache=cache, max_new_tokens=64)
    print(cache.report().saved_fraction)

The prompt is prefilled (and profiled) in one forward pass, then one token per pass is decoded;
each KV head of each sequence keeps only what its policy keeps, in kvsieve's pages (real bytes
freed). A batch of B prompts is B kvsieve sequences: padding (left, as generate() wants, or any
other) is read from the attention mask and never enters the cache, so each row is compressed
exactly as it would be alone.
Supported: LLaMA-attention models (LlamaForCausalLM, Mistral, Qwen2: RoPE'd keys, GQA), CPU
tensors in float32 or bfloat16. Not supported (NotImplementedError): a second multi-token pass
after the prompt (chunked prefill, assisted decoding), beam search, cropping, reordering rows.
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
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

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
    return layer.attend(query, attention_mask, scaling), None


AttentionInterface.register(ATTENTION, _kvsieve_attention)
# SDPA's mask: the padding the attention reads, and what the fallback above needs.
AttentionMaskInterface.register(ATTENTION, sdpa_mask)


def _visible_keys(mask: Optional[torch.Tensor], row: int, n_key: int) -> Optional[np.ndarray]:
    """The keys the last query of batch row `row` may see, as booleans (None: all of them).

    `mask` is the 4D mask transformers built ([B or 1, 1, T, n_key]; boolean, or additive with
    0 for visible), or None when nothing is masked beyond causality."""
    if mask is None:
        return None
    if mask.dim() != 4:
        raise ValueError(f"kvsieve.hf: expected a 4D attention mask, got shape {tuple(mask.shape)}")
    last = mask[row if mask.shape[0] > 1 else 0, 0, -1, -n_key:]
    if last.dtype != torch.bool:
        last = last > torch.finfo(last.dtype).min / 2
    return last.cpu().numpy()


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
        self.seen = 0  # positions passed through this layer, padding included (transformers' length)
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

    def attend(self, query: torch.Tensor, mask: Optional[torch.Tensor],
               scaling: Optional[float]) -> torch.Tensor:
        """query: [B, n_head_q, T, d]; returns [B, T, n_head_q, d] as transformers expects."""
        key, value = self.key, self.value
        self.key = self.value = None
        b, _, t, d = query.shape
        if query.device.type != "cpu":
            raise NotImplementedError("kvsieve.hf.Cache runs on the CPU (the host cache)")
        if scaling is not None and abs(scaling - d**-0.5) > 1e-6 * d**-0.5:
            raise NotImplementedError(f"attention scaling {scaling} is not 1/sqrt(head_dim)")
        first = self.seen == 0
        if not first and t != 1:
            raise NotImplementedError(
                f"a {t}-token pass after the prompt (chunked prefill, assisted decoding): kvsieve "
                "decodes one token per pass"
            )
        cache = self.owner.sequences(b)
        # detach(): DLPack refuses tensors that require grad; kvsieve is inference only.
        q = query.detach().transpose(1, 2).contiguous()  # [B, T, Hq, d]
        k = key.detach().transpose(1, 2).contiguous()  # [B, T, Hkv, d]
        v = value.detach().transpose(1, 2).contiguous()
        if q.dtype not in (torch.float32, torch.bfloat16):
            q, k, v = q.float(), k.float(), v.float()
        out = torch.zeros_like(q)  # padded queries read zeros; nothing uses their output
        classes = self.owner.classes(b, t)
        for row in range(b):
            seen = _visible_keys(mask, row, self.seen + t)
            if first:
                keep = None if seen is None or seen.all() else np.flatnonzero(seen)
                if keep is not None and keep.size == 0:
                    raise ValueError(f"kvsieve.hf: batch row {row} is all padding")
                if keep is None:
                    out[row] = cache.prefill(self.index, q[row], k[row], v[row], classes[row],
                                             seq=row)
                else:
                    sel = torch.from_numpy(keep)
                    out[row, sel] = cache.prefill(self.index, q[row, sel], k[row, sel],
                                                  v[row, sel], classes[row][keep], seq=row)
            else:
                if seen is not None and not seen[-1]:
                    raise ValueError(
                        f"kvsieve.hf: the new token of batch row {row} is masked out; padding "
                        "after the prompt cannot be decoded (pad on the left)"
                    )
                cache.decode(self.index, q[row, 0], k[row, 0], v[row, 0], int(classes[row][0]),
                             seq=row, out=out[row, 0])
        self.seen += t
        return out.to(query.dtype)

    def get_mask_sizes(self, query_length: "int | torch.Tensor") -> tuple[int, int]:
        # transformers >= 5.3 passes the query length, earlier 5.x the cache positions.
        if isinstance(query_length, torch.Tensor):
            query_length = query_length.shape[0]
        return self.seen + query_length, 0

    def get_seq_length(self) -> int:
        return self.seen

    def get_max_length(self) -> int:
        return -1

    def get_max_cache_shape(self) -> int:  # abstract before transformers 5.3
        return -1

    def reset(self) -> None:
        self.seen = 0
        self.owner.drop()

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        raise NotImplementedError("kvsieve.hf.Cache does not support beam search")

    def crop(self, max_length: int) -> None:
        raise NotImplementedError("kvsieve.hf.Cache cannot crop: evicted tokens are gone")

    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError("kvsieve.hf.Cache cannot repeat rows (beam search, n > 1)")

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        raise NotImplementedError("kvsieve.hf.Cache cannot select rows (contrastive search)")


class Cache(_HfCache):
    """A transformers Cache that stores K/V in a kvsieve.Cache and attends through it.

    `model`: a LLaMA-attention causal LM on the CPU; constructing the cache switches its
    attention implementation to "kvsieve" (calls without a kvsieve.hf.Cache fall back to SDPA).
    The kvsieve.Cache (`kv`) is made at the first forward pass, with one kvsieve sequence per
    batch row; `reset()` starts over (generate() does not: use one cache per call). Every other
    keyword is kvsieve.Cache's (policy, threshold, local_ratio, frequent_ratio, window, budget,
    n_sinks, page_size, max_pages, dtype, threads, profile, ...)."""

    def __init__(self, model: Any, *, special_ids: Optional[Iterable[int]] = None,
                 punctuation_ids: Iterable[int] = (), **options: Any) -> None:
        cfg = model.config
        n_layer = cfg.num_hidden_layers
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        n_head_kv = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        if "n_seq" in options:
            raise TypeError("kvsieve.hf.Cache takes its sequences from the batch, not n_seq")
        self._geometry = (n_layer, n_head_kv, head_dim, cfg.num_attention_heads)
        self._options = options
        self.kv: Optional[kvsieve.Cache] = None
        self._make(1)  # checks the options now, not at the first forward pass
        self.kv = None
        super().__init__(layers=[_Layer(self, i) for i in range(n_layer)])
        if special_ids is None:
            special_ids = []
            for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
                ids = getattr(cfg, name, None)
                special_ids += ids if isinstance(ids, (list, tuple)) else [] if ids is None else [ids]
        special_ids, punctuation_ids = list(special_ids), list(punctuation_ids)
        size = max([cfg.vocab_size, *special_ids, *punctuation_ids]) + 1
        self._class_of = np.zeros(size, np.uint8)
        self._class_of[punctuation_ids] |= np.uint8(kvsieve.TokenClass.PUNCTUATION)
        self._class_of[special_ids] |= np.uint8(kvsieve.TokenClass.SPECIAL)
        self._ids: Optional[np.ndarray] = None
        # The attention sees no token ids: the embedding's input gives them.
        self._hook = model.get_input_embeddings().register_forward_pre_hook(self._record_ids)
        model.set_attn_implementation(ATTENTION)

    def _make(self, n_seq: int) -> kvsieve.Cache:
        n_layer, n_head_kv, head_dim, n_head_q = self._geometry
        self.kv = kvsieve.Cache(n_layer, n_head_kv, head_dim, n_head_q=n_head_q, n_seq=n_seq,
                                **self._options)
        return self.kv

    def sequences(self, batch: int) -> kvsieve.Cache:
        """The kvsieve cache for a batch of `batch` rows (made at the first pass)."""
        if self.kv is None:
            return self._make(batch)
        if self.kv.n_seq != batch:
            raise ValueError(
                f"kvsieve.hf: this cache holds {self.kv.n_seq} sequences, the pass has {batch} rows"
            )
        return self.kv

    def drop(self) -> None:
        self.kv = None

    def _record_ids(self, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        if args and isinstance(args[0], torch.Tensor):
            self._ids = args[0].detach().cpu().numpy()

    def classes(self, batch: int, t: int) -> np.ndarray:
        """[batch, t]: the token classes of the current pass's last `t` ids (none without ids)."""
        ids = self._ids
        if ids is None or ids.ndim != 2 or ids.shape[0] != batch or ids.shape[1] < t:
            return np.zeros((batch, t), np.uint8)
        return self._class_of[ids[:, -t:]]

    def report(self) -> kvsieve.Report:
        """kvsieve's report over every row (HeadReport.seq is the batch row)."""
        if self.kv is None:
            raise RuntimeError("kvsieve.hf.Cache: nothing has run through this cache yet")
        return self.kv.report()

    def close(self) -> None:
        """Stops recording the model's input ids (the cache stays readable)."""
        self._hook.remove()

    @property
    def is_compileable(self) -> bool:
        return False
