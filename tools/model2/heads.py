#!/usr/bin/env python3
"""Show the attention structure of a LLaMA model's heads on held-out prompts (issue 13, item 4),
as FastGen's profiling figures do, and which ladder rung each KV head picks.

Interpreter: a Python with torch, transformers >= 5, sentencepiece and matplotlib
(e.g. /work/venv/bin/python; see tools/README.md).

Prompts: --prompts windows of --tokens tokens (BOS included) from the documents of a JSON-lines
file (tools/model2/build_corpus.py's heldout.jsonl): each source's documents largest first, the
sources interleaved, a window starting at the first line after a quarter of the document. The
window's text is what both this script and kvsieve-generate tokenize, so both see the same ids.

Per layer and query head, averaged over the query rows from --q-start on and over the prompts
(attention from transformers' eager attention, float32):
  special  mass on BOS (the only special token in a prompt)
  punct    mass on punctuation tokens (kvsieve's rule, include/kvsieve/vocab/token_classifier.hpp:
           a piece minus one leading "▁" made only of Unicode P* / ASCII punctuation characters)
  local    mass within the last ceil(0.3 * (i + 1)) keys of row i (FastGen's r_l = 0.3)
  top30    mass on the row's own top 30% keys (an upper bound of what r_f = 0.3 heavy hitters
           can recover, since FastGen ranks by the column sum instead)
  keys95   fraction of the keys needed to reach 95% of the row's mass
and a class per head: sink (special >= 0.5), punct (>= 0.5), local (local >= 0.8), else broad.

Rung choices: for each prompt and each T of --thresholds, `kvsieve-generate --max-new-tokens 0
--threshold T --save-profile` (the C++ profiler on the same prompt) gives every KV head's choice;
the table counts them and the figure shows the modal choice per KV head.

Usage:
    /work/venv/bin/python tools/model2/heads.py --model models/<name> \\
        --data /work/data/model2/heldout.jsonl \\
        --generate build/default/examples/llama/kvsieve-generate \\
        --figure docs/figures/<name>/heads.png --markdown /tmp/heads.md --json /tmp/heads.json
"""

import argparse
import collections
import json
import math
import os
import string
import subprocess
import sys
import tempfile
import unicodedata

import sentencepiece as spm
import torch

ASCII_PUNCT = set(string.punctuation)


def is_punct_piece(piece):
    if piece.startswith("<0x") and piece.endswith(">"):
        ch = chr(int(piece[3:-1], 16))
        return ch in ASCII_PUNCT
    if piece.startswith("\u2581"):
        piece = piece[1:]
    return bool(piece) and all(c in ASCII_PUNCT or unicodedata.category(c).startswith("P")
                               for c in piece)


def prompts_from(path, sp, n, tokens):
    by_source = collections.defaultdict(list)
    with open(path, encoding="utf-8") as f:
        for row in f:
            d = json.loads(row)
            by_source[d["source"]].append(d)
    for docs in by_source.values():
        docs.sort(key=lambda d: -len(d["text"].encode()))
    order = []
    for i in range(max(len(v) for v in by_source.values())):
        for src in sorted(by_source):
            if i < len(by_source[src]):
                order.append(by_source[src][i])
    out = []
    for d in order:
        t = d["text"]
        start = t.find("\n", len(t) // 4) + 1
        ids = sp.encode(t[start:])
        if len(ids) < tokens:
            continue
        text = sp.decode(ids[:tokens - 1])
        ids = [1] + sp.encode(text)
        if len(ids) < tokens // 2:
            continue
        out.append((f"{d['source']}:{d['name']}", text, ids))
        if len(out) == n:
            break
    return out


@torch.no_grad()
def head_shares(model, ids, punct_ids, q_start, ratio=0.3):
    x = torch.tensor([ids])
    out = model(input_ids=x, output_attentions=True)
    T = len(ids)
    is_punct = torch.tensor([t in punct_ids for t in ids], dtype=torch.float32)
    qi = torch.arange(q_start, T)
    kj = torch.arange(T)
    win = torch.ceil(ratio * (qi + 1).float())
    local_mask = (((qi[:, None] - kj[None, :]) < win[:, None]) &
                  (kj[None, :] <= qi[:, None])).float()
    n = (qi + 1).float()
    k30 = torch.ceil(ratio * n).long() - 1
    res = []
    for p in out.attentions:
        p = p[0, :, q_start:, :].float()  # (H, Q, T)
        srt = p.sort(dim=-1, descending=True).values
        cum = srt.cumsum(-1)
        top30 = cum.gather(2, k30[None, :, None].expand(p.shape[0], -1, 1)).squeeze(-1)
        keys95 = ((cum < 0.95).sum(-1).float() + 1) / n
        res.append(torch.stack([p[:, :, 0].mean(-1), (p * is_punct).sum(-1).mean(-1),
                                (p * local_mask).sum(-1).mean(-1), top30.mean(-1),
                                keys95.mean(-1)], dim=-1))  # (H, 5)
    return torch.stack(res)  # (L, H, 5)


def head_class(s):
    if s[0] >= 0.5:
        return "sink"
    if s[1] >= 0.5:
        return "punct"
    if s[2] >= 0.8:
        return "local"
    return "broad"


def rung_choices(generate, model_dir, text, T):
    with tempfile.TemporaryDirectory() as tmp:
        prompt = os.path.join(tmp, "prompt.txt")
        prof = os.path.join(tmp, "profile.json")
        with open(prompt, "w", encoding="utf-8") as f:
            f.write(text)
        subprocess.run([generate, "--model", model_dir, "--prompt-file", prompt,
                        "--max-new-tokens", "0", "--threshold", str(T), "--save-profile", prof,
                        "--threads", "2"], check=True, stdout=subprocess.DEVNULL)
        with open(prof, encoding="utf-8") as f:
            p = json.load(f)
    return p["ladder"], {(h["layer"], h["kv_head"]): h["choice"] for h in p["heads"]}


SHORT = {"special": "S", "special+punctuation": "SP", "special+punctuation+frequent": "SPF",
         "special+punctuation+frequent+local": "SPFL", "full": "full"}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True, help="heldout.jsonl")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--q-start", type=int, default=64)
    ap.add_argument("--generate", default=None, help="kvsieve-generate binary (rung choices)")
    ap.add_argument("--thresholds", default="0.90,0.95,0.98")
    ap.add_argument("--figure", default=None)
    ap.add_argument("--markdown", default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    from transformers import LlamaForCausalLM
    torch.set_num_threads(os.cpu_count())
    model = LlamaForCausalLM.from_pretrained(a.model, dtype=torch.float32,
                                             attn_implementation="eager").eval()
    sp = spm.SentencePieceProcessor(model_file=os.path.join(a.model, "tokenizer.model"))
    punct_ids = {i for i in range(sp.get_piece_size()) if is_punct_piece(sp.id_to_piece(i))}
    prompts = prompts_from(a.data, sp, a.prompts, a.tokens)
    if len(prompts) < a.prompts:
        sys.exit(f"only {len(prompts)} documents have {a.tokens} tokens")
    shares = torch.stack([head_shares(model, ids, punct_ids, a.q_start)
                          for _, _, ids in prompts]).mean(0)  # (L, H, 5)
    cfg = model.config
    L, H = shares.shape[0], shares.shape[1]
    group = H // cfg.num_key_value_heads

    choices = {}
    ladder = None
    if a.generate:
        for T in (float(t) for t in a.thresholds.split(",")):
            per_head = collections.defaultdict(collections.Counter)
            for _, text, _ in prompts:
                ladder, ch = rung_choices(a.generate, a.model, text, T)
                for k, c in ch.items():
                    per_head[k][c] += 1
            choices[T] = per_head

    report = {"model": a.model, "prompts": [p[0] for p in prompts], "tokens": a.tokens,
              "q_start": a.q_start, "punct_share_of_tokens":
              sum(sum(t in punct_ids for t in ids) / len(ids) for _, _, ids in prompts) / len(prompts),
              "heads": [], "choices": {}}
    for l in range(L):
        for h in range(H):
            s = shares[l, h].tolist()
            report["heads"].append(dict(layer=l, head=h, kv_head=h // group, special=s[0],
                                        punct=s[1], local=s[2], top30=s[3], keys95=s[4],
                                        cls=head_class(s)))
    for T, per_head in choices.items():
        report["choices"][f"{T:.2f}"] = {
            "ladder": ladder,
            "counts": [sum(per_head[(l, k)][i] for l in range(L) for k in
                           range(cfg.num_key_value_heads)) for i in range(len(ladder))],
            "modal": [[ladder[per_head[(l, k)].most_common(1)[0][0]] for k in
                       range(cfg.num_key_value_heads)] for l in range(L)]}
    classes = collections.Counter(r["cls"] for r in report["heads"])
    report["classes"] = dict(classes)

    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    lines = [f"Prompts: {len(prompts)} held-out windows of {a.tokens} tokens; rows from "
             f"{a.q_start}; {report['punct_share_of_tokens']:.1%} of the tokens are punctuation. "
             f"Classes: " + ", ".join(f"{k} {v}" for k, v in sorted(classes.items())), "",
             "| layer | head (KV) | special | punct | local 30% | top 30% | keys for 95% | class |",
             "|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in report["heads"]:
        lines.append(f"| {r['layer']} | {r['head']} ({r['kv_head']}) | {r['special']:.2f} | "
                     f"{r['punct']:.2f} | {r['local']:.2f} | {r['top30']:.2f} | "
                     f"{r['keys95']:.2f} | {r['cls']} |")
    if choices:
        lines += ["", "| T | " + " | ".join(SHORT.get(n, n) for n in ladder) + " |",
                  "|---:|" + "---:|" * len(ladder)]
        for T, c in report["choices"].items():
            lines.append(f"| {T} | " + " | ".join(str(x) for x in c["counts"]) + " |")
    md = "\n".join(lines) + "\n"
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(md)
    print(md)

    if a.figure:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        names = ["special (BOS)", "punctuation", "local 30%", "top 30% keys", "keys for 95%"]
        n_ch = len(choices)
        # Two rows: the five attention shares per query head above, the rung per KV head below.
        cols = max(5, n_ch + 1)  # below: a panel per threshold, then the key
        fig = plt.figure(figsize=(3.0 * cols, 7.2))
        grid = fig.add_gridspec(2, cols)
        axes = [fig.add_subplot(grid[0, i]) for i in range(5)]
        axes += [fig.add_subplot(grid[1, i]) for i in range(n_ch)]
        for i, ax in enumerate(axes[:5]):
            im = ax.imshow(shares[:, :, i].numpy(), vmin=0, vmax=1, cmap="viridis")
            ax.set_title(names[i], fontsize=9)
            ax.set_xlabel("query head")
            ax.set_ylabel("layer" if i == 0 else "")
            for l in range(L):
                for h in range(H):
                    label = f"{shares[l, h, i]:.2f}"  # ".97"; 0.996 rounds to "1"
                    ax.text(h, l, "1" if label == "1.00" else label[1:],
                            ha="center", va="center", fontsize=5.5,
                            color="white" if shares[l, h, i] < 0.6 else "black")
        fig.colorbar(im, ax=axes[4], fraction=0.05)
        if n_ch:
            key = fig.add_subplot(grid[1, n_ch])
            key.axis("off")
            key.text(0, 0.9, "rungs (cheapest first):\n" + "\n".join(
                f"{SHORT.get(r, r)}  {r}" for r in ladder), va="top", fontsize=8)
        for i, (ax, (T, c)) in enumerate(zip(axes[5:], report["choices"].items())):
            idx = [[ladder.index(x) for x in row] for row in c["modal"]]
            ax.imshow(idx, vmin=0, vmax=len(ladder) - 1, cmap="Pastel1")
            for l in range(L):
                for k in range(cfg.num_key_value_heads):
                    ax.text(k, l, SHORT.get(c["modal"][l][k], "?"), ha="center", va="center",
                            fontsize=6)
            ax.set_title(f"rung at T = {T} (modal over prompts)", fontsize=9)
            ax.set_xlabel("KV head")
            ax.set_ylabel("layer" if i == 0 else "")
        fig.suptitle(f"{os.path.basename(os.path.normpath(a.model))}: attention structure on "
                     f"{len(prompts)} held-out prompts of {a.tokens} tokens", fontsize=10)
        fig.tight_layout()
        fig.savefig(a.figure, dpi=130)


if __name__ == "__main__":
    main()
