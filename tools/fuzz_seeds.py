#!/usr/bin/env python3
"""Writes the seed corpora of the libFuzzer targets, tests/fuzz/corpus/<target>/ (see
tests/fuzz/README.md): small valid inputs taken from the test fixtures and hand-made edge cases,
each a few bytes to 15 KB, so that the fuzzers start from files that reach deep into the loaders.

Interpreter: any Python 3 (standard library only) for everything but the one trained tokenizer
seed, which needs the sentencepiece binding (/work/venv/bin/python has 0.2.3; without it that
seed is kept as committed). Run from the repository root:
    /work/venv/bin/python tools/fuzz_seeds.py
The output is deterministic; findings of fuzzing runs are added to the corpora by hand (named
after what they found), not by this script, which leaves files it did not write alone.
It also writes tests/llama/data/spm/charsmap.model (the trained seed below), a fixture of
tests/llama/bad_tokenizer_test.cpp.
"""
import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
DATA = os.path.join(ROOT, "tests", "llama", "data")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- safetensors

def tiny_specs(lm_head=True):
    """The tiny model of tests/fuzz/fuzz_common.hpp: (name, shape) in HF order."""
    specs = [("model.embed_tokens.weight", [10, 8])]
    for l in range(2):
        at = lambda what: f"model.layers.{l}.{what}.weight"
        specs += [(at("input_layernorm"), [8]), (at("self_attn.q_proj"), [8, 8]),
                  (at("self_attn.k_proj"), [4, 8]), (at("self_attn.v_proj"), [4, 8]),
                  (at("self_attn.o_proj"), [8, 8]), (at("post_attention_layernorm"), [8]),
                  (at("mlp.gate_proj"), [12, 8]), (at("mlp.up_proj"), [12, 8]),
                  (at("mlp.down_proj"), [8, 12])]
    specs.append(("model.norm.weight", [8]))
    if lm_head:
        specs.append(("lm_head.weight", [10, 8]))
    return specs


def count(shape):
    n = 1
    for e in shape:
        n *= e
    return n


def element(dtype, i):
    """Element i of a tensor: k/4 for k in 0..7, exact in every float dtype."""
    x = (i % 8) / 4.0
    if dtype == "F32":
        return struct.pack("<f", x)
    if dtype == "BF16":
        return struct.pack("<f", x)[2:]
    if dtype == "F16":
        return struct.pack("<e", x)
    raise ValueError(dtype)


def safetensors(tensors, metadata=None, pad=True, extra=b""):
    """tensors: (name, dtype, shape, bytes or None for generated values)."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    data = b""
    for name, dtype, shape, raw in tensors:
        if raw is None:
            raw = b"".join(element(dtype, i) for i in range(count(shape)))
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data + extra


def safetensors_seeds():
    for dtype in ("F32", "BF16", "F16"):
        tensors = [(n, dtype, s, None) for n, s in tiny_specs()]
        write("safetensors", f"tiny-model-{dtype.lower()}", safetensors(tensors, {"format": "pt"}))
    # Mixed dtypes, a scalar, an empty tensor, an unknown dtype, unpadded (F32 unaligned).
    write("safetensors", "mixed", safetensors([
        ("a", "F32", [2, 3], None), ("b", "F16", [7], None), ("c", "BF16", [3, 2], None),
        ("scalar", "F32", [], None), ("empty", "BF16", [0, 3], b""),
        ("ids", "I64", [3], struct.pack("<3q", 0, 1, 2)), ("q", "F8_E4M3", [4], b"\x01\x02\x03\x04"),
        ("unknown", "Q4_K", [1 << 30, 1 << 30], b""),
    ], {"format": "pt", "note": "seed"}, pad=False))
    # Non-finite values in a weight the model loads.
    specs = tiny_specs()
    tensors = [(n, "F32", s, None) for n, s in specs]
    tensors[-2] = ("model.norm.weight", "F32", [8], struct.pack("<8f", *([1.0] * 7 + [float("nan")])))
    write("safetensors", "nan-weight", safetensors(tensors))
    write("safetensors", "empty-header", struct.pack("<Q", 8) + b"{}      ")
    write("safetensors", "header-only-metadata", safetensors([], {"format": "pt"}))
    whole = safetensors([(n, "BF16", s, None) for n, s in tiny_specs()])
    write("safetensors", "truncated", whole[: len(whole) - 7])
    write("safetensors", "nested-header",
          struct.pack("<Q", 48) + b'{"x": {"dtype": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}}')
    write("safetensors", "short", b"\x05\x00\x00")
    # The header of the Python-written random-mha checkpoint, data cut off.
    rnd = os.path.join(DATA, "random-mha", "model.safetensors")
    with open(rnd, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    write("safetensors", "random-mha-header", raw[: 8 + n + 64])


# ---------------------------------------------------------------- index

def index_seeds():
    first = {n for n, _ in tiny_specs() if n.startswith("model.embed") or ".layers.0." in n}
    weight_map = {n: ("model-00001-of-00002.safetensors" if n in first
                      else "model-00002-of-00002.safetensors") for n, _ in tiny_specs()}
    write("index", "tiny-model", json.dumps(
        {"metadata": {"total_size": 4640}, "weight_map": weight_map}, indent=2))
    write("index", "one-shard-missing-tensors", json.dumps(
        {"weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors"}}))
    wrong = dict(weight_map)
    wrong["model.norm.weight"] = "model-00001-of-00002.safetensors"
    write("index", "tensor-in-wrong-shard", json.dumps({"weight_map": wrong}))
    broken = dict(weight_map)
    broken["lm_head.weight"] = "broken.safetensors"
    write("index", "broken-shard", json.dumps({"weight_map": broken}))
    write("index", "bad-names", '{"weight_map": {"a": "..", "b": ".", "c": "x/y", "d": 7}}')
    write("index", "duplicate-key",
          '{"weight_map": {"a": "model-00001-of-00002.safetensors", '
          '"a": "model-00002-of-00002.safetensors"}}')
    write("index", "nested-metadata", '{"metadata": [[[[[[[[[[[[[[[[{}]]]]]]]]]]]]]]]], '
          '"weight_map": {"x": "broken.safetensors"}}')
    # As transformers 5 writes it (another model's tensors: a shape mismatch here).
    shutil.copy(os.path.join(DATA, "rope-parameters", "model.safetensors.index.json"),
                os.path.join(CORPUS, "index", "transformers5"))


# ---------------------------------------------------------------- config

def config_seeds():
    for name, path in [("random-mha", os.path.join(DATA, "random-mha", "config.json")),
                       ("transformers5", os.path.join(DATA, "rope-parameters", "config.json")),
                       ("tiny-llama", os.path.join(ROOT, "models", "tiny-llama", "config.json"))]:
        if os.path.exists(path):
            shutil.copy(path, os.path.join(CORPUS, "config", name))
    tiny = {"model_type": "llama", "hidden_size": 8, "intermediate_size": 12,
            "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
            "head_dim": 4, "vocab_size": 10, "max_position_embeddings": 32, "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0, "tie_word_embeddings": True, "bos_token_id": 1,
            "eos_token_id": 2, "hidden_act": "silu", "rope_scaling": None,
            "attention_bias": False}
    write("config", "tiny", json.dumps(tiny))
    edits = {
        "mistral-window": {"model_type": "mistral", "sliding_window": 32, "head_dim": None,
                           "num_key_value_heads": None, "eos_token_id": [2, 3]},
        "llama3-scaling": {"rope_scaling": {"rope_type": "llama3", "factor": 8.0}},
        "rope-parameters": {"rope_theta": None,
                            "rope_parameters": {"rope_type": "default", "rope_theta": 5e5}},
        "rope-conflict": {"rope_parameters": {"rope_theta": 5e5}},
        "bad-types": {"hidden_size": "8", "rms_norm_eps": [1], "tie_word_embeddings": "yes"},
        "big-numbers": {"vocab_size": 5000000000, "rope_theta": 1e300, "bos_token_id": -1},
    }
    for name, edit in edits.items():
        c = dict(tiny)
        for k, v in edit.items():
            if v is None and k not in ("rope_scaling",):
                c.pop(k, None)
            else:
                c[k] = v
        write("config", name, json.dumps(c))
    write("config", "nested", '{"model_type": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["llama"]]]]]]]]]'
          ']]]]]]]]]]]]]]]]]]]]]]]]}')


# ---------------------------------------------------------------- tokenizer

def varint(n):
    n &= (1 << 64) - 1  # negative int32s are 10-byte varints, as protobuf writes them
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field_varint(field, n):
    return varint(field << 3) + varint(n)


def field_bytes(field, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return varint(field << 3 | 2) + varint(len(data)) + data


def field_float(field, x):
    return varint(field << 3 | 5) + struct.pack("<f", x)


NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
UNIGRAM, BPE = 1, 2


def model_proto(pieces, model_type, byte_fallback=False, dummy_prefix=True, charsmap=b""):
    """pieces: (text, score, type); ids 0, 1, 2 are <unk>, <s>, </s> as in LLaMA."""
    out = b""
    for text, score, ptype in pieces:
        out += field_bytes(1, field_bytes(1, text) + field_float(2, score) +
                           (field_varint(3, ptype) if ptype != NORMAL else b""))
    trainer = (field_varint(3, model_type) + field_varint(4, len(pieces)) +
               field_varint(35, int(byte_fallback)) + field_varint(40, 0) + field_varint(41, 1) +
               field_varint(42, 2) + field_varint(43, -1))
    out += field_bytes(2, trainer)
    normalizer = (field_bytes(1, "identity") + field_varint(3, int(dummy_prefix)) +
                  field_varint(4, 0) + (field_bytes(2, charsmap) if charsmap else b""))
    out += field_bytes(3, normalizer)
    return out


def tokenizer_seeds():
    shutil.copy(os.path.join(DATA, "spm", "tiny.model"),
                os.path.join(CORPUS, "tokenizer", "tiny-bpe-byte-fallback"))
    specials = [("<unk>", 0.0, UNKNOWN), ("<s>", 0.0, CONTROL), ("</s>", 0.0, CONTROL)]
    words = ["\u2581", "\u2581the", "\u2581a", "e", "t", "a", "h", "\u2581t", "he", ",", ".",
             "caf", "\u00e9", "\u65e5", "[", "]", "INST", "<<", "SYS", ">>", "/", "\n"]
    unigram = specials + [(w, -1.0 - i / 4, NORMAL) for i, w in enumerate(words)]
    write("tokenizer", "unigram", model_proto(unigram, UNIGRAM))
    bpe = specials + [(w, -float(i), NORMAL) for i, w in enumerate(words)]
    bpe += [(f"<0x{b:02X}>", 0.0, BYTE) for b in range(256)]
    write("tokenizer", "bpe-bytes", model_proto(bpe, BPE, byte_fallback=True))
    odd = specials + [("<sep>", 0.0, USER_DEFINED), ("\u2581unused", 0.0, UNUSED),
                      ("x", -1.0, NORMAL), ("\u2581", -2.0, NORMAL)]
    write("tokenizer", "every-type", model_proto(odd, BPE, dummy_prefix=False))
    write("tokenizer", "only-specials", model_proto(specials, UNIGRAM))
    try:
        import io
        import sentencepiece as spm
    except ImportError:
        return
    # A trained unigram model with a small custom normalisation rule: a precompiled charsmap
    # (a double-array trie the library reads), and a denormaliser built from the same rules.
    rules = os.path.join(CORPUS, "rules.tsv")
    with open(rules, "w") as f:
        f.write("41\t61\n42\t62\nFF21\t41\n2160\t49\n")  # A->a, B->b, fullwidth A->A, roman I->I
    text = ["the cat sat on the mat", "A Big Bad Wolf", "\uff21\u2160 nine ten", "caf\u00e9 \u65e5"]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text * 20), model_writer=model, vocab_size=40,
        model_type="unigram", normalization_rule_tsv=rules, denormalization_rule_tsv=rules,
        hard_vocab_limit=False, num_threads=1, minloglevel=2)
    os.remove(rules)
    write("tokenizer", "unigram-charsmap", model.getvalue())
    # Also the fixture of tests/llama/bad_tokenizer_test.cpp, which damages its tries.
    with open(os.path.join(DATA, "spm", "charsmap.model"), "wb") as f:
        f.write(model.getvalue())


def main():
    for target in ("safetensors", "index", "config", "tokenizer"):
        os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    safetensors_seeds()
    index_seeds()
    config_seeds()
    tokenizer_seeds()
    for target in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, target))
        size = sum(os.path.getsize(os.path.join(CORPUS, target, f)) for f in files)
        print(f"{target}: {len(files)} seeds, {size} bytes")


if __name__ == "__main__":
    main()
