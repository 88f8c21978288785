#!/usr/bin/env python3
"""Plot kvsieve-eval results: quality vs KV memory kept, one curve per method.

Usage:
    python3 tools/plot_results.py DIR [DIR ...] [--out docs/figures] [--tables]

Each DIR holds kvsieve-eval's results.csv, retrieval.csv, heads.csv and profile.csv (several
DIRs, e.g. shards run with --groups, are concatenated; the full-cache row repeats in each).
Writes into --out:
    quality_vs_memory.png     bits-per-byte increase over the full cache vs mean KV memory kept
    agreement_vs_memory.png   greedy tokens identical to the full cache's vs memory kept
    retrieval_vs_memory.png   retrieval answer-token accuracy vs memory kept
    head_structure.png        share of KV heads choosing each FastGen candidate per layer
--tables prints the Markdown tables used in docs/results.md.

Needs matplotlib (pip install --break-system-packages matplotlib).
"""

import argparse
import csv
import os
import sys
from collections import OrderedDict, defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CURVES = ["fastgen", "local", "frequent", "local+frequent", "streaming"]
STYLE = {
    "fastgen": dict(color="C3", marker="o", lw=2.2),
    "local": dict(color="C0", marker="s"),
    "frequent": dict(color="C2", marker="^"),
    "local+frequent": dict(color="C1", marker="D"),
    "streaming": dict(color="C4", marker="v"),
}


def read_csv(dirs, name):
    rows, seen = [], set()
    for d in dirs:
        path = os.path.join(d, name)
        if not os.path.exists(path):
            continue
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                key = tuple(r.items())
                if key in seen:
                    continue
                seen.add(key)
                rows.append(r)
    return rows


def unique_configs(rows):
    out = OrderedDict()
    for r in rows:
        out.setdefault(r["config"], r)  # the first full-cache row is the reference
    return list(out.values())


def curve_plot(rows, ycol, ylabel, title, path, ref_y=None, symlog=False):
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for m in CURVES:
        pts = sorted((float(r["kv_mem_mean"]), float(r[ycol]), r) for r in rows if r["method"] == m)
        if not pts:
            continue
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=m, **STYLE[m])
        if m == "fastgen":
            for i, (x, y, r) in enumerate(pts):
                ax.annotate(f"{float(r['threshold']):.2f}", (x, y), textcoords="offset points",
                            xytext=(-6, 7 if i % 2 == 0 else -12), fontsize=7, color="C3")
    full = [r for r in rows if r["method"] == "full"]
    if full:
        ax.plot([float(full[0]["kv_mem_mean"])], [float(full[0][ycol])], "k*", ms=12, label="full")
    if ref_y is not None:
        ax.axhline(ref_y, color="gray", lw=0.8, ls=":")
    if symlog:
        ax.set_yscale("symlog", linthresh=0.01)
    ax.set_xlabel("KV memory kept (mean over decode steps, bytes resident / full)")
    ax.set_ylabel(ylabel)
    ax.set_title(title + " (FastGen points labelled with T)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def head_plot(heads, path):
    configs = [c for c in OrderedDict((h["config"], 1) for h in heads) if c.startswith("fastgen T=")]
    if not configs:
        return
    names = list(OrderedDict((h["policy"], 1) for h in heads if h["config"] == configs[0]))
    fig, axes = plt.subplots(1, len(configs), figsize=(2.2 * len(configs), 3.8), sharey=True)
    if len(configs) == 1:
        axes = [axes]
    colors = ["#4caf50", "#26c6da", "#ffca28", "#ab47bc", "#e53935"]
    for ax, c in zip(axes, configs):
        share = defaultdict(dict)
        for h in heads:
            if h["config"] == c:
                share[h["policy"]][int(h["layer"])] = float(h["share"])
        layers = sorted({layer for s in share.values() for layer in s})
        bottom = [0.0] * len(layers)
        for i, n in enumerate(names):
            vals = [share[n].get(layer, 0.0) for layer in layers]
            ax.bar(layers, vals, bottom=bottom, color=colors[i % len(colors)], label=n)
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_title(c, fontsize=9)
        ax.set_xlabel("layer")
        ax.set_xticks(layers)
    axes[0].set_ylabel("share of KV heads")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=len(names))
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=130)
    plt.close(fig)


def pct(x):
    return f"{100 * float(x):.1f}%"


def tables(rows, retrieval, profile):
    full = next(r for r in rows if r["method"] == "full")
    print("### Main: FastGen T sweep\n")
    print("| T | KV kept (mean) | saved (mean) | saved (end) | bits/byte | Δ vs full | greedy agreement "
          "| first divergence | retrieval token acc. | profiling share |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in [full] + [r for r in rows if r["method"] == "fastgen"]:
        t = "full" if r["method"] == "full" else r["threshold"]
        print(f"| {t} | {pct(r['kv_mem_mean'])} | {pct(r['kv_saved_mean'])} | {pct(r['kv_saved_final'])} "
              f"| {float(r['bpb']):.4f} | {float(r['bpb_delta']):+.4f} | {pct(r['gen_agreement'])} "
              f"| {float(r['gen_first_divergence']):.1f} | {pct(r['retrieval_token_accuracy'])} "
              f"| {100 * float(r['profile_share']):.3f}% |")
    print("\n### Fixed policies\n")
    print("| config | KV kept (mean) | bits/byte | Δ vs full | greedy agreement | first divergence "
          "| retrieval token acc. |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if r["group"] == "fixed":
            print(f"| {r['config']} | {pct(r['kv_mem_mean'])} | {float(r['bpb']):.4f} "
                  f"| {float(r['bpb_delta']):+.4f} | {pct(r['gen_agreement'])} "
                  f"| {float(r['gen_first_divergence']):.1f} | {pct(r['retrieval_token_accuracy'])} |")
    abl = [r for r in rows if r["group"] == "ablation"]
    if abl:
        print("\n### Ablations (T = 0.98)\n")
        print("| variant | KV kept (mean) | saved (end) | bits/byte | Δ vs full | greedy agreement "
              "| retrieval token acc. | heads per candidate |")
        print("|---|---|---|---|---|---|---|---|")
        base = [r for r in rows if r["config"] == "fastgen T=0.98"]
        for r in base + abl:
            name = "FastGen (Eq. 2 ladder, defaults)" if r in base else r["method"]
            print(f"| {name} | {pct(r['kv_mem_mean'])} | {pct(r['kv_saved_final'])} "
                  f"| {float(r['bpb']):.4f} | {float(r['bpb_delta']):+.4f} | {pct(r['gen_agreement'])} "
                  f"| {pct(r['retrieval_token_accuracy'])} | {r['policy_counts'].replace(';', '; ')} |")
    if profile:
        print("\n### Profiling cost\n")
        print("| config | prompt | generated | total (s) | profiling (s) | share |")
        print("|---|---|---|---|---|---|")
        for p in profile:
            print(f"| {p['config']} | {p['prompt_tokens']} | {p['generated_tokens']} "
                  f"| {float(p['total_seconds']):.2f} | {float(p['profile_seconds']):.5f} "
                  f"| {100 * float(p['profile_share']):.3f}% |")
    if retrieval:
        print("\n### Retrieval by context length (exact / answer-token accuracy)\n")
        lengths = sorted({int(r["context_bytes"]) for r in retrieval})
        print("| config | " + " | ".join(f"{n} bytes" for n in lengths) + " |")
        print("|---|" + "---|" * len(lengths))
        by = defaultdict(dict)
        for r in retrieval:
            by[r["config"]][int(r["context_bytes"])] = r
        for c, d in by.items():
            cells = [f"{pct(d[n]['accuracy'])} / {pct(d[n]['token_accuracy'])}" if n in d else "" for n in lengths]
            print(f"| {c} | " + " | ".join(cells) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--out", default="docs/figures")
    ap.add_argument("--tables", action="store_true")
    a = ap.parse_args()
    rows = unique_configs(read_csv(a.dirs, "results.csv"))
    if not rows:
        sys.exit("no results.csv rows in " + ", ".join(a.dirs))
    os.makedirs(a.out, exist_ok=True)
    main_rows = [r for r in rows if r["group"] in ("main", "fixed")]
    curve_plot(main_rows, "bpb_delta", "bits/byte increase over the full cache",
               "Teacher-forced quality vs KV memory (held-out code)",
               os.path.join(a.out, "quality_vs_memory.png"), ref_y=0.0, symlog=True)
    curve_plot(main_rows, "gen_agreement", "share of greedy tokens equal to full cache",
               "Greedy generation agreement vs KV memory", os.path.join(a.out, "agreement_vs_memory.png"))
    curve_plot(main_rows, "retrieval_token_accuracy", "retrieval answer-token accuracy",
               "Key/value retrieval vs KV memory", os.path.join(a.out, "retrieval_vs_memory.png"))
    heads = read_csv(a.dirs, "heads.csv")
    head_plot(heads, os.path.join(a.out, "head_structure.png"))
    if a.tables:
        retrieval = list(OrderedDict(((r["config"], r["context_bytes"]), r)
                                     for r in reversed(read_csv(a.dirs, "retrieval.csv"))).values())[::-1]
        profile = list(OrderedDict(((p["config"], p["generated_tokens"]), p)
                                   for p in reversed(read_csv(a.dirs, "profile.csv"))).values())[::-1]
        tables(rows, retrieval, profile)


if __name__ == "__main__":
    main()
