// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// head_stepper: FastGen's per-head eviction (Algorithms 1's last step and 2) for an engine that
/// keeps its own attention kernels and its own K/V storage (docs/integration.md). The stepper
/// owns only the metadata of the head's resident tokens (position, score, class, reason: 10
/// bytes a token) in dense slots [0, size()); the engine keeps K and V in the same slots.
///
///   prefill(policy, classes, scores)  the kept prompt positions in slot order: the engine copies
///                                     those K/V rows into its slots 0..n-1. `scores` are column
///                                     sums of the prompt attention (see combine_column_sums).
///   prefill(plan, classes)            the same from a head_plan (head_planner, a ladder, a
///                                     profiler: FastGen's choice per head).
///   begin(policy, cls)                the slot the new token's K/V goes into (== size() before
///                                     the call), or -1 when the policy drops it before attention.
///   finish(policy, probs)             probs[slot]: the step's attention probability of each
///                                     resident token, combined over the group; returns the moves
///                                     to apply to the engine's K/V, in order (slot_move).
///   finish_from_logits(...)           the same from raw logits and each query head's
///                                     log-sum-exp, as flash-style kernels have them.
///
/// The algorithm is cache/step_algorithm.hpp, the very code adaptive_cache runs over its paged
/// store: for the same probabilities both keep the same tokens.
/// Not thread-safe: one stepper per (sequence, layer, KV head); distinct steppers are independent
/// and may be stepped from distinct threads.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <source_location>
#include <span>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/cache/options.hpp>
#include <kvsieve/cache/step_algorithm.hpp>
#include <kvsieve/core/error.hpp>
#include <kvsieve/core/group.hpp>
#include <kvsieve/policy/concepts.hpp>
#include <kvsieve/policy/select.hpp>
#include <kvsieve/profile/candidates.hpp>
#include <kvsieve/profile/plan.hpp>

namespace kvsieve {

/// One change to the head's slots, for the engine to mirror in its K/V: the token in `slot`
/// leaves; then, when `moved_from` >= 0, the token in `moved_from` (always the last slot at that
/// moment) moves into `slot`. Apply a step's moves in order; afterwards the engine's slots
/// [0, size()) hold the stepper's tokens, slot for slot.
struct slot_move {
  std::int32_t slot = 0;
  std::int32_t moved_from = -1;
  friend constexpr auto operator==(const slot_move&, const slot_move&) -> bool = default;
};

/// A slot_table in dense arrays, recording every erase as a slot_move.
class owned_slots {
public:
  [[nodiscard]] auto size() const noexcept -> std::int32_t {
    return static_cast<std::int32_t>(positions_.size());
  }
  [[nodiscard]] auto position(std::int32_t slot) const -> std::int32_t { return positions_[at(slot)]; }
  [[nodiscard]] auto score(std::int32_t slot) const -> float { return scores_[at(slot)]; }
  [[nodiscard]] auto reason(std::int32_t slot) const -> keep_reason { return reasons_[at(slot)]; }
  [[nodiscard]] auto cls(std::int32_t slot) const -> token_class { return classes_[at(slot)]; }
  [[nodiscard]] auto positions() const noexcept -> std::span<const std::int32_t> {
    return positions_;
  }
  void set_reason(std::int32_t slot, keep_reason r) { reasons_[at(slot)] = r; }

  auto append(token_meta m) -> std::int32_t {
    positions_.push_back(m.position);
    scores_.push_back(m.score);
    classes_.push_back(m.cls);
    reasons_.push_back(m.reason);
    return size() - 1;
  }
  /// Swap-with-last, as paged_store::erase; records the move.
  auto erase(std::int32_t slot) -> std::int32_t {
    const auto s = at(slot);
    const std::int32_t last = size() - 1;
    std::int32_t moved = -1;
    if (slot != last) {
      const auto l = static_cast<std::size_t>(last);
      positions_[s] = positions_[l];
      scores_[s] = scores_[l];
      classes_[s] = classes_[l];
      reasons_[s] = reasons_[l];
      moved = last;
    }
    positions_.pop_back();
    scores_.pop_back();
    classes_.pop_back();
    reasons_.pop_back();
    moves_.push_back({slot, moved});
    return moved;
  }
  template <class Fn>
  void for_each_block(Fn&& fn) {
    fn(slot_block{0, size(), positions_.data(), scores_.data(), reasons_.data()});
  }

  [[nodiscard]] auto moves() const noexcept -> std::span<const slot_move> { return moves_; }
  void clear_moves() noexcept { moves_.clear(); }
  void clear() noexcept {
    positions_.clear();
    scores_.clear();
    classes_.clear();
    reasons_.clear();
    moves_.clear();
  }
  void reserve(std::size_t n) {
    positions_.reserve(n);
    scores_.reserve(n);
    classes_.reserve(n);
    reasons_.reserve(n);
    moves_.reserve(n);
  }

private:
  [[nodiscard]] auto at(std::int32_t slot) const -> std::size_t {
    expects(slot >= 0 && slot < size(), errc::out_of_range,
            [&] { return fmt::format("slot {} outside [0, {})", slot, size()); });
    return static_cast<std::size_t>(slot);
  }

  std::vector<std::int32_t> positions_;
  std::vector<float> scores_;
  std::vector<token_class> classes_;
  std::vector<keep_reason> reasons_;
  std::vector<slot_move> moves_;
};
static_assert(slot_table<owned_slots>);

/// The settings of a head_stepper (fastgen-spec §6 items 5 and 6; item 7, frozen classes, is the
/// engine's: pass token_class::none to begin()). The same meaning as in cache_options.
struct stepper_options {
  std::int32_t n_sinks = 0; ///< §6.5: the first n positions are never evicted
  new_token_mode new_token = new_token_mode::attend_then_decide; ///< §6.6
};

/// A KV head's prefill scores from its query heads' column sums: `per_query_head` holds `group`
/// blocks of L sums (block g: sum over the source's prompt rows i of A_g[i, j], for j in [0, L)),
/// combined by mean or max (fastgen-spec §6 item 9), then pooled as `src` says (SnapKV). The
/// rows are the engine's to choose as `src` says: every row for the plain source (FastGen, H2O),
/// the last src.last_rows rows for an observation window (SnapKV; TOVA's last row), rows
/// weighted by src.decay^(L-1-i) for a decayed sum. Throws errc::shape_mismatch when the span is
/// not `group` blocks, errc::invalid_argument for group < 1.
inline void combine_column_sums(std::span<const double> per_query_head, std::int32_t group,
                                group_reduce reduce, const score_source& src,
                                std::vector<double>& out,
                                std::source_location where = std::source_location::current()) {
  expects(group >= 1, errc::invalid_argument, "combine_column_sums: group must be >= 1", where);
  const auto g = static_cast<std::size_t>(group);
  expects(per_query_head.size() % g == 0, errc::shape_mismatch, [&] {
    return fmt::format("combine_column_sums: {} sums are not {} blocks of equal length",
                       per_query_head.size(), group);
  }, where);
  const std::size_t n = per_query_head.size() / g;
  out.assign(n, reduce == group_reduce::mean ? 0.0 : -1.0);
  for (std::size_t h = 0; h < g; ++h) {
    const auto s = per_query_head.subspan(h * n, n);
    for (std::size_t j = 0; j < n; ++j) {
      out[j] = reduce == group_reduce::mean ? out[j] + s[j] : std::max(out[j], s[j]);
    }
  }
  if (reduce == group_reduce::mean) {
    for (auto& x : out) {
      x /= static_cast<double>(g);
    }
  }
  std::vector<double> scratch;
  pool_scores(out, src, scratch);
}

class head_stepper {
public:
  /// Throws errc::invalid_argument for negative n_sinks.
  explicit head_stepper(stepper_options options = {},
                        std::source_location where = std::source_location::current())
      : opt_(options) {
    expects(opt_.n_sinks >= 0, errc::invalid_argument, "n_sinks must be >= 0", where);
  }

  /// Compresses a prompt of L = classes.size() tokens under `pol`: `scores[j]` is token j's
  /// prefill score under pol's ranking source (combine_column_sums; may be empty when pol has no
  /// budget), `budget` >= 0 a fixed per-head budget replacing pol's own (Ada-KV, PyramidKV), -1
  /// none. Returns the kept positions in slot order (valid until the next call).
  /// Throws: errc::bad_state (already prefilled: reset() first), errc::invalid_argument (empty
  /// prompt, budget < -1, or a budget for a policy without one), errc::shape_mismatch (scores
  /// neither L long nor empty-without-budget).
  template <policy P>
  auto prefill(const P& pol, std::span<const token_class> classes, std::span<const double> scores,
               std::int32_t budget = -1,
               std::source_location where = std::source_location::current())
      -> std::span<const std::int32_t> {
    check_prefill(classes, where);
    expects(budget >= -1, errc::invalid_argument,
            [&] { return fmt::format("budget {} must be >= 0, or -1 for the policy's", budget); },
            where);
    expects(budget < 0 || has_budget<P>, errc::invalid_argument, [&] {
      return fmt::format("a budget of {} for policy '{}', which has none", budget, P::name);
    }, where);
    expects(scores.size() == classes.size() || (scores.empty() && !has_budget<P>),
            errc::shape_mismatch, [&] {
              return fmt::format("prefill: {} scores for {} tokens", scores.size(),
                                 classes.size());
            }, where);
    const auto n = static_cast<std::int32_t>(classes.size());
    reasons_.resize(classes.size());
    select_kept(pol, classes, scores, opt_.n_sinks, std::span(reasons_), ints_, budget);
    const std::int32_t w = std::clamp(window_of(pol, step_context{n, n}), 0, n);
    return install(reasons_, scores, classes, n - w, budget);
  }

  /// The same from a plan (head_planner::plan or finish): its reasons, scores, window and budget.
  /// Afterwards begin/finish take the plan's chosen candidate (ladder.visit(plan.choice, ...)).
  /// Throws errc::bad_state, errc::invalid_argument (empty prompt), errc::shape_mismatch (the
  /// plan's reasons or scores not L long).
  auto prefill(const head_plan& plan, std::span<const token_class> classes,
               std::source_location where = std::source_location::current())
      -> std::span<const std::int32_t> {
    check_prefill(classes, where);
    expects(plan.reasons.size() == classes.size() && plan.scores.size() == classes.size(),
            errc::shape_mismatch, [&] {
              return fmt::format("prefill: the plan has {} reasons and {} scores for {} tokens",
                                 plan.reasons.size(), plan.scores.size(), classes.size());
            }, where);
    return install(plan.reasons, plan.scores, classes, plan.window_begin, plan.budget);
  }

  /// Starts decode step t = length() + 1 for a new token of class `cls` at position length().
  /// Returns the slot its K/V goes into (size() - 1 afterwards), or -1 when the policy drops it
  /// before attention (new_token_mode::drop_before_attention). Then the engine attends over
  /// slots [0, size()) and calls finish with the same policy.
  /// Throws errc::bad_state (before prefill, or begin again without finish; nothing changes).
  template <policy P>
  auto begin(const P& pol, token_class cls,
             std::source_location where = std::source_location::current()) -> std::int32_t {
    expects(length_ > 0, errc::bad_state, "begin before prefill", where);
    expects(!pending_, errc::bad_state, "begin called twice: finish the step first", where);
    expects(length_ < INT32_MAX, errc::bad_state, "sequence length would exceed 2^31 - 1",
            where);
    ctx_ = step_context{length_ + 1, prompt_length_};
    step_ = detail::decide_step(pol, state_, cls, ctx_, opt_.n_sinks, opt_.new_token,
                                slots_.size());
    slots_.clear_moves();
    if (step_.append) {
      step_.new_slot = slots_.append({ctx_.length - 1, 0.0F, cls, keep_reason::evicted});
    }
    pending_ = true;
    return step_.new_slot;
  }

  /// Ends the step: probs[slot] for every slot in [0, size()), combined over the group as the
  /// engine chose (mean: DEFAULT; max: §6.9 OPTION). Returns the moves for the engine's K/V, in
  /// order (valid until the next begin). Throws errc::bad_state (no begin), errc::shape_mismatch
  /// (probs.size() != size()); on a throw nothing changes.
  template <policy P>
  auto finish(const P& pol, std::span<const float> probs,
              std::source_location where = std::source_location::current())
      -> std::span<const slot_move> {
    expects(pending_, errc::bad_state, "finish without begin", where);
    expects(probs.size() == static_cast<std::size_t>(slots_.size()), errc::shape_mismatch, [&] {
      return fmt::format("finish: {} probabilities for {} resident tokens", probs.size(),
                         slots_.size());
    }, where);
    detail::finish_step(pol, state_, slots_, step_, probs, ctx_, scratch_);
    length_ = ctx_.length;
    pending_ = false;
    return slots_.moves();
  }

  /// finish from what a flash-style kernel has: `logits` [group, size()] (scaled q.k of each of
  /// the group's query heads) and `lse` [group] (each row's log-sum-exp). The probability of slot
  /// j is exp(logits[g, j] - lse[g]), combined by mean or max over g. Throws as finish, and
  /// errc::shape_mismatch when lse is empty or logits is not lse.size() x size().
  template <policy P>
  auto finish_from_logits(const P& pol, std::span<const float> logits, std::span<const float> lse,
                          group_reduce reduce,
                          std::source_location where = std::source_location::current())
      -> std::span<const slot_move> {
    expects(pending_, errc::bad_state, "finish without begin", where);
    const auto n = static_cast<std::size_t>(slots_.size());
    expects(!lse.empty() && logits.size() == lse.size() * n, errc::shape_mismatch, [&] {
      return fmt::format("finish_from_logits: {} logits and {} log-sum-exps for {} resident "
                         "tokens (need group x size logits, group >= 1)",
                         logits.size(), lse.size(), n);
    }, where);
    probs_.resize(n);
    const std::size_t g = lse.size();
    for (std::size_t j = 0; j < n; ++j) {
      double acc = 0.0;
      for (std::size_t h = 0; h < g; ++h) {
        const double p = std::exp(static_cast<double>(logits[h * n + j]) -
                                  static_cast<double>(lse[h]));
        acc = reduce == group_reduce::mean ? acc + p : std::max(acc, p);
      }
      probs_[j] = static_cast<float>(reduce == group_reduce::mean ? acc / static_cast<double>(g)
                                                                  : acc);
    }
    return finish(pol, std::span<const float>(probs_), where);
  }

  /// Forgets everything: the stepper can be prefilled again.
  void reset() noexcept {
    slots_.clear();
    state_ = step_state{};
    length_ = 0;
    prompt_length_ = 0;
    pending_ = false;
  }
  /// Room for `tokens` resident tokens, so that decode allocates nothing until then.
  void reserve(std::size_t tokens) { slots_.reserve(tokens); }

  [[nodiscard]] auto options() const noexcept -> const stepper_options& { return opt_; }
  /// Resident tokens (the new one included between begin and finish).
  [[nodiscard]] auto size() const noexcept -> std::int32_t { return slots_.size(); }
  /// Tokens seen, prompt included (t after the last finished step); 0 before prefill.
  [[nodiscard]] auto length() const noexcept -> std::int32_t { return length_; }
  [[nodiscard]] auto prompt_length() const noexcept -> std::int32_t { return prompt_length_; }
  /// True between begin and finish.
  [[nodiscard]] auto pending() const noexcept -> bool { return pending_; }
  /// The fixed budget from prefill (-1: the policy's own budget(ctx)).
  [[nodiscard]] auto fixed_budget() const noexcept -> std::int32_t { return state_.budget; }
  /// Per-slot metadata. Throw errc::out_of_range for a slot outside [0, size()).
  [[nodiscard]] auto position(std::int32_t slot) const -> std::int32_t {
    return slots_.position(slot);
  }
  [[nodiscard]] auto score(std::int32_t slot) const -> float { return slots_.score(slot); }
  [[nodiscard]] auto reason(std::int32_t slot) const -> keep_reason { return slots_.reason(slot); }
  [[nodiscard]] auto cls(std::int32_t slot) const -> token_class { return slots_.cls(slot); }
  /// Every slot's position, in slot order.
  [[nodiscard]] auto positions() const noexcept -> std::span<const std::int32_t> {
    return slots_.positions();
  }

private:
  void check_prefill(std::span<const token_class> classes, std::source_location where) const {
    expects(length_ == 0, errc::bad_state, "already prefilled: reset() first", where);
    expects(!classes.empty(), errc::invalid_argument,
            "empty prompt: prefill needs at least one token", where);
    expects(classes.size() < static_cast<std::size_t>(INT32_MAX), errc::invalid_argument,
            "prompt longer than 2^31 - 1 tokens", where);
  }

  auto install(std::span<const keep_reason> reasons, std::span<const double> scores,
               std::span<const token_class> classes, std::int32_t window_begin,
               std::int32_t budget) -> std::span<const std::int32_t> {
    slots_.clear();
    detail::compress_plan(state_, reasons, window_begin, budget, [&](std::int32_t j) {
      const auto row = static_cast<std::size_t>(j);
      const float s = scores.empty() ? 0.0F : static_cast<float>(scores[row]);
      return slots_.append({j, s, classes[row], reasons[row]});
    });
    length_ = static_cast<std::int32_t>(classes.size());
    prompt_length_ = length_;
    pending_ = false;
    return slots_.positions();
  }

  stepper_options opt_;
  owned_slots slots_;
  step_state state_;
  step_decision step_;
  step_context ctx_;
  std::int32_t length_ = 0;
  std::int32_t prompt_length_ = 0;
  bool pending_ = false;
  // Scratch, reused so that steady-state decode allocates nothing.
  detail::step_scratch scratch_;
  std::vector<float> probs_;
  std::vector<keep_reason> reasons_;
  std::vector<std::int32_t> ints_;
};

} // namespace kvsieve
