// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Profilers that give each KV head its own budget (profile/concepts.hpp, head_choice):
///   pyramid_profiler  PyramidKV (Cai et al., 2024): budgets shrink with depth, an arithmetic
///                     sequence whose mean over the layers is the given budget (per head form);
///   adakv_profiler    Ada-KV (Feng et al., 2024): a layer's total budget goes to the heads whose
///                     tokens score highest, with a floor per head (layer-wide form).
/// Both choose the ladder's first candidate that has a budget (use them with ladder<snapkv>, as
/// the papers do, or any budgeted policy) and rank by that candidate's own keys.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/core/error.hpp>
#include <kvsieve/profile/concepts.hpp>

namespace kvsieve {

namespace detail {
/// The first candidate with a budget. Throws errc::invalid_argument when none has one.
[[nodiscard]] inline auto first_budgeted(const candidate_scores& s, std::string_view who)
    -> std::size_t {
  for (std::size_t i = 0; i < s.budgets.size(); ++i) {
    if (s.budgets[i] >= 0) {
      return i;
    }
  }
  raise(errc::invalid_argument,
        fmt::format("{}: the ladder has no candidate with a budget to size", who));
}
} // namespace detail

/// PyramidKV's schedule, as its reference code computes it. With B the mean budget (the paper's
/// capacity minus its observation window w), L the prompt length and n = L - w the tokens the
/// budget ranks:
///   L < B + w:   nothing is evicted (budget n);
///   L < 2B:      every layer gets B (the reference code's uniform fallback);
///   otherwise:   lo = B / beta, hi = 2B - lo (if hi >= n: hi = n, lo = 2B - hi), and layer l of
///                N gets hi - l * floor((hi - lo) / (N - 1)): early layers keep most.
class pyramid_profiler {
public:
  /// Throws errc::invalid_argument unless budget >= 0 and beta >= 1.
  explicit pyramid_profiler(std::int32_t budget = 256, std::int32_t beta = 20)
      : budget_(budget), beta_(beta) {
    expects(budget >= 0 && beta >= 1, errc::invalid_argument, [&] {
      return fmt::format("pyramid_profiler: budget must be >= 0 and beta >= 1, got {} and {}",
                         budget, beta);
    });
  }

  /// The budget of layer `layer` of `n_layer` for a prompt of `length` tokens of which the
  /// budget ranks `n`.
  [[nodiscard]] auto layer_budget(std::int32_t layer, std::int32_t n_layer, std::int64_t length,
                                  std::int64_t n) const noexcept -> std::int32_t {
    const std::int64_t b = budget_;
    const std::int64_t w = length - n;
    if (length < b + w) {
      return static_cast<std::int32_t>(n);
    }
    if (length < 2 * b || n_layer <= 1) {
      return budget_;
    }
    std::int64_t lo = b / beta_;
    std::int64_t hi = 2 * b - lo;
    if (hi >= n) {
      hi = n;
      lo = 2 * b - hi;
    }
    const std::int64_t span = hi - lo;
    const std::int64_t layers = n_layer - 1;
    const std::int64_t step = span / layers - (span % layers != 0 && span < 0 ? 1 : 0); // floor
    return static_cast<std::int32_t>(
        std::clamp<std::int64_t>(hi - static_cast<std::int64_t>(layer) * step, 0, n));
  }

  [[nodiscard]] auto operator()(const candidate_scores& s) const -> head_choice {
    const std::size_t i = detail::first_budgeted(s, "pyramid_profiler");
    return {i, layer_budget(s.context.layer, s.context.n_layer, s.context.prompt_length,
                            static_cast<std::int64_t>(s.budget_keys[i].size()))};
  }
  [[nodiscard]] auto budget() const noexcept -> std::int32_t { return budget_; }
  friend auto operator==(const pyramid_profiler&, const pyramid_profiler&) -> bool = default;

private:
  std::int32_t budget_;
  std::int32_t beta_;
};
static_assert(profiler<pyramid_profiler>);

/// Ada-KV's allocation for one layer of H heads and a mean budget B: each head first gets its
/// floor(alpha * B) best tokens; the remaining H * B - H * floor(alpha * B) go to the best of all
/// the heads' other tokens together (larger key first; on a tie the lower head). A head's budget is its floor plus its share; heads whose ranked tokens are fewer
/// than that keep them all.
class adakv_profiler {
public:
  /// Throws errc::invalid_argument unless budget >= 0 and 0 <= alpha <= 1.
  explicit adakv_profiler(std::int32_t budget = 256, double alpha = 0.2)
      : budget_(budget), alpha_(alpha) {
    expects(budget >= 0 && alpha >= 0.0 && alpha <= 1.0, errc::invalid_argument, [&] {
      return fmt::format("adakv_profiler: budget must be >= 0 and alpha in [0, 1], got {} and {}",
                         budget, alpha);
    });
  }

  void choose_layer(std::span<const candidate_scores> heads, std::span<head_choice> out) const {
    expects(heads.size() == out.size(), errc::shape_mismatch,
            "adakv_profiler: one choice per head");
    const auto floor_n = static_cast<std::size_t>(alpha_ * static_cast<double>(budget_));
    std::vector<std::pair<double, std::size_t>> rest; // (key, head) beyond each head's floor
    std::vector<double> keys;
    std::size_t floors = 0;
    for (std::size_t h = 0; h < heads.size(); ++h) {
      const std::size_t i = detail::first_budgeted(heads[h], "adakv_profiler");
      keys.assign(heads[h].budget_keys[i].begin(), heads[h].budget_keys[i].end());
      std::sort(keys.begin(), keys.end(), std::greater<>());
      const std::size_t own = std::min(floor_n, keys.size());
      floors += own;
      out[h] = {i, static_cast<std::int32_t>(own)};
      for (std::size_t j = own; j < keys.size(); ++j) {
        rest.emplace_back(keys[j], h);
      }
    }
    const std::size_t total = heads.size() * static_cast<std::size_t>(budget_);
    const std::size_t share = std::min(rest.size(), total - std::min(total, floors));
    std::stable_sort(rest.begin(), rest.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (std::size_t j = 0; j < share; ++j) {
      ++out[rest[j].second].budget;
    }
  }
  [[nodiscard]] auto budget() const noexcept -> std::int32_t { return budget_; }
  friend auto operator==(const adakv_profiler&, const adakv_profiler&) -> bool = default;

private:
  std::int32_t budget_;
  double alpha_;
};
static_assert(profiler<adakv_profiler>);

} // namespace kvsieve
