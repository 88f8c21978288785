// SPDX-FileCopyrightText: 2026 kvsieve contributors
// SPDX-License-Identifier: Apache-2.0
#pragma once
/// What both caches (host adaptive_cache, device cache/cuda/adaptive_cache.cuh) remember per
/// (sequence, layer) and per KV head outside their stores, the report built from it, and the
/// argument checks of their entry points: one definition, so the two backends report alike and
/// refuse alike.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <source_location>
#include <span>
#include <vector>

#include <fmt/format.h>

#include <kvsieve/cache/options.hpp>
#include <kvsieve/core/error.hpp>
#include <kvsieve/core/tensor.hpp>
#include <kvsieve/core/token_class.hpp>
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

/// The report of every prefilled (sequence, layer). head_at(flat index) -> head_summary,
/// kept_at(head_id, flat index) -> resident tokens; the flat index is store.index(head), a
/// bijection of the store's own choosing (kv_store); the store gives the byte accounting.
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
        const std::int32_t kept = kept_at(id, i);
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
/// makes a (sequence, layer) `n` tokens long, must fit geometry.max_context (0: no bound) and
/// the backend's own `capacity` (the device's page tables; the host passes INT64_MAX).
[[nodiscard]] inline auto within_context(const store_geometry& g, std::int64_t n,
                                         std::int64_t capacity = INT64_MAX) -> bool {
  return (g.max_context == 0 || n <= g.max_context) && n <= capacity;
}

// The argument checks of the cache's entry points, shared by both backends so that they accept
// and refuse the same calls with the same messages. Each cites `where`, the caller.

/// prefill: the prompt length q, k, v, out [L, heads, head_dim] and classes [L] agree on, L > 0,
/// within max_context (and `capacity`). Throws errc::shape_mismatch, errc::invalid_argument,
/// errc::out_of_range.
template <class Space>
[[nodiscard]] auto prefill_length(tensor_view<const float, 3, Space> q,
                                  tensor_view<const float, 3, Space> k,
                                  tensor_view<const float, 3, Space> v,
                                  std::span<const token_class> classes,
                                  tensor_view<float, 3, Space> out, std::int32_t n_head_q,
                                  const store_geometry& g, std::int64_t capacity,
                                  std::source_location where) -> std::size_t {
  const std::array<named_rows, 5> rows{{{"q", q.extent(0)},
                                        {"k", k.extent(0)},
                                        {"v", v.extent(0)},
                                        {"out", out.extent(0)},
                                        {"classes", classes.size()}}};
  const auto length = agreed_rows("prefill", rows, where);
  expects(length > 0, errc::invalid_argument, "empty prompt: prefill needs at least one token",
          where);
  expects(length < static_cast<std::size_t>(INT32_MAX), errc::invalid_argument,
          "prompt longer than 2^31 - 1 tokens", where);
  const auto hq = static_cast<std::size_t>(n_head_q);
  const auto hkv = static_cast<std::size_t>(g.n_head_kv);
  const auto d = static_cast<std::size_t>(g.head_dim);
  q.expect_shape("prefill q", {length, hq, d}, where);
  k.expect_shape("prefill k", {length, hkv, d}, where);
  v.expect_shape("prefill v", {length, hkv, d}, where);
  out.expect_shape("prefill out", {length, hq, d}, where);
  expects(within_context(g, static_cast<std::int64_t>(length), capacity), errc::out_of_range,
          [&] {
            return fmt::format("prompt of {} tokens exceeds the cache's max_context ({})", length,
                               std::min<std::int64_t>(
                                   g.max_context > 0 ? g.max_context : INT64_MAX, capacity));
          },
          where);
  return length;
}

/// Batched decode: the batch size B that seqs, q, k, v, cls and out agree on, > 0, with q, out
/// [B, n_head_q, head_dim] and k, v [B, n_head_kv, head_dim]. Throws errc::shape_mismatch,
/// errc::invalid_argument.
template <class Space>
[[nodiscard]] auto decode_batch(std::span<const std::int32_t> seqs,
                                tensor_view<const float, 3, Space> q,
                                tensor_view<const float, 3, Space> k,
                                tensor_view<const float, 3, Space> v,
                                std::span<const token_class> cls,
                                tensor_view<float, 3, Space> out, std::int32_t n_head_q,
                                const store_geometry& g, std::source_location where)
    -> std::size_t {
  const std::array<named_rows, 6> rows{{{"seqs", seqs.size()},
                                        {"q", q.extent(0)},
                                        {"k", k.extent(0)},
                                        {"v", v.extent(0)},
                                        {"cls", cls.size()},
                                        {"out", out.extent(0)}}};
  const auto nb = agreed_rows("decode", rows, where);
  expects(nb > 0, errc::invalid_argument, "decode batch of 0 sequences", where);
  const auto hq = static_cast<std::size_t>(n_head_q);
  const auto hkv = static_cast<std::size_t>(g.n_head_kv);
  const auto d = static_cast<std::size_t>(g.head_dim);
  q.expect_shape("decode q", {nb, hq, d}, where);
  k.expect_shape("decode k", {nb, hkv, d}, where);
  v.expect_shape("decode v", {nb, hkv, d}, where);
  out.expect_shape("decode out", {nb, hq, d}, where);
  return nb;
}

/// Single decode: q, out [n_head_q, head_dim] and k, v [n_head_kv, head_dim].
template <class Space>
void expect_decode_shapes(tensor_view<const float, 2, Space> q,
                          tensor_view<const float, 2, Space> k,
                          tensor_view<const float, 2, Space> v, tensor_view<float, 2, Space> out,
                          std::int32_t n_head_q, const store_geometry& g,
                          std::source_location where) {
  const auto hq = static_cast<std::size_t>(n_head_q);
  const auto hkv = static_cast<std::size_t>(g.n_head_kv);
  const auto d = static_cast<std::size_t>(g.head_dim);
  q.expect_shape("decode q", {hq, d}, where);
  k.expect_shape("decode k", {hkv, d}, where);
  v.expect_shape("decode v", {hkv, d}, where);
  out.expect_shape("decode out", {hq, d}, where);
}

/// A decode step of `seqs` at `layer`: distinct, prefilled sequences with room for one more token
/// under max_context (and `capacity`). layer_at(seq) -> const layer_entry& (range-checked by the
/// caller's accessor). Throws errc::invalid_argument, errc::bad_state, errc::out_of_range.
template <class LayerAt>
void expect_steppable(const store_geometry& g, std::int32_t layer,
                      std::span<const std::int32_t> seqs, LayerAt&& layer_at,
                      std::int64_t capacity, std::source_location where) {
  expects(!seqs.empty(), errc::invalid_argument, "decode batch of 0 sequences", where);
  for (std::size_t b = 0; b < seqs.size(); ++b) {
    const std::int32_t seq = seqs[b];
    const layer_entry& ls = layer_at(seq);
    const auto before = seqs.begin() + static_cast<std::ptrdiff_t>(b);
    expects(std::find(seqs.begin(), before, seq) == before, errc::invalid_argument,
            [&] { return fmt::format("sequence {} appears twice in one decode batch", seq); },
            where);
    expects(ls.length > 0, errc::bad_state, [&] {
      return fmt::format("decode before prefill for sequence {} layer {}", seq, layer);
    }, where);
    expects(ls.length < INT32_MAX, errc::bad_state, "sequence length would exceed 2^31 - 1",
            where);
    expects(within_context(g, std::int64_t{ls.length} + 1, capacity), errc::out_of_range, [&] {
      return fmt::format("sequence {} layer {} reached the cache's max_context ({})", seq, layer,
                         std::min<std::int64_t>(g.max_context > 0 ? g.max_context : INT64_MAX,
                                                capacity));
    }, where);
  }
}

} // namespace kvsieve::detail
