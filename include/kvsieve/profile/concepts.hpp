// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The `profiler` concept: a small callable from one KV head's measured candidates to a choice
/// (CUB's policy-selector idea). The cache measures every ladder candidate on the prompt
/// (candidate_scores) and asks the profiler for the index to use.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace kvsieve {

/// Every candidate of a ladder, measured on one KV head's prompt, in ladder order.
struct candidate_scores {
  std::vector<double> recovered;        ///< kept attention mass in [0, 1] (Eq. 1 as kept mass)
  std::vector<std::int32_t> kept;       ///< tokens the candidate keeps (its memory cost)
  std::vector<std::string_view> names;  ///< candidate names, for diagnostics
  [[nodiscard]] auto size() const noexcept -> std::size_t { return recovered.size(); }
};

/// A profiler P:
///  1. `p(scores) -> std::size_t`: the chosen candidate's index, < scores.size(); O(size);
///  2. copyable and equality-comparable (a value: it is part of the cache's configuration).
/// Not required: knowledge of the ladder's types (it sees measurements only).
template <class P>
concept profiler = std::copyable<P> && std::equality_comparable<P> &&
                   requires(const P& p, const candidate_scores& s) {
                     { p(s) } -> std::convertible_to<std::size_t>;
                   };

} // namespace kvsieve
