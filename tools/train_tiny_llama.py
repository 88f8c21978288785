#!/usr/bin/env python3
"""Train, save, evaluate and analyse the bundled tiny byte-level LLaMA model.

Interpreter: Debian's /usr/bin/python3 (3.11) with python3-torch (torch 1.13)
and `safetensors` (pip install --break-system-packages safetensors).
`transformers` is optional and only used by --verify-hf.

The model is a LLaMA-architecture decoder written in plain PyTorch, using exactly
the conventions of Hugging Face's LlamaForCausalLM (RMSNorm, rotate_half rotary
embeddings with theta 10000, grouped-query attention with kv head = q head //
(n_heads / n_kv_heads), SwiGLU MLP), so the weights are saved under Hugging Face
tensor names and load with LlamaForCausalLM.from_pretrained().

Vocabulary (byte level, 259 ids):
    0..255  raw bytes
    256     <s>    (BOS; every sequence starts with it)
    257     </s>   (EOS; separates source files in the training stream)
    258     <pad>  (never trained on)

Data: the .py files of the Python standard library in /usr/lib/python3.11
(sorted relative paths; every 50th file, index % 50 == 0, is held out), mixed
with synthetic key/value retrieval snippets (fraction --kv-frac).

Usage:
    OMP_NUM_THREADS=1 /usr/bin/python3 tools/train_tiny_llama.py --quick --out /tmp/tl
    OMP_NUM_THREADS=1 /usr/bin/python3 tools/train_tiny_llama.py --steps 900 --out models/tiny-llama
    OMP_NUM_THREADS=1 /usr/bin/python3 tools/train_tiny_llama.py --analyze-only --out models/tiny-llama
    OMP_NUM_THREADS=1 PYTHONPATH=/tmp/hfenv /usr/bin/python3 tools/train_tiny_llama.py \
        --verify-hf --out models/tiny-llama
"""

import argparse
import json
import math
import os
import random
import string
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

BOS, EOS, PAD = 256, 257, 258
VOCAB_SIZE = 259
ATTN_BLOCK = 128
PUNCT_BYTES = frozenset(ord(c) for c in string.punctuation)

DEFAULT_CFG = dict(
    hidden_size=256,
    intermediate_size=688,
    num_hidden_layers=6,
    num_attention_heads=8,
    num_key_value_heads=2,
    head_dim=32,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    max_position_embeddings=1024,
    vocab_size=VOCAB_SIZE,
    tie_word_embeddings=False,
)

# --------------------------------------------------------------------------- model


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rope_cos_sin(seq_len, head_dim, theta, device=None):
    # Same computation as transformers' LlamaRotaryEmbedding (float32).
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    pos = torch.arange(seq_len, dtype=torch.float32)
    freqs = torch.outer(pos, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.nh, self.nkv, self.hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        h = c["hidden_size"]
        self.q_proj = nn.Linear(h, self.nh * self.hd, bias=False)
        self.k_proj = nn.Linear(h, self.nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(h, self.nkv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.nh * self.hd, h, bias=False)

    def forward(self, x, cos, sin, mask, want_attn=False):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.nh // self.nkv
        if rep > 1:  # HF repeat_kv: query head h uses kv head h // rep
            k = k[:, :, None].expand(B, self.nkv, rep, T, self.hd).reshape(B, self.nh, T, self.hd)
            v = v[:, :, None].expand(B, self.nkv, rep, T, self.hd).reshape(B, self.nh, T, self.hd)
        q = q * (1.0 / math.sqrt(self.hd))
        if want_attn:
            p = torch.softmax(torch.matmul(q, k.transpose(2, 3)) + mask, dim=-1)
            o = torch.matmul(p, v)
        else:
            p = None
            o = self._causal_blocks(q, k, v, mask)
        o = o.transpose(1, 2).reshape(B, T, self.nh * self.hd)
        return self.o_proj(o), p

    @staticmethod
    def _causal_blocks(q, k, v, mask, block=ATTN_BLOCK):
        # Causal attention computed in query blocks: block i only scores keys
        # [0, end of block i], which skips most of the masked upper triangle
        # (about 45% less attention work at T=1024 than the full T x T product).
        B, H, T, D = q.shape
        q, k, v = q.reshape(B * H, T, D), k.reshape(B * H, T, D), v.reshape(B * H, T, D)
        outs = []
        for s in range(0, T, block):
            e = min(T, s + block)
            sc = torch.baddbmm(mask[s:e, :e], q[:, s:e], k[:, :e].transpose(1, 2))
            outs.append(torch.bmm(torch.softmax(sc, dim=-1), v[:, :e]))
        return torch.cat(outs, dim=1).view(B, H, T, D)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, i = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = Attention(c)
        self.mlp = MLP(c)
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])

    def forward(self, x, cos, sin, mask, want_attn=False):
        a, p = self.self_attn(self.input_layernorm(x), cos, sin, mask, want_attn)
        x = x + a
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, p


class Body(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([Layer(c) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


class TinyLlama(nn.Module):
    """Parameter names match transformers' LlamaForCausalLM exactly."""

    def __init__(self, c):
        super().__init__()
        self.c = dict(c)
        self.model = Body(c)
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        self._rope_len = 0
        self._init_weights()

    def _init_weights(self):
        std = 0.02
        out_std = std / math.sqrt(2 * self.c["num_hidden_layers"])
        for name, p in self.named_parameters():
            if p.dim() == 1:
                continue
            if name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
                nn.init.normal_(p, 0.0, out_std)
            else:
                nn.init.normal_(p, 0.0, std)

    def _rope(self, T):
        if T > self._rope_len:
            self._cos, self._sin = rope_cos_sin(max(T, 1024), self.c["head_dim"], self.c["rope_theta"])
            self._rope_len = self._cos.shape[0]
        return self._cos[:T], self._sin[:T]

    def forward(self, ids, want_attn=False):
        B, T = ids.shape
        cos, sin = self._rope(T)
        mask = torch.full((T, T), float("-inf")).triu(1)
        x = self.model.embed_tokens(ids)
        attns = []
        for layer in self.model.layers:
            x, p = layer(x, cos, sin, mask, want_attn)
            attns.append(p)
        logits = self.lm_head(self.model.norm(x))
        return (logits, attns) if want_attn else logits


def hf_config(c):
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": c["hidden_size"],
        "intermediate_size": c["intermediate_size"],
        "num_hidden_layers": c["num_hidden_layers"],
        "num_attention_heads": c["num_attention_heads"],
        "num_key_value_heads": c["num_key_value_heads"],
        "head_dim": c["head_dim"],
        "hidden_act": "silu",
        "rms_norm_eps": c["rms_norm_eps"],
        "rope_theta": c["rope_theta"],
        "rope_scaling": None,
        "max_position_embeddings": c["max_position_embeddings"],
        "vocab_size": c["vocab_size"],
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "pad_token_id": PAD,
        "tie_word_embeddings": c["tie_word_embeddings"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "pretraining_tp": 1,
        "initializer_range": 0.02,
        "use_cache": True,
        "torch_dtype": "float32",
    }


def save_model(model, out_dir, extra_meta=None):
    from safetensors.torch import save_file

    os.makedirs(out_dir, exist_ok=True)
    sd = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in model.state_dict().items()}
    meta = {"format": "pt"}
    if extra_meta:
        meta.update({k: str(v) for k, v in extra_meta.items()})
    save_file(sd, os.path.join(out_dir, "model.safetensors"), metadata=meta)
    os.chmod(os.path.join(out_dir, "model.safetensors"), 0o644)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(hf_config(model.c), f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": PAD,
                   "do_sample": False}, f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, "byte_tokenizer.json"), "w") as f:
        json.dump({
            "type": "byte-level",
            "vocab_size": VOCAB_SIZE,
            "bytes": {"first_id": 0, "last_id": 255, "rule": "token id == byte value"},
            "special_tokens": {"<s>": BOS, "</s>": EOS, "<pad>": PAD},
            "bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": PAD,
            "add_bos_token": True, "add_eos_token": False,
            "encode": "ids = [256] + list(text.encode('utf-8'))",
            "decode": "bytes(i for i in ids if i < 256).decode('utf-8', errors='replace')",
        }, f, indent=2)
        f.write("\n")


def load_model(out_dir):
    from safetensors.torch import load_file

    with open(os.path.join(out_dir, "config.json")) as f:
        hc = json.load(f)
    c = {k: hc[k] for k in DEFAULT_CFG}
    model = TinyLlama(c)
    sd = load_file(os.path.join(out_dir, "model.safetensors"))
    model.load_state_dict(sd, strict=True)
    model.eval()
    return model


# --------------------------------------------------------------------------- data


def list_stdlib(root):
    files = []
    for dp, dns, fns in os.walk(root):
        dns[:] = sorted(d for d in dns if d not in ("dist-packages", "site-packages", "__pycache__"))
        for fn in fns:
            if fn.endswith(".py"):
                files.append(os.path.relpath(os.path.join(dp, fn), root))
    files.sort()
    return files


def split_files(root, every):
    files = list_stdlib(root)
    held = [f for i, f in enumerate(files) if i % every == 0]
    train = [f for i, f in enumerate(files) if i % every != 0]
    return train, held


def read_bytes(root, rel):
    with open(os.path.join(root, rel), "rb") as f:
        return f.read()


class CodeStream:
    """All training files concatenated, separated by EOS; windows start at line starts."""

    def __init__(self, root, files):
        parts = []
        for rel in files:
            b = read_bytes(root, rel)
            if not b:
                continue
            parts.append(torch.frombuffer(bytearray(b), dtype=torch.uint8).long())
            parts.append(torch.tensor([EOS]))
        self.data = torch.cat(parts)
        nl = (self.data == 10).nonzero().flatten() + 1
        self.line_starts = torch.cat([torch.tensor([0]), nl])

    def window(self, rng, n):
        while True:
            s = int(self.line_starts[rng.randrange(len(self.line_starts))])
            if s + n <= len(self.data):
                return self.data[s:s + n]


KEY_CHARS = "0123456789abcdef"
VAL_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


def kv_snippet(rng, n_bytes, code):
    """Synthetic retrieval text of exactly n_bytes bytes; returns (bytes, lookups).

    lookups: list of (byte offset of the value inside the text, value string) for
    every complete lookup line (used for retrieval accuracy)."""
    n_keys = max(4, int(n_bytes * rng.uniform(0.35, 0.6) / 17))
    keys = []
    seen = set()
    while len(keys) < n_keys:
        k = "k_" + "".join(rng.choice(KEY_CHARS) for _ in range(4))
        if k not in seen:
            seen.add(k)
            keys.append((k, "".join(rng.choice(VAL_CHARS) for _ in range(4))))
    head = rng.choice(["# lookup table\n", "# constants\n", "", "# generated values\n"])
    text = head + "".join(f"{k} = '{v}'\n" for k, v in keys)
    filler_len = int(n_bytes * rng.uniform(0.05, 0.2))
    if filler_len > 0 and code is not None:
        fill = bytes(int(b) for b in code.window(rng, filler_len) if int(b) < 256).decode("utf-8", "replace")
        fill = fill.rsplit("\n", 1)[0] + "\n" if "\n" in fill else "\n"
        text += "\n" + fill + "\n"
    lookups = []
    while len(text.encode()) < n_bytes:
        k, v = keys[rng.randrange(len(keys))]
        prefix = text + f"print({k})  # -> '"
        off = len(prefix.encode())
        text = prefix + v + "'\n"
        if off + 4 <= n_bytes:
            lookups.append((off, v))
    b = text.encode()[:n_bytes]
    return b, lookups


def make_batch(rng, code, B, T, kv_frac):
    """B sequences of T+1 tokens: BOS + T bytes; returns (inputs, targets)."""
    rows = []
    for _ in range(B):
        if rng.random() < kv_frac:
            b, _ = kv_snippet(rng, T, code)
            body = torch.tensor(list(b), dtype=torch.long)
        else:
            body = code.window(rng, T)
        rows.append(torch.cat([torch.tensor([BOS]), body]))
    x = torch.stack(rows)
    return x[:, :-1].contiguous(), x[:, 1:].contiguous()


def schedule(step, total, batch_tokens):
    """Curriculum: (batch, seq_len) with constant tokens per step.

    First 25% of steps at 256 tokens, next 20% at 512, last 55% at 1024."""
    f = step / max(1, total)
    T = 256 if f < 0.25 else (512 if f < 0.45 else 1024)
    return max(1, batch_tokens // T), T


def lr_at(step, total, peak, warmup, floor=0.1):
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


# --------------------------------------------------------------------------- eval


@torch.no_grad()
def bits_per_byte(model, root, files, max_bytes, T=1024):
    nats, nbytes = 0.0, 0
    for rel in files:
        data = list(read_bytes(root, rel))
        for s in range(0, len(data), T - 1):
            chunk = data[s:s + T - 1]
            if not chunk or nbytes >= max_bytes:
                break
            ids = torch.tensor([[BOS] + chunk])
            # predict every byte of the chunk (the first one from BOS)
            logits = model(ids)[:, :-1]
            tgt = ids[:, 1:]
            nats += F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), tgt.reshape(-1), reduction="sum").item()
            nbytes += tgt.numel()
        if nbytes >= max_bytes:
            break
    return nats / max(1, nbytes) / math.log(2), nbytes


@torch.no_grad()
def greedy_sample(model, prompt, n=200):
    ids = [BOS] + list(prompt.encode())
    out = []
    for _ in range(n):
        logits = model(torch.tensor([ids[-1024:]]))[0, -1]
        t = int(logits.argmax())
        if t == EOS:
            break
        ids.append(t)
        out.append(t)
    return bytes(i for i in out if i < 256).decode("utf-8", "replace")


@torch.no_grad()
def retrieval_accuracy(model, code, n_prompts, T, seed):
    """Teacher-forced exact match on every lookup value (== greedy exact match)."""
    rng = random.Random(seed)
    exact = chars = total = 0
    last_exact = 0
    for _ in range(n_prompts):
        b, lookups = kv_snippet(rng, T - 1, code)
        ids = torch.tensor([[BOS] + list(b)])
        pred = model(ids)[0].argmax(-1)  # pred[i] predicts ids[i+1]
        for j, (off, v) in enumerate(lookups):
            # value byte at text offset off+c is token index off+c+1, predicted at off+c
            ok = [int(pred[off + c]) == ord(v[c]) for c in range(4)]
            exact += all(ok)
            chars += sum(ok)
            total += 1
            if j == len(lookups) - 1:
                last_exact += all(ok)
    return {"lookups": total, "exact": exact / max(1, total), "char": chars / max(1, 4 * total),
            "last_lookup_exact": last_exact / max(1, n_prompts)}


@torch.no_grad()
def head_analysis(model, root, held, T=1024, q_start=64, ratio=0.3):
    """Per (layer, query head) attention shares on a held-out code prompt."""
    # deterministic prompt: the largest held-out file, from the first line start after 1/4
    rel = max(held, key=lambda r: len(read_bytes(root, r)))
    data = read_bytes(root, rel)
    s = data.find(b"\n", len(data) // 4) + 1
    body = list(data[s:s + T - 1])
    ids = torch.tensor([[BOS] + body])
    T = ids.shape[1]
    _, attns = model(ids, want_attn=True)
    is_punct = torch.tensor([t in PUNCT_BYTES for t in ids[0].tolist()], dtype=torch.float32)
    qi = torch.arange(q_start, T)
    kj = torch.arange(T)
    win = torch.ceil(ratio * (qi + 1).float())
    local_mask = ((qi[:, None] - kj[None, :]) < win[:, None]) & (kj[None, :] <= qi[:, None])
    rows = []
    for L, p in enumerate(attns):
        p = p[0, :, q_start:, :]  # (H, Q, T)
        for h in range(p.shape[0]):
            a = p[h]
            bos = a[:, 0].mean().item()
            punct = (a * is_punct).sum(-1).mean().item()
            local = (a * local_mask).sum(-1).mean().item()
            srt = a.sort(dim=-1, descending=True).values
            cum = srt.cumsum(-1)
            n = (qi + 1).float()
            k30 = torch.ceil(ratio * n).long() - 1
            top30 = cum.gather(1, k30[:, None]).squeeze(1).mean().item()
            k95 = ((cum < 0.95).sum(-1).float() + 1) / n
            if bos >= 0.5:
                cls = "bos"
            elif punct >= 0.5:
                cls = "punct"
            elif local >= 0.8:
                cls = "local"
            else:
                cls = "broad"
            rows.append(dict(layer=L, head=h, bos=bos, punct=punct, local=local, top30=top30,
                             k95=k95.mean().item(), cls=cls))
    frac_punct = is_punct[q_start:].mean().item()
    return rel, s, T, frac_punct, rows


def format_heads(rows):
    lines = ["| layer | head | BOS | punct | local 30% | top-30% | keys for 95% | class |",
             "|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['layer']} | {r['head']} | {r['bos']:.2f} | {r['punct']:.2f} | {r['local']:.2f} "
                     f"| {r['top30']:.2f} | {r['k95']:.2f} | {r['cls']} |")
    counts = {}
    for r in rows:
        counts[r["cls"]] = counts.get(r["cls"], 0) + 1
    return "\n".join(lines), counts


def evaluate(model, args, train, held, code):
    t0 = time.time()
    res = {}
    res["heldout_bpb"], res["heldout_bytes"] = bits_per_byte(model, args.data_root, held, args.eval_bytes)
    print(f"held-out: {res['heldout_bpb']:.4f} bits/byte over {res['heldout_bytes']} bytes", flush=True)
    rng = random.Random(args.seed + 7)
    sample_train = rng.sample(train, 20)
    res["train_bpb"], res["train_bytes"] = bits_per_byte(model, args.data_root, sample_train, args.eval_bytes // 2)
    print(f"train-split sample: {res['train_bpb']:.4f} bits/byte over {res['train_bytes']} bytes", flush=True)
    prompt = "import os\n\ndef "
    res["sample_prompt"] = prompt
    res["sample"] = greedy_sample(model, prompt, 200)
    print("greedy sample:\n" + prompt + res["sample"] + "\n---", flush=True)
    for T in (256, 1024):
        r = retrieval_accuracy(model, code, args.retrieval_prompts, T, seed=args.seed + 1000 + T)
        res[f"retrieval_{T}"] = r
        print(f"retrieval T={T}: {r}", flush=True)
    rel, off, T, fp, rows = head_analysis(model, args.data_root, held)
    table, counts = format_heads(rows)
    res["heads"] = dict(prompt_file=rel, prompt_offset=off, tokens=T, punct_fraction_of_prompt=fp,
                        rows=rows, counts=counts)
    print(f"head analysis prompt: {rel} from byte {off}, {T} tokens, punctuation fraction {fp:.3f}")
    print(table)
    print("class counts:", counts)
    print(f"eval time {time.time() - t0:.1f}s", flush=True)
    return res


def verify_hf(out_dir, data_root, holdout_every):
    try:
        import transformers
        from transformers import LlamaForCausalLM
    except Exception as e:  # pragma: no cover
        print(f"transformers not importable ({e}); skipping HF verification")
        return None
    ours = load_model(out_dir)
    hf = LlamaForCausalLM.from_pretrained(out_dir, torch_dtype=torch.float32)
    hf.eval()
    prompt = "import os\n\ndef main(argv):\n    for name in sorted(os.listdir(argv[1])):\n        print(name)\n"
    _, held = split_files(data_root, holdout_every)
    long_text = read_bytes(data_root, held[-3])[:1023]  # a held-out file, full 1024-token context
    worst = 0.0
    for text in (prompt.encode(), long_text):
        ids = torch.tensor([[BOS] + list(text)])
        with torch.no_grad():
            a = ours(ids)
            b = hf(ids).logits
        diff = (a - b).abs().max().item()
        worst = max(worst, diff)
        print(f"transformers {transformers.__version__}: max |logits ours - HF| = {diff:.3e} "
              f"over {ids.shape[1]} tokens -> {'OK' if diff < 1e-4 else 'MISMATCH'}")
    return worst


# --------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=900)
    ap.add_argument("--out", default="models/tiny-llama")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--quick", action="store_true", help="smoke test: few tiny steps, small eval")
    ap.add_argument("--analyze-only", action="store_true", help="load --out and run evaluation/analysis")
    ap.add_argument("--verify-hf", action="store_true", help="compare logits with transformers")
    ap.add_argument("--batch-tokens", type=int, default=2048, help="tokens per optimizer step")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--kv-frac", type=float, default=0.25)
    ap.add_argument("--data-root", default="/usr/lib/python3.11")
    ap.add_argument("--holdout-every", type=int, default=50)
    ap.add_argument("--eval-bytes", type=int, default=200_000)
    ap.add_argument("--retrieval-prompts", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ckpt", default="/tmp/tiny_llama_ckpt.pt")
    ap.add_argument("--results", default=None, help="write eval results JSON here")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.quick:
        args.eval_bytes = min(args.eval_bytes, 8000)
        args.retrieval_prompts = min(args.retrieval_prompts, 3)

    train, held = split_files(args.data_root, args.holdout_every)
    print(f"data: {len(train)} train files, {len(held)} held-out files: {held}", flush=True)

    if args.verify_hf:
        verify_hf(args.out, args.data_root, args.holdout_every)
        return

    code = CodeStream(args.data_root, train)
    print(f"train stream: {len(code.data)} tokens", flush=True)

    if args.analyze_only:
        model = load_model(args.out)
        res = evaluate(model, args, train, held, code)
        if args.results:
            with open(args.results, "w") as f:
                json.dump(res, f, indent=2)
        return

    model = TinyLlama(DEFAULT_CFG)
    nparam = sum(p.numel() for p in model.parameters())
    print(f"model: {nparam} parameters ({nparam * 4 / 2**20:.1f} MiB fp32)", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    steps = 6 if args.quick else args.steps
    rng = random.Random(args.seed)
    t_start = time.time()
    tokens = 0
    ema = None
    tail_losses = []
    phase_tok = {}
    for step in range(steps):
        B, T = schedule(step, steps, args.batch_tokens)
        if args.quick:
            B, T = (2, 128) if step < 3 else (1, 1024)
        lr = lr_at(step, steps, args.lr, min(args.warmup, max(1, steps // 10)))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = make_batch(rng, code, B, T, args.kv_frac)
        ts = time.time()
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        dt = time.time() - ts
        tokens += x.numel()
        pt = phase_tok.setdefault(T, [0, 0.0])
        pt[0] += x.numel()
        pt[1] += dt
        li = loss.item()
        ema = li if ema is None else 0.95 * ema + 0.05 * li
        if step >= steps - 50:
            tail_losses.append(li)
        if step % 10 == 0 or step == steps - 1 or args.quick:
            el = time.time() - t_start
            print(f"step {step:5d}/{steps} T={T:4d} B={B:2d} loss {li:.4f} ema {ema:.4f} "
                  f"({ema / math.log(2):.3f} bits/tok) gnorm {float(gn):.2f} lr {lr:.2e} "
                  f"{x.numel() / dt:.0f} tok/s elapsed {el / 60:.1f} min", flush=True)
        if not args.quick and (step + 1) % 100 == 0:
            torch.save({"step": step + 1, "model": model.state_dict()}, args.ckpt)
    wall = time.time() - t_start
    final_train = sum(tail_losses) / len(tail_losses)
    summary = {
        "steps": steps, "tokens": tokens, "wall_s": wall, "tokens_per_s": tokens / wall,
        "final_train_loss_nats": final_train, "final_train_bits_per_byte": final_train / math.log(2),
        "phase_tokens_per_s": {str(T): v[0] / v[1] for T, v in phase_tok.items()},
        "seed": args.seed, "lr": args.lr, "kv_frac": args.kv_frac, "threads": args.threads,
        "params": nparam,
    }
    print("train summary:", json.dumps(summary), flush=True)
    model.eval()
    save_model(model, args.out, extra_meta={"steps": steps, "seed": args.seed})
    print(f"saved to {args.out}", flush=True)
    res = evaluate(model, args, train, held, code)
    res["train"] = summary
    if args.results:
        with open(args.results, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
