// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// The main of every CUDA benchmark program (run_main in cuda_bench.cuh). CMake passes the git
// hash (taken at configure time) and the build type, as for the host programs' bench_main.cpp.
// Before anything runs, the GPU is probed as the [cuda] tests do (tests/cuda/gpu_probe.hpp): no
// device and no driver prints "SKIPPED" and exits 0 (a benchmark run is not a test); a present
// driver with a failing runtime, or no GPU under KVSIEVE_REQUIRE_GPU=1, exits 1.
#include "cuda/cuda_bench.cuh"
#include "gpu_probe.hpp"

#ifndef KVSIEVE_BENCH_BUILD_TYPE
#define KVSIEVE_BENCH_BUILD_TYPE ""
#endif
#ifndef KVSIEVE_BENCH_GIT_HASH
#define KVSIEVE_BENCH_GIT_HASH "unknown"
#endif

auto main(int argc, char** argv) -> int {
  const auto probe = kvsieve::testing::probe_gpu();
  if (const int code = kvsieve::testing::gpu_gate(probe, "[cuda bench]", 0); code >= 0) {
    return code;
  }
  return kvsieve::bench::run_main(argc, argv, KVSIEVE_BENCH_GIT_HASH, KVSIEVE_BENCH_BUILD_TYPE);
}
