// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// The main of every kvsieve benchmark: Google Benchmark's own, plus the context a result needs
// to be read later (the Kokkos Benchmark_Context idea): CPU, build type, compiler, git hash.
// The CMake side passes KVSIEVE_BENCH_BUILD_TYPE, KVSIEVE_BENCH_GIT_HASH and
// KVSIEVE_BENCH_CXX_FLAGS; the git hash is taken at configure time.
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "bench_common.hpp"

#ifndef KVSIEVE_BENCH_BUILD_TYPE
#define KVSIEVE_BENCH_BUILD_TYPE ""
#endif
#ifndef KVSIEVE_BENCH_GIT_HASH
#define KVSIEVE_BENCH_GIT_HASH "unknown"
#endif
#ifndef KVSIEVE_BENCH_CXX_FLAGS
#define KVSIEVE_BENCH_CXX_FLAGS ""
#endif

namespace {

/// The value of the first "key : value" line of /proc/cpuinfo, or "" (not Linux, or absent).
auto cpuinfo_field(std::string_view key) -> std::string {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) {
      continue;
    }
    auto name = std::string_view(line).substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) {
      name.remove_suffix(1);
    }
    if (name == key) {
      const auto start = line.find_first_not_of(' ', colon + 1);
      return start == std::string::npos ? std::string() : line.substr(start);
    }
  }
  return {};
}

/// The SIMD extensions the CPU offers that matter to the host loops (whether the build uses
/// them depends on the compiler flags, also printed).
auto simd_flags() -> std::string {
  std::istringstream flags(cpuinfo_field("flags"));
  std::string out;
  std::string flag;
  while (flags >> flag) {
    if (flag == "avx" || flag == "avx2" || flag == "fma" || flag == "avx512f" ||
        flag == "avx512_bf16" || flag == "neon" || flag == "asimd") {
      out += out.empty() ? flag : " " + flag;
    }
  }
  return out;
}

void add_context() {
  const std::string model = cpuinfo_field("model name");
  benchmark::AddCustomContext("cpu_model", model.empty() ? "unknown" : model);
  const std::string family = cpuinfo_field("cpu family");
  if (!family.empty()) {
    benchmark::AddCustomContext("cpu_signature",
                                fmt::format("family {} model {} stepping {}", family,
                                            cpuinfo_field("model"), cpuinfo_field("stepping")));
  }
  benchmark::AddCustomContext("cpu_simd", simd_flags());
  const std::string_view build_type = KVSIEVE_BENCH_BUILD_TYPE;
  benchmark::AddCustomContext("build_type",
                              build_type.empty() ? "unspecified" : std::string(build_type));
  benchmark::AddCustomContext("cxx_flags", KVSIEVE_BENCH_CXX_FLAGS);
  benchmark::AddCustomContext("compiler", __VERSION__);
  benchmark::AddCustomContext("git_hash", KVSIEVE_BENCH_GIT_HASH);
  benchmark::AddCustomContext("fmt_version", std::to_string(FMT_VERSION));
  benchmark::AddCustomContext("gpu", "none (host benchmarks; CUDA benchmarks add their own)");
  if (const double peak = kvsieve::bench::peak_gbps(); peak > 0.0) {
    benchmark::AddCustomContext("peak_gbps", fmt::format("{}", peak));
  }
}

} // namespace

auto main(int argc, char** argv) -> int {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  add_context();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
