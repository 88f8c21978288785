#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""Writes tests/llama/data/overflow/: a one-layer byte-level LLaMA (hidden 16) whose weights are
all finite but whose logits overflow to +inf at every position holding the byte 'Z', and only
there. kvsieve-generate must stop with a message naming that position (examples/llama CLI tests).

How: hidden dimension 0 carries only the embedding (o_proj and down_proj write nothing into it);
it is 100 for 'Z' and 0 for every other byte. The final norm scales dimension 0 by 1e20 and
every lm_head row reads it with weight 1e20, so at a 'Z' the logits are about 4e40 (float
overflows), elsewhere exactly the small random part. lm_head's row for 'Z' matches the
embedding of 'a', so greedy decoding after "a" generates 'Z' first: "--prompt Z" overflows in
the prefill, "--prompt a" at generation step 1 (position 2, after BOS and 'a').

Interpreter: any Python 3, standard library only. Run from the repository root:
    python3 tools/overflow_model.py
"""
import json
import os
import random
import struct

OUT = os.path.join("tests", "llama", "data", "overflow")
HIDDEN, INTER, HEADS, KV_HEADS, HEAD_DIM, VOCAB = 16, 32, 2, 1, 8, 259
BIG = 1e20
Z, A = ord("Z"), ord("a")

rng = random.Random(9)


def small(rows, cols, scale=0.05):
    return [[rng.uniform(-scale, scale) for _ in range(cols)] for _ in range(rows)]


def ones(n):
    return [[1.0] * n]


embed = small(VOCAB, HIDDEN)
for row in embed:
    row[0] = 0.0
embed[A] = [0.0] + [1.0] * (HIDDEN - 1)
embed[Z] = [100.0] + [0.0] * (HIDDEN - 1)

o_proj = small(HIDDEN, HEADS * HEAD_DIM)
down_proj = small(HIDDEN, INTER)
o_proj[0] = [0.0] * (HEADS * HEAD_DIM)
down_proj[0] = [0.0] * INTER

lm_head = small(VOCAB, HIDDEN)
for row in lm_head:
    row[0] = BIG
lm_head[Z] = [BIG] + [1.0] * (HIDDEN - 1)

norm = [[BIG] + [1.0] * (HIDDEN - 1)]

tensors = {
    "model.embed_tokens.weight": embed,
    "model.layers.0.input_layernorm.weight": ones(HIDDEN),
    "model.layers.0.self_attn.q_proj.weight": small(HEADS * HEAD_DIM, HIDDEN),
    "model.layers.0.self_attn.k_proj.weight": small(KV_HEADS * HEAD_DIM, HIDDEN),
    "model.layers.0.self_attn.v_proj.weight": small(KV_HEADS * HEAD_DIM, HIDDEN),
    "model.layers.0.self_attn.o_proj.weight": o_proj,
    "model.layers.0.post_attention_layernorm.weight": ones(HIDDEN),
    "model.layers.0.mlp.gate_proj.weight": small(INTER, HIDDEN),
    "model.layers.0.mlp.up_proj.weight": small(INTER, HIDDEN),
    "model.layers.0.mlp.down_proj.weight": down_proj,
    "model.norm.weight": norm,
    "lm_head.weight": lm_head,
}

# safetensors: u64 header length, JSON header (padded to 8 bytes), then the F32 data.
header, blobs, offset = {}, [], 0
for name, rows in tensors.items():
    flat = [x for row in rows for x in row]
    blob = struct.pack(f"<{len(flat)}f", *flat)
    shape = [len(rows[0])] if name.endswith("norm.weight") else [len(rows), len(rows[0])]
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(blob)]}
    blobs.append(blob)
    offset += len(blob)
header["__metadata__"] = {"format": "pt", "written_by": "tools/overflow_model.py"}
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)

config = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": HIDDEN,
    "intermediate_size": INTER,
    "num_hidden_layers": 1,
    "num_attention_heads": HEADS,
    "num_key_value_heads": KV_HEADS,
    "head_dim": HEAD_DIM,
    "hidden_act": "silu",
    "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "max_position_embeddings": 64,
    "vocab_size": VOCAB,
    "bos_token_id": 256,
    "eos_token_id": 257,
    "pad_token_id": 258,
    "tie_word_embeddings": False,
    "attention_bias": False,
    "mlp_bias": False,
    "torch_dtype": "float32",
}

os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
with open(os.path.join(OUT, "config.json"), "w") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
print(f"wrote {OUT}")
