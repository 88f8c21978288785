#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""Issue 9/11's CUDA performance targets, judged from Google Benchmark JSON.

Reads the JSON that bench/cuda's programs write (--benchmark_out_format=json) and prints one
line per target: PASS, FAIL or NOT MEASURED, with the measured ratio and the runs it came from.
Standard library only; any Python 3.8 or newer.

    tools/gpu_check_targets.py RESULTS_DIR_OR_JSON... [--strict]
    tools/gpu_check_targets.py --self-test [FIXTURE_DIR]

Exit status: 0 (targets are reported, not enforced); with --strict, 1 unless every target
PASSes; 2 for bad input (no readable JSON at all). --self-test checks the verdicts on the
fixtures in tests/tools/gpu_check/ (each NAME.json beside NAME.expected) and on built-in cases.

Targets (H200, bf16, head_dim 128; the benches' shapes are described in their sources):
  decode_bandwidth     BM_decode_attention, kept_pct 100, skew 0, kv_mb >= 256:
                       pct_of_copy_bw >= 80 (worst run)
  decode_kept_40       time(kept_pct 40) / time(kept_pct 100), skew 0, at every context whose
                       full cache holds >= 256 MB of KV: <= 0.45 (worst context)
  decode_head_skew     time(skew 1) / time(skew 0) - 1 at those contexts, every kept_pct: <= 0.10
  step_bookkeeping     BM_decode_step's step_over_attention counter: <= 0.05
  compaction_vs_cub    time(BM_cub_select_flagged) / time(BM_compaction), every keep_pct: >= 0.9
  compaction_bandwidth BM_compaction's pct_of_copy_bw, every keep_pct: >= 75
  prefill_stats        BM_prefill stats:1's stats_over_plain counter (else the time ratio of
                       stats:1 over stats:0), every length: <= 1.15
Also printed, as a figure: BM_decode_attention_tile_chunks over BM_decode_attention per shape
(what the balanced split-KV plan gains over a chunk per 256-token tile).
Times are the median over repetitions when the JSON has aggregates, else the median of the
iteration entries; runs that reported an error are left out (and named).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

KV_MB_MIN = 256.0  # "decode attention on >= 256 MB of KV"


# --- reading -----------------------------------------------------------------------------------

def parse_args_of(name: str) -> tuple[str, dict[str, int]]:
    """'BM_x/context:4096/kept_pct:40/manual_time' -> ('BM_x', {'context': 4096, ...})."""
    parts = name.split("/")
    args: dict[str, int] = {}
    for p in parts[1:]:
        m = re.fullmatch(r"([A-Za-z_]\w*):(-?\d+)", p)
        if m:
            args[m.group(1)] = int(m.group(2))
    return parts[0], args


class Runs:
    """Every benchmark run of one or more JSON files, keyed by run name."""

    def __init__(self) -> None:
        self.context: dict[str, str] = {}
        self.rows: dict[str, dict] = {}  # run_name -> {"time": s, "counters": {...}}
        self.errors: dict[str, str] = {}
        self.files: list[str] = []

    def add_file(self, path: Path) -> None:
        data = json.loads(path.read_text())
        self.files.append(str(path))
        self.context.update({k: str(v) for k, v in data.get("context", {}).items()})
        iterations: dict[str, list[dict]] = {}
        medians: dict[str, dict] = {}
        for b in data.get("benchmarks", []):
            run = b.get("run_name") or re.sub(r"_(mean|median|stddev|cv)$", "", b["name"])
            if b.get("error_occurred"):
                self.errors[run] = b.get("error_message", "error")
                continue
            if b.get("run_type") == "aggregate":
                if b.get("aggregate_name") == "median":
                    medians[run] = b
            else:
                iterations.setdefault(run, []).append(b)
        for run in set(iterations) | set(medians):
            if run in medians:
                entries = [medians[run]]
            else:
                entries = iterations[run]
            self.rows[run] = {
                "time": statistics.median(seconds(e) for e in entries),
                "counters": median_counters(entries),
            }
            self.errors.pop(run, None)

    def find(self, bench: str, **want: int) -> list[tuple[str, dict[str, int], dict]]:
        out = []
        for run, row in sorted(self.rows.items()):
            base, args = parse_args_of(run)
            if base == bench and all(args.get(k) == v for k, v in want.items()):
                out.append((run, args, row))
        return out

    def errors_of(self, bench: str) -> list[str]:
        return [f"{run}: {msg}" for run, msg in sorted(self.errors.items())
                if parse_args_of(run)[0] == bench]


_UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
_NOT_COUNTERS = {"name", "run_name", "run_type", "repetitions", "repetition_index", "threads",
                 "iterations", "real_time", "cpu_time", "time_unit", "family_index",
                 "per_family_instance_index", "aggregate_name", "aggregate_unit", "label",
                 "error_occurred", "error_message"}


def seconds(entry: dict) -> float:
    return float(entry["real_time"]) * _UNIT[entry.get("time_unit", "ns")]


def median_counters(entries: list[dict]) -> dict[str, float]:
    keys = {k for e in entries for k, v in e.items()
            if k not in _NOT_COUNTERS and isinstance(v, (int, float))}
    return {k: statistics.median(float(e[k]) for e in entries if k in e) for k in keys}


# --- judging -----------------------------------------------------------------------------------

class Verdict:
    def __init__(self, target: str, status: str, text: str, detail: str = "") -> None:
        self.target, self.status, self.text, self.detail = target, status, text, detail

    def line(self) -> str:
        s = f"{self.status:<12} {self.target:<21} {self.text}"
        return s + (f"\n{'':<13} {self.detail}" if self.detail else "")


def not_measured(target: str, why: str) -> Verdict:
    return Verdict(target, "NOT MEASURED", why)


def missing(target: str, runs: Runs, bench: str, what: str) -> Verdict:
    errs = runs.errors_of(bench)
    why = f"no {what} in the JSON"
    if errs:
        why += "; errors: " + "; ".join(errs[:3])
    return not_measured(target, why)


def judge_worst(target: str, values: list[tuple[str, float]], limit: float, higher_is_better: bool,
                fmt: str, goal: str) -> Verdict:
    worst = (min if higher_is_better else max)(values, key=lambda rv: rv[1])
    ok = worst[1] >= limit if higher_is_better else worst[1] <= limit
    detail = ", ".join(f"{short(r).split('/', 1)[-1]}: {fmt.format(v).split(' ')[0]}"
                       for r, v in values)
    return Verdict(target, "PASS" if ok else "FAIL",
                   f"{fmt.format(worst[1])} ({goal}; worst of {len(values)}: {short(worst[0])})",
                   detail)


def short(run: str) -> str:
    return run.replace("/manual_time", "").replace("/real_time", "")


def big_contexts(runs: Runs) -> dict[int, float]:
    """Contexts whose full cache (kept_pct 100, skew 0) holds >= 256 MB of KV -> its time."""
    out = {}
    for _, args, row in runs.find("BM_decode_attention", kept_pct=100, skew=0):
        if row["counters"].get("kv_mb", 0.0) >= KV_MB_MIN:
            out[args["context"]] = row["time"]
    return out


def decode_bandwidth(runs: Runs) -> Verdict:
    t = "decode_bandwidth"
    rows = [(r, row["counters"]["pct_of_copy_bw"])
            for r, _, row in runs.find("BM_decode_attention", kept_pct=100, skew=0)
            if row["counters"].get("kv_mb", 0.0) >= KV_MB_MIN and "pct_of_copy_bw" in row["counters"]]
    if not rows:
        return missing(t, runs, "BM_decode_attention",
                       f"BM_decode_attention run with kept_pct 100, skew 0 and kv_mb >= {KV_MB_MIN:g}")
    return judge_worst(t, rows, 80.0, True, "{:.1f}% of copy bandwidth", ">= 80%")


def decode_kept_40(runs: Runs) -> Verdict:
    t = "decode_kept_40"
    full = big_contexts(runs)
    rows = []
    for c, full_time in sorted(full.items()):
        for r, _, row in runs.find("BM_decode_attention", context=c, kept_pct=40, skew=0):
            rows.append((r, row["time"] / full_time))
    if not rows:
        return missing(t, runs, "BM_decode_attention",
                       "kept_pct 40 / kept_pct 100 pair (skew 0) at a context of >= 256 MB")
    return judge_worst(t, rows, 0.45, False, "{:.3f}x the full-cache time", "<= 0.45x")


def decode_head_skew(runs: Runs) -> Verdict:
    t = "decode_head_skew"
    rows = []
    for c in sorted(big_contexts(runs)):
        for r0, args, row0 in runs.find("BM_decode_attention", context=c, skew=0):
            for r1, _, row1 in runs.find("BM_decode_attention", context=c,
                                         kept_pct=args["kept_pct"], skew=1):
                rows.append((r1, row1["time"] / row0["time"] - 1.0))
    if not rows:
        return missing(t, runs, "BM_decode_attention",
                       "skew 1 / skew 0 pair at a context of >= 256 MB")
    return judge_worst(t, rows, 0.10, False, "{:+.1%} over equal heads", "<= +10%")


def step_bookkeeping(runs: Runs) -> Verdict:
    t = "step_bookkeeping"
    rows = [(r, row["counters"]["step_over_attention"])
            for r, _, row in runs.find("BM_decode_step")
            if "step_over_attention" in row["counters"]]
    if not rows:
        return missing(t, runs, "BM_decode_step", "BM_decode_step run with step_over_attention")
    return judge_worst(t, rows, 0.05, False, "{:.1%} of attention", "<= 5%")


def compaction_vs_cub(runs: Runs) -> Verdict:
    t = "compaction_vs_cub"
    rows = []
    for r, args, row in runs.find("BM_compaction"):
        for _, _, cub in runs.find("BM_cub_select_flagged", keep_pct=args["keep_pct"]):
            rows.append((r, cub["time"] / row["time"]))
    if not rows:
        return missing(t, runs, "BM_compaction",
                       "BM_compaction / BM_cub_select_flagged pair with the same keep_pct")
    return judge_worst(t, rows, 0.9, True, "{:.2f}x CUB's speed", ">= 0.9x")


def compaction_bandwidth(runs: Runs) -> Verdict:
    t = "compaction_bandwidth"
    rows = [(r, row["counters"]["pct_of_copy_bw"]) for r, _, row in runs.find("BM_compaction")
            if "pct_of_copy_bw" in row["counters"]]
    if not rows:
        return missing(t, runs, "BM_compaction", "BM_compaction run with pct_of_copy_bw")
    return judge_worst(t, rows, 75.0, True, "{:.1f}% of copy bandwidth", ">= 75%")


def prefill_stats(runs: Runs) -> Verdict:
    t = "prefill_stats"
    rows = []
    for r, args, row in runs.find("BM_prefill", stats=1):
        if "stats_over_plain" in row["counters"]:
            rows.append((r, row["counters"]["stats_over_plain"]))
            continue
        for _, _, plain in runs.find("BM_prefill", length=args["length"], stats=0):
            rows.append((r, row["time"] / plain["time"]))
    if not rows:
        return missing(t, runs, "BM_prefill", "BM_prefill stats:1 run (with stats:0 or "
                       "stats_over_plain)")
    return judge_worst(t, rows, 1.15, False, "{:.3f}x plain prefill", "<= 1.15x")


TARGETS = [decode_bandwidth, decode_kept_40, decode_head_skew, step_bookkeeping,
           compaction_vs_cub, compaction_bandwidth, prefill_stats]


def decode_plan_gain(runs: Runs) -> list[tuple[str, float]]:
    """Figures, not a target: time(a chunk per 256-token tile) / time(the balanced plan) for
    each decode shape benched both ways (> 1: the plan is faster)."""
    out = []
    for r, args, row in runs.find("BM_decode_attention_tile_chunks"):
        for _, _, planned in runs.find("BM_decode_attention", **args):
            out.append((short(r).split("/", 1)[-1], row["time"] / planned["time"]))
    return out


def judge(runs: Runs) -> list[Verdict]:
    return [f(runs) for f in TARGETS]


def load(paths: list[str]) -> tuple[Runs, list[str]]:
    runs, problems = Runs(), []
    files: list[Path] = []
    for p in map(Path, paths):
        files += sorted(p.glob("*.json")) if p.is_dir() else [p]
    for f in files:
        try:
            runs.add_file(f)
        except (OSError, ValueError, KeyError) as e:
            problems.append(f"{f}: {e}")
    return runs, problems


def report(paths: list[str], strict: bool, out=sys.stdout) -> int:
    runs, problems = load(paths)
    for p in problems:
        print(f"gpu_check_targets: cannot read {p}", file=out)
    if not runs.files:
        print("gpu_check_targets: no benchmark JSON read from " + " ".join(paths), file=out)
    gpu = runs.context.get("gpu", "unknown GPU")
    print(f"performance targets ({gpu}, copy bandwidth {runs.context.get('copy_bw_gbps', '?')} "
          f"GB/s; from {len(runs.files)} JSON file(s)):", file=out)
    if runs.files and "H200" not in gpu:
        print("  note: the targets are stated for an H200; this is another device", file=out)
    verdicts = judge(runs)
    for v in verdicts:
        print(v.line(), file=out)
    gains = decode_plan_gain(runs)
    if gains:
        print("figures (not targets): decode time with a chunk per tile over the balanced plan: "
              + ", ".join(f"{name} {g:.2f}x" for name, g in gains), file=out)
    counts = {s: sum(v.status == s for v in verdicts) for s in ("PASS", "FAIL", "NOT MEASURED")}
    print(f"targets: {counts['PASS']} PASS, {counts['FAIL']} FAIL, "
          f"{counts['NOT MEASURED']} NOT MEASURED", file=out)
    if not runs.files:
        return 2
    if strict and counts["PASS"] != len(verdicts):
        return 1
    return 0


# --- self-test ---------------------------------------------------------------------------------

def _bench(name: str, t_us: float, **counters: float) -> dict:
    return dict(name=name + "/manual_time", run_name=name + "/manual_time", run_type="iteration",
                iterations=10, real_time=t_us, cpu_time=1.0, time_unit="us", **counters)


def self_test(fixture_dir: Path) -> int:
    failures = []

    def check(label: str, got, want) -> None:
        if got != want:
            failures.append(f"{label}: got {got!r}, want {want!r}")

    # 1. fixtures: NAME.json judged, verdicts compared with NAME.expected ("target STATUS" lines).
    fixtures = sorted(fixture_dir.glob("*.json"))
    if not fixtures:
        failures.append(f"no fixtures in {fixture_dir}")
    for f in fixtures:
        runs, problems = load([str(f)])
        check(f"{f.name} readable", problems, [])
        got = {v.target: v.status for v in judge(runs)}
        want = {}
        for line in f.with_suffix(".expected").read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                target, status = line.split(None, 1)
                want[target] = status.strip()
        check(f"{f.name} verdicts", got, want)

    # 2. built-in cases: aggregates preferred over iterations, errors reported, nothing measured.
    with tempfile.TemporaryDirectory() as d:
        agg = [
            dict(_bench("BM_decode_step/context:4096", 100.0, step_over_attention=0.5),
                 run_type="aggregate", aggregate_name="mean"),
            dict(_bench("BM_decode_step/context:4096", 100.0, step_over_attention=0.04),
                 run_type="aggregate", aggregate_name="median"),
            dict(_bench("BM_compaction/keep_pct:40", 0.0), error_occurred=True,
                 error_message="cudaMalloc failed"),
        ]
        Path(d, "a.json").write_text(json.dumps({"context": {"gpu": "NVIDIA H200"},
                                                 "benchmarks": agg}))
        runs, _ = load([d])
        v = {x.target: x for x in judge(runs)}
        check("median aggregate used", v["step_bookkeeping"].status, "PASS")
        check("error leaves compaction unmeasured", v["compaction_bandwidth"].status,
              "NOT MEASURED")
        check("error message shown", "cudaMalloc failed" in v["compaction_bandwidth"].text, True)
        check("nothing else measured", v["prefill_stats"].status, "NOT MEASURED")
        # Short contexts only (< 256 MB of KV): the decode targets are NOT MEASURED, not passed.
        small = [_bench("BM_decode_attention/context:4096/kept_pct:100/skew:0", 50.0,
                        pct_of_copy_bw=90.0, kv_mb=67.1),
                 _bench("BM_decode_attention/context:4096/kept_pct:40/skew:0", 20.0,
                        pct_of_copy_bw=90.0, kv_mb=26.8)]
        Path(d, "a.json").write_text(json.dumps({"benchmarks": small}))
        runs, _ = load([d])
        v = {x.target: x for x in judge(runs)}
        check("small KV: bandwidth unmeasured", v["decode_bandwidth"].status, "NOT MEASURED")
        check("small KV: kept 40 unmeasured", v["decode_kept_40"].status, "NOT MEASURED")
        # The plan's gain pairs each tile-chunk run with the planned run of the same shape.
        tiles = [_bench("BM_decode_attention_tile_chunks/context:4096/kept_pct:40/skew:0", 30.0)]
        Path(d, "b.json").write_text(json.dumps({"benchmarks": tiles}))
        runs, _ = load([d])
        check("plan gain", decode_plan_gain(runs), [("context:4096/kept_pct:40/skew:0", 1.5)])
        Path(d, "b.json").unlink()
        # Exit codes: no JSON is 2; --strict with a FAIL or NOT MEASURED is 1.
        with open(os.devnull, "w") as null:
            check("no JSON exit", report([str(Path(d, "missing"))], False, null), 2)
            check("strict exit", report([d], True, null), 1)
            check("plain exit", report([d], False, null), 0)

    for f in failures:
        print("self-test FAILED: " + f)
    print(f"gpu_check_targets self-test: {len(fixtures)} fixture(s), "
          f"{'OK' if not failures else str(len(failures)) + ' failure(s)'}")
    return 1 if failures else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*", help="benchmark JSON files or folders holding them")
    ap.add_argument("--strict", action="store_true", help="exit 1 unless every target PASSes")
    ap.add_argument("--self-test", nargs="?", const="", metavar="FIXTURE_DIR",
                    help="check the verdicts on fixtures (default tests/tools/gpu_check)")
    a = ap.parse_args()
    if a.self_test is not None:
        default = Path(__file__).resolve().parent.parent / "tests" / "tools" / "gpu_check"
        return self_test(Path(a.self_test) if a.self_test else default)
    if not a.paths:
        ap.error("give benchmark JSON files or folders")
    return report(a.paths, a.strict)


if __name__ == "__main__":
    sys.exit(main())
