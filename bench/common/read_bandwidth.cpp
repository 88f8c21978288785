// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
// simd_sum for every SIMD target, chosen at run time like kvsieve's kernels (Highway's usual
// one-file form: this file re-includes itself once per target).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "common/read_bandwidth.cpp"
#include <hwy/foreach_target.h> // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <vector>

#include "common/read_bandwidth.hpp"

HWY_BEFORE_NAMESPACE();
namespace kvsieve::bench::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

float simd_sum_target(const float* HWY_RESTRICT x, std::size_t n) {
  const hn::ScalableTag<float> df;
  const std::size_t lanes = hn::Lanes(df);
  auto a0 = hn::Zero(df);
  auto a1 = hn::Zero(df);
  auto a2 = hn::Zero(df);
  auto a3 = hn::Zero(df);
  std::size_t i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    a0 = hn::Add(a0, hn::LoadU(df, x + i));
    a1 = hn::Add(a1, hn::LoadU(df, x + i + lanes));
    a2 = hn::Add(a2, hn::LoadU(df, x + i + 2 * lanes));
    a3 = hn::Add(a3, hn::LoadU(df, x + i + 3 * lanes));
  }
  float s = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; i < n; ++i) {
    s += x[i];
  }
  return s;
}

} // namespace kvsieve::bench::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kvsieve::bench {
HWY_EXPORT(simd_sum_target);

auto simd_sum(const float* x, std::size_t n) -> float {
  return HWY_DYNAMIC_DISPATCH(simd_sum_target)(x, n);
}

auto single_core_read_gbps() -> double {
  static const double gbps = [] {
    constexpr std::size_t bytes = std::size_t{256} << 20U;
    constexpr int passes = 7;
    std::vector<float> buf(bytes / sizeof(float), 1.0F); // written once: pages are mapped
    std::vector<double> rates;
    volatile float sink = 0.0F;
    for (int p = 0; p < passes; ++p) {
      const auto t0 = std::chrono::steady_clock::now();
      sink = sink + simd_sum(buf.data(), buf.size());
      const auto t1 = std::chrono::steady_clock::now();
      rates.push_back(static_cast<double>(bytes) / std::chrono::duration<double>(t1 - t0).count() /
                      1e9);
    }
    std::sort(rates.begin(), rates.end());
    return rates[rates.size() / 2];
  }();
  return gbps;
}
} // namespace kvsieve::bench
#endif // HWY_ONCE
