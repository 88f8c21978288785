#!/usr/bin/env python3
"""Train kvsieve's second bundled model (issue 13): a small LLaMA (GQA, context 2048) on the
corpus of build_corpus.py with the tokenizer of train_tokenizer.py.

Interpreter: a Python with torch >= 2.1, transformers >= 5, safetensors, sentencepiece and numpy
(e.g. /work/venv/bin/python; see tools/README.md). The model is transformers' own
LlamaForCausalLM, so what is saved is exactly what `save_pretrained` writes.

Runs on the CPU (bf16 autocast where the CPU has AMX/AVX512-BF16, else fp32) or on CUDA
(--device cuda, bf16 autocast). Training state (weights, AdamW moments, step, RNG-free sampler
position) is checkpointed atomically every --ckpt-minutes to OUT/ckpt.pt and resumed from there
automatically, so a run can span sessions and machines; the batch of step s depends only on
--seed and s, so a resumed run sees exactly the batches an uninterrupted one would.

Data: every train.jsonl document becomes <s> text </s> in one token stream (cached as uint16 in
OUT/train.bin); a training row is <s> followed by ctx tokens cut at a random offset of the
stream. A fraction --kv-frac of rows are synthetic key/value retrieval texts in the format of
examples/eval/data.hpp ("k_1a2b = 'wxyz'" lines, filler, "print(k_1a2b)  # -> 'wxyz'"), drawn
with Python's random from --seed, so kvsieve-eval's retrieval (its own generator) is not seen.
Context curriculum (--ctx-schedule): the first 60% of tokens at 512, then 1024, the last 20% at
2048, with a constant number of tokens per step.

Across machines: a session's machine (and its OUT folder) may not come back, so the repository
carries the run. `--export models/<name>` writes the model folder with training_state.json and
the run's log.jsonl; `--resume-from models/<name>` starts a new OUT from it when OUT has no
checkpoint: the bf16 weights (rounding fp32 master weights to bf16 moves each by <= 2^-9
relative, below one optimizer step at the schedule's smallest rate), the step, tokens and
seconds, the log, and fresh AdamW moments with a --rewarm-steps linear ramp of the rate (with
betas (0.9, 0.95) the moments forget within ~20-50 steps anyway). The exported folder is 13 MB
(bf16) where a full checkpoint with moments is 78 MB.

Logs one JSON line per --log-every steps to OUT/log.jsonl (step, tokens, lr, train loss, and
held-out loss every --eval-every steps). --export DIR writes the Hugging Face folder
(config.json, model.safetensors in bf16, generation_config.json, tokenizer.model).

Usage:
    python tools/model2/train.py --corpus /work/data/model2 --out /work/data/model2/run \\
        --tokens 60e6                               # trains, or resumes, until 60M tokens
    python tools/model2/train.py --corpus /work/data/model2 --out /work/data/model2/run \\
        --export models/<name>                      # writes the model folder from the checkpoint
    python tools/model2/train.py --corpus /work/data/model2 --out /work/data/model2/run \\
        --tokens 50e6 --resume-from models/<name>   # a new machine: continue the exported run
    python tools/model2/train.py ... --bench 5      # tokens/s of 5 steps, nothing saved
"""

import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import sentencepiece as spm
import torch

KEY_CHARS = "0123456789abcdef"
VAL_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"

MODEL_CFG = dict(
    vocab_size=8000,
    hidden_size=256,
    intermediate_size=704,
    num_hidden_layers=6,
    num_attention_heads=8,
    num_key_value_heads=4,
    head_dim=32,
    max_position_embeddings=2048,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    tie_word_embeddings=True,
    bos_token_id=1,
    eos_token_id=2,
    hidden_act="silu",
    attention_bias=False,
    mlp_bias=False,
    initializer_range=0.02,
)


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def tokenize_split(sp, src, dst):
    """<s> doc </s> for every document of the jsonl file `src`, as uint16, cached in `dst`."""
    if os.path.exists(dst):
        return np.memmap(dst, dtype=np.uint16, mode="r")
    docs = []
    with open(src, encoding="utf-8") as f:
        for row in f:
            docs.append(json.loads(row)["text"])
    ids = sp.encode(docs, num_threads=os.cpu_count())
    flat = np.fromiter((t for d in ids for t in (1, *d, 2)), dtype=np.uint16)
    tmp = dst + ".tmp"
    flat.tofile(tmp)
    os.replace(tmp, dst)
    log(f"tokenized {src}: {len(docs)} documents, {len(flat)} tokens")
    return np.memmap(dst, dtype=np.uint16, mode="r")


def kv_text(rng, n_chars, stream_text):
    """A synthetic retrieval text of about n_chars characters (examples/eval/data.hpp's format)."""
    n_keys = max(4, int(n_chars * rng.uniform(0.3, 0.55) / 17))
    keys, seen = [], set()
    while len(keys) < n_keys:
        k = "k_" + "".join(rng.choice(KEY_CHARS) for _ in range(4))
        if k not in seen:
            seen.add(k)
            keys.append((k, "".join(rng.choice(VAL_CHARS) for _ in range(4))))
    head = rng.choice(["# lookup table\n", "# constants\n", "", "# generated values\n"])
    text = head + "".join(f"{k} = '{v}'\n" for k, v in keys)
    fill = stream_text(rng, int(n_chars * rng.uniform(0.05, 0.3)))
    if fill:
        text += "\n" + fill.rsplit("\n", 1)[0] + "\n\n"
    while len(text) < n_chars:
        k, v = keys[rng.randrange(len(keys))]
        text += f"print({k})  # -> '{v}'\n"
    return text


class Batches:
    """Deterministic batches: batch(s) depends only on the seed and s."""

    def __init__(self, sp, train, kv_frac, seed):
        self.sp, self.train, self.kv_frac, self.seed = sp, train, kv_frac, seed

    def _window(self, g, n):
        start = int(g.integers(0, len(self.train) - n - 1))
        return np.asarray(self.train[start:start + n], dtype=np.int64)

    def batch(self, step, rows, ctx):
        g = np.random.default_rng([self.seed, step])
        rng = random.Random(self.seed * 1_000_003 + step)
        out = np.empty((rows, ctx + 1), dtype=np.int64)
        for r in range(rows):
            if rng.random() < self.kv_frac:
                def stream_text(rr, n_chars):
                    return self.sp.decode(
                        [int(t) for t in self._window(g, max(1, n_chars // 3)) if t > 2])
                ids = self.sp.encode(kv_text(rng, int(ctx * 2.2), stream_text))
                ids = (ids + [2] * ctx)[:ctx]
                out[r, 0] = 1
                out[r, 1:] = ids
            else:
                out[r, 0] = 1
                out[r, 1:] = self._window(g, ctx)
        x = torch.from_numpy(out)
        return x[:, :-1].contiguous(), x[:, 1:].contiguous()


def ctx_at(tokens_done, total, schedule):
    f = tokens_done / total
    for frac, ctx in schedule:
        if f < frac:
            return ctx
    return schedule[-1][1]


def lr_at(tokens_done, total, peak, warmup_tokens, floor=0.1):
    if tokens_done < warmup_tokens:
        return peak * max(tokens_done, 1) / warmup_tokens
    p = min(1.0, (tokens_done - warmup_tokens) / max(1, total - warmup_tokens))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


def make_model(device):
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(**MODEL_CFG)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg).to(device)


class ChunkedHeadLoss(torch.autograd.Function):
    """Mean cross-entropy of the tied output head, computed a chunk of rows at a time.

    The plain path materialises [rows*ctx, vocab] logits in bf16 and float, their log-softmax and
    its gradient: ~0.5 GB per tensor at 16k tokens x 8k pieces, and a quarter of a profiled CPU
    step in log_softmax, its backward and fills. Here each chunk's logits are made, reduced to
    their log-sum-exp and dropped; backward recomputes them (one more head matmul, ~6% of a
    step's FLOPs). Rounding follows autocast's: h and W in `dtype` for both matmuls, logits
    rounded to `dtype` before the float softmax, float gradients rounded to `dtype` before the
    matmuls.
    """

    @staticmethod
    def forward(ctx, h, w, y, dtype, chunk):
        hd, wd = h.detach().to(dtype), w.detach().to(dtype)
        lse = torch.empty(h.shape[0], dtype=torch.float32, device=h.device)
        total = torch.zeros((), dtype=torch.float32, device=h.device)
        for s in range(0, h.shape[0], chunk):
            z = (hd[s:s + chunk] @ wd.T).float()
            lse[s:s + chunk] = torch.logsumexp(z, dim=1)
            picked = z.gather(1, y[s:s + chunk, None])[:, 0]
            total += (lse[s:s + chunk] - picked).sum()
        ctx.save_for_backward(hd, wd, y, lse)
        ctx.chunk, ctx.h_dtype, ctx.w_dtype = chunk, h.dtype, w.dtype
        return total / h.shape[0]

    @staticmethod
    def backward(ctx, g):
        hd, wd, y, lse = ctx.saved_tensors
        scale = g.float() / hd.shape[0]
        gh = torch.empty(hd.shape, dtype=ctx.h_dtype, device=hd.device)
        gw = torch.zeros(wd.shape, dtype=torch.float32, device=hd.device)
        for s in range(0, hd.shape[0], ctx.chunk):
            p = torch.exp((hd[s:s + ctx.chunk] @ wd.T).float() - lse[s:s + ctx.chunk, None])
            p.scatter_add_(1, y[s:s + ctx.chunk, None],
                           torch.full((p.shape[0], 1), -1.0, device=p.device))
            p = (p * scale).to(hd.dtype)
            gh[s:s + ctx.chunk] = p @ wd
            gw += (p.T @ hd[s:s + ctx.chunk]).float()
        return gh, gw.to(ctx.w_dtype), None, None, None


def train_loss(model, x, y, amp, chunk=1024):
    """Next-token loss of a batch, the head and cross-entropy fused (ChunkedHeadLoss)."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        h = model.model(input_ids=x).last_hidden_state
    h = h.reshape(-1, h.shape[-1])
    dtype = torch.bfloat16 if amp else torch.float32
    return ChunkedHeadLoss.apply(h, model.lm_head.weight, y.reshape(-1), dtype, chunk)


@torch.no_grad()
def heldout_loss(model, held, ctx, n_rows, device, amp):
    """Mean next-token loss (nats) over n_rows fixed windows of the held-out stream."""
    model.eval()
    step = max(1, (len(held) - ctx - 1) // n_rows)
    total, count = 0.0, 0
    for r in range(n_rows):
        s = r * step
        x = torch.from_numpy(np.asarray(held[s:s + ctx + 1], dtype=np.int64))[None].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(input_ids=x[:, :-1]).logits.float()
        total += torch.nn.functional.cross_entropy(logits[0], x[0, 1:], reduction="sum").item()
        count += ctx
    model.train()
    return total / count


def save_ckpt(path, model, opt, state):
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state}, tmp)
    os.replace(tmp, path)


def copy_log(src, dst, last_step):
    """The log's lines up to last_step, one per step (the later one): a run killed after its
    checkpoint logged steps that the resumed run repeats, and the curve has each step once."""
    by_step = {}
    with open(src) as f:
        for line in f:
            step = json.loads(line)["step"] if line.strip() else None
            if step is not None and step <= last_step:
                by_step[step] = line
    tmp = dst + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(by_step[k] for k in sorted(by_step))
    os.replace(tmp, dst)


def export(model, tokenizer_model, out_dir, state, log_path=None):
    import shutil
    os.makedirs(out_dir, exist_ok=True)
    m = model.to(torch.bfloat16)
    m.generation_config.do_sample = False
    m.save_pretrained(out_dir, safe_serialization=True)
    shutil.copyfile(tokenizer_model, os.path.join(out_dir, "tokenizer.model"))
    with open(os.path.join(out_dir, "training_state.json"), "w") as f:
        json.dump(state, f, indent=1)
    if log_path is not None and os.path.exists(log_path):
        copy_log(log_path, os.path.join(out_dir, "log.jsonl"), state["step"])
    log(f"exported {out_dir} ({sum(p.numel() for p in m.parameters())} parameters)")


def resume_from(model, folder, state, out):
    """Loads an exported folder (weights, training_state.json, log.jsonl) into a fresh run."""
    from safetensors.torch import load_file
    weights = load_file(os.path.join(folder, "model.safetensors"))
    with torch.no_grad():
        # named_parameters lists a tied lm_head once, as its embedding: what save_pretrained keeps.
        for n, p in model.named_parameters():
            if n not in weights:
                sys.exit(f"{folder}: model.safetensors lacks {n}")
            if weights[n].shape != p.shape:
                sys.exit(f"{folder}: {n} has shape {tuple(weights[n].shape)}, "
                         f"the model {tuple(p.shape)}")
            p.copy_(weights[n].to(p.dtype))
    with open(os.path.join(folder, "training_state.json")) as f:
        saved = json.load(f)
    state.update({k: v for k, v in saved.items() if k != "args"})
    state["resumed_from_export"] = state.get("resumed_from_export", []) + [state["step"]]
    if os.path.exists(os.path.join(folder, "log.jsonl")):
        copy_log(os.path.join(folder, "log.jsonl"), os.path.join(out, "log.jsonl"), state["step"])


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--tokenizer", default=None, help="default CORPUS/spm/tokenizer.model")
    ap.add_argument("--out", required=True, help="run folder: token cache, checkpoint, log")
    ap.add_argument("--tokens", type=float, default=60e6, help="training tokens in all")
    ap.add_argument("--batch-tokens", type=int, default=16384)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup-tokens", type=float, default=2e6)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--kv-frac", type=float, default=0.04)
    ap.add_argument("--ctx-schedule", default="0.6:512,0.8:1024,1.0:2048")
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--no-amp", action="store_true", help="fp32 instead of bf16 autocast")
    ap.add_argument("--ckpt-minutes", type=float, default=10)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--stop-after-minutes", type=float, default=0,
                    help="checkpoint and exit after this long (0: run to --tokens)")
    ap.add_argument("--bench", type=int, default=0, help="time this many steps and exit")
    ap.add_argument("--export", default=None, help="write the HF model folder and exit")
    ap.add_argument("--resume-from", default=None,
                    help="an exported folder to continue when OUT has no checkpoint")
    ap.add_argument("--rewarm-steps", type=int, default=64,
                    help="steps of linear rate ramp after --resume-from (fresh moments)")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    amp = not a.no_amp
    tok_path = a.tokenizer or os.path.join(a.corpus, "spm", "tokenizer.model")
    sp = spm.SentencePieceProcessor(model_file=tok_path)
    if sp.get_piece_size() != MODEL_CFG["vocab_size"]:
        sys.exit(f"tokenizer has {sp.get_piece_size()} pieces, model expects "
                 f"{MODEL_CFG['vocab_size']}")
    os.makedirs(a.out, exist_ok=True)
    train = tokenize_split(sp, os.path.join(a.corpus, "train.jsonl"),
                           os.path.join(a.out, "train.bin"))
    held = tokenize_split(sp, os.path.join(a.corpus, "heldout.jsonl"),
                          os.path.join(a.out, "heldout.bin"))
    schedule = [(float(f), int(c)) for f, c in (p.split(":") for p in a.ctx_schedule.split(","))]

    model = make_model(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    state = {"step": 0, "tokens": 0, "seconds": 0.0, "args": vars(a),
             "hardware": [], "parameters": sum(p.numel() for p in model.parameters())}
    ckpt = os.path.join(a.out, "ckpt.pt")
    if os.path.exists(ckpt):
        c = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(c["model"])
        opt.load_state_dict(c["opt"])
        state.update({k: v for k, v in c["state"].items() if k != "args"})
        if a.export and "args" in c["state"]:
            state["args"] = c["state"]["args"]  # the training run's options, not the export's
        log(f"resumed at step {state['step']}, {state['tokens'] / 1e6:.1f}M tokens")
        log_file = os.path.join(a.out, "log.jsonl")
        if os.path.exists(log_file) and not a.export:
            copy_log(log_file, log_file, state["step"])
    elif a.resume_from:
        resume_from(model, a.resume_from, state, a.out)
        state["rewarm"] = [state["step"], state["step"] + a.rewarm_steps]
        log(f"resumed from {a.resume_from} at step {state['step']}, "
            f"{state['tokens'] / 1e6:.1f}M tokens (fresh moments, {a.rewarm_steps} steps ramp)")
    if a.export:
        export(model, tok_path, a.export, state, os.path.join(a.out, "log.jsonl"))
        return

    hw = f"{a.device} {torch.get_num_threads()} threads"
    if device.type == "cuda":
        hw = torch.cuda.get_device_name(device)
    else:
        try:
            with open("/proc/cpuinfo") as f:
                hw = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name")) + \
                    f", {torch.get_num_threads()} threads"
        except (OSError, StopIteration):
            pass
    if hw not in state["hardware"]:
        state["hardware"].append(hw)
    log(f"{state['parameters']} parameters, train {len(train)} tokens, held-out {len(held)}, {hw}")

    batches = Batches(sp, train, a.kv_frac, a.seed)
    logf = open(os.path.join(a.out, "log.jsonl"), "a")
    t_start = time.time()
    t_ckpt = t_start
    t_seg = time.time()
    seg_tokens = 0
    loss_acc, loss_n = 0.0, 0
    model.train()
    bench_steps = 0
    while state["tokens"] < a.tokens:
        ctx = ctx_at(state["tokens"], a.tokens, schedule)
        rows = max(1, a.batch_tokens // ctx)
        lr = lr_at(state["tokens"], a.tokens, a.lr, a.warmup_tokens)
        if "rewarm" in state and state["step"] < state["rewarm"][1]:
            r0, r1 = state["rewarm"]
            lr *= (state["step"] - r0 + 1) / (r1 - r0)
        for g_ in opt.param_groups:
            g_["lr"] = lr
        x, y = batches.batch(state["step"], rows, ctx)
        x, y = x.to(device), y.to(device)
        loss = train_loss(model, x, y, amp)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state["step"] += 1
        state["tokens"] += rows * ctx
        seg_tokens += rows * ctx
        loss_acc += loss.item()
        loss_n += 1
        if a.bench:
            bench_steps += 1
            if bench_steps == 1:
                t_seg, seg_tokens = time.time(), 0
            if bench_steps > a.bench:
                log(f"bench: {seg_tokens / (time.time() - t_seg):.0f} tokens/s at ctx {ctx}, "
                    f"loss {loss.item():.3f}")
                return
            continue
        if state["step"] % a.log_every == 0:
            now = time.time()
            state["seconds"] += now - t_seg
            rec = {"step": state["step"], "tokens": state["tokens"], "ctx": ctx, "lr": lr,
                   "loss": loss_acc / loss_n, "tokens_per_s": seg_tokens / (now - t_seg),
                   "seconds": state["seconds"]}
            t_seg, seg_tokens, loss_acc, loss_n = now, 0, 0.0, 0
            if state["step"] % a.eval_every == 0:
                rec["heldout_loss"] = heldout_loss(model, held, 512, 64, device, amp)
                t_seg = time.time()
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in rec.items()))
        done = state["tokens"] >= a.tokens
        stop = a.stop_after_minutes and time.time() - t_start > 60 * a.stop_after_minutes
        if done or stop or time.time() - t_ckpt > 60 * a.ckpt_minutes:
            save_ckpt(ckpt, model, opt, state)
            t_ckpt = time.time()
            if stop:
                log("stopping (--stop-after-minutes); rerun to resume")
                return
    state["final_heldout_loss_ctx2048"] = heldout_loss(model, held, 2048, 32, device, amp)
    save_ckpt(ckpt, model, opt, state)
    log(f"done: {state['tokens'] / 1e6:.1f}M tokens, held-out loss (ctx 2048) "
        f"{state['final_heldout_loss_ctx2048']:.4f}")


if __name__ == "__main__":
    main()
