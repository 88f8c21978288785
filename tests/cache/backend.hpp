// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Test memory for a cache of either backend: backend<Space> holds float tensors where the cache
/// reads them (host vectors here; device buffers in tests/cache/cuda/device_backend.hpp), so one
/// test body makes the very same cache calls on the host and on the device cache.

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include <reference/brute_force.hpp>

#include <kvsieve/kvsieve.hpp>

namespace kvsieve::testing {

template <class Space>
struct backend;

template <>
struct backend<host_space> {
  using buffer = std::vector<float>;
  static auto upload(const std::vector<float>& x) -> buffer { return x; }
  static auto zeros(std::size_t n) -> buffer { return buffer(n); }
  static auto download(const buffer& b) -> std::vector<float> { return b; }
  /// The sorted positions resident in head h.
  template <class Cache>
  static auto positions(const Cache& cache, head_id h) -> std::vector<std::int32_t> {
    return reference::store_positions(cache.store(), h);
  }
  /// Position -> score of every token resident in head h, by position.
  template <class Cache>
  static auto scores(const Cache& cache, head_id h) -> std::vector<std::pair<std::int32_t, float>> {
    std::vector<std::pair<std::int32_t, float>> out;
    for (std::int32_t s = 0; s < cache.store().size(h); ++s) {
      const auto m = cache.store().meta(h, s);
      out.emplace_back(m.position, m.score);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

/// A view of a backend buffer in the cache's memory space.
template <class Space, std::size_t Rank, class Buffer>
auto view_of(Buffer& b, std::array<std::size_t, Rank> extents) -> tensor_view<float, Rank, Space> {
  return {b.data(), extents};
}
template <class Space, std::size_t Rank, class Buffer>
auto cview_of(const Buffer& b, std::array<std::size_t, Rank> extents)
    -> tensor_view<const float, Rank, Space> {
  return {b.data(), extents};
}

} // namespace kvsieve::testing
