#!/usr/bin/env bash
# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
#
# tests/fuzz/run.sh [SECONDS_PER_TARGET]
# Configures build/fuzz with clang++-16 (libFuzzer + ASan + UBSan), builds the fuzz targets and
# runs each for SECONDS_PER_TARGET (default 60) on a scratch copy of its seed corpus, so the
# committed corpora stay small. Exits non-zero if any target crashes, leaks, times out or runs
# out of memory; the crashing input and the log are kept and their paths printed.
#   tests/fuzz/run.sh 30       # CI: 30 s per target
#   tests/fuzz/run.sh 14400    # four hours per target, locally
# Environment: CXX_FUZZ (default clang++-16), KVSIEVE_FUZZ_BUILD (default build/fuzz),
# KVSIEVE_FUZZ_WORK (a directory to keep the grown corpora in across runs; default a fresh
# temporary directory, removed when nothing crashed), KVSIEVE_FUZZ_TARGETS (default all five),
# KVSIEVE_FUZZ_ARGS (extra libFuzzer flags, e.g. "-jobs=4 -workers=4"), JOBS (build jobs, 2),
# FUZZ_PARALLEL (targets fuzzed at once, default JOBS).
set -euo pipefail

seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: $0 [SECONDS_PER_TARGET]" >&2
  exit 2
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${KVSIEVE_FUZZ_BUILD:-$root/build/fuzz}
cxx=${CXX_FUZZ:-clang++-16}
targets=${KVSIEVE_FUZZ_TARGETS:-safetensors index config tokenizer profile}

if ! command -v "$cxx" > /dev/null; then
  echo "$0: $cxx not found; install clang-16 and libclang-rt-16-dev, or set CXX_FUZZ" >&2
  exit 2
fi
mkdir -p "$(dirname "$build")"
cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DKVSIEVE_ENABLE_CUDA=OFF -DKVSIEVE_BUILD_TESTS=OFF -DKVSIEVE_BUILD_BENCHMARKS=OFF \
  -DKVSIEVE_BUILD_EXAMPLES=ON -DKVSIEVE_BUILD_FUZZERS=ON > "$build.configure.log" 2>&1 ||
  { cat "$build.configure.log" >&2; exit 2; }
# One build of every target, so the jobs run in parallel across targets (each is a few TUs).
fuzz_targets=()
for t in $targets; do
  fuzz_targets+=("fuzz_$t")
done
cmake --build "$build" -j"${JOBS:-2}" --target "${fuzz_targets[@]}"

keep=${KVSIEVE_FUZZ_WORK:+yes}
work=${KVSIEVE_FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/kvsieve-fuzz.XXXXXX")}
# One target per core at a time (FUZZ_PARALLEL, default JOBS or 2): each still gets its full
# SECONDS, so the depth is that of a serial run in a fraction of the wall time.
parallel=${FUZZ_PARALLEL:-${JOBS:-2}}
fuzz_one() {
  local t=$1 dir=$work/$1 rc
  # -timeout: a single input taking 30 s is a hang; -rss_limit_mb also bounds each malloc.
  # shellcheck disable=SC2086 # KVSIEVE_FUZZ_ARGS is a list of flags
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/" ${KVSIEVE_FUZZ_ARGS:-} \
    "$dir/corpus" > "$dir/log" 2>&1 && rc=0 || rc=$?
  echo "$rc" > "$dir/status"
}
running=0
for t in $targets; do
  dir=$work/$t
  mkdir -p "$dir/corpus" "$dir/artifacts"
  rm -f "$dir/status"
  cp -n "$root/tests/fuzz/corpus/$t/"* "$dir/corpus/" 2> /dev/null || true
  echo "fuzz_$t: ${seconds}s on $(ls "$dir/corpus" | wc -l) inputs ($dir)"
  fuzz_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

failed=()
for t in $targets; do
  dir=$work/$t
  if [ "$(cat "$dir/status" 2> /dev/null)" = 0 ]; then
    echo "fuzz_$t:" $(grep -E '^stat::number_of_executed_units|^Done' "$dir/log" | tr '\n' ' ')
  else
    failed+=("$t")
    echo "fuzz_$t: FAILED; log $dir/log, inputs:" $(ls "$dir/artifacts")
    grep -E -A40 '^==[0-9]+==ERROR|runtime error|deadly signal|fuzz: postcondition' \
      "$dir/log" | head -60
  fi
done

if [ ${#failed[@]} -eq 0 ]; then
  [ -n "$keep" ] || rm -rf "$work"
  echo "fuzz: $(echo $targets | wc -w) targets, ${seconds}s each: no crash"
  exit 0
fi
echo "fuzz: ${failed[*]} failed; reproduce with $build/tests/fuzz/fuzz_<target> <input>"
exit 1
