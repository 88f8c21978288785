// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Next-token choice: greedy (temperature 0), temperature, and nucleus (top-p) sampling with a
/// seeded generator, so the same seed gives the same text on every platform (std::mt19937_64 is
/// specified bit for bit; the uniform draw is ours, not the library's distribution). FastGen
/// samples with temperature 0.6 and top-p 0.9 (fastgen-spec §4).
/// Logits may hold -inf (a token that must never be chosen) but no NaN or +inf, and at least one
/// must be finite; anything else is reported, never sampled from. find_non_finite() lets a caller
/// say where bad logits came from before the sampler sees them.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/core/error.hpp>

namespace llama {

/// What is not finite in a row of logits: counts by kind and the first such token id.
struct non_finite_logits {
  std::size_t nan = 0;
  std::size_t pos_inf = 0;
  std::size_t neg_inf = 0;
  std::size_t first = 0; ///< the lowest id that is NaN or +-inf; meaningful when any()
  [[nodiscard]] auto any() const noexcept -> bool { return nan + pos_inf + neg_inf > 0; }
};

/// Scans `logits` once. O(n).
[[nodiscard]] inline auto find_non_finite(std::span<const float> logits) noexcept
    -> non_finite_logits {
  non_finite_logits r;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const float x = logits[i];
    if (std::isfinite(x)) {
      continue;
    }
    if (!r.any()) {
      r.first = i;
    }
    if (std::isnan(x)) {
      ++r.nan;
    } else if (x > 0.0F) {
      ++r.pos_inf;
    } else {
      ++r.neg_inf;
    }
  }
  return r;
}

class sampler {
public:
  /// Throws errc::invalid_argument for a temperature that is negative or not finite, or top_p
  /// outside (0, 1].
  sampler(float temperature, float top_p, std::uint64_t seed)
      : temperature_(temperature), top_p_(top_p), rng_(seed) {
    kvsieve::expects(temperature >= 0.0F && std::isfinite(temperature),
                     kvsieve::errc::invalid_argument,
                     [&] {
                       return fmt::format("temperature must be finite and >= 0, not {}",
                                          temperature);
                     });
    kvsieve::expects(top_p > 0.0F && top_p <= 1.0F, kvsieve::errc::invalid_argument,
                     [&] { return fmt::format("top-p must be in (0, 1], not {}", top_p); });
  }

  /// The next token id. Greedy: the largest logit, the lowest id among ties. Otherwise a draw
  /// from softmax(logits / temperature) restricted to the nucleus: the fewest most probable
  /// tokens (ties by id) whose mass reaches top_p; a token of probability 0 (-inf, or underflow
  /// at a tiny temperature) is never drawn. Throws errc::invalid_argument for empty logits, a NaN
  /// or +inf logit, or no finite one. O(n log n) when sampling, O(n) greedy.
  auto operator()(std::span<const float> logits) -> std::int32_t {
    const std::size_t best = checked_argmax(logits);
    if (temperature_ == 0.0F) {
      return static_cast<std::int32_t>(best);
    }
    // Double precision: exp((l - max) / T) stays exact enough at T = 1e-30 or 1e30, and the
    // nucleus mass does not drift over a 100k-token vocabulary.
    const double m = logits[best];
    const double t = temperature_;
    probs_.clear();
    order_.clear();
    double sum = 0.0;
    for (std::size_t i = 0; i < logits.size(); ++i) {
      const double p = std::exp((static_cast<double>(logits[i]) - m) / t);
      if (p > 0.0) {
        probs_.push_back(p);
        order_.push_back(static_cast<std::int32_t>(i));
        sum += p;
      }
    }
    // probs_ and order_ are never empty: the maximum has p = exp(0) = 1.
    idx_.resize(probs_.size());
    for (std::size_t i = 0; i < idx_.size(); ++i) {
      idx_[i] = i;
    }
    // Entries are in id order, so the lower entry is the lower id among equal probabilities.
    std::sort(idx_.begin(), idx_.end(), [&](std::size_t a, std::size_t b) {
      return probs_[a] > probs_[b] || (probs_[a] == probs_[b] && a < b);
    });
    // The nucleus: the fewest most probable tokens whose mass reaches top_p. With top_p = 1 the
    // sum in sorted order may fall a rounding error short of `sum`; keep then ends at the last
    // positive token, which is still a valid nucleus.
    const double target = static_cast<double>(top_p_) * sum;
    double mass = 0.0;
    std::size_t keep = 0;
    while (keep < idx_.size() && (keep == 0 || mass < target)) {
      mass += probs_[idx_[keep++]];
    }
    // A uniform draw in [0, mass) from 53 random bits: the same on every standard library.
    double r = static_cast<double>(rng_() >> 11U) * 0x1.0p-53 * mass;
    for (std::size_t i = 0; i < keep; ++i) {
      r -= probs_[idx_[i]];
      if (r < 0.0) {
        return order_[idx_[i]];
      }
    }
    return order_[idx_[keep - 1]]; // r rounded to exactly the mass: the last kept token
  }

private:
  // The first index of the maximum; throws for what operator() rejects.
  static auto checked_argmax(std::span<const float> logits) -> std::size_t {
    kvsieve::expects(!logits.empty(), kvsieve::errc::invalid_argument, "no logits to sample from");
    std::size_t best = 0;
    bool found = false;
    for (std::size_t i = 0; i < logits.size(); ++i) {
      const float x = logits[i];
      kvsieve::expects(!std::isnan(x) && x != std::numeric_limits<float>::infinity(),
                       kvsieve::errc::invalid_argument, [&] {
                         return fmt::format("the logit of token {} is {}: cannot sample", i, x);
                       });
      if (std::isfinite(x) && (!found || x > logits[best])) {
        best = i;
        found = true;
      }
    }
    kvsieve::expects(found, kvsieve::errc::invalid_argument,
                     "every logit is -inf: no token can be sampled");
    return best;
  }

  float temperature_;
  float top_p_;
  std::mt19937_64 rng_;
  std::vector<double> probs_;        // positive probabilities, unnormalised
  std::vector<std::int32_t> order_;  // token id of each entry of probs_
  std::vector<std::size_t> idx_;     // entries of probs_, most probable first
};

} // namespace llama
