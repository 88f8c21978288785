#!/usr/bin/env bash
# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
# Builds llama.cpp (libllama, llama-bench) from the source distribution of PyPI's
# llama-cpp-python (its vendor/llama.cpp), outside the repository: nothing of llama.cpp is
# committed here. Then builds llama_cpp_run.cpp (compare.py's llama.cpp side) against it.
#   bench/llama_cpp/build_llama_cpp.sh            # builds into $KVSIEVE_LLAMACPP_DIR
# Environment: KVSIEVE_LLAMACPP_DIR (default ~/.cache/kvsieve-llamacpp), LLAMA_CPP_PYTHON_VERSION
# (default 0.3.36), PIP (default /work/venv/bin/pip, any pip works), JOBS (default 2).
# The build is niced and cached: a second run only checks that it is up to date.
# llama.cpp is built as its users build it: Release, GGML_NATIVE (-march=native), its own
# thread pool with OpenMP, CPU backend only.
set -euo pipefail
dir=${KVSIEVE_LLAMACPP_DIR:-$HOME/.cache/kvsieve-llamacpp}
version=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
pip=${PIP:-/work/venv/bin/pip}
jobs=${JOBS:-2}
src=$dir/llama_cpp_python-$version/vendor/llama.cpp
mkdir -p "$dir"
if [[ ! -f $src/CMakeLists.txt ]]; then
  if [[ ! -f $dir/llama_cpp_python-$version.tar.gz ]]; then
    "$pip" download --no-binary :all: --no-deps \
      "llama-cpp-python==$version" -d "$dir"
  fi
  tar -xzf "$dir/llama_cpp_python-$version.tar.gz" -C "$dir"
fi
cmake -S "$src" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
  -DGGML_NATIVE=ON -DGGML_OPENMP=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_OPENSSL=OFF \
  -DLLAMA_CURL=OFF >"$dir/configure.log"
nice -n 19 cmake --build "$dir/build" -j"$jobs" --target llama llama-bench
# llama.cpp's side of compare.py, against the library just built (rpath: runs in place).
nice -n 19 "${CXX:-g++}" -O2 -std=c++17 "$(dirname "$0")/llama_cpp_run.cpp" \
  -I"$src/include" -I"$src/ggml/include" -L"$dir/build/bin" -lllama -lggml -lggml-base \
  -Wl,-rpath,"$dir/build/bin" -o "$dir/build/bin/llama_cpp_run"
echo "llama.cpp: $dir/build/bin/{libllama.so,llama-bench,llama_cpp_run}"
