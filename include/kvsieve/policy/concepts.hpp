// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The `policy` concept and the small vocabulary policies are written in.
///
/// A policy is written in a normal form of three parts, each optional but the first:
///   rule    `keeps(token, ctx)`: the token stays because of what it is (class, position).
///           Decided once, when the token arrives (at prefill for prompt tokens, at its own decode
///           step for generated ones), and never asked again. (FastGen special, punctuation.)
///   window  `window(ctx)`: the w most recent tokens stay. (FastGen local.)
///   budget  `budget(ctx)`: the k highest-scoring tokens among those that neither the rule nor the
///           window keeps stay; the score is the accumulated attention. (FastGen frequent.)
/// The cache derives both the batch form (which prompt tokens to keep) and the incremental decode
/// form (what leaves after one append) from these three parts, so a user policy is a few lines
/// and the decode bookkeeping stays O(1) per head (docs/design.md, "normal form").
/// A union of normal forms is a normal form (rule OR, window max, budget sum): see hybrid.hpp.

#include <cmath>
#include <concepts>
#include <cstdint>
#include <string_view>

#include <fmt/format.h>

#include <kvsieve/core/error.hpp>
#include <kvsieve/core/token_class.hpp>

namespace kvsieve {

/// What a rule may look at: the token's absolute position (0-based) and its class bits.
struct token_info {
  std::int32_t position = 0;
  token_class cls = token_class::none;
};

/// When the question is asked. `length` is t, the number of tokens seen so far including the
/// newest one (at the end of prefill, t = L); `prompt_length` is L.
struct step_context {
  std::int32_t length = 0;
  std::int32_t prompt_length = 0;
};

/// Which length a ratio is taken of (fastgen-spec §6, items 2 and 3).
enum class length_base {
  current, ///< DEFAULT: ceil(r * t), growing with generation
  prompt,  ///< OPTION: fixed at ceil(r * L)
};

/// How the budget part ranks tokens (fastgen-spec §6, item 4).
enum class score_mode {
  cumulative, ///< DEFAULT: raw sum of attention probabilities received, prompt rows included
  mean,       ///< OPTION: that sum divided by the number of queries that could see the token
};

/// A policy (see the file comment for the normal form).
///  1. `P::name`: a static name for reports and the per-head policy map.
///  2. `p.keeps(token_info, step_context) -> bool`: the rule part; O(1); must not depend on
///     ctx.length for prompt tokens in any way the policy expects to be re-asked (it is not).
///  3. copyable: the cache stores one instance per ladder candidate.
/// Optional, detected where used:
///  - `p.window(step_context) -> std::int32_t` (default 0): the recent-token window;
///  - `p.budget(step_context) -> std::int32_t` (default 0): the score-ranked budget;
///  - `p.ranking() -> score_mode` (default cumulative): how the budget ranks tokens.
/// Not required: default constructibility, device execution.
template <class P>
concept has_policy_name = requires {
  { P::name } -> std::convertible_to<std::string_view>;
};

template <class P>
concept has_keep_rule = requires(const P& p, token_info tok, step_context ctx) {
  { p.keeps(tok, ctx) } -> std::same_as<bool>;
};

template <class P>
concept policy = std::copyable<P> && has_policy_name<P> && has_keep_rule<P>;

/// The window part of `p` at `ctx`, 0 when `p` has none.
template <policy P>
[[nodiscard]] constexpr auto window_of(const P& p, step_context ctx) -> std::int32_t {
  if constexpr (requires { { p.window(ctx) } -> std::convertible_to<std::int32_t>; }) {
    return p.window(ctx);
  } else {
    return 0;
  }
}

/// The budget part of `p` at `ctx`, 0 when `p` has none.
template <policy P>
[[nodiscard]] constexpr auto budget_of(const P& p, step_context ctx) -> std::int32_t {
  if constexpr (requires { { p.budget(ctx) } -> std::convertible_to<std::int32_t>; }) {
    return p.budget(ctx);
  } else {
    return 0;
  }
}

template <policy P>
[[nodiscard]] constexpr auto ranking_of(const P& p) -> score_mode {
  if constexpr (requires { { p.ranking() } -> std::same_as<score_mode>; }) {
    return p.ranking();
  } else {
    return score_mode::cumulative;
  }
}

/// True when some part of `P` reads accumulated attention scores.
template <class P>
inline constexpr bool uses_scores = requires(const P& p, step_context ctx) { p.budget(ctx); };

/// ceil(ratio * n), robust to the binary rounding of ratios such as 0.3 (0.3 * 10 must be 3).
[[nodiscard]] constexpr auto ratio_count(double ratio, std::int32_t n) -> std::int32_t {
  const double x = ratio * static_cast<double>(n);
  auto c = static_cast<std::int32_t>(x);
  if (static_cast<double>(c) < x - 1e-9 * (1.0 + x)) {
    ++c;
  }
  return c;
}

/// Throws errc::invalid_argument unless 0 <= ratio <= 1 (and not NaN).
inline void check_ratio(double ratio, std::string_view what) {
  expects(ratio >= 0.0 && ratio <= 1.0, errc::invalid_argument,
          [&] { return fmt::format("{} must be in [0, 1], got {}", what, ratio); });
}

/// The length a ratio applies to at `ctx` under `base`.
[[nodiscard]] constexpr auto base_length(length_base base, step_context ctx) -> std::int32_t {
  return base == length_base::current ? ctx.length : ctx.prompt_length;
}

} // namespace kvsieve
