// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Measures every candidate of a ladder on one KV head: keep set (the batch form, select_kept),
/// its cost and its recovered mass, with the statistics of the head's query heads combined by
/// mean (DEFAULT) or worst case (fastgen-spec §6 item 9).

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include <kvsieve/core/group.hpp>
#include <kvsieve/policy/ladder.hpp>
#include <kvsieve/policy/select.hpp>
#include <kvsieve/profile/attention_stats.hpp>
#include <kvsieve/profile/concepts.hpp>

namespace kvsieve {

/// The distinct windows (0 < w < L) that the ladder's candidates use at the end of a prompt of
/// length L: what head_stats must accumulate.
template <candidate_ladder Ladder>
[[nodiscard]] auto ladder_windows(const Ladder& ladder, std::int32_t length)
    -> std::vector<std::int32_t> {
  std::vector<std::int32_t> out;
  for (std::size_t i = 0; i < Ladder::size; ++i) {
    ladder.visit(i, [&](const auto& c) {
      const std::int32_t w = window_of(c, step_context{length, length});
      if (w > 0 && w < length && std::find(out.begin(), out.end(), w) == out.end()) {
        out.push_back(w);
      }
    });
  }
  return out;
}

/// The group's combined per-token score: mean or max over the query heads' score[j].
inline void combine_scores(std::span<const head_stats> group, group_reduce reduce,
                           std::vector<double>& out) {
  const auto n = static_cast<std::size_t>(group.front().length());
  out.assign(n, reduce == group_reduce::mean ? 0.0 : -1.0);
  for (const auto& h : group) {
    const auto s = h.score();
    for (std::size_t j = 0; j < n; ++j) {
      out[j] = reduce == group_reduce::mean ? out[j] + s[j] : std::max(out[j], s[j]);
    }
  }
  if (reduce == group_reduce::mean) {
    const auto g = static_cast<double>(group.size());
    for (auto& x : out) {
      x /= g;
    }
  }
}

/// Fills `out` with every candidate's cost and recovered mass for one KV head.
/// `scores` is the group's combined score (combine_scores); `reasons` is scratch of length L.
template <candidate_ladder Ladder>
void measure_candidates(const Ladder& ladder, std::span<const head_stats> group,
                        group_reduce reduce, std::span<const token_class> classes,
                        std::span<const double> scores, std::int32_t n_sinks,
                        std::vector<keep_reason>& reasons, std::vector<std::int32_t>& scratch,
                        candidate_scores& out) {
  const auto length = static_cast<std::int32_t>(classes.size());
  out.recovered.assign(Ladder::size, 0.0);
  out.kept.assign(Ladder::size, 0);
  out.names.assign(Ladder::size, {});
  reasons.resize(classes.size());
  for (std::size_t i = 0; i < Ladder::size; ++i) {
    ladder.visit(i, [&](const auto& c) {
      out.names[i] = Ladder::name(i);
      out.kept[i] = select_kept(c, classes, scores, n_sinks, std::span(reasons), scratch);
      const std::int32_t w = std::clamp(window_of(c, step_context{length, length}), 0, length);
      double rec = reduce == group_reduce::mean ? 0.0 : 1.0;
      for (const auto& h : group) {
        const double r = h.recovered(reasons, w);
        rec = reduce == group_reduce::mean ? rec + r : std::min(rec, r);
      }
      out.recovered[i] =
          reduce == group_reduce::mean ? rec / static_cast<double>(group.size()) : rec;
    });
  }
}

} // namespace kvsieve
