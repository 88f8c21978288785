#!/usr/bin/env bash
# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
#
# Verifies a CUDA build of kvsieve on a GPU machine in under 10 minutes (issue 11, item 7), from a
# build made on ANOTHER machine: it never runs cmake or nvcc. Run from the repository root:
#
#   tools/gpu_check.sh [--quick] [--strict] [--budget S] [--out DIR] [--link-source]
#                      [--no-sanitizers] [BUILD_DIR]
#
# BUILD_DIR (default build/cuda) is a CMake build folder of the `cuda` preset, or the folder or
# .tar.xz archive that tools/gpu_check_pack.sh made from one (the binaries plus the shared
# libraries that the GPU machine may lack, small enough to carry). In order, within a time budget (default 540 s):
#   1. the device and driver (nvidia-smi if present) and a probe through a [cuda] test binary
#      with KVSIEVE_REQUIRE_GPU=1: no usable GPU fails here;
#   2. every [cuda] test binary, [long] cases excluded, each under a timeout;
#   3. both CUDA bench programs with short repetitions, Google Benchmark JSON into the output
#      folder, and tools/gpu_check_targets.py's PASS/FAIL/NOT MEASURED line per target;
#   4. compute-sanitizer memcheck and racecheck on the test binaries ([long] and [slow] cases
#      excluded, and [api_error] ones, which make a CUDA call fail on purpose), where
#      /usr/local/cuda/bin/compute-sanitizer (or one on PATH) is installed;
#   5. the [long] cases, if the budget still allows (never with --quick).
# Output folder: --out, else $OUT if set, else gpu-check-results/; it gets gpu_check.log (all
# output), summary.txt and one JSON per bench program (at most 4 files).
# Exit status: 0 only if the GPU was usable and every test, sanitizer run and bench program
# succeeded; the performance targets count too only with --strict. 2 for bad usage or a build
# that cannot run here (missing files or libraries, source-path mismatch).
#
# The binaries hold absolute paths of the source tree they were built from (test data such as
# tests/llama/data and models/ are compiled in). They resolve when this checkout lies at the same
# path as the one that built them; otherwise the script stops and says so, and --link-source
# makes that path a symbolic link to this checkout (needs the right to create it: root on the
# device machine) and removes it again at the end.
set -euo pipefail

usage() { echo "usage:"; sed -n '8,9p' "$0" | sed 's/^# \{0,1\}//'; }

quick=0
strict=0
budget=540
out_dir=""
link_source=0
sanitizers=1
build_dir=""
while (($#)); do
  case "$1" in
  --quick) quick=1 ;;
  --strict) strict=1 ;;
  --budget) budget="${2:?--budget needs seconds}"; shift ;;
  --out) out_dir="${2:?--out needs a folder}"; shift ;;
  --link-source) link_source=1 ;;
  --no-sanitizers) sanitizers=0 ;;
  -h | --help) usage; exit 0 ;;
  -*) echo "gpu_check: unknown option $1" >&2; usage >&2; exit 2 ;;
  *) build_dir="$1" ;;
  esac
  shift
done
build_dir="${build_dir:-build/cuda}"
out_dir="${out_dir:-${OUT:-gpu-check-results}}"
if [[ ! "$budget" =~ ^[0-9]+$ ]]; then
  echo "gpu_check: --budget takes whole seconds, not '$budget'" >&2
  exit 2
fi

tmp="$(mktemp -d)"
made_link=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  rm -rf "$tmp"
  if [[ -n "$made_link" ]]; then
    rm -f "$made_link"
  fi
}
trap cleanup EXIT

# A pack archive (gpu_check_pack.sh's PACK_DIR.tar.xz): unpacked into a temporary folder.
if [[ -f "$build_dir" && "$build_dir" == *.tar* ]]; then
  mkdir -p "$tmp/pack"
  tar -C "$tmp/pack" -xf "$build_dir"
  unpacked="$(find "$tmp/pack" -mindepth 1 -maxdepth 1 -type d | head -n 1)"
  echo "gpu_check: unpacked $build_dir into $unpacked"
  build_dir="$unpacked"
fi
if [[ ! -d "$build_dir" ]]; then
  echo "gpu_check: no build folder '$build_dir' (build it with 'cmake --preset cuda && cmake" \
    "--build --preset cuda --target cuda_tests cuda_benches', or pack one with" \
    "tools/gpu_check_pack.sh, and carry it here)" >&2
  exit 2
fi
build_dir="$(cd "$build_dir" && pwd)"
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
log="$out_dir/gpu_check.log"
: >"$log"
start=$SECONDS
failures=()
notes=()
say() { echo "$*" | tee -a "$log"; }
left() { echo $((budget - (SECONDS - start))); }
# run_logged TIMEOUT LABEL CMD...: runs CMD under a timeout, its output to the log (the last 40
# lines also to stdout when it fails); sets $rc and prints one status line.
run_logged() {
  local limit="$1" label="$2" t0=$SECONDS
  shift 2
  {
    echo
    echo "::: $label (timeout ${limit} s): $*"
  } >>"$log"
  rc=0
  timeout --kill-after=10 "$limit" "$@" >"$tmp/run.log" 2>&1 || rc=$?
  cat "$tmp/run.log" >>"$log"
  local status="ok"
  if ((rc == 124 || rc == 137)); then
    status="TIMEOUT after ${limit} s"
  elif ((rc != 0)); then
    status="FAILED (exit $rc)"
  fi
  say "$(printf '  %-58s %s, %d s' "$label" "$status" $((SECONDS - t0)))"
  if ((rc != 0)); then
    tail -n 40 "$tmp/run.log" | sed 's/^/    | /'
  fi
}

say "gpu_check: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), build $build_dir, results $out_dir," \
  "budget ${budget} s$( ((quick)) && echo ', --quick')"

# --- 0. what to run -----------------------------------------------------------------------------
mapfile -t tests < <(find "$build_dir/tests/cuda" -maxdepth 1 -type f -name 'cuda_*_test' \
  -perm -u+x 2>/dev/null | sort)
mapfile -t benches < <(find "$build_dir/bench" -maxdepth 1 -type f -name 'cuda_*_bench' \
  -perm -u+x 2>/dev/null | sort)
if ((${#tests[@]} == 0)); then
  say "gpu_check: FAIL: no [cuda] test binaries in $build_dir/tests/cuda (build the cuda_tests" \
    "target, or carry tests/cuda of the build folder)"
  exit 2
fi
say "gpu_check: ${#tests[@]} test binaries, ${#benches[@]} bench programs"
if ((${#benches[@]} == 0)); then
  notes+=("no bench programs in $build_dir/bench (build cuda_benches): targets NOT MEASURED")
fi

# Shared libraries: the pack's lib/ first (libfmt, libbenchmark, ... of the build machine), then
# the CUDA toolkit's (cuBLAS is never packed: it is hundreds of MB and every CUDA 13 install has
# it).
cuda_libs="/usr/local/cuda/lib64:/usr/local/cuda/lib:/usr/local/cuda/targets/x86_64-linux/lib"
export LD_LIBRARY_PATH="$build_dir/lib:$cuda_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# A library still missing (cuBLAS outside the toolkit folders, e.g. in a Python wheel's nvidia/
# folder) is looked for under /usr/local and /opt.
for name in $(for bin in "${tests[@]}" "${benches[@]}"; do ldd "$bin"; done 2>/dev/null |
  sed -n 's/^[[:space:]]*\([^ ]*\) => not found.*/\1/p' | sort -u); do
  found="$(find /usr/local /opt -name "$name" \( -type f -o -type l \) 2>/dev/null | head -n 1)"
  if [[ -n "$found" ]]; then
    echo "gpu_check: $name from $(dirname "$found")"
    LD_LIBRARY_PATH+=":${found%/*}"
  fi
done
missing=""
for bin in "${tests[@]}" "${benches[@]}"; do
  if lines="$(ldd "$bin" 2>&1 | grep 'not found')"; then
    missing+="  $(basename "$bin"):"$'\n'"${lines}"$'\n'
  fi
done
if [[ -n "$missing" ]]; then
  say "gpu_check: FAIL: shared libraries missing on this machine:"
  say "$missing"
  say "gpu_check: pack the build on the build machine with tools/gpu_check_pack.sh (it copies" \
    "these into lib/) and carry the pack instead of the build folder"
  exit 2
fi

# Source-tree paths compiled into the binaries (see the header): the build's source directory.
src_dir=""
if [[ -f "$build_dir/source-dir.txt" ]]; then # written by gpu_check_pack.sh
  src_dir="$(<"$build_dir/source-dir.txt")"
elif [[ -f "$build_dir/CMakeCache.txt" ]]; then
  src_dir="$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build_dir/CMakeCache.txt")"
elif [[ -f "$build_dir/tests/cuda/CTestTestfile.cmake" ]]; then
  src_dir="$(sed -n 's|^# Source directory: \(.*\)/tests/cuda$|\1|p' \
    "$build_dir/tests/cuda/CTestTestfile.cmake")"
fi
here="$(pwd -P)"
if [[ -z "$src_dir" ]]; then
  notes+=("source directory of the build unknown (no source-dir.txt, CMakeCache.txt or" \
    "CTestTestfile.cmake): tests that read test data may fail")
elif [[ "$(cd "$src_dir" 2>/dev/null && pwd -P)" != "$here" ]]; then
  if ((link_source)) && [[ ! -e "$src_dir" ]]; then
    mkdir -p "$(dirname "$src_dir")"
    ln -s "$here" "$src_dir"
    made_link="$src_dir"
    say "gpu_check: linked $src_dir -> $here (the source path compiled into the binaries)"
  else
    say "gpu_check: FAIL: the binaries were built from $src_dir, but this checkout is $here."
    say "  The [cuda] tests read test data at paths compiled in from $src_dir (tests/llama/data," \
      "models/), so run from a checkout at that path, or pass --link-source to make that path" \
      "a link to this checkout$([[ -e "$src_dir" ]] && echo " (impossible here: $src_dir exists)")."
    exit 2
  fi
fi

# --- 1. the GPU ---------------------------------------------------------------------------------
say ""
say "== 1. device"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=index,name,driver_version,compute_cap,memory.total,clocks.max.sm \
    --format=csv 2>&1 | tee -a "$log" || true
else
  say "  nvidia-smi not found"
fi
export KVSIEVE_REQUIRE_GPU=1
gpu_ok=1
probe_out="$("${tests[0]}" --list-tests '[gpu_check-probe-matches-nothing]' 2>&1)" || true
echo "$probe_out" >>"$log"
if grep -q 'device 0:' <<<"$probe_out"; then
  say "  $(grep 'device 0:' <<<"$probe_out" | head -n 1)"
else
  gpu_ok=0
  say "  $( (grep -E 'FAILED|SKIPPED|rror' <<<"$probe_out" || tail -n 3 <<<"$probe_out") | head -n 3)"
  say "gpu_check: FAIL: no usable GPU (probe: $(basename "${tests[0]}"))"
  failures+=("no usable GPU")
fi

# --- 2. tests -----------------------------------------------------------------------------------
if ((gpu_ok)); then
  say ""
  say "== 2. [cuda] tests, [long] cases excluded"
  for bin in "${tests[@]}"; do
    limit=$(($(left) < 150 ? $(left) : 150))
    if ((limit < 10)); then
      say "  $(basename "$bin"): not run, budget spent"
      failures+=("$(basename "$bin") not run")
      continue
    fi
    run_logged "$limit" "$(basename "$bin")" "$bin" '~[long]' --durations yes
    ((rc == 0)) || failures+=("$(basename "$bin")")
  done
fi

# --- 3. benches and targets ---------------------------------------------------------------------
if ((gpu_ok)); then
  say ""
  say "== 3. bench programs (3 repetitions, medians) -> $out_dir/*.json"
  for bin in "${benches[@]}"; do
    name="$(basename "$bin")"
    limit=$(($(left) < 150 ? $(left) : 150))
    if ((limit < 20)); then
      say "  $name: not run, budget spent"
      notes+=("$name not run (budget)")
      continue
    fi
    run_logged "$limit" "$name" "$bin" --benchmark_repetitions=3 \
      --benchmark_report_aggregates_only=true --benchmark_min_time=0.05 \
      --benchmark_out="$out_dir/$name.json" --benchmark_out_format=json
    ((rc == 0)) || failures+=("$name")
  done
  python="$(command -v python3 || true)"
  say ""
  if [[ -n "$python" ]]; then
    target_args=("$out_dir")
    ((strict)) && target_args+=(--strict)
    rc=0
    "$python" "$(dirname "$0")/gpu_check_targets.py" "${target_args[@]}" >"$tmp/targets.txt" 2>&1 ||
      rc=$?
    tee -a "$log" <"$tmp/targets.txt"
    if ((strict && rc != 0)); then
      failures+=("performance targets (--strict)")
    fi
  else
    say "performance targets: NOT MEASURED (no python3 to read the bench JSON)"
    ((strict)) && failures+=("performance targets (--strict)")
  fi
fi

# --- 4. compute-sanitizer -----------------------------------------------------------------------
sanitizer="$(command -v compute-sanitizer || true)"
if [[ -z "$sanitizer" && -x /usr/local/cuda/bin/compute-sanitizer ]]; then
  sanitizer=/usr/local/cuda/bin/compute-sanitizer
fi
if ((gpu_ok && sanitizers)); then
  say ""
  if [[ -z "$sanitizer" ]]; then
    say "== 4. compute-sanitizer: not installed, skipped"
    notes+=("compute-sanitizer not installed")
  else
    say "== 4. compute-sanitizer memcheck and racecheck ([long], [slow], [api_error] excluded)"
    for tool in memcheck racecheck; do
      for bin in "${tests[@]}"; do
        # Keep 60 s of the budget for the [long] cases and the summary.
        limit=$(($(left) - 60 < 90 ? $(left) - 60 : 90))
        if ((limit < 15)); then
          say "  $tool $(basename "$bin"): not run, budget spent"
          notes+=("$tool $(basename "$bin") not run (budget)")
          continue
        fi
        run_logged "$limit" "$tool $(basename "$bin")" "$sanitizer" --tool "$tool" \
          --error-exitcode 99 --print-limit 20 "$bin" '~[long]~[slow]~[api_error]'
        if ((rc == 124 || rc == 137)); then
          notes+=("$tool $(basename "$bin") timed out (incomplete, not a finding)")
        elif ((rc != 0)); then
          failures+=("$tool $(basename "$bin")")
        fi
      done
    done
  fi
fi

# --- 5. [long] cases ----------------------------------------------------------------------------
if ((gpu_ok)); then
  say ""
  if ((quick)); then
    say "== 5. [long] cases: skipped (--quick)"
    notes+=("[long] cases skipped (--quick)")
  else
    say "== 5. [long] cases, while the budget lasts"
    for bin in "${tests[@]}"; do
      listing="$("$bin" --list-tests '[long]' 2>/dev/null || true)"
      n="$(sed -n 's/^\([0-9][0-9]*\) matching test case.*/\1/p' <<<"$listing" | head -n 1)"
      [[ "${n:-0}" != 0 ]] || continue
      limit=$(($(left) < 200 ? $(left) : 200))
      if ((limit < 20)); then
        say "  $(basename "$bin") [long]: not run, budget spent"
        notes+=("$(basename "$bin") [long] not run (budget)")
        continue
      fi
      run_logged "$limit" "$(basename "$bin") [long]" "$bin" '[long]' --durations yes
      ((rc == 0)) || failures+=("$(basename "$bin") [long]")
    done
  fi
fi

# --- summary ------------------------------------------------------------------------------------
say ""
if [[ -s "$tmp/targets.txt" ]]; then # again, so the end of the output (all a device call shows)
  grep -E '^(PASS|FAIL|NOT MEASURED|targets:)' "$tmp/targets.txt" | tee -a "$log"
fi
for n in "${notes[@]}"; do
  say "note: $n"
done
if ((${#failures[@]} == 0)); then
  line="gpu_check: PASS: GPU usable, every test passed ($((SECONDS - start)) s; log $log)"
  status=0
else
  joined="$(printf '%s; ' "${failures[@]}")"
  line="gpu_check: FAIL: ${#failures[@]} failure(s): ${joined%; } ($((SECONDS - start)) s; log $log)"
  status=1
fi
say "$line"
echo "$line" >"$out_dir/summary.txt"
exit "$status"
