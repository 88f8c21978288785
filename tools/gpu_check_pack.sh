#!/usr/bin/env bash
# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
#
# Packs a CUDA build for tools/gpu_check.sh on another machine (issue 11, item 7):
#
#   tools/gpu_check_pack.sh [BUILD_DIR] [PACK_DIR]     # defaults: build/cuda build/gpu-check
#
# It writes PACK_DIR and PACK_DIR.tar.xz (what to carry; gpu_check.sh unpacks it). PACK_DIR gets the layout gpu_check.sh reads: tests/cuda/cuda_*_test, bench/cuda_*_bench
# (stripped copies), lib/ (the shared libraries they load that a bare CUDA machine may lack:
# fmt, Google Benchmark, OpenBLAS, SentencePiece, ...; never glibc, the NVIDIA driver or the CUDA
# toolkit's cuBLAS, which the GPU machine's CUDA 13 provides), source-dir.txt (the source path
# compiled into the binaries) and build-info.txt. It prints the archive's size, which must fit the
# device tool's 64 MiB together with the working tree. Build first:
#   cmake --preset cuda && cmake --build --preset cuda --target cuda_tests cuda_benches
set -euo pipefail

build_dir="${1:-build/cuda}"
pack="${2:-build/gpu-check}"
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  echo "gpu_check_pack: $build_dir is not a CMake build folder" >&2
  exit 2
fi
rm -rf "$pack" "$pack.tar.xz"
mkdir -p "$pack/tests/cuda" "$pack/bench" "$pack/lib"

bins=()
for f in "$build_dir"/tests/cuda/cuda_*_test "$build_dir"/bench/cuda_*_bench; do
  [[ -f "$f" && -x "$f" ]] || continue
  rel="${f#"$build_dir"/}"
  cp "$f" "$pack/$rel"
  strip --strip-unneeded "$pack/$rel" # symbols only: the fatbin section stays
  bins+=("$pack/$rel")
done
if ((${#bins[@]} == 0)); then
  echo "gpu_check_pack: no cuda_*_test or cuda_*_bench in $build_dir (build the cuda_tests and" \
    "cuda_benches targets)" >&2
  exit 2
fi

# Every resolved library except glibc's, the driver's and the CUDA toolkit's large ones.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libresolv\.so|libcuda\.so|libnvidia|libcublas|libcublasLt|libstdc\+\+\.so|libgcc_s\.so)'
declare -A seen=()
for bin in "${bins[@]}"; do
  while read -r name path; do
    [[ -n "$path" && -f "$path" ]] || continue
    [[ "$name" =~ $skip ]] && continue
    [[ -n "${seen[$name]:-}" ]] && continue
    seen[$name]=1
    cp -L "$path" "$pack/lib/$name"
  done < <(ldd "$bin" | sed -n 's/^[[:space:]]*\([^ ]*\) => \([^ ]*\) (.*/\1 \2/p')
done

sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build_dir/CMakeCache.txt" >"$pack/source-dir.txt"
{
  echo "packed: $(date -u '+%Y-%m-%d %H:%M:%S UTC') from $(cd "$build_dir" && pwd)"
  echo "git: $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  echo "nvcc: $(sed -n 's/^CMAKE_CUDA_COMPILER:[A-Z]*=//p' "$build_dir/CMakeCache.txt")"
  echo "architectures: $(sed -n 's/^CMAKE_CUDA_ARCHITECTURES:[A-Z]*=//p' "$build_dir/CMakeCache.txt")"
  echo "needed from the GPU machine: glibc >= $(ldd --version | sed -n '1s/.* //p'), libstdc++" \
    "of GCC >= $(gcc -dumpversion 2>/dev/null || echo '?'), an NVIDIA driver for CUDA 13, cuBLAS 13"
} >"$pack/build-info.txt"

# The archive is what travels: xz brings the pack (OpenBLAS alone is 36 MB) to about a sixth.
tar -C "$(dirname "$pack")" -cf - "$(basename "$pack")" | xz -T2 -6 >"$pack.tar.xz"
mib() { echo $(((${1} + 1048575) / 1048576)); }
archive=$(stat -c %s "$pack.tar.xz")
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null |
  awk '{s += $1} END {print s + 0}')
echo "gpu_check_pack: $pack: ${#bins[@]} programs, $(find "$pack/lib" -type f | wc -l) libraries," \
  "$(du -sh "$pack" | cut -f1) unpacked"
du -sh "$pack"/tests/cuda "$pack"/bench "$pack"/lib
echo "source path compiled in: $(<"$pack/source-dir.txt")"
echo "to carry: $pack.tar.xz, $(mib "$archive") MiB; with this working tree ($(mib "$tree") MiB of" \
  "tracked and untracked files) $(mib $((archive + tree))) MiB of the device tool's 64 MiB"
