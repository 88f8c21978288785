// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// backend<cuda_space> (tests/cache/backend.hpp): test tensors in device memory, so the shared
/// test bodies make the same calls on the device cache as on the host cache.

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include <cache/backend.hpp>

#include <kvsieve/core/cuda/runtime.cuh>
#include <kvsieve/store/cuda/paged_store.cuh>

namespace kvsieve::testing {

template <>
struct backend<cuda_space> {
  using buffer = cuda::device_buffer<float>;
  static auto upload(const std::vector<float>& x) -> buffer {
    buffer b(x.size());
    b.upload(x);
    return b;
  }
  static auto zeros(std::size_t n) -> buffer {
    buffer b(n);
    b.fill_zero();
    cuda::check(cudaDeviceSynchronize(), "backend<cuda_space>::zeros");
    return b;
  }
  static auto download(const buffer& b) -> std::vector<float> {
    cuda::check(cudaDeviceSynchronize(), "backend<cuda_space>::download");
    std::vector<float> out(b.size());
    b.download(out);
    return out;
  }
  template <class Cache>
  static auto positions(const Cache& cache, head_id h) -> std::vector<std::int32_t> {
    cache.synchronize();
    std::vector<std::int32_t> pos;
    for (const auto& t : cache.store().tokens(h)) {
      pos.push_back(t.meta.position);
    }
    std::sort(pos.begin(), pos.end());
    return pos;
  }
  template <class Cache>
  static auto scores(const Cache& cache, head_id h) -> std::vector<std::pair<std::int32_t, float>> {
    cache.synchronize();
    std::vector<std::pair<std::int32_t, float>> out;
    for (const auto& t : cache.store().tokens(h)) {
      out.emplace_back(t.meta.position, t.meta.score);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

} // namespace kvsieve::testing
