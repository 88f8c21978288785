// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// The batch form of every policy: which of a prompt's L tokens a policy keeps at the end of
/// prefill. Used by the cache to compress and by the profiler to score candidates, so the set the
/// profiler measures is exactly the set the compressed cache holds (fastgen-spec §1).

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/core/error.hpp>
#include <kvsieve/policy/concepts.hpp>

namespace kvsieve {

/// Why a token stays. Packed in one byte per token (store metadata `flags`).
enum class keep_reason : std::uint8_t {
  evicted = 0, ///< no part keeps it
  rule = 1,    ///< the rule part (or an attention sink)
  window = 2,  ///< inside the recent window
  budget = 3,  ///< among the budget's top-k by score
};

/// True when token a outranks token b: higher key, and on a tie the newer (older leaves first).
[[nodiscard]] constexpr auto outranks(double key_a, std::int32_t pos_a, double key_b,
                                      std::int32_t pos_b) noexcept -> bool {
  return key_a > key_b || (key_a == key_b && pos_a > pos_b);
}

/// Marks in `out[j]` why prompt token j stays under policy `p` with `n_sinks` attention sinks.
/// `scores[j]` is token j's prefill score under p's ranking source (only read when p has a
/// budget). `budget` >= 0 replaces p's own budget (a profiler's per-head budget); -1 keeps it.
/// Returns the number of kept tokens; `scratch` then holds every token the budget ranked (those
/// no sink, rule or window keeps), kept ones first. O(L) expected (nth_element for the budget).
/// Throws errc::shape_mismatch when the spans disagree in length, errc::invalid_argument when
/// the prompt is empty.
template <policy P, class Score>
auto select_kept(const P& p, std::span<const token_class> classes, std::span<const Score> scores,
                 std::int32_t n_sinks, std::span<keep_reason> out,
                 std::vector<std::int32_t>& scratch, std::int32_t budget_override = -1)
    -> std::int32_t {
  const auto length = static_cast<std::int32_t>(classes.size());
  expects(length > 0, errc::invalid_argument, "empty prompt: nothing to select from");
  expects(out.size() == classes.size(), errc::shape_mismatch, [&] {
    return fmt::format("keep mask has {} entries for {} tokens", out.size(), classes.size());
  });
  const step_context ctx{length, length};
  const std::int32_t window = std::clamp(window_of(p, ctx), 0, length);
  const std::int32_t first_in_window = length - window;
  std::int32_t kept = 0;
  scratch.clear();
  for (std::int32_t j = 0; j < length; ++j) {
    const token_info tok{j, classes[static_cast<std::size_t>(j)]};
    keep_reason r = keep_reason::evicted;
    if (j < n_sinks || p.keeps(tok, ctx)) {
      r = keep_reason::rule;
    } else if (j >= first_in_window) {
      r = keep_reason::window;
    } else {
      scratch.push_back(j);
    }
    out[static_cast<std::size_t>(j)] = r;
    kept += r != keep_reason::evicted ? 1 : 0;
  }
  const std::int32_t own = budget_override >= 0 ? budget_override : budget_of(p, ctx);
  const std::int32_t budget = std::min(std::max(own, 0), static_cast<std::int32_t>(scratch.size()));
  if (budget > 0) {
    expects(scores.size() == classes.size(), errc::shape_mismatch, [&] {
      return fmt::format("scores have {} entries for {} tokens", scores.size(), classes.size());
    });
    const auto rank = ranking_of(p);
    auto key = [&](std::int32_t j) {
      return rank.key(static_cast<double>(scores[static_cast<std::size_t>(j)]), j, length);
    };
    auto better = [&](std::int32_t a, std::int32_t b) { return outranks(key(a), a, key(b), b); };
    auto nth = scratch.begin() + budget;
    if (nth != scratch.end()) {
      std::nth_element(scratch.begin(), nth - 1, scratch.end(), better);
    }
    for (auto it = scratch.begin(); it != nth; ++it) {
      out[static_cast<std::size_t>(*it)] = keep_reason::budget;
    }
    kept += budget;
  }
  return kept;
}

} // namespace kvsieve
