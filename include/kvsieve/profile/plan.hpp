// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// FastGen Algorithm 1 for one KV head, from its query heads' statistics to a plan: the chosen
/// candidate (Eq. 2), every candidate's recovered mass (Eq. 1), why each prompt token stays, and
/// where the recent window starts. The host and CUDA caches both compress from a plan, so the
/// two backends cannot disagree on what FastGen keeps (only on the statistics' rounding).

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/core/error.hpp>
#include <kvsieve/core/group.hpp>
#include <kvsieve/policy/ladder.hpp>
#include <kvsieve/policy/select.hpp>
#include <kvsieve/profile/attention_stats.hpp>
#include <kvsieve/profile/candidates.hpp>
#include <kvsieve/profile/concepts.hpp>

namespace kvsieve {

struct head_plan {
  std::size_t choice = 0;            ///< ladder index the profiler chose
  std::vector<double> recovered;     ///< recovered mass of every candidate, ladder order
  std::vector<keep_reason> reasons;  ///< [L]: why prompt token j stays (evicted: it does not)
  std::vector<double> scores;        ///< [L]: the group's combined score, each token's start
  std::int32_t window_begin = 0;     ///< first prompt position inside the chosen window
  std::int32_t kept = 0;             ///< tokens with a reason other than evicted
};

/// Reusable scratch for planning one head after another (steady state allocates nothing).
class head_planner {
public:
  /// `group`: statistics of the query heads sharing the KV head; `classes`: [L].
  /// Throws errc::out_of_range when the profiler returns an index past the ladder.
  template <candidate_ladder Ladder, profiler Profiler>
  auto plan(const Ladder& ladder, const Profiler& profiler, std::span<const head_stats> group,
            group_reduce reduce, std::span<const token_class> classes, std::int32_t n_sinks)
      -> const head_plan& {
    combine_scores(group, reduce, plan_.scores);
    measure_candidates(ladder, group, reduce, classes, plan_.scores, n_sinks, plan_.reasons,
                       ints_, candidates_);
    const std::size_t choice = profiler(candidates_);
    expects(choice < Ladder::size, errc::out_of_range, [&] {
      return fmt::format("profiler chose candidate {} of a ladder of {}", choice, Ladder::size);
    });
    plan_.choice = choice;
    plan_.recovered = candidates_.recovered;
    const auto n = static_cast<std::int32_t>(classes.size());
    ladder.visit(choice, [&](const auto& pol) {
      plan_.kept = select_kept(pol, classes, std::span<const double>(plan_.scores), n_sinks,
                               std::span(plan_.reasons), ints_);
      plan_.window_begin = n - std::clamp(window_of(pol, step_context{n, n}), 0, n);
    });
    return plan_;
  }

private:
  head_plan plan_;
  std::vector<std::int32_t> ints_;
  candidate_scores candidates_;
};

} // namespace kvsieve
