# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""Prefill and decode tokens/s of kvsieve-generate builds, with the machine idle and with one
core kept busy by another process (issue 9: decode must keep >= 0.5x its idle speed).

    python3 bench/decoder/speed.py --runs 7 NAME=PATH/kvsieve-generate [NAME=PATH ...] \\
        [--busy-cpu 1] [-- ARGS for kvsieve-generate]

Interpreter: any Python 3.9+ (standard library only). Each run is one process with --json; the
speeds are the program's own (prefill: prompt tokens / prefill time; decode: decode steps / time
after prefill). Runs of the builds are interleaved (A B A B ...), first idle, then with
`sh -c 'while :; do :; done'` pinned to --busy-cpu (taskset); the program itself is not pinned.
Prints the median and range of each, and decode busy / idle. Environment variables are passed
on (KVSIEVE_THREADS, OMP_NUM_THREADS). Default ARGS: --max-new-tokens 200.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def run_once(exe: str, args: list[str]) -> tuple[float, float]:
    out = subprocess.run([exe, *args, "--json"], check=True, capture_output=True, text=True).stdout
    j = json.loads(out)
    return j["prefill_tokens_per_s"], j["decode_tokens_per_s"]


def measure(builds: dict[str, str], args: list[str], runs: int) -> dict[str, list[tuple]]:
    res: dict[str, list[tuple]] = {name: [] for name in builds}
    for name, exe in builds.items():  # one warm-up each: page cache, first-touch
        run_once(exe, args)
    for _ in range(runs):
        for name, exe in builds.items():
            res[name].append(run_once(exe, args))
    return res


def summary(xs: list[float]) -> str:
    return f"{statistics.median(xs):8.1f} [{min(xs):.0f}-{max(xs):.0f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("builds", nargs="+", help="NAME=PATH of a kvsieve-generate")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--busy-cpu", type=int, default=1)
    ap.add_argument("--no-busy", action="store_true", help="idle runs only")
    argv = sys.argv[1:]
    extra = ["--max-new-tokens", "200"]
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    o = ap.parse_args(argv)
    builds = dict(b.split("=", 1) for b in o.builds)
    print(f"load average before: {os.getloadavg()}; args: {' '.join(extra)}; runs: {o.runs}")
    idle = measure(builds, extra, o.runs)
    busy = None
    if not o.no_busy:
        loop = subprocess.Popen(["taskset", "-c", str(o.busy_cpu), "sh", "-c", "while :; do :; done"])
        try:
            time.sleep(0.5)
            busy = measure(builds, extra, o.runs)
        finally:
            loop.kill()
            loop.wait()
    print(f"{'build':<12} {'state':<5} {'prefill tok/s median [range]':>30} "
          f"{'decode tok/s median [range]':>30}")
    for name in builds:
        for state, res in (("idle", idle), ("busy", busy)):
            if res is None:
                continue
            p = [r[0] for r in res[name]]
            d = [r[1] for r in res[name]]
            print(f"{name:<12} {state:<5} {summary(p):>30} {summary(d):>30}")
        if busy is not None:
            ratio = statistics.median(r[1] for r in busy[name]) / statistics.median(
                r[1] for r in idle[name])
            print(f"{name:<12} decode busy / idle = {ratio:.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
