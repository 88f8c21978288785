// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// How a budget ranks tokens: the `score_ranking` hook and kvsieve's built-in rankings.
/// A token's score starts as a weighted sum over prompt rows of the attention it received (the
/// `score_source`, accumulated in the prefill's streaming pass: never an L x L matrix) and is
/// updated once per decode step from that step's probability (`update`); the budget keeps the
/// tokens with the largest `key`. Everything here is constexpr and usable from device code.
///   cumulative  source: every row          update: s + p            key: s   (FastGen, H2O)
///   mean        source: every row          update: s + p            key: s / (t - pos)
///   latest      source: last row           update: p                key: s   (TOVA)
///   decayed(g)  source: row i x g^(L-1-i)  update: g s + p          key: s
///   observed(w) source: last w rows, max/avg pooled over keys; then cumulative (SnapKV)

#include <concepts>
#include <cstdint>
#include <string_view>

namespace kvsieve {

/// The DEFAULT and the OPTIONS of fastgen-spec §6 item 4, plus the field's other rankings.
enum class score_mode : std::uint8_t {
  cumulative, ///< DEFAULT: raw sum of attention probabilities received, prompt rows included
  mean,       ///< OPTION: that sum divided by the number of queries that could see the token
  latest,     ///< the current step's probability alone (TOVA)
  decayed,    ///< exponentially decayed sum: older attention counts less
};

[[nodiscard]] constexpr auto to_string(score_mode m) noexcept -> std::string_view {
  switch (m) {
  case score_mode::mean:
    return "mean";
  case score_mode::latest:
    return "latest";
  case score_mode::decayed:
    return "decayed";
  default:
    return "cumulative";
  }
}

/// Pooling of a prefill score over neighbouring keys (SnapKV's clustering step).
enum class score_pool : std::uint8_t { none, max, avg };

/// Which prompt rows a token's prefill score sums, and how. Plain data: the cache accumulates
/// every distinct source its ladder uses in the one streaming pass, and can compare them.
struct score_source {
  std::int32_t last_rows = 0;       ///< 0: every prompt row; w > 0: only the last w (observation)
  float decay = 1.0F;               ///< row i weighs decay^(L - 1 - i); 1: every row weighs 1
  score_pool pool = score_pool::none;
  std::int32_t kernel = 1;          ///< pooling width (odd), centred, zero-padded at the edges
  /// With last_rows = w > 0, pooling runs over the keys before the window, [0, L - w), as
  /// SnapKV's does (the window's own keys are kept anyway and never ranked).
  friend constexpr auto operator==(const score_source&, const score_source&) -> bool = default;
  [[nodiscard]] constexpr auto is_plain() const noexcept -> bool { return *this == score_source{}; }
};

/// A ranking R (the budget's scoring hook):
///  1. `r.source() -> score_source`: the prefill score;
///  2. `r.update(score, p) -> float`: the score after a decode step that gave the token
///     probability p (combined over the query heads of its group);
///  3. `r.key(score, position, length) -> double`: larger stays; ties go to the newer token
///     (the score is a double: prefill sums are kept in double until they are stored);
///  4. copyable, and every member usable in a constant expression and on the device.
/// Not required: state across steps (the score is the state; it is stored beside K and V).
template <class R>
concept score_ranking =
    std::copyable<R> && requires(const R& r, float score, float p, double total,
                                 std::int32_t position, std::int32_t length) {
      { r.source() } -> std::same_as<score_source>;
      { r.update(score, p) } -> std::same_as<float>;
      { r.key(total, position, length) } -> std::same_as<double>;
    };

/// kvsieve's built-in ranking, chosen at run time (a `score_mode` converts to it). Users with
/// another rule write their own type modelling `score_ranking` (docs/policies.md shows one).
struct score_rule {
  score_mode mode = score_mode::cumulative;
  float decay = 1.0F;  ///< decayed: the factor g in (0, 1]
  score_source observe; ///< cumulative / mean: rows and pooling of the prefill score

  constexpr score_rule() = default;
  constexpr score_rule(score_mode m) noexcept : mode(m) {} // NOLINT: implicit on purpose

  /// TOVA (Oren et al. 2024): the current step's attention alone; at prefill, the last row.
  [[nodiscard]] static constexpr auto latest() noexcept -> score_rule {
    return score_rule(score_mode::latest);
  }
  /// Decayed sum with factor g in (0, 1] (g = 1 is cumulative).
  [[nodiscard]] static constexpr auto decayed(float g) noexcept -> score_rule {
    score_rule r(score_mode::decayed);
    r.decay = g;
    return r;
  }
  /// SnapKV (Li et al. 2024): the last `window` prompt rows, pooled over `kernel` neighbouring
  /// keys; accumulated like cumulative afterwards.
  [[nodiscard]] static constexpr auto observed(std::int32_t window, std::int32_t kernel = 7,
                                               score_pool pool = score_pool::max) noexcept
      -> score_rule {
    score_rule r;
    r.observe = {window, 1.0F, kernel > 1 ? pool : score_pool::none, kernel};
    return r;
  }

  [[nodiscard]] constexpr auto source() const noexcept -> score_source {
    switch (mode) {
    case score_mode::latest:
      return {1, 1.0F, score_pool::none, 1};
    case score_mode::decayed:
      return {0, decay, score_pool::none, 1};
    default:
      return observe;
    }
  }
  [[nodiscard]] constexpr auto update(float score, float p) const noexcept -> float {
    switch (mode) {
    case score_mode::latest:
      return p;
    case score_mode::decayed:
      return decay * score + p;
    default:
      return score + p;
    }
  }
  [[nodiscard]] constexpr auto key(double score, std::int32_t position,
                                   std::int32_t length) const noexcept -> double {
    return mode == score_mode::mean ? score / static_cast<double>(length - position) : score;
  }
  friend constexpr auto operator==(const score_rule&, const score_rule&) -> bool = default;
};
static_assert(score_ranking<score_rule>);

/// Throws nothing; true when the rule's parameters are usable (decay in (0, 1], window >= 0,
/// odd kernel >= 1). Policies check it at construction.
[[nodiscard]] constexpr auto valid_rule(const score_rule& r) noexcept -> bool {
  const auto& o = r.observe;
  return r.decay > 0.0F && r.decay <= 1.0F && o.last_rows >= 0 && o.kernel >= 1 &&
         o.kernel % 2 == 1;
}

} // namespace kvsieve
