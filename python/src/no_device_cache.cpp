// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// device_cache.hpp where kvsieve._core is built without CUDA (no CUDA compiler at build time, or
// KVSIEVE_PYTHON_CUDA=OFF): no device cache, and asking for one says why.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "device_cache.hpp"

namespace kvsieve::python {

auto make_device_cache(const policy_settings& /*s*/, const store_geometry& /*g*/,
                       const cache_options& /*o*/, element /*e*/,
                       const std::optional<head_profile>& /*replay*/, int device,
                       std::uintptr_t /*stream*/) -> std::unique_ptr<device_cache> {
  raise(errc::device,
        fmt::format("device='cuda:{}': this kvsieve was built without CUDA (no CUDA compiler at "
                    "build time, or KVSIEVE_PYTHON_CUDA=OFF); kvsieve.cuda_built() says so",
                    device));
}

auto device_policy_names() -> std::vector<std::string> { return {}; }

auto device_built() noexcept -> bool { return false; }

auto device_count() noexcept -> int { return 0; }

} // namespace kvsieve::python
