#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""Markdown tables for docs/performance.md from the benchmarks' JSON output.

Usage: bench/tables.py RESULTS_DIR [--time cpu|real] [--stat median|min|mean]
RESULTS_DIR holds <program>.json written by --benchmark_out (run with
--benchmark_repetitions=N --benchmark_report_aggregates_only=true). The median of the
repetitions is used unless --stat says otherwise; the coefficient of variation (cv) is shown
where it says how much to trust a row.
"""
import argparse
import json
import pathlib
import re
import sys

UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


STAT = "median"


def load(results, program):
    """(the chosen statistic, cv) of every benchmark of `program`, by run name."""
    path = results / f"{program}.json"
    if not path.exists():
        return {}, {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:  # a run still writing, or one that was cut short
        print(f"skipping {path}: {e}", file=sys.stderr)
        return {}, {}
    chosen, cv = {}, {}
    for b in data["benchmarks"]:
        agg = b.get("aggregate_name")
        if agg == STAT:
            chosen[b["run_name"]] = b
        elif agg == "cv":
            cv[b["run_name"]] = b
    return chosen, cv


def seconds(b, kind):
    return b[f"{kind}_time"] * UNIT[b["time_unit"]]


def fmt_us(s):
    return f"{s * 1e6:,.1f}"


def fmt_ms(s):
    return f"{s * 1e3:,.1f}"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def args_of(name):
    return dict(re.findall(r"(\w+):(\d+)", name))


def decode_tables(results, kind):
    med, cv = load(results, "cache_decode_bench")
    if not med:
        return ""
    out = []
    for dtype, label in (("float", "float"), ("kvsieve::bfloat16", "bfloat16")):
        def get(family, context, keep=None):
            name = f"BM_decode_{family}<{dtype}>/context:{context}"
            if keep is not None:
                name += f"/keep_pct:{keep}"
            return med.get(name), cv.get(name)

        contexts = sorted({int(args_of(n)["context"]) for n in med if f"<{dtype}>" in n})
        rows, ratio_rows = [], []
        for c in contexts:
            full, full_cv = get("full", c)
            r100, _ = get("raw", c, 100)
            l40, _ = get("local", c, 40)
            r40, _ = get("raw", c, 40)
            l20, _ = get("local", c, 20)
            r20, _ = get("raw", c, 20)
            if not all((full, r100, l40, r40, l20, r20)):
                continue
            t = {k: seconds(v, kind) for k, v in
                 (("full", full), ("r100", r100), ("l40", l40), ("r40", r40), ("l20", l20),
                  ("r20", r20))}
            rows.append([
                c, fmt_us(t["full"]), f"{1 / t['full']:,.0f}",
                f"{full['bytes_per_iter'] / 1e6:.2f}", f"{100 * full_cv[f'{kind}_time']:.1f}%",
                fmt_us(t["r100"]),
                fmt_us(t["l40"]), f"{l40['kept_tokens']:.0f}", fmt_us(t["r40"]),
                fmt_us(t["l20"]), f"{l20['kept_tokens']:.0f}", fmt_us(t["r20"]),
            ])
            ratio_rows.append([
                c,
                f"{t['full'] / t['r100']:.2f}",
                f"{l40['keep_fraction']:.3f}", f"{t['l40'] / t['full']:.3f}",
                f"{t['l40'] / t['r40']:.2f}",
                f"{l20['keep_fraction']:.3f}", f"{t['l20'] / t['full']:.3f}",
                f"{t['l20'] / t['r20']:.2f}",
                f"{t['full'] / (full['kept_tokens'] * 2) * 1e9:.0f}",
                f"{t['l40'] / (l40['kept_tokens'] * 2) * 1e9:.0f}",
                f"{t['l20'] / (l20['kept_tokens'] * 2) * 1e9:.0f}",
            ])
        out.append(f"#### Decode step, {label} storage ({kind} time, {STAT})\n")
        out.append(table(
            ["context", "full us/step", "full tokens/s", "full MB read/step", "full cv",
             "raw(C) us", "local 40% us", "kept", "raw(0.4C) us", "local 20% us", "kept",
             "raw(0.2C) us"], rows))
        out.append("")
        out.append(f"#### Decode ratios, {label} storage\n")
        out.append(table(
            ["context", "full / raw(C)", "keep 40%", "time 40% / full", "local 40% / raw",
             "keep 20%", "time 20% / full", "local 20% / raw", "full ns/token read",
             "40% ns/token read", "20% ns/token read"], ratio_rows))
        out.append("")
    return "\n".join(out)


def attention_tables(results, kind):
    med, cv = load(results, "attention_decode_bench")
    if not med:
        return ""
    rows = []
    for dtype, label in (("float", "float"), ("kvsieve::bfloat16", "bf16")):
        for n in (128, 512, 2048, 8192, 16384):
            p16 = med.get(f"BM_attend_paged<{dtype}>/tokens:{n}/page_size:16")
            p64 = med.get(f"BM_attend_paged<{dtype}>/tokens:{n}/page_size:64")
            raw = med.get(f"BM_attend_raw<{dtype}>/tokens:{n}")
            if not all((p16, p64, raw)):
                continue
            t16, t64, tr = (seconds(b, kind) for b in (p16, p64, raw))
            rows.append([label, n, fmt_us(t16), fmt_us(t64), fmt_us(tr), f"{t16 / tr:.2f}",
                         f"{t64 / tr:.2f}", f"{raw['bytes_per_second'] / 1e9:.2f}"])
    return table(["storage", "tokens", "paged p16 us", "paged p64 us", "raw us", "p16 / raw",
                  "p64 / raw", "raw GB/s"], rows)


def stats_tables(results, kind):
    med, _ = load(results, "profile_attention_stats_bench")
    if not med:
        return ""
    rows = []
    for d in (64, 128):
        for length in (256, 512, 1024, 2048):
            s = med.get(f"BM_prefill_group_stats/length:{length}/head_dim:{d}")
            p = med.get(f"BM_prefill_group_plain/length:{length}/head_dim:{d}")
            if not (s and p):
                continue
            ts, tp = seconds(s, kind), seconds(p, kind)
            rows.append([length, d, fmt_ms(tp), fmt_ms(ts), f"{100 * (ts / tp - 1):+.1f}%"])
    first = table(["length", "head_dim", "plain ms", "with head_stats ms", "overhead"], rows)
    rows = []
    for length in (256, 1024, 4096, 16384):
        m = med.get(f"BM_measure_candidates/length:{length}")
        if m:
            rows.append([length, fmt_us(seconds(m, kind)),
                         f"{m['items_per_second'] / 1e6:.1f}", int(m["choice"])])
    second = table(["length", "us per KV head", "M tokens/s", "choice"], rows)
    return first + "\n\n" + second


def prefill_tables(results, kind):
    med, _ = load(results, "cache_prefill_bench")
    if not med:
        return ""
    rows = []
    for length in (256, 512, 1024, 2048):
        raw = med.get(f"BM_prefill_raw/length:{length}/static_head_dim:0")
        raw_s = med.get(f"BM_prefill_raw/length:{length}/static_head_dim:1")
        full = med.get(f"BM_prefill_full/length:{length}")
        f0 = med.get(f"BM_prefill_fastgen/length:{length}/pattern:0")
        f1 = med.get(f"BM_prefill_fastgen/length:{length}/pattern:1")
        if not all((raw, raw_s, full, f0, f1)):
            continue
        tr, ts, tf, t0, t1 = (seconds(b, kind) for b in (raw, raw_s, full, f0, f1))
        rows.append([length, fmt_ms(tr), fmt_ms(ts), fmt_ms(tf), fmt_ms(t0), fmt_ms(t1),
                     f"{length / t0:,.0f}", f"{tf / tr:.3f}", f"{t0 / tr:.3f}",
                     f"{t1 / tr:.3f}", f"{f1['keep_fraction']:.2f}",
                     f"{100 * f0['profile_share']:.2f}%", f"{100 * f1['profile_share']:.2f}%"])
    return table(["length", "raw ms", "raw, static head_dim ms", "full ms", "FastGen p0 ms",
                  "FastGen p1 ms", "FastGen p0 tokens/s", "full / raw", "p0 / raw", "p1 / raw",
                  "p1 keep", "p0 profile share", "p1 profile share"], rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=pathlib.Path)
    ap.add_argument("--time", choices=("cpu", "real"), default="cpu")
    ap.add_argument("--stat", choices=("median", "min", "mean"), default="median",
                    help="repetition statistic (min needs ComputeStatistics(\"min\"))")
    a = ap.parse_args()
    global STAT
    STAT = a.stat
    for title, fn in (("Decode step (cache)", decode_tables),
                      ("Decode attention kernel", attention_tables),
                      ("Profiling statistics", stats_tables),
                      ("Prefill", prefill_tables)):
        body = fn(a.results, a.time)
        if body:
            print(f"### {title}\n\n{body}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
