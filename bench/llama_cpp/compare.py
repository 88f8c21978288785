# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""kvsieve-generate side by side with llama.cpp on the bundled model: same prompt token ids, same
thread count, greedy; prefill and decode tokens/s (medians) and the first 32 generated ids.

    bench/llama_cpp/build_llama_cpp.sh          # once: llama.cpp from PyPI's llama-cpp-python
    /work/venv/bin/python bench/llama_cpp/compare.py --kvsieve build/default/examples/llama/kvsieve-generate

Interpreter: Python 3.9+ with `gguf`, `numpy`, `safetensors` (for to_gguf.py; /work/venv/bin/python
has them). Workloads (prompt: the first bytes of bench/llama_cpp/prompt.txt, BOS first, one token
per byte as models/tiny-llama/README.md says):
  short  100-token prompt, 200 new tokens
  long   900-token prompt, 120 new tokens (the context of 1024 ends at 1020)
Engines: kvsieve-generate --policy full, kvsieve-generate --policy fastgen (defaults), and
llama.cpp (llama_cpp_run.cpp: F32 weights, whole prompt in one batch) in two configurations:
F32 K/V cache without flash attention, every step in F32 as kvsieve's CPU decoder (the
reference of the ratios; with flash attention llama.cpp converts an F32 cache to F16 on every
step), and its defaults, F16 K/V with flash attention (auto).
Runs are interleaved (one of each engine in turn) after one warm-up of each. Threads:
kvsieve-generate --threads, llama.cpp n_threads and n_threads_batch.
Speeds are each program's own, with kvsieve-generate's definitions (see llama_cpp_run.cpp).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WORKLOADS = {"short": (100, 200), "long": (900, 120)}


def kvsieve_run(exe: str, prompt_file: str, n_gen: int, threads: int, policy: str) -> dict:
    out = subprocess.run([exe, "--prompt-file", prompt_file, "--temperature", "0", "--policy",
                          policy, "--max-new-tokens", str(n_gen), "--threads", str(threads),
                          "--json"], check=True, capture_output=True, text=True).stdout
    j = json.loads(out)
    text = j["generated_text"]
    # Byte-level vocabulary: the generated ids are the text's bytes (exact for ASCII output).
    j["generated_ids"] = list(text.encode("utf-8")) if text.isascii() else None
    return j


def llama_run(exe: str, model: str, ids: list[int], n_gen: int, threads: int, kv: str,
              fa: str) -> dict:
    out = subprocess.run([exe, "--model", model, "--ids", " ".join(map(str, ids)), "--n-gen",
                          str(n_gen), "--threads", str(threads), "--kv", kv, "--fa", fa],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--kvsieve", required=True, help="path of kvsieve-generate")
    ap.add_argument("--llama-dir", default=os.environ.get(
        "KVSIEVE_LLAMACPP_DIR", str(Path.home() / ".cache" / "kvsieve-llamacpp")))
    ap.add_argument("--model", default=str(ROOT / "models" / "tiny-llama"))
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workloads", default="short,long")
    ap.add_argument("--llama", default="f32:off,f16:auto",
                    help="llama.cpp configurations KV:FA, comma-separated (K/V cache f32|f16, "
                         "flash attention on|off|auto); the first is the reference of the "
                         "ratios. Default: f32:off (every step in F32, as kvsieve) and "
                         "f16:auto (llama.cpp's defaults)")
    o = ap.parse_args()

    llama_exe = Path(o.llama_dir) / "build" / "bin" / "llama_cpp_run"
    if not llama_exe.exists():
        sys.exit(f"compare.py: {llama_exe} missing: run bench/llama_cpp/build_llama_cpp.sh")
    gguf_path = Path(o.llama_dir) / "tiny-llama-f32.gguf"
    subprocess.run([sys.executable, str(HERE / "to_gguf.py"), o.model, str(gguf_path)], check=True,
                   stdout=subprocess.DEVNULL)
    prompt = (HERE / "prompt.txt").read_bytes()
    bos = json.loads((Path(o.model) / "config.json").read_text())["bos_token_id"]
    print(f"load average before: {os.getloadavg()}; runs: {o.runs}")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for wl in o.workloads.split(","):
            n_prompt, n_gen = WORKLOADS[wl]
            text = prompt[:n_prompt - 1]
            prompt_file = Path(tmp) / f"{wl}.txt"
            prompt_file.write_bytes(text)
            ids = [bos, *text]
            for threads in map(int, o.threads.split(",")):
                engines = {
                    "kvsieve full": lambda: kvsieve_run(o.kvsieve, str(prompt_file), n_gen,
                                                        threads, "full"),
                    "kvsieve fastgen": lambda: kvsieve_run(o.kvsieve, str(prompt_file), n_gen,
                                                           threads, "fastgen"),
                }
                for cfg in o.llama.split(","):
                    kv, fa = cfg.split(":")
                    engines[f"llama.cpp {kv} K/V, FA {fa}"] = (
                        lambda kv=kv, fa=fa: llama_run(str(llama_exe), str(gguf_path), ids,
                                                       n_gen, threads, kv, fa))
                res = {name: [] for name in engines}
                for name, fn in engines.items():
                    fn()  # warm-up
                for _ in range(o.runs):
                    for name, fn in engines.items():
                        res[name].append(fn())
                for name, rs in res.items():
                    assert rs[0]["prompt_tokens"] == n_prompt, (name, rs[0]["prompt_tokens"])
                    rows.append({
                        "workload": wl, "threads": threads, "engine": name,
                        "prefill": statistics.median(r["prefill_tokens_per_s"] for r in rs),
                        "decode": statistics.median(r["decode_tokens_per_s"] for r in rs),
                        "decode_min": min(r["decode_tokens_per_s"] for r in rs),
                        "decode_max": max(r["decode_tokens_per_s"] for r in rs),
                        "kept": rs[0].get("kv_saved_fraction"),
                        "ids": (rs[0]["generated_ids"] or [])[:32],
                    })

    print(f"load average after: {os.getloadavg()}\n")
    print("| workload | threads | engine | prefill tok/s | decode tok/s [range] | "
          "decode vs llama.cpp | KV saved | first 32 ids = llama.cpp's |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    kv0, fa0 = o.llama.split(",")[0].split(":")
    ref_engine = f"llama.cpp {kv0} K/V, FA {fa0}"
    for r in rows:
        ref = next(x for x in rows if x["workload"] == r["workload"] and
                   x["threads"] == r["threads"] and x["engine"] == ref_engine)
        same = sum(a == b for a, b in zip(r["ids"], ref["ids"]))
        agree = "yes" if r["ids"] == ref["ids"] and len(r["ids"]) == 32 else \
            f"no: {same}/32 positions equal" if r["ids"] else "not comparable (non-ASCII)"
        kept = "" if r["kept"] is None else f"{100 * r['kept']:.1f}%"
        print(f"| {r['workload']} | {r['threads']} | {r['engine']} | {r['prefill']:.0f} | "
              f"{r['decode']:.0f} [{r['decode_min']:.0f}-{r['decode_max']:.0f}] | "
              f"{r['decode'] / ref['decode']:.2f}x | {kept} | "
              f"{'-' if r is ref else agree} |")
    print()
    for r in rows:
        print(f"{r['workload']} t={r['threads']} {r['engine']}: {r['ids']}")


if __name__ == "__main__":
    main()
