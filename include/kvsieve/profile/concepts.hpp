// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The `profiler` concept: a small callable from measured candidates to a choice (CUB's
/// policy-selector idea). The cache measures every ladder candidate of every KV head on the
/// prompt (candidate_scores) and asks the profiler which candidate each head uses and, for a
/// candidate with a budget, optionally how many tokens that head's budget holds.
/// Two forms:
///  - per head:   `p(scores)`, one KV head at a time (FastGen, PyramidKV's depth schedule);
///  - layer-wide: `p.choose_layer(heads, choices)`, every KV head of a layer at once, before the
///    layer compresses (Ada-KV's allocation of a layer's budget across heads, byte budgets).

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace kvsieve {

/// Where a KV head is: what a profiler may schedule by (PyramidKV's depth, a replayed file).
struct head_context {
  std::int32_t seq = 0;
  std::int32_t layer = 0;
  std::int32_t kv_head = 0;
  std::int32_t n_layer = 1;
  std::int32_t n_head_kv = 1;
  std::int32_t prompt_length = 0;
};

/// Every candidate of a ladder, measured on one KV head's prompt, in ladder order.
struct candidate_scores {
  std::vector<double> recovered;        ///< kept attention mass in [0, 1] (Eq. 1 as kept mass)
  std::vector<std::int32_t> kept;       ///< tokens the candidate keeps (its memory cost)
  std::vector<std::string_view> names;  ///< candidate names, for diagnostics
  std::vector<std::int32_t> budgets;    ///< each candidate's own budget at t = L; -1: it has none
  /// [candidate]: the rank keys (ranking.key, larger stays) of the tokens the candidate's budget
  /// ranks, i.e. those no rule, sink or window keeps, in no particular order; empty without a
  /// budget. What a profiler needs to move budget between heads (Ada-KV).
  std::vector<std::vector<double>> budget_keys;
  head_context context;
  [[nodiscard]] auto size() const noexcept -> std::size_t { return recovered.size(); }
};

/// A profiler's answer for one KV head: the candidate, and optionally that head's budget.
struct head_choice {
  std::size_t index = 0;
  /// -1: the candidate's own budget(ctx). k >= 0: this head's budget is k tokens for the rest of
  /// the sequence (prefill and decode); only for a candidate with a budget.
  std::int32_t budget = -1;
  friend constexpr auto operator==(const head_choice&, const head_choice&) -> bool = default;
};

/// Per-head form: `p(scores)` returns an index or a head_choice.
template <class P>
concept head_profiler = requires(const P& p, const candidate_scores& s) {
  { p(s) } -> std::convertible_to<std::size_t>;
} || requires(const P& p, const candidate_scores& s) {
  { p(s) } -> std::same_as<head_choice>;
};

/// Layer-wide form: `p.choose_layer(heads, out)` fills out[h] for every KV head h of the layer
/// (heads.size() == out.size() == n_head_kv, each heads[h].context names its head).
template <class P>
concept layer_profiler =
    requires(const P& p, std::span<const candidate_scores> heads, std::span<head_choice> out) {
      p.choose_layer(heads, out);
    };

/// A profiler P:
///  1. the per-head or the layer-wide form (if both, the layer-wide one is used);
///  2. choices in range: an index < the ladder's size; a budget only for a candidate that has
///     one (the cache throws errc::out_of_range / errc::invalid_argument otherwise);
///  3. copyable and equality-comparable (a value: it is part of the cache's configuration).
/// Not required: knowledge of the ladder's types (it sees measurements only).
template <class P>
concept profiler =
    std::copyable<P> && std::equality_comparable<P> && (head_profiler<P> || layer_profiler<P>);

/// A per-head profiler's answer as a head_choice.
template <head_profiler P>
[[nodiscard]] auto choose_head(const P& p, const candidate_scores& s) -> head_choice {
  if constexpr (requires { { p(s) } -> std::same_as<head_choice>; }) {
    return p(s);
  } else {
    return head_choice{static_cast<std::size_t>(p(s)), -1};
  }
}

} // namespace kvsieve
