// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// device_cache: the device adaptive cache (adaptive_cache over paged_store<T, cuda_space>) behind
/// one runtime interface, any_cache's twin for kvsieve._core's CUDA path. Implemented in
/// device_cache.cu, the module's only nvcc translation unit, where the module is built with CUDA
/// (python/CMakeLists.txt), and by no_device_cache.cpp otherwise (no device, every call says
/// why). This header is plain C++ (no CUDA headers, no nanobind): module.cpp stays a host
/// compiler's file, nanobind is never seen by nvcc, and neither needs an #if.
///   make_device_cache(settings, geometry, options, element, replay, device, stream)
///   device_built()          whether this is the CUDA implementation
///   device_policy_names()   the policies it instantiates (none without CUDA)
///   device_count()          visible CUDA devices, 0 without a driver or device (never throws)
/// Arrays arrive as device_array: a device pointer, its element (float32 or bfloat16) and its
/// extents, already checked by the module (device, dtype, rank, C-contiguity); shapes against
/// the geometry are the cache's own checks. bfloat16 arrays are widened on the device into
/// float32 scratch (and outputs narrowed back), as the host module does on the host.
/// Streams are cudaStream_t values as integers (torch's `Stream.cuda_stream`): every call is
/// ordered after the work already enqueued on the caller's stream, and the caller's later work
/// after the call's (events both ways when it is not the cache's own stream).
/// Errors: kvsieve::error, including errc::device for a CUDA runtime failure and the cache's
/// sticky decode errors (errc::out_of_memory, errc::out_of_range) on a later call.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <kvsieve/cache/named_policy.hpp>  // policy_settings
#include <kvsieve/cache/options.hpp>       // cache_options, cache_report, store_geometry
#include <kvsieve/core/token_class.hpp>
#include <kvsieve/profile/profile_file.hpp> // head_profile

namespace kvsieve::python {

// kvsieve/python/any_cache.hpp defines it; declared here so that no_device_cache.cpp, all of a
// build without CUDA adds, does not compile the whole library (kvsieve.hpp) a second time.
enum class element;

/// A C-contiguous array in the memory of the cache's device.
struct device_array {
  void* data = nullptr;
  bool bfloat16 = false; ///< else float32
  std::size_t rank = 0;
  std::array<std::size_t, 3> shape{};

  [[nodiscard]] auto size() const noexcept -> std::size_t {
    std::size_t n = 1;
    for (std::size_t i = 0; i < rank; ++i) {
      n *= shape[i];
    }
    return n;
  }
};

class device_cache {
public:
  device_cache() = default;
  device_cache(const device_cache&) = delete;
  auto operator=(const device_cache&) -> device_cache& = delete;
  virtual ~device_cache() = default;

  /// q, out [L, n_head_q, head_dim], k, v [L, n_head_kv, head_dim] (rank 3); classes on the host.
  /// Synchronises the cache's stream (the device cache's prefill does).
  virtual void prefill(std::int32_t seq, std::int32_t layer, const device_array& q,
                       const device_array& k, const device_array& v,
                       std::span<const token_class> classes, const device_array& out,
                       std::uintptr_t stream) = 0;
  /// q, out [n_head_q, head_dim], k, v [n_head_kv, head_dim] (rank 2). No host sync.
  virtual void decode(std::int32_t seq, std::int32_t layer, const device_array& q,
                      const device_array& k, const device_array& v, token_class cls,
                      const device_array& out, std::uintptr_t stream) = 0;
  virtual void release(std::int32_t seq) = 0;
  /// Waits for the cache's stream and raises a pending (sticky) decode error.
  virtual void synchronize() = 0;
  /// Acknowledges a pending decode error (adaptive_cache<cuda>::clear_error).
  virtual void clear_error() = 0;
  [[nodiscard]] virtual auto length(std::int32_t seq, std::int32_t layer) const -> std::int32_t = 0;
  [[nodiscard]] virtual auto report() const -> cache_report = 0;
  [[nodiscard]] virtual auto profile(std::int32_t seq) const -> head_profile = 0;
  [[nodiscard]] virtual auto ladder_names() const -> std::vector<std::string> = 0;
  [[nodiscard]] virtual auto geometry() const -> const store_geometry& = 0;
  [[nodiscard]] virtual auto options() const -> const cache_options& = 0;
  /// The CUDA device ordinal the cache's memory lives on.
  [[nodiscard]] virtual auto device() const noexcept -> int = 0;
};

/// The device cache `s` names (or FastGen's ladder replaying `replay`) on CUDA device `device`,
/// its work ordered on `stream` (0: the legacy default stream). Throws kvsieve::error as
/// make_any_cache does, errc::invalid_argument for a policy the device build leaves out
/// (device_policy_names) and whatever the device cache's constructor throws (errc::device
/// without a usable GPU, errc::out_of_memory when the pool does not fit).
[[nodiscard]] auto make_device_cache(const policy_settings& s, const store_geometry& g,
                                     const cache_options& o, element e,
                                     const std::optional<head_profile>& replay, int device,
                                     std::uintptr_t stream) -> std::unique_ptr<device_cache>;

/// The policy names the device build instantiates, in policy_names order.
[[nodiscard]] auto device_policy_names() -> std::vector<std::string>;

/// Whether the module was built with its CUDA cache.
[[nodiscard]] auto device_built() noexcept -> bool;

/// Visible CUDA devices; 0 when there is no driver or no device (never throws).
[[nodiscard]] auto device_count() noexcept -> int;

} // namespace kvsieve::python
