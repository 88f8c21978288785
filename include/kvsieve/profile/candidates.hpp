// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// Measures every candidate of a ladder on one KV head: keep set (the batch form, select_kept),
/// its cost and its recovered mass, with the statistics of the head's query heads combined by
/// mean (DEFAULT) or worst case (fastgen-spec §6 item 9).

#include <algorithm>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include <kvsieve/core/error.hpp>
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

/// The distinct non-plain score sources of the ladder's budgets: what head_stats must sum
/// besides the plain score.
template <candidate_ladder Ladder>
[[nodiscard]] auto ladder_sources(const Ladder& ladder) -> std::vector<score_source> {
  std::vector<score_source> out;
  for (std::size_t i = 0; i < Ladder::size; ++i) {
    ladder.visit(i, [&](const auto& c) {
      const score_source src = source_of(c);
      if (!src.is_plain() && std::find(out.begin(), out.end(), src) == out.end()) {
        out.push_back(src);
      }
    });
  }
  return out;
}

/// Pools `s` over `src.kernel` neighbouring keys in place (score_pool::max or avg, zero-padded
/// at the edges as torch's max_pool1d / avg_pool1d with count_include_pad), over [0, L - w)
/// when the source has an observation window of w rows, else over every key.
inline void pool_scores(std::vector<double>& s, const score_source& src,
                        std::vector<double>& scratch) {
  if (src.pool == score_pool::none || src.kernel <= 1) {
    return;
  }
  const auto length = static_cast<std::int64_t>(s.size());
  const std::int64_t n = src.last_rows > 0 ? std::max<std::int64_t>(0, length - src.last_rows)
                                           : length;
  const std::int64_t half = src.kernel / 2;
  scratch.assign(s.begin(), s.begin() + n);
  for (std::int64_t j = 0; j < n; ++j) {
    const std::int64_t from = std::max<std::int64_t>(0, j - half);
    const std::int64_t to = std::min(n, j + half + 1);
    double acc = src.pool == score_pool::max ? scratch[static_cast<std::size_t>(from)] : 0.0;
    for (std::int64_t m = from; m < to; ++m) {
      const double x = scratch[static_cast<std::size_t>(m)];
      acc = src.pool == score_pool::max ? std::max(acc, x) : acc + x;
    }
    s[static_cast<std::size_t>(j)] =
        src.pool == score_pool::max ? acc : acc / static_cast<double>(src.kernel);
  }
}

/// The group's combined per-token score under `src`: mean or max over the query heads' sums,
/// then pooled (pool_scores).
inline void combine_scores(std::span<const head_stats> group, group_reduce reduce,
                           const score_source& src, std::vector<double>& out,
                           std::vector<double>& scratch) {
  const auto n = static_cast<std::size_t>(group.front().length());
  out.assign(n, reduce == group_reduce::mean ? 0.0 : -1.0);
  for (const auto& h : group) {
    const auto s = h.score(src);
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
  pool_scores(out, src, scratch);
}

/// The plain source's combined score (every prompt row, no pooling).
inline void combine_scores(std::span<const head_stats> group, group_reduce reduce,
                           std::vector<double>& out) {
  std::vector<double> scratch;
  combine_scores(group, reduce, score_source{}, out, scratch);
}

/// A KV head's combined score under every source its ladder reads (the plain one first).
struct source_scores {
  std::vector<score_source> sources;
  std::vector<std::vector<double>> values;

  /// Combines every source of `ladder` (plain, then ladder_sources) over `group`.
  template <candidate_ladder Ladder>
  void compute(const Ladder& ladder, std::span<const head_stats> group, group_reduce reduce) {
    sources = ladder_sources(ladder);
    sources.insert(sources.begin(), score_source{});
    values.resize(sources.size());
    for (std::size_t k = 0; k < sources.size(); ++k) {
      combine_scores(group, reduce, sources[k], values[k], scratch_);
    }
  }
  /// Throws errc::invalid_argument for a source not computed.
  [[nodiscard]] auto of(const score_source& src) const -> std::span<const double> {
    const auto it = std::find(sources.begin(), sources.end(), src);
    expects(it != sources.end(), errc::invalid_argument, "source_scores: source not computed");
    return values[static_cast<std::size_t>(it - sources.begin())];
  }

private:
  std::vector<double> scratch_;
};

/// The recovered mass of `reasons` (window w) combined over the group (mean or worst).
[[nodiscard]] inline auto group_recovered(std::span<const head_stats> group, group_reduce reduce,
                                          std::span<const keep_reason> reasons, std::int32_t w)
    -> double {
  double rec = reduce == group_reduce::mean ? 0.0 : 1.0;
  for (const auto& h : group) {
    const double r = h.recovered(reasons, w);
    rec = reduce == group_reduce::mean ? rec + r : std::min(rec, r);
  }
  return reduce == group_reduce::mean ? rec / static_cast<double>(group.size()) : rec;
}

/// Fills `out` with every candidate's cost, recovered mass, own budget and budget keys for one
/// KV head. `scores` holds the group's combined score under every source the ladder reads;
/// `reasons` is scratch of length L.
template <candidate_ladder Ladder>
void measure_candidates(const Ladder& ladder, std::span<const head_stats> group,
                        group_reduce reduce, std::span<const token_class> classes,
                        const source_scores& scores, std::int32_t n_sinks,
                        std::vector<keep_reason>& reasons, std::vector<std::int32_t>& scratch,
                        candidate_scores& out) {
  const auto length = static_cast<std::int32_t>(classes.size());
  const step_context end{length, length};
  out.recovered.assign(Ladder::size, 0.0);
  out.kept.assign(Ladder::size, 0);
  out.names.assign(Ladder::size, {});
  out.budgets.assign(Ladder::size, -1);
  out.budget_keys.resize(Ladder::size);
  reasons.resize(classes.size());
  for (std::size_t i = 0; i < Ladder::size; ++i) {
    ladder.visit(i, [&](const auto& c) {
      using C = std::remove_cvref_t<decltype(c)>;
      const auto s = scores.of(source_of(c));
      out.names[i] = Ladder::name(i);
      out.kept[i] = select_kept(c, classes, s, n_sinks, std::span(reasons), scratch);
      const std::int32_t w = std::clamp(window_of(c, end), 0, length);
      out.recovered[i] = group_recovered(group, reduce, reasons, w);
      auto& keys = out.budget_keys[i];
      keys.clear();
      if constexpr (has_budget<C>) {
        out.budgets[i] = std::max(budget_of(c, end), 0);
        const auto rank = ranking_of(c);
        for (const std::int32_t j : scratch) { // every token the budget ranked
          keys.push_back(rank.key(s[static_cast<std::size_t>(j)], j, length));
        }
      }
    });
  }
}

/// measure_candidates for a ladder whose budgets all read the plain score: `scores` is the
/// group's combined plain score (combine_scores).
template <candidate_ladder Ladder>
void measure_candidates(const Ladder& ladder, std::span<const head_stats> group,
                        group_reduce reduce, std::span<const token_class> classes,
                        std::span<const double> scores, std::int32_t n_sinks,
                        std::vector<keep_reason>& reasons, std::vector<std::int32_t>& scratch,
                        candidate_scores& out) {
  expects(ladder_sources(ladder).empty(), errc::invalid_argument,
          "measure_candidates: this ladder reads other score sources; pass source_scores");
  source_scores plain;
  plain.sources = {score_source{}};
  plain.values = {std::vector<double>(scores.begin(), scores.end())};
  measure_candidates(ladder, group, reduce, classes, plain, n_sinks, reasons, scratch, out);
}

} // namespace kvsieve
