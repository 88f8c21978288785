# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""Writes a Hugging Face LLaMA directory with the byte-level vocabulary of models/tiny-llama as a
GGUF file for llama.cpp, F32 weights, so that llama.cpp runs the same arithmetic as kvsieve.

    /work/venv/bin/python bench/llama_cpp/to_gguf.py models/tiny-llama /tmp/tiny-llama-f32.gguf

Interpreter: any Python 3.9+ with `gguf` (PyPI), `numpy` and `safetensors` (/work/venv/bin/python
has them). llama.cpp's own convert_hf_to_gguf.py needs a tokenizer.model or tokenizer.json, which
the byte-level model does not have, so the file is written here with gguf.GGUFWriter directly:

- vocabulary as a SentencePiece ("llama") vocabulary without pieces: ids 0..255 are the byte
  tokens <0x00>..<0xFF> (type BYTE), 256 <s>, 257 </s>, 258 <pad> (type CONTROL); no space prefix.
  Text then tokenizes byte by byte exactly as models/tiny-llama/README.md says.
- q_proj / k_proj rows permuted from Hugging Face's rotate_half layout to the interleaved pairs
  of llama.cpp's RoPE, as convert_hf_to_gguf.py does (a permutation of each head's dimensions:
  the attention scores are unchanged).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    # [n_head * d, in]: row (h, half, i) -> (h, i, half), as convert_hf_to_gguf.LlamaModel.permute.
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(
        w.shape)


def main(model_dir: Path, out: Path) -> None:
    cfg = json.loads((model_dir / "config.json").read_text())
    tensors = load_file(str(model_dir / "model.safetensors"))
    n_head = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads") or n_head
    hidden = cfg["hidden_size"]
    head_dim = cfg.get("head_dim") or hidden // n_head
    vocab = cfg["vocab_size"]
    if vocab != 259 or head_dim * n_head != hidden:
        sys.exit("to_gguf.py: expects the byte-level vocabulary of models/tiny-llama "
                 "(259 ids) and head_dim * n_head == hidden_size")

    w = gguf.GGUFWriter(str(out), "llama")
    w.add_name(model_dir.name)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(hidden)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(float(cfg.get("rope_theta", 10000.0)))
    w.add_layer_norm_rms_eps(float(cfg["rms_norm_eps"]))
    w.add_vocab_size(vocab)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)

    w.add_tokenizer_model("llama")
    tokens = [f"<0x{b:02X}>".encode() for b in range(256)] + [b"<s>", b"</s>", b"<pad>"]
    types = [gguf.TokenType.BYTE] * 256 + [gguf.TokenType.CONTROL] * 3
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * vocab)
    w.add_token_types(types)
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    w.add_pad_token_id(cfg["pad_token_id"])
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(False)

    def put(name: str, a: np.ndarray) -> None:
        w.add_tensor(name, np.ascontiguousarray(a, dtype=np.float32))

    put("token_embd.weight", tensors["model.embed_tokens.weight"])
    put("output_norm.weight", tensors["model.norm.weight"])
    put("output.weight", tensors.get("lm_head.weight", tensors["model.embed_tokens.weight"]))
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        put(f"blk.{i}.attn_norm.weight", tensors[p + "input_layernorm.weight"])
        put(f"blk.{i}.attn_q.weight", permute(tensors[p + "self_attn.q_proj.weight"], n_head))
        put(f"blk.{i}.attn_k.weight", permute(tensors[p + "self_attn.k_proj.weight"], n_kv))
        put(f"blk.{i}.attn_v.weight", tensors[p + "self_attn.v_proj.weight"])
        put(f"blk.{i}.attn_output.weight", tensors[p + "self_attn.o_proj.weight"])
        put(f"blk.{i}.ffn_norm.weight", tensors[p + "post_attention_layernorm.weight"])
        put(f"blk.{i}.ffn_gate.weight", tensors[p + "mlp.gate_proj.weight"])
        put(f"blk.{i}.ffn_up.weight", tensors[p + "mlp.up_proj.weight"])
        put(f"blk.{i}.ffn_down.weight", tensors[p + "mlp.down_proj.weight"])

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"to_gguf.py: wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: to_gguf.py MODEL_DIR OUT.gguf")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
