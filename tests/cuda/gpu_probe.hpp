// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Is there a usable CUDA GPU, and if not, may the program skip? Shared by the [cuda] test main
/// (tests/cuda/cuda_main.cpp) and the CUDA benchmark main (bench/cuda/cuda_bench_main.cu), so
/// that a broken GPU can never pass for a missing one (issue 11, item 6):
///  - no_gpu: no device and no NVIDIA driver at all (cudaErrorNoDevice or no devices; or any
///    runtime error while cudaDriverGetVersion reports 0, /proc/driver/nvidia/version and
///    /dev/nvidiactl are absent). The only verdict that may skip, and only without
///    KVSIEVE_REQUIRE_GPU set (to anything but "" or "0").
///  - broken: a driver is present but the runtime fails (cudaErrorInsufficientDriver, a failing
///    cudaGetDeviceProperties, cudaSetDevice or first cudaFree(0), i.e. context creation).
///  - usable: device 0 answered and a context was created on it.
/// Plain C++ over the CUDA runtime API (host code; no nvcc needed).

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <cuda_runtime.h>

namespace kvsieve::testing {

enum class gpu_verdict { usable, no_gpu, broken };

struct gpu_probe {
  gpu_verdict verdict = gpu_verdict::no_gpu;
  std::string reason; // why not usable: the failing call, the CUDA error name and string
  std::string device; // "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB)" when usable
  int driver_version = 0;  // cudaDriverGetVersion: 13000 for 13.0; 0 without a driver
  int runtime_version = 0; // cudaRuntimeGetVersion
  std::string kernel_module; // first line of /proc/driver/nvidia/version, if present
};

namespace detail {
inline auto file_exists(const char* path) -> bool {
  if (std::FILE* f = std::fopen(path, "r")) {
    std::fclose(f);
    return true;
  }
  return false;
}

inline auto first_line(const char* path) -> std::string {
  std::string line;
  if (std::FILE* f = std::fopen(path, "r")) {
    char buf[256] = {};
    if (std::fgets(buf, sizeof buf, f) != nullptr) {
      line = buf;
      while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) {
        line.pop_back();
      }
    }
    std::fclose(f);
  }
  return line;
}

inline auto describe(const char* call, cudaError_t e) -> std::string {
  return std::string(call) + " failed: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) +
         ")";
}

inline auto cuda_version(int v) -> std::string {
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}
} // namespace detail

/// True when KVSIEVE_REQUIRE_GPU is set to anything but "" or "0".
[[nodiscard]] inline auto gpu_required() -> bool {
  const char* v = std::getenv("KVSIEVE_REQUIRE_GPU");
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

/// Probes device 0 (creating its primary context). Never throws.
[[nodiscard]] inline auto probe_gpu() -> gpu_probe {
  gpu_probe p;
  (void)cudaDriverGetVersion(&p.driver_version); // 0 when no driver is installed
  (void)cudaRuntimeGetVersion(&p.runtime_version);
  p.kernel_module = detail::first_line("/proc/driver/nvidia/version");
  const bool driver_present = p.driver_version > 0 || !p.kernel_module.empty() ||
                              detail::file_exists("/dev/nvidiactl");
  int devices = 0;
  const cudaError_t count = cudaGetDeviceCount(&devices);
  if (count == cudaErrorNoDevice || (count == cudaSuccess && devices == 0)) {
    p.reason = count == cudaSuccess ? "no CUDA device visible (cudaGetDeviceCount: 0)"
                                    : detail::describe("cudaGetDeviceCount", count);
    return p; // no_gpu: a driver without devices (or CUDA_VISIBLE_DEVICES="") is still no GPU
  }
  if (count != cudaSuccess) {
    p.reason = detail::describe("cudaGetDeviceCount", count);
    p.verdict = driver_present ? gpu_verdict::broken : gpu_verdict::no_gpu;
    if (!driver_present) {
      p.reason += "; no NVIDIA driver (driver version 0, no /proc/driver/nvidia/version)";
    }
    return p;
  }
  p.verdict = gpu_verdict::broken;
  cudaDeviceProp prop{};
  if (const cudaError_t e = cudaGetDeviceProperties(&prop, 0); e != cudaSuccess) {
    p.reason = detail::describe("cudaGetDeviceProperties(0)", e);
    return p;
  }
  if (const cudaError_t e = cudaSetDevice(0); e != cudaSuccess) {
    p.reason = detail::describe("cudaSetDevice(0)", e);
    return p;
  }
  if (const cudaError_t e = cudaFree(nullptr); e != cudaSuccess) { // creates the context
    p.reason = detail::describe("cudaFree(0) (context creation)", e);
    return p;
  }
  char gib[32];
  std::snprintf(gib, sizeof gib, "%.1f",
                static_cast<double>(prop.totalGlobalMem) / static_cast<double>(1ULL << 30U));
  p.device = std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
             std::to_string(prop.minor) + ", " + std::to_string(prop.multiProcessorCount) +
             " SMs, " + gib + " GiB)";
  p.verdict = gpu_verdict::usable;
  return p;
}

/// One line for the log: device, compute capability, driver and runtime versions.
[[nodiscard]] inline auto describe(const gpu_probe& p) -> std::string {
  std::string s = p.verdict == gpu_verdict::usable ? "device 0: " + p.device : p.reason;
  s += "; CUDA driver " +
       (p.driver_version > 0 ? detail::cuda_version(p.driver_version) : std::string("none"));
  s += ", runtime " + detail::cuda_version(p.runtime_version);
  if (!p.kernel_module.empty()) {
    s += "; " + p.kernel_module;
  }
  return s;
}

/// The exit status a program should return instead of running, or -1 to run: prints one line
/// to stderr prefixed by `who`. `skip_code` is returned for no_gpu without KVSIEVE_REQUIRE_GPU
/// (77 for CTest's SKIP_RETURN_CODE; 0 for a benchmark program); 1 for every other failure.
[[nodiscard]] inline auto gpu_gate(const gpu_probe& p, const char* who, int skip_code) -> int {
  switch (p.verdict) {
  case gpu_verdict::usable:
    std::fprintf(stderr, "%s: %s\n", who, describe(p).c_str());
    return -1;
  case gpu_verdict::no_gpu:
    if (!gpu_required()) {
      std::fprintf(stderr, "%s: SKIPPED: no CUDA device or driver (%s); nothing ran\n", who,
                   describe(p).c_str());
      return skip_code;
    }
    std::fprintf(stderr,
                 "%s: FAILED: no usable GPU and KVSIEVE_REQUIRE_GPU is set (%s)\n", who,
                 describe(p).c_str());
    return 1;
  case gpu_verdict::broken:
    break;
  }
  std::fprintf(stderr,
               "%s: FAILED: an NVIDIA driver is present but the GPU is unusable (%s)\n", who,
               describe(p).c_str());
  return 1;
}

} // namespace kvsieve::testing
