#!/work/venv-kvpress/bin/python
# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""kvsieve against NVIDIA's kvpress on the bundled tiny model (docs/results.md, "Against kvpress").

Interpreter: /work/venv-kvpress/bin/python (kvpress 0.5.5, transformers < 5.3, torch,
matplotlib, and kvsieve installed from this tree with `pip install --no-build-isolation .`).

Reads the teacher-forced snippets that `kvsieve-eval --write-snippets FILE` writes (one source for
both tools), and for every configuration and snippet prefills the prompt, then scores the
continuation teacher-forced: bits = -log2 p(true token), bits/byte = total bits / total
continuation tokens (byte-level model: a token is a byte).

- kvpress presses compress the prompt once, at prefill (`with press(model): model(prompt,
  past_key_values=DynamicCache())`); the continuation is then fed in one pass (kvpress does not
  evict while decoding), with position ids that continue the prompt's.
- kvsieve runs through kvsieve.hf.Cache, one token per pass after the prompt.

Per configuration: mean KV kept (tokens resident / tokens seen, averaged over the decode steps
and the KV heads of every layer, as kvsieve-eval's steps: after each fed continuation token but
the last), bits/byte, delta vs the full cache on the same snippets with a paired bootstrap 95%
interval (snippets resampled), and the physical bytes the cache holds after the continuation.
Writes quality.csv, memory.csv and per_snippet.csv to --out and the figure to --figure.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import string
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from transformers import AutoModelForCausalLM, DynamicCache
from transformers.utils import logging as hf_logging

ROOT = Path(__file__).resolve().parent.parent
LN2 = math.log(2.0)


@dataclass
class Snippet:
    name: str
    prompt: list[int]
    continuation: list[int]


@dataclass
class Run:
    """One configuration over the snippets."""

    method: str  # the line in the figure: "kvpress SnapKV", "kvsieve fastgen", ...
    config: str  # the row's name
    param: str  # ratio, T or budget
    bits: list[float] = field(default_factory=list)  # per snippet: Σ -log2 p(true token)
    tokens: list[int] = field(default_factory=list)  # per snippet: scored tokens (bytes)
    kept: list[float] = field(default_factory=list)  # per snippet: mean over steps and heads
    bytes_phys: list[int] = field(default_factory=list)  # per snippet, after the continuation
    bytes_full: list[int] = field(default_factory=list)  # the uncompressed cache's, same point
    bytes_ratio: list[float] = field(default_factory=list)  # kvsieve: mean bytes_resident/full
    seconds: float = 0.0


def load_snippets(path: Path, limit: Optional[int]) -> list[Snippet]:
    out = []
    with path.open() as f:
        for line in f:
            d = json.loads(line)
            out.append(Snippet(d["name"], list(d["prompt"]), list(d["continuation"])))
    return out[:limit] if limit else out


def token_bits(logits: torch.Tensor, targets: list[int]) -> np.ndarray:
    """-log2 softmax(logits)[target] per row (float64, as kvsieve-eval)."""
    lp = torch.log_softmax(logits.double(), dim=-1)
    t = torch.tensor(targets, dtype=torch.long)
    return (-lp[torch.arange(len(targets)), t] / LN2).numpy()


def load_model(model_dir: Path, attn: str) -> Any:
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                 attn_implementation=attn)
    return model.eval()


# ----------------------------------------------------------------------------------- kvpress


def dynamic_cache_bytes(cache: DynamicCache) -> int:
    total = 0
    for layer in cache.layers:
        for t in (layer.keys, layer.values):
            total += t.numel() * t.element_size()
    return total


def kvpress_kept_per_head(model: Any, cache: DynamicCache) -> np.ndarray:
    """Prompt tokens each KV head keeps after the press: [layer, kv_head].

    A press that frees shortens the cache; AdaKV masks instead (module.masked_key_indices: the
    (batch, head, position) triples it hides from attention), so its cache keeps full length."""
    rows = []
    for i, layer in enumerate(cache.layers):
        n_kv = layer.keys.shape[1]
        kept = np.full(n_kv, layer.keys.shape[2], dtype=np.float64)
        attn = model.model.layers[i].self_attn
        masked = getattr(attn, "masked_key_indices", None)
        if masked is not None:
            heads = masked[1].cpu().numpy()
            kept -= np.bincount(heads, minlength=n_kv)[:n_kv]
        rows.append(kept)
    return np.stack(rows)


def run_kvpress(model: Any, press: Any, snippets: list[Snippet], run: Run,
                masking: bool = False) -> Run:
    t0 = time.perf_counter()
    for s in snippets:
        p, c = len(s.prompt), len(s.continuation)
        cache = DynamicCache()
        ctx = press(model) if press is not None else contextlib.nullcontext()
        with torch.no_grad(), ctx:
            out = model(torch.tensor([s.prompt]), past_key_values=cache, use_cache=True)
            first = out.logits[0, -1:]
            kept = kvpress_kept_per_head(model, cache)
            # The continuation but its last token: positions continue the prompt's (the cache
            # may be shorter than p); the press does not fire after prefill. One pass, except
            # for a masking press (AdaKV): kvpress's fake key must cancel every query of the
            # pass, which it cannot do for hundreds at once, so one token per pass as kvpress's
            # own pipeline generates.
            chunk = 1 if masking else c - 1
            logits = [first]
            for j in range(0, c - 1, chunk):
                ids = s.continuation[j:min(j + chunk, c - 1)]
                pos = torch.arange(p + j, p + j + len(ids))[None]
                out = model(torch.tensor([ids]), past_key_values=cache, position_ids=pos,
                            use_cache=True)
                logits.append(out.logits[0])
            logits = torch.cat(logits)
            after = dynamic_cache_bytes(cache)
        run.bits.append(float(token_bits(logits, s.continuation).sum()))
        run.tokens.append(c)
        # Decode steps j = 1..c-1: each head holds its kept prompt tokens plus the j fed ones.
        steps = np.arange(1, c)
        run.kept.append(float(np.mean([np.mean((kept + j) / (p + j)) for j in steps])))
        run.bytes_phys.append(after)
        per_token = after / cache.layers[0].keys.shape[2] if cache.layers[0].keys.shape[2] else 0
        run.bytes_full.append(int(round(per_token * (p + c - 1))))
        for layer in model.model.layers:  # AdaKV leaves its mask on the modules
            if hasattr(layer.self_attn, "masked_key_indices"):
                layer.self_attn.masked_key_indices = None
    run.seconds = time.perf_counter() - t0
    return run


def kvpress_runs(model_dir: Path, ratios: list[float], snippets: list[Snippet],
                 want: Callable[[str], bool], log: Callable[[Run], None]) -> list[Run]:
    import kvpress  # noqa: PLC0415 (only this interpreter has it)

    # SDPA for every press: SnapKV and TOVA compute the attention rows they score themselves
    # when the layer returns none (as SDPA does), and AdaKV refuses eager.
    model = load_model(model_dir, "sdpa")
    runs = [run_kvpress(model, None, snippets, Run("full cache", "kvpress full", "-"))]
    log(runs[-1])
    makers = [
        ("StreamingLLM", lambda r: kvpress.StreamingLLMPress(compression_ratio=r)),
        ("SnapKV", lambda r: kvpress.SnapKVPress(compression_ratio=r)),
        ("TOVA", lambda r: kvpress.TOVAPress(compression_ratio=r)),
        ("ExpectedAttention", lambda r: kvpress.ExpectedAttentionPress(compression_ratio=r)),
        ("Knorm", lambda r: kvpress.KnormPress(compression_ratio=r)),
        ("AdaKV(SnapKV)", lambda r: kvpress.AdaKVPress(kvpress.SnapKVPress(compression_ratio=r))),
    ]
    for name, make in makers:
        for r in ratios:
            if not want(f"kvpress {name} ratio={r}"):
                continue
            press = make(r)
            runs.append(run_kvpress(model, press, snippets,
                                    Run(f"kvpress {name}", f"kvpress {name} ratio={r}", str(r)),
                                    masking=isinstance(press, kvpress.AdaKVPress)))
            log(runs[-1])
    return runs


# ----------------------------------------------------------------------------------- kvsieve


def run_kvsieve(model: Any, options: dict[str, Any], snippets: list[Snippet], run: Run,
                punctuation: list[int]) -> Run:
    import kvsieve.hf  # noqa: PLC0415

    t0 = time.perf_counter()
    for s in snippets:
        p, c = len(s.prompt), len(s.continuation)
        cache = kvsieve.hf.Cache(model, punctuation_ids=punctuation, **options)
        logits = []
        kept, ratio = [], []
        with torch.no_grad():
            out = model(torch.tensor([s.prompt]), past_key_values=cache, use_cache=True)
            logits.append(out.logits[0, -1])
            for j, tok in enumerate(s.continuation[:-1]):
                out = model(torch.tensor([[tok]]), past_key_values=cache, use_cache=True,
                            position_ids=torch.tensor([[p + j]]))
                logits.append(out.logits[0, -1])
                rep = cache.report()
                kept.append(np.mean([h.kept / h.length for h in rep.heads]))
                ratio.append(rep.bytes_resident / rep.bytes_full)
        rep = cache.report()
        cache.close()
        run.bits.append(float(token_bits(torch.stack(logits), s.continuation).sum()))
        run.tokens.append(c)
        run.kept.append(float(np.mean(kept)))
        run.bytes_ratio.append(float(np.mean(ratio)))
        run.bytes_phys.append(int(rep.bytes_resident))
        run.bytes_full.append(int(rep.bytes_full))
    run.seconds = time.perf_counter() - t0
    return run


def kvsieve_runs(model_dir: Path, thresholds: list[float], budgets: list[int],
                 snippets: list[Snippet], want: Callable[[str], bool],
                 log: Callable[[Run], None], skip_full: bool = False) -> list[Run]:
    model = load_model(model_dir, "sdpa")  # kvsieve.hf.Cache switches it to "kvsieve"
    punct = list(string.punctuation.encode())
    runs = []
    configs: list[tuple[str, str, str, dict[str, Any]]] = [
        ("full cache", "kvsieve full", "-", {"policy": "full"})]
    for t in thresholds:
        configs.append(("kvsieve fastgen", f"kvsieve fastgen T={t}", str(t),
                        {"policy": "fastgen", "threshold": t}))
    for b in budgets:
        for name in ("snapkv", "adakv", "tova"):
            configs.append((f"kvsieve {name}", f"kvsieve {name} budget={b}", str(b),
                            {"policy": name, "budget": b}))
        # 4 sinks + a recent window: b tokens in all
        configs.append(("kvsieve streaming", f"kvsieve streaming budget={b} (window={b - 4})",
                        str(b), {"policy": "streaming", "window": b - 4}))
    for method, config, param, opts in configs:
        if not want(config) if method != "full cache" else skip_full:
            continue
        runs.append(run_kvsieve(model, opts, snippets, Run(method, config, param), punct))
        log(runs[-1])
    return runs


# ----------------------------------------------------------------------------------- report


def totals(run: Run, tokens: int) -> float:
    return float(sum(run.bits)) / tokens


def paired_ci(run: Run, ref: Run, boot: int, seed: int) -> tuple[float, float]:
    """2.5th and 97.5th percentiles of Δ bits/byte with the snippets resampled (paired)."""
    diff = np.array(run.bits) - np.array(ref.bits)
    n_tok = np.array(ref.tokens, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diff), size=(boot, len(diff)))
    samples = diff[idx].sum(axis=1) / n_tok[idx].sum(axis=1)
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return float(lo), float(hi)


PER_SNIPPET = ["config", "method", "param", "snippet", "name", "bits", "tokens", "kv_kept_mean",
               "bytes_ratio_mean", "bytes_physical", "bytes_full", "seconds"]


def load_runs(folders: list[Path], n: int) -> list[Run]:
    """The runs of earlier invocations' per_snippet.csv (their first n snippets), in order."""
    runs: dict[str, Run] = {}
    for folder in folders:
        earlier = set(runs)  # a configuration two folders ran (the full cache): the first's
        with (folder / "per_snippet.csv").open() as f:
            for row in csv.DictReader(f):
                if int(row["snippet"]) >= n or row["config"] in earlier:
                    continue
                r = runs.setdefault(row["config"],
                                    Run(row["method"], row["config"], row["param"]))
                if len(r.bits) != int(row["snippet"]):
                    raise SystemExit(f"{folder}: {row['config']} snippets out of order or twice")
                r.bits.append(float(row["bits"]))
                r.tokens.append(int(row["tokens"]))
                r.kept.append(float(row["kv_kept_mean"]))
                if row["bytes_ratio_mean"]:
                    r.bytes_ratio.append(float(row["bytes_ratio_mean"]))
                r.bytes_phys.append(int(row["bytes_physical"]))
                r.bytes_full.append(int(row["bytes_full"]))
                r.seconds = float(row["seconds"])
    short = [c for c, r in runs.items() if len(r.bits) != n]
    if short:
        raise SystemExit(f"fewer than {n} snippets for: {', '.join(short)}")
    return list(runs.values())


def write_outputs(runs: list[Run], snippets: list[Snippet], out: Path, figure: Optional[Path],
                  boot: int, seed: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tokens = sum(len(s.continuation) for s in snippets)
    # Each side against its own full cache (kvpress: a DynamicCache under SDPA; kvsieve: policy
    # "full" through kvsieve.hf), so that Δ and its interval compare like with like.
    refs = {r.config.split()[0]: r for r in runs if r.method == "full cache"}
    with (out / "quality.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["config", "method", "param", "snippets", "tokens", "kv_kept_mean",
                     "bytes_ratio_mean", "bits_per_byte", "delta_vs_full", "ci_low", "ci_high",
                     "seconds"])
        for r in runs:
            bpb = totals(r, tokens)
            ref = refs.get(r.config.split()[0])
            lo, hi = paired_ci(r, ref, boot, seed) if ref else (math.nan, math.nan)
            w.writerow([r.config, r.method, r.param, len(r.bits), tokens,
                        f"{np.mean(r.kept):.4f}",
                        f"{np.mean(r.bytes_ratio):.4f}" if r.bytes_ratio else "",
                        f"{bpb:.4f}", f"{bpb - totals(ref, tokens):+.4f}" if ref else "",
                        f"{lo:+.4f}", f"{hi:+.4f}", f"{r.seconds:.1f}"])
    with (out / "memory.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["config", "kv_kept_mean", "bytes_physical", "bytes_full", "physical_fraction"])
        for r in runs:
            phys, full = float(np.mean(r.bytes_phys)), float(np.mean(r.bytes_full))
            w.writerow([r.config, f"{np.mean(r.kept):.4f}", f"{phys:.0f}", f"{full:.0f}",
                        f"{phys / full:.4f}" if full else ""])
    with (out / "per_snippet.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(PER_SNIPPET)
        for r in runs:
            for i in range(len(r.bits)):
                w.writerow([r.config, r.method, r.param, i, snippets[i].name, f"{r.bits[i]:.6f}",
                            r.tokens[i], f"{r.kept[i]:.6f}",
                            f"{r.bytes_ratio[i]:.6f}" if r.bytes_ratio else "",
                            r.bytes_phys[i], r.bytes_full[i], f"{r.seconds:.1f}"])
    if figure is not None:
        plot(runs, tokens, figure, len(snippets))


def print_tables(out: Path) -> None:
    """The Markdown tables of docs/results.md from --out's quality.csv and memory.csv."""
    with (out / "quality.csv").open() as f:
        q = list(csv.DictReader(f))
    with (out / "memory.csv").open() as f:
        m = {r["config"]: r for r in csv.DictReader(f)}
    q.sort(key=lambda r: (r["config"].split()[0], -float(r["kv_kept_mean"])))
    print("| config | snippets | KV kept (mean) | bits/byte | Δ vs own full | "
          "95% CI of Δ (snippets) |\n|---|---|---|---|---|---|")
    for r in q:
        print(f"| {r['config']} | {r['snippets']} | {100 * float(r['kv_kept_mean']):.1f}% | "
              f"{r['bits_per_byte']} | {r['delta_vs_full']} | [{r['ci_low']}, {r['ci_high']}] |")
    print("\n| config | KV kept (mean, logical) | bytes held after the continuation | "
          "full cache's bytes | physical / full |\n|---|---|---|---|---|")
    for r in q:
        x = m[r["config"]]
        print(f"| {r['config']} | {100 * float(x['kv_kept_mean']):.1f}% | "
              f"{int(x['bytes_physical']):,} | {int(x['bytes_full']):,} | "
              f"{100 * float(x['physical_fraction']):.1f}% |")


def plot(runs: list[Run], tokens: int, figure: Path, n: int) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(9, 5.5))
    methods: dict[str, list[Run]] = {}
    for r in runs:
        if r.method != "full cache":
            methods.setdefault(r.method, []).append(r)
    for method, rs in methods.items():
        rs = sorted(rs, key=lambda r: np.mean(r.kept))
        style = "-o" if method.startswith("kvsieve") else "--s"
        ax.plot([100 * np.mean(r.kept) for r in rs], [totals(r, tokens) for r in rs], style,
                label=method, markersize=4)
    for r in runs:
        if r.method == "full cache":
            ax.axhline(totals(r, tokens), color="grey", lw=0.8, ls=":")
    ax.set_xlabel("mean KV kept (% of tokens seen, per head, over decode steps)")
    ax.set_ylabel("bits/byte (teacher-forced)")
    ax.set_title(f"kvsieve vs kvpress on the bundled tiny model ({n} held-out snippets)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(figure, dpi=120)


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--snippets", type=Path, required=True,
                    help="JSON lines from kvsieve-eval --write-snippets")
    ap.add_argument("--limit", type=int, default=None, help="only the first N snippets")
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "tiny-llama")
    ap.add_argument("--out", type=Path, default=Path("kvpress-results"))
    ap.add_argument("--figure", type=Path, default=None, help="PNG of bits/byte vs KV kept")
    ap.add_argument("--ratios", type=floats, default=[0.25, 0.5, 0.75, 0.9],
                    help="kvpress compression ratios (share of the prompt removed)")
    ap.add_argument("--thresholds", type=floats, default=[0.90, 0.95, 0.98], help="FastGen T")
    ap.add_argument("--budgets", default="16,40,80,120",
                    help="kvsieve peers' tokens per head (1 - ratio of the 160-token prompt)")
    ap.add_argument("--only", choices=["kvpress", "kvsieve"], default=None)
    ap.add_argument("--match", action="append", default=[],
                    help="run only the configurations whose name contains TEXT (repeatable; "
                         "each side's full cache always runs)")
    ap.add_argument("--skip-kvsieve-full", action="store_true",
                    help="not kvsieve's full cache (another --out folder has it; see --merge)")
    ap.add_argument("--merge", type=Path, nargs="+", default=None, metavar="DIR",
                    help="run nothing: merge the per_snippet.csv of earlier --out folders (the "
                         "same snippets) into this --out and --figure")
    ap.add_argument("--tables", action="store_true",
                    help="print the Markdown tables of docs/results.md at the end")
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    hf_logging.disable_progress_bar()
    torch.manual_seed(0)
    snippets = load_snippets(a.snippets, a.limit)
    tokens = sum(len(s.continuation) for s in snippets)
    print(f"{len(snippets)} snippets, {tokens} scored tokens", file=sys.stderr)

    runs: list[Run] = []

    def log(r: Run) -> None:
        runs.append(r)  # the outputs so far: a run stopped early keeps what it finished
        write_outputs(runs, snippets, a.out, None, a.boot, a.seed)
        print(f"{r.config:42s} kept {100 * np.mean(r.kept):5.1f}%  "
              f"bits/byte {sum(r.bits) / tokens:.4f}  {r.seconds:6.1f} s",
              file=sys.stderr, flush=True)

    def want(config: str) -> bool:
        return not a.match or any(m in config for m in a.match)

    if a.merge:
        runs = load_runs(a.merge, len(snippets))
    elif a.only != "kvsieve":
        kvpress_runs(a.model, a.ratios, snippets, want, log)
    if not a.merge and a.only != "kvpress":
        kvsieve_runs(a.model, a.thresholds, [int(b) for b in a.budgets.split(",")], snippets,
                     want, log, a.skip_kvsieve_full)
    write_outputs(runs, snippets, a.out, a.figure, a.boot, a.seed)
    print(f"wrote {a.out}/quality.csv, memory.csv, per_snippet.csv"
          + (f" and {a.figure}" if a.figure else ""), file=sys.stderr)
    if a.tables:
        print_tables(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
