// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// FastGen Algorithm 2 for one KV head (fastgen-spec §2), written once over a `slot_table`: the
/// per-token metadata of the head's resident tokens, wherever it lives. adaptive_cache runs it
/// over its paged store (store_slots below), head_stepper (cache/stepper.hpp) over arrays it owns
/// for engines that keep their own attention and K/V storage. Both therefore evict the same
/// tokens for the same probabilities.
///
/// One step, per head:
///   decide_step   before attention: the policy's rule, window and budget for the step, and
///                 whether the new token is appended (the caller appends it to its table);
///   finish_step   after attention: one pass updating every resident score (and finding the two
///                 weakest budget members), the window's leavers demoted to the budget or evicted,
///                 the new token's fate, budget overflow evicted. O(1) table operations plus the
///                 one O(n) pass; allocation-free once `step_scratch` and the deque are warm.
/// compress_plan writes the state of a freshly compressed prompt (Algorithm 1's last step).

#include <algorithm>
#include <array>
#include <concepts>
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include <kvsieve/cache/options.hpp>
#include <kvsieve/cache/step_rule.hpp>
#include <kvsieve/policy/concepts.hpp>
#include <kvsieve/policy/select.hpp>
#include <kvsieve/store/concepts.hpp>

namespace kvsieve {

/// A contiguous run of slots [first, first + count) of a slot table, as arrays: what the fused
/// score pass reads and writes (one paged_store page, or a whole owned table).
struct slot_block {
  std::int32_t first = 0;
  std::int32_t count = 0;
  const std::int32_t* positions = nullptr; // [count]
  float* scores = nullptr;                 // [count]
  const keep_reason* reasons = nullptr;    // [count]
};

namespace detail {
struct block_visitor_archetype {
  void operator()(const slot_block&) const {}
};
} // namespace detail

/// The metadata backend of Algorithm 2: a head's resident tokens in dense slots [0, size()).
///  - size(), position(slot), score(slot), reason(slot), set_reason(slot, r);
///  - erase(slot) -> the old slot of the token that moved into `slot` (the last one), or -1
///    when `slot` was the last (swap-with-last, as paged_store::erase);
///  - for_each_block(fn): fn(slot_block) over every slot once, in slot order.
/// Appending is the caller's business (it also stores K and V).
template <class T>
concept slot_table = requires(T& t, const T& ct, std::int32_t slot, keep_reason r,
                              detail::block_visitor_archetype fn) {
  { ct.size() } -> std::same_as<std::int32_t>;
  { ct.position(slot) } -> std::same_as<std::int32_t>;
  { ct.score(slot) } -> std::same_as<float>;
  { ct.reason(slot) } -> std::same_as<keep_reason>;
  t.set_reason(slot, r);
  { t.erase(slot) } -> std::same_as<std::int32_t>;
  t.for_each_block(fn);
};

/// What Algorithm 2 remembers of one head besides its tokens' metadata.
struct step_state {
  std::int32_t window_begin = 0; ///< first position of the recent window
  std::int32_t budget = -1;      ///< fixed by a profiler; -1: the policy's budget(ctx)
  std::int32_t budget_count = 0; ///< resident tokens kept by the budget
  std::deque<std::int32_t> recent; ///< slots of positions [window_begin, length), in order
};

/// One step's answers of the policy (cache/step_rule.hpp), between decide_step and finish_step.
struct step_decision : step_rule {
  bool append = false;        ///< false: the new token is dropped before attention
  std::int32_t new_slot = -1; ///< set by the caller after appending; -1: dropped
};

namespace detail {

/// A budget member that may be evicted: its rank key, position and slot.
struct ranked {
  double key;
  std::int32_t position;
  std::int32_t slot;
};

/// Scratch of finish_step, reusable across heads and steps.
struct step_scratch {
  std::vector<ranked> joiners;
};

[[nodiscard]] constexpr auto weaker(const ranked& a, const ranked& b) noexcept -> bool {
  return outranks(b.key, b.position, a.key, a.position);
}

/// Before attention: the rule, window and budget of step ctx (ctx.length = t, the new token at
/// position t - 1), and whether the new token enters the table (`resident`: tokens before it).
template <policy P>
[[nodiscard]] auto decide_step(const P& pol, const step_state& hs, token_class cls,
                               step_context ctx, std::int32_t n_sinks, new_token_mode mode,
                               std::int32_t resident) -> step_decision {
  step_decision st;
  static_cast<step_rule&>(st) =
      rule_of_step(pol, token_info{ctx.length - 1, cls}, ctx, n_sinks, hs.budget);
  st.append = !drops_new_token(st, mode, resident);
  return st;
}

inline void note_weakest(ranked c, std::array<ranked, 2>& w, std::int32_t& n) {
  if (n < 2) {
    w[static_cast<std::size_t>(n++)] = c;
    if (n == 2 && weaker(w[1], w[0])) {
      std::swap(w[0], w[1]);
    }
  } else if (weaker(c, w[1])) {
    w[1] = c;
    if (weaker(w[1], w[0])) {
      std::swap(w[0], w[1]);
    }
  }
}

// Fallback when more members must leave than were tracked: one scan over the head.
template <slot_table Table, class Rank>
auto scan_weakest(Table& table, std::int32_t t, const Rank& rank) -> ranked {
  ranked best{0.0, -1, -1};
  table.for_each_block([&](const slot_block& b) {
    for (std::int32_t i = 0; i < b.count; ++i) {
      if (b.reasons[i] != keep_reason::budget) {
        continue;
      }
      const double key = rank.key(b.scores[i], b.positions[i], t);
      if (best.slot < 0 || outranks(best.key, best.position, key, b.positions[i])) {
        best = {key, b.positions[i], b.first + i};
      }
    }
  });
  return best;
}

template <slot_table Table, class Rank>
auto take_weakest(Table& table, std::int32_t t, const Rank& rank, std::array<ranked, 2>& tracked,
                  std::int32_t& n_tracked, std::int32_t& old_left, std::vector<ranked>& joiners)
    -> ranked {
  auto joiner = std::min_element(joiners.begin(), joiners.end(), weaker);
  if (n_tracked == 0 && old_left > 0) {
    const ranked victim = scan_weakest(table, t, rank);
    const auto j = std::find_if(joiners.begin(), joiners.end(),
                                [&](const ranked& c) { return c.slot == victim.slot; });
    if (j != joiners.end()) {
      joiners.erase(j);
    } else {
      --old_left;
    }
    return victim;
  }
  if (n_tracked > 0 && (joiner == joiners.end() || !weaker(*joiner, tracked[0]))) {
    const ranked victim = tracked[0];
    tracked[0] = tracked[1];
    --n_tracked;
    --old_left;
    return victim;
  }
  const ranked victim = *joiner; // budget_count > budget >= 0 guarantees a member exists
  joiners.erase(joiner);
  return victim;
}

/// After attention: `probs[slot]` is the step's probability of each resident token (the new one
/// included when appended), combined over the group. See the file comment.
template <policy P, slot_table Table>
void finish_step(const P& pol, step_state& hs, Table& table, const step_decision& st,
                 std::span<const float> probs, step_context ctx, step_scratch& scratch) {
  const std::int32_t t = ctx.length;
  const std::int32_t pos = t - 1;
  const std::int32_t budget = st.budget;
  const auto rank = ranking_of(pol);
  std::int32_t new_slot = st.new_slot;
  auto& joiners = scratch.joiners;

  // Scores of every resident token, and the two weakest budget members, in one pass.
  std::array<ranked, 2> weakest{};
  std::int32_t n_weakest = 0;
  std::int32_t old_budget = 0; // budget members before this step's joiners
  table.for_each_block([&](const slot_block& b) {
    const float* p = probs.data() + b.first;
    for (std::int32_t i = 0; i < b.count; ++i) {
      b.scores[i] = rank.update(b.scores[i], p[i]);
      if (b.reasons[i] == keep_reason::budget) {
        ++old_budget;
        note_weakest({rank.key(b.scores[i], b.positions[i], t), b.positions[i],
                                      b.first + i},
                                     weakest, n_weakest);
      }
    }
  });

  joiners.clear();
  auto relink = [&](std::int32_t from, std::int32_t to) {
    if (from < 0) {
      return;
    }
    if (new_slot == from) {
      new_slot = to;
    }
    for (auto& c : weakest) {
      c.slot = c.slot == from ? to : c.slot;
    }
    for (auto& c : joiners) {
      c.slot = c.slot == from ? to : c.slot;
    }
    const std::int32_t moved_pos = table.position(to);
    const std::int64_t r = static_cast<std::int64_t>(moved_pos) - hs.window_begin;
    if (r >= 0 && r < static_cast<std::int64_t>(hs.recent.size())) {
      hs.recent[static_cast<std::size_t>(r)] = to;
    }
  };
  auto evict = [&](std::int32_t slot) { relink(table.erase(slot), slot); };
  auto demote = [&](std::int32_t slot) { // a token no rule or window keeps any more
    if (demoted_reason(st) == keep_reason::budget) {
      table.set_reason(slot, keep_reason::budget);
      ++hs.budget_count;
      const std::int32_t position = table.position(slot);
      joiners.push_back({rank.key(table.score(slot), position, t), position, slot});
    } else {
      evict(slot);
    }
  };

  // Tokens leaving the window (t - 1 - pos >= w); evicted tokens never return, so the window
  // start only moves forward.
  const std::int32_t new_begin = window_begin_after(hs.window_begin, t, st);
  while (hs.window_begin < std::min(new_begin, pos) && !hs.recent.empty()) {
    const std::int32_t slot = hs.recent.front();
    hs.recent.pop_front();
    ++hs.window_begin;
    if (table.reason(slot) != keep_reason::rule) {
      demote(slot);
    }
  }
  hs.window_begin = new_begin;

  // The new token.
  if (new_slot >= 0) {
    const keep_reason why = new_token_reason(st, pos, new_begin);
    if (why == keep_reason::rule || why == keep_reason::window) {
      table.set_reason(new_slot, why);
    } else {
      demote(new_slot);
    }
    if (pos >= new_begin && new_slot >= 0) {
      hs.recent.push_back(new_slot);
    }
  }

  // Budget overflow: evict the weakest (lowest key, older on a tie) until k_t members remain.
  // Candidates: the two weakest old members tracked above, the joiners of this step, and,
  // once both tracked ones are gone while older members remain, one scan over the head.
  while (hs.budget_count > budget) {
    const ranked victim =
        take_weakest(table, t, rank, weakest, n_weakest, old_budget, joiners);
    evict(victim.slot);
    --hs.budget_count;
  }
}

/// The state of a head whose prompt was just compressed. `append(j)` stores prompt token j (kept,
/// reasons[j] != evicted) and returns its slot; tokens are appended in position order.
template <class Append>
void compress_plan(step_state& hs, std::span<const keep_reason> reasons,
                   std::int32_t window_begin, std::int32_t budget, Append&& append) {
  hs = step_state{};
  hs.budget = budget;
  hs.window_begin = window_begin;
  const auto n = static_cast<std::int32_t>(reasons.size());
  for (std::int32_t j = 0; j < n; ++j) {
    const auto r = reasons[static_cast<std::size_t>(j)];
    if (r == keep_reason::evicted) {
      continue;
    }
    const std::int32_t slot = append(j);
    if (j >= window_begin) {
      hs.recent.push_back(slot);
    }
    hs.budget_count += r == keep_reason::budget ? 1 : 0;
  }
}

/// A slot_table over one head of a paged store (paged_store or any store with its page API),
/// page by page, so the fused pass runs over each page's arrays.
template <class Store>
struct store_slots {
  Store* store;
  head_id id;

  [[nodiscard]] auto size() const -> std::int32_t { return store->size(id); }
  [[nodiscard]] auto position(std::int32_t slot) const -> std::int32_t {
    return store->meta(id, slot).position;
  }
  [[nodiscard]] auto score(std::int32_t slot) const -> float {
    return store->meta(id, slot).score;
  }
  [[nodiscard]] auto reason(std::int32_t slot) const -> keep_reason {
    return store->meta(id, slot).reason;
  }
  void set_reason(std::int32_t slot, keep_reason r) { store->set_reason(id, slot, r); }
  auto erase(std::int32_t slot) -> std::int32_t { return store->erase(id, slot); }
  template <class Fn>
  void for_each_block(Fn&& fn) {
    const std::int32_t pages = store->page_count(id);
    const std::int32_t page_size = store->geometry().page_size;
    for (std::int32_t p = 0; p < pages; ++p) {
      auto page = store->page(id, p);
      fn(slot_block{p * page_size, page.count, page.positions, page.scores, page.reasons});
    }
  }
};

} // namespace detail
} // namespace kvsieve
