// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// The main of every CUDA benchmark program (run_main in cuda_bench.cuh). CMake passes the git
// hash (taken at configure time) and the build type, as for the host programs' bench_main.cpp.
#include "cuda/cuda_bench.cuh"

#ifndef KVSIEVE_BENCH_BUILD_TYPE
#define KVSIEVE_BENCH_BUILD_TYPE ""
#endif
#ifndef KVSIEVE_BENCH_GIT_HASH
#define KVSIEVE_BENCH_GIT_HASH "unknown"
#endif

auto main(int argc, char** argv) -> int {
  return kvsieve::bench::run_main(argc, argv, KVSIEVE_BENCH_GIT_HASH, KVSIEVE_BENCH_BUILD_TYPE);
}
