#!/usr/bin/env python3
"""Plot kvsieve-eval results: quality vs KV memory kept, one curve per method.

Usage:
    python3 tools/plot_results.py DIR [DIR ...] [--out docs/figures] [--tables] [--held-out NAME]
                                  [--samples DIR] [--peers DIR] [--subject TEXT]

Each DIR holds kvsieve-eval's results.csv, retrieval.csv, heads.csv, profile.csv and/or
stability.csv (several DIRs, e.g. shards run with --groups or --data tune, are concatenated; the
full-cache row repeats in each; a configuration is identified by its data split and name).
--samples DIR is a run of the same configurations on a larger sample (e.g. --snippets 16), only
tabled, next to the main table.
Writes into --out:
    quality_vs_memory.png     bits-per-byte increase over the full cache vs mean KV memory kept
    agreement_vs_memory.png   greedy tokens identical to the full cache's vs memory kept
    retrieval_vs_memory.png   retrieval answer-token accuracy vs memory kept
    head_structure.png        share of KV heads choosing each FastGen candidate per layer
    stability.png             recovered mass by candidate at the prompt and after s generated
                              tokens, and how often the prompt's choice still reaches T (Fig. 4)
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
PEERS = ["fastgen", "h2o", "tova", "snapkv", "pyramidkv", "adakv"]
STYLE = {
    "h2o": dict(color="C1", marker="D"),
    "tova": dict(color="C0", marker="s"),
    "snapkv": dict(color="C2", marker="^"),
    "pyramidkv": dict(color="C4", marker="v"),
    "adakv": dict(color="C5", marker="P"),
    "fastgen": dict(color="C3", marker="o", lw=2.2),
    "local": dict(color="C0", marker="s"),
    "frequent": dict(color="C2", marker="^"),
    "local+frequent": dict(color="C1", marker="D"),
    "streaming": dict(color="C4", marker="v"),
}


# Columns added after the first published run; older CSVs get the values that run used.
DEFAULTS = {"data": "held-out", "recovery_rows": "0", "new_token": "attend",
            "generated_classes": "classify", "bpb_delta_lo": "", "bpb_delta_hi": "",
            "gen_agreement_lo": "", "gen_agreement_hi": ""}


# --held-out NAME: the data value of a --data-file run (its file name), read as "held-out" so the
# held-out curves and tables take it.
HELD_OUT_ALIASES = set()


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
                if name == "results.csv":
                    for k, v in DEFAULTS.items():
                        r.setdefault(k, v)
                    if r["data"] in HELD_OUT_ALIASES:
                        r["data"] = "held-out"
                rows.append(r)
    return rows


def unique_configs(rows):
    out = OrderedDict()
    for r in rows:
        out.setdefault((r["data"], r["config"]), r)  # the first full-cache row is the reference
    return list(out.values())


def curve_plot(rows, ycol, ylabel, title, path, ref_y=None, symlog=False, curves=CURVES):
    """One curve per method; error bars where the CSV has ycol_lo / ycol_hi."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for m in curves:
        pts = sorted(((float(r["kv_mem_mean"]), float(r[ycol]), r) for r in rows if r["method"] == m),
                     key=lambda p: (p[0], p[1]))
        if not pts:
            continue
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=m, **STYLE[m])
        if all(p[2].get(ycol + "_lo", "") != "" for p in pts):
            # the bootstrap intervals kvsieve-eval wrote (95%, over blocks or prompts)
            lo = [p[1] - float(p[2][ycol + "_lo"]) for p in pts]
            hi = [float(p[2][ycol + "_hi"]) - p[1] for p in pts]
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[lo, hi], fmt="none",
                        ecolor=STYLE[m]["color"], alpha=0.45, capsize=2, lw=1)
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


LETTER = {"special": "S", "punctuation": "P", "frequent": "F", "local": "L"}


def short(name):
    """special+punctuation+frequent -> S+P+F; full and unknown members stay as they are."""
    parts = name.split("+")
    if all(p in LETTER for p in parts):
        return "+".join(LETTER[p] for p in parts)
    return name


def stability_summary(stab):
    """Per measurement (generated, rows): candidate names, per-prompt mean recovered mass per
    candidate, and per (prompt, layer, kv_head) the candidates' masses."""
    names = {}
    per_head = defaultdict(dict)  # (generated, rows) -> (prompt, layer, head) -> [mass]
    for r in stab:
        key = (int(r["generated"]), int(r["rows"]))
        head = (int(r["prompt"]), int(r["layer"]), int(r["kv_head"]))
        c = int(r["candidate"])
        names[c] = r["policy"]
        per_head[key].setdefault(head, {})[c] = float(r["recovered"])
    order = [names[c] for c in sorted(names)]
    heads = {k: {h: [v[c] for c in sorted(v)] for h, v in d.items()} for k, d in per_head.items()}
    return order, heads


def measurements(heads):
    """The prompt (all rows), the prompt's last rows, then the generated steps."""
    keys = sorted(heads)
    full_prompt = [k for k in keys if k[0] == 0 and k[1] == max(kk[1] for kk in keys if kk[0] == 0)]
    rest = [k for k in keys if k not in full_prompt]
    return full_prompt + rest


def label(key, prompt_rows):
    g, rows = key
    if g == 0:
        return f"prompt, all {rows} rows" if rows == prompt_rows else f"prompt, last {rows} rows"
    return f"+{g} generated ({rows} rows)"


def mean_ci(values_by_prompt):
    """Mean over prompts and a normal 95% interval half-width (prompts are the units)."""
    xs = list(values_by_prompt)
    n = len(xs)
    m = sum(xs) / n
    if n < 2:
        return m, 0.0
    var = sum((x - m) ** 2 for x in xs) / (n - 1)
    return m, 1.96 * (var / n) ** 0.5


def per_prompt_mean(d, c):
    by = defaultdict(list)
    for (p, _, _), v in d.items():
        by[p].append(v[c])
    return [sum(v) / len(v) for v in by.values()]


def choice(masses, t):
    return next(i for i, m in enumerate(masses) if m >= t - 1e-9)


def holds(heads, base, key, t, non_full_only=False):
    """Heads (over prompts) whose choice on `base` still reaches t on `key`; and total."""
    ok = n = 0
    for h, masses in heads[base].items():
        c = choice(masses, t)
        if non_full_only and c == len(masses) - 1:
            continue
        n += 1
        ok += heads[key][h][c] >= t - 1e-9
    return ok, n


def stability_plot(stab, path, thresholds=(0.90, 0.95, 0.98)):
    if not stab:
        return
    order, heads = stability_summary(stab)
    keys = measurements(heads)
    prompt_rows = keys[0][1]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.6, 1]})
    width = 0.8 / len(keys)
    colors = ["#37474f", "#90a4ae", "#ef9a9a", "#e57373", "#c62828", "#8e0000"]
    for j, key in enumerate(keys):
        ms = [mean_ci(per_prompt_mean(heads[key], c)) for c in range(len(order))]
        xs = [c + (j - (len(keys) - 1) / 2) * width for c in range(len(order))]
        ax.bar(xs, [m for m, _ in ms], width, yerr=[e for _, e in ms], capsize=2,
               color=colors[j % len(colors)], label=label(key, prompt_rows))
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([short(n) for n in order])
    ax.set_ylabel("recovered attention mass (mean over heads)")
    ax.set_title("Recovered mass by candidate: prompt rows vs generated rows", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    gen = [k for k in keys if k[0] > 0]
    base = keys[0]
    for i, t in enumerate(thresholds):
        ys = []
        for k in gen:
            ok, n = holds(heads, base, k, t, non_full_only=True)
            ys.append(ok / n if n else float("nan"))
        ax2.plot([k[0] for k in gen], ys, marker="o", color=f"C{i}", label=f"T = {t:.2f}")
        last = [k for k in keys if k[0] == 0 and k != base]
        if last:
            ok, n = holds(heads, base, last[0], t, non_full_only=True)
            if n:
                ax2.plot([0], [ok / n], marker="s", color=f"C{i}", mfc="none")
    ax2.set_ylim(0, 1.05)
    ax2.set_xlabel("generated tokens (square at 0: the prompt's last rows)")
    ax2.set_ylabel("prompt choice still reaches T")
    ax2.set_title("Heads not choosing full: does the prompt's choice hold?", fontsize=9)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def stability_tables(stab, thresholds=(0.90, 0.95, 0.98)):
    order, heads = stability_summary(stab)
    keys = measurements(heads)
    prompt_rows = keys[0][1]
    n_prompts = len({h[0] for h in heads[keys[0]]})
    print(f"\n### Stability (Fig. 4): recovered mass by candidate, mean over {n_prompts} prompts x "
          f"{len(heads[keys[0]]) // n_prompts} KV heads (± 95% CI over prompts)\n")
    print("| rows measured | " + " | ".join(short(n) for n in order) + " |")
    print("|---|" + "---|" * len(order))
    for key in keys:
        cells = []
        for c in range(len(order)):
            m, e = mean_ci(per_prompt_mean(heads[key], c))
            cells.append(f"{m:.3f} ± {e:.3f}")
        print(f"| {label(key, prompt_rows)} | " + " | ".join(cells) + " |")
    base = keys[0]
    print("\n### Stability: does the prompt's choice still reach T?\n")
    print("| T | heads not choosing full at the prompt | " +
          " | ".join(label(k, prompt_rows) for k in keys[1:]) + " | choice on generated rows "
          "(last step) same / cheaper / dearer |")
    print("|---|---|" + "---|" * (len(keys) - 1) + "---|")
    for t in thresholds:
        ok0, n = holds(heads, base, base, t, non_full_only=True)
        cells = []
        for k in keys[1:]:
            ok, nn = holds(heads, base, k, t, non_full_only=True)
            cells.append(f"{ok}/{nn} ({100 * ok / nn:.0f}%)" if nn else "—")
        last = keys[-1]
        same = cheaper = dearer = 0
        for h, masses in heads[base].items():
            c0, c1 = choice(masses, t), choice(heads[last][h], t)
            same += c0 == c1
            cheaper += c1 < c0
            dearer += c1 > c0
        total = len(heads[base])
        print(f"| {t:.2f} | {n} of {total} | " + " | ".join(cells) +
              f" | {same} / {cheaper} / {dearer} |")
    last = [k for k in keys if k[0] == 0 and k != base]
    gen = [k for k in keys if k[0] > 0]
    if last and gen:
        print(f"\n### Stability: profile on the prompt's {label(last[0], prompt_rows)[8:]} instead "
              "(§6.1 OPTION)\n")
        print("| T | heads not choosing full | " + " | ".join(label(k, prompt_rows) for k in gen) +
              " | misses: median (max) shortfall on generated rows / median margin on the prompt |")
        print("|---|---|" + "---|" * len(gen) + "---|")
        for t in thresholds:
            cells = []
            n = 0
            for k in gen:
                ok, n = holds(heads, last[0], k, t, non_full_only=True)
                cells.append(f"{ok}/{n} ({100 * ok / n:.0f}%)" if n else "—")
            short_by, margin = [], []
            for h, masses in heads[last[0]].items():
                c = choice(masses, t)
                if c == len(masses) - 1:
                    continue
                for k in gen:
                    if heads[k][h][c] < t - 1e-9:
                        short_by.append(t - heads[k][h][c])
                        margin.append(masses[c] - t)
            misses = (f"{sorted(short_by)[len(short_by) // 2]:.3f} ({max(short_by):.3f}) / "
                      f"{sorted(margin)[len(margin) // 2]:.3f}" if short_by else "—")
            print(f"| {t:.2f} | {n} of {len(heads[base])} | " + " | ".join(cells) + f" | {misses} |")
    print("\n### Stability per layer: S+P+F+L mass (mean over prompts and the layer's KV heads)\n")
    spfl = len(order) - 2
    layers = sorted({h[1] for h in heads[base]})
    print("| layer | " + " | ".join(label(k, prompt_rows) for k in keys) + " |")
    print("|---|" + "---|" * len(keys))
    for layer in layers:
        cells = []
        for k in keys:
            vals = [v[spfl] for h, v in heads[k].items() if h[1] == layer]
            cells.append(f"{sum(vals) / len(vals):.3f}")
        print(f"| {layer} | " + " | ".join(cells) + " |")


def ci(r, col, scale=1.0, fmt="{:+.4f}"):
    lo, hi = r.get(col + "_lo", ""), r.get(col + "_hi", "")
    if lo == "" or hi == "":
        return ""
    return "[" + fmt.format(scale * float(lo)) + ", " + fmt.format(scale * float(hi)) + "]"


def pct(x):
    return f"{100 * float(x):.1f}%"


def main_table(rows, title):
    full = next(r for r in rows if r["method"] == "full")
    print(f"### {title}\n")
    print("| T | KV kept (mean) | saved (mean) | saved (end) | bits/byte | Δ vs full | 95% CI of Δ "
          "| greedy agreement | 95% CI | first divergence | profiling share |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in [full] + [r for r in rows if r["method"] == "fastgen"]:
        t = "full" if r["method"] == "full" else r["threshold"]
        print(f"| {t} | {pct(r['kv_mem_mean'])} | {pct(r['kv_saved_mean'])} | {pct(r['kv_saved_final'])} "
              f"| {float(r['bpb']):.4f} | {float(r['bpb_delta']):+.4f} | {ci(r, 'bpb_delta')} "
              f"| {pct(r['gen_agreement'])} | {ci(r, 'gen_agreement', 100, '{:.0f}%')} "
              f"| {float(r['gen_first_divergence']):.1f} | {100 * float(r['profile_share']):.3f}% |")
    print(f"\n({full['scored_bytes']} scored bytes, {full['gen_tokens']} greedy tokens compared)\n")


def ablation_table(rows, data, title):
    abl = [r for r in rows if r["group"] == "ablation" and r["data"] == data]
    if not abl:
        return
    print(f"\n### {title}\n")
    print("| variant | KV kept (mean) | saved (end) | bits/byte | Δ vs full | 95% CI of Δ "
          "| greedy agreement | heads per candidate |")
    print("|---|---|---|---|---|---|---|---|")
    base = [r for r in rows if r["config"] == "fastgen T=0.98" and r["data"] == data]
    full = [r for r in rows if r["method"] == "full" and r["data"] == data]
    for r in full[:1] + base + abl:
        name = ("full cache" if r["method"] == "full" else
                "FastGen (Eq. 2 ladder, defaults)" if r in base else r["method"])
        counts = "; ".join(f"{short(k)} {v}" for k, v in
                           (c.split(":") for c in r["policy_counts"].split(";")) if v != "0")
        print(f"| {name} | {pct(r['kv_mem_mean'])} | {pct(r['kv_saved_final'])} "
              f"| {float(r['bpb']):.4f} | {float(r['bpb_delta']):+.4f} | {ci(r, 'bpb_delta')} "
              f"| {pct(r['gen_agreement'])} | {counts} |")


def fixed_table(fixed, title):
    if not fixed:
        return
    print(f"\n### {title}\n")
    print("| config | KV kept (mean) | bits/byte | Δ vs full | 95% CI of Δ | greedy agreement "
          "| 95% CI | first divergence |")
    print("|---|---|---|---|---|---|---|---|")
    order = {m: i for i, m in enumerate(CURVES)}
    for r in sorted(fixed, key=lambda r: (order.get(r["method"], 99), float(r["kv_mem_mean"]))):
        print(f"| {r['config']} | {pct(r['kv_mem_mean'])} | {float(r['bpb']):.4f} "
              f"| {float(r['bpb_delta']):+.4f} | {ci(r, 'bpb_delta')} | {pct(r['gen_agreement'])} "
              f"| {ci(r, 'gen_agreement', 100, '{:.0f}%')} | {float(r['gen_first_divergence']):.1f} |")


def peers_table(rows, title):
    """FastGen and the field's policies, sorted by memory, one table."""
    peers = [r for r in rows if r["group"] == "peers" or r["method"] == "fastgen"]
    if not any(r["group"] == "peers" for r in peers):
        return
    print(f"\n### {title}\n")
    print("| config | KV kept (mean) | bits/byte | Δ vs full | 95% CI of Δ | greedy agreement "
          "| 95% CI | first divergence |")
    print("|---|---|---|---|---|---|---|---|")
    for r in sorted(peers, key=lambda r: float(r["kv_mem_mean"])):
        name = f"**{r['config']}**" if r["method"] == "fastgen" else r["config"]
        print(f"| {name} | {pct(r['kv_mem_mean'])} | {float(r['bpb']):.4f} "
              f"| {float(r['bpb_delta']):+.4f} | {ci(r, 'bpb_delta')} | {pct(r['gen_agreement'])} "
              f"| {ci(r, 'gen_agreement', 100, '{:.0f}%')} | {float(r['gen_first_divergence']):.1f} |")


def ablation_both(rows):
    """Tune split (what defaults are chosen on) next to held-out data (the check)."""
    by = {(r["data"], r["config"]): r for r in rows}
    names = ["full", "fastgen T=0.98"] + [r["config"] for r in rows
                                         if r["group"] == "ablation" and r["data"] == "tune"]
    if not any(("tune", n) in by for n in names[2:]):
        return
    print("\n### Ablations (T = 0.98): tune split (training files) and held-out data\n")
    print("| variant | tune: KV kept (mean) | tune: saved (end) | tune: Δ bits/byte [95% CI] "
          "| held-out: KV kept (mean) | held-out: saved (end) | held-out: Δ bits/byte [95% CI] "
          "| held-out: greedy agreement | held-out: heads per candidate |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in names:
        t, h = by.get(("tune", n)), by.get(("held-out", n))
        ref = t or h
        name = ("full cache" if ref["method"] == "full" else
                "FastGen (Eq. 2 ladder, defaults)" if n == "fastgen T=0.98" else ref["method"])
        cells = [name]
        for r in (t, h):
            if r is None:
                cells += ["—"] * 3
                continue
            cells += [pct(r["kv_mem_mean"]), pct(r["kv_saved_final"]),
                      f"{float(r['bpb_delta']):+.4f} {ci(r, 'bpb_delta')}"]
        if h is None:
            cells += ["—", "—"]
        else:
            counts = "; ".join(f"{short(k)} {v}" for k, v in
                               (c.split(":") for c in h["policy_counts"].split(";")) if v != "0")
            cells += [pct(h["gen_agreement"]), counts]
        print("| " + " | ".join(cells) + " |")


def tables(rows, retrieval, profile, samples, peers=()):
    held = [r for r in rows if r["data"] == "held-out" and r["group"] in ("main", "fixed")]
    if any(r["method"] == "fastgen" for r in held):
        main_table(held, "Main: FastGen T sweep (held-out)")
    if samples:
        main_table(samples, "Main on the larger sample (held-out)")
        fixed_table([r for r in samples if r["group"] == "fixed"], "Fixed policies, larger sample")
    fixed_table([r for r in held if r["group"] == "fixed"], "Fixed policies")
    peers_table([r for r in rows if r["data"] == "held-out" and r["group"] == "main"] + peers,
                "FastGen and the field's policies (held-out)")
    ablation_table(rows, "held-out", "Ablations (T = 0.98), held-out data")
    ablation_table(rows, "tune", "Ablations (T = 0.98), tune split (training files)")
    ablation_both(rows)
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
    ap.add_argument("--samples", nargs="+", default=[],
                    help="a larger-sample run of the main and/or fixed groups (several folders "
                         "are merged): tabled, and drawn into *_large.png")
    ap.add_argument("--peers", nargs="+", default=[],
                    help="runs of the peers group (several folders are merged): drawn with "
                         "FastGen's main rows into peers_*_vs_memory.png and tabled")
    ap.add_argument("--held-out", action="append", default=[], metavar="NAME",
                    help="a data column value to read as held-out (a --data-file run's file "
                         "name, e.g. heldout.jsonl); repeatable")
    ap.add_argument("--subject", default="held-out code",
                    help="what the held-out data is, for the figure titles")
    a = ap.parse_args()
    HELD_OUT_ALIASES.update(a.held_out)
    rows = unique_configs(read_csv(a.dirs, "results.csv"))
    stab = read_csv(a.dirs, "stability.csv")
    if not rows and not stab:
        sys.exit("no results.csv or stability.csv rows in " + ", ".join(a.dirs))
    os.makedirs(a.out, exist_ok=True)
    # The curves are the held-out measurements; the tune split only serves the ablations.
    main_rows = [r for r in rows if r["group"] in ("main", "fixed") and r["data"] == "held-out"]
    if main_rows:
        curve_plot(main_rows, "bpb_delta", "bits/byte increase over the full cache",
                   f"Teacher-forced quality vs KV memory ({a.subject})",
                   os.path.join(a.out, "quality_vs_memory.png"), ref_y=0.0, symlog=True)
        curve_plot(main_rows, "gen_agreement", "share of greedy tokens equal to full cache",
                   "Greedy generation agreement vs KV memory", os.path.join(a.out, "agreement_vs_memory.png"))
        curve_plot(main_rows, "retrieval_token_accuracy", "retrieval answer-token accuracy",
                   "Key/value retrieval vs KV memory", os.path.join(a.out, "retrieval_vs_memory.png"))
        # heads.csv has no data column: take it from the folders whose results are held-out
        held_dirs = [d for d in a.dirs
                     if all(r["data"] == "held-out" for r in read_csv([d], "results.csv"))]
        heads = read_csv(held_dirs, "heads.csv")
        head_plot(heads, os.path.join(a.out, "head_structure.png"))
    peers = unique_configs(read_csv(a.peers, "results.csv")) if a.peers else []
    if peers:
        fastgen = [r for r in rows if r["method"] == "fastgen" and r["data"] == "held-out"]
        curve_plot(fastgen + peers, "bpb_delta", "bits/byte increase over the full cache",
                   f"FastGen vs the field's policies ({a.subject})",
                   os.path.join(a.out, "peers_vs_memory.png"), ref_y=0.0, symlog=True,
                   curves=PEERS)
        curve_plot(fastgen + peers, "gen_agreement", "share of greedy tokens equal to full cache",
                   "FastGen vs the field's policies: greedy agreement",
                   os.path.join(a.out, "peers_agreement_vs_memory.png"), curves=PEERS)
    samples = unique_configs(read_csv(a.samples, "results.csv")) if a.samples else []
    if samples:
        n = samples[0]["scored_bytes"]
        curve_plot(samples, "bpb_delta", "bits/byte increase over the full cache",
                   f"Quality vs KV memory, larger sample ({n} bytes)",
                   os.path.join(a.out, "quality_vs_memory_large.png"), ref_y=0.0, symlog=True)
        curve_plot(samples, "gen_agreement", "share of greedy tokens equal to full cache",
                   "Greedy agreement vs KV memory, larger sample",
                   os.path.join(a.out, "agreement_vs_memory_large.png"))
    stability_plot(stab, os.path.join(a.out, "stability.png"))
    if a.tables:
        retrieval = list(OrderedDict(((r["config"], r["context_bytes"]), r)
                                     for r in reversed(read_csv(a.dirs, "retrieval.csv"))).values())[::-1]
        profile = list(OrderedDict(((p["config"], p["generated_tokens"]), p)
                                   for p in reversed(read_csv(a.dirs, "profile.csv"))).values())[::-1]
        if rows:
            tables(rows, retrieval, profile, samples, peers)
        if stab:
            stability_tables(stab)


if __name__ == "__main__":
    main()
