// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The field's fixed eviction policies in kvsieve's normal form (docs/policies.md has the table:
/// paper, normal form, and where kvsieve's version differs). Each is an ordinary policy: use it
/// alone (ladder<P> with any profiler), in a hybrid, or as a FastGen rung.
///   streaming_llm  rule: the first n (sinks)          window: r tokens
///   h2o            window: r tokens                   budget: k, cumulative attention
///   tova           budget: k, the current step's attention (latest)
///   snapkv         rule: the last w prompt tokens and every generated one
///                  budget: k, the last w prompt rows' attention, pooled over neighbouring keys
/// PyramidKV and Ada-KV are SnapKV with per-head budgets chosen by a profiler: see
/// profile/budget_profilers.hpp.

#include <cstdint>
#include <string_view>

#include <kvsieve/policy/concepts.hpp>
#include <kvsieve/policy/hybrid.hpp>
#include <kvsieve/policy/local.hpp>

namespace kvsieve::policies {

namespace detail {
inline void check_count(std::int32_t n, std::string_view what) {
  expects(n >= 0, errc::invalid_argument,
          [&] { return fmt::format("{} must be >= 0 tokens, got {}", what, n); });
}
} // namespace detail

/// StreamingLLM (Xiao et al., ICLR 2024): attention sinks plus a recent window.
using streaming_llm = hybrid<sinks, recent>;

/// StreamingLLM with `n_sinks` sinks and a window of `window` tokens.
[[nodiscard]] inline auto make_streaming_llm(std::int32_t n_sinks = 4, std::int32_t window = 252)
    -> streaming_llm {
  return streaming_llm(sinks(n_sinks), recent(window));
}

/// H2O (Zhang et al., NeurIPS 2023): the `recent` newest tokens plus the `heavy` tokens with the
/// most accumulated attention (prompt rows included) among the rest.
class h2o {
public:
  static constexpr std::string_view name = "h2o";
  /// Throws errc::invalid_argument for a negative count.
  explicit h2o(std::int32_t heavy = 128, std::int32_t recent = 128) : heavy_(heavy), recent_(recent) {
    detail::check_count(heavy, "h2o heavy-hitter budget");
    detail::check_count(recent, "h2o recent window");
  }
  [[nodiscard]] constexpr auto keeps(token_info /*tok*/, step_context /*ctx*/) const noexcept
      -> bool {
    return false;
  }
  [[nodiscard]] constexpr auto window(step_context /*ctx*/) const noexcept -> std::int32_t {
    return recent_;
  }
  [[nodiscard]] constexpr auto budget(step_context /*ctx*/) const noexcept -> std::int32_t {
    return heavy_;
  }
  [[nodiscard]] constexpr auto ranking() const noexcept -> score_rule { return {}; }
  friend constexpr auto operator==(const h2o&, const h2o&) -> bool = default;

private:
  std::int32_t heavy_;
  std::int32_t recent_;
};
static_assert(policy<h2o>);

/// TOVA (Oren et al., 2024, "Transformers are Multi-State RNNs"): at most `capacity` tokens; when
/// a step goes over, the token the current query attends to least leaves (the new one included).
/// The prompt is cut to the `capacity` tokens its last row attends to most.
class tova {
public:
  static constexpr std::string_view name = "tova";
  /// Throws errc::invalid_argument for a negative capacity.
  explicit tova(std::int32_t capacity = 256) : capacity_(capacity) {
    detail::check_count(capacity, "tova capacity");
  }
  [[nodiscard]] constexpr auto keeps(token_info /*tok*/, step_context /*ctx*/) const noexcept
      -> bool {
    return false;
  }
  [[nodiscard]] constexpr auto budget(step_context /*ctx*/) const noexcept -> std::int32_t {
    return capacity_;
  }
  [[nodiscard]] constexpr auto ranking() const noexcept -> score_rule {
    return score_rule::latest();
  }
  friend constexpr auto operator==(const tova&, const tova&) -> bool = default;

private:
  std::int32_t capacity_;
};
static_assert(policy<tova>);

/// SnapKV (Li et al., NeurIPS 2024): the prompt's last `window` tokens (the observation window)
/// stay, and of the tokens before them the `budget` whose attention from the window's rows,
/// pooled over `kernel` neighbouring keys, is largest. Generated tokens are never evicted.
class snapkv {
public:
  static constexpr std::string_view name = "snapkv";
  /// Throws errc::invalid_argument for a negative budget, a window < 1, or an even kernel.
  explicit snapkv(std::int32_t budget = 256, std::int32_t window = 32, std::int32_t kernel = 7,
                  score_pool pool = score_pool::max)
      : budget_(budget), rank_(score_rule::observed(window, kernel, pool)) {
    detail::check_count(budget, "snapkv budget");
    expects(window >= 1, errc::invalid_argument, "snapkv observation window must be >= 1 token");
    check_rule(rank_, "snapkv");
  }
  /// The observation window (the last w prompt positions) and everything generated.
  [[nodiscard]] constexpr auto keeps(token_info tok, step_context ctx) const noexcept -> bool {
    return tok.position >= ctx.prompt_length - rank_.observe.last_rows;
  }
  [[nodiscard]] constexpr auto budget(step_context /*ctx*/) const noexcept -> std::int32_t {
    return budget_;
  }
  [[nodiscard]] constexpr auto ranking() const noexcept -> score_rule { return rank_; }
  [[nodiscard]] constexpr auto window_rows() const noexcept -> std::int32_t {
    return rank_.observe.last_rows;
  }
  friend constexpr auto operator==(const snapkv&, const snapkv&) -> bool = default;

private:
  std::int32_t budget_;
  score_rule rank_;
};
static_assert(policy<snapkv>);

} // namespace kvsieve::policies
