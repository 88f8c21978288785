// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// A stand-in libcuda.so.1 for the test cuda_probe_old_driver: a driver that reports CUDA 12.4,
// older than the 13.x runtime, and offers nothing else. The CUDA runtime then answers
// cudaErrorInsufficientDriver, and the [cuda] test main must FAIL (an NVIDIA driver is present),
// not skip as it does on a machine with no driver at all (tests/cuda/gpu_probe.hpp).
#include <cstring>

namespace {
auto driver_get_version(int* version) -> int {
  *version = 12040;
  return 0; // CUDA_SUCCESS
}
auto init(unsigned /*flags*/) -> int { return 0; }
} // namespace

// The runtime resolves every driver entry point, this one included, through
// cuGetProcAddress_v2.
extern "C" auto cuGetProcAddress_v2(const char* symbol, void** fn, int /*cuda_version*/,
                                    unsigned long long /*flags*/, int* status) -> int {
  void* found = nullptr;
  if (std::strcmp(symbol, "cuGetProcAddress") == 0) {
    found = reinterpret_cast<void*>(&cuGetProcAddress_v2);
  } else if (std::strcmp(symbol, "cuDriverGetVersion") == 0) {
    found = reinterpret_cast<void*>(&driver_get_version);
  } else if (std::strcmp(symbol, "cuInit") == 0) {
    found = reinterpret_cast<void*>(&init);
  }
  *fn = found;
  if (status != nullptr) {
    *status = found != nullptr ? 0 : 1; // CU_GET_PROC_ADDRESS_SUCCESS / _SYMBOL_NOT_FOUND
  }
  return found != nullptr ? 0 : 500; // CUDA_SUCCESS / CUDA_ERROR_NOT_FOUND
}
