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
///           window keeps stay, ranked by the policy's `ranking()` hook (policy/ranking.hpp:
///           accumulated attention by default; TOVA's latest step, SnapKV's observation window).
/// The cache derives both the batch form (which prompt tokens to keep) and the incremental decode
/// form (what leaves after one append) from these three parts, so a user policy is a few lines
/// and the decode bookkeeping stays O(1) per head (docs/design.md, "normal form").
/// A union of normal forms is a normal form (rule OR, window max, at most one budget): see
/// hybrid.hpp.

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include <fmt/format.h>

#include <kvsieve/core/error.hpp>
#include <kvsieve/core/token_class.hpp>
#include <kvsieve/policy/ranking.hpp>

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

/// A policy (see the file comment for the normal form).
///  1. `P::name`: a `static constexpr` name, convertible to std::string_view, for reports and the
///     per-head policy map (a non-static or non-constant `name` fails: ladder reads it at
///     compile time, without an object);
///  2. `p.keeps(token_info, step_context) -> bool`: the rule part; O(1); must not depend on
///     ctx.length for prompt tokens in any way the policy expects to be re-asked (it is not).
///  3. copyable: the cache stores one instance per ladder candidate.
///  4. each optional hook below is either absent or declared exactly as shown: a member with a
///     hook's name but another signature (missing argument, not const, other return type) fails
///     here, and ladder/hybrid reject it with a static_assert naming the member, rather than the
///     cache silently treating it as absent ("no window", "no budget").
/// Optional (`has_window`, `has_budget`, `has_ranking`):
///  - `std::int32_t p.window(step_context) const` (default 0): the recent-token window;
///  - `std::int32_t p.budget(step_context) const` (default 0): the score-ranked budget;
///  - `R p.ranking() const`, R modelling `score_ranking` (default score_rule{}: cumulative): how
///    the budget ranks tokens and where its prefill score comes from (policy/ranking.hpp).
/// Not required: default constructibility, device execution. Not detectable: a misspelt hook
/// name (`windw`) is just another member.
namespace detail {
/// `&P::name` is an ordinary pointer: `name` is a static member (a non-static data member would
/// pass `{ P::name }` alone, which is an unevaluated operand).
template <class P>
concept static_name = requires { requires !std::is_member_pointer_v<decltype(&P::name)>; };
} // namespace detail

template <class P>
concept has_policy_name = detail::static_name<P> && requires {
  { P::name } -> std::convertible_to<std::string_view>;
  typename std::integral_constant<std::size_t, std::string_view(P::name).size()>; // constant
};

template <class P>
concept has_keep_rule = requires(const P& p, token_info tok, step_context ctx) {
  { p.keeps(tok, ctx) } -> std::same_as<bool>;
};

/// The optional hooks, declared as documented.
template <class P>
concept has_window = requires(const P& p, step_context ctx) {
  { p.window(ctx) } -> std::same_as<std::int32_t>;
};
template <class P>
concept has_budget = requires(const P& p, step_context ctx) {
  { p.budget(ctx) } -> std::same_as<std::int32_t>;
};
template <class P>
concept has_ranking = requires(const P& p) {
  { p.ranking() } -> score_ranking;
};

namespace detail {
// Name probes: true when P has a member (function, overload set, template, data member, static
// or not, public or not) called `window`/`budget`/`ranking`, whatever its signature. A class
// deriving from P and from a decoy with that member makes the name ambiguous exactly when P
// declares it (a requires-expression on the signature cannot tell "absent" from "mis-declared").
// A final class cannot be derived from; for it only a single, non-overloaded member is seen.
struct window_decoy {
  int window;
};
struct budget_decoy {
  int budget;
};
struct ranking_decoy {
  int ranking;
};
struct name_decoy {
  int name;
};
template <class P>
struct window_probe : P, window_decoy {};
template <class P>
struct budget_probe : P, budget_decoy {};
template <class P>
struct ranking_probe : P, ranking_decoy {};
template <class P>
struct name_probe : P, name_decoy {};

template <class P>
concept derivable = std::is_class_v<P> && !std::is_final_v<P>;

template <class P>
concept names_window = (derivable<P> && !requires { &window_probe<P>::window; }) ||
                       (std::is_class_v<P> && requires { &P::window; });
template <class P>
concept names_budget = (derivable<P> && !requires { &budget_probe<P>::budget; }) ||
                       (std::is_class_v<P> && requires { &P::budget; });
template <class P>
concept names_ranking = (derivable<P> && !requires { &ranking_probe<P>::ranking; }) ||
                        (std::is_class_v<P> && requires { &P::ranking; });
template <class P>
concept names_policy_name = (derivable<P> && !requires { &name_probe<P>::name; }) ||
                            (std::is_class_v<P> && requires { &P::name; });
} // namespace detail

/// Each optional hook absent, or present with the documented signature (requirement 4).
template <class P>
concept well_formed_window = !detail::names_window<P> || has_window<P>;
template <class P>
concept well_formed_budget = !detail::names_budget<P> || has_budget<P>;
template <class P>
concept well_formed_ranking = !detail::names_ranking<P> || has_ranking<P>;

template <class P>
concept policy = std::copyable<P> && has_policy_name<P> && has_keep_rule<P> &&
                 well_formed_window<P> && well_formed_budget<P> && well_formed_ranking<P>;

namespace detail {
/// One static_assert per optional hook, for ladder and hybrid: a member with a hook's name but
/// not its signature is an error naming the member, never "no window" / "no budget".
template <class P>
struct check_optional_hooks : std::true_type {
  static_assert(well_formed_window<P>,
                "kvsieve policy: member `window` is not `std::int32_t window(kvsieve::step_context) "
                "const`; fix its signature (it would otherwise be ignored as 'no window')");
  static_assert(well_formed_budget<P>,
                "kvsieve policy: member `budget` is not `std::int32_t budget(kvsieve::step_context) "
                "const`; fix its signature (it would otherwise be ignored as 'no budget')");
  static_assert(well_formed_ranking<P>,
                "kvsieve policy: member `ranking` is not `R ranking() const` returning a "
                "kvsieve::score_ranking (e.g. kvsieve::score_rule); fix its signature (it would "
                "otherwise be ignored as 'cumulative')");
};

/// `P::name` when P has a valid one, else "?" (keeps a failed check from cascading).
template <class P>
[[nodiscard]] consteval auto name_or_placeholder() -> std::string_view {
  if constexpr (has_policy_name<P>) {
    return std::string_view(P::name);
  } else {
    return "?";
  }
}
} // namespace detail

/// The window part of `p` at `ctx`, 0 when `p` has none.
template <policy P>
[[nodiscard]] constexpr auto window_of(const P& p, step_context ctx) -> std::int32_t {
  if constexpr (has_window<P>) {
    return p.window(ctx);
  } else {
    return 0;
  }
}

/// The budget part of `p` at `ctx`, 0 when `p` has none.
template <policy P>
[[nodiscard]] constexpr auto budget_of(const P& p, step_context ctx) -> std::int32_t {
  if constexpr (has_budget<P>) {
    return p.budget(ctx);
  } else {
    return 0;
  }
}

/// The ranking of `p`'s budget: its `ranking()`, or score_rule{} (cumulative) when it has none.
template <policy P>
[[nodiscard]] constexpr auto ranking_of(const P& p) {
  if constexpr (has_ranking<P>) {
    return p.ranking();
  } else {
    return score_rule{};
  }
}

/// The prefill score source of `p`'s budget (plain for a policy without a budget).
template <policy P>
[[nodiscard]] constexpr auto source_of(const P& p) -> score_source {
  if constexpr (has_budget<P>) {
    return ranking_of(p).source();
  } else {
    return score_source{};
  }
}

/// True when some part of `P` reads accumulated attention scores (it has a budget).
template <class P>
inline constexpr bool uses_scores = has_budget<P>;

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

/// Throws errc::invalid_argument unless valid_rule(rule).
inline void check_rule(const score_rule& rule, std::string_view what) {
  expects(valid_rule(rule), errc::invalid_argument, [&] {
    return fmt::format("{}: decay must be in (0, 1], the observation window >= 0 and the pooling "
                       "kernel odd and >= 1 (got decay {}, window {}, kernel {})",
                       what, rule.decay, rule.observe.last_rows, rule.observe.kernel);
  });
}

/// The length a ratio applies to at `ctx` under `base`.
[[nodiscard]] constexpr auto base_length(length_base base, step_context ctx) -> std::int32_t {
  return base == length_base::current ? ctx.length : ctx.prompt_length;
}

} // namespace kvsieve
