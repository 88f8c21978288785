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
#include <type_traits>
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
  std::int32_t budget = -1;          ///< the head's fixed budget from the profiler; -1: the
                                     ///< candidate's own budget(ctx)
  std::int32_t end_budget = -1;      ///< the chosen budget at t = L (-1: the candidate has none)
  std::vector<double> recovered;     ///< recovered mass of every candidate (own budgets)
  double chosen_recovered = 1.0;     ///< recovered mass of the choice with the head's budget
  std::vector<keep_reason> reasons;  ///< [L]: why prompt token j stays (evicted: it does not)
  std::vector<double> scores;        ///< [L]: the combined score under the choice's source
  std::int32_t window_begin = 0;     ///< first prompt position inside the chosen window
  std::int32_t kept = 0;             ///< tokens with a reason other than evicted
};

/// Reusable scratch for planning one head after another (steady state allocates nothing).
/// Two phases, so that a layer-wide profiler can see every head's measurements first:
/// measure (every candidate), then finish (the chosen one, with the head's budget).
class head_planner {
public:
  /// Measures every candidate of `ladder` on one KV head. `group`: statistics of the query heads
  /// sharing the KV head; `classes`: [L].
  template <candidate_ladder Ladder>
  void measure(const Ladder& ladder, std::span<const head_stats> group, group_reduce reduce,
               std::span<const token_class> classes, std::int32_t n_sinks, head_context context,
               candidate_scores& out) {
    sources_.compute(ladder, group, reduce);
    measure_candidates(ladder, group, reduce, classes, sources_, n_sinks, plan_.reasons, ints_,
                       out);
    out.context = context;
  }

  /// The plan of `choice` for the head whose statistics are `group` (measured or not: the
  /// chosen source is combined again, O(group * L)). `measured` are its candidates' masses.
  /// Throws errc::out_of_range for an index past the ladder, errc::invalid_argument for a budget
  /// below -1 or given to a candidate without one.
  template <candidate_ladder Ladder>
  auto finish(const Ladder& ladder, head_choice choice, std::span<const head_stats> group,
              group_reduce reduce, std::span<const token_class> classes, std::int32_t n_sinks,
              std::span<const double> measured) -> const head_plan& {
    expects(choice.index < Ladder::size, errc::out_of_range, [&] {
      return fmt::format("profiler chose candidate {} of a ladder of {}", choice.index,
                         Ladder::size);
    });
    expects(choice.budget >= -1, errc::invalid_argument, [&] {
      return fmt::format("profiler gave budget {} (must be >= 0, or -1 for the candidate's own)",
                         choice.budget);
    });
    plan_.choice = choice.index;
    plan_.budget = choice.budget;
    plan_.recovered.assign(measured.begin(), measured.end());
    const auto n = static_cast<std::int32_t>(classes.size());
    ladder.visit(choice.index, [&](const auto& pol) {
      using P = std::remove_cvref_t<decltype(pol)>;
      expects(choice.budget < 0 || has_budget<P>, errc::invalid_argument, [&] {
        return fmt::format("profiler gave a budget of {} to candidate '{}', which has none",
                           choice.budget, Ladder::name(choice.index));
      });
      const score_source src = source_of(pol);
      std::vector<double> scratch;
      combine_scores(group, reduce, src, plan_.scores, scratch);
      plan_.kept = select_kept(pol, classes, std::span<const double>(plan_.scores), n_sinks,
                               std::span(plan_.reasons), ints_, choice.budget);
      const std::int32_t w = std::clamp(window_of(pol, step_context{n, n}), 0, n);
      plan_.window_begin = n - w;
      plan_.end_budget = !has_budget<P> ? -1
                         : choice.budget >= 0 ? choice.budget
                                              : std::max(budget_of(pol, step_context{n, n}), 0);
      plan_.chosen_recovered = choice.budget < 0 && choice.index < measured.size()
                                   ? measured[choice.index]
                                   : group_recovered(group, reduce, plan_.reasons, w);
    });
    return plan_;
  }

  /// measure, a per-head profiler's choice, finish: FastGen's Algorithm 1 for one KV head.
  template <candidate_ladder Ladder, head_profiler Profiler>
  auto plan(const Ladder& ladder, const Profiler& profiler, std::span<const head_stats> group,
            group_reduce reduce, std::span<const token_class> classes, std::int32_t n_sinks,
            head_context context = {}) -> const head_plan& {
    measure(ladder, group, reduce, classes, n_sinks, context, candidates_);
    return finish(ladder, choose_head(profiler, candidates_), group, reduce, classes, n_sinks,
                  candidates_.recovered);
  }

  /// The candidates of the last plan() call.
  [[nodiscard]] auto candidates() const noexcept -> const candidate_scores& { return candidates_; }

private:
  head_plan plan_;
  source_scores sources_;
  std::vector<std::int32_t> ints_;
  candidate_scores candidates_;
};

} // namespace kvsieve
