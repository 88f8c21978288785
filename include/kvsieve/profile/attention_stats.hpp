// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// head_stats: what the profiler needs of one query head's prompt attention A (causal, L x L),
/// accumulated one row at a time in O(L) memory (FastGen §3.3, Eq. 1, read as kept mass):
///   score[j]   = sum over all rows i of A[i, j]              (the frequent policy's first score)
///   colsum[j]  = sum over recovery rows i of A[i, j]
///   near_w[j]  = sum over recovery rows i with j <= i < j + w of A[i, j]
/// A row i keeps its local window {j : i - w < j <= i}, so near_w[j] is the part of column j that
/// row windows already hold. For a static kept set X and a window w the recovered mass is
///   ( sum_j near_w[j] + sum_{j in X} (colsum[j] - near_w[j]) ) / rows,
/// which counts every (i, j) once without materialising A (docs/design.md, "recovery").
/// Budgets whose ranking reads another score_source (TOVA's last row, SnapKV's observation
/// window, a decayed sum) get that sum too, from the same rows:
///   source_k[j] = sum over rows i of weight_k(i) A[i, j]  (policy/ranking.hpp)

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/attention/detail/kernels.hpp>
#include <kvsieve/core/error.hpp>
#include <kvsieve/policy/ranking.hpp>
#include <kvsieve/policy/select.hpp>

namespace kvsieve {

class head_stats {
public:
  /// Prepares for a prompt of `length` tokens whose recovery rows are [first_row, length), whose
  /// ladder uses the local windows `windows` (each > 0; duplicates are fine) and the score
  /// sources `sources` besides the plain one (see check_source).
  void reset(std::int32_t length, std::int32_t first_row, std::span<const std::int32_t> windows,
             std::span<const score_source> sources = {}) {
    length_ = length;
    first_row_ = std::clamp(first_row, 0, length);
    const auto n = static_cast<std::size_t>(length);
    colsum_.assign(n, 0.0);
    early_.assign(first_row_ > 0 ? n : 0, 0.0);
    score_.clear();
    score_valid_ = false;
    windows_.assign(windows.begin(), windows.end());
    near_.resize(windows_.size());
    for (auto& v : near_) {
      v.assign(n, 0.0);
    }
    sources_.clear();
    for (const auto& src : sources) {
      check_source(src);
      if (!src.is_plain() &&
          std::find(sources_.begin(), sources_.end(), src) == sources_.end()) {
        sources_.push_back(src);
      }
    }
    sourced_.resize(sources_.size());
    for (auto& v : sourced_) {
      v.assign(n, 0.0);
    }
  }

  /// Throws errc::invalid_argument for a source no sum can be made of: a negative window, a
  /// decay outside (0, 1], an even or non-positive pooling kernel.
  static void check_source(const score_source& s) {
    expects(s.last_rows >= 0 && s.decay > 0.0F && s.decay <= 1.0F && s.kernel >= 1 &&
                s.kernel % 2 == 1,
            errc::invalid_argument, [&] {
              return fmt::format("score source: needs last_rows >= 0, decay in (0, 1] and an odd "
                                 "kernel >= 1; got {}, {}, {}",
                                 s.last_rows, s.decay, s.kernel);
            });
  }

  /// Adds row i of A: p[j] = A[i, j] for j in [0, i]. Rows may come in any order. O(i + windows)
  /// SIMD double additions: a row adds to score and colsum once, since score = early + colsum.
  void accumulate_row(std::int32_t i, std::span<const float> p) {
    const auto n = static_cast<std::int32_t>(p.size());
    score_valid_ = false;
    for (std::size_t k = 0; k < sources_.size(); ++k) {
      const auto& src = sources_[k];
      if (src.last_rows > 0 && i < length_ - src.last_rows) {
        continue;
      }
      if (src.decay == 1.0F) {
        detail::add_to_f64_kernel(sourced_[k].data(), p.data(), p.size());
      } else {
        const double w = std::pow(static_cast<double>(src.decay), length_ - 1 - i);
        auto& dst = sourced_[k];
        for (std::size_t j = 0; j < p.size(); ++j) {
          dst[j] += w * static_cast<double>(p[j]);
        }
      }
    }
    if (i < first_row_) {
      detail::add_to_f64_kernel(early_.data(), p.data(), p.size());
      return;
    }
    detail::add_to_f64_kernel(colsum_.data(), p.data(), p.size());
    for (std::size_t w = 0; w < windows_.size(); ++w) {
      const std::int32_t from = std::max(0, i - windows_[w] + 1);
      const std::int32_t to = std::min(i + 1, n);
      if (from < to) {
        detail::add_to_f64_kernel(near_[w].data() + from, p.data() + from,
                                  static_cast<std::size_t>(to - from));
      }
    }
  }

  /// Loads sums computed elsewhere (the CUDA prefill kernel) instead of accumulating rows:
  /// score and colsum hold L values, near holds windows.size() blocks of L in window order,
  /// sourced holds sources.size() blocks of L: the sums under `sources` (distinct, none plain,
  /// as reset() takes them). Throws errc::shape_mismatch when the spans disagree with
  /// L = score.size(), errc::invalid_argument for a plain, repeated or invalid source.
  void assign(std::int32_t first_row, std::span<const std::int32_t> windows,
              std::span<const float> score, std::span<const float> colsum,
              std::span<const float> near, std::span<const score_source> sources = {},
              std::span<const float> sourced = {}) {
    const auto n = score.size();
    expects(colsum.size() == n && near.size() == windows.size() * n &&
                sourced.size() == sources.size() * n,
            errc::shape_mismatch,
            "head_stats::assign: score, colsum, near and sourced disagree on the prompt length");
    reset(static_cast<std::int32_t>(n), first_row, windows, sources);
    expects(sources_.size() == sources.size(), errc::invalid_argument,
            "head_stats::assign: sources must be distinct and none plain");
    for (std::size_t k = 0; k < sources.size(); ++k) {
      const auto block = sourced.subspan(k * n, n);
      std::copy(block.begin(), block.end(), sourced_[k].begin());
    }
    score_.assign(score.begin(), score.end());
    score_valid_ = true;
    std::copy(colsum.begin(), colsum.end(), colsum_.begin());
    for (std::size_t w = 0; w < windows.size(); ++w) {
      const auto block = near.subspan(w * n, n);
      std::copy(block.begin(), block.end(), near_[w].begin());
    }
  }

  [[nodiscard]] auto length() const noexcept -> std::int32_t { return length_; }
  [[nodiscard]] auto rows() const noexcept -> std::int32_t { return length_ - first_row_; }
  /// Sums over every row. Not thread-safe against other calls on this object (it may fill a
  /// cache: early rows + recovery rows, when the recovery rows are not all rows).
  [[nodiscard]] auto score() const -> std::span<const double> {
    if (score_valid_) {
      return score_;
    }
    if (early_.empty()) { // every row is a recovery row: score == colsum
      return colsum_;
    }
    score_.resize(colsum_.size());
    for (std::size_t j = 0; j < colsum_.size(); ++j) {
      score_[j] = early_[j] + colsum_[j];
    }
    score_valid_ = true;
    return score_;
  }
  /// The sum under `src`: score() for the plain source, else one passed to reset().
  /// Throws errc::invalid_argument for a source that was not.
  [[nodiscard]] auto score(const score_source& src) const -> std::span<const double> {
    if (src.is_plain()) {
      return score();
    }
    const auto it = std::find(sources_.begin(), sources_.end(), src);
    expects(it != sources_.end(), errc::invalid_argument,
            "head_stats: score source not accumulated; pass it to reset()");
    return sourced_[static_cast<std::size_t>(it - sources_.begin())];
  }
  [[nodiscard]] auto colsum() const noexcept -> std::span<const double> { return colsum_; }
  /// near_w for window w. Throws errc::invalid_argument when w was not requested at reset.
  [[nodiscard]] auto near(std::int32_t w) const -> std::span<const double> {
    const auto it = std::find(windows_.begin(), windows_.end(), w);
    expects(it != windows_.end(), errc::invalid_argument,
            "head_stats: window not accumulated; pass it to reset()");
    return near_[static_cast<std::size_t>(it - windows_.begin())];
  }

  /// The recovered mass (Eq. 1 as kept mass) of a keep set: `reasons` from select_kept, `window`
  /// the candidate's window at the end of the prompt (0 for none).
  [[nodiscard]] auto recovered(std::span<const keep_reason> reasons, std::int32_t window) const
      -> double {
    if (rows() == 0) {
      return 1.0;
    }
    double mass = 0.0;
    if (window <= 0) {
      for (std::size_t j = 0; j < reasons.size(); ++j) {
        mass += is_static(reasons[j]) ? colsum_[j] : 0.0;
      }
    } else if (window >= length_) { // every row's window is the whole causal row
      mass = static_cast<double>(rows());
    } else {
      const auto nw = near(window);
      for (std::size_t j = 0; j < reasons.size(); ++j) {
        mass += nw[j] + (is_static(reasons[j]) ? colsum_[j] - nw[j] : 0.0);
      }
    }
    return mass / static_cast<double>(rows());
  }

private:
  static constexpr auto is_static(keep_reason r) noexcept -> bool {
    return r == keep_reason::rule || r == keep_reason::budget;
  }

  std::int32_t length_ = 0;
  std::int32_t first_row_ = 0;
  std::vector<double> colsum_;                 // rows >= first_row
  std::vector<double> early_;                  // rows < first_row; empty when first_row == 0
  mutable std::vector<double> score_;          // early_ + colsum_, or as assigned
  mutable bool score_valid_ = false;
  std::vector<std::int32_t> windows_;
  std::vector<std::vector<double>> near_;
  std::vector<score_source> sources_;          // distinct, none plain
  std::vector<std::vector<double>> sourced_;   // [sources][L]
};

} // namespace kvsieve
