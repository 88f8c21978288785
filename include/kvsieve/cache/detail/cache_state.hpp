// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// What both caches (host adaptive_cache, device cache/cuda/adaptive_cache.cuh) remember per
/// (sequence, layer) and per KV head outside their stores, and the report built from it: one
/// definition, so the two backends report alike.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <kvsieve/cache/options.hpp>
#include <kvsieve/profile/plan.hpp>
#include <kvsieve/store/concepts.hpp>

namespace kvsieve::detail {

/// One (sequence, layer).
struct layer_entry {
  std::int32_t length = 0;        ///< tokens seen, prompt and generated (0: not prefilled)
  std::int32_t prompt_length = 0;
  double kept_fraction_sum = 0.0; ///< sum over decode steps of kept / (t * n_head_kv)
  std::int64_t decode_steps = 0;
};

/// One KV head: what its profiling chose (for the report and the step rules).
template <std::size_t N>
struct head_summary {
  std::uint8_t choice = 0;
  float recovered = 1.0F;               ///< recovered prompt attention of the chosen candidate
  std::array<float, N> candidates{};    ///< ... of every candidate, in ladder order
  std::int32_t end_budget = -1;         ///< the budget at the end of prefill (-1: none)
  bool fixed_budget = false;            ///< the profiler fixed the head's budget

  /// The summary of a head's plan (profile/plan.hpp).
  void set(const head_plan& plan) {
    choice = static_cast<std::uint8_t>(plan.choice);
    recovered = static_cast<float>(plan.chosen_recovered);
    end_budget = plan.end_budget;
    fixed_budget = plan.budget >= 0;
    for (std::size_t i = 0; i < N; ++i) {
      candidates[i] = static_cast<float>(plan.recovered[i]);
    }
  }
};

/// The report of every prefilled (sequence, layer). head_at(flat head index) -> head_summary,
/// kept_at(flat head index) -> resident tokens; flat indices as store.index(); the store gives the
/// byte accounting (kv_store).
template <class Ladder, class Store, class HeadAt, class KeptAt>
[[nodiscard]] auto make_report(const Store& store, std::span<const layer_entry> layers,
                               HeadAt&& head_at, KeptAt&& kept_at, double prefill_seconds,
                               double profile_seconds) -> cache_report {
  cache_report r;
  const auto& g = store.geometry();
  for (std::size_t i = 0; i < Ladder::size; ++i) {
    r.policy_counts.emplace_back(Ladder::name(i), 0);
  }
  double fraction_sum = 0.0;
  std::int64_t steps = 0;
  const auto page_size = static_cast<std::size_t>(g.page_size);
  for (std::int32_t s = 0; s < g.n_seq; ++s) {
    for (std::int32_t l = 0; l < g.n_layer; ++l) {
      const auto& ls = layers[static_cast<std::size_t>(s) * static_cast<std::size_t>(g.n_layer) +
                              static_cast<std::size_t>(l)];
      if (ls.length == 0) {
        continue;
      }
      fraction_sum += ls.kept_fraction_sum;
      steps += ls.decode_steps;
      const auto len = static_cast<std::size_t>(ls.length);
      for (std::int32_t h = 0; h < g.n_head_kv; ++h) {
        const head_id id{s, l, h};
        const std::size_t i = store.index(id);
        const auto& hs = head_at(i);
        const std::int32_t kept = kept_at(i);
        r.heads.push_back({id, hs.choice, Ladder::name(hs.choice), kept, ls.length,
                           hs.recovered,
                           std::vector<double>(hs.candidates.begin(), hs.candidates.end()),
                           hs.end_budget, hs.fixed_budget});
        ++r.policy_counts[hs.choice].second;
        r.bytes_full += (len + page_size - 1) / page_size * store.page_bytes();
        r.kv_bytes_full += len * store.kv_bytes_per_token();
        r.kv_bytes_kept += static_cast<std::size_t>(kept) * store.kv_bytes_per_token();
      }
    }
  }
  r.bytes_resident = store.bytes_resident();
  r.mean_kept_fraction = steps == 0 ? 1.0 : fraction_sum / static_cast<double>(steps);
  r.prefill_attention_seconds = prefill_seconds;
  r.profile_seconds = profile_seconds;
  return r;
}

/// The cache-level context check both backends make: a prompt of `n` tokens, or a decode that
/// makes a (sequence, layer) `n` tokens long, must fit geometry.max_context (0: no bound).
[[nodiscard]] inline auto within_context(const store_geometry& g, std::int64_t n) -> bool {
  return g.max_context == 0 || n <= g.max_context;
}

} // namespace kvsieve::detail
