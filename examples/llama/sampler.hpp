// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Next-token choice: greedy (temperature 0), temperature, and nucleus (top-p) sampling with a
/// seeded generator, so the same seed gives the same text. FastGen samples with temperature 0.6
/// and top-p 0.9 (fastgen-spec §4).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <span>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/core/error.hpp>

namespace llama {

class sampler {
public:
  /// Throws errc::invalid_argument for temperature < 0 or top_p outside (0, 1].
  sampler(float temperature, float top_p, std::uint64_t seed)
      : temperature_(temperature), top_p_(top_p), rng_(seed) {
    kvsieve::expects(temperature >= 0.0F && std::isfinite(temperature),
                     kvsieve::errc::invalid_argument, "temperature must be >= 0");
    kvsieve::expects(top_p > 0.0F && top_p <= 1.0F, kvsieve::errc::invalid_argument,
                     "top-p must be in (0, 1]");
  }

  auto operator()(std::span<const float> logits) -> std::int32_t {
    if (temperature_ == 0.0F) {
      return static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) -
                                       logits.begin());
    }
    const float m = *std::max_element(logits.begin(), logits.end());
    probs_.resize(logits.size());
    float sum = 0.0F;
    for (std::size_t i = 0; i < logits.size(); ++i) {
      probs_[i] = std::exp((logits[i] - m) / temperature_);
      sum += probs_[i];
    }
    order_.resize(logits.size());
    std::iota(order_.begin(), order_.end(), 0);
    std::sort(order_.begin(), order_.end(), [&](std::int32_t a, std::int32_t b) {
      return probs_[static_cast<std::size_t>(a)] > probs_[static_cast<std::size_t>(b)] ||
             (probs_[static_cast<std::size_t>(a)] == probs_[static_cast<std::size_t>(b)] && a < b);
    });
    // The nucleus: the fewest most-probable tokens whose mass reaches top_p.
    float mass = 0.0F;
    std::size_t keep = 0;
    while (keep < order_.size() && mass < top_p_ * sum) {
      mass += probs_[static_cast<std::size_t>(order_[keep++])];
    }
    std::uniform_real_distribution<float> u(0.0F, mass);
    float r = u(rng_);
    for (std::size_t i = 0; i < keep; ++i) {
      r -= probs_[static_cast<std::size_t>(order_[i])];
      if (r <= 0.0F) {
        return order_[i];
      }
    }
    return order_[keep - 1];
  }

private:
  float temperature_;
  float top_p_;
  std::mt19937_64 rng_;
  std::vector<float> probs_;
  std::vector<std::int32_t> order_;
};

} // namespace llama
